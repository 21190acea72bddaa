//! What acknowledge links need from the database: the signing key (made once, kept with the
//! data so links survive restarts) and the links already used (each works once).

use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::reader::ReadTx;

/// The secret named `name`, made from 32 random bytes the first time.
pub fn secret(tx: &Transaction<'_>, name: &str) -> Result<Vec<u8>, StoreError> {
    let existing: Option<Vec<u8>> =
        tx.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| r.get(0)).optional()?;
    if let Some(value) = existing {
        return Ok(value);
    }
    let value: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    tx.execute("INSERT INTO secrets (name, value) VALUES (?1, ?2)", params![name, value])?;
    Ok(value)
}

/// Marks link `nonce` used by `by`; when it already was, returns who used it and when.
pub fn use_link(tx: &Transaction<'_>, nonce: &str, by: &str, now_s: i64) -> Result<Option<(String, i64)>, StoreError> {
    let earlier: Option<(String, i64)> = tx
        .query_row("SELECT used_by, used_s FROM used_ack_links WHERE nonce = ?1", [nonce], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if earlier.is_none() {
        tx.execute(
            "INSERT INTO used_ack_links (nonce, used_by, used_s) VALUES (?1, ?2, ?3)",
            params![nonce, by, now_s],
        )?;
    }
    Ok(earlier)
}

impl ReadTx<'_> {
    /// Who used ack link `nonce` and when, if it was used.
    pub fn link_use(&self, nonce: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .sql()
            .query_row("SELECT used_by, used_s FROM used_ack_links WHERE nonce = ?1", [nonce], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// One notification group's saved state (JSON).
    pub fn notify_group(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.sql().query_row("SELECT state FROM notify_groups WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }
}
