//! Contract of `POST /identity/v1/api-keys` (seed 001 `create`) behind signature v2 (seed 002).

use std::sync::Arc;

use chrono::TimeDelta;
use keygate_tests::*;
use serde_json::{Value, json};

fn create_body() -> String {
    json!({
        "user_id": "user-1",
        "domain_id": DOMAIN,
        "name": "checkout",
        "description": "orders service",
        "scope": ["orders:read"],
        "max_total_usage": 1000,
        "validity_seconds": 86400,
    })
    .to_string()
}

#[tokio::test]
async fn create_returns_the_api_key_info_with_the_key_value_in_clear() {
    let t = TestApp::new().await;
    let (status, mut body, _) = t.send(t.signed_create(&create_body(), ACCESS_KEY, SECRET_KEY)).await;
    assert_eq!(status, 200);
    let api_key = body["api_key"].take();
    let api_key_id = body["api_key_id"].take();
    let api_key_id = api_key_id.as_str().unwrap();
    assert!(api_key_id.starts_with("api-key-") && api_key_id.len() == 20, "{api_key_id}");
    let api_key = api_key.as_str().unwrap();
    assert!(api_key.starts_with(&format!("kg_{}_", &api_key_id[8..])), "the key value carries its id");
    assert_eq!(
        body,
        json!({
            "api_key": null,
            "api_key_id": null,
            "state": "ENABLED",
            "user_id": "user-1",
            "domain_id": DOMAIN,
            "last_accessed_at": "",
            "created_at": "2026-01-01T00:00:00Z",
            "name": "checkout",
            "description": "orders service",
            "scope": ["orders:read"],
            "max_total_usage": 1000,
            "remaining_total_usage": 1000,
            "validity_seconds": 86400,
            "expires_at": "",
            "registered_at": "",
        })
    );
    let regist = post("/v1/key/regist", &json!({ "key": api_key }).to_string());
    let (status, body, _) = t.send(regist).await;
    assert_eq!(status, 200, "the new key registers");
    assert_eq!(body["result"]["max_total_usage"], json!(1000));
}

#[tokio::test]
async fn create_applies_defaults_and_the_callers_domain() {
    let t = TestApp::new().await;
    let (status, body, _) =
        t.send(t.signed_create(r#"{"user_id":"u"}"#, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["domain_id"], json!(OTHER_DOMAIN));
    assert_eq!(body["name"], body["api_key_id"], "a nameless key is named after its id");
    assert_eq!(body["max_total_usage"], json!(10_000));
    assert_eq!(body["validity_seconds"], json!(365 * 24 * 3600));
    assert_eq!(body["scope"], json!([]));
}

#[tokio::test]
async fn create_with_a_fixed_expiry_shows_it() {
    let t = TestApp::new().await;
    let body = r#"{"user_id":"u","expires_at":"2026-03-01T12:00:00+01:00"}"#;
    let (status, body, _) = t.send(t.signed_create(body, ACCESS_KEY, SECRET_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_at"], json!("2026-03-01T11:00:00Z"));
    assert_eq!(body["validity_seconds"], Value::Null);
}

#[tokio::test]
async fn create_answers_400_to_invalid_bodies() {
    let t = TestApp::new().await;
    let long_name = "n".repeat(65);
    let long_description = "d".repeat(257);
    let oversized = json!({ "user_id": "u", "description": "d".repeat(70_000) }).to_string();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("not JSON", "user_id=u".into(), "ERROR_INVALID_ARGUMENT", "body is not valid JSON"),
        ("empty", "".into(), "ERROR_INVALID_ARGUMENT", "body is empty"),
        (
            "unknown field",
            r#"{"user_id":"u","color":"red"}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "unknown field `color`",
        ),
        (
            "user_id missing",
            r#"{"name":"x"}"#.into(),
            "ERROR_REQUIRED_PARAMETER",
            "required parameter: user_id",
        ),
        (
            "user_id blank",
            r#"{"user_id":" "}"#.into(),
            "ERROR_REQUIRED_PARAMETER",
            "required parameter: user_id",
        ),
        (
            "user_id a number",
            r#"{"user_id":7}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "a field has the wrong type or value",
        ),
        (
            "quota zero",
            r#"{"user_id":"u","max_total_usage":0}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "max_total_usage must be between 1 and 2147483647",
        ),
        (
            "quota 2^31",
            r#"{"user_id":"u","max_total_usage":2147483648}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "max_total_usage must be between 1 and 2147483647",
        ),
        (
            "quota 1e30",
            r#"{"user_id":"u","max_total_usage":1e30}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "a field has the wrong type or value",
        ),
        (
            "both expiries",
            r#"{"user_id":"u","validity_seconds":60,"expires_at":"2027-01-01T00:00:00Z"}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "validity_seconds and expires_at are exclusive",
        ),
        (
            "negative validity",
            r#"{"user_id":"u","validity_seconds":-1}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "validity_seconds must be between 1 and 3153600000",
        ),
        (
            "past expiry",
            r#"{"user_id":"u","expires_at":"2025-12-31T23:59:59Z"}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "expires_at is in the past",
        ),
        (
            "expiry not RFC 3339",
            r#"{"user_id":"u","expires_at":"tomorrow"}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "expires_at is not an RFC 3339 time",
        ),
        (
            "name too long",
            json!({ "user_id": "u", "name": long_name }).to_string(),
            "ERROR_INVALID_ARGUMENT",
            "name must be 1 to 64 printable characters",
        ),
        (
            "description too long",
            json!({ "user_id": "u", "description": long_description }).to_string(),
            "ERROR_INVALID_ARGUMENT",
            "description must be 0 to 256 printable characters",
        ),
        (
            "scope with a space",
            r#"{"user_id":"u","scope":["a b"]}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "each scope entry must be 1 to 128 visible ASCII characters, no spaces",
        ),
        (
            "scope not a list",
            r#"{"user_id":"u","scope":"a"}"#.into(),
            "ERROR_INVALID_ARGUMENT",
            "a field has the wrong type or value",
        ),
        ("oversized", oversized, "ERROR_INVALID_ARGUMENT", "body is larger than 65536 bytes"),
    ];
    for (what, body, code, message) in cases {
        // A refused create spends its signature: each is signed at a millisecond of its own.
        t.clock.advance(TimeDelta::milliseconds(1));
        let (status, json, _) = t.send(t.signed_create(&body, ACCESS_KEY, SECRET_KEY)).await;
        assert_eq!((status, json), (400, spaceone_error(code, message)), "{what}");
    }
}

#[tokio::test]
async fn create_answers_403_to_another_domain_id() {
    let t = TestApp::new().await;
    let body = json!({ "user_id": "u", "domain_id": OTHER_DOMAIN }).to_string();
    let (status, json, _) = t.send(t.signed_create(&body, ACCESS_KEY, SECRET_KEY)).await;
    assert_eq!(
        (status, json),
        (403, spaceone_error("ERROR_PERMISSION_DENIED", "domain_id is not the caller's domain"))
    );
}

#[tokio::test]
async fn create_answers_401_to_bad_signatures() {
    let t = TestApp::new().await;
    let body = create_body();
    let now = t.clock.now();
    let path = "/identity/v1/api-keys";
    let unsigned = post(path, &body);
    let mut no_timestamp = t.signed_create(&body, ACCESS_KEY, SECRET_KEY);
    no_timestamp.headers_mut().remove(keygate_core::signature::TIMESTAMP_HEADER);
    let cases = [
        ("unsigned", unsigned, "missing header x-ncp-apigw-timestamp"),
        ("timestamp missing", no_timestamp, "missing header x-ncp-apigw-timestamp"),
        ("wrong secret", t.signed_create(&body, ACCESS_KEY, OTHER_SECRET_KEY), "signature does not match"),
        ("unknown access key", t.signed_create(&body, "AKNOBODY", SECRET_KEY), "signature does not match"),
        (
            "6 minutes old",
            signed(Method::Post, path, &body, ACCESS_KEY, SECRET_KEY, now - TimeDelta::minutes(6)),
            "timestamp is more than 5 minutes away",
        ),
        (
            "6 minutes ahead",
            signed(Method::Post, path, &body, ACCESS_KEY, SECRET_KEY, now + TimeDelta::minutes(6)),
            "timestamp is more than 5 minutes away",
        ),
        (
            "signed for another path",
            signed(Method::Post, "/identity/v1/api-keys/search", &body, ACCESS_KEY, SECRET_KEY, now),
            "signature does not match",
        ),
    ];
    for (what, mut request, message) in cases {
        *request.uri_mut() = path.parse().unwrap();
        let (status, json, _) = t.send(request).await;
        assert_eq!((status, json), (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", message)), "{what}");
    }
}

#[tokio::test]
async fn create_accepts_a_signed_request_once() {
    let t = TestApp::new().await;
    let body = create_body();
    let request = t.signed_create(&body, ACCESS_KEY, SECRET_KEY);
    let replay = request.clone();
    assert_eq!(t.send(request).await.0, 200);
    t.clock.advance(TimeDelta::seconds(30));
    let (status, json, _) = t.send(replay.clone()).await;
    assert_eq!(
        (status, json),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED))
    );
    let mut padded = replay;
    *padded.body_mut() = lambda_http::Body::Text(format!(" {body}\n"));
    let (status, json, _) = t.send(padded).await;
    assert_eq!(
        (status, json),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED)),
        "the same body re-spaced is the same request"
    );
}

#[tokio::test]
async fn a_second_write_signed_in_the_same_millisecond_is_told_to_sign_again() {
    let t = TestApp::new().await;
    let first = t.signed_create(r#"{"user_id":"a"}"#, ACCESS_KEY, SECRET_KEY);
    let second = t.signed_create(r#"{"user_id":"b"}"#, ACCESS_KEY, SECRET_KEY);
    assert_eq!(t.send(first).await.0, 200);
    let (status, json, _) = t.send(second).await;
    assert_eq!(
        (status, json),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED))
    );
    assert!(keygate_core::service::REPLAYED.contains("sign each request with a new timestamp"));
}

#[tokio::test]
async fn create_answers_503_when_the_store_is_down() {
    // The create fails, and so does spending its signature: the client must sign again.
    let t = TestApp::with(&Settings::new(), Arc::new(UnavailableStore));
    let (status, json, response) = t.send(t.signed_create(&create_body(), ACCESS_KEY, SECRET_KEY)).await;
    let unavailable = "service unavailable: sign the request again and retry";
    assert_eq!((status, json), (503, spaceone_error("ERROR_UNAVAILABLE", unavailable)));
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn unknown_admin_paths_and_methods_answer_in_the_spaceone_envelope() {
    let t = TestApp::new().await;
    let (status, json, _) = t.send(request(Method::Put, "/identity/v1/api-keys", &[], None)).await;
    assert_eq!((status, json), (405, spaceone_error("ERROR_METHOD_NOT_ALLOWED", "method not allowed")));
    let (status, json, _) = t.send(get("/identity/v1/nothing", &[])).await;
    assert_eq!((status, json), (404, spaceone_error("ERROR_NOT_FOUND", "no such route")));
}
