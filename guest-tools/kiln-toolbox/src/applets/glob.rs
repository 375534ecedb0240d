//! fnmatch(3) without flags: `*`, `?`, `[...]` (with `!`/`^`, ranges and
//! `[:class:]`) and `\` quoting. `*` also matches `/`, as find's `-path` and
//! grep's `--include` want.

/// Whether `name` matches the shell pattern `pattern`.
pub fn matches(pattern: &[u8], name: &[u8], fold_case: bool) -> bool {
    let fold = |b: u8| if fold_case { b.to_ascii_lowercase() } else { b };
    // Iterative matching with one backtrack point (the last `*`).
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                b'?' if n < name.len() => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' if n < name.len() => {
                    if let Some((hit, next)) = bracket(pattern, p, name[n], fold_case) {
                        if hit {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unterminated `[` is an ordinary character.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\'
                    if p + 1 < pattern.len()
                        && n < name.len()
                        && fold(pattern[p + 1]) == fold(name[n]) =>
                {
                    p += 2;
                    n += 1;
                    continue;
                }
                // An escape that does not match here.
                b'\\' if p + 1 < pattern.len() => {}
                c if n < name.len() && c != b'?' && c != b'[' && fold(c) == fold(name[n]) => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more byte.
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

/// Matches `c` against the bracket expression at `pattern[start]` (a `[`);
/// returns whether it matched and the index after the closing `]`, or `None`
/// when the bracket is not terminated.
fn bracket(pattern: &[u8], start: usize, c: u8, fold_case: bool) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let lower = c.to_ascii_lowercase();
    let upper = c.to_ascii_uppercase();
    let test = |lo: u8, hi: u8| -> bool {
        if fold_case {
            (lo <= lower && lower <= hi) || (lo <= upper && upper <= hi)
        } else {
            lo <= c && c <= hi
        }
    };
    let mut hit = false;
    let mut first = true;
    loop {
        let &b = pattern.get(i)?;
        if b == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if b == b'[' && pattern.get(i + 1) == Some(&b':') {
            if let Some(len) = pattern[i + 2..].windows(2).position(|w| w == b":]") {
                let class = &pattern[i + 2..i + 2 + len];
                hit |= class_matches(class, c)
                    || (fold_case && (class_matches(class, lower) || class_matches(class, upper)));
                i += len + 4;
                continue;
            }
        }
        let (lo, next) = if b == b'\\' && i + 1 < pattern.len() {
            (pattern[i + 1], i + 2)
        } else {
            (b, i + 1)
        };
        if pattern.get(next) == Some(&b'-') && pattern.get(next + 1).is_some_and(|&h| h != b']') {
            let (hi, after) = if pattern[next + 1] == b'\\' && next + 2 < pattern.len() {
                (pattern[next + 2], next + 3)
            } else {
                (pattern[next + 1], next + 2)
            };
            hit |= test(lo, hi);
            i = after;
        } else {
            hit |= test(lo, lo);
            i = next;
        }
    }
}

/// POSIX character classes, ASCII only (the C locale).
pub fn class_matches(class: &[u8], c: u8) -> bool {
    match class {
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" => c.is_ascii_uppercase(),
        b"lower" => c.is_ascii_lowercase(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"blank" => c == b' ' || c == b'\t',
        b"punct" => c.is_ascii_punctuation(),
        b"print" => (0x20..0x7f).contains(&c),
        b"graph" => c.is_ascii_graphic(),
        b"cntrl" => c.is_ascii_control(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}
