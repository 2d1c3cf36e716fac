//! The store conformance suite, unchanged, against the in-memory store, the SQLite store and the
//! DynamoDB store on the emulator.

mod memory {
    keygate_tests::store_conformance!(std::sync::Arc::new(keygate_core::store::MemoryStore::new()));
}

mod sqlite {
    keygate_tests::store_conformance!(keygate_tests::sqlite_store(env!("CARGO_TARGET_TMPDIR")));
}

mod dynamodb {
    keygate_tests::store_conformance!(keygate_tests::dynamodb::store().await);
}
