//! One tenant's heavy admin queries against another tenant's token route, through the real
//! `keygate serve` on SQLite (issue 18, finding 2). A domain of 10,000 keys is filled through the
//! SpaceONE API; a key of a second domain then mints at a steady rate, alone (the baseline) and
//! while four connections send the first domain's heavy queries without pause (sorted searches
//! and grouped stats, each answered before the next; a 503 is retried after its `Retry-After`).
//! Latencies are counted from when each mint was due, so a stall counts in full. One query over
//! the cost limit must get its 400. A run alternates baseline and loaded windows, so that both
//! see the same background; the goal is a loaded p99 within twice the baseline's.
//!
//! `cargo bench -p keygate --bench query_isolation`. Settings: `KEYGATE_BENCH_KEYS` (10000),
//! `KEYGATE_BENCH_SECONDS` (4, each window), `KEYGATE_BENCH_WINDOWS` (5 of each phase a run),
//! `KEYGATE_BENCH_MINT_RATE` (200 mints/s), `KEYGATE_BENCH_RUNS` (2), and `KEYGATE_BENCH_KEYGATE`,
//! a prebuilt `keygate` to measure instead of this tree's (an older one, say).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keygate_core::signature;
use serde_json::{Value, json};

const HEAVY_DOMAIN: (&str, &str, &str) = ("AKBENCHHEAVY", "secret-of-the-heavy-tenant-0123456789", "heavy");
const MINT_DOMAIN: (&str, &str, &str) = ("AKBENCHMINT", "secret-of-the-minting-tenant-0123456789", "mint");
const HEAVY_QUERIES: usize = 4;
const MINT_CONNECTIONS: usize = 4;
const CREATE_CONNECTIONS: usize = 16;
const OWNERS: usize = 100;

fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
}

/// A `keygate serve` process, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let binary =
            std::env::var("KEYGATE_BENCH_KEYGATE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_keygate").into());
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYGATE_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("keygate starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let address = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "keygate exited before it listened");
            if let Some(url) = line.trim().strip_prefix("keygate listening on http://") {
                break url.parse().expect("an address");
            }
        };
        // Its JSON logs follow on stdout: keep reading them so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Server { child, address }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two admin credentials, each for its own domain, written where `serve` reads them.
fn write_credentials(data_dir: &Path) {
    let credentials: Vec<Value> = [HEAVY_DOMAIN, MINT_DOMAIN]
        .iter()
        .map(|(access_key, secret_key, domain)| {
            json!({ "access_key": access_key, "secret_key": secret_key, "domain_id": domain })
        })
        .collect();
    let path = data_dir.join("credentials.json");
    std::fs::write(&path, Value::from(credentials).to_string()).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

async fn connect(address: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(address).await.expect("the server accepts");
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1 handshake");
    tokio::spawn(connection);
    sender
}

/// The answer's status, `Retry-After` and JSON body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<u64>, Value) {
    sender.ready().await.expect("the connection is open");
    let response = sender.send_request(request).await.expect("the server answers");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    let body = response.into_body().collect().await.expect("a whole body").to_bytes();
    (status, retry_after, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A SpaceONE request signed by `credential` as at `millis` (a write needs a millisecond of its own).
fn signed(
    address: SocketAddr,
    path: &str,
    body: &Value,
    credential: (&str, &str, &str),
    millis: i64,
) -> Request<Full<Bytes>> {
    let (access_key, secret_key, _) = credential;
    let timestamp = millis.to_string();
    Request::post(path)
        .header("host", address.to_string())
        .header("content-type", "application/json")
        .header(signature::TIMESTAMP_HEADER, &timestamp)
        .header(signature::ACCESS_KEY_HEADER, access_key)
        .header(
            signature::SIGNATURE_HEADER,
            signature::sign(secret_key, "POST", path, &timestamp, access_key),
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Fills the heavy domain with `count` keys, each create signed a millisecond apart.
async fn fill(address: SocketAddr, count: usize) {
    let first = now_millis() - count as i64 - 1;
    let tasks: Vec<_> = (0..CREATE_CONNECTIONS)
        .map(|lane| {
            tokio::spawn(async move {
                let mut sender = connect(address).await;
                for n in (lane..count).step_by(CREATE_CONNECTIONS) {
                    let body =
                        json!({ "user_id": format!("owner-{}", n % OWNERS), "name": format!("key-{n}") });
                    let request =
                        signed(address, "/identity/v1/api-keys", &body, HEAVY_DOMAIN, first + n as i64);
                    let (status, _, answer) = send(&mut sender, request).await;
                    assert_eq!(status, StatusCode::OK, "create: {answer}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// A registered key of the minting domain, with the largest quota there is.
async fn minting_key(address: SocketAddr) -> String {
    let mut sender = connect(address).await;
    let body = json!({ "user_id": "minter", "max_total_usage": 2_147_483_647 });
    let (status, _, created) =
        send(&mut sender, signed(address, "/identity/v1/api-keys", &body, MINT_DOMAIN, now_millis())).await;
    assert_eq!(status, StatusCode::OK, "create: {created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let register = Request::post("/v1/key/regist")
        .header("host", address.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "key": key }).to_string())))
        .unwrap();
    let (status, _, answer) = send(&mut sender, register).await;
    assert_eq!(status, StatusCode::OK, "regist: {answer}");
    key
}

/// Mints on one connection, one mint due every `period` from `first` until `end`; the latency of
/// each is from when it was due, so a mint held up also delays the next ones' counts.
async fn mint_steadily(
    address: SocketAddr,
    key: String,
    first: Instant,
    period: Duration,
    end: Instant,
) -> Vec<Duration> {
    let mut sender = connect(address).await;
    let mut latencies = Vec::new();
    let mut due = first;
    while due < end {
        tokio::time::sleep_until(due.into()).await;
        let request = Request::get("/v1/auth/token")
            .header("host", address.to_string())
            .header("x-api-key", &key)
            .body(Full::default())
            .unwrap();
        let (status, _, answer) = send(&mut sender, request).await;
        assert_eq!(status, StatusCode::OK, "token: {answer}");
        latencies.push(due.elapsed());
        due += period;
    }
    latencies
}

#[derive(Default)]
struct Mints {
    latencies: Vec<Duration>,
}

impl Mints {
    fn percentile(&self, p: f64) -> f64 {
        let rank = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1000.0
    }
}

async fn mint_phase(address: SocketAddr, key: &str, rate: f64, measured: Duration) -> Mints {
    let period = Duration::from_secs_f64(MINT_CONNECTIONS as f64 / rate);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + measured;
    let tasks: Vec<_> = (0..MINT_CONNECTIONS)
        .map(|lane| {
            let first = start + period * lane as u32 / MINT_CONNECTIONS as u32;
            tokio::spawn(mint_steadily(address, key.to_owned(), first, period, end))
        })
        .collect();
    let mut mints = Mints::default();
    for task in tasks {
        mints.latencies.extend(task.await.expect("a mint connection failed"));
    }
    mints.latencies.sort_unstable();
    mints
}

/// The heavy queries, in turn: a search filtered on a field no index holds and sorted by another,
/// and a stat grouping every key by owner.
fn heavy_query(n: usize) -> (&'static str, Value) {
    match n % 2 {
        0 => (
            "/identity/v1/api-keys/search",
            json!({ "query": {
                "filter": [{ "k": "name", "v": "key-", "o": "contain" }],
                "sort": [{ "key": "name", "desc": true }],
                "page": { "limit": 10 },
            } }),
        ),
        _ => (
            "/identity/v1/api-keys/stat",
            json!({ "query": {
                "aggregate": [
                    { "group": { "keys": [{ "key": "user_id", "name": "owner" }], "fields": [
                        { "name": "keys", "operator": "count" },
                        { "key": "created_at", "name": "latest", "operator": "max" },
                    ] } },
                    { "sort": { "keys": [{ "key": "keys", "desc": true }] } },
                ],
                "page": { "limit": 10 },
            } }),
        ),
    }
}

#[derive(Default)]
struct Queries {
    answered: usize,
    busy: usize,
    other: Vec<String>,
    latencies: Vec<Duration>,
}

/// Sends heavy queries of the heavy domain one after another until `stop`.
async fn query_until(address: SocketAddr, lane: usize, stop: Arc<AtomicBool>) -> Queries {
    let mut sender = connect(address).await;
    let mut queries = Queries::default();
    let (path, body) = heavy_query(lane);
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let (status, retry_after, answer) =
            send(&mut sender, signed(address, path, &body, HEAVY_DOMAIN, now_millis())).await;
        match status {
            StatusCode::OK => {
                queries.answered += 1;
                queries.latencies.push(sent.elapsed());
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                queries.busy += 1;
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
            }
            other => queries.other.push(format!("{other} {answer}")),
        }
    }
    queries
}

/// A search testing 150 texts on each of the domain's keys: over the default cost limit from
/// about 6,700 keys.
async fn over_the_limit(address: SocketAddr) -> (StatusCode, Value) {
    let conditions: Vec<Value> =
        (0..150).map(|n| json!({ "k": "name", "v": format!("absent-{n}"), "o": "contain" })).collect();
    let body = json!({ "query": { "filter_or": conditions, "count_only": true } });
    let request = signed(address, "/identity/v1/api-keys/search", &body, HEAVY_DOMAIN, now_millis());
    let (status, _, answer) = send(&mut connect(address).await, request).await;
    (status, answer)
}

/// The machine's load average over the last minute: what else ran beside the bench.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}

#[tokio::main]
async fn main() {
    let keys = setting("KEYGATE_BENCH_KEYS", 10_000.0) as usize;
    let window = Duration::from_secs_f64(setting("KEYGATE_BENCH_SECONDS", 4.0));
    let windows = setting("KEYGATE_BENCH_WINDOWS", 5.0) as usize;
    let rate = setting("KEYGATE_BENCH_MINT_RATE", 200.0);
    let runs = setting("KEYGATE_BENCH_RUNS", 2.0) as usize;

    let data_dir = tempfile::tempdir().unwrap();
    write_credentials(data_dir.path());
    let server = Server::start(data_dir.path());
    let filling = Instant::now();
    fill(server.address, keys).await;
    println!(
        "{keys} keys created in {:.1} s; minting at {rate}/s over {MINT_CONNECTIONS} connections\n",
        filling.elapsed().as_secs_f64()
    );
    let key = minting_key(server.address).await;
    mint_phase(server.address, &key, rate, Duration::from_secs(2)).await;

    let mut failed = Vec::new();
    let (status, answer) = over_the_limit(server.address).await;
    println!("a query over the cost limit: {} {answer}\n", status.as_u16());
    if status != StatusCode::BAD_REQUEST || !answer.to_string().contains("query cost limit") {
        failed.push("the query over the cost limit was not refused with its 400".to_owned());
    }

    println!(
        "| run | phase | mints | p50 ms | p99 ms | max ms | heavy queries answered | 503 | query p50 ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in 1..=runs {
        let load_before = load_average();
        let (mut baseline, mut loaded, mut queries) =
            (Mints::default(), Mints::default(), Queries::default());
        // Alternating windows, so that both phases see the same background (other processes).
        for _ in 0..windows {
            baseline.latencies.extend(mint_phase(server.address, &key, rate, window).await.latencies);
            let stop = Arc::new(AtomicBool::new(false));
            let lanes: Vec<_> = (0..HEAVY_QUERIES)
                .map(|lane| tokio::spawn(query_until(server.address, lane, stop.clone())))
                .collect();
            tokio::time::sleep(Duration::from_secs(1)).await;
            loaded.latencies.extend(mint_phase(server.address, &key, rate, window).await.latencies);
            stop.store(true, Ordering::Relaxed);
            for lane in lanes {
                let lane = lane.await.expect("a query connection failed");
                queries.answered += lane.answered;
                queries.busy += lane.busy;
                queries.other.extend(lane.other);
                queries.latencies.extend(lane.latencies);
            }
        }
        baseline.latencies.sort_unstable();
        loaded.latencies.sort_unstable();
        queries.latencies.sort_unstable();
        let row = |phase: &str, mints: &Mints, queries: Option<&Queries>| {
            let (answered, busy, query_p50) = match queries {
                Some(q) => {
                    let p50 =
                        q.latencies.get(q.latencies.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                    (q.answered.to_string(), q.busy.to_string(), format!("{p50:.0}"))
                }
                None => ("".into(), "".into(), "".into()),
            };
            println!(
                "| {run} | {phase} | {} | {:.2} | {:.2} | {:.2} | {answered} | {busy} | {query_p50} |",
                mints.latencies.len(),
                mints.percentile(0.50),
                mints.percentile(0.99),
                mints.percentile(1.0),
            );
        };
        row("baseline", &baseline, None);
        row(&format!("{HEAVY_QUERIES} heavy queries"), &loaded, Some(&queries));
        let ratio = loaded.percentile(0.99) / baseline.percentile(0.99);
        if ratio > 2.0 {
            failed.push(format!("run {run}: the loaded p99 is {ratio:.2} × the baseline's"));
        }
        if let Some(answer) = queries.other.first() {
            failed.push(format!(
                "run {run}: {} heavy queries got another answer, e.g. {answer}",
                queries.other.len()
            ));
        }
        println!(
            "|  | loaded p99 / baseline p99 | {ratio:.2} (goal: at most 2) | load average {load_before} → {} | | | | | |",
            load_average()
        );
    }
    drop(server);
    if !failed.is_empty() {
        eprintln!("\n{}", failed.join("\n"));
        std::process::exit(1);
    }
}
