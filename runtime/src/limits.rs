//! Per-instance memory limit. Growth past the limit is refused (memory.grow
//! returns -1, as a C program's malloc expects) and remembered, so a trap that
//! follows (Rust aborts on allocation failure) is reported as out of memory
//! rather than as a bare `unreachable`.

use wasmtime::ResourceLimiter;

/// Table elements a guest may have; generous, but bounded.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    hit: bool,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> Self {
        MemoryLimiter { limit, hit: false }
    }

    /// True once a growth was refused.
    pub fn hit(&self) -> bool {
        self.hit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let over_limit = u64::try_from(desired).map_or(true, |d| d > self.limit);
        let over_max = maximum.is_some_and(|m| desired > m);
        if over_limit {
            self.hit = true;
        }
        Ok(!over_limit && !over_max)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}
