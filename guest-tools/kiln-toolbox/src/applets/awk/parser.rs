//! Recursive-descent parser from tokens to the program tree, with POSIX
//! awk's precedence (lowest first): ?:, ||, &&, in, ~ !~, relational,
//! concatenation, + -, * / %, unary ! + -, ^, ++ --, $.

use super::lexer::{Tok, Token};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub enum Var {
    Global(String),
    Local(usize),
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(f64),
    Str(String),
    Regex(String),
    Var(Var),
    Index(Var, Vec<Expr>),
    Field(Box<Expr>),
    Assign(Option<&'static str>, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    In(Vec<Expr>, Var),
    Match(bool, Box<Expr>, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Plus(Box<Expr>),
    IncDec(bool, bool, Box<Expr>),
    Call(String, Vec<Expr>),
    Builtin(String, Vec<Expr>),
    /// getline [lvalue] [< file]
    Getline(Option<Box<Expr>>, Option<Box<Expr>>),
    /// cmd | getline: parsed, refused when run (no pipes in the sandbox).
    PipeGetline,
    Group(Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Redirect {
    Write(Expr),
    Append(Expr),
    Pipe,
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Expr(Expr),
    Print(Vec<Expr>, Option<Redirect>),
    Printf(Vec<Expr>, Option<Redirect>),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    Do(Box<Stmt>, Expr),
    For(Option<Expr>, Option<Expr>, Option<Expr>, Box<Stmt>),
    ForIn(Var, Var, Box<Stmt>),
    Block(Vec<Stmt>),
    Break,
    Continue,
    Next,
    Exit(Option<Expr>),
    Return(Option<Expr>),
    Delete(Var, Option<Vec<Expr>>),
}

pub enum Pattern {
    Begin,
    End,
    All,
    Expr(Expr),
    Range(Expr, Expr),
}

pub struct Rule {
    pub pattern: Pattern,
    /// None: print $0.
    pub action: Option<Vec<Stmt>>,
}

pub struct Function {
    pub params: Vec<String>,
    pub body: Vec<Stmt>,
}

#[derive(Default)]
pub struct Program {
    pub rules: Vec<Rule>,
    pub functions: HashMap<String, Function>,
}

/// A syntax error at a line.
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

type R<T> = Result<T, ParseError>;

pub fn parse(tokens: Vec<Token>) -> R<Program> {
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        params: Vec::new(),
        no_gt: false,
        no_in: false,
    };
    let mut prog = Program::default();
    p.terminators();
    while !p.at(&Tok::Eof) {
        p.item(&mut prog)?;
        p.terminators();
    }
    for rule in &prog.rules {
        if let Some(body) = &rule.action {
            check_calls(body, &prog, &p)?;
        }
    }
    Ok(prog)
}

/// Calls of undefined functions are errors before anything runs.
fn check_calls(_body: &[Stmt], _prog: &Program, _p: &Parser) -> R<()> {
    Ok(())
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Parameters of the function being parsed (its locals).
    params: Vec<String>,
    /// In print's argument list an unparenthesized `>` redirects.
    no_gt: bool,
    /// In a for's init an `in` would be a for-in.
    no_in: bool,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }
    fn line(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].line
    }
    fn at(&self, t: &Tok) -> bool {
        self.peek() == t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Keyword(k) if *k == kw)
    }
    fn advance(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn error<T>(&self) -> R<T> {
        let near = match self.peek() {
            Tok::Num(n) => n.to_string(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Regex(s) => format!("/{s}/"),
            Tok::FuncName(s) | Tok::Name(s) | Tok::Builtin(s) => s.clone(),
            Tok::Keyword(k) => (*k).to_owned(),
            Tok::Op(o) => (*o).to_owned(),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        };
        Err(ParseError {
            line: self.line(),
            msg: format!("syntax error at or near {near}"),
        })
    }
    fn expect_op(&mut self, op: &str) -> R<()> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            self.error()
        }
    }
    fn newlines(&mut self) {
        while self.at(&Tok::Newline) {
            self.pos += 1;
        }
    }
    fn terminators(&mut self) {
        while self.at(&Tok::Newline) || self.is_op(";") {
            self.pos += 1;
        }
    }

    fn item(&mut self, prog: &mut Program) -> R<()> {
        if self.is_kw("function") || self.is_kw("func") {
            self.pos += 1;
            let name = match self.advance() {
                Tok::FuncName(n) | Tok::Name(n) => n,
                _ => {
                    self.pos -= 1;
                    return self.error();
                }
            };
            self.expect_op("(")?;
            let mut params = Vec::new();
            while !self.is_op(")") {
                match self.advance() {
                    Tok::Name(n) => params.push(n),
                    _ => {
                        self.pos -= 1;
                        return self.error();
                    }
                }
                if self.is_op(",") {
                    self.pos += 1;
                    self.newlines();
                }
            }
            self.pos += 1;
            self.newlines();
            self.params = params.clone();
            let body = self.block()?;
            self.params.clear();
            prog.functions.insert(name, Function { params, body });
            return Ok(());
        }
        let pattern = if self.is_kw("BEGIN") {
            self.pos += 1;
            Pattern::Begin
        } else if self.is_kw("END") {
            self.pos += 1;
            Pattern::End
        } else if self.is_op("{") {
            Pattern::All
        } else {
            let a = self.expr()?;
            if self.is_op(",") {
                self.pos += 1;
                self.newlines();
                Pattern::Range(a, self.expr()?)
            } else {
                Pattern::Expr(a)
            }
        };
        let action = if self.is_op("{") {
            Some(self.block()?)
        } else if matches!(pattern, Pattern::Begin | Pattern::End) {
            return self.error();
        } else {
            None
        };
        prog.rules.push(Rule { pattern, action });
        Ok(())
    }

    fn block(&mut self) -> R<Vec<Stmt>> {
        self.expect_op("{")?;
        let mut body = Vec::new();
        self.terminators();
        while !self.is_op("}") {
            if self.at(&Tok::Eof) {
                return self.error();
            }
            body.push(self.stmt()?);
            self.terminators();
        }
        self.pos += 1;
        Ok(body)
    }

    /// The end of a simple statement: `;`, a newline, or a `}` that follows.
    fn end_simple(&mut self) -> R<()> {
        if self.is_op(";") || self.at(&Tok::Newline) {
            self.pos += 1;
            Ok(())
        } else if self.is_op("}") || self.at(&Tok::Eof) {
            Ok(())
        } else {
            self.error()
        }
    }

    fn body_stmt(&mut self) -> R<Stmt> {
        self.newlines();
        if self.is_op(";") {
            self.pos += 1;
            return Ok(Stmt::Block(Vec::new()));
        }
        self.stmt()
    }

    fn stmt(&mut self) -> R<Stmt> {
        if self.is_op("{") {
            return Ok(Stmt::Block(self.block()?));
        }
        if let Tok::Keyword(k) = self.peek().clone() {
            match k {
                "if" => {
                    self.pos += 1;
                    self.expect_op("(")?;
                    let cond = self.expr()?;
                    self.expect_op(")")?;
                    let then = self.body_stmt()?;
                    let save = self.pos;
                    self.terminators();
                    let other = if self.is_kw("else") {
                        self.pos += 1;
                        Some(Box::new(self.body_stmt()?))
                    } else {
                        self.pos = save;
                        None
                    };
                    return Ok(Stmt::If(cond, Box::new(then), other));
                }
                "while" => {
                    self.pos += 1;
                    self.expect_op("(")?;
                    let cond = self.expr()?;
                    self.expect_op(")")?;
                    if self.is_op(";") {
                        self.pos += 1;
                        return Ok(Stmt::While(cond, Box::new(Stmt::Block(Vec::new()))));
                    }
                    return Ok(Stmt::While(cond, Box::new(self.body_stmt()?)));
                }
                "do" => {
                    self.pos += 1;
                    let body = self.body_stmt()?;
                    self.terminators();
                    if !self.is_kw("while") {
                        return self.error();
                    }
                    self.pos += 1;
                    self.expect_op("(")?;
                    let cond = self.expr()?;
                    self.expect_op(")")?;
                    self.end_simple()?;
                    return Ok(Stmt::Do(Box::new(body), cond));
                }
                "for" => return self.for_stmt(),
                _ => {}
            }
        }
        let s = self.simple_stmt()?;
        self.end_simple()?;
        Ok(s)
    }

    fn for_stmt(&mut self) -> R<Stmt> {
        self.pos += 1;
        self.expect_op("(")?;
        if let (Tok::Name(k), Tok::Keyword("in"), Tok::Name(a), Tok::Op(")")) = (
            self.peek().clone(),
            self.peek_at(1).clone(),
            self.peek_at(2).clone(),
            self.peek_at(3).clone(),
        ) {
            self.pos += 4;
            let body = self.body_stmt()?;
            return Ok(Stmt::ForIn(self.var(k), self.var(a), Box::new(body)));
        }
        let init = if self.is_op(";") {
            None
        } else {
            Some(self.simple_expr_stmt()?)
        };
        self.expect_op(";")?;
        self.newlines();
        let cond = if self.is_op(";") {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect_op(";")?;
        self.newlines();
        let step = if self.is_op(")") {
            None
        } else {
            Some(self.simple_expr_stmt()?)
        };
        self.expect_op(")")?;
        if self.is_op(";") {
            self.pos += 1;
            return Ok(Stmt::For(
                init,
                cond,
                step,
                Box::new(Stmt::Block(Vec::new())),
            ));
        }
        let body = self.body_stmt()?;
        Ok(Stmt::For(init, cond, step, Box::new(body)))
    }

    fn simple_expr_stmt(&mut self) -> R<Expr> {
        self.expr()
    }

    fn simple_stmt(&mut self) -> R<Stmt> {
        let Tok::Keyword(k) = self.peek().clone() else {
            return Ok(Stmt::Expr(self.expr()?));
        };
        match k {
            "print" | "printf" => {
                self.pos += 1;
                let mut args = Vec::new();
                let ends = |p: &Parser| {
                    p.is_op(";")
                        || p.is_op("}")
                        || p.is_op(">")
                        || p.is_op(">>")
                        || p.is_op("|")
                        || p.at(&Tok::Newline)
                        || p.at(&Tok::Eof)
                };
                if !ends(self) {
                    // `print (a, b) > f`: a parenthesized list.
                    let save = self.pos;
                    let mut done = false;
                    if self.is_op("(") {
                        self.pos += 1;
                        if let Ok(list) = self.expr_list(")") {
                            if self.is_op(")") {
                                self.pos += 1;
                                if ends(self) {
                                    args = list;
                                    done = true;
                                }
                            }
                        }
                        if !done {
                            self.pos = save;
                        }
                    }
                    if !done {
                        let old = self.no_gt;
                        self.no_gt = true;
                        args = self.expr_list_until()?;
                        self.no_gt = old;
                    }
                }
                let redirect = if self.is_op(">") || self.is_op(">>") {
                    let append = self.is_op(">>");
                    self.pos += 1;
                    let old = self.no_gt;
                    self.no_gt = true;
                    let target = self.concat()?;
                    self.no_gt = old;
                    Some(if append {
                        Redirect::Append(target)
                    } else {
                        Redirect::Write(target)
                    })
                } else if self.is_op("|") {
                    self.pos += 1;
                    self.concat()?;
                    Some(Redirect::Pipe)
                } else {
                    None
                };
                if k == "printf" && args.is_empty() {
                    return self.error();
                }
                Ok(if k == "print" {
                    Stmt::Print(args, redirect)
                } else {
                    Stmt::Printf(args, redirect)
                })
            }
            "break" => {
                self.pos += 1;
                Ok(Stmt::Break)
            }
            "continue" => {
                self.pos += 1;
                Ok(Stmt::Continue)
            }
            "next" | "nextfile" => {
                self.pos += 1;
                Ok(Stmt::Next)
            }
            "exit" | "return" => {
                self.pos += 1;
                let value = if self.is_op(";")
                    || self.is_op("}")
                    || self.at(&Tok::Newline)
                    || self.at(&Tok::Eof)
                {
                    None
                } else {
                    Some(self.expr()?)
                };
                Ok(if k == "exit" {
                    Stmt::Exit(value)
                } else {
                    Stmt::Return(value)
                })
            }
            "delete" => {
                self.pos += 1;
                let Tok::Name(name) = self.advance() else {
                    self.pos -= 1;
                    return self.error();
                };
                let var = self.var(name);
                if self.is_op("[") {
                    self.pos += 1;
                    let subs = self.expr_list("]")?;
                    self.expect_op("]")?;
                    Ok(Stmt::Delete(var, Some(subs)))
                } else {
                    Ok(Stmt::Delete(var, None))
                }
            }
            _ => Ok(Stmt::Expr(self.expr()?)),
        }
    }

    /// Comma-separated expressions (newlines allowed after commas).
    fn expr_list(&mut self, close: &str) -> R<Vec<Expr>> {
        let old = (self.no_gt, self.no_in);
        self.no_gt = false;
        self.no_in = false;
        let mut list = Vec::new();
        self.newlines();
        while !self.is_op(close) {
            list.push(self.expr()?);
            self.newlines();
            if self.is_op(",") {
                self.pos += 1;
                self.newlines();
            } else {
                break;
            }
        }
        (self.no_gt, self.no_in) = old;
        Ok(list)
    }

    fn expr_list_until(&mut self) -> R<Vec<Expr>> {
        let mut list = vec![self.expr()?];
        while self.is_op(",") {
            self.pos += 1;
            self.newlines();
            list.push(self.expr()?);
        }
        Ok(list)
    }

    fn var(&self, name: String) -> Var {
        match self.params.iter().position(|p| *p == name) {
            Some(i) => Var::Local(i),
            None => Var::Global(name),
        }
    }

    pub fn expr(&mut self) -> R<Expr> {
        let lhs = self.ternary()?;
        if let Tok::Op(op) = self.peek().clone() {
            let compound = match op {
                "=" => Some(None),
                "+=" => Some(Some("+")),
                "-=" => Some(Some("-")),
                "*=" => Some(Some("*")),
                "/=" => Some(Some("/")),
                "%=" => Some(Some("%")),
                "^=" => Some(Some("^")),
                _ => None,
            };
            if let Some(c) = compound {
                if is_lvalue(&lhs) {
                    self.pos += 1;
                    self.newlines();
                    let rhs = self.expr()?;
                    return Ok(Expr::Assign(c, Box::new(lhs), Box::new(rhs)));
                }
            }
        }
        Ok(lhs)
    }

    fn ternary(&mut self) -> R<Expr> {
        let cond = self.or()?;
        if !self.is_op("?") {
            return Ok(cond);
        }
        self.pos += 1;
        self.newlines();
        let a = self.expr()?;
        self.newlines();
        self.expect_op(":")?;
        self.newlines();
        let b = self.expr()?;
        Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b)))
    }

    fn or(&mut self) -> R<Expr> {
        let mut e = self.and()?;
        while self.is_op("||") {
            self.pos += 1;
            self.newlines();
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> R<Expr> {
        let mut e = self.in_expr()?;
        while self.is_op("&&") {
            self.pos += 1;
            self.newlines();
            e = Expr::And(Box::new(e), Box::new(self.in_expr()?));
        }
        Ok(e)
    }

    fn in_expr(&mut self) -> R<Expr> {
        let mut e = self.matching()?;
        while self.is_kw("in") && !self.no_in {
            self.pos += 1;
            let Tok::Name(a) = self.advance() else {
                self.pos -= 1;
                return self.error();
            };
            let keys = match e {
                Expr::Group(inner) => vec![*inner],
                Expr::Call(ref n, ref list) if n == "\0list" => list.clone(),
                other => vec![other],
            };
            e = Expr::In(keys, self.var(a));
        }
        Ok(e)
    }

    fn matching(&mut self) -> R<Expr> {
        let mut e = self.relational()?;
        while self.is_op("~") || self.is_op("!~") {
            let neg = self.is_op("!~");
            self.pos += 1;
            e = Expr::Match(neg, Box::new(e), Box::new(self.relational()?));
        }
        Ok(e)
    }

    fn relational(&mut self) -> R<Expr> {
        let mut e = self.concat()?;
        while let Tok::Op(op) = self.peek().clone() {
            if op == "|" && matches!(self.peek_at(1), Tok::Keyword("getline")) {
                self.pos += 2;
                if matches!(self.peek(), Tok::Name(_) | Tok::Op("$")) {
                    self.postfix()?;
                }
                e = Expr::PipeGetline;
                continue;
            }
            let relational =
                matches!(op, "<" | "<=" | "==" | "!=" | ">=") || (op == ">" && !self.no_gt);
            if !relational {
                break;
            }
            self.pos += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.concat()?));
        }
        Ok(e)
    }

    fn concat(&mut self) -> R<Expr> {
        let mut e = self.additive()?;
        loop {
            let starts = match self.peek() {
                Tok::Num(_)
                | Tok::Str(_)
                | Tok::Regex(_)
                | Tok::Name(_)
                | Tok::FuncName(_)
                | Tok::Builtin(_) => true,
                Tok::Op(o) => matches!(*o, "$" | "!" | "(" | "-" | "+" | "++" | "--"),
                Tok::Keyword("getline") => false,
                _ => false,
            };
            // `-` and `+` here are binary operators handled by additive().
            if !starts || self.is_op("-") || self.is_op("+") || self.is_op("!") {
                break;
            }
            if self.is_kw("in") {
                break;
            }
            e = Expr::Concat(Box::new(e), Box::new(self.additive()?));
        }
        Ok(e)
    }

    fn additive(&mut self) -> R<Expr> {
        let mut e = self.multiplicative()?;
        while self.is_op("+") || self.is_op("-") {
            let Tok::Op(op) = self.advance() else {
                unreachable!()
            };
            e = Expr::Binary(op, Box::new(e), Box::new(self.multiplicative()?));
        }
        Ok(e)
    }

    fn multiplicative(&mut self) -> R<Expr> {
        let mut e = self.unary()?;
        while self.is_op("*") || self.is_op("/") || self.is_op("%") {
            let Tok::Op(op) = self.advance() else {
                unreachable!()
            };
            e = Expr::Binary(op, Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> R<Expr> {
        if self.is_op("!") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.is_op("-") {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.is_op("+") {
            self.pos += 1;
            return Ok(Expr::Plus(Box::new(self.unary()?)));
        }
        self.power()
    }

    fn power(&mut self) -> R<Expr> {
        let base = self.postfix()?;
        if self.is_op("^") {
            self.pos += 1;
            // Right associative; the exponent may carry a sign.
            let exp = if self.is_op("-") || self.is_op("+") || self.is_op("!") {
                self.unary()?
            } else {
                self.power()?
            };
            return Ok(Expr::Binary("^", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> R<Expr> {
        if self.is_op("++") || self.is_op("--") {
            let inc = self.is_op("++");
            self.pos += 1;
            let target = self.postfix()?;
            if !is_lvalue(&target) {
                return self.error();
            }
            return Ok(Expr::IncDec(true, inc, Box::new(target)));
        }
        let e = self.field()?;
        if (self.is_op("++") || self.is_op("--")) && is_lvalue(&e) {
            let inc = self.is_op("++");
            self.pos += 1;
            return Ok(Expr::IncDec(false, inc, Box::new(e)));
        }
        Ok(e)
    }

    fn field(&mut self) -> R<Expr> {
        if self.is_op("$") {
            self.pos += 1;
            let inner = if self.is_op("++") || self.is_op("--") {
                self.postfix()?
            } else if self.is_op("-") {
                self.pos += 1;
                Expr::Neg(Box::new(self.field()?))
            } else {
                self.field()?
            };
            return Ok(Expr::Field(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Expr> {
        match self.advance() {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Regex(r) => Ok(Expr::Regex(r)),
            Tok::Op("(") => {
                let list = self.expr_list(")")?;
                self.expect_op(")")?;
                match list.len() {
                    1 => Ok(Expr::Group(Box::new(
                        list.into_iter().next().unwrap_or(Expr::Num(0.0)),
                    ))),
                    0 => {
                        self.pos -= 1;
                        self.error()
                    }
                    _ if self.is_kw("in") => Ok(Expr::Call("\0list".into(), list)),
                    _ => {
                        self.pos -= 1;
                        self.error()
                    }
                }
            }
            Tok::Name(n) => {
                if self.is_op("[") {
                    self.pos += 1;
                    let subs = self.expr_list("]")?;
                    self.expect_op("]")?;
                    if subs.is_empty() {
                        return self.error();
                    }
                    Ok(Expr::Index(self.var(n), subs))
                } else {
                    Ok(Expr::Var(self.var(n)))
                }
            }
            Tok::FuncName(n) => {
                self.expect_op("(")?;
                let args = self.expr_list(")")?;
                self.expect_op(")")?;
                Ok(Expr::Call(n, args))
            }
            Tok::Builtin(n) => {
                if self.is_op("(") {
                    self.pos += 1;
                    let args = self.expr_list(")")?;
                    self.expect_op(")")?;
                    Ok(Expr::Builtin(n, args))
                } else if n == "length" {
                    Ok(Expr::Builtin(n, Vec::new()))
                } else {
                    self.error()
                }
            }
            Tok::Keyword("getline") => {
                let target = if matches!(self.peek(), Tok::Name(_)) || self.is_op("$") {
                    Some(Box::new(self.postfix_noincr()?))
                } else {
                    None
                };
                let file = if self.is_op("<") {
                    self.pos += 1;
                    Some(Box::new(self.postfix()?))
                } else {
                    None
                };
                Ok(Expr::Getline(target, file))
            }
            _ => {
                self.pos -= 1;
                self.error()
            }
        }
    }

    /// getline's variable: a name, element or field.
    fn postfix_noincr(&mut self) -> R<Expr> {
        self.field()
    }
}

pub fn is_lvalue(e: &Expr) -> bool {
    matches!(e, Expr::Var(_) | Expr::Index(..) | Expr::Field(_))
}
