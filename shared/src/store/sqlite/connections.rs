//! The SQLite store's connections: one writer thread that commits operations in batches (group
//! commit), and a pool of read connections that never wait for it.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use rusqlite::{Connection, TransactionBehavior};

use super::tx::Tx;
use crate::store::{StoreError, WriteError};

/// At most this many operations share one transaction.
const MAX_BATCH: usize = 256;
/// Operations waiting for the writer at most; past this a write fails at once rather than wait
/// behind a stalled disk.
pub(super) const MAX_QUEUED: usize = 4096;
/// Idle read connections kept open for the next read.
const MAX_IDLE_READERS: usize = 8;

/// One operation for the writer. It runs inside the batch's transaction, in a savepoint of its
/// own, and answers once the batch is committed.
pub(super) type Job = Box<dyn FnOnce(&Tx<'_>) -> Pending + Send>;

/// What an operation did: whether to keep its changes, and how to answer its caller once the
/// batch's fate is known.
pub(super) struct Pending {
    pub keep: bool,
    pub answer: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

impl Pending {
    /// A job whose caller has gone (its request was dropped) does nothing: no unit is consumed
    /// for an answer nobody will read.
    pub fn abandoned() -> Self {
        Pending { keep: false, answer: Box::new(|_| {}) }
    }

    /// Wraps an operation's outcome: kept if it succeeded; answered with the outcome if the batch
    /// commits, with the commit's failure otherwise.
    pub fn of<T: Send + 'static>(
        outcome: Result<T, WriteError>,
        caller: tokio::sync::oneshot::Sender<Result<T, WriteError>>,
    ) -> Self {
        Pending {
            keep: outcome.is_ok(),
            answer: Box::new(move |failed| {
                let _ = caller.send(match failed {
                    Some(err) => Err(err.into()),
                    None => outcome,
                });
            }),
        }
    }
}

pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(unavailable("open"))?;
    connection.execute_batch("PRAGMA busy_timeout = 5000;").map_err(unavailable("configure"))?;
    // Readers never wait for the writer only in WAL mode, which some filesystems refuse.
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(unavailable("configure"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{}: the filesystem does not support SQLite's WAL mode (journal mode {mode})",
            path.display()
        )));
    }
    connection.execute_batch("PRAGMA synchronous = FULL;").map_err(unavailable("configure"))?;
    Ok(connection)
}

pub(super) fn unavailable(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| StoreError::Unavailable(format!("{operation}: {err}"))
}

/// Starts the writer thread on `connection`; it ends when every sender is dropped.
pub(super) fn start_writer(connection: Connection) -> Result<mpsc::SyncSender<Job>, StoreError> {
    let (jobs, queue) = mpsc::sync_channel::<Job>(MAX_QUEUED);
    std::thread::Builder::new()
        .name("keygate-sqlite-writer".into())
        .spawn(move || write_batches(connection, queue))
        .map_err(|e| StoreError::Unavailable(format!("writer thread: {e}")))?;
    Ok(jobs)
}

/// While one batch is being made durable, the operations that arrive queue up and go together
/// into the next: the more requests at once, the fewer fsyncs per request.
fn write_batches(mut connection: Connection, queue: mpsc::Receiver<Job>) {
    let lapsing_writes = Cell::new(0);
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut connection, batch, &lapsing_writes);
    }
}

/// Runs every job in one immediate transaction, each in its own savepoint so a refused or failed
/// operation leaves nothing behind, then commits and answers them all. An operation dropped
/// unanswered (the batch failed before it ran, or it panicked) reaches its caller as the store
/// being unavailable.
fn commit_batch(connection: &mut Connection, batch: Vec<Job>, lapsing_writes: &Cell<u64>) {
    let mut answers = Vec::with_capacity(batch.len());
    let committed = (|| {
        let mut transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable("begin batch"))?;
        for job in batch {
            let savepoint = transaction.savepoint().map_err(unavailable("savepoint"))?;
            let tx = Tx { connection: &savepoint, lapsing_writes };
            let outcome = catch_unwind(AssertUnwindSafe(|| job(&tx)));
            let keep = matches!(&outcome, Ok(pending) if pending.keep);
            match keep {
                true => savepoint.commit().map_err(unavailable("release savepoint"))?,
                // Its drop behaviour is to roll back: finishing rolls back and releases.
                false => savepoint.finish().map_err(unavailable("roll back savepoint"))?,
            }
            // Some failures (a full disk, an I/O error) make SQLite roll back the whole
            // transaction: then nothing of the batch is kept, and no later job may run outside
            // it and commit on its own.
            if transaction.is_autocommit() {
                return Err(StoreError::Unavailable("the batch was rolled back".into()));
            }
            // A job that panicked is dropped unanswered: its caller hears the store failed.
            if let Ok(pending) = outcome {
                answers.push(pending.answer);
            }
        }
        transaction.commit().map_err(unavailable("commit batch"))
    })();
    let failure = committed.err();
    for answer in answers {
        answer(failure.clone());
    }
}

/// Read connections, opened as needed; under WAL they see the last committed batch and never
/// wait for the writer.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), idle: Mutex::default() }
    }

    /// Runs `read` on an idle connection, or a new one.
    pub fn with<T>(&self, read: impl FnOnce(&Connection) -> T) -> Result<T, StoreError> {
        let connection = match self.take_idle() {
            Some(connection) => connection,
            None => {
                let connection = open(&self.path)?;
                connection.pragma_update(None, "query_only", true).map_err(unavailable("open reader"))?;
                connection
            }
        };
        Ok(self.read_then_keep(connection, read))
    }

    /// Runs `read` on an idle connection if there is one (opening one takes file system calls
    /// and may wait for a lock); `Err(read)` if there is none.
    pub fn with_idle<T, F: FnOnce(&Connection) -> T>(&self, read: F) -> Result<T, F> {
        match self.take_idle() {
            Some(connection) => Ok(self.read_then_keep(connection, read)),
            None => Err(read),
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop()
    }

    fn read_then_keep<T>(&self, connection: Connection, read: impl FnOnce(&Connection) -> T) -> T {
        let outcome = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(connection);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use tokio::sync::oneshot;

    use super::*;

    type Answer = oneshot::Receiver<Result<(), WriteError>>;

    /// A job that adds the lapsing row `id`, then ends with `outcome`, or panics when `None`.
    fn job(id: &'static str, outcome: Option<Result<(), WriteError>>) -> (Job, Answer) {
        let (caller, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            tx.add_lapsing("TEST", id, DateTime::UNIX_EPOCH, None).unwrap();
            let outcome = outcome.expect("this job panics");
            Pending::of(outcome, caller)
        });
        (job, answer)
    }

    #[test]
    fn a_batch_keeps_what_succeeded_and_nothing_of_what_was_refused_or_panicked() {
        let path = std::env::temp_dir().join(format!("keygate-batch-unit-{}.db", std::process::id()));
        let mut connection = open(&path).unwrap();
        super::super::migrate(&mut connection).unwrap();

        let (first, mut first_answer) = job("first", Some(Ok(())));
        let (refused, mut refused_answer) = job("refused", Some(Err(WriteError::AlreadyExists)));
        let (panics, mut panics_answer) = job("panics", None);
        let (last, mut last_answer) = job("last", Some(Ok(())));
        commit_batch(&mut connection, vec![first, refused, panics, last], &Cell::new(0));

        assert!(matches!(first_answer.try_recv(), Ok(Ok(()))));
        assert!(matches!(refused_answer.try_recv(), Ok(Err(WriteError::AlreadyExists))));
        assert!(panics_answer.try_recv().is_err(), "dropped unanswered: the caller hears the store failed");
        assert!(matches!(last_answer.try_recv(), Ok(Ok(()))));
        let kept: Vec<String> = {
            let mut rows = connection.prepare("SELECT id FROM lapsing ORDER BY id").unwrap();
            rows.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(kept, ["first", "last"]);
        drop(connection);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
