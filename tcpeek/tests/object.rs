//! The kernel-userspace contract, checked without privileges: the eBPF
//! object embedded in the binary holds every program, map and global the
//! userspace loader looks up by name (`tcpeek_common::names`). A rename on
//! one side fails here, not at load time on a user's host. The maps' key
//! and value sizes are those of the shared layouts (`tcpeek_common::maps`).

use object::{Object, ObjectSymbol};
use tcpeek::capture::ebpf;
use tcpeek_common::{
    maps::{Hint, KeyV4, KeyV6, Pending, HINT_SLOTS},
    names, stat, DEFAULT_RING_BYTES,
};

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

#[test]
fn the_maps_have_the_shared_layouts() {
    let obj = aya_obj::Object::parse(ebpf::object()).expect("aya parses the embedded object");
    let map = |name: &str| {
        let m = obj
            .maps
            .get(name)
            .unwrap_or_else(|| panic!("no map {name} in the object"));
        (m.key_size(), m.value_size(), m.max_entries())
    };
    let size = |n: usize| u32::try_from(n).unwrap();
    assert_eq!(
        map(names::MAP_HANDSHAKES_V4),
        (size(size_of::<KeyV4>()), size(size_of::<Pending>()), 65536)
    );
    assert_eq!(
        map(names::MAP_HANDSHAKES_V6),
        (size(size_of::<KeyV6>()), size(size_of::<Pending>()), 16384)
    );
    assert_eq!(
        map(names::MAP_HANDSHAKE_HINT),
        (4, size(size_of::<Hint>()), HINT_SLOTS)
    );
    assert_eq!(map(names::MAP_STATS), (4, 8, stat::COUNT));
    assert_eq!(map(names::MAP_EVENTS).2, DEFAULT_RING_BYTES);
}
