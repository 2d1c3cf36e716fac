//! What an admin list costs on DynamoDB, counted by an SDK interceptor on the emulator: the index
//! pages it reads and one BatchGetItem per 100 keys it returns, never a read of every key. The
//! counts are asserted; the times are only printed (`--nocapture`).
//!
//! The domain sizes are `KEYGATE_TEST_LIST_SIZES` (default 1000; `1000,10000` takes minutes, and
//! 100000 more than an hour: the emulator sorts the whole partition again for every page it
//! returns). The emulator pages an index by the size of the whole items (DynamoDB by the size of
//! what the index carries, which is smaller), so its Query counts are an upper bound of
//! DynamoDB's.

use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;
use keygate_core::model::ApiKey;
use keygate_core::query::Query;
use keygate_core::service::{KeySearch, ListPage};
use keygate_tests::conformance::fixture;
use keygate_tests::dynamodb::{RequestCounter, endpoint, store_at};
use keygate_tests::*;
use serde_json::json;

/// Far above any key's item (about 600 bytes here), so a Query reads at least this many keys.
const MAX_ITEM_BYTES: usize = 1_000;
const QUERY_PAGE_BYTES: usize = 1_000_000;
/// A filter on `user_id` selects one key in this many.
const OWNERS: usize = 100;

fn keys(count: usize) -> Vec<ApiKey> {
    let start = Clock::default().now();
    (0..count)
        .map(|i| {
            let mut key = fixture(start + TimeDelta::milliseconds(i as i64), 5).key;
            key.domain_id = DOMAIN.into();
            key.user_id = format!("owner-{}", i % OWNERS);
            key.name = format!("key-{i}");
            key
        })
        .collect()
}

/// The requests one call sent, as (Query, BatchGetItem, anything else), and how long it took.
async fn cost<T>(
    requests: &RequestCounter,
    call: impl std::future::Future<Output = T>,
) -> (T, [usize; 3], u128) {
    requests.take();
    let started = Instant::now();
    let answer = call.await;
    let elapsed = started.elapsed().as_millis();
    let operations = requests.take_operations();
    let count = |name: &str| operations.iter().filter(|op| *op == name).count();
    let queries = count("Query");
    let batches = count("BatchGetItem");
    (answer, [queries, batches, operations.len() - queries - batches], elapsed)
}

/// One row of the table, printed at once: at 100,000 keys a row takes minutes.
fn report(keys: usize, what: &str, [queries, batches]: [usize; 2], ms: u128) {
    eprintln!("| {keys} | {what} | {queries} | {batches} | {ms} |");
}

fn search(query: serde_json::Value) -> KeySearch {
    KeySearch { query: serde_json::from_value::<Query>(query).unwrap(), ..KeySearch::default() }
}

#[tokio::test]
async fn a_page_costs_the_index_pages_it_reads_and_one_batch_read() {
    let sizes = std::env::var("KEYGATE_TEST_LIST_SIZES").unwrap_or_else(|_| "1000".into());
    for count in sizes.split(',').map(|size| size.trim().parse::<usize>().expect("a number of keys")) {
        let (store, requests) = store_at(&endpoint()).await;
        store.load_keys(&keys(count)).await.expect("the emulator takes the keys");
        let t = TestApp::with(&Settings::new(), Arc::new(store));
        let caller = t.caller();
        let most_queries = (count * MAX_ITEM_BYTES).div_ceil(QUERY_PAGE_BYTES);

        let first_page = search(json!({ "page": { "start": 1, "limit": 100 } }));
        let (found, [queries, batches, other], ms) =
            cost(&requests, t.app.search_keys(&caller, first_page)).await;
        let found = found.unwrap();
        assert_eq!((found.results.len(), found.total_count), (100, count));
        assert_eq!(found.results[0]["name"], "key-0");
        assert!((1..=most_queries).contains(&queries), "{count} keys: {queries} queries");
        assert_eq!((batches, other), (1, 0), "{count} keys, unfiltered");
        report(count, "search, page 1 of 100", [queries, batches], ms);

        let owned =
            search(json!({ "filter": [{ "k": "user_id", "v": "owner-7" }], "page": { "limit": 100 } }));
        let (found, [queries, batches, other], ms) = cost(&requests, t.app.search_keys(&caller, owned)).await;
        let found = found.unwrap();
        assert_eq!((found.results.len(), found.total_count), ((count / OWNERS).min(100), count / OWNERS));
        assert!(found.results.iter().all(|doc| doc["user_id"] == "owner-7"));
        assert!(queries <= most_queries && (batches, other) == (1, 0), "{count} keys, filtered");
        report(count, "search, user_id filter", [queries, batches], ms);

        let last_page = search(json!({ "page": { "start": count - 49, "limit": 100 } }));
        let (found, [queries, batches, other], ms) =
            cost(&requests, t.app.search_keys(&caller, last_page)).await;
        assert_eq!(found.unwrap().results.len(), 50);
        assert!(queries <= most_queries && (batches, other) == (1, 0), "{count} keys, last page");
        report(count, "search, last page", [queries, batches], ms);

        let counted = search(json!({ "count_only": true }));
        let (found, [queries, batches, other], ms) =
            cost(&requests, t.app.search_keys(&caller, counted)).await;
        assert_eq!(found.unwrap().total_count, count);
        assert!(queries <= most_queries && (batches, other) == (0, 0), "{count} keys, count only");
        report(count, "search, count_only", [queries, batches], ms);

        let named = search(json!({ "keyword": "KEY-12", "page": { "limit": 100 } }));
        let (found, [queries, batches, other], ms) = cost(&requests, t.app.search_keys(&caller, named)).await;
        assert!(found.unwrap().total_count > 0);
        assert!(queries <= most_queries && (batches, other) == (1, 0), "{count} keys, keyword");
        report(count, "search, keyword", [queries, batches], ms);

        let page = ListPage { offset: 0, limit: 100, name_contains: None };
        let (found, [queries, batches, other], ms) = cost(&requests, t.app.list_keys(&caller, page)).await;
        let found = found.unwrap();
        assert_eq!((found.keys.len(), found.total), (100, count));
        assert!(queries <= most_queries && (batches, other) == (1, 0), "{count} keys, NCP list");
        report(count, "NCP list, first 100", [queries, batches], ms);

        let page = ListPage { offset: 0, limit: 100, name_contains: Some("Y-99".into()) };
        let (found, [queries, batches, other], ms) = cost(&requests, t.app.list_keys(&caller, page)).await;
        assert!(found.unwrap().total > 0);
        assert!(queries <= most_queries && (batches, other) == (1, 0), "{count} keys, NCP name filter");
        report(count, "NCP list, apiKeyName filter", [queries, batches], ms);
    }
}
