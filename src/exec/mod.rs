//! Executing steps: COPY/ADD on the host, metadata instructions, RUN later.

pub mod copy;
