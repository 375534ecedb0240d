//! hostname: the host name every RUN step has. kiln gives each step the same
//! fixed name (the one `uname -n` prints there) so builds are reproducible,
//! and it cannot be changed, like an unprivileged GNU hostname.

use std::ffi::OsString;

/// The step's host name: what `uname -n` prints in the sandbox.
pub const HOST_NAME: &str = "localhost";
/// Its fully qualified form (`-f`, `-A`).
const FQDN: &str = "localhost";
/// The host's address (`-i`, `-I`): the loopback one, the only one a step has.
const ADDRESS: &str = "127.0.0.1";

const HELP: &str = "\
Usage: hostname [-s|-f|-A|-i|-I]
Print the host name of kiln's RUN steps (fixed: it cannot be set).

  -s, --short            the short host name
  -f, --fqdn, --long     the fully qualified domain name
  -A, --all-fqdns        all FQDNs of the host
  -i, --ip-address       the host's address
  -I, --all-ip-addresses all addresses of the host
  -h, --help             this help
";

/// What to print.
#[derive(Clone, Copy)]
enum Show {
    Name,
    Fqdn,
    AllFqdns,
    Address,
    AllAddresses,
}

/// Runs hostname.
pub fn uumain(args: impl Iterator<Item = OsString>) -> i32 {
    let args: Vec<String> = args
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut show = Show::Name;
    let mut names = Vec::new();
    let mut only_operands = false;
    for arg in &args {
        if only_operands || arg == "-" || !arg.starts_with('-') {
            names.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_operands = true;
            continue;
        }
        let letters: Vec<char> = match arg.strip_prefix("--") {
            Some(long) => match long {
                "help" => vec!['h'],
                "short" => vec!['s'],
                "fqdn" | "long" => vec!['f'],
                "all-fqdns" => vec!['A'],
                "ip-address" => vec!['i'],
                "all-ip-addresses" => vec!['I'],
                _ => return usage(&format!("unrecognized option '{arg}'")),
            },
            None => arg[1..].chars().collect(),
        };
        for c in letters {
            show = match c {
                'h' => {
                    print!("{HELP}");
                    return 0;
                }
                's' => Show::Name,
                'f' => Show::Fqdn,
                'A' => Show::AllFqdns,
                'i' => Show::Address,
                'I' => Show::AllAddresses,
                _ => return usage(&format!("invalid option -- '{c}'")),
            };
        }
    }
    if !names.is_empty() {
        eprintln!("hostname: you must be root to change the host name");
        return 1;
    }
    match show {
        Show::Name => println!("{HOST_NAME}"),
        Show::Fqdn => println!("{FQDN}"),
        // GNU prints these lists with a trailing space.
        Show::AllFqdns => println!("{FQDN} "),
        Show::Address => println!("{ADDRESS}"),
        Show::AllAddresses => println!("{ADDRESS} "),
    }
    0
}

fn usage(msg: &str) -> i32 {
    eprintln!("hostname: {msg}");
    eprintln!("Try 'hostname --help' for more information.");
    1
}
