//! The local server against clients that send slowly, never finish or send too much: their
//! connections are closed after the read timeout, a body that never arrives is answered 400, a
//! body past the limit is refused as it arrives and a thousand of them leave memory bounded, the
//! connection caps hold (one address cannot take every connection), and running out of file
//! descriptors makes the server wait, not spin.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keygate_core::limits::MAX_BODY_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The first bytes of the server's answer on `stream`, within `within`.
fn answer_within(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[test]
fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    let server = start(&["--read-timeout-seconds", "30"], "");
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let head = format!(
        "POST /identity/v1/api-keys HTTP/1.1\r\nHost: keygate\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let answer = answer_within(&mut stream, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body is too large"), "{answer}");
}

#[test]
fn a_body_is_refused_once_it_passes_the_limit_while_the_client_still_writes() {
    let server = start(&["--read-timeout-seconds", "30"], "");
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let chunk = vec![b'x'; MAX_BODY_BYTES + 1];
    stream
        .write_all(
            b"POST /identity/v1/api-keys HTTP/1.1\r\nHost: keygate\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
    stream.write_all(&chunk).unwrap();
    stream.write_all(b"\r\n").unwrap();
    // The body goes on (no last chunk): the answer comes anyway.
    let answer = answer_within(&mut stream, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body is too large"), "{answer}");
}

/// The server's resident memory now and at its peak, in KiB (`/proc/<pid>/status`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Lets this test process hold `descriptors` sockets.
fn allow_descriptors(descriptors: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < descriptors) {
        setrlimit(Resource::Nofile, Rlimit { current: Some(descriptors), maximum: limit.maximum })
            .expect("the hard limit allows it");
    }
}

/// A connection to `server` from the loopback address `127.0.0.<host>`: each address is a peer
/// of its own to the server.
async fn connect_from(host: u8, server: &str) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(server.parse().unwrap()).await
}

const MIB: usize = 1024 * 1024;

/// A 1 MiB body as sent: its framing header and its bytes, announced by its length or chunked.
fn large_body(chunked: bool) -> (String, Vec<u8>) {
    let piece = vec![b'x'; 64 * 1024];
    if !chunked {
        return (format!("Content-Length: {MIB}"), piece.repeat(MIB / piece.len()));
    }
    let mut wire = Vec::new();
    for _ in 0..MIB / piece.len() {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(&piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    ("Transfer-Encoding: chunked".to_owned(), wire)
}

/// Sends `body`, reads the answer, then holds the connection until `release` lets every client
/// go at once.
async fn send_large_body(
    mut stream: tokio::net::TcpStream,
    body: Arc<(String, Vec<u8>)>,
    release: Arc<tokio::sync::Barrier>,
) -> String {
    let head = format!("POST /v1/key/regist HTTP/1.1\r\nHost: keygate\r\n{}\r\n\r\n", body.0);
    // The server may answer before the body ends: a failed write still leaves its answer to read.
    let mut wrote = stream.write_all(head.as_bytes()).await;
    if wrote.is_ok() {
        wrote = stream.write_all(&body.1).await;
    }
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut answer)).await;
    release.wait().await;
    match read {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&answer[..n]).into_owned(),
        other => format!("no answer: {other:?}, after writing: {wrote:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_sending_large_bodies_leave_memory_bounded_and_given_back() {
    const CLIENTS: usize = 1000;
    const ADDRESSES: usize = 8; // 125 connections each, within --max-connections-per-peer
    allow_descriptors(4096);
    let server = start(&[], "ulimit -n 4096;");
    let pid = server.child.id();
    let (before, _) = memory_kib(pid);

    let bodies = [Arc::new(large_body(false)), Arc::new(large_body(true))];
    let release = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    // Connected one after another: a thousand connects at once would overflow the listen queue,
    // and the kernel's SYN cookies then reset one now and then.
    let mut streams = Vec::new();
    for i in 0..CLIENTS {
        let host = 1 + (i % ADDRESSES) as u8;
        streams.push(connect_from(host, &server.address).await.expect("connected"));
    }
    let clients: Vec<_> = (streams.into_iter().enumerate())
        .map(|(i, stream)| tokio::spawn(send_large_body(stream, bodies[i % 2].clone(), release.clone())))
        .collect();
    // Every client has its answer and still holds its connection.
    release.wait().await;
    let (held, peak) = memory_kib(pid);
    let mut others = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let answer = client.await.unwrap();
        if !answer.starts_with("HTTP/1.1 400") {
            others.push((i, answer));
        }
    }
    // The server gives freed memory back every 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (after, _) = memory_kib(pid);
    println!(
        "server RSS: {} MiB before, {} MiB with every connection open, peak {} MiB, {} MiB after they closed",
        before / 1024,
        held / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(others.is_empty(), "every client gets its 400: {} did not, {others:?}", others.len());
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
    assert!(after < 50 * 1024, "RSS {after} KiB after the clients closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_many_connections_cannot_keep_another_from_health() {
    allow_descriptors(4096);
    // Idle connections are kept well past the time health is given.
    let server = start(&["--read-timeout-seconds", "60"], "ulimit -n 4096;");
    let mut held = Vec::new();
    for _ in 0..1100 {
        match connect_from(1, &server.address).await {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    let started = Instant::now();
    let mut stream = tokio::time::timeout(Duration::from_secs(10), connect_from(2, &server.address))
        .await
        .expect("connected in time")
        .unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: keygate\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await;
    assert!(read.is_ok(), "health did not answer within 10 s");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    println!(
        "health answered in {:?} beside {} idle connections of one address",
        started.elapsed(),
        held.len()
    );

    // The first address holds exactly its 256: one more is closed at once.
    let mut extra = connect_from(1, &server.address).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut [0u8; 1])).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a 257th connection stays open");
}
