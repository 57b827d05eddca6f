//! Code generation options for the bpf target, passed to bpf-linker (which
//! does the final LLVM code generation of the object).
//!
//! `+allows-misaligned-mem-access`: packet headers are only 2-byte aligned
//!   (Ethernet's 14-byte header), so `read_unaligned` of a 32-bit field would
//!   otherwise become four byte loads and three shifts. The verifier accepts
//!   misaligned packet and map-value loads on architectures with efficient
//!   unaligned access (x86-64, arm64), i.e. everywhere tcpeek runs.
//!   Caveat: the verifier always rejects misaligned *stack* accesses, and
//!   with this feature LLVM may emit some when copying a struct through the
//!   stack (seen with `RingBuf::output(&event)`): the privileged tests load
//!   every program, so such a change fails them.
//!
//! (The CPU level is rustc's `generic`, which LLVM 22 maps to v3: ALU32 and
//! JMP32, kernel >= 5.1. rustc passes `--cpu` itself, so it cannot be set here.)
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo::rustc-link-arg-bins=--cpu-features=+allows-misaligned-mem-access");
    }
}
