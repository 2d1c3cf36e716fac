//! Token mints per second through the real `keygate serve`, on the SQLite store (every token is
//! fsynced before it is answered) and on the memory store, from 1 and from 32 keep-alive
//! connections. `cargo bench -p keygate --bench serve_mint`; `KEYGATE_BENCH_WARMUP_SECONDS`
//! (2) and `KEYGATE_BENCH_SECONDS` (8) set how long each run warms up and is measured.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");
const FOREIGN_ENV: [&str; 4] =
    ["KEYGATE_ADMIN_CREDENTIALS", "KEYGATE_PEPPER", "KEYGATE_SIGNING_KEY", "KEYGATE_TABLE_NAME"];

/// The `keygate` binary, without the environment that would point it elsewhere than its data
/// directory.
fn keygate() -> Command {
    let mut command = Command::new(BINARY);
    for name in FOREIGN_ENV {
        command.env_remove(name);
    }
    command
}

/// A `keygate serve` process, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(store: &str, data_dir: &Path) -> Server {
        let mut child = keygate()
            .args(["serve", "--port", "0", "--store", store, "--data-dir"])
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

    /// A key with the largest quota there is, created with the CLI.
    fn create_key(&self, data_dir: &Path) -> String {
        let output = keygate()
            .args(["key", "create", "--max-usage", "2147483647", "--scope", "bench", "--json"])
            .args(["--url", &format!("http://{}", self.address), "--data-dir"])
            .arg(data_dir)
            .output()
            .expect("the CLI runs");
        assert!(output.status.success(), "key create: {}", String::from_utf8_lossy(&output.stderr));
        let created: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        created["api_key"].as_str().expect("api_key").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(address: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(address).await.expect("the server accepts");
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1 handshake");
    tokio::spawn(connection);
    sender
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let response = sender.send_request(request).await.expect("the server answers");
    let status = response.status();
    (status, response.into_body().collect().await.expect("a whole body").to_bytes())
}

/// Mints tokens on one connection until `end`; returns the latency of each answered between
/// `start` and `end`.
async fn mint_until(address: SocketAddr, key: String, start: Instant, end: Instant) -> Vec<Duration> {
    let mut sender = connect(address).await;
    let mut latencies = Vec::new();
    loop {
        let request = Request::get("/v1/auth/token")
            .header("host", address.to_string())
            .header("x-api-key", &key)
            .body(Full::default())
            .unwrap();
        let sent = Instant::now();
        let (status, body) = send(&mut sender, request).await;
        let done = Instant::now();
        assert_eq!(status, StatusCode::OK, "GET /v1/auth/token: {}", String::from_utf8_lossy(&body));
        if done >= end {
            return latencies;
        }
        if done >= start {
            latencies.push(done - sent);
        }
    }
}

struct Run {
    mints_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(store: &str, connections: usize, warmup: Duration, measured: Duration) -> Run {
    let data_dir = tempfile::tempdir().unwrap();
    let server = Server::start(store, data_dir.path());
    let key = server.create_key(data_dir.path());
    let body = serde_json::json!({ "key": key }).to_string();
    let register = Request::post("/v1/key/regist")
        .header("host", server.address.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (status, body) = send(&mut connect(server.address).await, register).await;
    assert_eq!(status, StatusCode::OK, "POST /v1/key/regist: {}", String::from_utf8_lossy(&body));

    let start = Instant::now() + warmup;
    let end = start + measured;
    let tasks: Vec<_> =
        (0..connections).map(|_| tokio::spawn(mint_until(server.address, key.clone(), start, end))).collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a connection failed"));
    }
    drop(server);
    assert!(!latencies.is_empty(), "no token was minted in {measured:?}");
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let rank = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1].as_secs_f64() * 1000.0
    };
    Run {
        mints_per_second: latencies.len() as f64 / measured.as_secs_f64(),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    }
}

fn seconds(variable: &str, default: f64) -> Duration {
    let value = std::env::var(variable).map_or(default, |v| v.parse().expect("a number of seconds"));
    Duration::from_secs_f64(value)
}

#[tokio::main]
async fn main() {
    let warmup = seconds("KEYGATE_BENCH_WARMUP_SECONDS", 2.0);
    let measured = seconds("KEYGATE_BENCH_SECONDS", 8.0);
    println!("| store | connections | mints/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut at_32 = Vec::new();
    for store in ["sqlite", "memory"] {
        for connections in [1, 32] {
            let r = run(store, connections, warmup, measured).await;
            println!(
                "| {store} | {connections} | {:.0} | {:.2} | {:.2} |",
                r.mints_per_second, r.p50_ms, r.p99_ms
            );
            if connections == 32 {
                at_32.push(r.mints_per_second);
            }
        }
    }
    println!("\nsqlite/memory at 32 connections: {:.3} (goal: at least 0.50)", at_32[0] / at_32[1]);
}
