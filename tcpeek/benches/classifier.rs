//! Per-packet cost of the eBPF classifier (BPF_PROG_TEST_RUN). Work in progress.
fn main() {}
