//! The sketch's stored form, versioned. Version 1 is the dense run of bins; version 2 lists
//! only non-zero bins as (gap, count) pairs, which is what a 10 s interval with a few samples
//! spread over a wide run of bins looks like (10 samples of a lognormal latency touch ~10 of
//! ~90 bins). The encoder picks the smaller; both decode. `merge_encoded` adds a blob into a
//! sketch without building an intermediate one, which is how reads merge stored rows.

use super::{MAX_BINS, MAX_INDEX, Sketch, SketchError};
use crate::varint;

const DENSE: u8 = 1;
const SPARSE: u8 = 2;

impl Sketch {
    /// Appends the blob form: version, zigzag offset, zero count, then either every bin
    /// (dense) or the non-zero ones as gaps and counts (sparse).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let nonzero = self.bins.iter().filter(|c| **c > 0).count();
        let ends_set = self.bins.first().is_some_and(|c| *c > 0) && self.bins.last().is_some_and(|c| *c > 0);
        if ends_set && nonzero * 2 < self.bins.len() {
            out.push(SPARSE);
            varint::encode(out, varint::zigzag32(self.offset));
            varint::encode(out, self.zero);
            varint::encode(out, nonzero as u64);
            let mut previous = 0;
            for (idx, count) in self.bins.iter().enumerate().filter(|(_, c)| **c > 0) {
                varint::encode(out, (idx - previous) as u64);
                varint::encode(out, *count);
                previous = idx;
            }
        } else {
            out.push(DENSE);
            varint::encode(out, varint::zigzag32(self.offset));
            varint::encode(out, self.zero);
            varint::encode(out, self.bins.len() as u64);
            for count in &self.bins {
                varint::encode(out, *count);
            }
        }
    }

    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.bins.len() * 2);
        self.encode(&mut out);
        out
    }

    pub fn decode(blob: &[u8]) -> Result<Sketch, SketchError> {
        let parsed = Parsed::new(blob)?;
        let mut bins = vec![0u64; parsed.span()?];
        parsed.each(|delta, count| bins[delta] = bins[delta].saturating_add(count))?;
        Ok(Sketch { offset: parsed.offset, bins, zero: parsed.zero })
    }

    /// Adds the sketch in `blob` into this one, as [`Sketch::merge`] would the decoded sketch.
    pub fn merge_encoded(&mut self, blob: &[u8]) -> Result<(), SketchError> {
        let parsed = Parsed::new(blob)?;
        let span = parsed.span()?;
        self.zero = self.zero.saturating_add(parsed.zero);
        if span == 0 {
            return Ok(());
        }
        let first = parsed.offset;
        self.slot_for(first + span as i32 - 1);
        self.slot_for(first);
        // Indices below the run were folded into its lowest bin.
        let shift = first - self.offset;
        let bins = &mut self.bins;
        parsed.each(|delta, count| {
            let slot = (shift + delta as i32).max(0) as usize;
            bins[slot] = bins[slot].saturating_add(count);
        })
    }
}

/// A blob's header, and its body left to walk.
struct Parsed<'b> {
    version: u8,
    offset: i32,
    zero: u64,
    n: u64,
    body: &'b [u8],
}

impl<'b> Parsed<'b> {
    fn new(blob: &'b [u8]) -> Result<Parsed<'b>, SketchError> {
        let (&version, mut body) = blob.split_first().ok_or(SketchError::Truncated)?;
        if version != DENSE && version != SPARSE {
            return Err(SketchError::Version(version));
        }
        let offset = varint::unzigzag32(take_varint(&mut body)?);
        let zero = take_varint(&mut body)?;
        let n = take_varint(&mut body)?;
        if n > MAX_BINS as u64 {
            return Err(SketchError::TooManyBins(n));
        }
        // The whole run (at most MAX_BINS wide) must lie among the indices values can have.
        if !(-MAX_INDEX..=MAX_INDEX - MAX_BINS as i32).contains(&offset) {
            return Err(SketchError::OutOfRange(offset));
        }
        Ok(Parsed { version, offset, zero, n, body })
    }

    /// Bins from the first to the last one the blob sets.
    fn span(&self) -> Result<usize, SketchError> {
        if self.version == DENSE {
            return Ok(self.n as usize);
        }
        let mut last = None;
        self.each(|delta, _| last = Some(delta))?;
        let span = last.map_or(0, |l| l + 1);
        if span > MAX_BINS {
            return Err(SketchError::TooManyBins(span as u64));
        }
        Ok(span)
    }

    /// Calls `add(bin - offset, count)` for every bin the blob lists.
    fn each(&self, mut add: impl FnMut(usize, u64)) -> Result<(), SketchError> {
        let mut body = self.body;
        let mut delta = 0usize;
        for idx in 0..self.n {
            if self.version == DENSE {
                add(idx as usize, take_varint(&mut body)?);
            } else {
                let gap = take_varint(&mut body)?;
                delta = delta
                    .checked_add(usize::try_from(gap).map_err(|_| SketchError::Truncated)?)
                    .ok_or(SketchError::Truncated)?;
                if delta >= MAX_BINS {
                    return Err(SketchError::TooManyBins((delta as u64).saturating_add(1)));
                }
                add(delta, take_varint(&mut body)?);
            }
        }
        Ok(())
    }
}

fn take_varint(blob: &mut &[u8]) -> Result<u64, SketchError> {
    let (value, len) = varint::decode(blob).map_err(|_| SketchError::Truncated)?;
    *blob = &blob[len..];
    Ok(value)
}
