//! Frame mutations for randomized tests of the packet walk: a few bytes
//! set to values that steer the walk or to random ones (mostly in the
//! headers), then sometimes cut or padded.

use crate::rng::Rng;

/// Byte values that steer the walk: versions and header lengths, protocol
/// numbers, EtherType and TPID halves, flag bytes, lengths near the edges.
pub const STEERING: [u8; 24] = [
    0x00, 0xff, 0x45, 0x46, 0x4f, 0x60, 0x06, 0x01, 0x3a, 0x2c, 0x2b, 0x33, 0x3c, 0x32, 0x81, 0x88,
    0xa8, 0x91, 0x86, 0xdd, 0x08, 0x02, 0x12, 0x50,
];

/// A mutant of `seed`.
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    mutate_in_place(rng, &mut v);
    v
}

/// [`mutate`] into `v`, which holds the seed (no allocation once `v` has
/// grown: the fuzz runs make hundreds of millions).
pub fn mutate_in_place(rng: &mut Rng, v: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        // Mostly the headers.
        let reach = if rng.below(4) == 0 { v.len() } else { 96 };
        let at = rng.below(v.len().min(reach));
        v[at] = if rng.below(2) == 0 {
            STEERING[rng.below(STEERING.len())]
        } else {
            rng.next_u64() as u8
        };
    }
    match rng.below(8) {
        0 | 1 => v.truncate(rng.below(v.len() + 1)),
        2 => v.resize(v.len() + rng.below(64), 0),
        _ => {}
    }
}
