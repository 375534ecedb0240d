//! awk values, their string/number conversions and printf formatting.

/// A scalar. `StrNum` is input text (fields, getline, -v): it compares as a
/// number when it looks like one, as POSIX's "numeric string".
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Uninit,
    Num(f64),
    Str(String),
    StrNum(String),
}

impl Value {
    pub fn num(&self) -> f64 {
        match self {
            Value::Uninit => 0.0,
            Value::Num(n) => *n,
            Value::Str(s) | Value::StrNum(s) => str_to_num(s),
        }
    }

    /// The string form, numbers through `fmt` (CONVFMT or OFMT).
    pub fn string(&self, fmt: &str) -> String {
        match self {
            Value::Uninit => String::new(),
            Value::Num(n) => num_to_string(*n, fmt),
            Value::Str(s) | Value::StrNum(s) => s.clone(),
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Uninit => false,
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::StrNum(s) => {
                if looks_numeric(s) {
                    str_to_num(s) != 0.0
                } else {
                    !s.is_empty()
                }
            }
        }
    }

    /// Whether comparisons treat it as a number.
    pub fn is_numeric(&self) -> bool {
        match self {
            Value::Uninit | Value::Num(_) => true,
            Value::Str(_) => false,
            Value::StrNum(s) => looks_numeric(s),
        }
    }
}

/// The leading number of `s`, as strtod reads it (0 when there is none).
pub fn str_to_num(s: &str) -> f64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == digits_start || (i == digits_start + 1 && b[digits_start] == b'.') {
        return 0.0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    t[..i].parse().unwrap_or(0.0)
}

/// Whether all of `s` (blanks aside) is a decimal number.
pub fn looks_numeric(s: &str) -> bool {
    let t = s.trim_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    if t.is_empty() {
        return false;
    }
    let b = t.as_bytes();
    let mut i = 0;
    if b[0] == b'+' || b[0] == b'-' {
        i = 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Integers print as integers; anything else through `fmt`.
pub fn num_to_string(n: f64, fmt: &str) -> String {
    if n == n.trunc() && n.abs() < 1e16 {
        format!("{}", n as i64)
    } else if n == n.trunc() && n.is_finite() {
        // As gawk: an integral value prints all its digits.
        format!("{n:.0}")
    } else {
        sprintf(fmt, &[Value::Num(n)], "%.6g")
    }
}

/// printf-style formatting of `args` by `fmt`; `convfmt` turns numeric
/// arguments of `%s` into strings.
pub fn sprintf(fmt: &str, args: &[Value], convfmt: &str) -> String {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut args = args.iter();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut spec = Spec::default();
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
        if chars.get(i) == Some(&'*') {
            let w = args.next().map_or(0.0, Value::num) as i64;
            if w < 0 {
                spec.left = true;
            }
            spec.width = w.unsigned_abs() as usize;
            i += 1;
        } else {
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                spec.width = spec.width * 10 + d as usize;
                i += 1;
            }
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0usize;
            if chars.get(i) == Some(&'*') {
                p = args.next().map_or(0.0, Value::num).max(0.0) as usize;
                i += 1;
            } else {
                while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    p = p * 10 + d as usize;
                    i += 1;
                }
            }
            spec.prec = Some(p);
        }
        // Length modifiers mean nothing in awk.
        while matches!(chars.get(i), Some('h' | 'l' | 'L' | 'q' | 'j' | 'z' | 't')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            out.extend(&chars[start..]);
            break;
        };
        i += 1;
        let arg = args.next().cloned().unwrap_or_default();
        let body = match conv {
            'd' | 'i' => int_conv(arg.num(), &spec),
            'o' | 'x' | 'X' | 'u' => unsigned_conv(arg.num(), conv, &spec),
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => float_conv(arg.num(), conv, &spec),
            'c' => {
                let s = match &arg {
                    Value::Num(n) => char::from_u32(*n as u32)
                        .map(String::from)
                        .unwrap_or_default(),
                    v => v
                        .string(convfmt)
                        .chars()
                        .next()
                        .map(String::from)
                        .unwrap_or_default(),
                };
                pad(s, &spec, false)
            }
            's' => {
                let mut s = arg.string(convfmt);
                if let Some(p) = spec.prec {
                    s = s.chars().take(p).collect();
                }
                pad(s, &spec, false)
            }
            _ => {
                // Unknown conversion: printed as written.
                chars[start..i].iter().collect()
            }
        };
        out.push_str(&body);
    }
    out
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    prec: Option<usize>,
}

/// Pads to the width; `numeric` allows zero padding after the sign.
fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let len = s.chars().count();
    if len >= spec.width {
        return s;
    }
    let fill = spec.width - len;
    if spec.left {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let sign_len = if s.starts_with(['-', '+', ' ']) { 1 } else { 0 };
        let sign_len = if s[sign_len..].starts_with("0x") || s[sign_len..].starts_with("0X") {
            sign_len + 2
        } else {
            sign_len
        };
        format!("{}{}{}", &s[..sign_len], "0".repeat(fill), &s[sign_len..])
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign(neg: bool, spec: &Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn int_conv(n: f64, spec: &Spec) -> String {
    if !n.is_finite() {
        return float_conv(n, 'f', spec);
    }
    let t = n.trunc();
    let mut digits = format!("{:.0}", t.abs());
    if let Some(p) = spec.prec {
        if p == 0 && t == 0.0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let s = format!("{}{digits}", sign(t < 0.0, spec));
    pad(s, spec, spec.prec.is_none())
}

fn unsigned_conv(n: f64, conv: char, spec: &Spec) -> String {
    let v = if n < 0.0 { (n as i64) as u64 } else { n as u64 };
    let mut digits = match conv {
        'o' => format!("{v:o}"),
        'x' => format!("{v:x}"),
        'X' => format!("{v:X}"),
        _ => format!("{v}"),
    };
    if let Some(p) = spec.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    if spec.alt && v != 0 {
        match conv {
            'o' if !digits.starts_with('0') => digits.insert(0, '0'),
            'x' => digits.insert_str(0, "0x"),
            'X' => digits.insert_str(0, "0X"),
            _ => {}
        }
    }
    pad(digits, spec, spec.prec.is_none())
}

fn float_conv(n: f64, conv: char, spec: &Spec) -> String {
    let upper = conv.is_ascii_uppercase();
    let neg = n.is_sign_negative() && !n.is_nan();
    let a = n.abs();
    let body = if a.is_infinite() {
        "inf".to_owned()
    } else if a.is_nan() {
        "nan".to_owned()
    } else {
        let p = spec.prec.unwrap_or(6);
        match conv.to_ascii_lowercase() {
            'f' => format!("{a:.p$}"),
            'e' => exp_form(a, p),
            _ => {
                let p = if p == 0 { 1 } else { p };
                let e = exp_form(a, p - 1);
                let x: i32 = e
                    .rsplit_once('e')
                    .and_then(|(_, x)| x.parse().ok())
                    .unwrap_or(0);
                let s = if x < -4 || x >= p as i32 {
                    e
                } else {
                    let fp = (p as i32 - 1 - x).max(0) as usize;
                    format!("{a:.fp$}")
                };
                if spec.alt {
                    s
                } else {
                    strip_zeros(&s)
                }
            }
        }
    };
    let body = if upper { body.to_uppercase() } else { body };
    let s = format!("{}{body}", sign(neg, spec));
    pad(s, spec, a.is_finite())
}

/// `d.ddde+XX` as C prints it (at least two exponent digits).
fn exp_form(a: f64, p: usize) -> String {
    let s = format!("{a:.p$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
}

/// %g drops trailing zeros of the fraction (and a bare point).
fn strip_zeros(s: &str) -> String {
    let (mant, exp) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mant = if mant.contains('.') {
        mant.trim_end_matches('0').trim_end_matches('.')
    } else {
        mant
    };
    format!("{mant}{exp}")
}
