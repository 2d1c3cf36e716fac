//! No key is oversold on any embedded store, however many requests race for it: 2,000 requests
//! from 64 tasks for a quota of 500 give exactly 500 tokens, whether each is a mint or the next
//! refresh along a chain.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::store::Store;
use keygate_tests::*;
use serde_json::json;

const QUOTA: i64 = 500;
const REQUESTS: usize = 2_000;
const TASKS: usize = 64;

/// How a task spends its requests.
#[derive(Clone, Copy)]
enum Pattern {
    /// Every request a mint.
    Mints,
    /// A mint, then refreshes of the newest token until one is refused, then a mint again.
    RefreshChains,
}

async fn race(store: Arc<dyn Store>, pattern: Pattern) {
    let t = TestApp::with(&Settings::new(), store);
    let created = t.registered_key(QUOTA, TimeDelta::days(1)).await;
    let key = created.primary.expose().to_owned();

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (app, key) = (t.app.clone(), key.clone());
            // The first tasks take one request more, so the shares add up to REQUESTS exactly.
            let share = REQUESTS / TASKS + usize::from(task < REQUESTS % TASKS);
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(share);
                let mut newest: Option<String> = None;
                for _ in 0..share {
                    let refresh = matches!(pattern, Pattern::RefreshChains) && newest.is_some();
                    let request = match &newest {
                        Some(token) if refresh => {
                            get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))])
                        }
                        _ => get("/v1/auth/token", &[("x-api-key", &key)]),
                    };
                    let (status, body) =
                        status_and_json(&keygate_core::http::router::dispatch(&app, request).await);
                    newest = body["result"]["access_token"].as_str().map(str::to_owned);
                    outcomes.push((refresh, status, body));
                }
                outcomes
            })
        })
        .collect();

    let (mut tokens, mut refreshed, mut exhausted) = (HashSet::new(), 0, 0);
    for task in tasks {
        for (refresh, status, body) in task.await.unwrap() {
            match status {
                200 => {
                    assert!(tokens.insert(body["result"]["access_token"].as_str().unwrap().to_owned()));
                    refreshed += usize::from(refresh);
                }
                429 => {
                    assert_eq!(body, client_error("This token is not authenticated.", "quota_exhausted"));
                    exhausted += 1;
                }
                other => panic!("unexpected status {other}: {body}"),
            }
        }
    }
    assert_eq!((tokens.len(), exhausted), (QUOTA as usize, REQUESTS - QUOTA as usize));
    if let Pattern::RefreshChains = pattern {
        // Each chain starts with one mint; every other token came from a refresh.
        assert!(refreshed >= QUOTA as usize - TASKS, "only {refreshed} of the tokens came from refreshes");
    }
    let (_, detail, _) = t.send(get("/v1/key/detail", &[("x-api-key", &key)])).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(0));
}

macro_rules! exactness {
    ($store:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn mints_for_a_quota_of_500_give_exactly_500_tokens() {
            super::race($store, super::Pattern::Mints).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn refresh_chains_for_a_quota_of_500_give_exactly_500_tokens() {
            super::race($store, super::Pattern::RefreshChains).await;
        }
    };
}

mod memory {
    exactness!(std::sync::Arc::new(keygate_core::store::MemoryStore::new()));
}

mod sqlite {
    exactness!(keygate_tests::sqlite_store(env!("CARGO_TARGET_TMPDIR")));
}
