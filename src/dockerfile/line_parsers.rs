//! Per-instruction argument parsers, mirroring BuildKit's line_parsers.go:
//! how the text after the keyword (and flags) becomes the node's arguments.

use super::quote::go_quote;

/// Arguments of one instruction as BuildKit's AST holds them.
#[derive(Debug, Default)]
pub struct Parsed {
    pub args: Vec<String>,
    pub json: bool,
}

/// How an instruction's argument text is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Exec (JSON) form, else the whole text as one argument.
    MaybeJson,
    /// Exec (JSON) form, else whitespace-separated words.
    MaybeJsonToList,
    /// Whitespace-separated words.
    Whitespace,
    /// The whole text as one argument.
    String,
    /// `name=value` pairs or the legacy `name value`, flattened to
    /// `[name, value, separator]` triples (separator `=` or empty).
    NameVal(&'static str),
    /// Words with quotes kept (ARG).
    NameOrNameVal,
    /// HEALTHCHECK: a type word, then a MaybeJson command.
    Health,
    /// ONBUILD: a nested instruction.
    SubCommand,
    /// An unknown instruction: arguments are dropped.
    Ignore,
}

/// The argument style of `keyword` (lower-case).
pub fn style_of(keyword: &str) -> Style {
    match keyword {
        "add" | "copy" | "volume" => Style::MaybeJsonToList,
        "arg" => Style::NameOrNameVal,
        "cmd" | "entrypoint" | "run" | "shell" => Style::MaybeJson,
        "env" => Style::NameVal("ENV"),
        "label" => Style::NameVal("LABEL"),
        "expose" | "from" => Style::Whitespace,
        "healthcheck" => Style::Health,
        "maintainer" | "stopsignal" | "user" | "workdir" => Style::String,
        "onbuild" => Style::SubCommand,
        _ => Style::Ignore,
    }
}

/// The `[\t\v\f\r ]` class BuildKit splits on.
pub fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits a logical line into keyword, leading `--flags` and the rest.
pub fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let line = line.trim();
    match line.find(is_split_space) {
        None => (line.to_string(), Vec::new(), String::new()),
        Some(i) => {
            let rest = line[i..].trim_start_matches(is_split_space);
            let (rest, flags) = extract_builder_flags(rest, escape);
            (line[..i].to_string(), flags, rest.trim().to_string())
        }
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes leading words that start with `--` as flags (quotes removed, escapes
/// applied) and returns the remaining text; a lone `--` ends the flags.
fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let next_dash = chars.get(i + 1).map(|c| c.1) == Some('-');
            if ch != '-' || !next_dash {
                return (&line[chars[i].0..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[chars[i].0..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == escape {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    ("", words)
}

/// Splits into words on whitespace, keeping quotes and escapes in the words
/// (BuildKit's parseWords).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                c = chars[i];
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            c = chars[i];
        }
        word.push(c);
        i += 1;
    }
    words
}

/// Why an argument text is not an exec-form array.
enum JsonError {
    /// Not JSON (or not an array): use the shell form instead.
    NotJson,
    /// Valid JSON array with a non-string element: an error.
    NotStringArray,
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

fn parse_json(rest: &str) -> Result<Vec<String>, JsonError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(rest).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStringArray),
        })
        .collect()
}

fn maybe_json(rest: &str) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest) {
        Ok(args) => Ok(Parsed { args, json: true }),
        Err(JsonError::NotStringArray) => Err(NOT_STRING_ARRAY.to_string()),
        Err(JsonError::NotJson) => Ok(Parsed {
            args: vec![rest.to_string()],
            json: false,
        }),
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    rest.split(is_split_space)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let trimmed = rest.trim_start_matches(is_split_space);
        let Some(i) = trimmed.find(is_split_space) else {
            return Err(format!("{key} must have two arguments"));
        };
        let value = trimmed[i..].trim_start_matches(is_split_space);
        return Ok(vec![
            trimmed[..i].to_string(),
            value.to_string(),
            String::new(),
        ]);
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(word)
            ));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(args)
}

/// Parses `rest` for every style except SubCommand (handled by the caller).
pub fn parse_args(style: Style, rest: &str, escape: char) -> Result<Parsed, String> {
    let plain = |args| Ok(Parsed { args, json: false });
    match style {
        Style::MaybeJson => maybe_json(rest),
        Style::MaybeJsonToList => match parse_json(rest) {
            Ok(args) => Ok(Parsed { args, json: true }),
            Err(JsonError::NotStringArray) => Err(NOT_STRING_ARRAY.to_string()),
            Err(JsonError::NotJson) => plain(whitespace_delimited(rest)),
        },
        Style::Whitespace => plain(whitespace_delimited(rest)),
        Style::String if rest.is_empty() => plain(Vec::new()),
        Style::String => plain(vec![rest.to_string()]),
        Style::NameVal(key) => plain(name_val(rest, key, escape)?),
        Style::NameOrNameVal => plain(parse_words(rest, escape)),
        Style::Health => {
            let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if sep == 0 {
                return plain(Vec::new());
            }
            let cmd = maybe_json(rest[sep..].trim_start())?;
            let mut args = vec![rest[..sep].to_string()];
            args.extend(cmd.args);
            Ok(Parsed {
                args,
                json: cmd.json,
            })
        }
        Style::SubCommand | Style::Ignore => plain(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_leading_double_dash_words() {
        let (cmd, flags, rest) = split_command("COPY --a=b --c=\"d e\" src dst", '\\');
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, vec!["--a=b", "--c=d e"]);
        assert_eq!(rest, "src dst");
        let (_, flags, rest) = split_command("COPY --x -- --y dst", '\\');
        assert_eq!(flags, vec!["--x"]);
        assert_eq!(rest, "--y dst");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"abc="123 456" def"#, '\\'),
            vec![r#"abc="123 456""#, "def"]
        );
        assert_eq!(parse_words(r"a\ b c", '\\'), vec![r"a\ b", "c"]);
    }

    #[test]
    fn nested_json_is_error_invalid_json_is_shell() {
        assert!(maybe_json(r#"[ "echo", [ "x" ] ]"#).is_err());
        let p = maybe_json(r#"['a']"#).unwrap();
        assert!(!p.json);
        assert_eq!(p.args, vec!["['a']"]);
    }
}
