//! [`Tx`]: one operation's view of the database, and the reads and writes the store's operations
//! are made of.

use std::cell::Cell;

use rusqlite::{Connection, OptionalExtension, params};

use super::{NONCE, REFRESH_MARKER, REVOKED_FAMILY, SWEEP_EVERY};
use crate::model::{ApiKey, ApiKeyId, Timestamp};
use crate::replay::{ReplayNonce, Seen};
use crate::store::{Record, StoreError, WriteError};

/// One operation's view of the database (its savepoint in the writer's batch, or a read
/// connection), with the reads and writes the operations are made of.
pub(super) struct Tx<'a> {
    pub(super) connection: &'a Connection,
    /// Counts lapsing writes, to sweep lapsed rows now and then.
    pub(super) lapsing_writes: &'a Cell<u64>,
}

impl Tx<'_> {
    pub(super) fn fail(&self, err: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(err.to_string())
    }

    /// Runs a statement; each is prepared once per connection, then taken from its cache.
    pub(super) fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        let mut statement = self.connection.prepare_cached(sql).map_err(|e| self.fail(e))?;
        statement.execute(params).map_err(|e| self.fail(e))
    }

    /// One column (`id` or `item`) of a domain's keys, oldest first (by `created_at`, then id).
    pub(super) fn domain_column(&self, column: &str, domain_id: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT {column} FROM keys WHERE domain_id = ?1 ORDER BY created_at, id");
        let mut statement = self.connection.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        let rows =
            statement.query_map([domain_id], |row| row.get::<_, String>(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(e))
    }

    /// A stored key's JSON, read as `T` (a whole key, or its listing only).
    pub(super) fn parse_item<T: serde::de::DeserializeOwned>(&self, json: &str) -> Result<T, StoreError> {
        serde_json::from_str(json).map_err(|e| self.fail(format!("stored key: {e}")))
    }

    /// The first row's value, if any.
    pub(super) fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        value: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut statement = self.connection.prepare_cached(sql).map_err(|e| self.fail(e))?;
        statement.query_row(params, value).optional().map_err(|e| self.fail(e))
    }

    pub(super) fn key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let item: Option<String> =
            self.query_one("SELECT item FROM keys WHERE id = ?1", [id.as_str()], |row| row.get(0))?;
        item.map(|json| self.parse_item(&json)).transpose()
    }

    /// Rewrites a stored key. Only its item: a change never moves a key to another domain or
    /// creation time, so the domain index is left as it is.
    pub(super) fn update_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let item = serde_json::to_string(key).map_err(|e| self.fail(e))?;
        match self
            .execute("UPDATE keys SET item = ?2 WHERE id = ?1", params![key.api_key_id.as_str(), item])?
        {
            1 => Ok(()),
            rows => Err(self.fail(format!("an update of key {} changed {rows} rows", key.api_key_id))),
        }
    }

    /// Inserts the key (`verb` says what happens when its id is taken); says whether it did.
    pub(super) fn insert_key(&self, verb: &str, key: &ApiKey) -> Result<bool, StoreError> {
        let item = serde_json::to_string(key).map_err(|e| self.fail(e))?;
        let sql = format!("{verb} INTO keys (id, domain_id, created_at, item) VALUES (?1, ?2, ?3, ?4)");
        let params = params![key.api_key_id.as_str(), key.domain_id, key.created_at.timestamp_millis(), item];
        Ok(self.execute(&sql, params)? == 1)
    }

    /// Inserts a lapsing row unless one with its id is there; says whether it did.
    pub(super) fn add_lapsing(
        &self,
        kind: &str,
        id: &str,
        lapses_at: Timestamp,
        request: Option<&str>,
    ) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT OR IGNORE INTO lapsing (kind, id, lapses_at, request) VALUES (?1, ?2, ?3, ?4)",
            params![kind, id, lapses_at.timestamp_millis(), request],
        )?;
        Ok(inserted == 1)
    }

    pub(super) fn records(&self) -> Result<Vec<Record>, StoreError> {
        let fail = |e: rusqlite::Error| self.fail(e);
        let mut records = Vec::new();
        let mut keys = self.connection.prepare("SELECT item FROM keys").map_err(fail)?;
        for item in keys.query_map([], |row| row.get::<_, String>(0)).map_err(fail)? {
            records.push(Record::Key(self.parse_item(&item.map_err(fail)?)?));
        }
        let mut lapsing =
            self.connection.prepare("SELECT kind, id, lapses_at, request FROM lapsing").map_err(fail)?;
        let rows = lapsing.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        });
        for row in rows.map_err(fail)? {
            let (kind, id, lapses_at, request) = row.map_err(fail)?;
            let lapses_at = Timestamp::from_timestamp_millis(lapses_at)
                .ok_or_else(|| self.fail("stored time out of range"))?;
            records.push(match kind.as_str() {
                REFRESH_MARKER => Record::RefreshMarker { jti: id, lapses_at },
                REVOKED_FAMILY => Record::RevokedFamily { family: id, lapses_at },
                NONCE => Record::ReplayNonce { id, request: request.unwrap_or_default(), lapses_at },
                other => return Err(self.fail(format!("unknown lapsing row kind {other}"))),
            });
        }
        Record::sort(&mut records);
        Ok(records)
    }

    pub(super) fn add_record(&self, record: &Record) -> Result<bool, StoreError> {
        match record {
            Record::Key(key) => self.insert_key("INSERT OR IGNORE", key),
            Record::RefreshMarker { jti, lapses_at } => {
                self.add_lapsing(REFRESH_MARKER, jti, *lapses_at, None)
            }
            Record::RevokedFamily { family, lapses_at } => {
                self.add_lapsing(REVOKED_FAMILY, family, *lapses_at, None)
            }
            Record::ReplayNonce { id, request, lapses_at } => {
                self.add_lapsing(NONCE, id, *lapses_at, Some(request))
            }
        }
    }

    pub(super) fn delete_key(&self, id: &ApiKeyId) -> Result<(), StoreError> {
        self.execute("DELETE FROM keys WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    /// The request of a live lapsing row (`Some(None)` for rows without one), `None` if absent or
    /// lapsed.
    pub(super) fn live(
        &self,
        kind: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<Option<String>>, StoreError> {
        self.query_one(
            "SELECT request FROM lapsing WHERE kind = ?1 AND id = ?2 AND lapses_at > ?3",
            params![kind, id, now.timestamp_millis()],
            |row| row.get(0),
        )
    }

    pub(super) fn put_lapsing(
        &self,
        kind: &str,
        id: &str,
        lapses_at: Timestamp,
        request: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO lapsing (kind, id, lapses_at, request) VALUES (?1, ?2, ?3, ?4)",
            params![kind, id, lapses_at.timestamp_millis(), request],
        )?;
        let writes = self.lapsing_writes.get() + 1;
        self.lapsing_writes.set(writes);
        if writes.is_multiple_of(SWEEP_EVERY) {
            self.execute("DELETE FROM lapsing WHERE lapses_at <= ?1", [now.timestamp_millis()])?;
        }
        Ok(())
    }

    pub(super) fn seen(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<Seen, StoreError> {
        let stored_by = self.live(NONCE, &nonce.id, now)?.map(Option::unwrap_or_default);
        Ok(nonce.seen(stored_by.as_deref()))
    }

    pub(super) fn keep(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), StoreError> {
        self.put_lapsing(NONCE, &nonce.id, nonce.expires_at, Some(&nonce.request), now)
    }

    /// Applies `change` to the key if `condition` holds, else hands back the key as it was.
    pub(super) fn update_key_if(
        &self,
        id: &ApiKeyId,
        condition: impl FnOnce(&ApiKey) -> bool,
        change: impl FnOnce(&mut ApiKey),
    ) -> Result<ApiKey, WriteError> {
        match self.key(id)? {
            Some(mut key) if condition(&key) => {
                change(&mut key);
                self.update_key(&key)?;
                Ok(key)
            }
            other => Err(WriteError::Rejected(other.map(Box::new))),
        }
    }
}
