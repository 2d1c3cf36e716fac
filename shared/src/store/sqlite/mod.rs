//! The durable embedded store: one SQLite file (WAL, `synchronous=FULL`). Each write operation is
//! atomic in a savepoint of its own inside a batch transaction, and returns only once that batch
//! is committed and on disk, as a DynamoDB conditional write is durable when it answers; batches
//! are how concurrent writes share one disk flush (see `connections`). Keys are kept whole as
//! JSON beside the columns lists need; markers, revocations and nonces lapse at their time and
//! are swept now and then.

mod connections;

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use self::connections::{Job, Pending, Readers, unavailable};
use super::{Imported, KeyListing, ListingFilter, Record, RefreshMarker, Store, StoreError, WriteError};
use crate::model::{ApiKey, ApiKeyId, KeyChange, SecretHash, Timestamp};
use crate::replay::{ReplayNonce, Seen};

/// Forward migrations; the database's `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        domain_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        item TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX keys_by_domain ON keys (domain_id, created_at, id);
    CREATE TABLE lapsing (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        lapses_at INTEGER NOT NULL,
        request TEXT,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
",
    "
    CREATE INDEX lapsing_by_time ON lapsing (lapses_at);
",
];

/// Lapsed rows are swept after this many lapsing writes.
const SWEEP_EVERY: u64 = 1024;

const REFRESH_MARKER: &str = "JTI";
const REVOKED_FAMILY: &str = "FAM";
const NONCE: &str = "SIG";

pub struct SqliteStore {
    writer: mpsc::SyncSender<Job>,
    readers: Arc<Readers>,
    /// The one thread that reads whole domains, at the lowest priority.
    scans: mpsc::Sender<Scan>,
}

/// A read of a whole domain, for the scan thread.
type Scan = Box<dyn FnOnce() + Send>;

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = connections::open(path)?;
        migrate(&mut connection)?;
        Ok(Self {
            writer: connections::start_writer(connection)?,
            readers: Arc::new(Readers::new(path)),
            scans: start_scanner()?,
        })
    }

    /// Runs `work` as one operation of the writer's next batch: its changes are kept if it
    /// returns `Ok`, and it answers only once they are durable.
    async fn write<T, F>(&self, operation: &'static str, work: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, WriteError> + Send + 'static,
    {
        let (caller, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |tx| match caller.is_closed() {
            true => Pending::abandoned(),
            false => Pending::of(work(tx).map_err(|err| named(operation, err)), caller),
        });
        self.writer.try_send(job).map_err(|err| match err {
            mpsc::TrySendError::Full(_) => WriteError::Store(StoreError::Unavailable(format!(
                "{operation}: {} writes already wait for the disk",
                connections::MAX_QUEUED
            ))),
            mpsc::TrySendError::Disconnected(_) => stopped(operation),
        })?;
        answer.await.map_err(|_| stopped(operation))?
    }

    /// Runs `read` on a read connection, on a blocking thread: for reads that may take
    /// milliseconds (a domain's keys, an export).
    async fn read<T, F>(&self, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_on_blocking_thread(operation, on_connection(operation, read)).await
    }

    /// A lookup by id. It runs on the calling thread when an idle read connection is at hand: from
    /// SQLite's page cache it takes microseconds, less than the hand-off to a blocking thread and
    /// back, which was most of a detail request's time. Else a blocking thread opens a connection.
    async fn look_up<T, F>(&self, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        match self.readers.with_idle(on_connection(operation, read)) {
            Ok(outcome) => outcome,
            Err(read) => self.read_on_blocking_thread(operation, read).await,
        }
    }

    /// Runs `read` on a read connection, on the scan thread, at the lowest priority: for the reads
    /// of a whole domain that admin queries make (parsing 10,000 keys takes tens of milliseconds),
    /// which must not take a core from the requests being served. One thread, whatever the
    /// number of queries, so memory and CPU stay bounded even by requests dropped mid-read.
    async fn read_in_background<T, F>(&self, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (readers, (answer, answered)) = (self.readers.clone(), tokio::sync::oneshot::channel());
        let read = on_connection(operation, read);
        let scan: Scan = Box::new(move || {
            // A request that went away (its client closed the connection) needs its read no
            // more: so dropped requests cost nothing, and scans never pile up.
            if !answer.is_closed() {
                let _ = answer.send(readers.with(read));
            }
        });
        self.scans
            .send(scan)
            .map_err(|_| StoreError::Unavailable(format!("{operation}: the scan thread has stopped")))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable(format!("{operation}: the read did not answer")))??
    }

    async fn read_on_blocking_thread<T, F>(&self, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(read)?)
            .await
            .map_err(|err| StoreError::Unavailable(format!("{operation}: {err}")))?
    }
}

/// `read` as a read connection runs it, its failures named after `operation`.
fn on_connection<T>(
    operation: &'static str,
    read: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
) -> impl FnOnce(&Connection) -> Result<T, StoreError> {
    move |connection| {
        let tx = Tx { connection, lapsing_writes: &Cell::new(0) };
        read(&tx).map_err(|err| prefixed(operation, err))
    }
}

/// The writer did not answer: the operation panicked, its batch could not begin, or the writer
/// has ended.
fn stopped(operation: &'static str) -> WriteError {
    WriteError::Store(StoreError::Unavailable(format!("{operation}: the writer did not answer")))
}

fn prefixed(operation: &'static str, StoreError::Unavailable(reason): StoreError) -> StoreError {
    StoreError::Unavailable(format!("{operation}: {reason}"))
}

/// Names the operation in a store failure.
fn named(operation: &'static str, err: WriteError) -> WriteError {
    match err {
        WriteError::Store(err) => WriteError::Store(prefixed(operation, err)),
        other => other,
    }
}

/// Brings the schema up to date, then sweeps what lapsed while the store was closed. The version
/// is read inside the write transaction, so two processes starting on one new file (a server and
/// an import) migrate it once.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable("migrate"))?;
    let version: usize =
        transaction.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(unavailable("migrate"))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database's schema version {version} is newer than this keygate knows ({})",
            MIGRATIONS.len()
        )));
    }
    for migration in &MIGRATIONS[version..] {
        transaction.execute_batch(migration).map_err(unavailable("migrate"))?;
    }
    transaction.pragma_update(None, "user_version", MIGRATIONS.len()).map_err(unavailable("migrate"))?;
    let now = crate::model::now().timestamp_millis();
    transaction.execute("DELETE FROM lapsing WHERE lapses_at <= ?1", [now]).map_err(unavailable("sweep"))?;
    transaction.commit().map_err(unavailable("migrate"))
}

/// One operation's view of the database (its savepoint in the writer's batch, or a read
/// connection), with the reads and writes the operations are made of.
struct Tx<'a> {
    connection: &'a Connection,
    /// Counts lapsing writes, to sweep lapsed rows now and then.
    lapsing_writes: &'a Cell<u64>,
}

impl Tx<'_> {
    fn fail(&self, err: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(err.to_string())
    }

    /// Runs a statement; each is prepared once per connection, then taken from its cache.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        let mut statement = self.connection.prepare_cached(sql).map_err(|e| self.fail(e))?;
        statement.execute(params).map_err(|e| self.fail(e))
    }

    /// One column (`id` or `item`) of a domain's keys, oldest first (by `created_at`, then id).
    fn domain_column(&self, column: &str, domain_id: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT {column} FROM keys WHERE domain_id = ?1 ORDER BY created_at, id");
        let mut statement = self.connection.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        let rows =
            statement.query_map([domain_id], |row| row.get::<_, String>(0)).map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(e))
    }

    /// A stored key's JSON, read as `T` (a whole key, or its listing only).
    fn parse_item<T: serde::de::DeserializeOwned>(&self, json: &str) -> Result<T, StoreError> {
        serde_json::from_str(json).map_err(|e| self.fail(format!("stored key: {e}")))
    }

    /// The first row's value, if any.
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        value: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut statement = self.connection.prepare_cached(sql).map_err(|e| self.fail(e))?;
        statement.query_row(params, value).optional().map_err(|e| self.fail(e))
    }

    fn key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let item: Option<String> =
            self.query_one("SELECT item FROM keys WHERE id = ?1", [id.as_str()], |row| row.get(0))?;
        item.map(|json| self.parse_item(&json)).transpose()
    }

    /// Rewrites a stored key. Only its item: a change never moves a key to another domain or
    /// creation time, so the domain index is left as it is.
    fn update_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let item = serde_json::to_string(key).map_err(|e| self.fail(e))?;
        match self
            .execute("UPDATE keys SET item = ?2 WHERE id = ?1", params![key.api_key_id.as_str(), item])?
        {
            1 => Ok(()),
            rows => Err(self.fail(format!("an update of key {} changed {rows} rows", key.api_key_id))),
        }
    }

    /// Inserts the key (`verb` says what happens when its id is taken); says whether it did.
    fn insert_key(&self, verb: &str, key: &ApiKey) -> Result<bool, StoreError> {
        let item = serde_json::to_string(key).map_err(|e| self.fail(e))?;
        let sql = format!("{verb} INTO keys (id, domain_id, created_at, item) VALUES (?1, ?2, ?3, ?4)");
        let params = params![key.api_key_id.as_str(), key.domain_id, key.created_at.timestamp_millis(), item];
        Ok(self.execute(&sql, params)? == 1)
    }

    /// Inserts a lapsing row unless one with its id is there; says whether it did.
    fn add_lapsing(
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

    fn records(&self) -> Result<Vec<Record>, StoreError> {
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

    fn add_record(&self, record: &Record) -> Result<bool, StoreError> {
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

    fn delete_key(&self, id: &ApiKeyId) -> Result<(), StoreError> {
        self.execute("DELETE FROM keys WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    /// The request of a live lapsing row (`Some(None)` for rows without one), `None` if absent or
    /// lapsed.
    fn live(&self, kind: &str, id: &str, now: Timestamp) -> Result<Option<Option<String>>, StoreError> {
        self.query_one(
            "SELECT request FROM lapsing WHERE kind = ?1 AND id = ?2 AND lapses_at > ?3",
            params![kind, id, now.timestamp_millis()],
            |row| row.get(0),
        )
    }

    fn put_lapsing(
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

    fn seen(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<Seen, StoreError> {
        let stored_by = self.live(NONCE, &nonce.id, now)?.map(Option::unwrap_or_default);
        Ok(nonce.seen(stored_by.as_deref()))
    }

    fn keep(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), StoreError> {
        self.put_lapsing(NONCE, &nonce.id, nonce.expires_at, Some(&nonce.request), now)
    }

    /// Applies `change` to the key if `condition` holds, else hands back the key as it was.
    fn update_key_if(
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError> {
        let (key, nonce) = (key.clone(), nonce.cloned());
        self.write("create key", move |tx| {
            let now = key.created_at;
            match nonce.as_ref().map(|nonce| tx.seen(nonce, now)).transpose()? {
                Some(Seen::OurOwn) => return Ok(()),
                Some(Seen::Replayed) => return Err(WriteError::Replayed),
                Some(Seen::New) | None => {}
            }
            if tx.key(&key.api_key_id)?.is_some() {
                return Err(WriteError::AlreadyExists);
            }
            if let Some(nonce) = &nonce {
                tx.keep(nonce, now)?;
            }
            tx.insert_key("INSERT", &key)?;
            Ok(())
        })
        .await
    }

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let id = id.clone();
        self.look_up("get key", move |tx| tx.key(&id)).await
    }

    async fn get_keys(&self, ids: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError> {
        let ids = ids.to_vec();
        self.read("get keys", move |tx| {
            let mut keys = Vec::with_capacity(ids.len());
            for id in &ids {
                keys.extend(tx.key(id)?);
            }
            Ok(keys)
        })
        .await
    }

    async fn list_key_ids(&self, domain_id: &str) -> Result<Vec<ApiKeyId>, StoreError> {
        let domain_id = domain_id.to_owned();
        self.read("list key ids", move |tx| {
            let ids = tx.domain_column("id", &domain_id)?;
            ids.iter()
                .map(|id| ApiKeyId::parse(id).ok_or_else(|| tx.fail(format!("stored key id {id:?}"))))
                .collect()
        })
        .await
    }

    async fn count_keys(&self, domain_id: &str) -> Result<usize, StoreError> {
        let domain_id = domain_id.to_owned();
        self.read("count keys", move |tx| {
            let count: Option<i64> =
                tx.query_one("SELECT COUNT(*) FROM keys WHERE domain_id = ?1", [&domain_id], |row| {
                    row.get(0)
                })?;
            Ok(usize::try_from(count.unwrap_or_default()).unwrap_or_default())
        })
        .await
    }

    /// The keys' JSON read as listings only: the hashes and counters are skipped, not parsed.
    async fn list_listings(
        &self,
        domain_id: &str,
        filter: &ListingFilter,
    ) -> Result<Vec<KeyListing>, StoreError> {
        let (domain_id, filter) = (domain_id.to_owned(), filter.clone());
        self.read_in_background("list listings", move |tx| {
            let mut listings = Vec::new();
            for json in tx.domain_column("item", &domain_id)? {
                let listing: KeyListing = tx.parse_item(&json)?;
                if filter.matches(&listing) {
                    listings.push(listing);
                }
            }
            Ok(listings)
        })
        .await
    }

    async fn list_keys(&self, domain_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let domain_id = domain_id.to_owned();
        self.read_in_background("list keys", move |tx| {
            tx.domain_column("item", &domain_id)?.iter().map(|json| tx.parse_item(json)).collect()
        })
        .await
    }

    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        let (id, secret) = (id.clone(), secret.clone());
        self.write("register key", move |tx| {
            tx.update_key_if(&id, |key| key.check_registrable(&secret).is_ok(), |key| key.register(now))
        })
        .await
    }

    async fn consume_for_token(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        let (id, secret) = (id.clone(), secret.clone());
        self.write("consume for token", move |tx| {
            tx.update_key_if(
                &id,
                |key| key.check_mintable(Some(&secret), now).is_ok(),
                |key| key.consume_unit(now),
            )
        })
        .await
    }

    async fn consume_for_refresh(
        &self,
        id: &ApiKeyId,
        marker: &RefreshMarker,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let (id, marker) = (id.clone(), marker.clone());
        self.write("consume for refresh", move |tx| {
            if tx.live(REFRESH_MARKER, &marker.jti, now)?.is_some() {
                return Err(WriteError::TokenReused);
            }
            if tx.live(REVOKED_FAMILY, &marker.family, now)?.is_some() {
                return Err(WriteError::FamilyRevoked);
            }
            tx.update_key_if(
                &id,
                |key| key.check_refreshable(marker.bought_with, now).is_ok(),
                |key| key.consume_unit(now),
            )?;
            tx.put_lapsing(REFRESH_MARKER, &marker.jti, marker.expires_at, None, now)?;
            Ok(())
        })
        .await
    }

    async fn change_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, WriteError> {
        let (id, domain_id, change, nonce) =
            (id.clone(), domain_id.to_owned(), change.clone(), nonce.clone());
        self.write("change key", move |tx| {
            let now = change.modified_at;
            let seen = tx.seen(&nonce, now)?;
            if let Seen::Replayed = seen {
                return Err(WriteError::Replayed);
            }
            let mut key = match tx.key(&id)? {
                Some(key) if key.domain_id == domain_id => key,
                _ => return Err(WriteError::Rejected(None)),
            };
            if let Seen::New = seen {
                key = key.changed(&change).ok_or(WriteError::Rejected(None))?;
                tx.update_key(&key)?;
            }
            tx.keep(&nonce, now)?;
            Ok(key)
        })
        .await
    }

    async fn delete_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let (id, domain_id, nonce) = (id.clone(), domain_id.to_owned(), nonce.clone());
        self.write("delete key", move |tx| {
            match tx.seen(&nonce, now)? {
                Seen::OurOwn => return Ok(()),
                Seen::Replayed => return Err(WriteError::Replayed),
                Seen::New => {}
            }
            if tx.key(&id)?.is_none_or(|key| key.domain_id != domain_id) {
                return Err(WriteError::Rejected(None));
            }
            tx.delete_key(&id)?;
            tx.keep(&nonce, now)?;
            Ok(())
        })
        .await
    }

    async fn spend_nonce(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), WriteError> {
        let nonce = nonce.clone();
        self.write("spend nonce", move |tx| match tx.seen(&nonce, now)? {
            Seen::OurOwn => Ok(()),
            Seen::Replayed => Err(WriteError::Replayed),
            Seen::New => Ok(tx.keep(&nonce, now)?),
        })
        .await
    }

    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let family = family.to_owned();
        self.write("revoke family", move |tx| {
            tx.put_lapsing(REVOKED_FAMILY, &family, expires_at, None, now)?;
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    async fn export(&self) -> Result<Vec<Record>, StoreError> {
        self.read("export", |tx| {
            // One read transaction, so the export is one moment's state.
            let _snapshot = tx.connection.unchecked_transaction().map_err(|e| tx.fail(e))?;
            tx.records()
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.read("is empty", |tx| {
            let sql = "SELECT NOT EXISTS (SELECT 1 FROM keys) AND NOT EXISTS (SELECT 1 FROM lapsing)";
            Ok(tx.query_one(sql, [], |row| row.get(0))?.unwrap_or(true))
        })
        .await
    }

    /// In one transaction: an import that fails midway leaves nothing of itself, so running it
    /// again needs no `--merge`. (A server sharing the file waits for it.)
    async fn import(&self, records: &[Record]) -> Result<Imported, StoreError> {
        let records = records.to_vec();
        self.write("import", move |tx| {
            let mut imported = Imported::default();
            for record in &records {
                imported.count(tx.add_record(record)?);
            }
            Ok(imported)
        })
        .await
        .map_err(store_error)
    }
}

/// The scan thread: it runs whole-domain reads one after another until the store is dropped.
fn start_scanner() -> Result<mpsc::Sender<Scan>, StoreError> {
    let (scans, queue) = mpsc::channel::<Scan>();
    std::thread::Builder::new()
        .name("keygate-scan".into())
        .spawn(move || {
            crate::background::lower_this_threads_priority();
            while let Ok(scan) = queue.recv() {
                scan();
            }
        })
        .map_err(|err| StoreError::Unavailable(format!("cannot start the scan thread: {err}")))?;
    Ok(scans)
}

/// A revocation fails only as the store does.
fn store_error(err: WriteError) -> StoreError {
    match err {
        WriteError::Store(err) => err,
        other => StoreError::Unavailable(format!("unexpected outcome {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_keygate_is_refused_and_reopening_migrates_nothing_twice() {
        let dir = std::env::temp_dir().join(format!("keygate-sqlite-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keygate.db");
        let _ = std::fs::remove_file(&path);
        drop(SqliteStore::open(&path).expect("created"));
        drop(SqliteStore::open(&path).expect("reopened: the migration is not run again"));
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", MIGRATIONS.len() + 1).unwrap();
        drop(connection);
        let refused = SqliteStore::open(&path).err().expect("refused").to_string();
        assert!(refused.contains("newer than this keygate knows"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_import_that_fails_midway_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("keygate-sqlite-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keygate.db");
        let _ = std::fs::remove_file(&path);
        drop(SqliteStore::open(&path).expect("created"));
        // The disk fails on the last record, long after the first thousands were written.
        let connection = Connection::open(&path).unwrap();
        let fail_on_poison = "CREATE TRIGGER fail_on_poison BEFORE INSERT ON lapsing WHEN NEW.id = 'poison' \
                              BEGIN SELECT RAISE(ABORT, 'disk failed'); END";
        connection.execute_batch(fail_on_poison).unwrap();
        drop(connection);
        let lapses_at = Timestamp::from_timestamp_millis(4_102_444_800_000).unwrap();
        let mut records: Vec<Record> =
            (0..2_500).map(|n| Record::RefreshMarker { jti: format!("jti-{n}"), lapses_at }).collect();
        records.push(Record::RevokedFamily { family: "poison".into(), lapses_at });

        let store = SqliteStore::open(&path).expect("reopened");
        assert!(store.import(&records).await.is_err());
        assert!(store.is_empty().await.unwrap(), "nothing of the failed import was kept");
        records.pop();
        assert_eq!(store.import(&records).await.unwrap(), Imported { added: 2_500, kept: 0 });
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_domain_read_whose_request_went_away_is_skipped() {
        let dir = std::env::temp_dir().join(format!("keygate-sqlite-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("keygate.db")).expect("created"));
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // The scan thread is busy with a first read until it is let go.
        let ((let_go, held), (begun, begins)) = (mpsc::channel::<()>(), mpsc::channel::<()>());
        let busy = tokio::spawn({
            let store = store.clone();
            let read = move |_: &Tx<'_>| Ok(begun.send(()).is_ok() && held.recv().is_ok());
            async move { store.read_in_background("busy", read).await }
        });
        tokio::task::spawn_blocking(move || begins.recv()).await.unwrap().unwrap();
        // A second read is asked for, and its request goes away while it waits.
        let counted = ran.clone();
        let dropped = store.read_in_background("dropped", move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), dropped).await.is_err());
        let_go.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        // A third read runs after the second's place in the queue: the second was skipped.
        store.read_in_background("after", |_| Ok(())).await.unwrap();
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0, "the abandoned read never ran");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_domain_is_read_on_a_thread_of_its_own_at_the_lowest_priority() {
        let dir = std::env::temp_dir().join(format!("keygate-sqlite-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("keygate.db")).expect("created");
        let thread = store
            .read_in_background("test", |_| {
                let name = std::thread::current().name().map(str::to_owned);
                Ok((name, crate::background::this_threads_priority()))
            })
            .await
            .unwrap();
        assert_eq!(thread, (Some("keygate-scan".to_owned()), (libc::SCHED_IDLE, 19)));
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
