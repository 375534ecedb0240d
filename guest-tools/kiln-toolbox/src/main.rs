//! kiln-toolbox: every tool of kiln's toolbox in one WASI module, so it is
//! compiled once. Like busybox it runs the applet named by argv[0]'s basename
//! (`/bin/ls` runs ls); invoked as `kiln-toolbox APPLET ARGS...` it runs
//! APPLET, and `kiln-toolbox --list` prints the applet names.

use std::ffi::OsString;
use std::io::Write as _;

mod applets;
mod kiln_sys;

/// One tool: its name, the uucore message set it needs, and its entry point.
struct Applet {
    name: &'static str,
    locale: Option<&'static str>,
    run: fn(Vec<OsString>) -> i32,
}

include!(concat!(env!("OUT_DIR"), "/applets.rs"));

/// The name this binary answers to when argv[0] names no applet.
const SELF_NAME: &str = "kiln-toolbox";

/// Exit status for an unknown applet, as a shell gives for an unknown command.
const NOT_FOUND: i32 = 127;

fn main() {
    kiln_sys::enter_cwd();
    let args: Vec<OsString> = std::env::args_os().collect();
    std::process::exit(dispatch(args));
}

fn dispatch(args: Vec<OsString>) -> i32 {
    let invoked = args.first().map(basename).unwrap_or_default();
    if let Some(applet) = find(&invoked) {
        return run(applet, args);
    }
    if invoked != SELF_NAME {
        return not_found(&invoked);
    }
    let Some(first) = args.get(1) else {
        eprintln!("{SELF_NAME}: missing applet name (try '{SELF_NAME} --list')");
        return 1;
    };
    match first.to_string_lossy().as_ref() {
        "--list" => list(),
        "--help" | "-h" => {
            println!("Usage: {SELF_NAME} APPLET [ARGS]...\n       {SELF_NAME} --list\n\nOr call it under an applet's name (argv[0]), like busybox.");
            0
        }
        name => match find(name) {
            Some(applet) => {
                // uucore takes the utility's name from argv[1] from now on.
                uucore::set_utility_is_second_arg();
                run(applet, args.into_iter().skip(1).collect())
            }
            None => not_found(name),
        },
    }
}

/// The last `/`-separated component of argv[0], without a `.wasm` suffix.
fn basename(arg0: &OsString) -> String {
    let arg0 = arg0.to_string_lossy();
    let base = arg0.rsplit('/').next().unwrap_or_default();
    base.strip_suffix(".wasm").unwrap_or(base).to_owned()
}

fn find(name: &str) -> Option<&'static Applet> {
    APPLETS
        .binary_search_by(|a| a.name.cmp(name))
        .ok()
        .and_then(|i| APPLETS.get(i))
}

fn run(applet: &Applet, args: Vec<OsString>) -> i32 {
    uucore::panic::mute_sigpipe_panic();
    // WASI has no standard temporary directory (std::env::temp_dir panics
    // there); tac, sort and others spool to one through the tempfile crate.
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    // It can only fail if already set, which nothing before here does.
    let _ = tempfile::env::override_temp_dir(std::path::Path::new(&tmp));
    if let Some(locale) = applet.locale {
        if let Err(e) = uucore::locale::setup_localization(locale) {
            eprintln!("{}: cannot set up its messages: {e}", applet.name);
            return 1;
        }
    }
    (applet.run)(args)
}

fn list() -> i32 {
    let mut out = std::io::stdout().lock();
    for applet in APPLETS {
        if writeln!(out, "{}", applet.name).is_err() {
            return 1;
        }
    }
    if out.flush().is_err() {
        return 1;
    }
    0
}

fn not_found(name: &str) -> i32 {
    eprintln!("{SELF_NAME}: {name}: applet not found (the toolbox has: '{SELF_NAME} --list')");
    NOT_FOUND
}
