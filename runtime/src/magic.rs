//! Tells a WebAssembly module from the other files a base image holds, so a
//! RUN that names a Linux binary fails with a message that says why.

use crate::error::RunError;

/// `\0asm` followed by version 1, layer 0: a core module.
const CORE_MODULE: [u8; 8] = *b"\0asm\x01\0\0\0";

/// Checks that `bytes` are a core WebAssembly module; `program` names the
/// file in the error.
pub fn check_wasm(program: &str, bytes: &[u8]) -> Result<(), RunError> {
    if bytes.starts_with(&CORE_MODULE) {
        return Ok(());
    }
    let what = describe(bytes);
    Err(RunError::NotWasm {
        program: program.to_owned(),
        what: what.to_owned(),
    })
}

/// True when the file starts with the WebAssembly magic (any version), the
/// test the shell's PATH lookup uses.
pub fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

fn describe(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\0asm") {
        if bytes.get(6..8) == Some(&[1, 0]) {
            "is a WebAssembly component, not a core module"
        } else {
            "is a WebAssembly binary of an unsupported version"
        }
    } else if bytes.starts_with(b"\x7fELF") {
        "is a native ELF executable (a Linux binary), not WebAssembly"
    } else if bytes.starts_with(b"#!") {
        "is a script with a #! line, not a WebAssembly module"
    } else if bytes.starts_with(b"MZ") {
        "is a Windows executable, not WebAssembly"
    } else if bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
    {
        "is a Mach-O executable, not WebAssembly"
    } else if bytes.is_empty() {
        "is an empty file, not WebAssembly"
    } else {
        "is not a WebAssembly module"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_core_module_header() {
        assert!(check_wasm("x", b"\0asm\x01\0\0\0").is_ok());
    }

    #[test]
    fn elf_is_named_and_explained() {
        let err = check_wasm("/bin/ls", b"\x7fELF\x02\x01\x01").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/bin/ls: "), "{msg}");
        assert!(msg.contains("ELF"), "{msg}");
        assert!(msg.contains("kiln runs WebAssembly programs only"), "{msg}");
    }

    #[test]
    fn component_and_other_files_are_refused() {
        let comp = check_wasm("c", b"\0asm\x0d\0\x01\0")
            .unwrap_err()
            .to_string();
        assert!(comp.contains("component"), "{comp}");
        for bytes in [&b"#!/bin/sh\n"[..], b"", b"hello", b"MZ\x90\0"] {
            assert!(check_wasm("f", bytes).is_err());
        }
        assert!(is_wasm(b"\0asm\x0d\0\x01\0"));
        assert!(!is_wasm(b"\x7fELF"));
    }
}
