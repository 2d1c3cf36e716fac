//! The bounds on admin queries that read a whole domain: a cost limit per query (400 naming it,
//! on both admin surfaces) and a limit on how many of one domain's run at once (503 with
//! `Retry-After`), which leaves another domain and the cheap list paths alone. How far they keep
//! the client API's latency is measured by `cargo bench -p keygate --bench query_isolation`.

use std::num::NonZeroUsize;
use std::sync::Arc;

use keygate_core::Keygate;
use keygate_core::service::{NewKey, QueryLimits, QueryRunner};
use keygate_tests::*;
use serde_json::{Value, json};

/// A keygate whose admin queries run on `threads` threads of their own, within `limits`.
async fn app_with(threads: usize, limits: QueryLimits) -> TestApp {
    let t = TestApp::new().await;
    let ticking = t.clock.clone();
    let runner = QueryRunner::threads(NonZeroUsize::new(threads).unwrap(), limits).unwrap();
    let app = Keygate::new(Settings::new().config(), t.store.clone())
        .with_clock(move || ticking.now())
        .with_queries(runner);
    TestApp { app: Arc::new(app), ..t }
}

async fn create_keys(t: &TestApp, count: usize) {
    for n in 0..count {
        let new_key = NewKey {
            user_id: format!("user-{}", n % 3),
            name: Some(format!("key-{n}")),
            ..NewKey::default()
        };
        t.create(new_key).await;
    }
}

/// `count` names no key has, for a condition that compares each key with all of them.
fn other_names(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("none-{n}")).collect()
}

async fn search(
    t: &TestApp,
    query: Value,
    other: bool,
) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
    let body = json!({ "query": query }).to_string();
    t.send(t.admin(Method::Post, "/identity/v1/api-keys/search", &body, other)).await
}

async fn stat(t: &TestApp, query: Value) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
    let body = json!({ "query": query }).to_string();
    t.send(t.admin(Method::Post, "/identity/v1/api-keys/stat", &body, false)).await
}

async fn ncp_list(t: &TestApp, parameters: &str) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
    t.send(t.admin(Method::Get, &format!("/api/v1/api-keys{parameters}"), "", false)).await
}

fn too_costly(keys: usize, terms: usize, limit: u64) -> String {
    format!(
        "query too costly: {keys} keys × {terms} terms = {}, over the query cost limit of {limit}; test \
         fewer fields or values, or read fewer keys",
        keys * terms
    )
}

#[tokio::test]
async fn a_query_past_the_default_cost_limit_is_refused_with_400_naming_the_limit() {
    let t = TestApp::new().await;
    create_keys(&t, 1_001).await;
    // 1,001 keys × (the key + 998 names) = 999,999: just within 1,000,000.
    let within =
        json!({ "filter": [{ "k": "name", "v": other_names(998), "o": "not_in" }], "count_only": true });
    let (status, found, _) = search(&t, within, false).await;
    assert_eq!((status, &found["total_count"]), (200, &json!(1_001)), "{found}");

    let past =
        json!({ "filter": [{ "k": "name", "v": other_names(999), "o": "not_in" }], "count_only": true });
    let (status, refused, _) = search(&t, past, false).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused, spaceone_error("ERROR_INVALID_ARGUMENT", &too_costly(1_001, 1_000, 1_000_000)));
    let past = json!({ "filter": [{ "k": "name", "v": other_names(999), "o": "not_in" }] });
    let (status, refused, _) = stat(&t, past).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused, spaceone_error("ERROR_INVALID_ARGUMENT", &too_costly(1_001, 1_000, 1_000_000)));
}

#[tokio::test]
async fn a_configured_cost_limit_refuses_search_stat_and_a_name_filtered_ncp_list_but_never_a_plain_page() {
    let t = app_with(1, QueryLimits { cost: 20, per_domain: 2 }).await;
    create_keys(&t, 30).await;

    let (status, refused, _) =
        search(&t, json!({ "filter": [{ "k": "name", "v": "key-1", "o": "contain" }] }), false).await;
    assert_eq!(refused, spaceone_error("ERROR_INVALID_ARGUMENT", &too_costly(30, 2, 20)));
    assert_eq!(status, 400);
    let counters = json!({ "filter": [{ "k": "remaining_total_usage", "v": 0, "o": "gt" }] });
    let (status, refused, _) = search(&t, counters, false).await;
    assert_eq!((status, refused), (400, spaceone_error("ERROR_INVALID_ARGUMENT", &too_costly(30, 2, 20))));
    let (status, refused, _) = stat(&t, json!({ "distinct": "user_id" })).await;
    assert_eq!((status, refused), (400, spaceone_error("ERROR_INVALID_ARGUMENT", &too_costly(30, 2, 20))));
    let (status, refused, _) = ncp_list(&t, "?apiKeyName=key-1").await;
    let message = "query too costly: 30 keys × 1 term = 30, over the query cost limit of 20; test fewer fields \
                   or values, or read fewer keys";
    assert_eq!((status, refused), (400, json!({ "error": { "errorCode": "400", "message": message } })));

    // Pages that read only ids, and counts, cost no query.
    let (status, found, _) = search(&t, json!({ "page": { "start": 1, "limit": 5 } }), false).await;
    assert_eq!((status, found["results"].as_array().map(Vec::len)), (200, Some(5)));
    let (status, found, _) = search(&t, json!({ "count_only": true }), false).await;
    assert_eq!((status, &found["total_count"]), (200, &json!(30)));
    let (status, found, _) = ncp_list(&t, "?limit=5").await;
    assert_eq!((status, &found["apiKeyPage"]["total"]), (200, &json!(30)));
}

#[tokio::test]
async fn a_domain_running_its_limit_of_queries_is_answered_503_while_another_domain_is_served() {
    let t = app_with(3, QueryLimits { cost: 1_000_000, per_domain: 2 }).await;
    create_keys(&t, 10).await;
    let heavy =
        json!({ "filter": [{ "k": "user_id", "v": "user-1" }], "sort": { "key": "name", "desc": true } });

    let running =
        [t.app.queries().admit(DOMAIN).await.unwrap(), t.app.queries().admit(DOMAIN).await.unwrap()];
    let busy = "this domain already runs 2 queries that read all its keys, the most it may at once; retry \
                when one has answered";
    for (status, refused, response) in
        [search(&t, heavy.clone(), false).await, stat(&t, json!({ "distinct": "user_id" })).await]
    {
        assert_eq!((status, refused), (503, spaceone_error("ERROR_UNAVAILABLE", busy)));
        assert_eq!(response.headers()["retry-after"], "1");
    }
    let (status, refused, response) = ncp_list(&t, "?apiKeyName=key").await;
    assert_eq!((status, refused), (503, json!({ "error": { "errorCode": "503", "message": busy } })));
    assert_eq!(response.headers()["retry-after"], "1");

    // The cheap paths, and another domain's queries, are served meanwhile.
    assert_eq!(search(&t, json!({ "page": { "limit": 3 } }), false).await.0, 200);
    assert_eq!(search(&t, json!({ "count_only": true }), false).await.0, 200);
    assert_eq!(ncp_list(&t, "?limit=3").await.0, 200);
    let (status, found, _) = search(&t, heavy.clone(), true).await;
    assert_eq!((status, &found["total_count"]), (200, &json!(0)), "{found}");

    drop(running);
    let (status, found, _) = search(&t, heavy, false).await;
    assert_eq!((status, &found["total_count"]), (200, &json!(3)), "{found}");
    assert_eq!(found["results"][0]["name"], "key-7");
}
