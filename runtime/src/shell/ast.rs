//! The syntax tree of a POSIX sh script, as the parser builds it and the
//! interpreter walks it. Words keep their quoting so expansion can apply
//! field splitting and globbing only where POSIX says.

use std::sync::Arc;

/// A whole script: a list of and-or lists.
pub type Program = List;

/// Commands separated by `;`, `&` or newlines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List(pub Vec<AndOr>);

/// `p1 && p2 || p3`: the first pipeline and the rest with their operator.
#[derive(Debug, Clone, PartialEq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(AndOrOp, Pipeline)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AndOrOp {
    And,
    Or,
}

/// `! a | b | c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub negated: bool,
    pub commands: Vec<Command>,
    /// 1-based source line, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Simple(SimpleCommand),
    Compound(Box<Compound>, Vec<Redirect>),
    FuncDef(String, Arc<Command>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimpleCommand {
    pub assigns: Vec<(String, Word)>,
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Compound {
    Brace(List),
    Subshell(List),
    If {
        branches: Vec<(List, List)>,
        otherwise: Option<List>,
    },
    For {
        var: String,
        items: Option<Vec<Word>>,
        body: List,
    },
    While {
        until: bool,
        cond: List,
        body: List,
    },
    Case {
        word: Word,
        arms: Vec<CaseArm>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseArm {
    pub patterns: Vec<Word>,
    pub body: List,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// The file descriptor redirected (defaults applied by the parser).
    pub fd: u32,
    pub op: RedirOp,
    pub target: RedirTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    Read,
    /// `>` and `>|`
    Write,
    /// `>>`
    Append,
    /// `<>`
    ReadWrite,
    /// `<&`
    DupIn,
    /// `>&`
    DupOut,
    /// `<<` and `<<-`
    HereDoc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedirTarget {
    Word(Word),
    /// A here-document body; `Word` parts are quoted literals when the
    /// delimiter was quoted (no expansion).
    HereDoc(Word),
}

/// One shell word: a sequence of parts, each remembering its quoting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Word(pub Vec<WordPart>);

#[derive(Debug, Clone, PartialEq)]
pub enum WordPart {
    /// Unquoted literal text (subject to globbing, not to field splitting).
    Lit(String),
    /// Quoted literal text (single quotes, backslash escapes, inside double quotes).
    Quoted(String),
    /// `"..."`: its parts are expanded without field splitting or globbing.
    DQuoted(Vec<WordPart>),
    Param(Box<Param>),
    CmdSub(Arc<List>),
    /// `$(( ))`: the expression text is expanded, then evaluated.
    Arith(Word),
    /// Unquoted `~` at the start of a word.
    Tilde(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub op: ParamOp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParamOp {
    Plain,
    Length,
    /// `${X-w}` / `${X:-w}`
    Default(bool, Word),
    /// `${X=w}` / `${X:=w}`
    Assign(bool, Word),
    /// `${X?w}` / `${X:?w}`
    Error(bool, Word),
    /// `${X+w}` / `${X:+w}`
    Alt(bool, Word),
    /// `${X#p}` (false) / `${X##p}` (true)
    TrimPrefix(bool, Word),
    /// `${X%p}` (false) / `${X%%p}` (true)
    TrimSuffix(bool, Word),
}

impl Word {
    /// The literal text when the word has no expansions and no quotes.
    pub fn as_plain_literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [WordPart::Lit(s)] => Some(s),
            _ => None,
        }
    }
}
