//! The `getopts` builtin (POSIX): scans options of the positional
//! parameters (or the given arguments) one call at a time, keeping its
//! place in `OPTIND` plus, inside a group like `-ab`, a position of its own
//! that starts over whenever `OPTIND` is changed from outside.

use super::Shell;

/// Where `getopts` is inside the argument at `OPTIND`.
#[derive(Debug, Clone, Default)]
pub(super) struct GetoptsPlace {
    /// The `OPTIND` value the position belongs to.
    optind: usize,
    /// Byte offset of the next option letter in that argument (0: start).
    offset: usize,
}

/// What one call found.
enum Found {
    /// The options are over: status 1, `name` is `?`.
    End,
    /// Option `letter` with its argument, if it takes one.
    Opt(char, Option<String>),
    /// A letter not in the option string.
    Unknown(char),
    /// An option whose argument is missing.
    MissingArg(char),
}

impl Shell {
    /// `getopts OPTSTRING NAME [ARG...]`.
    pub(super) fn builtin_getopts(&mut self, args: &[String]) -> i32 {
        let [spec, name, rest @ ..] = args else {
            self.err_msg("getopts: usage: getopts optstring name [arg ...]");
            return 2;
        };
        let silent = spec.starts_with(':');
        let spec = spec.trim_start_matches(':').to_owned();
        let params = if rest.is_empty() {
            self.positional.clone()
        } else {
            rest.to_vec()
        };
        let optind = self
            .var("OPTIND")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1);
        if self.getopts.optind != optind {
            self.getopts = GetoptsPlace { optind, offset: 0 };
        }
        let found = self.next_option(&spec, &params);
        if self.refuse_readonly("getopts: ", name) {
            return 2;
        }
        self.assign("OPTIND", &self.getopts.optind.to_string());
        match found {
            Found::End => {
                self.assign(name, "?");
                self.vars.remove("OPTARG");
                1
            }
            Found::Opt(c, arg) => {
                self.assign(name, &c.to_string());
                match arg {
                    Some(a) => self.assign("OPTARG", &a),
                    None => {
                        self.vars.remove("OPTARG");
                    }
                }
                0
            }
            Found::Unknown(c) | Found::MissingArg(c) if silent => {
                let letter = if matches!(found, Found::MissingArg(_)) {
                    ":"
                } else {
                    "?"
                };
                self.assign(name, letter);
                self.assign("OPTARG", &c.to_string());
                0
            }
            Found::Unknown(c) => {
                self.err_msg(&format!("getopts: illegal option -- {c}"));
                self.assign(name, "?");
                self.vars.remove("OPTARG");
                0
            }
            Found::MissingArg(c) => {
                self.err_msg(&format!("getopts: option requires an argument -- {c}"));
                self.assign(name, "?");
                self.vars.remove("OPTARG");
                0
            }
        }
    }

    /// Finds the next option in `params` and moves the place past it.
    fn next_option(&mut self, spec: &str, params: &[String]) -> Found {
        let place = &mut self.getopts;
        let Some(arg) = params.get(place.optind - 1) else {
            return Found::End;
        };
        if place.offset == 0 {
            if arg == "--" {
                place.optind += 1;
                return Found::End;
            }
            if !arg.starts_with('-') || arg == "-" {
                return Found::End;
            }
            place.offset = 1;
        }
        let Some(c) = arg[place.offset..].chars().next() else {
            return Found::End;
        };
        place.offset += c.len_utf8();
        let at_end = place.offset >= arg.len();
        let takes_arg = match spec.find(c) {
            Some(i) if c != ':' => spec[i + c.len_utf8()..].starts_with(':'),
            _ => {
                if at_end {
                    place.next_arg();
                }
                return Found::Unknown(c);
            }
        };
        if !takes_arg {
            if at_end {
                place.next_arg();
            }
            return Found::Opt(c, None);
        }
        let value = if at_end {
            place.next_arg();
            let v = params.get(place.optind - 1).cloned();
            if v.is_some() {
                place.optind += 1;
            }
            v
        } else {
            let v = arg[place.offset..].to_owned();
            place.next_arg();
            Some(v)
        };
        match value {
            Some(v) => Found::Opt(c, Some(v)),
            None => Found::MissingArg(c),
        }
    }
}

impl GetoptsPlace {
    fn next_arg(&mut self) {
        self.optind += 1;
        self.offset = 0;
    }
}
