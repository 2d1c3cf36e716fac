//! The local server against clients that send slowly or never finish: their connections are
//! closed after the read timeout, a body that never arrives is answered 400, the connection cap
//! holds, and running out of file descriptors makes the server wait, not spin.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

struct Server {
    child: Child,
    address: String,
    _data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server on the embedded store, with `limits` (a shell prefix such as `ulimit -n 64;`).
fn start(flags: &[&str], limits: &str) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{limits} exec '{BINARY}' serve --port 0 --data-dir '{}' {}",
        data_dir.path().display(),
        flags.join(" ")
    );
    let mut child = Command::new("sh")
        .args(["-c", &command])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the server prints its address").unwrap();
        if let Some(url) = line.strip_prefix("keygate listening on http://") {
            break url.to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, address, _data_dir: data_dir }
}

/// Half a request: headers begun, never finished.
fn half_request(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: keygate\r\n").unwrap();
    stream
}

fn health_status(address: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: keygate\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

/// Whether the server closed the connection (a read ends) within `within`.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    stream.set_read_timeout(Some(within)).unwrap();
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) => !matches!(e.kind(), WouldBlock | TimedOut),
        Ok(_) => false,
    }
}

#[test]
fn slow_clients_are_cut_off_and_cannot_keep_health_from_answering() {
    let server = start(&["--max-connections", "8", "--read-timeout-seconds", "1"], "");
    let mut slow: Vec<TcpStream> = (0..20).map(|_| half_request(&server.address)).collect();
    let started = Instant::now();
    assert_eq!(health_status(&server.address), Some(200));
    assert!(started.elapsed() < Duration::from_secs(8), "health waited {:?}", started.elapsed());
    assert!(closed_by_server(&mut slow[0], Duration::from_secs(5)), "a half-sent request is cut off");
}

#[test]
fn a_body_that_never_arrives_is_answered_400() {
    let server = start(&["--read-timeout-seconds", "1"], "");
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .write_all(b"POST /v1/key/regist HTTP/1.1\r\nHost: keygate\r\nContent-Length: 100\r\n\r\n{\"key\":")
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#"{"result":{"code":"bad_request","error":"Bad request"}}"#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// CPU time the process has used, in clock ticks (`/proc/<pid>/stat`, utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn running_out_of_file_descriptors_makes_the_server_wait_not_spin() {
    let server = start(&["--read-timeout-seconds", "2"], "ulimit -n 64;");
    let idle: Vec<TcpStream> = (0..100).map(|_| half_request(&server.address)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(server.child.id());
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(server.child.id()) - before;
    // A spinning accept loop burns the whole 1.5 s (about 150 ticks at 100 Hz).
    assert!(used < 50, "the server used {used} ticks while out of descriptors");
    drop(idle);
    let started = Instant::now();
    let status = loop {
        match health_status(&server.address) {
            Some(status) => break status,
            None if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            None => panic!("health never answered"),
        }
    };
    assert_eq!(status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_read_timeout() {
    let server = start(&["--read-timeout-seconds", "1"], "");
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: keygate\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 512];
    let n = stream.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)), "the idle connection stays open");
}
