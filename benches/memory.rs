//! Heap bytes per series in the aggregator, counted by a global allocator: 100k active series
//! of the web-platform mix (timings with 10 observations each in the open interval, counters,
//! gauges), then the same series idle after a flush drained them.
//!
//!   cargo bench --bench memory

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use perfwatch::aggregate::{Aggregator, AggregatorSettings, Observation, SeriesRef};
use perfwatch::model::{MetricKind, series_id};

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N_SERIES: usize = 100_000;

fn main() {
    let settings = AggregatorSettings {
        interval_s: 10,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 1_000_000,
        idle_after_s: 3600,
        cumulative_idle_after_s: 86_400,
    };
    let aggregator = Aggregator::new(settings, 0);
    let now_ms = perfwatch::clock::now_ms();
    let start_s = aggregator.admit(now_ms, now_ms).unwrap();
    let keys: Vec<(String, MetricKind)> = (0..N_SERIES)
        .map(|i| {
            let kind = match i % 4 {
                0 | 1 => MetricKind::Timing,
                2 => MetricKind::Counter,
                _ => MetricKind::Gauge,
            };
            (format!("api_request_duration_seconds{{endpoint=\"/vendors/{}\",instance=\"web-{}\",service=\"api-gateway\"}}", i % 500, i / 500), kind)
        })
        .collect();
    let before = HEAP.load(Ordering::Relaxed);
    let mut state = 7u64;
    for (key, kind) in &keys {
        let series = SeriesRef { key, id: series_id(key), kind: *kind };
        match kind {
            MetricKind::Timing => {
                let values: Vec<f64> = (0..10)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                        0.045 * (1.2 * (u - 0.5) * 3.0).exp()
                    })
                    .collect();
                aggregator
                    .record(series, start_s, now_ms, Observation::Timings { values: &values, weight: 1.0 })
                    .unwrap();
            }
            MetricKind::Counter => aggregator.record(series, start_s, now_ms, Observation::Increment(3.0)).unwrap(),
            MetricKind::Gauge => aggregator.record(series, start_s, now_ms, Observation::Gauge(17.0)).unwrap(),
        }
    }
    let active = HEAP.load(Ordering::Relaxed) - before;
    let n_timing = keys.iter().filter(|(_, k)| *k == MetricKind::Timing).count();
    let batch = aggregator.drain(i64::MAX, now_ms);
    let rollup_bytes: usize = batch.rollups.iter().map(|r| r.rollup.heap_bytes()).sum();
    let batch_bytes = batch.rollups.capacity() * std::mem::size_of_val(&batch.rollups[0])
        + batch.new_series.capacity() * std::mem::size_of_val(&batch.new_series[0])
        + batch.new_series.iter().map(|s| s.key.len()).sum::<usize>()
        + rollup_bytes;
    let idle = HEAP.load(Ordering::Relaxed) - before - batch_bytes as isize;
    drop(batch);
    println!("series: {N_SERIES} ({n_timing} timings with 10 observations each, the rest counters and gauges)");
    println!("active (open interval held): {:.0} bytes/series", active as f64 / N_SERIES as f64);
    println!("  of which sketch bins: {:.0} bytes per timing series", rollup_bytes as f64 / n_timing as f64);
    println!("idle (after a flush drained them): {:.0} bytes/series", idle as f64 / N_SERIES as f64);
}
