//! The kernel-userspace contract, checked without privileges: the eBPF
//! object embedded in the binary holds every program, map and global the
//! userspace loader looks up by name (`tcpeek_common::names`). A rename on
//! one side fails here, not at load time on a user's host.

use object::{Object, ObjectSymbol};
use tcpeek::capture::ebpf;
use tcpeek_common::names;

#[test]
fn the_embedded_object_has_every_name_the_loader_uses() {
    let file = object::File::parse(ebpf::object()).expect("the embedded object is an ELF file");
    assert_eq!(file.architecture(), object::Architecture::Bpf);
    let symbols: Vec<&str> = file.symbols().filter_map(|s| s.name().ok()).collect();
    let missing: Vec<&str> = names::ALL
        .iter()
        .copied()
        .filter(|n| !symbols.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the eBPF object: {missing:?}; its symbols: {symbols:?}"
    );
}
