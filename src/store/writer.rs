//! The writer thread: applies each flush batch in one transaction (merging into rows a late
//! sample already created), then downsamples closed windows and, now and then, expires old rows.
//!
//! A batch that fails for a reason retrying cannot cure (a rollup that is not finite, a stored
//! row that does not read back) is applied again row by row: the rows that fail are moved to
//! the `quarantine` table, counted and logged, and the rest commit, so one bad rollup never
//! blocks the flushes behind it. A full disk, an I/O error or a busy database fail the batch
//! as a whole, to be retried in order.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::mpsc;

use super::codec::encode_f64s;
use super::downsample::Downsampler;
use super::meta::set_meta;
use super::tiers::Tier;
use super::upsert::RollupUpsert;
use super::{StoreError, WriterMsg, retention};
use crate::aggregate::batch::{FlushBatch, RollupDelta};
use crate::aggregate::rollup::Rollup;
use crate::model::SeriesKey;
use crate::telemetry;

/// How often (in the batches' time) the writer expires rows on its own.
const EXPIRE_EVERY_S: i64 = 300;

#[derive(Debug, Clone, Copy, Default)]
pub struct FlushReport {
    pub n_rollups: usize,
    /// Rollups moved to the quarantine table instead of the tier.
    pub n_quarantined: usize,
    pub duration: Duration,
}

/// How a batch's rollups are written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// All in one go; any failure fails the batch.
    Whole,
    /// Each row under its own savepoint; a row that fails is quarantined.
    RowByRow,
}

pub struct Writer {
    conn: Connection,
    tiers: Vec<Tier>,
    downsampler: Downsampler,
    /// The batch time of the last expiry.
    last_expire_s: Option<i64>,
    /// Tier 0's sealed watermark: a rollup before it merges into its block (see `seal.rs`).
    sealed_before: i64,
}

impl Writer {
    pub fn new(conn: Connection, tiers: Vec<Tier>) -> Result<Writer, StoreError> {
        let downsampler = Downsampler::load(&conn, &tiers)?;
        let sealed_before = super::meta::get_meta(&conn, &tiers[0].sealed_key())?.unwrap_or(i64::MIN);
        Ok(Writer { conn, tiers, downsampler, last_expire_s: None, sealed_before })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(msg) = rx.blocking_recv() {
            // A panic in one job (a bug) loses that job's answer, not the writer: its
            // transaction rolls back while unwinding and the next message is served.
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(msg)));
            if let Err(panic) = handled {
                let cause = format!("it panicked: {}", super::reader::panic_message(panic.as_ref()));
                telemetry::task_failed("store writer", &cause, true);
            }
        }
        tracing::debug!("store writer finished");
    }

    fn handle(&mut self, msg: WriterMsg) {
        {
            let started = Instant::now();
            let job = match &msg {
                WriterMsg::Flush { .. } => "flush",
                WriterMsg::Write(_) => "write",
            };
            match msg {
                WriterMsg::Flush { batch, reply } => {
                    let result = self.flush(&batch);
                    let committed = result.is_ok();
                    if let Err(err) = &result {
                        tracing::error!(seq = batch.seq, error = %err, "flush failed; will retry");
                    }
                    let _ = reply.send(result);
                    // Only after a commit: the downsampler treats everything below the batch's
                    // floor as final, which holds only once the batch is on disk.
                    if committed {
                        self.maintain(batch.accept_floor_s, batch.now_s);
                    }
                }
                WriterMsg::Write(job) => job(&mut self.conn),
            }
            crate::telemetry::store_write(job, started.elapsed());
        }
    }

    fn flush(&mut self, batch: &FlushBatch) -> Result<FlushReport, StoreError> {
        match self.apply(batch, Mode::Whole) {
            Err(err) if !err.is_transient() => {
                tracing::warn!(seq = batch.seq, error = %err, "flush failed; writing it row by row to set bad rows aside");
                self.apply(batch, Mode::RowByRow)
            }
            result => result,
        }
    }

    fn apply(&mut self, batch: &FlushBatch, mode: Mode) -> Result<FlushReport, StoreError> {
        let started = Instant::now();
        let tx = self.conn.transaction()?;
        insert_series(&tx, batch)?;
        let mut quarantined = Vec::new();
        {
            let mut upsert = RollupUpsert::new(&tx, &self.tiers[0].raw_table())?;
            let (raw, sealed_before) = (&self.tiers[0], self.sealed_before);
            let mut write = |delta: &RollupDelta| {
                if delta.start_s < sealed_before {
                    super::seal::merge_into_block(&tx, raw, delta.series, delta.start_s, &delta.rollup)
                } else {
                    upsert.merge(delta.series, delta.start_s, &delta.rollup)
                }
            };
            for delta in &batch.rollups {
                let written = if !storable(&delta.rollup) {
                    Err(StoreError::NotFinite)
                } else if mode == Mode::RowByRow {
                    in_savepoint(&tx, || write(delta))
                } else {
                    write(delta)
                };
                match written {
                    Ok(()) => {}
                    Err(err)
                        if err.is_transient() || (mode == Mode::Whole && !matches!(err, StoreError::NotFinite)) =>
                    {
                        return Err(err);
                    }
                    Err(err) => {
                        quarantine(&tx, batch.seq, delta, &err)?;
                        quarantined.push((delta.series, delta.start_s, err.to_string()));
                    }
                }
            }
        }
        for change in &batch.cumulative {
            match &change.values {
                Some(values) => tx.execute(
                    "INSERT INTO push_state (series_id, grp, state, updated_s) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (series_id) DO UPDATE SET grp = excluded.grp, state = excluded.state, updated_s = excluded.updated_s",
                    params![change.series as i64, change.group as i64, encode_f64s(values), batch.now_s],
                )?,
                None => tx.execute("DELETE FROM push_state WHERE series_id = ?1", [change.series as i64])?,
            };
        }
        set_meta(&tx, "last_flush_seq", batch.seq as i64)?;
        tx.commit()?;
        // Told only once committed: a try that rolls back (and is retried) sets nothing aside.
        for (series, start_s, why) in &quarantined {
            telemetry::rollup_quarantined(*series, *start_s, why);
        }
        let n_quarantined = quarantined.len();
        let duration = started.elapsed();
        let n_rollups = batch.rollups.len() - n_quarantined;
        telemetry::flush_committed(n_rollups, duration);
        Ok(FlushReport { n_rollups, n_quarantined, duration })
    }

    /// Downsampling and expiry as of `now_s` (the batch's time); failures are logged and
    /// retried on the next flush.
    fn maintain(&mut self, accept_floor_s: i64, now_s: i64) {
        if let Err(err) = self.downsampler.run(&mut self.conn, &self.tiers, accept_floor_s) {
            tracing::error!(error = %err, "downsampling failed; will retry after the next flush");
        }
        match super::seal::run(&mut self.conn, &self.tiers, accept_floor_s) {
            Ok(Some(sealed_before)) => self.sealed_before = sealed_before,
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "sealing tier 0's final rows into blocks failed; will retry after the next flush")
            }
        }
        if self.last_expire_s.is_none_or(|t| now_s - t >= EXPIRE_EVERY_S) {
            self.last_expire_s = Some(now_s);
            match retention::expire(&mut self.conn, &self.tiers, now_s) {
                Ok(n) if n > 0 => tracing::info!(rows = n, "expired rows past retention"),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "expiring old rows failed"),
            }
        }
    }
}

/// Whether SQLite can store `rollup` as it is: NaN would become NULL, which the tiers refuse.
fn storable(rollup: &Rollup) -> bool {
    rollup.count.is_finite()
        && rollup.sum.is_finite()
        && ![rollup.min, rollup.max, rollup.last].iter().any(|v| v.is_nan())
}

/// Runs `write` under a savepoint, rolled back if it fails.
fn in_savepoint(tx: &Transaction<'_>, write: impl FnOnce() -> Result<(), StoreError>) -> Result<(), StoreError> {
    tx.execute_batch("SAVEPOINT row")?;
    let result = write();
    if result.is_err() {
        tx.execute_batch("ROLLBACK TO row")?;
    }
    tx.execute_batch("RELEASE row")?;
    result
}

/// Sets `delta` aside in the quarantine table, with why it could not be stored.
fn quarantine(tx: &Transaction<'_>, seq: u64, delta: &RollupDelta, why: &StoreError) -> Result<(), StoreError> {
    let r = &delta.rollup;
    let sketch = r.sketch.as_ref().map(|s| s.to_blob());
    tx.execute(
        "INSERT INTO quarantine (at_s, flush_seq, series_id, start_s, reason, count, sum, min, max, last, last_ms, sketch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            crate::clock::now_s(),
            seq as i64,
            delta.series as i64,
            delta.start_s,
            why.to_string(),
            r.count,
            r.sum,
            r.min,
            r.max,
            r.last,
            r.last_ms,
            sketch
        ],
    )?;
    Ok(())
}

fn insert_series(tx: &Transaction<'_>, batch: &FlushBatch) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO series (id, name, key, kind, created_s) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, created_s = excluded.created_s
         WHERE key = excluded.key",
    )?;
    // `created_s` is when the series last came into memory (new, or back after it idled out):
    // retention never forgets a series that came back within the longest retention.
    let now_s = batch.now_s;
    for series in &batch.new_series {
        let name = SeriesKey::parse(&series.key).map(|k| k.name).unwrap_or_default();
        let changed = insert.execute(params![series.id as i64, name, &*series.key, series.kind.to_code(), now_s])?;
        if changed == 0 {
            let stored: Option<String> =
                tx.query_row("SELECT key FROM series WHERE id = ?1", [series.id as i64], |r| r.get(0)).optional()?;
            tracing::error!(id = series.id, key = %series.key, ?stored, "series id collision; data of both series is merged");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::aggregate::batch::NewSeries;
    use crate::model::{MetricKind, series_id};

    /// One observation for each of `keys` at `start_s`.
    fn batch(seq: u64, start_s: i64, floor: i64, keys: &[String]) -> Arc<FlushBatch> {
        let mut rollup = Rollup::empty(true);
        rollup.observe(0.1, 1.0, start_s * 1000);
        let ids = keys.iter().map(|key| (series_id(key), key));
        Arc::new(FlushBatch {
            seq,
            accept_floor_s: floor,
            now_s: floor,
            new_series: ids
                .clone()
                .map(|(id, key)| NewSeries { id, key: key.as_str().into(), kind: MetricKind::Timing })
                .collect(),
            rollups: ids.map(|(id, _)| RollupDelta { series: id, start_s, rollup: rollup.clone() }).collect(),
            ..FlushBatch::default()
        })
    }

    fn flush(writer: &mut Writer, batch: &Arc<FlushBatch>) -> Result<FlushReport, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        writer.handle(WriterMsg::Flush { batch: batch.clone(), reply });
        answer.try_recv().expect("the writer answers before it returns")
    }

    /// Defect 8: downsampling ran after a failed flush, up to that batch's floor, so the batch's
    /// rows, committed on the retry, lay below the coarse tier's watermark and were never rolled
    /// up. The flush fails here as on a full disk (SQLite's page limit), while the downsampling
    /// run, a row into a page that has room, would succeed.
    #[test]
    fn a_failed_flush_is_not_followed_by_downsampling_past_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let tiers =
            vec![Tier { resolution_s: 10, retention_s: 1 << 40 }, Tier { resolution_s: 60, retention_s: 1 << 40 }];
        let mut conn = super::super::open_connection(&dir.path().join("w.db"), false).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        super::super::schema::migrate(&mut conn, &tiers).unwrap();
        let mut writer = Writer::new(conn, tiers).unwrap();
        let t0 = 3600;
        let lat = vec!["lat".to_owned()];
        flush(&mut writer, &batch(1, t0, t0 + 10, &lat)).expect("the first batch commits");

        let pages: i64 = writer.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        writer.conn.pragma_update(None, "max_page_count", pages).unwrap();
        let many: Vec<String> = lat.iter().cloned().chain((0..2000).map(|i| format!("other{{n=\"{i}\"}}"))).collect();
        let second = batch(2, t0 + 60, t0 + 180, &many);
        let err = flush(&mut writer, &second).expect_err("the batch needs more pages than the database may have");
        assert!(err.is_transient(), "{err}");
        writer.conn.pragma_update(None, "max_page_count", i64::from(u32::MAX - 1)).unwrap();
        flush(&mut writer, &second).expect("the retry commits");

        let minutes: Vec<i64> = writer
            .conn
            .prepare("SELECT start_s FROM rollup_60s WHERE series_id = ?1 ORDER BY start_s")
            .unwrap()
            .query_map([series_id("lat") as i64], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(minutes, vec![t0, t0 + 60], "both minutes reach the coarse tier");
    }

    /// A sample for an interval already sealed (the clock stepped back across a restart, so
    /// the accept floor let it in) merges into its block: the raw table never holds a row
    /// below the sealed watermark, which readers rely on to see each row once.
    #[test]
    fn a_late_rollup_below_the_sealed_watermark_merges_into_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = vec![Tier { resolution_s: 10, retention_s: 1 << 40 }];
        let mut conn = super::super::open_connection(&dir.path().join("w.db"), false).unwrap();
        super::super::schema::migrate(&mut conn, &tiers).unwrap();
        let mut writer = Writer::new(conn, tiers.clone()).unwrap();
        let lat = vec!["lat".to_owned()];
        for (seq, start) in (3600..4000).step_by(10).enumerate() {
            flush(&mut writer, &batch(seq as u64 + 1, start, start - 10, &lat)).unwrap();
        }
        // Blocks are 300 s: 3,600..3,900 is sealed once the floor passed 3,900.
        assert_eq!(writer.sealed_before, 3900);
        let late = batch(100, 3650, 3990, &lat);
        flush(&mut writer, &late).unwrap();

        let raw_below: i64 =
            writer.conn.query_row("SELECT count(*) FROM raw_10s WHERE start_s < 3900", [], |r| r.get(0)).unwrap();
        assert_eq!(raw_below, 0);
        let blob: Vec<u8> = writer
            .conn
            .query_row(
                "SELECT rows FROM sealed_10s WHERE series_id = ?1 AND start_s = 3600",
                [series_id("lat") as i64],
                |r| r.get(0),
            )
            .unwrap();
        let rows: Vec<_> = super::super::block::rows(&blob, 3600, 10).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 30);
        let counts: Vec<f64> = rows.iter().map(|r| r.scalars.count).collect();
        assert_eq!(counts.iter().sum::<f64>(), 31.0, "{counts:?}");
        assert_eq!(rows.iter().find(|r| r.start_s == 3650).unwrap().scalars.count, 2.0);
    }
}
