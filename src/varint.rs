//! Base-128 varints as protobuf writes them, and zigzag for signed values: the one codec that
//! the protobuf reader (`ingest::parse::protowire`) and the stored sketch format
//! (`aggregate::sketch::blob`) share. Pure, no allocation but the caller's buffer.

/// Why bytes do not start with a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The bytes end before the varint does.
    Truncated,
    /// More than ten bytes, or a tenth byte with more than bit 63 in it: not a 64-bit value.
    TooLong,
}

/// The varint at the start of `bytes`: its value and how many bytes it took.
#[inline]
pub fn decode(bytes: &[u8]) -> Result<(u64, usize), Malformed> {
    // Protobuf tags, most lengths and most sketch counts are one byte.
    if let Some(&byte) = bytes.first()
        && byte < 0x80
    {
        return Ok((u64::from(byte), 1));
    }
    let mut value = 0u64;
    for (idx, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * idx);
        if byte & 0x80 == 0 {
            // The tenth byte holds bit 63 alone.
            return if idx == 9 && *byte > 1 { Err(Malformed::TooLong) } else { Ok((value, idx + 1)) };
        }
    }
    if bytes.len() >= 10 { Err(Malformed::TooLong) } else { Err(Malformed::Truncated) }
}

/// Appends `value` as a varint.
pub fn encode(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `value` zigzagged (`sint32`): small magnitudes of either sign make small varints.
pub fn zigzag32(value: i32) -> u64 {
    ((value << 1) ^ (value >> 31)) as u32 as u64
}

/// The `i32` that [`zigzag32`] made `value` from; only the low 32 bits count, as protobuf says.
pub fn unzigzag32(value: u64) -> i32 {
    let value = value as u32;
    ((value >> 1) as i32) ^ -((value & 1) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_round_trips() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
                let mut out = Vec::new();
                encode(&mut out, value);
                assert_eq!(decode(&out), Ok((value, out.len())), "{value}");
                assert_eq!(decode(&out[..out.len() - 1]), Err(Malformed::Truncated), "{value} cut short");
            }
        }
    }

    #[test]
    fn more_than_64_bits_is_refused() {
        assert_eq!(decode(&[0xff; 10]), Err(Malformed::TooLong));
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(Malformed::TooLong));
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Ok((u64::MAX, 10)));
        assert_eq!(decode(&[0x80; 4]), Err(Malformed::Truncated));
        assert_eq!(decode(&[]), Err(Malformed::Truncated));
    }

    #[test]
    fn zigzag_maps_signs_onto_small_values() {
        assert_eq!([0, -1, 1, -2].map(zigzag32), [0, 1, 2, 3]);
        for value in [0, 1, -1, i32::MAX, i32::MIN, 12345, -98765] {
            assert_eq!(unzigzag32(zigzag32(value)), value);
        }
    }
}
