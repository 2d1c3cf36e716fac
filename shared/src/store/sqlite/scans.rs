//! The scan thread: the reads of a whole domain that admin queries make run on it, one after
//! another, at the lowest priority, so they never take a core from the requests being served.

use std::sync::mpsc;

use super::{SqliteStore, Tx, on_connection};
use crate::store::StoreError;

/// A read of a whole domain, for the scan thread.
pub(super) type Scan = Box<dyn FnOnce() + Send>;

impl SqliteStore {
    /// Runs `read` on a read connection, on the scan thread, at the lowest priority: for the reads
    /// of a whole domain that admin queries make (parsing 10,000 keys takes tens of milliseconds),
    /// which must not take a core from the requests being served. One thread, whatever the
    /// number of queries, so memory and CPU stay bounded even by requests dropped mid-read.
    pub(super) async fn read_in_background<T, F>(
        &self,
        operation: &'static str,
        read: F,
    ) -> Result<T, StoreError>
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
}

/// The scan thread: it runs whole-domain reads one after another until the store is dropped.
pub(super) fn start_scanner() -> Result<mpsc::Sender<Scan>, StoreError> {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
