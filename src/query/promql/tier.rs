//! Which tier's intervals a PromQL query reads as its points, and which tiers serve each part
//! of the time it needs.
//!
//! Every interval is a point at the time of its last observation. A coarser tier gives the
//! same answers as tier 0 when every time the query looks at (its start, step, ranges,
//! offsets, subquery steps and the 5-minute lookback) falls on the tier's boundaries, so the
//! query reads the coarsest such tier: a day at one-minute steps is 1,440 points per series,
//! not 8,640. Where that tier has nothing yet (recent time not downsampled) finer tiers fill
//! in; where it has expired, coarser ones.

use crate::store::tiers::{Tier, align_down, align_up};

/// The coarsest tier whose resolution divides every one of `times_ms` (tier 0 if none does).
pub fn choose(tiers: &[Tier], times_ms: &[i64]) -> usize {
    (0..tiers.len())
        .rev()
        .find(|&idx| {
            let res_ms = tiers[idx].resolution_s.saturating_mul(1000);
            times_ms.iter().all(|t| t.rem_euclid(res_ms) == 0)
        })
        .unwrap_or(0)
}

/// One tier's part of a read, `[from_s, to_s)` by interval start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub tier: usize,
    pub from_s: i64,
    pub to_s: i64,
}

/// The tiers that serve `[from_s, to_s)` when `chosen` is wanted: `chosen` where it holds
/// rows (after its retention's start, before its downsampling watermark), finer tiers after
/// its watermark, coarser ones before its retention's start. In time order.
pub fn sources(
    from_s: i64,
    to_s: i64,
    chosen: usize,
    tiers: &[Tier],
    watermarks: &[Option<i64>],
    now_s: i64,
) -> Vec<Source> {
    let mut out = Vec::new();
    older(from_s, to_s, chosen, tiers, watermarks, now_s, &mut out);
    out.sort_by_key(|s| s.from_s);
    // The interval that holds `from_s` may have points after it.
    if let Some(first) = out.first_mut() {
        first.from_s = align_down(first.from_s, tiers[first.tier].resolution_s);
    }
    out
}

/// `[from_s, to_s)` from tier `tier` and, before its retention, from coarser tiers.
fn older(
    from_s: i64,
    to_s: i64,
    tier: usize,
    tiers: &[Tier],
    watermarks: &[Option<i64>],
    now_s: i64,
    out: &mut Vec<Source>,
) {
    if from_s >= to_s {
        return;
    }
    // Aligned to the coarser tier, so no interval is read from both.
    let kept_from = match tiers.get(tier + 1) {
        Some(coarser) => align_up(now_s.saturating_sub(tiers[tier].retention_s), coarser.resolution_s),
        None => i64::MIN,
    };
    if from_s < kept_from {
        older(from_s, kept_from.min(to_s), tier + 1, tiers, watermarks, now_s, out);
        newer(kept_from.max(from_s), to_s, tier, watermarks, out);
    } else {
        newer(from_s, to_s, tier, watermarks, out);
    }
}

/// `[from_s, to_s)` from tier `tier` up to its watermark, the rest from finer tiers.
fn newer(from_s: i64, to_s: i64, tier: usize, watermarks: &[Option<i64>], out: &mut Vec<Source>) {
    if from_s >= to_s {
        return;
    }
    if tier == 0 {
        out.push(Source { tier, from_s, to_s });
        return;
    }
    let built_to = watermarks.get(tier).copied().flatten().unwrap_or(i64::MIN).clamp(from_s, to_s);
    if built_to > from_s {
        out.push(Source { tier, from_s, to_s: built_to });
    }
    newer(built_to, to_s, tier - 1, watermarks, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<Tier> {
        vec![
            Tier { resolution_s: 10, retention_s: 86_400 },
            Tier { resolution_s: 60, retention_s: 30 * 86_400 },
            Tier { resolution_s: 3600, retention_s: 400 * 86_400 },
        ]
    }

    #[test]
    fn the_coarsest_tier_that_every_time_falls_on() {
        let minute = 60_000;
        assert_eq!(choose(&tiers(), &[1_700_000_040_000, minute, 5 * minute, 5 * minute]), 1);
        assert_eq!(choose(&tiers(), &[1_700_000_040_000, 15_000, 5 * minute]), 0, "15 s steps fall between minutes");
        assert_eq!(choose(&tiers(), &[3_600_000 * 5, 3_600_000]), 2);
        assert_eq!(choose(&tiers(), &[1_700_000_000_500]), 0, "no tier divides half a second");
    }

    #[test]
    fn recent_time_comes_from_finer_tiers_and_old_time_from_coarser() {
        let now = 100 * 86_400;
        let wms = [None, Some(now - 120), Some(now - 3600)];
        let got = sources(now - 600, now + 10, 1, &tiers(), &wms, now);
        assert_eq!(
            got,
            vec![
                Source { tier: 1, from_s: now - 600, to_s: now - 120 },
                Source { tier: 0, from_s: now - 120, to_s: now + 10 }
            ]
        );
        let (from, to) = (now - 40 * 86_400, now - 20 * 86_400);
        let old = sources(from, to, 1, &tiers(), &wms, now);
        assert_eq!(
            old,
            vec![
                Source { tier: 2, from_s: from, to_s: now - 30 * 86_400 },
                Source { tier: 1, from_s: now - 30 * 86_400, to_s: to },
            ]
        );
        let nothing_built = sources(now - 600, now, 2, &tiers(), &[None, None, None], now);
        assert_eq!(nothing_built, vec![Source { tier: 0, from_s: now - 600, to_s: now }]);
    }
}
