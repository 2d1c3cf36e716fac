//! Token mints per second through the `/v1/auth/token` handler, on the memory and SQLite stores
//! and on the DynamoDB emulator (moto, single-threaded: it measures keygate plus one serial emulator, not
//! DynamoDB). `cargo bench -p keygate-tests --bench token_mint` after `scripts/test` has
//! installed the emulator.

use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;
use keygate_core::http::router::dispatch;
use keygate_core::store::{MemoryStore, Store};
use keygate_tests::dynamodb::{Emulator, store_at};
use keygate_tests::{Settings, TestApp, get, sqlite_store};

async fn mints_per_second(store: Arc<dyn Store>, mints: usize, tasks: usize) -> f64 {
    let t = TestApp::with(&Settings::new(), store);
    let created = t.registered_key(mints as i64, TimeDelta::days(1)).await;
    let key = Arc::new(created.primary.expose().to_owned());
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (app, key) = (t.app.clone(), key.clone());
            let share = mints / tasks + usize::from(task < mints % tasks);
            tokio::spawn(async move {
                for _ in 0..share {
                    let response = dispatch(&app, get("/v1/auth/token", &[("x-api-key", &key)])).await;
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    mints as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let emulator = Emulator::start();
    println!("{:<12} {:>6} {:>7} {:>12}", "store", "tasks", "mints", "mints/s");
    for tasks in [1, 64] {
        let rate = mints_per_second(Arc::new(MemoryStore::new()), 50_000, tasks).await;
        println!("{:<12} {tasks:>6} {:>7} {rate:>12.0}", "memory", 50_000);
        let rate = mints_per_second(sqlite_store(env!("CARGO_TARGET_TMPDIR")), 20_000, tasks).await;
        println!("{:<12} {tasks:>6} {:>7} {rate:>12.0}", "sqlite", 20_000);
        let (store, _) = store_at(&emulator.endpoint).await;
        let rate = mints_per_second(Arc::new(store), 2_000, tasks).await;
        println!("{:<12} {tasks:>6} {:>7} {rate:>12.0}", "dynamodb-emu", 2_000);
    }
}
