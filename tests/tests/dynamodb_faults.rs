//! DynamoDB failing under load: a frozen server (SIGSTOP: connections open, nothing answers) and
//! an endpoint with nothing listening. Every request ends, in bounded time, as a success or the
//! seed's 500; afterwards tokens issued ≤ units consumed ≤ tokens issued + 500s, and no refresh
//! marker exists without its unit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeDelta;
use keygate_core::http::router::dispatch;
use keygate_core::store::DynamoStore;
use keygate_tests::dynamodb::Emulator;
use keygate_tests::*;
use serde_json::{Value, json};

/// Generous for a request that meets a frozen server: one 2 s attempt for a mint, a 4 s
/// operation budget for the rest.
const LATENCY_BOUND: Duration = Duration::from_secs(6);

fn internal_error() -> Value {
    client_error("Internal server error", "internal_error")
}

#[derive(Default)]
struct Tally {
    token_ok: usize,
    token_failed: usize,
    refresh_ok: usize,
    refresh_failed: usize,
    slowest: Duration,
}

async fn timed(app: &keygate_core::Keygate, request: lambda_http::Request) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (status, body) = status_and_json(&dispatch(app, request).await);
    (status, body, started.elapsed())
}

/// Token, then a refresh of it, `rounds` times; every answer must be a success or the seed's 500.
async fn token_and_refresh_rounds(app: Arc<keygate_core::Keygate>, key: String, rounds: usize) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..rounds {
        let (status, body, elapsed) = timed(&app, get("/v1/auth/token", &[("x-api-key", &key)])).await;
        tally.slowest = tally.slowest.max(elapsed);
        let token = match status {
            200 => {
                tally.token_ok += 1;
                body["result"]["access_token"].as_str().unwrap().to_owned()
            }
            500 => {
                assert_eq!(body, internal_error());
                tally.token_failed += 1;
                continue;
            }
            other => panic!("token answered {other} {body}"),
        };
        let bearer = format!("Bearer {token}");
        let (status, body, elapsed) =
            timed(&app, get("/v1/auth/refresh", &[("authorization", &bearer)])).await;
        tally.slowest = tally.slowest.max(elapsed);
        match status {
            200 => tally.refresh_ok += 1,
            500 => {
                assert_eq!(body, internal_error());
                tally.refresh_failed += 1;
            }
            other => panic!("refresh answered {other} {body}"),
        }
    }
    tally
}

async fn count_refresh_markers(client: &Client, table: &str) -> usize {
    let mut markers = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :jti)")
            .expression_attribute_values(":jti", AttributeValue::S("JTI#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        markers += page.items().len();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return markers;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_dynamodb_costs_500s_in_bounded_time_and_leaves_counters_consistent() {
    // An emulator of this test's own, so freezing it disturbs no other test.
    let emulator = Emulator::start();
    let table = "keygate-faults";
    let store = DynamoStore::connect(Some(&emulator.endpoint), table).await;
    store.create_table_if_missing().await.unwrap();
    let t = TestApp::with(&Settings::new(), Arc::new(store));
    let max = 10_000;
    let created = t.registered_key(max, TimeDelta::days(1)).await;
    let key = created.primary.expose().to_owned();

    let tasks: Vec<_> =
        (0..16).map(|_| tokio::spawn(token_and_refresh_rounds(t.app.clone(), key.clone(), 30))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    emulator.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    emulator.signal("-CONT");
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("no task panicked");
        total.token_ok += tally.token_ok;
        total.token_failed += tally.token_failed;
        total.refresh_ok += tally.refresh_ok;
        total.refresh_failed += tally.refresh_failed;
        total.slowest = total.slowest.max(tally.slowest);
    }
    eprintln!(
        "tokens {}+{} ok, {}+{} failed, slowest {:?}",
        total.token_ok, total.refresh_ok, total.token_failed, total.refresh_failed, total.slowest
    );
    assert!(total.token_failed + total.refresh_failed > 0, "the freeze cost some requests");
    assert!(total.token_ok + total.refresh_ok > 0);
    assert!(total.slowest < LATENCY_BOUND, "a request took {:?}", total.slowest);

    // Requests the client gave up on may still be applied once the server runs again: wait until
    // the counter stands still before reading it.
    let mut remaining = None;
    loop {
        let key = t.store.get_key(&created.key.api_key_id).await.unwrap().unwrap();
        if remaining == Some(key.remaining_total_usage) {
            break;
        }
        remaining = Some(key.remaining_total_usage);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let consumed = max as usize - remaining.unwrap() as usize;
    let issued = total.token_ok + total.refresh_ok;
    let failed = total.token_failed + total.refresh_failed;
    assert!(
        issued <= consumed && consumed <= issued + failed,
        "issued {issued}, consumed {consumed}, 500s {failed}"
    );

    let client = Client::from_conf(
        keygate_core::store::dynamodb::client_config(
            &keygate_core::aws::default_config().await,
            Some(&emulator.endpoint),
        )
        .build(),
    );
    let markers = count_refresh_markers(&client, table).await;
    assert!(markers >= total.refresh_ok, "every refresh that succeeded left its marker");
    assert!(markers <= total.refresh_ok + total.refresh_failed, "markers only from refresh attempts");
    assert!(markers + total.token_ok <= consumed, "no refresh marker without its unit");
    eprintln!("consumed {consumed}, refresh markers {markers}");
}

#[tokio::test]
async fn an_endpoint_with_nothing_listening_answers_quickly() {
    let settings = Settings::new();
    let healthy = TestApp::with(&settings, Arc::new(keygate_core::store::MemoryStore::new()));
    let created = healthy.registered_key(5, TimeDelta::days(1)).await;
    let (_, body, _) = healthy.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = DynamoStore::connect(Some(&format!("http://127.0.0.1:{closed_port}")), "nowhere").await;
    let t = TestApp::with(&settings, Arc::new(store));
    let key = created.primary.expose();
    let requests = [
        ("regist", post("/v1/key/regist", &json!({ "key": key }).to_string())),
        ("detail", get("/v1/key/detail", &[("x-api-key", key)])),
        ("token", get("/v1/auth/token", &[("x-api-key", key)])),
        ("refresh", get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))])),
    ];
    for (what, request) in requests {
        let (status, body, elapsed) = timed(&t.app, request).await;
        assert_eq!((status, body), (500, internal_error()), "{what}");
        assert!(elapsed < Duration::from_secs(3), "{what} took {elapsed:?}");
    }
    let create = t.signed_create(r#"{"user_id":"u"}"#, ACCESS_KEY, SECRET_KEY);
    let (status, body, elapsed) = timed(&t.app, create).await;
    // The create failed, and so did spending its signature: sign again and retry.
    let unavailable = "service unavailable: sign the request again and retry";
    assert_eq!((status, body), (503, spaceone_error("ERROR_UNAVAILABLE", unavailable)));
    assert!(elapsed < Duration::from_secs(3), "create took {elapsed:?}");
}

/// An admin write that DynamoDB applied but answered too late is retried by the SDK; the retry is
/// recognised as the same request, so the caller gets its success (and a create its key value,
/// shown only then), while the same request sent again by anyone is still a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_write_whose_answer_came_too_late_succeeds_once_on_retry() {
    let emulator = Emulator::start();
    let late = keygate_tests::dynamodb::LateAnswers::start(&emulator.endpoint).await;
    let store = DynamoStore::connect(Some(&late.endpoint), "keygate-late-answers").await;
    store.create_table_if_missing().await.unwrap();
    let t = TestApp::with(&Settings::new(), Arc::new(store));

    late.lose_next_answer("TransactWriteItems");
    let create = t.signed_create(r#"{"user_id":"u","name":"late"}"#, ACCESS_KEY, SECRET_KEY);
    let (status, created, _) = t.send(create.clone()).await;
    assert_eq!(late.lost(), 1, "the first answer was lost");
    assert_eq!(status, 200, "{created}");
    let value = created["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        t.send(post("/v1/key/regist", &json!({ "key": value }).to_string())).await.0,
        200,
        "the value works"
    );
    let (status, body, _) = t.send(create).await;
    assert_eq!(
        (status, body),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED))
    );
    assert_eq!(t.store.list_keys(DOMAIN).await.unwrap().len(), 1);

    let path = format!("/api/v1/api-keys/{}", created["api_key_id"].as_str().unwrap());
    t.clock.advance(TimeDelta::milliseconds(1));
    late.lose_next_answer("TransactWriteItems");
    let (status, document, _) =
        t.send(t.admin(Method::Patch, &path, r#"{"keyType":"SECONDARY"}"#, false)).await;
    assert_eq!((late.lost(), status), (2, 200), "{document}");
    let key = t.store.list_keys(DOMAIN).await.unwrap().remove(0);
    assert_eq!(key.secondary.generation, 1, "rotated once");
    assert!(
        document["secondaryKey"].as_str().unwrap().ends_with(&key.secondary.last4),
        "the value shown is the stored one"
    );

    t.clock.advance(TimeDelta::milliseconds(1));
    late.lose_next_answer("TransactWriteItems");
    let (status, _, _) = t.send(t.admin(Method::Delete, &path, "", false)).await;
    assert_eq!((late.lost(), status), (3, 204));
    assert!(t.store.list_keys(DOMAIN).await.unwrap().is_empty());
}
