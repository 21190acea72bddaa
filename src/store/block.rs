//! Sealed blocks of tier 0: one series' rows over [`BLOCK_INTERVALS`] intervals in one blob,
//! kept series-major so a query reads a series' hours with one seek instead of a lookup per
//! interval in the time-major raw table (see `seal.rs`).
//!
//! A block is a version byte and its rows, oldest first. Each row: how many intervals it
//! skips after the one before (varint), `count`, `sum`, `min`, `max` and `last` each XOR-ed
//! with the row before's (a header byte: low zero bytes skipped << 4 | bytes kept, then the
//! kept bytes; 0 alone for no change), `last_ms`
//! from the interval's start (zigzag varint), and the sketch's bytes as stored in the raw
//! table, length first (0: none). Decoding checks every length and never panics.

use crate::aggregate::rollup::Rollup;

/// Intervals per block: five minutes at a 10 s interval. Small enough that the raw table's
/// unsealed head stays short, large enough that a block is one seek for many rows.
pub const BLOCK_INTERVALS: i64 = 30;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("sealed block: {0}")]
    Corrupt(&'static str),
}

/// One row of a block, its sketch still encoded (borrowed from the blob).
#[derive(Debug, Clone)]
pub struct BlockRow<'a> {
    pub start_s: i64,
    /// Everything but the sketch (`sketch: None`).
    pub scalars: Rollup,
    pub sketch: Option<&'a [u8]>,
}

/// Builds one series' block, a row at a time.
pub struct BlockWriter {
    out: Vec<u8>,
    block_start_s: i64,
    resolution_s: i64,
    prev_index: i64,
    prev: [u64; 5],
}

impl BlockWriter {
    pub fn new(block_start_s: i64, resolution_s: i64) -> BlockWriter {
        BlockWriter { out: vec![VERSION], block_start_s, resolution_s, prev_index: -1, prev: [0; 5] }
    }

    /// Appends the row of the interval starting at `start_s`, which must be in the block and
    /// after every row pushed so far.
    pub fn push(&mut self, start_s: i64, scalars: &Rollup, sketch: Option<&[u8]>) -> Result<(), BlockError> {
        let offset = start_s.checked_sub(self.block_start_s).ok_or(BlockError::Corrupt("interval out of range"))?;
        let index = offset / self.resolution_s;
        if offset < 0 || offset % self.resolution_s != 0 || index >= BLOCK_INTERVALS || index <= self.prev_index {
            return Err(BlockError::Corrupt("a row outside its block, or out of order"));
        }
        write_varint(&mut self.out, (index - self.prev_index - 1) as u64);
        self.prev_index = index;
        let values = [scalars.count, scalars.sum, scalars.min, scalars.max, scalars.last];
        for (prev, value) in self.prev.iter_mut().zip(values) {
            write_xor(&mut self.out, value.to_bits() ^ *prev);
            *prev = value.to_bits();
        }
        write_varint(&mut self.out, zigzag(scalars.last_ms.wrapping_sub(start_s.wrapping_mul(1000))));
        match sketch {
            None => write_varint(&mut self.out, 0),
            Some(bytes) => {
                write_varint(&mut self.out, bytes.len() as u64 + 1);
                self.out.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.prev_index < 0
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// The rows of a block that starts at `block_start_s`, oldest first; a corrupt block yields
/// one error and ends.
pub fn rows(blob: &[u8], block_start_s: i64, resolution_s: i64) -> BlockRows<'_> {
    BlockRows {
        blob,
        pos: 1,
        block_start_s,
        resolution_s,
        index: -1,
        prev: [0; 5],
        failed: blob.first() != Some(&VERSION),
    }
}

pub struct BlockRows<'a> {
    blob: &'a [u8],
    pos: usize,
    block_start_s: i64,
    resolution_s: i64,
    index: i64,
    prev: [u64; 5],
    failed: bool,
}

impl<'a> Iterator for BlockRows<'a> {
    type Item = Result<BlockRow<'a>, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            self.failed = false;
            self.pos = self.blob.len();
            return Some(Err(BlockError::Corrupt("unknown version")));
        }
        if self.pos >= self.blob.len() {
            return None;
        }
        let row = self.row();
        if row.is_err() {
            self.pos = self.blob.len();
        }
        Some(row)
    }
}

impl<'a> BlockRows<'a> {
    fn row(&mut self) -> Result<BlockRow<'a>, BlockError> {
        let skip = self.varint()?;
        let index = u64::try_from(self.index + 1).ok().and_then(|next| next.checked_add(skip));
        self.index = match index {
            Some(index) if index < BLOCK_INTERVALS as u64 => index as i64,
            _ => return Err(BlockError::Corrupt("interval out of range")),
        };
        let start_s = self
            .index
            .checked_mul(self.resolution_s)
            .and_then(|offset| offset.checked_add(self.block_start_s))
            .ok_or(BlockError::Corrupt("interval out of range"))?;
        let mut values = [0.0; 5];
        for (idx, value) in values.iter_mut().enumerate() {
            self.prev[idx] ^= self.xor()?;
            *value = f64::from_bits(self.prev[idx]);
        }
        let last_ms = unzigzag(self.varint()?).wrapping_add(start_s.wrapping_mul(1000));
        let sketch = match self.varint()? {
            0 => None,
            len => {
                let len = usize::try_from(len - 1).map_err(|_| BlockError::Corrupt("sketch length"))?;
                let end = self.pos.checked_add(len).filter(|end| *end <= self.blob.len());
                let end = end.ok_or(BlockError::Corrupt("sketch runs past the block"))?;
                let bytes = &self.blob[self.pos..end];
                self.pos = end;
                Some(bytes)
            }
        };
        let [count, sum, min, max, last] = values;
        Ok(BlockRow { start_s, scalars: Rollup { count, sum, min, max, last, last_ms, sketch: None }, sketch })
    }

    fn byte(&mut self) -> Result<u8, BlockError> {
        let byte = *self.blob.get(self.pos).ok_or(BlockError::Corrupt("ends inside a row"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BlockError::Corrupt("varint too long"))
    }

    fn xor(&mut self) -> Result<u64, BlockError> {
        let head = self.byte()?;
        if head == 0 {
            return Ok(0);
        }
        let (skipped, len) = (u32::from(head >> 4), usize::from(head & 0x0f));
        if len == 0 || skipped as usize + len > 8 {
            return Err(BlockError::Corrupt("bad value header"));
        }
        let mut bytes = [0u8; 8];
        for byte in bytes.iter_mut().take(len) {
            *byte = self.byte()?;
        }
        Ok(u64::from_le_bytes(bytes) << (skipped * 8))
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A value XOR-ed with the one before: a header byte (low zero bytes skipped << 4 | bytes
/// kept), then the kept bytes; 0 alone when nothing changed.
fn write_xor(out: &mut Vec<u8>, xor: u64) {
    if xor == 0 {
        out.push(0);
        return;
    }
    let skipped = xor.trailing_zeros() / 8;
    let kept = 8 - skipped - xor.leading_zeros() / 8;
    out.push(((skipped as u8) << 4) | kept as u8);
    out.extend_from_slice(&(xor >> (skipped * 8)).to_le_bytes()[..kept as usize]);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(count: f64, sum: f64, last_ms: i64) -> Rollup {
        Rollup { count, sum, min: sum / count.max(1.0), max: sum, last: -sum, last_ms, sketch: None }
    }

    #[test]
    fn rows_read_back_exactly_with_gaps_sketches_and_odd_values() {
        let mut writer = BlockWriter::new(1_000, 10);
        let rows = [
            (1_000, scalars(3.0, 0.25, 1_000_500), Some(&b"abc"[..])),
            (1_010, scalars(3.0, 0.25, 1_019_999), None),
            (1_200, scalars(f64::MAX, -0.0, 900_000), Some(&b""[..])),
            (1_290, Rollup { min: f64::INFINITY, max: f64::NEG_INFINITY, ..scalars(1e-300, 7.5, i64::MAX) }, None),
        ];
        for (start, rollup, sketch) in &rows {
            writer.push(*start, rollup, *sketch).unwrap();
        }
        let blob = writer.finish();
        let back: Vec<BlockRow<'_>> = super::rows(&blob, 1_000, 10).collect::<Result<_, _>>().unwrap();
        assert_eq!(back.len(), rows.len());
        for (got, (start, rollup, sketch)) in back.iter().zip(&rows) {
            assert_eq!(got.start_s, *start);
            assert_eq!(got.sketch, *sketch);
            let bits = |r: &Rollup| [r.count, r.sum, r.min, r.max, r.last].map(f64::to_bits);
            assert_eq!(bits(&got.scalars), bits(rollup));
            assert_eq!(got.scalars.last_ms, rollup.last_ms);
        }
    }

    #[test]
    fn a_repeated_row_costs_a_few_bytes() {
        let mut writer = BlockWriter::new(0, 10);
        for idx in 0..BLOCK_INTERVALS {
            writer.push(idx * 10, &scalars(5.0, 5.0, idx * 10_000 + 3), None).unwrap();
        }
        // The first row in full, then 1 (skip) + 5 (unchanged values) + 1 (last_ms) + 1 (no sketch).
        assert!(writer.finish().len() < 60 + 8 * BLOCK_INTERVALS as usize);
    }

    #[test]
    fn a_corrupt_block_is_an_error_never_a_panic() {
        let mut writer = BlockWriter::new(0, 10);
        writer.push(0, &scalars(2.0, 1.5, 7), Some(b"sketch")).unwrap();
        writer.push(20, &scalars(4.0, 2.5, 27_000), None).unwrap();
        assert!(writer.push(20, &scalars(1.0, 1.0, 0), None).is_err(), "out of order");
        assert!(writer.push(BLOCK_INTERVALS * 10, &scalars(1.0, 1.0, 0), None).is_err(), "past the block");
        assert!(writer.push(25, &scalars(1.0, 1.0, 0), None).is_err(), "between intervals");
        let blob = writer.finish();
        for cut in 0..blob.len() {
            let read: Vec<_> = rows(&blob[..cut], 0, 10).collect();
            assert!(cut < 2 || read.iter().any(Result::is_err) || read.len() < 2, "cut at {cut}: {read:?}");
        }
        let mut bad = blob.clone();
        bad[0] = 9;
        assert_eq!(rows(&bad, 0, 10).count(), 1);
        assert!(
            rows(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0, 10).all(|r| r.is_err())
        );
        assert!(rows(&[1, 0, 0x19], 0, 10).any(|r| r.is_err()), "9 bytes of a value");
        let far = [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(rows(&far, 0, 10).next().unwrap().unwrap_err(), BlockError::Corrupt("interval out of range"));
        let past = [1, BLOCK_INTERVALS as u8, 0, 0, 0, 0, 0, 0, 0];
        assert!(rows(&past, 0, 10).next().unwrap().is_err(), "an interval past the block");
    }
}
