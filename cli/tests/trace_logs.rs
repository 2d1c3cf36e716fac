//! With `RUST_LOG=trace`, AWS credentials with a session token (as every Lambda has) and a
//! DynamoDB table, the real server's logs hold none of the secrets it handles: not the session
//! token or AWS secret the SDK signs with, not the admin secret, pepper or signing key, not a key
//! value or a token.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keygate_core::signature;
use keygate_core::tokens::SigningAlgorithm;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");
const AWS_SECRET: &str = "aws-secret-known-to-this-test-0123456789";
const SESSION_TOKEN: &str = "session-token-known-to-this-test-FwoGZXIvYXdzEJr";
const ADMIN_SECRET: &str = "admin-secret-known-to-this-test";
const PEPPER: &str = "pepper-known-to-this-test-only";

#[tokio::test]
async fn trace_logs_on_the_dynamodb_path_hold_no_secret() {
    let endpoint = std::env::var("KEYGATE_TEST_DYNAMODB_ENDPOINT")
        .expect("KEYGATE_TEST_DYNAMODB_ENDPOINT: run scripts/test, which starts a DynamoDB emulator");
    let data_dir = tempfile::tempdir().unwrap();
    let signing_key = SigningAlgorithm::EdDsa.generate_pem();
    let credentials = json!([{ "access_key": "AKTRACE", "secret_key": ADMIN_SECRET, "domain_id": "traced" }]);
    let mut child = Command::new(BINARY)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data_dir.path())
        .args(["--table", &format!("keygate-trace-{}", std::process::id()), "--dynamodb-endpoint", &endpoint])
        .env("RUST_LOG", "trace")
        .env("AWS_ACCESS_KEY_ID", "ASIAKNOWNTOTHISTEST")
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("KEYGATE_ADMIN_CREDENTIALS", credentials.to_string())
        .env("KEYGATE_PEPPER", PEPPER)
        .env("KEYGATE_SIGNING_KEY", &signing_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keygate binary starts");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let url = loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("the server announces its address");
        if let Some(url) = line.strip_prefix("keygate listening on ") {
            break url.to_owned();
        }
    };

    let http = reqwest::Client::new();
    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
    let path = "/identity/v1/api-keys";
    let signed = signature::sign(ADMIN_SECRET, "POST", path, &timestamp, "AKTRACE");
    let created: Value = http
        .post(format!("{url}{path}"))
        .header(signature::TIMESTAMP_HEADER, &timestamp)
        .header(signature::ACCESS_KEY_HEADER, "AKTRACE")
        .header(signature::SIGNATURE_HEADER, &signed)
        .json(&json!({ "user_id": "tracer", "scope": ["orders:read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().expect("created").to_owned();
    let regist = http.post(format!("{url}/v1/key/regist")).json(&json!({ "key": key })).send().await.unwrap();
    assert_eq!(regist.status(), 200);
    let body: Value = http
        .get(format!("{url}/v1/auth/token"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["result"]["access_token"].as_str().expect("a token").to_owned();
    let refreshed: Value = http
        .get(format!("{url}/v1/auth/refresh"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = refreshed["result"]["access_token"].as_str().expect("a refreshed token").to_owned();

    let _ = child.kill();
    let _ = child.wait();
    let mut logged: Vec<String> = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        logged.push(line);
    }
    logged.extend(stderr_text.join().unwrap().lines().map(str::to_owned));
    assert!(logged.len() >= 5, "the server logged its requests: {logged:?}");

    let signing_key_body: String = signing_key.lines().filter(|l| !l.starts_with("-----")).collect();
    let secrets = [
        ("session token", SESSION_TOKEN),
        ("AWS secret", AWS_SECRET),
        ("admin secret", ADMIN_SECRET),
        ("pepper", PEPPER),
        ("signing key", signing_key_body.as_str()),
        ("key value", key.as_str()),
        ("key value's secret part", &key[16..40]),
        ("token", token.as_str()),
        ("token signature", token.rsplit('.').next().unwrap()),
        ("refreshed token", next.as_str()),
    ];
    for (what, secret) in secrets {
        let leaked: Vec<&String> = logged.iter().filter(|line| line.contains(secret)).collect();
        assert!(leaked.is_empty(), "the {what} reached the log: {leaked:?}");
    }
}
