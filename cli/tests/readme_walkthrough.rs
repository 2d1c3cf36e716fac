//! Starts the real `keygate` binary on a free port and walks the README's steps over HTTP:
//! create a key with the CLI, register it, read its details, get a token, restart the server,
//! refresh the token.

mod support;

use std::process::Command;

use keygate_core::config::PUBLIC_KEYS;
use keygate_core::http::token_authorizer;
use serde_json::{Value, json};
use support::{BINARY, call, cli, json_of, key_command, start};
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

    // Ctrl-C and start again: the key, its quota and the token's family are all still there.
    let mut logs = server.interrupt();
    let server = start(data_dir.path());
    assert!(server.printed.iter().all(|line| !line.contains("created an admin")), "{:?}", server.printed);
    let url = |path: &str| format!("{}{path}", server.url);
    let (status, body) = call(http.get(url("/v1/key/detail")).header("x-api-key", &key)).await;
    assert_eq!((status, &body["result"]["remaining_total_usage"]), (200, &json!(99)));

    let (status, body) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!((status, &body["result"]["code"]), (429, &json!("token_reused")));

    let (status, body) = call(http.get(url("/v1/key/detail")).header("x-api-key", &key)).await;
    assert_eq!((status, &body["result"]["remaining_total_usage"]), (200, &json!(98)));

    let (status, body) = call(http.get(url("/.well-known/jwks.json"))).await;
    assert_eq!((status, &body["keys"][0]["alg"]), (200, &json!("EdDSA")));
    // The token authorizer of customers' APIs, configured with this JWKS, lets the new token in.
    let published = body.to_string();
    let verifier =
        token_authorizer::verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| published.clone()))
            .expect("the authorizer starts from the server's JWKS");
    let newest = body_token(&http, &url("/v1/auth/token"), &key).await;
    assert!(verifier.verify(&newest, keygate_core::model::now()).is_ok());
    let (status, _) = call(http.get(url("/health"))).await;
    assert_eq!(status, 200);

    let shown =
        Command::new(BINARY).args(["credentials", "show", "--data-dir"]).arg(data_dir.path()).output();
    let shown = String::from_utf8(shown.unwrap().stdout).unwrap();
    let secret_key = shown.lines().find_map(|line| line.strip_prefix("secret_key  ")).unwrap().to_owned();
    assert!(!printed.contains(&secret_key), "the secret is printed only on a terminal");
    logs.extend(server.stop());
    assert!(logs.len() >= 8, "one line per request at least: {logs:?}");
    assert!(logs.iter().all(|line| serde_json::from_str::<Value>(line).is_ok()), "JSON logs");
    for secret in [key.as_str(), token.as_str(), &key[key.len() - 20..], secret_key.as_str()] {
        assert!(logs.iter().all(|line| !line.contains(secret)), "a secret reached the log");
    }
}

async fn body_token(http: &reqwest::Client, url: &str, key: &str) -> String {
    let (status, body) = call(http.get(url).header("x-api-key", key)).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_restarted_server_keeps_its_secrets_and_prints_no_credential() {
    let data_dir = tempfile::tempdir().unwrap();
    let first = start(data_dir.path());
    let http = reqwest::Client::new();
    let (_, jwks_before) = call(http.get(format!("{}/.well-known/jwks.json", first.url))).await;
    drop(first);

    let second = start(data_dir.path());
    assert!(second.printed.iter().all(|line| !line.contains("created an admin")), "{:?}", second.printed);
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

/// The discovery document names the address the server listens on, whatever `Host` and
/// `X-Forwarded-Proto` a client sends: a shared cache keeps it, so it must not be the client's.
#[tokio::test]
async fn discovery_names_the_servers_own_address_not_the_clients_host() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let request = reqwest::Client::new()
        .get(server.url("/.well-known/openid-configuration"))
        .header("host", "attacker.example")
        .header("x-forwarded-proto", "https");
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jwks_uri"], json!(server.url("/.well-known/jwks.json")));
    assert_eq!(body["token_endpoint"], json!(server.url("/v1/auth/token")));
}
