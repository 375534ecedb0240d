//! The command line of a shell kiln runs itself: `sh [-eux] [-o opt] -c
//! SCRIPT [NAME [ARG...]]`, `sh FILE [ARG...]`, or `sh` reading stdin.

/// Where the script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-c SCRIPT`.
    Command(String),
    /// A script file (an image path, relative to the cwd).
    File(String),
    /// Standard input.
    Stdin,
    /// A bad command line; the message to print (status 2).
    Invalid(String),
}

/// A parsed shell command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellArgs {
    /// Option words for `set` (`-e`, `-o`, `pipefail`, ...).
    pub options: Vec<String>,
    /// The script.
    pub source: Source,
    /// `$0`.
    pub arg0: String,
    /// `$1`...
    pub positional: Vec<String>,
}

impl ShellArgs {
    /// Parses `argv` (argv\[0\] is the shell's own name).
    pub fn parse(argv: &[String]) -> ShellArgs {
        let arg0 = argv.first().cloned().unwrap_or_else(|| "sh".into());
        let mut options = Vec::new();
        let mut command = false;
        let mut i = 1;
        while let Some(a) = argv.get(i) {
            if a == "--" {
                i += 1;
                break;
            }
            let on = a.starts_with('-');
            if !(on || a.starts_with('+')) || a.len() < 2 {
                break;
            }
            let mut flags = String::new();
            let mut takes_name = false;
            for c in a[1..].chars() {
                match c {
                    'c' if on => command = true,
                    // Login/interactive/stdin flags mean nothing here.
                    'l' | 'i' | 's' => {}
                    'o' => takes_name = true,
                    c => flags.push(c),
                }
            }
            let sign = if on { '-' } else { '+' };
            if !flags.is_empty() {
                options.push(format!("{sign}{flags}"));
            }
            if takes_name {
                i += 1;
                match argv.get(i) {
                    Some(name) => {
                        options.push(format!("{sign}o"));
                        options.push(name.clone());
                    }
                    None => {
                        return ShellArgs::invalid(arg0, "-o: option requires an argument");
                    }
                }
            }
            i += 1;
        }
        let rest = &argv[i.min(argv.len())..];
        let source;
        let (arg0, positional) = if command {
            let Some(script) = rest.first() else {
                return ShellArgs::invalid(arg0, "-c requires an argument");
            };
            source = Source::Command(script.clone());
            match rest.get(1) {
                Some(name) => (name.clone(), rest[2..].to_vec()),
                None => (arg0, Vec::new()),
            }
        } else if let Some(file) = rest.first() {
            source = Source::File(file.clone());
            (file.clone(), rest[1..].to_vec())
        } else {
            source = Source::Stdin;
            (arg0, Vec::new())
        };
        ShellArgs {
            options,
            source,
            arg0,
            positional,
        }
    }

    /// Running the script file `path` with `args` (a `#!/bin/sh` script).
    pub fn script_file(path: &str, args: &[String]) -> ShellArgs {
        ShellArgs {
            options: Vec::new(),
            source: Source::File(path.to_owned()),
            arg0: path.to_owned(),
            positional: args.to_vec(),
        }
    }

    fn invalid(arg0: String, msg: &str) -> ShellArgs {
        ShellArgs {
            options: Vec::new(),
            source: Source::Invalid(msg.to_owned()),
            arg0,
            positional: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ShellArgs {
        ShellArgs::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn dockerfile_shell_forms_parse() {
        let a = parse(&["/bin/sh", "-c", "echo hi"]);
        assert_eq!(a.source, Source::Command("echo hi".into()));
        assert_eq!(a.arg0, "/bin/sh");
        assert!(a.options.is_empty());

        let a = parse(&["/bin/bash", "-o", "pipefail", "-c", "a | b", "name", "x"]);
        assert_eq!(a.options, vec!["-o", "pipefail"]);
        assert_eq!(a.source, Source::Command("a | b".into()));
        assert_eq!(a.arg0, "name");
        assert_eq!(a.positional, vec!["x"]);

        let a = parse(&["sh", "-eux", "-c", "true"]);
        assert_eq!(a.options, vec!["-eux"]);

        let a = parse(&["sh", "script.sh", "1"]);
        assert_eq!(a.source, Source::File("script.sh".into()));
        assert_eq!(a.positional, vec!["1"]);

        assert_eq!(parse(&["sh"]).source, Source::Stdin);
        assert!(matches!(parse(&["sh", "-c"]).source, Source::Invalid(_)));
    }
}
