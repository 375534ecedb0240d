//! Stages and steps: from typed instructions to what must be built.

pub mod args;
pub mod platform;
pub mod stages;
