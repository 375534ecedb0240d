//! The one wasmtime engine kiln uses, and the fingerprint of its settings
//! that keys the module cache.

use crate::error::RuntimeError;
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use wasmtime::{Config, Engine, OptLevel, Strategy};

/// The wasmtime version kiln is pinned to; part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Largest wasm call stack a guest may use before a stack-overflow trap.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Builds the engine: Cranelift, NaN canonicalisation and deterministic
/// relaxed SIMD (a float result must not depend on the host CPU), no guest
/// threads, and epoch interruption for step timeouts.
pub fn build_engine() -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .parallel_compilation(true);
    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// A digest of everything that makes a compiled module usable by `engine`:
/// the wasmtime version, the settings wasmtime itself checks on deserialize,
/// and a format tag of kiln's own cache.
pub fn engine_fingerprint(engine: &Engine) -> [u8; 32] {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(b"kiln-module-cache-v1\0");
    hasher.0.update(WASMTIME_VERSION.as_bytes());
    hasher.0.update(b"\0");
    hasher.0.update(std::env::consts::ARCH.as_bytes());
    hasher.0.update(b"\0");
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// Feeds `Hash` impls into SHA-256 so the fingerprint is a full digest, not
/// a 64-bit `Hasher::finish`.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_le_bytes(b)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_depends_on_config() {
        let a = build_engine().unwrap();
        let b = build_engine().unwrap();
        assert_eq!(engine_fingerprint(&a), engine_fingerprint(&b));
        let mut other = Config::new();
        other
            .cranelift_nan_canonicalization(false)
            .epoch_interruption(true);
        let c = Engine::new(&other).unwrap();
        assert_ne!(engine_fingerprint(&a), engine_fingerprint(&c));
    }
}
