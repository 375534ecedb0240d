//! `printf` formatting and the backslash escapes shared with `echo` and `%b`.

/// Interprets backslash escapes. `b_mode` is echo/`%b` style (`\0NNN`
/// octal, `\c` stops output); otherwise printf format style (`\NNN`).
/// Returns the bytes and whether `\c` was seen.
pub(super) fn unescape(s: &str, b_mode: bool) -> (Vec<u8>, bool) {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' || i + 1 >= bytes.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = bytes[i + 1];
        i += 2;
        match e {
            b'\\' => out.push(b'\\'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'e' => out.push(27),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'"' if !b_mode => out.push(b'"'),
            b'\'' if !b_mode => out.push(b'\''),
            b'c' if b_mode => return (out, true),
            b'0'..=b'7' => {
                let (mut v, max, first) = if b_mode && e == b'0' {
                    (0u32, 3, 0)
                } else if b_mode {
                    out.push(b'\\');
                    out.push(e);
                    continue;
                } else {
                    (u32::from(e - b'0'), 2, 1)
                };
                let _ = first;
                let mut n = 0;
                while n < max && i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                    v = v * 8 + u32::from(bytes[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    (out, false)
}

/// A parsed `%` conversion.
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
    conv: char,
}

/// Parses a numeric argument like printf(1): `'c` gives the character code.
fn parse_int(arg: &str, errors: &mut Vec<String>) -> i64 {
    let t = arg.trim_start();
    if t.is_empty() {
        return 0;
    }
    if let Some(rest) = t.strip_prefix('\'').or_else(|| t.strip_prefix('"')) {
        return rest.chars().next().map(|c| c as i64).unwrap_or(0);
    }
    let (neg, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, body) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !c.is_digit(radix))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    let v = u64::from_str_radix(&body[..end], radix).unwrap_or(0) as i64;
    if end < body.len() || (end == 0 && radix == 10) {
        errors.push(format!("{arg}: expected numeric value"));
    }
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// Pads to the field width. `numeric` allows zero padding; integer
/// conversions with a precision do not zero-pad (C rules), floats do.
fn pad(spec: &Spec, body: String, numeric: bool) -> String {
    let width = spec.width.unwrap_or(0);
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.left {
        format!("{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric && (spec.precision.is_none() || "fFeEgG".contains(spec.conv)) {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
            _ => (String::new(), body.clone()),
        };
        let (prefix, digits) = if digits.starts_with("0x") || digits.starts_with("0X") {
            (digits[..2].to_string(), digits[2..].to_string())
        } else {
            (String::new(), digits)
        };
        format!("{sign}{prefix}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

/// Formats `fmt` with `args`, repeating the format while arguments remain.
/// Returns the output and any argument errors.
pub(super) fn format(fmt: &str, args: &[String]) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut next = 0usize;
    let chars: Vec<char> = fmt.chars().collect();
    loop {
        let start_next = next;
        let mut i = 0;
        let mut literal = String::new();
        let flush = |lit: &mut String, out: &mut Vec<u8>| {
            if !lit.is_empty() {
                out.extend(unescape(lit, false).0);
                lit.clear();
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && i + 1 < chars.len() {
                literal.push(c);
                literal.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c != '%' {
                literal.push(c);
                i += 1;
                continue;
            }
            if chars.get(i + 1) == Some(&'%') {
                literal.push('%');
                i += 2;
                continue;
            }
            flush(&mut literal, &mut out);
            i += 1;
            let mut spec = Spec {
                left: false,
                plus: false,
                space: false,
                alt: false,
                zero: false,
                width: None,
                precision: None,
                conv: 's',
            };
            while let Some(&f) = chars.get(i) {
                match f {
                    '-' => spec.left = true,
                    '+' => spec.plus = true,
                    ' ' => spec.space = true,
                    '#' => spec.alt = true,
                    '0' => spec.zero = true,
                    _ => break,
                }
                i += 1;
            }
            let take_arg = |next: &mut usize| -> String {
                let a = args.get(*next).cloned().unwrap_or_default();
                *next += 1;
                a
            };
            if chars.get(i) == Some(&'*') {
                let w = parse_int(&take_arg(&mut next), &mut errors);
                if w < 0 {
                    spec.left = true;
                }
                spec.width = Some(w.unsigned_abs() as usize);
                i += 1;
            } else {
                let mut w = String::new();
                while let Some(d) = chars.get(i).filter(|c| c.is_ascii_digit()) {
                    w.push(*d);
                    i += 1;
                }
                spec.width = w.parse().ok();
            }
            if chars.get(i) == Some(&'.') {
                i += 1;
                if chars.get(i) == Some(&'*') {
                    spec.precision =
                        Some(parse_int(&take_arg(&mut next), &mut errors).max(0) as usize);
                    i += 1;
                } else {
                    let mut p = String::new();
                    while let Some(d) = chars.get(i).filter(|c| c.is_ascii_digit()) {
                        p.push(*d);
                        i += 1;
                    }
                    spec.precision = Some(p.parse().unwrap_or(0));
                }
            }
            let Some(&conv) = chars.get(i) else {
                errors.push(format!("%{}: missing conversion", ""));
                break;
            };
            i += 1;
            spec.conv = conv;
            let s = match conv {
                's' => {
                    let mut a = take_arg(&mut next);
                    if let Some(p) = spec.precision {
                        a = a.chars().take(p).collect();
                    }
                    pad(&spec, a, false)
                }
                'b' => {
                    let (bytes, stop) = unescape(&take_arg(&mut next), true);
                    let a = String::from_utf8_lossy(&bytes).into_owned();
                    out.extend(pad(&spec, a, false).into_bytes());
                    if stop {
                        return (out, errors);
                    }
                    continue;
                }
                'c' => {
                    let a = take_arg(&mut next);
                    pad(
                        &spec,
                        a.chars().next().map(String::from).unwrap_or_default(),
                        false,
                    )
                }
                'd' | 'i' => {
                    let v = parse_int(&take_arg(&mut next), &mut errors);
                    let mut digits = v.unsigned_abs().to_string();
                    if let Some(p) = spec.precision {
                        while digits.len() < p {
                            digits.insert(0, '0');
                        }
                    }
                    let sign = if v < 0 {
                        "-"
                    } else if spec.plus {
                        "+"
                    } else if spec.space {
                        " "
                    } else {
                        ""
                    };
                    pad(&spec, format!("{sign}{digits}"), true)
                }
                'u' | 'x' | 'X' | 'o' => {
                    let v = parse_int(&take_arg(&mut next), &mut errors) as u64;
                    let mut digits = match conv {
                        'u' => v.to_string(),
                        'x' => format!("{v:x}"),
                        'X' => format!("{v:X}"),
                        _ => format!("{v:o}"),
                    };
                    if let Some(p) = spec.precision {
                        while digits.len() < p {
                            digits.insert(0, '0');
                        }
                    }
                    if spec.alt && v != 0 {
                        digits = match conv {
                            'x' => format!("0x{digits}"),
                            'X' => format!("0X{digits}"),
                            'o' if !digits.starts_with('0') => format!("0{digits}"),
                            _ => digits,
                        };
                    }
                    pad(&spec, digits, true)
                }
                'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
                    let a = take_arg(&mut next);
                    let v: f64 = a.trim().parse().unwrap_or_else(|_| {
                        if !a.is_empty() {
                            errors.push(format!("{a}: expected numeric value"));
                        }
                        0.0
                    });
                    let p = spec.precision.unwrap_or(6);
                    let body = match conv {
                        'e' | 'E' => {
                            let s = format!("{v:.p$e}");
                            // Rust writes 1.5e2; C writes 1.5e+02.
                            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                            let (sign, digits) = match e.strip_prefix('-') {
                                Some(d) => ('-', d),
                                None => ('+', e),
                            };
                            let s = format!("{m}e{sign}{digits:0>2}");
                            if conv == 'E' {
                                s.to_uppercase()
                            } else {
                                s
                            }
                        }
                        'g' | 'G' => format!("{v}"),
                        _ => format!("{v:.p$}"),
                    };
                    let body = if spec.plus && v >= 0.0 {
                        format!("+{body}")
                    } else {
                        body
                    };
                    pad(&spec, body, true)
                }
                other => {
                    errors.push(format!("%{other}: invalid directive"));
                    return (out, errors);
                }
            };
            out.extend(s.into_bytes());
        }
        flush(&mut literal, &mut out);
        if next >= args.len() || next == start_next {
            break;
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        String::from_utf8(format(fmt, &args).0).unwrap_or_default()
    }

    #[test]
    fn conversions() {
        assert_eq!(f("%s-%d\\n", &["a", "42"]), "a-42\n");
        assert_eq!(f("%5s|%-5s|", &["ab", "cd"]), "   ab|cd   |");
        assert_eq!(
            f("%05d %x %o %X %#x", &["42", "255", "8", "255", "255"]),
            "00042 ff 10 FF 0xff"
        );
        assert_eq!(f("%c%c", &["hello", "w"]), "hw");
        assert_eq!(f("%s\\n", &["a", "b", "c"]), "a\nb\nc\n");
        assert_eq!(f("%%%s", &[]), "%");
        assert_eq!(f("%b", &["a\\tb\\c ignored"]), "a\tb");
        assert_eq!(f("%.2f", &["3.14159"]), "3.14");
        assert_eq!(f("%d", &["'A"]), "65");
        assert_eq!(f("\\101\\n", &[]), "A\n");
        assert_eq!(f("%.3s", &["abcdef"]), "abc");
    }

    #[test]
    fn echo_escapes() {
        assert_eq!(unescape("a\\nb", true), (b"a\nb".to_vec(), false));
        assert_eq!(unescape("a\\0101", true), (b"aA".to_vec(), false));
        assert_eq!(unescape("x\\cy", true), (b"x".to_vec(), true));
    }
}
