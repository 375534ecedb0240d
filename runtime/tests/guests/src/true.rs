//! The smallest useful command: does nothing and exits 0 (the benchmark's
//! "trivial command").
fn main() {}
