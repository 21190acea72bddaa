//! Sketch accuracy, merging and blob round trips against exact quantiles.

use super::*;

/// The exact nearest-rank quantile of sorted `values`.
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[nearest_rank(q, sorted.len() as u64) as usize]
}

fn lognormal_values(n: usize, seed: u64) -> Vec<f64> {
    // A small deterministic generator keeps the test free of RNG crates' version drift.
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let u1: f64 = next().max(1e-12);
            let u2: f64 = next();
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (normal * 0.8 - 3.5).exp()
        })
        .collect()
}

fn check_within_bound(sketch: &Sketch, values: &[f64]) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        let want = exact_quantile(&sorted, q);
        let got = sketch.quantile(q).unwrap();
        let err = (got - want).abs() / want;
        assert!(err <= RELATIVE_ACCURACY + 1e-12, "q={q} want={want} got={got} err={err}");
    }
}

#[test]
fn quantiles_are_within_the_relative_bound() {
    let values = lognormal_values(50_000, 7);
    let mut sketch = Sketch::new();
    for v in &values {
        sketch.add(*v, 1);
    }
    assert_eq!(sketch.count(), 50_000);
    check_within_bound(&sketch, &values);
}

#[test]
fn merge_equals_one_sketch_of_everything() {
    let a = lognormal_values(10_000, 1);
    let b: Vec<f64> = lognormal_values(10_000, 2).iter().map(|v| v * 40.0).collect();
    let (mut sa, mut sb, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
    for v in &a {
        sa.add(*v, 1);
        all.add(*v, 1);
    }
    for v in &b {
        sb.add(*v, 1);
        all.add(*v, 1);
    }
    let mut merged = sb.clone();
    merged.merge(&sa);
    assert_eq!(merged, all);
    let both: Vec<f64> = a.iter().chain(&b).copied().collect();
    check_within_bound(&merged, &both);
}

#[test]
fn blob_round_trips_and_rejects_garbage() {
    let mut sketch = Sketch::new();
    for v in lognormal_values(1000, 3) {
        sketch.add(v, 3);
    }
    sketch.add(0.0, 2);
    let blob = sketch.to_blob();
    assert_eq!(Sketch::decode(&blob).unwrap(), sketch);
    assert_eq!(Sketch::decode(&blob[..blob.len() - 1]), Err(SketchError::Truncated));
    assert_eq!(Sketch::decode(&[9]), Err(SketchError::Version(9)));
    assert_eq!(Sketch::decode(&[]), Err(SketchError::Truncated));
}

#[test]
fn few_samples_store_sparse_and_round_trip() {
    let mut sketch = Sketch::new();
    for v in lognormal_values(10, 5) {
        sketch.add(v, 1);
    }
    let blob = sketch.to_blob();
    assert_eq!(blob[0], 2, "ten samples over a wide run store sparse");
    assert!(blob.len() < sketch.bins.len(), "{} bytes for {} bins", blob.len(), sketch.bins.len());
    assert_eq!(Sketch::decode(&blob).unwrap(), sketch);
    assert_eq!(Sketch::decode(&blob[..blob.len() - 1]), Err(SketchError::Truncated));
    // A gap that would run past the bin limit is refused, not allocated.
    assert!(matches!(Sketch::decode(&[2, 0, 0, 1, 0xff, 0xff, 0x03, 1]), Err(SketchError::TooManyBins(_))));
    // Found by fuzzing: a gap of 2^64-1 (its count overflowed), and a run starting near
    // i32::MAX, whose index arithmetic overflowed; both are refused as corrupt.
    let huge_gap = [2, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1];
    assert!(matches!(Sketch::decode(&huge_gap), Err(SketchError::TooManyBins(_))));
    let far = [1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 1, 1];
    assert_eq!(Sketch::decode(&far), Err(SketchError::OutOfRange(i32::MAX)));
}

#[test]
fn merging_a_blob_equals_merging_the_decoded_sketch() {
    for (seed, n) in [(1, 10), (2, 1000), (3, 3)] {
        let mut base = Sketch::new();
        for v in lognormal_values(200, seed + 10) {
            base.add(v * 3.0, 1);
        }
        let mut other = Sketch::new();
        for v in lognormal_values(n, seed) {
            other.add(v, 2);
        }
        other.add(0.0, 1);
        let mut via_blob = base.clone();
        via_blob.merge_encoded(&other.to_blob()).unwrap();
        let mut direct = base.clone();
        direct.merge(&other);
        assert_eq!(via_blob, direct, "seed {seed}");
        let mut from_empty = Sketch::new();
        from_empty.merge_encoded(&other.to_blob()).unwrap();
        assert_eq!(from_empty.count(), other.count());
        assert_eq!(from_empty.quantile(0.99), other.quantile(0.99));
    }
}

#[test]
fn zero_and_weights_count() {
    let mut sketch = Sketch::new();
    sketch.add(0.0, 5);
    sketch.add(1.0, 5);
    assert_eq!(sketch.count(), 10);
    assert_eq!(sketch.quantile(0.0), Some(0.0));
    let p99 = sketch.quantile(0.99).unwrap();
    assert!((p99 - 1.0).abs() <= 0.01);
    assert_eq!(Sketch::new().quantile(0.5), None);
}

#[test]
fn nearest_rank_picks_the_slowest_of_few() {
    assert_eq!(nearest_rank(0.99, 3), 2);
    assert_eq!(nearest_rank(0.5, 4), 1);
    assert_eq!(nearest_rank(0.0, 4), 0);
    assert_eq!(nearest_rank(1.0, 4), 3);
    assert_eq!(nearest_rank(0.99, 100), 98);
    assert_eq!(nearest_rank(99.9 / 100.0, 5000), 4994);
}

#[test]
fn extreme_ranges_stay_bounded() {
    let mut sketch = Sketch::new();
    sketch.add(1e-8, 1);
    sketch.add(1e300, 1);
    sketch.add(1e-5, 1);
    assert!(sketch.bins.len() <= MAX_BINS);
    assert_eq!(sketch.count(), 3);
    let max = sketch.quantile(1.0).unwrap();
    assert!((max / 1e300 - 1.0).abs() <= 0.01);
}

#[test]
fn counts_saturate_instead_of_wrapping() {
    let mut sketch = Sketch::new();
    sketch.add(0.001, u64::MAX - 1);
    sketch.add(2.0, u64::MAX / 2);
    sketch.add(2.0, u64::MAX / 2);
    sketch.add(0.0, 3);
    assert_eq!(sketch.count(), u64::MAX);
    let mut merged = sketch.clone();
    merged.merge(&sketch);
    merged.merge_encoded(&sketch.to_blob()).unwrap();
    assert_eq!(merged.count(), u64::MAX);
    // Past u64::MAX observations ranks are approximate, but every answer is a value that was
    // inserted (wrapping counts used to answer from an arbitrary bin).
    for q in [0.0, 0.5, 1.0] {
        let got = merged.quantile(q).unwrap();
        let near = |v: f64| (got - v).abs() <= v * 0.01;
        assert!(got == 0.0 || near(0.001) || near(2.0), "q{q}: {got}");
    }
}

mod properties {
    //! Properties that hold for any input: merging in any order is the same as inserting
    //! everything into one sketch, the stored form round-trips, and quantiles stay within the
    //! 1 % relative bound however the sketch was put together.

    use proptest::prelude::*;

    use super::super::Sketch;
    use super::super::nearest_rank;

    /// Latencies from 0.1 ms to 100 s (about 700 bins: no folding), in parts to merge.
    fn parts() -> impl Strategy<Value = Vec<Vec<f64>>> {
        prop::collection::vec(prop::collection::vec(1e-4f64..100.0, 0..40), 1..8)
    }

    fn sketch_of(values: &[f64]) -> Sketch {
        let mut sketch = Sketch::new();
        for v in values {
            sketch.add(*v, 1);
        }
        sketch
    }

    proptest! {
        #[test]
        fn merging_in_any_order_is_inserting_everything(parts in parts(), rotate in 0usize..8) {
            let all: Vec<f64> = parts.iter().flatten().copied().collect();
            let whole = sketch_of(&all);
            let mut order: Vec<&Vec<f64>> = parts.iter().collect();
            let n = order.len();
            order.rotate_left(rotate % n);
            order.reverse();
            let mut merged = Sketch::new();
            let mut from_blobs = Sketch::new();
            for part in order {
                let sketch = sketch_of(part);
                merged.merge(&sketch);
                from_blobs.merge_encoded(&sketch.to_blob()).unwrap();
            }
            prop_assert_eq!(merged.count(), whole.count());
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
                prop_assert_eq!(merged.quantile(q), whole.quantile(q));
                prop_assert_eq!(from_blobs.quantile(q), whole.quantile(q));
            }
        }

        #[test]
        fn the_stored_form_round_trips(values in prop::collection::vec(1e-4f64..100.0, 0..200)) {
            let sketch = sketch_of(&values);
            let back = Sketch::decode(&sketch.to_blob()).unwrap();
            prop_assert_eq!(back.count(), sketch.count());
            for q in [0.0, 0.5, 0.99, 1.0] {
                prop_assert_eq!(back.quantile(q), sketch.quantile(q));
            }
        }

        #[test]
        fn quantiles_after_merges_stay_within_one_percent(parts in parts(), q in 0.0f64..=1.0) {
            let mut all: Vec<f64> = parts.iter().flatten().copied().collect();
            prop_assume!(!all.is_empty());
            let mut merged = Sketch::new();
            for part in &parts {
                merged.merge(&sketch_of(part));
            }
            all.sort_by(f64::total_cmp);
            let exact = all[nearest_rank(q, all.len() as u64) as usize];
            let got = merged.quantile(q).unwrap();
            prop_assert!((got - exact).abs() <= exact * 0.01 + 1e-12, "q{q}: got {got}, exact {exact}");
        }
    }
}

#[test]
fn an_infinite_value_lands_in_the_top_bin_and_round_trips() {
    // Found by fuzzing: a Prometheus histogram whose only counts are in a bucket of +Inf bound.
    let mut sketch = Sketch::new();
    sketch.add(f64::INFINITY, 2);
    sketch.add(0.2, 1);
    let top = sketch.quantile(1.0).unwrap();
    assert!(top.is_finite() && top > 1e307, "{top}");
    assert_eq!(Sketch::decode(&sketch.to_blob()).unwrap(), sketch);
}
