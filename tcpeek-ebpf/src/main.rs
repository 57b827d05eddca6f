//! Entry points of tcpeek's kernel side: a TC classifier for each direction,
//! an XDP program for ingress, and an empty classifier that the benchmark
//! uses as its baseline. Each is a thin wrapper around [`classify`]; none
//! drops, redirects or rewrites a packet.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
// One atomic add for the hint counters (see maps.rs); RUSTC_BOOTSTRAP
// allows it for this crate only.
#![cfg_attr(
    any(target_arch = "bpf", feature = "host-lint"),
    feature(core_intrinsics)
)]
#![cfg_attr(
    any(target_arch = "bpf", feature = "host-lint"),
    expect(internal_features, reason = "atomic_xadd, see maps.rs")
)]

#[cfg(any(target_arch = "bpf", feature = "host-lint"))]
mod classify;
#[cfg(any(target_arch = "bpf", feature = "host-lint"))]
mod maps;
#[cfg(any(target_arch = "bpf", feature = "host-lint"))]
mod programs;

/// Built for the host (`cargo build --workspace`), this crate is nothing
/// (with `host-lint`, the programs are compiled to be linted, not run).
#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("tcpeek-ebpf is an eBPF object; tcpeek's build.rs builds it for bpfel-unknown-none");
}
