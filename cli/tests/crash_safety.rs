//! The local server's default store (SQLite in `<data-dir>/keygate.db`) survives a crash: the
//! real binary is killed with SIGKILL in the middle of a storm of token requests, restarted on
//! the same data directory, and everything it acknowledged before dying is still true:
//!
//! - every token a client received was paid for (units consumed ≥ tokens received), and the
//!   only units paid for without a token are those of the requests the kill left unanswered;
//! - no token, and no `jti`, was handed out twice;
//! - a token whose refresh was acknowledged stays spent (`token_reused`);
//! - a signed admin write accepted before the kill is refused as a replay after it;
//! - every key created before the kill is still there.
//!
//! SIGKILL ends the process, not the machine: the test proves that nothing is acknowledged
//! before it is committed to the file, not that the commit reached the disk.
#![cfg(unix)]

use std::collections::HashSet;
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keygate_core::signature::{self, Credential};
use serde_json::{Value, json};
use support::{Server, call, json_of, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Concurrent clients in the storm.
const CLIENTS: usize = 16;
/// Refreshes each client makes along a token's chain before it goes back to its key.
const REFRESHES_PER_CHAIN: usize = 3;
/// Tokens the clients must have received before the server is killed.
const TOKENS_BEFORE_KILL: usize = 300;
/// Generous bounds against a hung server, never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(240);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `keygate key <args> --json` against the server and returns its JSON answer.
fn key_command(server: &Server, data_dir: &Path, args: &[&str]) -> Value {
    let output = support::key_command(server, data_dir, &[args, &["--json"]].concat());
    json_of(&output.unwrap_or_else(|err| panic!("key {args:?}: {err}")))
}

/// The claims of a JWT, from its base64url middle part.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

// ---- The signed admin write, kept as raw bytes so it can be sent again exactly. ----

/// A complete HTTP/1.1 request: a SpaceONE `create`, signed with the data directory's
/// credential as the CLI signs it. The `host` header names no port, so the same bytes suit the
/// restarted server whatever port it picks.
fn signed_create(data_dir: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(data_dir.join("credentials.json")).unwrap();
    let credential: Credential = serde_json::from_str::<Vec<Credential>>(&text).unwrap().remove(0);
    let (method, path) = ("POST", "/identity/v1/api-keys");
    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
    let signature = signature::sign(&credential.secret_key, method, path, &timestamp, &credential.access_key);
    let body = json!({
        "user_id": credential.access_key,
        "name": "signed-before-the-kill",
        "max_total_usage": 7,
    })
    .to_string();
    let head = [
        format!("{method} {path} HTTP/1.1"),
        "host: keygate.test".into(),
        "content-type: application/json".into(),
        format!("content-length: {}", body.len()),
        format!("{}: {timestamp}", signature::TIMESTAMP_HEADER),
        format!("{}: {}", signature::ACCESS_KEY_HEADER, credential.access_key),
        format!("{}: {signature}", signature::SIGNATURE_HEADER),
        "connection: close".into(),
    ];
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// Sends raw request bytes on a new connection; returns the status and the JSON body.
async fn send_raw(server: &Server, request: &[u8]) -> (u16, Value) {
    let address = server.url.trim_start_matches("http://");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.expect("an answer in time");
    let answer = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

// ---- The storm. ----

/// What the clients were told, shared by all of them.
#[derive(Default)]
struct Ledger {
    /// Every token received, from a mint or a refresh, in order of arrival.
    received: Vec<String>,
    /// Tokens whose refresh the server acknowledged with a 200: spent, in order.
    spent: Vec<String>,
}

/// Why a client stopped.
#[derive(Debug)]
enum Stop {
    /// The request got no complete answer: the server died under it (or before it).
    NoAnswer,
    /// An answer other than a token. None is expected: the quota is far from spent.
    Refused(u16, String),
}

struct Storm {
    http: reqwest::Client,
    token_url: String,
    refresh_url: String,
    key: String,
    ledger: Mutex<Ledger>,
    /// Requests sent and not yet fully answered.
    in_flight: AtomicUsize,
}

impl Storm {
    fn received(&self) -> usize {
        self.ledger.lock().unwrap().received.len()
    }

    /// One request for a token; `Ok` only for a 200 carrying one.
    async fn ask(&self, request: reqwest::RequestBuilder) -> Result<String, Stop> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let response = request.send().await.map_err(|_| Stop::NoAnswer)?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|_| Stop::NoAnswer)?;
            let token = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["result"]["access_token"].as_str().map(str::to_owned));
            match token {
                Some(token) if status == 200 => Ok(token),
                _ => Err(Stop::Refused(status, body)),
            }
        }
        .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    }

    /// One client: mint with the key, refresh along the chain, again, until something stops it.
    async fn client(self: Arc<Self>) -> Stop {
        loop {
            let minted = self.ask(self.http.get(&self.token_url).header("x-api-key", &self.key)).await;
            let mut token = match minted {
                Ok(token) => token,
                Err(stop) => return stop,
            };
            self.ledger.lock().unwrap().received.push(token.clone());
            for _ in 0..REFRESHES_PER_CHAIN {
                let next = match self.ask(self.http.get(&self.refresh_url).bearer_auth(&token)).await {
                    Ok(next) => next,
                    Err(stop) => return stop,
                };
                let mut ledger = self.ledger.lock().unwrap();
                ledger.received.push(next.clone());
                ledger.spent.push(std::mem::replace(&mut token, next));
            }
        }
    }
}

/// Waits until the clients hold `tokens` tokens; fails if they all stopped first.
async fn wait_for_tokens(storm: &Storm, clients: &[tokio::task::JoinHandle<Stop>], tokens: usize) {
    let started = Instant::now();
    while storm.received() < tokens {
        assert!(!clients.iter().all(|c| c.is_finished()), "every client stopped before the kill");
        assert!(started.elapsed() < PATIENCE, "only {} tokens after {PATIENCE:?}", storm.received());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_everything_it_acknowledged() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path();
    let mut server = start_with(dir, &[]);
    assert!(server.printed.join("\n").contains("created an admin credential"), "a first start makes one");

    // Keys created before the storm; the first, with a quota the storm cannot spend, is the
    // one the clients use.
    let mut created_ids = HashSet::new();
    let mut storm_key = None;
    for max_usage in ["100000", "10", "20", "30", "40"] {
        let created =
            key_command(&server, dir, &["create", "--scope", "orders:read", "--max-usage", max_usage]);
        created_ids.insert(created["api_key_id"].as_str().unwrap().to_owned());
        storm_key.get_or_insert_with(|| created["api_key"].as_str().unwrap().to_owned());
    }
    let storm_key = storm_key.unwrap();
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let (status, body) =
        call(http.post(server.url("/v1/key/regist")).json(&json!({ "key": storm_key }))).await;
    assert_eq!((status, &body["result"]["max_total_usage"]), (200, &json!(100000)), "{body}");

    let storm = Arc::new(Storm {
        http: http.clone(),
        token_url: server.url("/v1/auth/token"),
        refresh_url: server.url("/v1/auth/refresh"),
        key: storm_key.clone(),
        ledger: Mutex::default(),
        in_flight: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(storm.clone().client())).collect();

    // Halfway, a signed admin write, accepted while the storm runs.
    wait_for_tokens(&storm, &clients, TOKENS_BEFORE_KILL / 2).await;
    let signed = signed_create(dir);
    let (status, body) = send_raw(&server, &signed).await;
    assert_eq!(status, 200, "the signed create is accepted: {body}");
    created_ids.insert(body["api_key_id"].as_str().unwrap().to_owned());

    // Then the kill, aimed at a moment with requests in flight.
    wait_for_tokens(&storm, &clients, TOKENS_BEFORE_KILL).await;
    let aiming = Instant::now();
    while storm.in_flight.load(Ordering::SeqCst) == 0 && aiming.elapsed() < Duration::from_secs(10) {
        tokio::task::yield_now().await;
    }
    let in_flight_at_kill = storm.in_flight.load(Ordering::SeqCst);
    let exit = server.kill();
    let killed_after = started.elapsed();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&exit), Some(9), "killed by SIGKILL");

    let mut unanswered = 0;
    for client in clients {
        match client.await.unwrap() {
            Stop::NoAnswer => unanswered += 1,
            Stop::Refused(status, body) => panic!("a client was refused before the kill: {status} {body}"),
        }
    }
    let Ledger { received, spent } = std::mem::take(&mut *storm.ledger.lock().unwrap());

    let server = start_with(dir, &[]);
    assert!(
        server.printed.iter().all(|line| !line.contains("created an admin credential")),
        "a restart reuses the directory"
    );

    // Every token received was paid for; at most the requests the kill left unanswered (one
    // per client at most) were paid for without their token arriving.
    let (status, detail) = call(http.get(server.url("/v1/key/detail")).header("x-api-key", &storm_key)).await;
    assert_eq!(status, 200, "the registered key survives: {detail}");
    let consumed = units_consumed(&detail);
    assert!(consumed >= received.len() as i64, "{consumed} units consumed for {} tokens", received.len());
    assert!(
        consumed <= (received.len() + unanswered) as i64,
        "{consumed} units consumed for {} tokens and {unanswered} unanswered requests",
        received.len()
    );

    // No token, and no token id, was handed out twice.
    let distinct: HashSet<&String> = received.iter().collect();
    assert_eq!(distinct.len(), received.len(), "a token was received twice");
    let jtis: HashSet<String> =
        received.iter().map(|t| claims(t)["jti"].as_str().unwrap().to_owned()).collect();
    assert_eq!(jtis.len(), received.len(), "a jti was issued twice");

    // A spent token stays spent. One per family, the latest spent first: a second reuse in a
    // family would be refused because the first revoked the family, whatever the store kept.
    let checked = last_spent_per_family(&spent, 20);
    assert!(!checked.is_empty(), "the storm acknowledged some refreshes");
    for token in &checked {
        let (status, body) = call(http.get(server.url("/v1/auth/refresh")).bearer_auth(token)).await;
        assert_eq!((status, &body["result"]["code"]), (429, &json!("token_reused")), "{body}");
    }

    // The admin write accepted before the kill is not accepted again, and changes nothing.
    let (status, body) = send_raw(&server, &signed).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({ "error": { "code": "ERROR_AUTHENTICATE_FAILURE", "message": keygate_core::service::REPLAYED } })
        )
    );

    // Every key created before the kill is there, and nothing else.
    let listed = key_command(&server, dir, &["list"]);
    let listed_ids: HashSet<String> = listed["results"]
        .as_array()
        .expect("a list of keys")
        .iter()
        .map(|key| key["api_key_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed_ids, created_ids, "{listed}");
    assert_eq!(listed["total_count"], json!(created_ids.len()), "{listed}");

    // Neither the refused refreshes nor the replay consumed anything.
    let (_, detail) = call(http.get(server.url("/v1/key/detail")).header("x-api-key", &storm_key)).await;
    assert_eq!(units_consumed(&detail), consumed, "{detail}");

    eprintln!(
        "crash safety: {} tokens received ({} refreshes acknowledged) by {CLIENTS} clients in {killed_after:?}; \
         {in_flight_at_kill} requests in flight at the kill, {unanswered} unanswered; \
         {consumed} units consumed; {} spent tokens re-checked; whole test {:?}",
        received.len(),
        spent.len(),
        checked.len(),
        started.elapsed()
    );
}

fn units_consumed(detail: &Value) -> i64 {
    let max = detail["result"]["max_total_usage"].as_i64().expect("max_total_usage");
    let remaining = detail["result"]["remaining_total_usage"].as_i64().expect("remaining_total_usage");
    max - remaining
}

/// Up to `limit` spent tokens, the last spent of each family, most recent families first.
fn last_spent_per_family(spent: &[String], limit: usize) -> Vec<String> {
    let mut families = HashSet::new();
    let mut chosen = Vec::new();
    for token in spent.iter().rev() {
        let family = claims(token)["fam"].as_str().expect("a token names its family").to_owned();
        if families.insert(family) {
            chosen.push(token.clone());
        }
        if chosen.len() == limit {
            break;
        }
    }
    chosen
}
