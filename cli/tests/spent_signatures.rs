//! A signature is spent by its first use on the real server too, where a body too large to read
//! is refused before any handler sees the request.

mod support;

use keygate_core::signature::{self, ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde_json::{Value, json};
use support::{call, cli, start};

#[tokio::test]
async fn a_write_refused_for_its_oversized_body_cannot_be_resent_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let created = cli(&server, dir.path(), &["--name", "k"]);
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("credentials.json")).unwrap()).unwrap();
    let (access_key, secret) =
        (credentials[0]["access_key"].as_str().unwrap(), credentials[0]["secret_key"].as_str().unwrap());
    let path = format!("/api/v1/api-keys/{}", created["api_key_id"].as_str().unwrap());
    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
    let signed = signature::sign(secret, "PATCH", &path, &timestamp, access_key);
    let http = reqwest::Client::new();
    let send = |body: String| {
        http.patch(server.url(&path))
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(ACCESS_KEY_HEADER, access_key)
            .header(SIGNATURE_HEADER, &signed)
            .body(body)
    };

    let oversized = json!({ "keyType": "PRIMARY", "padding": "x".repeat(70 * 1024) }).to_string();
    let (status, body) = call(send(oversized)).await;
    assert_eq!((status, &body["error"]["errorCode"]), (400, &json!("400")), "{body}");
    let (status, body) = call(send(json!({ "keyType": "PRIMARY" }).to_string())).await;
    assert_eq!((status, &body["error"]["errorCode"]), (401, &json!("401")), "{body}");
}
