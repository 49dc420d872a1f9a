//! Gives libmdraid.so a SONAME carrying the major version (libmdraid.so.0 for 0.x), so C
//! programs link against the ABI generation, not a file name.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmdraid.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
