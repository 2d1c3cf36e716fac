//! The store conformance suite against the embedded store.

mod memory {
    keygate_tests::store_conformance!(std::sync::Arc::new(shared::store::MemoryStore::new()));
}
