//! Runs real WASI programs (tests/guests, built from source) in the sandbox.

mod common;

use common::guests::{guest, guest_bytes};
use kiln_runtime::{
    Invocation, Outcome, Output, Program, RunError, Runtime, RuntimeConfig, Stdin, TrapKind,
};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One runtime for the tests that do not count cache events.
fn shared() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

fn probe() -> Program {
    shared()
        .load("/bin/probe", &guest_bytes("probe"))
        .expect("load probe")
}

fn run_probe(args: &[&str], tweak: impl FnOnce(&mut Invocation)) -> Outcome {
    let mut inv = Invocation::new(std::iter::once("probe").chain(args.iter().copied()));
    tweak(&mut inv);
    shared().run(&probe(), inv).expect("sandbox setup")
}

fn stdout(o: &Outcome) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

#[test]
fn argv_and_environment_are_exactly_what_the_caller_gives() {
    let o = run_probe(&["args", "two words", "ünï"], |inv| {
        inv.env = vec![("B".into(), "2".into()), ("A".into(), "x=y".into())];
    });
    assert_eq!(o.end.as_ref().ok(), Some(&0));
    assert_eq!(
        stdout(&o),
        "arg=probe\narg=args\narg=two words\narg=ünï\nenv=B=2\nenv=A=x=y\n"
    );
}

#[test]
fn empty_environment_stays_empty() {
    let o = run_probe(&["args"], |_| {});
    assert_eq!(stdout(&o), "arg=probe\narg=args\n");
}

#[test]
fn exit_statuses_pass_through_including_126_and_above() {
    for (asked, got) in [
        (0, 0u8),
        (3, 3),
        (125, 125),
        (126, 126),
        (127, 127),
        (255, 255),
        (300, 44),
    ] {
        let o = run_probe(&["exit", &asked.to_string()], |_| {});
        assert_eq!(o.end.as_ref().ok(), Some(&got), "exit {asked}: {:?}", o.end);
    }
}

#[test]
fn clocks_are_virtual_and_start_at_source_date_epoch() {
    let run = || run_probe(&["clock"], |inv| inv.source_date_epoch = 1_700_000_000);
    let a = run();
    assert_eq!(a.end.as_ref().ok(), Some(&0));
    // Reads in order: wall, monotonic, wall, monotonic; each advances 1 ms.
    assert_eq!(
        stdout(&a),
        "wall1=1700000000.000000000\nwall2=1700000000.002000000\nmono_delta_ns=2000000\n"
    );
    assert_eq!(a.virtual_elapsed, Duration::from_millis(4));
    assert_eq!(stdout(&run()), stdout(&a));
    let zero = run_probe(&["clock"], |_| {});
    assert!(
        stdout(&zero).starts_with("wall1=0.000000000\n"),
        "{}",
        stdout(&zero)
    );
}

#[test]
fn random_bytes_follow_the_seed() {
    let with_seed = |seed: u8| {
        let o = run_probe(&["random", "32"], |inv| inv.seed = [seed; 32]);
        assert_eq!(o.end.as_ref().ok(), Some(&0));
        stdout(&o)
    };
    let a = with_seed(1);
    assert_eq!(a.trim().len(), 64, "{a}");
    assert_eq!(a, with_seed(1));
    assert_ne!(a, with_seed(2));
}

#[test]
fn unreachable_is_a_typed_trap() {
    let o = run_probe(&["trap"], |_| {});
    match &o.end {
        Err(e @ RunError::Trap { kind, program, .. }) => {
            assert_eq!(*kind, TrapKind::Unreachable);
            assert_eq!(program, "/bin/probe");
            let msg = e.to_string();
            assert!(msg.starts_with("/bin/probe: the program crashed"), "{msg}");
            assert!(msg.contains("unreachable"), "{msg}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_panic_traps_and_its_message_is_captured() {
    let o = run_probe(&["panic"], |_| {});
    assert!(
        matches!(
            o.end,
            Err(RunError::Trap {
                kind: TrapKind::Unreachable,
                ..
            })
        ),
        "{:?}",
        o.end
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("probe was asked to panic"), "{err}");
}

#[test]
fn memory_limit_ends_the_run_as_out_of_memory() {
    let o = run_probe(&["oom"], |inv| inv.memory_limit = 64 << 20);
    match &o.end {
        Err(e @ RunError::OutOfMemory { limit, .. }) => {
            assert_eq!(*limit, 64 << 20);
            assert!(e.to_string().contains("out of memory"), "{e}");
        }
        other => panic!("expected out of memory, got {other:?}"),
    }
}

#[test]
fn stack_overflow_is_reported() {
    let o = run_probe(&["stack"], |_| {});
    match &o.end {
        Err(e @ RunError::Trap { kind, .. }) => {
            assert_eq!(*kind, TrapKind::StackOverflow);
            assert!(e.to_string().contains("stack overflow"), "{e}");
        }
        other => panic!("expected stack overflow, got {other:?}"),
    }
}

#[test]
fn timeout_interrupts_a_spinning_program() {
    let start = Instant::now();
    let o = run_probe(&["spin"], |inv| {
        inv.timeout = Some(Duration::from_millis(200))
    });
    let took = start.elapsed();
    match &o.end {
        Err(e @ RunError::Timeout { after, .. }) => {
            assert_eq!(*after, Duration::from_millis(200));
            assert!(e.to_string().contains("timed out after 200ms"), "{e}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A generous timeout does not disturb a normal run.
    let ok = run_probe(&["exit", "7"], |inv| {
        inv.timeout = Some(Duration::from_secs(30))
    });
    assert_eq!(ok.end.as_ref().ok(), Some(&7));
}

#[test]
fn files_written_under_root_land_in_the_host_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host\n").unwrap();
    let o = run_probe(&["write", "/out.txt", "hello"], |inv| {
        inv.root = Some(dir.path().to_owned());
    });
    assert_eq!(
        o.end.as_ref().ok(),
        Some(&0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "wrote /out.txt: hello\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "hello"
    );
    let r = run_probe(&["read", "/in.txt"], |inv| {
        inv.root = Some(dir.path().to_owned())
    });
    assert_eq!(stdout(&r), "from the host\n");
    // Without a root there is no filesystem at all.
    let none = run_probe(&["read", "/in.txt"], |_| {});
    assert_eq!(none.end.as_ref().ok(), Some(&2));
}

#[test]
fn stdin_bytes_reach_the_program_and_outputs_can_go_to_files() {
    let out = tempfile::tempfile().unwrap();
    let o = run_probe(&["cat"], |inv| {
        inv.stdin = Stdin::Bytes(b"line one\n\0binary\xff".to_vec());
        inv.stdout = Output::File(out.try_clone().unwrap());
    });
    assert_eq!(o.end.as_ref().ok(), Some(&0));
    assert!(o.stdout.is_empty());
    let written = std::fs::read(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&out)
    ))
    .unwrap();
    assert_eq!(written, b"line one\n\0binary\xff");
    let e = run_probe(&["stderr", "a", "b"], |inv| inv.stdout = Output::Discard);
    assert_eq!(String::from_utf8_lossy(&e.stderr), "to stderr: a b\n");
}

#[test]
fn an_elf_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ls");
    std::fs::write(&path, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
    let err = shared().load_file("/usr/bin/ls", &path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RunError::NotWasm { .. }));
    assert!(msg.starts_with("/usr/bin/ls: "), "{msg}");
    assert!(msg.contains("ELF"), "{msg}");
    assert!(msg.contains("kiln runs WebAssembly programs only"), "{msg}");
}

#[test]
fn modules_that_are_not_commands_or_invalid_are_load_errors() {
    let empty_module = b"\0asm\x01\0\0\0";
    let msg = shared()
        .load("lib.wasm", empty_module)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("lib.wasm") && msg.contains("_start"), "{msg}");
    let broken = b"\0asm\x01\0\0\0\x01\xff\xff";
    let err = shared().load("broken.wasm", broken).unwrap_err();
    assert!(matches!(err, RunError::Load { .. }), "{err:?}");
}

#[test]
fn guests_are_built_from_source() {
    // The test programs exist only as build output, never as committed files.
    assert!(guest("probe").starts_with(env!("CARGO_TARGET_TMPDIR")));
}

#[test]
fn one_runtime_serves_many_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(shared());
    let program = probe();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|i| {
                let program = program.clone();
                s.spawn(move || {
                    let mut inv = Invocation::new(["probe", "random", "8"]);
                    inv.seed = [i; 32];
                    let o = shared().run(&program, inv).expect("run");
                    String::from_utf8(o.stdout).expect("utf-8")
                })
            })
            .collect();
        let outs: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        for (i, out) in outs.iter().enumerate() {
            let mut inv = Invocation::new(["probe", "random", "8"]);
            inv.seed = [i as u8; 32];
            let again = shared().run(&program, inv).expect("run");
            assert_eq!(&String::from_utf8(again.stdout).expect("utf-8"), out);
        }
        assert_ne!(outs[0], outs[1]);
    });
}
