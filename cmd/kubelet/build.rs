//! Links the kubelet as a position-dependent executable (`-no-pie`), as Go links upstream's.
//!
//! A PIE's `.data.rel.ro` (vtables, tables of pointers: ~400 KiB here) must be relocated by
//! the dynamic loader at every start, which writes every page of it: private, anonymous
//! memory for the process's whole life. Linked at a fixed address, those pointers are final
//! in the file, the pages stay clean and shared with the page cache, and only the ones used
//! are read in (docs/benchmarks.md, sixteenth session).

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    // Only where the toolchain links with a gcc-style driver; other targets keep the default.
    if target.contains("linux-gnu") {
        println!("cargo:rustc-link-arg-bin=kubelet=-no-pie");
    }
}
