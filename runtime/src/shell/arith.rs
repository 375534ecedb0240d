//! `$(( ))` arithmetic: signed 64-bit integers with C operator precedence,
//! as POSIX specifies (wrapping on overflow, errors for division by zero).

/// Variable access for arithmetic (reading names, assignment operators).
pub trait ArithVars {
    fn get_var(&self, name: &str) -> Option<String>;
    fn set_var(&mut self, name: &str, value: i64) -> Result<(), String>;
}

/// Evaluates an (already expanded) arithmetic expression.
pub fn eval(expr: &str, vars: &mut dyn ArithVars) -> Result<i64, String> {
    let toks = tokenize(expr)?;
    let mut p = Eval {
        toks,
        pos: 0,
        vars,
        depth: 0,
    };
    if p.toks.is_empty() {
        return Ok(0);
    }
    let v = p.expr(false)?;
    if p.pos < p.toks.len() {
        return Err(format!(
            "arithmetic syntax error: unexpected '{}' in '{expr}'",
            p.toks[p.pos].text()
        ));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Name(String),
    Op(&'static str),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Num(n) => n.to_string(),
            Tok::Name(s) => s.clone(),
            Tok::Op(o) => o.to_string(),
        }
    }
}

const OPS: &[&str] = &[
    "<<=", ">>=", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "+=", "-=", "*=", "/=", "%=",
    "&=", "^=", "|=", "+", "-", "*", "/", "%", "<", ">", "&", "^", "|", "!", "~", "?", ":", "=",
    "(", ")",
];

fn parse_number(s: &str) -> Result<i64, String> {
    let bad = || format!("arithmetic: bad number '{s}'");
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16)
            .map(|v| v as i64)
            .map_err(|_| bad());
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8)
            .map(|v| v as i64)
            .map_err(|_| bad());
    }
    s.parse::<u64>().map(|v| v as i64).map_err(|_| bad())
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < cs.len() && cs[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let t: String = cs[st..i].iter().collect();
            out.push(Tok::Num(parse_number(&t)?));
        } else if c == '_' || c.is_ascii_alphabetic() {
            let st = i;
            while i < cs.len() && (cs[i] == '_' || cs[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            out.push(Tok::Name(cs[st..i].iter().collect()));
        } else {
            let rest: String = cs[i..cs.len().min(i + 3)].iter().collect();
            let op = OPS
                .iter()
                .find(|o| rest.starts_with(**o))
                .ok_or_else(|| format!("arithmetic syntax error: unexpected '{c}' in '{s}'"))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct Eval<'a> {
    toks: Vec<Tok>,
    pos: usize,
    vars: &'a mut dyn ArithVars,
    depth: usize,
}

fn binary_prec(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | "<=" | ">" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

fn apply(op: &str, a: i64, b: i64, skip: bool) -> Result<i64, String> {
    Ok(match op {
        "+" => a.wrapping_add(b),
        "-" => a.wrapping_sub(b),
        "*" => a.wrapping_mul(b),
        "/" | "%" if b == 0 => {
            if skip {
                0
            } else {
                return Err("arithmetic: division by zero".into());
            }
        }
        "/" => a.wrapping_div(b),
        "%" => a.wrapping_rem(b),
        "<<" => a.wrapping_shl(b as u32),
        ">>" => a.wrapping_shr(b as u32),
        "<" => (a < b) as i64,
        "<=" => (a <= b) as i64,
        ">" => (a > b) as i64,
        ">=" => (a >= b) as i64,
        "==" => (a == b) as i64,
        "!=" => (a != b) as i64,
        "&" => a & b,
        "^" => a ^ b,
        "|" => a | b,
        "&&" => (a != 0 && b != 0) as i64,
        "||" => (a != 0 || b != 0) as i64,
        _ => return Err(format!("arithmetic: unknown operator '{op}'")),
    })
}

impl Eval<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn var_value(&mut self, name: &str) -> Result<i64, String> {
        match self.vars.get_var(name) {
            None => Ok(0),
            Some(v) if v.trim().is_empty() => Ok(0),
            Some(v) => {
                let t = v.trim();
                let (neg, digits) = match t.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, t.strip_prefix('+').unwrap_or(t)),
                };
                let n = parse_number(digits)
                    .map_err(|_| format!("arithmetic: '{name}' is not a number: '{v}'"))?;
                Ok(if neg { n.wrapping_neg() } else { n })
            }
        }
    }

    /// assignment / conditional expression
    fn expr(&mut self, skip: bool) -> Result<i64, String> {
        self.depth += 1;
        if self.depth > 200 {
            return Err("arithmetic: expression nested too deeply".into());
        }
        let r = super::nesting::grow(|| self.expr_inner(skip));
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, skip: bool) -> Result<i64, String> {
        if let (Some(Tok::Name(name)), Some(Tok::Op(op))) = (
            self.toks.get(self.pos).cloned(),
            self.toks.get(self.pos + 1).cloned(),
        ) {
            if op == "=" || (op.ends_with('=') && !matches!(op, "==" | "!=" | "<=" | ">=")) {
                self.pos += 2;
                let rhs = self.expr(skip)?;
                let v = if op == "=" {
                    rhs
                } else {
                    let cur = self.var_value(&name)?;
                    apply(&op[..op.len() - 1], cur, rhs, skip)?
                };
                if !skip {
                    self.vars.set_var(&name, v)?;
                }
                return Ok(v);
            }
        }
        let cond = self.binary(1, skip)?;
        if self.peek_op() == Some("?") {
            self.pos += 1;
            let a = self.expr(skip || cond == 0)?;
            if self.peek_op() != Some(":") {
                return Err("arithmetic syntax error: expected ':' after '?'".into());
            }
            self.pos += 1;
            let b = self.expr(skip || cond != 0)?;
            return Ok(if cond != 0 { a } else { b });
        }
        Ok(cond)
    }

    fn binary(&mut self, min_prec: u8, skip: bool) -> Result<i64, String> {
        let mut lhs = self.unary(skip)?;
        while let Some(op) = self.peek_op() {
            let Some(prec) = binary_prec(op) else { break };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let rhs_skip = skip || (op == "&&" && lhs == 0) || (op == "||" && lhs != 0);
            let rhs = self.binary(prec + 1, rhs_skip)?;
            lhs = apply(op, lhs, rhs, rhs_skip)?;
        }
        Ok(lhs)
    }

    fn unary(&mut self, skip: bool) -> Result<i64, String> {
        self.depth += 1;
        if self.depth > 200 {
            return Err("arithmetic: expression nested too deeply".into());
        }
        let r = super::nesting::grow(|| self.unary_inner(skip));
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self, skip: bool) -> Result<i64, String> {
        match self.peek().cloned() {
            Some(Tok::Op(op @ ("-" | "+" | "!" | "~"))) => {
                self.pos += 1;
                let v = self.unary(skip)?;
                Ok(match op {
                    "-" => v.wrapping_neg(),
                    "+" => v,
                    "!" => (v == 0) as i64,
                    _ => !v,
                })
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let v = self.expr(skip)?;
                if self.peek_op() != Some(")") {
                    return Err("arithmetic syntax error: expected ')'".into());
                }
                self.pos += 1;
                Ok(v)
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Tok::Name(name)) => {
                self.pos += 1;
                self.var_value(&name)
            }
            Some(t) => Err(format!(
                "arithmetic syntax error: unexpected '{}'",
                t.text()
            )),
            None => Err("arithmetic syntax error: expression expected".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct V(HashMap<String, String>);
    impl ArithVars for V {
        fn get_var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn set_var(&mut self, name: &str, value: i64) -> Result<(), String> {
            self.0.insert(name.into(), value.to_string());
            Ok(())
        }
    }

    fn ev(s: &str) -> Result<i64, String> {
        let mut v = V(HashMap::from([("x".to_string(), "5".to_string())]));
        eval(s, &mut v)
    }

    #[test]
    fn precedence_and_ops() {
        assert_eq!(ev("1 + 2 * 3"), Ok(7));
        assert_eq!(ev("(1 + 2) * 3"), Ok(9));
        assert_eq!(ev("7 / 2 + 7 % 2"), Ok(4));
        assert_eq!(ev("-7 / 2"), Ok(-3));
        assert_eq!(ev("x > 3 && x < 10"), Ok(1));
        assert_eq!(ev("!x || 0"), Ok(0));
        assert_eq!(ev("x == 5 ? 10 : 20"), Ok(10));
        assert_eq!(ev("0x10 + 010"), Ok(24));
        assert_eq!(ev("1 << 4 | 1"), Ok(17));
        assert_eq!(ev("x += 2"), Ok(7));
        assert_eq!(ev("0 && 1 / 0"), Ok(0));
    }

    #[test]
    fn errors() {
        assert!(ev("1 / 0").is_err());
        assert!(ev("1 +").is_err());
        assert!(ev("(1").is_err());
        assert!(ev("1 @ 2").is_err());
    }
}
