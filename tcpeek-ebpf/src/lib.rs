//! tcpeek's kernel-side classifier.
//!
//! The programs live in the `tcpeek-ebpf` binary target, built for
//! `bpfel-unknown-none` by `tcpeek/build.rs` (aya-build) and embedded in the
//! `tcpeek` binary. This library target only exists because `tcpeek` names the
//! crate as a build-dependency (so cargo rebuilds the object when it changes),
//! and cargo wants such a dependency to have a lib.
#![no_std]
