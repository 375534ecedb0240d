//! The Dockerfile front end: parser (BuildKit-compatible AST), word
//! expansion, and the typed instructions the planner consumes.
pub mod expand;
