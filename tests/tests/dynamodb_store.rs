//! The DynamoDB store on the emulator: requests per operation, counted by an SDK interceptor,
//! and exact quotas under concurrency.

use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::http::router::dispatch;
use keygate_tests::dynamodb::{RequestCounter, endpoint, store_at};
use keygate_tests::*;
use serde_json::{Value, json};

async fn counted_app() -> (TestApp, RequestCounter) {
    let (store, counter) = store_at(&endpoint()).await;
    (TestApp::with(&Settings::new(), Arc::new(store)), counter)
}

#[tokio::test]
async fn each_route_costs_one_request_to_dynamodb() {
    let (t, requests) = counted_app().await;
    let body = json!({ "user_id": "u", "max_total_usage": 2 }).to_string();
    let (status, created, _) = t.send(t.signed_create(&body, ACCESS_KEY, SECRET_KEY)).await;
    assert_eq!((status, requests.take()), (200, 1), "create (key and replay nonce in one transaction)");
    let key = created["api_key"].as_str().unwrap().to_owned();

    let (status, _, _) = t.send(post("/v1/key/regist", &json!({ "key": key }).to_string())).await;
    assert_eq!((status, requests.take()), (200, 1), "regist");
    let (status, _, _) = t.send(get("/v1/key/detail", &[("x-api-key", &key)])).await;
    assert_eq!((status, requests.take()), (200, 1), "detail");
    let (status, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", &key)])).await;
    assert_eq!((status, requests.take()), (200, 1), "token");
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let (status, _, _) = t.send(get("/v1/auth/refresh", &[("authorization", &bearer)])).await;
    assert_eq!((status, requests.take()), (200, 1), "refresh");

    let (status, _, _) = t.send(get("/v1/auth/token", &[("x-api-key", &key)])).await;
    assert_eq!((status, requests.take()), (429, 1), "a refused mint is explained without a second read");
    let (status, _, _) = t.send(get("/v1/auth/refresh", &[("authorization", &bearer)])).await;
    assert_eq!((status, requests.take()), (429, 2), "reuse: the refused transaction, then the revocation");
    let (status, _, _) = t.send(get("/.well-known/jwks.json", &[])).await;
    assert_eq!((status, requests.take()), (200, 0), "jwks");
    let (status, _, _) = t.send(get("/v1/key/detail", &[("x-api-key", "kg_malformed")])).await;
    assert_eq!((status, requests.take()), (404, 0), "a malformed key costs nothing");
}

#[tokio::test]
async fn list_reads_the_domains_index_partition_and_batches_never_a_scan() {
    let (store, requests) = store_at(&endpoint()).await;
    let t = TestApp::with(&Settings::new(), Arc::new(store));
    for _ in 0..150 {
        t.create(keygate_core::service::NewKey { user_id: "u".into(), ..Default::default() }).await;
    }
    requests.take();
    let keys = t.store.list_keys(DOMAIN).await.unwrap();
    assert_eq!(keys.len(), 150);
    assert_eq!(requests.take_operations(), ["Query", "BatchGetItem", "BatchGetItem"]);
}

#[tokio::test]
async fn a_table_made_before_the_listing_index_gets_it_and_lists_from_it() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
        ProjectionType, ScalarAttributeType,
    };
    let base = keygate_core::aws::default_config().await;
    let config = keygate_core::store::dynamodb::client_config(&base, Some(&endpoint())).build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let table = format!("keygate-before-gsi2-{}", std::process::id());
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap()
    };
    let ids_only = GlobalSecondaryIndex::builder()
        .index_name("gsi1")
        .key_schema(key("gsi1pk", KeyType::Hash))
        .key_schema(key("gsi1sk", KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .unwrap();
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("gsi1pk"))
        .attribute_definitions(attribute("gsi1sk"))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(ids_only)
        .send()
        .await
        .unwrap();
    let store = keygate_core::store::DynamoStore::new(client.clone(), &table);
    let t = TestApp::with(&Settings::new(), Arc::new(store.clone()));
    t.create(keygate_core::service::NewKey { user_id: "before".into(), ..Default::default() }).await;

    store.create_table_if_missing().await.expect("the index is added");
    let described = client.describe_table().table_name(&table).send().await.unwrap();
    let mut indexes: Vec<&str> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["gsi1", "gsi2"]);
    let listed = t.store.list_listings(DOMAIN, &Default::default()).await.unwrap();
    assert_eq!(listed.iter().map(|l| l.user_id.as_str()).collect::<Vec<_>>(), ["before"]);
    store.create_table_if_missing().await.expect("and is left alone the next time");
}

/// Runs `requests` calls spread over `tasks` concurrent tasks; `call(task, n)` makes the n-th
/// call of a task and returns its status and body.
async fn run_concurrently<F, Fut>(tasks: usize, requests: usize, call: F) -> Vec<(u16, Value)>
where
    F: Fn(usize, usize, Option<String>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ((u16, Value), Option<String>)> + Send,
{
    let call = Arc::new(call);
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let call = call.clone();
            let share = requests / tasks + usize::from(task < requests % tasks);
            tokio::spawn(async move {
                let mut carried = None;
                let mut outcomes = Vec::with_capacity(share);
                for n in 0..share {
                    let (outcome, next) = call(task, n, carried.take()).await;
                    carried = next;
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

fn others(outcomes: &[(u16, Value)]) -> Vec<&(u16, Value)> {
    outcomes.iter().filter(|(s, _)| *s != 200 && *s != 429).take(3).collect()
}

fn count(outcomes: &[(u16, Value)], status: u16) -> usize {
    outcomes.iter().filter(|(s, _)| *s == status).count()
}

fn assert_only_exhaustion_refused(outcomes: &[(u16, Value)]) {
    let exhausted = client_error("This token is not authenticated.", "quota_exhausted");
    for (status, body) in outcomes {
        assert!(*status == 200 || (*status == 429 && *body == exhausted), "{status} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_token_requests_from_64_tasks_mint_exactly_the_quota_of_500() {
    let t = TestApp::with(&Settings::new(), keygate_tests::dynamodb::store().await);
    let created = t.registered_key(500, TimeDelta::days(1)).await;
    let key = Arc::new(created.primary.expose().to_owned());
    let app = t.app.clone();
    let outcomes = run_concurrently(64, 2000, move |_, _, _| {
        let (app, key) = (app.clone(), key.clone());
        async move {
            let response = dispatch(&app, get("/v1/auth/token", &[("x-api-key", &key)])).await;
            (status_and_json(&response), None)
        }
    })
    .await;
    assert_eq!((count(&outcomes, 200), count(&outcomes, 429)), (500, 1500), "{:?}", others(&outcomes));
    assert_only_exhaustion_refused(&outcomes);
    let (_, detail, _) = t.send(get("/v1/key/detail", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_requests_along_64_refresh_chains_consume_exactly_the_quota_of_500() {
    let t = TestApp::with(&Settings::new(), keygate_tests::dynamodb::store().await);
    let created = t.registered_key(500, TimeDelta::days(1)).await;
    let key = Arc::new(created.primary.expose().to_owned());
    let app = t.app.clone();
    // Each task starts a chain with a token, then refreshes the latest token of its chain; once
    // the quota is gone it keeps presenting the last token, which a refused refresh left unused.
    let outcomes = run_concurrently(64, 2000, move |_, _, token: Option<String>| {
        let (app, key) = (app.clone(), key.clone());
        async move {
            let request = match &token {
                None => get("/v1/auth/token", &[("x-api-key", &key)]),
                Some(token) => get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))]),
            };
            let (status, body) = status_and_json(&dispatch(&app, request).await);
            let next = match body["result"]["access_token"].as_str() {
                Some(fresh) => Some(fresh.to_owned()),
                None => token,
            };
            ((status, body), next)
        }
    })
    .await;
    assert_eq!((count(&outcomes, 200), count(&outcomes, 429)), (500, 1500), "{:?}", others(&outcomes));
    assert_only_exhaustion_refused(&outcomes);
    let (_, detail, _) = t.send(get("/v1/key/detail", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(0));
}
