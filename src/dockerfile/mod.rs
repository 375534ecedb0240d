//! The Dockerfile front end: parser (BuildKit-compatible AST), word
//! expansion, and the typed instructions the planner consumes.

pub mod expand;

mod directives;
mod dump;
mod flags;
mod heredoc;
mod line_parsers;
pub mod parser;
mod quote;

pub mod history;
pub mod instructions;

pub use dump::dump;
pub use parser::{parse, Ast, Directive, Heredoc, Node, ParseError, Warning};
