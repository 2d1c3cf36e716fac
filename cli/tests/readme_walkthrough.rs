//! Starts the real `keygate` binary on a free port and walks the README's steps over HTTP:
//! create a key with the CLI, register it, read its details, get a token, refresh it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

/// The server process, stopped when the test ends however it ends.
struct Server {
    child: Child,
    url: String,
    /// What the server printed before it listened (the credential, on first start).
    printed: Vec<String>,
    /// Everything it prints afterwards: its JSON logs.
    logs: mpsc::Receiver<String>,
}

impl Server {
    /// Stops the server and returns every log line it wrote.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut lines = Vec::new();
        while let Ok(line) = self.logs.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store flags of the run: none (the embedded store), or with `KEYGATE_TEST_STORE=dynamodb`
/// a fresh table on the emulator `scripts/test` started.
fn store_args() -> Vec<String> {
    if std::env::var("KEYGATE_TEST_STORE").as_deref() != Ok("dynamodb") {
        return Vec::new();
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let endpoint = std::env::var("KEYGATE_TEST_DYNAMODB_ENDPOINT").expect("scripts/test sets the emulator");
    let table = format!("keygate-e2e-{}-{n}", std::process::id());
    vec!["--table".into(), table, "--dynamodb-endpoint".into(), endpoint]
}

fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(BINARY)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .args(store_args())
        .env_remove("KEYGATE_ADMIN_CREDENTIALS")
        .env_remove("KEYGATE_PEPPER")
        .env_remove("KEYGATE_SIGNING_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the keygate binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not announce its address: {printed:?}");
        };
        if let Some(url) = line.strip_prefix("keygate listening on ") {
            let url = url.to_owned();
            return Server { child, url, printed, logs: lines };
        }
        printed.push(line);
    }
}

fn cli(server: &Server, data_dir: &Path, args: &[&str]) -> Value {
    let output = Command::new(BINARY)
        .args(["key", "create", "--json", "--url", &server.url, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .expect("the CLI runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the CLI prints JSON")
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_readme_walkthrough_works_against_the_real_server() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let printed = server.printed.join("\n");
    assert!(printed.contains("created an admin credential for domain \"local\""), "{printed}");

    let created = cli(
        &server,
        data_dir.path(),
        &["--scope", "orders:read", "--max-usage", "100", "--validity-seconds", "86400"],
    );
    let key = created["api_key"].as_str().expect("the key value is shown once").to_owned();
    assert_eq!(created["domain_id"], json!("local"));

    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url);
    let (status, body) = call(http.post(url("/v1/key/regist")).json(&json!({ "key": key }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["max_total_usage"], json!(100));
    let key_expired = body["result"]["key_expired"].clone();

    let (status, body) = call(http.get(url("/v1/key/detail")).header("x-api-key", &key)).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({ "result": { "key_expired": key_expired, "remaining_total_usage": 100, "max_total_usage": 100, "scope": ["orders:read"] } })
        )
    );

    let (status, body) = call(http.get(url("/v1/auth/token")).header("x-api-key", &key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["result"]["token_type"], &body["result"]["expires_in"]),
        (&json!("Bearer"), &json!(300))
    );
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();

    let (status, body) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!((status, &body["result"]["code"]), (429, &json!("token_reused")));

    let (status, body) = call(http.get(url("/v1/key/detail")).header("x-api-key", &key)).await;
    assert_eq!((status, &body["result"]["remaining_total_usage"]), (200, &json!(98)));

    let (status, body) = call(http.get(url("/.well-known/jwks.json"))).await;
    assert_eq!((status, &body["keys"][0]["alg"]), (200, &json!("EdDSA")));
    let (status, _) = call(http.get(url("/health"))).await;
    assert_eq!(status, 200);

    let secret_key = printed.split('"').skip_while(|part| *part != "secret_key").nth(2).unwrap().to_owned();
    let logs = server.stop();
    assert!(logs.len() >= 8, "one line per request at least: {logs:?}");
    assert!(logs.iter().all(|line| serde_json::from_str::<Value>(line).is_ok()), "JSON logs");
    for secret in [key.as_str(), token.as_str(), &key[key.len() - 20..], secret_key.as_str()] {
        assert!(logs.iter().all(|line| !line.contains(secret)), "a secret reached the log");
    }
}

#[tokio::test]
async fn a_restarted_server_keeps_its_secrets_and_prints_no_credential() {
    let data_dir = tempfile::tempdir().unwrap();
    let first = start(data_dir.path());
    let http = reqwest::Client::new();
    let (_, jwks_before) = call(http.get(format!("{}/.well-known/jwks.json", first.url))).await;
    drop(first);

    let second = start(data_dir.path());
    assert!(second.printed.iter().all(|line| !line.contains("secret_key")), "{:?}", second.printed);
    let (_, jwks_after) = call(http.get(format!("{}/.well-known/jwks.json", second.url))).await;
    assert_eq!(jwks_before, jwks_after, "the signing key survives a restart");
    let created = cli(&second, data_dir.path(), &[]);
    assert!(created["api_key"].is_string(), "the stored credential still signs");
}

#[tokio::test]
async fn the_cli_reports_a_refused_request() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let output = Command::new(BINARY)
        .args(["key", "create", "--url", &server.url, "--max-usage", "0", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("400") && stderr.contains("max_total_usage"), "{stderr}");
}

/// Runs `keygate key <args>` against the server; returns its standard output, or panics with
/// its error output.
fn key_command(server: &Server, data_dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(BINARY)
        .arg("key")
        .args(args)
        .args(["--url", &server.url, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn the_cli_runs_every_admin_operation() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let dir = data_dir.path();
    let first = cli(&server, dir, &["--name", "first", "--max-usage", "5"]);
    let second = cli(&server, dir, &["--name", "second"]);
    let id = first["api_key_id"].as_str().unwrap().to_owned();
    let value = first["api_key"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    call(http.post(format!("{}/v1/key/regist", server.url)).json(&json!({ "key": value }))).await;
    let token_status = || async {
        call(http.get(format!("{}/v1/auth/token", server.url)).header("x-api-key", &value)).await.0
    };

    let query = r#"{"filter":[{"k":"name","v":"sec","o":"contain"}]}"#;
    let found = json_of(&key_command(&server, dir, &["list", "--json", "--query", query]).unwrap());
    assert_eq!(
        (&found["total_count"], &found["results"][0]["api_key_id"]),
        (&json!(1), &second["api_key_id"])
    );
    let table = key_command(&server, dir, &["list"]).unwrap();
    assert!(table.lines().next().unwrap().starts_with("api_key_id"), "{table}");
    assert!(table.contains("(2 in all)"), "{table}");

    let shown = json_of(&key_command(&server, dir, &["get", &id, "--only", "state,name", "--json"]).unwrap());
    assert_eq!(shown, json!({ "state": "ENABLED", "name": "first" }));

    let disabled = json_of(&key_command(&server, dir, &["disable", &id, "--json"]).unwrap());
    assert_eq!(disabled["state"], json!("DISABLED"));
    assert_eq!(token_status().await, 404);
    key_command(&server, dir, &["enable", &id]).unwrap();
    assert_eq!(token_status().await, 200);

    let rotated =
        json_of(&key_command(&server, dir, &["rotate", &id, "--slot", "secondary", "--json"]).unwrap());
    let new_secondary = rotated["secondaryKey"].as_str().unwrap();
    let (status, _) =
        call(http.get(format!("{}/v1/auth/token", server.url)).header("x-api-key", new_secondary)).await;
    assert_eq!(status, 200, "the new value works");
    assert_eq!(token_status().await, 200, "and so does the other");

    let stat = r#"{"aggregate":[{"count":{"name":"keys"}}]}"#;
    let counted = json_of(&key_command(&server, dir, &["stat", "--json", "--query", stat]).unwrap());
    assert_eq!(counted, json!({ "results": [{ "keys": 2 }] }));

    assert_eq!(key_command(&server, dir, &["delete", &id]).unwrap().trim(), format!("deleted {id}"));
    let refused = key_command(&server, dir, &["get", &id]).unwrap_err();
    assert!(refused.contains("404") && refused.contains("ERROR_NOT_FOUND"), "{refused}");
    let refused = key_command(&server, dir, &["disable", "api-key-0?state=x"]).unwrap_err();
    assert!(refused.contains("is not a key id"), "{refused}");
    let refused = key_command(&server, dir, &["list", "--query", "{not json"]).unwrap_err();
    assert!(refused.contains("--query is not JSON"), "{refused}");
}

#[tokio::test]
async fn a_body_beyond_what_the_server_reads_is_a_400_in_the_routes_envelope() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let http = reqwest::Client::new();
    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, body) = call(http.post(format!("{}/v1/key/regist", server.url)).body(huge.clone())).await;
    assert_eq!((status, body), (400, json!({ "result": { "error": "Bad request", "code": "bad_request" } })));
    let (status, body) = call(http.post(format!("{}/identity/v1/api-keys", server.url)).body(huge)).await;
    assert_eq!(
        (status, body),
        (400, json!({ "error": { "code": "ERROR_INVALID_ARGUMENT", "message": "body is too large" } }))
    );
}
