//! The DynamoDB side of the harness: a fresh table per test on the emulator `scripts/test` runs,
//! and a count of the requests each operation sends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use keygate_core::store::{DynamoStore, Store};

/// Set by `scripts/test` to the emulator it started.
pub const ENDPOINT_VARIABLE: &str = "KEYGATE_TEST_DYNAMODB_ENDPOINT";

/// The emulator's endpoint. Missing, the test fails rather than pass without having run:
/// `scripts/test` starts the emulator and sets it.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VARIABLE} is not set: run scripts/test, which starts a DynamoDB emulator")
    })
}

/// Records the operation (`x-amz-target`) of every HTTP request a client sends, retries included.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<Mutex<Vec<String>>>);

impl RequestCounter {
    /// How many requests were sent since the last look.
    pub fn take(&self) -> usize {
        self.take_operations().len()
    }

    /// The operations sent since the last look, in order (`Query`, `BatchGetItem`, ...).
    pub fn take_operations(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        self.0.lock().unwrap().push(operation);
        Ok(())
    }
}

fn unique_table_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("keygate-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// A store on a new table of the emulator at `endpoint`, with the requests it sends counted.
pub async fn store_at(endpoint: &str) -> (DynamoStore, RequestCounter) {
    let counter = RequestCounter::default();
    // The emulator serves one request at a time, so hundreds of concurrent requests queue there
    // for longer than keygate's production timeouts allow; the fault tests keep those.
    let queueing = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(60))
        .build();
    let base = keygate_core::aws::default_config().await;
    let config = keygate_core::store::dynamodb::client_config(&base, Some(endpoint))
        .timeout_config(queueing)
        .interceptor(counter.clone())
        .build();
    let store = DynamoStore::new(Client::from_conf(config), unique_table_name());
    store.create_table_if_missing().await.expect("the emulator creates the table");
    counter.take();
    (store, counter)
}

/// A store on a new table of the test emulator.
pub async fn store() -> Arc<dyn Store> {
    Arc::new(store_at(&endpoint()).await.0)
}

/// An emulator process of a test's or benchmark's own (freezing one disturbs no other test).
pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

impl Emulator {
    /// Starts `scripts/dynamodb-emulator.py` with the Python `scripts/test` installed moto into.
    pub fn start() -> Self {
        let python = std::env::var("KEYGATE_TEST_PYTHON").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../target/tools/bin/python").to_owned()
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dynamodb-emulator.py");
        let mut child = Command::new(python)
            .args([script, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the emulator speaks");
        let endpoint = line.trim().strip_prefix("dynamodb emulator listening on ").map(str::to_owned);
        match endpoint {
            Some(endpoint) => Self { child, endpoint },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("unexpected emulator output {line:?}");
            }
        }
    }

    /// Sends a signal to the emulator (`-STOP` freezes it, `-CONT` thaws it).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pass-through in front of the emulator that can lose one answer: the request reaches the
/// emulator and is applied, but its answer never comes back, as when DynamoDB answers after the
/// client's attempt timeout. The client then retries on a new connection, which passes.
pub struct LateAnswers {
    pub endpoint: String,
    armed: Arc<Mutex<Option<String>>>,
    withheld: Arc<AtomicUsize>,
}

impl LateAnswers {
    /// Listens on a free port and forwards every connection to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let armed: Arc<Mutex<Option<String>>> = Arc::default();
        let withheld = Arc::new(AtomicUsize::new(0));
        let (armed_, withheld_) = (armed.clone(), withheld.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, armed, withheld) = (upstream.clone(), armed_.clone(), withheld_.clone());
                tokio::spawn(async move { forward(client, &upstream, &armed, &withheld).await });
            }
        });
        Self { endpoint, armed, withheld }
    }

    /// The answer to the next request of `operation` (`TransactWriteItems`, ...) is lost.
    pub fn lose_next_answer(&self, operation: &str) {
        *self.armed.lock().unwrap() = Some(operation.to_owned());
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.withheld.load(Ordering::SeqCst)
    }
}

/// One connection: the emulator answers one request per connection and closes it.
async fn forward(
    client: tokio::net::TcpStream,
    upstream: &str,
    armed: &Mutex<Option<String>>,
    withheld: &AtomicUsize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let request = Arc::new(Mutex::new(Vec::new()));
    let seen = request.clone();
    let sending = tokio::spawn(async move {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 || server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            seen.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    });
    let mut answer = Vec::new();
    let _ = server_read.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&request.lock().unwrap()).to_lowercase();
    let lose = {
        let mut armed = armed.lock().unwrap();
        let hit = armed.as_ref().is_some_and(|op| text.contains(&format!(".{}\r\n", op.to_lowercase())));
        if hit {
            *armed = None;
        }
        hit
    };
    if lose {
        withheld.fetch_add(1, Ordering::SeqCst);
        // Hold the connection silent past any attempt timeout, then drop it.
        tokio::time::sleep(Duration::from_secs(10)).await;
    } else {
        let _ = client_write.write_all(&answer).await;
        let _ = client_write.shutdown().await;
    }
    sending.abort();
}
