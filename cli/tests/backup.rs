//! `keygate export` and `keygate import` on the real binary: a stopped server's keys move into a
//! new data directory (and through a DynamoDB table and back, when the emulator is there) and
//! keep working there, and the file never holds a key value. The servers always run on the default
//! store: the DynamoDB leg is the explicit `--table` import and export.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{BINARY, call, cli, start_with};

/// Runs `keygate <args>`.
fn keygate(args: &[&str], dir: &Path) -> Output {
    Command::new(BINARY).args(args).arg("--data-dir").arg(dir).output().expect("the binary runs")
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_export_imported_elsewhere_keeps_keys_quotas_and_refresh_markers() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(old.path(), &[]);
    let created = cli(&server, old.path(), &["--scope", "orders:read", "--max-usage", "10"]);
    cli(&server, old.path(), &["--name", "second"]);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url);
    call(http.post(url("/v1/key/regist")).json(&json!({ "key": key }))).await;
    let (_, body) = call(http.get(url("/v1/auth/token")).header("x-api-key", &key)).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();
    let (status, _) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    drop(server);

    let backup = old.path().join("backup.jsonl");
    let said = succeeded(keygate(&["export", "--output", backup.to_str().unwrap()], old.path()));
    let text = std::fs::read_to_string(&backup).unwrap();
    assert!(!text.contains(&key) && !text.contains(&key[key.len() - 20..]), "a key value was exported");
    let kinds: Vec<String> =
        text.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["kind"].to_string()).collect();
    // Two keys, the refresh's marker, and the two create requests' replay nonces.
    assert_eq!(kinds.iter().filter(|kind| *kind == "\"key\"").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|kind| *kind == "\"refresh_marker\"").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|kind| *kind == "\"replay_nonce\"").count(), 2, "{kinds:?}");
    assert!(said.contains("exported 5 records"), "{said}");

    // The new install shares the old one's secrets, as a move keeps them.
    for file in ["pepper", "credentials.json", "eddsa-signing-key.pem"] {
        std::fs::copy(old.path().join(file), new.path().join(file)).unwrap();
    }
    let moved = via_dynamodb_if_there(&backup, new.path());
    let said = succeeded(keygate(&["import", "--input", moved.to_str().unwrap()], new.path()));
    assert!(said.contains("imported 5 records, kept 0"), "{said}");
    let again = keygate(&["import", "--input", moved.to_str().unwrap()], new.path());
    let refused = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && refused.contains("is not empty: --merge"), "{refused}");
    let said = succeeded(keygate(&["import", "--merge", "--input", moved.to_str().unwrap()], new.path()));
    assert!(said.contains("imported 0 records, kept 5"), "importing twice adds nothing: {said}");

    let server = start_with(new.path(), &[]);
    let url = |path: &str| format!("{}{path}", server.url);
    let (status, body) = call(http.get(url("/v1/key/detail")).header("x-api-key", &key)).await;
    assert_eq!((status, &body["result"]["remaining_total_usage"]), (200, &json!(8)));
    let (status, body) = call(http.get(url("/v1/auth/refresh")).bearer_auth(&token)).await;
    assert_eq!((status, &body["result"]["code"]), (429, &json!("token_reused")), "still refreshed once");
    let (status, _) = call(http.get(url("/v1/auth/token")).header("x-api-key", &key)).await;
    assert_eq!(status, 200);
}

/// With the emulator `scripts/test` starts: imports the backup into a DynamoDB table, exports it
/// back and checks nothing changed on the way. Returns the file to go on with.
fn via_dynamodb_if_there(backup: &Path, scratch: &Path) -> std::path::PathBuf {
    let Ok(endpoint) = std::env::var("KEYGATE_TEST_DYNAMODB_ENDPOINT") else {
        return backup.to_owned();
    };
    let table = format!("keygate-backup-{}", std::process::id());
    let on_table = ["--table", &table, "--dynamodb-endpoint", &endpoint];
    let input = backup.to_str().unwrap();
    succeeded(keygate(&[&["import", "--input", input][..], &on_table].concat(), scratch));
    let back = scratch.join("from-dynamodb.jsonl");
    let output = back.to_str().unwrap();
    succeeded(keygate(&[&["export", "--output", output][..], &on_table].concat(), scratch));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), std::fs::read_to_string(backup).unwrap());
    back
}

#[test]
fn a_file_with_one_bad_line_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    let good = r#"{"kind":"revoked_family","family":"f","lapses_at":"2030-01-01T00:00:00Z"}"#;
    std::fs::write(&file, format!("{good}\n{{\"kind\":\"key\",\"api_key_id\":\"nope\"}}\n")).unwrap();
    let output = keygate(&["import", "--input", file.to_str().unwrap()], dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");

    let export = keygate(&["export"], dir.path());
    let refused = String::from_utf8_lossy(&export.stderr);
    assert!(
        !export.status.success() && refused.contains("no database there"),
        "nothing was written: {refused}"
    );
}

#[test]
fn the_memory_store_has_nothing_to_export() {
    let dir = tempfile::tempdir().unwrap();
    let output = keygate(&["export", "--store", "memory"], dir.path());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("choose sqlite or a --table"));
}

/// The review's edited backups: each changes one line of a real export, and each is refused with
/// the line named, leaving the new store empty. The unedited file then imports.
#[tokio::test]
async fn an_edited_backup_that_breaks_a_rule_of_the_api_is_refused_naming_its_line() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(old.path(), &[]);
    cli(&server, old.path(), &["--scope", "read", "--name", "first"]);
    drop(server);
    let backup = old.path().join("backup.jsonl");
    succeeded(keygate(&["export", "--output", backup.to_str().unwrap()], old.path()));
    std::fs::copy(old.path().join("credentials.json"), new.path().join("credentials.json")).unwrap();
    let lines: Vec<Value> =
        std::fs::read_to_string(&backup).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let key_line = lines.iter().position(|record| record["kind"] == "key").expect("a key record");

    // What the case is, how it edits the key's record, and what the refusal says.
    type Edit = (&'static str, fn(&mut Value), &'static str);
    let edits: [Edit; 7] = [
        ("scope with a space", |k| k["scope"] = json!(["read admin"]), "each scope entry"),
        ("generation at u32::MAX", |k| k["primary"]["generation"] = json!(u32::MAX), "primary.generation"),
        ("empty domain", |k| k["domain_id"] = json!(""), "domain_id"),
        ("long name", |k| k["name"] = json!("n".repeat(5000)), "name must be 1 to 64"),
        ("bidi name", |k| k["name"] = json!("abc\u{202e}fed"), "name must be 1 to 64"),
        ("unknown field", |k| k["owner_override"] = json!(true), "unknown field `owner_override`"),
        ("another tenant's domain", |k| k["domain_id"] = json!("domain-b"), "--domain domain-b"),
    ];
    for (what, edit, says) in edits {
        let mut edited = lines.clone();
        edit(&mut edited[key_line]);
        let file = new.path().join("edited.jsonl");
        let text: String = edited.iter().map(|record| format!("{record}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let output = keygate(&["import", "--input", file.to_str().unwrap()], new.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: imported");
        assert!(
            stderr.contains(&format!("line {}", key_line + 1)) && stderr.contains(says),
            "{what}: {stderr}"
        );
        assert!(!new.path().join("keygate.db").exists(), "{what}: nothing was written");
    }
    let said = succeeded(keygate(&["import", "--input", backup.to_str().unwrap()], new.path()));
    assert!(said.contains(&format!("imported {} records", lines.len())), "{said}");
}
