//! The `kiln` command line.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    eprintln!("kiln: not implemented yet");
    ExitCode::FAILURE
}
