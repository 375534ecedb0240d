//! Executing a build: stages in dependency order, COPY/ADD on the host,
//! metadata instructions, RUN later through kiln-runtime.

pub mod options;
