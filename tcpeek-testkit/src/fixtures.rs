//! The capture files in tests/fixtures/ that `cargo xtask fixtures` writes:
//! where they are, and which of them are classic pcap, so that the tests
//! that run every fixture run the same files. xtask's tests check this list
//! against the generator's catalogue, so that a new fixture is not left out
//! of them unnoticed.

use std::path::{Path, PathBuf};

/// tests/fixtures/`name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Every classic pcap fixture. The order is part of wire_parity's corpus
/// (its mutants are drawn from it with a fixed seed): add at the end.
pub const CLASSIC: [&str; 23] = [
    "success.pcap",
    "success6.pcap",
    "reject.pcap",
    "bogus_rst.pcap",
    "timeout.pcap",
    "dupsyn.pcap",
    "dupsynack.pcap",
    "unreach.pcap",
    "icmp_retry.pcap",
    "simultaneous.pcap",
    "tfo.pcap",
    "vlan.pcap",
    "mixed.pcap",
    "quiet.pcap",
    "damaged_time.pcap",
    "new_isn.pcap",
    "tfo_data.pcap",
    "listener_icmp.pcap",
    "port_reuse.pcap",
    "client_abort.pcap",
    "reordered.pcap",
    "snaplen.pcap",
    "sll2.pcap",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::read_classic;

    #[test]
    fn every_listed_fixture_is_a_classic_file_on_disk() {
        for name in CLASSIC {
            let file = read_classic(&path(name)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!file.records.is_empty(), "{name}: no records");
        }
    }
}
