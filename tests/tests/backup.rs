//! A backup moves between every pair of stores: memory → SQLite → DynamoDB (the emulator) →
//! memory, each export equal to the last, and the last store behaves as the first did: the
//! refreshed token stays refreshed, the revoked family revoked, the accepted signature refused,
//! and the keys keep their quotas.

use keygate_core::store::{MemoryStore, Store, WriteError};
use keygate_tests::conformance::{marker, nonce, one_of_each};
use keygate_tests::{Clock, dynamodb, sqlite_store};
use std::sync::Arc;

#[tokio::test]
async fn a_backup_moves_from_memory_to_sqlite_to_dynamodb_and_back_unchanged() {
    let now = Clock::default().now();
    let first: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (a, b) = one_of_each(&first, now).await;
    let backup = first.export().await.unwrap();

    let mut last = first;
    for next in
        [sqlite_store(env!("CARGO_TARGET_TMPDIR")), dynamodb::store().await, Arc::new(MemoryStore::new())]
    {
        let records = last.export().await.unwrap();
        let imported = next.import(&records).await.unwrap();
        assert_eq!((imported.added, imported.kept), (records.len(), 0));
        assert_eq!(next.export().await.unwrap(), backup);
        last = next;
    }

    let reused = last.consume_for_refresh(&a.key.api_key_id, &marker("jti-a", "family-a", now), now).await;
    assert!(matches!(reused, Err(WriteError::TokenReused)), "{reused:?}");
    let revoked = last.consume_for_refresh(&a.key.api_key_id, &marker("jti-new", "family-z", now), now).await;
    assert!(matches!(revoked, Err(WriteError::FamilyRevoked)), "{revoked:?}");
    let replayed = last.create_key(&b.key, Some(&nonce("create-b", now))).await;
    assert!(matches!(replayed, Err(WriteError::Replayed)), "{replayed:?}");
    let minted = last.consume_for_token(&a.key.api_key_id, &a.primary, now).await.unwrap();
    assert_eq!(minted.remaining_total_usage, 3, "5, less the refresh before the backup, less this token");
}
