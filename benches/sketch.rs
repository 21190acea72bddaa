//! The DDSketch's cost per insert, per merge and per blob round trip.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use perfwatch::aggregate::sketch::Sketch;

fn latencies(n: usize) -> Vec<f64> {
    let mut state = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            0.040 * (3.0 * (u - 0.5)).exp()
        })
        .collect()
}

fn sketch(c: &mut Criterion) {
    let values = latencies(10_000);
    let mut group = c.benchmark_group("sketch");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("insert", |b| {
        b.iter_batched_ref(
            Sketch::new,
            |sketch| {
                for v in &values {
                    sketch.add(*v, 1);
                }
            },
            BatchSize::SmallInput,
        )
    });
    let mut full = Sketch::new();
    for v in &values {
        full.add(*v, 1);
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("merge", |b| b.iter_batched_ref(|| full.clone(), |s| s.merge(&full), BatchSize::SmallInput));
    group.bench_function("quantile", |b| b.iter(|| full.quantile(0.99)));
    let blob = full.to_blob();
    group.bench_function("encode", |b| b.iter(|| full.to_blob()));
    group.bench_function("decode", |b| b.iter(|| Sketch::decode(&blob).unwrap()));
    group.finish();
}

criterion_group!(benches, sketch);
criterion_main!(benches);
