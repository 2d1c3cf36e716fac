//! Shared by the tests that run the real binary: a server on a free port, stopped when the test
//! ends, and the CLI and HTTP calls the tests make against it.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

/// The server process, stopped when the test ends however it ends.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// What the server printed before it listened (the credential, on first start).
    pub printed: Vec<String>,
    /// Everything it prints afterwards: its JSON logs.
    logs: mpsc::Receiver<String>,
}

impl Server {
    /// Stops the server and returns every log line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain_logs()
    }

    /// Stops the server as Ctrl-C does, waits for it to exit on its own and returns every log
    /// line it wrote.
    pub fn interrupt(mut self) -> Vec<String> {
        let sent = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()), "SIGINT sent");
        let status = self.child.wait().expect("the server exits");
        assert!(status.success(), "a clean exit on Ctrl-C: {status}");
        self.drain_logs()
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs, nothing is flushed.
    pub fn kill(&mut self) -> ExitStatus {
        assert!(self.child.try_wait().unwrap().is_none(), "the server was still running");
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn drain_logs(&mut self) -> Vec<String> {
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

/// The store flags of the run: none (the default, `keygate.db` in the data directory), or with
/// `KEYGATE_TEST_STORE=dynamodb` a table on the emulator `scripts/test` started, one per data
/// directory so a restarted server finds its keys again.
pub fn store_args(data_dir: &Path) -> Vec<String> {
    if std::env::var("KEYGATE_TEST_STORE").as_deref() != Ok("dynamodb") {
        return Vec::new();
    }
    let endpoint = std::env::var("KEYGATE_TEST_DYNAMODB_ENDPOINT").expect("scripts/test sets the emulator");
    let dir_name = data_dir.file_name().unwrap().to_string_lossy();
    let table = format!("keygate-e2e-{}-{}", std::process::id(), dir_name.trim_start_matches('.'));
    vec!["--table".into(), table, "--dynamodb-endpoint".into(), endpoint]
}

/// Starts `keygate serve` on a free port over `data_dir`, on the run's store.
pub fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &store_args(data_dir))
}

/// `keygate serve` on a free port over `data_dir`, with no `KEYGATE_*` variable from the test's
/// environment.
fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEYGATE_") {
            command.env_remove(name);
        }
    }
    command.args(["serve", "--port", "0", "--data-dir"]).arg(data_dir);
    command
}

/// Starts `keygate serve` with these store flags and no `KEYGATE_*` variable from the test's
/// environment: the data directory and the flags decide everything.
pub fn start_with(data_dir: &Path, store: &[String]) -> Server {
    let mut child = serve_command(data_dir)
        .args(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the keygate binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    // Reads to the end: the server logs every request to stdout, and a full pipe would stall it.
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

/// Starts `keygate serve` over `dir`, which must refuse to start; returns what it said.
pub fn start_refused(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut child = serve_command(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the server started over {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `keygate key create --json <args>` against the server and returns its answer.
pub fn cli(server: &Server, data_dir: &Path, args: &[&str]) -> Value {
    let output = Command::new(BINARY)
        .args(["key", "create", "--json", "--url", &server.url, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .expect("the CLI runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the CLI prints JSON")
}

pub async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Runs `keygate key <args>` against the server; returns its standard output, or its error
/// output if it failed.
pub fn key_command(server: &Server, data_dir: &Path, args: &[&str]) -> Result<String, String> {
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

pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}
