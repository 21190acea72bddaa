//! The writer thread: applies each flush batch in one transaction (merging into rows a late
//! sample already created), then downsamples closed windows and, now and then, expires old rows.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::mpsc;

use super::codec::encode_f64s;
use super::downsample::Downsampler;
use super::tiers::Tier;
use super::upsert::RollupUpsert;
use super::{StoreError, WriterMsg, retention};
use crate::aggregate::batch::FlushBatch;
use crate::model::SeriesKey;
use crate::telemetry;

/// How often the writer expires rows on its own.
const EXPIRE_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, Default)]
pub struct FlushReport {
    pub n_rollups: usize,
    pub duration: Duration,
}

pub struct Writer {
    conn: Connection,
    tiers: Vec<Tier>,
    downsampler: Downsampler,
    last_expire: Option<Instant>,
}

impl Writer {
    pub fn new(conn: Connection, tiers: Vec<Tier>) -> Result<Writer, StoreError> {
        let downsampler = Downsampler::load(&conn, &tiers)?;
        Ok(Writer { conn, tiers, downsampler, last_expire: None })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(msg) = rx.blocking_recv() {
            let started = Instant::now();
            let job = match &msg {
                WriterMsg::Flush { .. } => "flush",
                WriterMsg::Expire { .. } => "expire",
                WriterMsg::Write(_) => "write",
            };
            match msg {
                WriterMsg::Flush { batch, reply } => {
                    let result = self.flush(&batch);
                    if let Err(err) = &result {
                        tracing::error!(seq = batch.seq, error = %err, "flush failed; will retry");
                    }
                    let _ = reply.send(result);
                    self.maintain(batch.accept_floor_s);
                }
                WriterMsg::Expire { now_s, reply } => {
                    let _ = reply.send(retention::expire(&mut self.conn, &self.tiers, now_s));
                }
                WriterMsg::Write(job) => job(&mut self.conn),
            }
            crate::telemetry::store_write(job, started.elapsed());
        }
        tracing::debug!("store writer finished");
    }

    fn flush(&mut self, batch: &FlushBatch) -> Result<FlushReport, StoreError> {
        let started = Instant::now();
        let tx = self.conn.transaction()?;
        insert_series(&tx, batch)?;
        {
            let mut upsert = RollupUpsert::new(&tx, &self.tiers[0].raw_table())?;
            for delta in &batch.rollups {
                upsert.merge(delta.series, delta.start_s, &delta.rollup)?;
            }
        }
        for change in &batch.cumulative {
            match &change.values {
                Some(values) => tx.execute(
                    "INSERT INTO push_state (series_id, grp, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (series_id) DO UPDATE SET grp = excluded.grp, state = excluded.state",
                    params![change.series as i64, change.group as i64, encode_f64s(values)],
                )?,
                None => tx.execute("DELETE FROM push_state WHERE series_id = ?1", [change.series as i64])?,
            };
        }
        set_meta(&tx, "last_flush_seq", batch.seq as i64)?;
        tx.commit()?;
        let duration = started.elapsed();
        telemetry::flush_committed(batch.rollups.len(), duration);
        Ok(FlushReport { n_rollups: batch.rollups.len(), duration })
    }

    /// Downsampling and expiry; failures are logged and retried on the next flush.
    fn maintain(&mut self, accept_floor_s: i64) {
        if let Err(err) = self.downsampler.run(&mut self.conn, &self.tiers, accept_floor_s) {
            tracing::error!(error = %err, "downsampling failed; will retry after the next flush");
        }
        if self.last_expire.is_none_or(|t| t.elapsed() >= EXPIRE_EVERY) {
            self.last_expire = Some(Instant::now());
            match retention::expire(&mut self.conn, &self.tiers, crate::clock::now_s()) {
                Ok(n) if n > 0 => tracing::info!(rows = n, "expired rows past retention"),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "expiring old rows failed"),
            }
        }
    }
}

fn insert_series(tx: &Transaction<'_>, batch: &FlushBatch) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO series (id, name, key, kind, created_s) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind WHERE key = excluded.key",
    )?;
    let now_s = crate::clock::now_s();
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

pub fn set_meta(tx: &Transaction<'_>, key: &str, value: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
