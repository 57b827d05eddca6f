//! Builds the eBPF classifier (`tcpeek-ebpf`) for `bpfel-unknown-none` with
//! aya-build and leaves the object in `OUT_DIR`, where
//! `src/capture/ebpf.rs` embeds it with `include_bytes_aligned!`.
//!
//! The bpf target needs Debian's rustc-web (prebuilt `core` for bpf) linked
//! into rustup as the `debian-bpf` toolchain, and bpf-linker: both are
//! installed by `scripts/setup-ebpf.sh`. `RUSTC_BOOTSTRAP` for the two eBPF
//! crates comes from `.cargo/config.toml`.

/// An already built classifier object to embed instead of building one:
/// for machines without the bpf toolchain (packaging) and for mutation
/// testing, which rebuilds tcpeek for every mutant of the shared crate and
/// never loads the object.
const PREBUILT_ENV: &str = "TCPEEK_EBPF_OBJECT";

fn main() -> aya_build::Result<()> {
    println!("cargo:rerun-if-env-changed={PREBUILT_ENV}");
    if let Some(prebuilt) = std::env::var_os(PREBUILT_ENV) {
        let out = std::path::Path::new(&std::env::var("OUT_DIR")?).join("tcpeek-ebpf");
        println!("cargo:rerun-if-changed={}", prebuilt.to_string_lossy());
        std::fs::copy(&prebuilt, &out).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{PREBUILT_ENV}={}: cannot copy the eBPF object: {e}",
                    prebuilt.to_string_lossy()
                ),
            )
        })?;
        return Ok(());
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root_dir = format!("{manifest_dir}/../tcpeek-ebpf");
    // The classifier is built from the shared crate too (the packet walk,
    // the map layouts): a change there must rebuild the object.
    println!("cargo:rerun-if-changed={manifest_dir}/../tcpeek-common");
    // aya-build turns every stderr line of the inner cargo into a
    // `cargo:warning`, which cargo then repeats on every build: keep the
    // inner cargo's progress lines out (compiler diagnostics still come
    // through, they travel as JSON on stdout).
    std::env::set_var("CARGO_TERM_QUIET", "true");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tcpeek-ebpf",
            root_dir: &root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom("debian-bpf"),
    )
    .map_err(|e| {
        e.context(
            "building the eBPF classifier (tcpeek-ebpf) failed; \
             run scripts/setup-ebpf.sh as root to install its toolchain",
        )
    })
}
