//! Internet checksums for `-c` (RFC 1071).

use super::*;

/// Verifies an Internet checksum (RFC 1071) over `bytes` whose checksum
/// field is at `offset`, starting from `pseudo` (a pseudo-header sum or
/// zero). The sum over everything, checksum included, must be all ones.
pub(super) fn verify(
    layer: &'static str,
    bytes: &[u8],
    offset: usize,
    pseudo: Sum16BitWords,
) -> Result<(), DecodeError> {
    let (Some(before), Some(field), Some(after)) = (
        bytes.get(..offset),
        bytes.get(offset..offset + 2),
        bytes.get(offset + 2..),
    ) else {
        return Err(DecodeError::Truncated {
            layer,
            needed: offset + 2,
            available: bytes.len(),
        });
    };
    let stored = u16::from_be_bytes([field[0], field[1]]);
    // `offset` is even, so the words on either side of the field stay
    // aligned when summed separately.
    let without_field = pseudo.add_slice(before).add_slice(after);
    let with_field = without_field.clone().add_2bytes([field[0], field[1]]);
    if with_field.ones_complement() == 0 {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum {
            layer,
            stored,
            // etherparse sums native-endian words, so its result is in
            // native byte order; turn it into the value as it would be
            // read from the packet.
            computed: u16::from_be_bytes(without_field.ones_complement().to_ne_bytes()),
        })
    }
}
