//! Tells the code whether it is compiled with optimizations: `LocalEmbedder` only
//! picks its own encoder (`fast_bert`) when it is, because unoptimized it is far
//! slower than candle's (which, as a dependency, is optimized even in dev builds).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(optimized)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("OPT_LEVEL").is_ok_and(|level| level != "0") {
        println!("cargo::rustc-cfg=optimized");
    }
}
