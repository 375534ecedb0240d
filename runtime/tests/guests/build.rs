//! A 64 MiB shadow stack (in linear memory) for the guests, so deep recursion
//! exhausts wasmtime's native wasm stack first and the test sees a real
//! stack-overflow trap rather than a shadow-stack underflow.
fn main() {
    println!("cargo:rustc-link-arg=-zstack-size=67108864");
}
