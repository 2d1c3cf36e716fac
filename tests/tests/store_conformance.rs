//! The store conformance suite, unchanged, against the embedded store and against the DynamoDB
//! store on the emulator.

mod memory {
    keygate_tests::store_conformance!(std::sync::Arc::new(keygate_core::store::MemoryStore::new()));
}

mod dynamodb {
    keygate_tests::store_conformance!(keygate_tests::dynamodb::store().await);
}
