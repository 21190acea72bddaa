//! Which tier serves which part of a time range: the coarsest tier covers the aligned middle
//! (up to its downsampling watermark) and finer tiers fill the edges, so a 24 h window reads
//! ~24 hourly rows plus a few minute and 10 s rows instead of 8,640 raw ones.

use crate::store::tiers::{Tier, align_down, align_up};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub tier: usize,
    pub from_s: i64,
    pub to_s: i64,
}

/// Segments covering `[from_s, to_s)`, in time order. `watermarks[i]` is where tier `i`'s
/// complete windows end (`None`: tier `i` has nothing yet; index 0 is ignored).
pub fn plan(from_s: i64, to_s: i64, tiers: &[Tier], watermarks: &[Option<i64>]) -> Vec<Segment> {
    let mut out = Vec::new();
    cover(from_s, to_s, tiers.len() - 1, tiers, watermarks, &mut out);
    out
}

fn cover(from_s: i64, to_s: i64, level: usize, tiers: &[Tier], watermarks: &[Option<i64>], out: &mut Vec<Segment>) {
    if from_s >= to_s {
        return;
    }
    if level == 0 {
        out.push(Segment { tier: 0, from_s, to_s });
        return;
    }
    let resolution = tiers[level].resolution_s;
    let limit = match watermarks.get(level).copied().flatten() {
        Some(wm) => to_s.min(wm),
        None => return cover(from_s, to_s, level - 1, tiers, watermarks, out),
    };
    let (a, b) = (align_up(from_s, resolution), align_down(limit, resolution));
    if a >= b {
        return cover(from_s, to_s, level - 1, tiers, watermarks, out);
    }
    cover(from_s, a, level - 1, tiers, watermarks, out);
    out.push(Segment { tier: level, from_s: a, to_s: b });
    cover(b, to_s, level - 1, tiers, watermarks, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<Tier> {
        [10, 60, 3600].iter().map(|&r| Tier { resolution_s: r, retention_s: 1 << 30 }).collect()
    }

    fn check(from: i64, to: i64, wms: &[Option<i64>], expected: &[(usize, i64, i64)]) {
        let got: Vec<(usize, i64, i64)> =
            plan(from, to, &tiers(), wms).iter().map(|s| (s.tier, s.from_s, s.to_s)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn coarse_middle_fine_edges() {
        let all = [None, Some(100_000), Some(100_000)];
        check(3590, 7270, &all, &[(0, 3590, 3600), (2, 3600, 7200), (1, 7200, 7260), (0, 7260, 7270)]);
    }

    #[test]
    fn watermarks_hand_recent_data_to_finer_tiers() {
        check(0, 7200, &[None, Some(3660), Some(3600)], &[(2, 0, 3600), (1, 3600, 3660), (0, 3660, 7200)]);
        check(0, 120, &[None, None, None], &[(0, 0, 120)]);
    }

    #[test]
    fn empty_and_sub_resolution_ranges() {
        check(50, 50, &[None, Some(1000), None], &[]);
        check(5, 55, &[None, Some(1000), None], &[(0, 5, 55)]);
    }
}
