//! The durable embedded store: one SQLite file (WAL, `synchronous=FULL`). Each write operation is
//! atomic in a savepoint of its own inside a batch transaction, and returns only once that batch
//! is committed and on disk, as a DynamoDB conditional write is durable when it answers; batches
//! are how concurrent writes share one disk flush (see `connections`). Keys are kept whole as
//! JSON beside the columns lists need; markers, revocations and nonces lapse at their time and
//! are swept now and then.

mod connections;
mod scans;
mod tx;

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior};

use self::connections::{Job, Pending, Readers, unavailable};
use self::scans::{Scan, start_scanner};
use self::tx::Tx;
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
}
