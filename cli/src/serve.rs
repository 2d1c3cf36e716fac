//! `keygate serve`: every route on one port, on the embedded store (SQLite, or memory) or a DynamoDB table, through the same router and handlers the Lambdas
//! use. Each HTTP request becomes the `lambda_http::Request` API Gateway would have produced.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use keygate_core::http::router::{self, AnswerBody};
use keygate_core::limits::MAX_BODY_BYTES;
use keygate_core::service::{QueryLimits, QueryRunner};
use keygate_core::{Error, Keygate};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::data_dir::{self, DataDir};
use crate::store_choice::StoreArgs;

/// A body over the limit is refused as soon as it passes it, and the rest read and thrown away, up
/// to here, so a client still writing gets the 400 rather than a reset connection; a body beyond
/// this is cut off.
const MAX_DISCARD_BYTES: u64 = 16 * 1024 * 1024;
/// What hyper may buffer of a connection (headers, or a body's next bytes). Its default, 400 KiB,
/// let a thousand clients sending large bodies hold 400 MB; headers need far less (API Gateway
/// accepts 10 KiB of them).
const MAX_CONNECTION_BUFFER: usize = 16 * 1024;
/// A connection is closed gracefully after this long, however busy: a client cannot hold one
/// open for ever.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// After a failed accept (no file descriptors left, say), wait before trying again rather than
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often the server hands the memory it has freed back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const GIVE_BACK_INTERVAL: Duration = Duration::from_secs(5);
/// Where the local server (not the Lambdas) serves the OpenAPI document of every route.
const OPENAPI_PATH: &str = "/openapi.json";

#[derive(Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "KEYGATE_PORT", default_value_t = 3000)]
    port: u16,
    /// Interface to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Where generated secrets (credential, signing key, pepper) are kept.
    #[arg(long, env = "KEYGATE_DATA_DIR", default_value = data_dir::DEFAULT)]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// At most this many connections at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// At most this many connections at once from one address; more are closed at once, so one
    /// client cannot take every connection.
    #[arg(long, default_value_t = 256)]
    max_connections_per_peer: usize,
    /// A request's headers, and then its body, must arrive within this many seconds; an idle
    /// keep-alive connection is closed after it.
    #[arg(long, default_value_t = 10)]
    read_timeout_seconds: u64,
    /// At most this many admin queries of one domain that read all its keys (searches beyond a
    /// plain page, stat) at once; one more is answered 503.
    #[arg(long, env = "KEYGATE_MAX_QUERIES_PER_DOMAIN", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    max_queries_per_domain: u16,
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    keygate_core::telemetry::init_json_logs();
    let lookup = DataDir::new(args.data_dir.clone()).prepare()?;
    let query_limits = QueryLimits {
        per_domain: args.max_queries_per_domain.into(),
        ..QueryLimits::from_lookup(&lookup).map_err(|e| e.to_string())?
    };
    let config = keygate_core::Config::from_lookup(lookup).map_err(|e| e.to_string())?;
    let store = args.store.open(&args.data_dir).await?;
    // Queries that read a whole domain get threads of their own, so the workers keep serving.
    let queries = QueryRunner::threads(QueryRunner::threads_for_this_machine(), query_limits)
        .map_err(|e| format!("cannot start the query threads: {e}"))?;

    let listener = TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Arc::new(Keygate::new(config, store).serving_at(address).with_queries(queries));
    println!("keygate listening on http://{address}");
    tracing::info!(%address, "listening");

    let limits = Limits { read_timeout: Duration::from_secs(args.read_timeout_seconds.max(1)) };
    let openapi = Bytes::from(keygate_core::http::openapi::document_json());
    let connections = Arc::new(Semaphore::new(args.max_connections.max(1)));
    let peers = Arc::new(Peers::new(args.max_connections_per_peer.max(1)));
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(give_memory_back());
    let shutdown = shutdown_requested();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match peers.admit(peer.ip()) {
                    Some(slot) => {
                        tokio::spawn(serve_connection(app.clone(), openapi.clone(), stream, limits, (permit, slot)));
                    }
                    None => tracing::warn!(peer = %peer.ip(), "connection closed: its address holds --max-connections-per-peer"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    Ok(())
}

/// Ctrl-C, or SIGTERM as a service manager sends it. Every acknowledged write is already durable,
/// so stopping needs no flush.
async fn shutdown_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// glibc's malloc keeps what its per-thread arenas free, in pieces, unless asked: after a thousand
/// clients sending large bodies had gone, the server stayed 40 MiB larger than at start.
/// `malloc_trim` gives every free page back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn give_memory_back() {
    let mut every = tokio::time::interval(GIVE_BACK_INTERVAL);
    loop {
        every.tick().await;
        // SAFETY: malloc_trim only releases memory malloc holds free; any thread may call it.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[derive(Clone, Copy)]
struct Limits {
    read_timeout: Duration,
}

/// One connection, holding its slots (`_slots`: of all connections, of its peer's) until it ends.
async fn serve_connection(
    app: Arc<Keygate>,
    openapi: Bytes,
    stream: tokio::net::TcpStream,
    limits: Limits,
    _slots: (tokio::sync::OwnedSemaphorePermit, PeerSlot),
) {
    let service =
        hyper::service::service_fn(move |request| serve_one(app.clone(), openapi.clone(), request, limits));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_CONNECTION_BUFFER)
        .header_read_timeout(limits.read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = tokio::time::sleep(MAX_CONNECTION_AGE) => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.read_timeout, connection).await;
        }
    }
}

async fn serve_one(
    app: Arc<Keygate>,
    openapi: Bytes,
    request: hyper::Request<Incoming>,
    limits: Limits,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if request.method() == hyper::Method::GET && request.uri().path() == OPENAPI_PATH {
        let mut response = hyper::Response::new(Full::new(openapi));
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("valid"));
        return Ok(response);
    }
    let request_id = hex::encode(rand::rng().random::<[u8; 8]>());
    let span = tracing::info_span!(
        "request",
        request_id,
        method = request.method().as_str(),
        path = request.uri().path(),
    );
    async move {
        let (parts, body) = request.into_parts();
        let response = match read_body(body, limits.read_timeout).await {
            Ok(bytes) => router::serve(&app, to_lambda_request(parts, bytes, request_id)).await,
            Err(err) => {
                let unread = to_lambda_request(parts, Vec::new(), request_id);
                router::unread(&app, unread, err).await.map(AnswerBody::Built)
            }
        };
        tracing::info!(status = response.status().as_u16(), "served");
        Ok(response.map(|body| Full::new(hyper_body(body))))
    }
    .instrument(span)
    .await
}

/// The body, refused ([`Error::BodyTooLarge`]) as soon as it is known to pass
/// [`MAX_BODY_BYTES`] (by its `Content-Length`, or once that much has arrived), or when it does
/// not arrive within `timeout` ([`Error::BodyTooSlow`]). Nothing past the limit is kept.
async fn read_body(mut body: Incoming, timeout: Duration) -> Result<Vec<u8>, Error> {
    // A request without a body (a GET, most of them) sets no timer to read it.
    if body.is_end_stream() {
        return Ok(Vec::new());
    }
    let announced = body.size_hint().lower();
    if announced > MAX_BODY_BYTES as u64 {
        tokio::spawn(discard(body, 0, timeout));
        return Err(Error::BodyTooLarge);
    }
    let mut kept = Vec::with_capacity(announced as usize);
    let reading = async {
        while let Some(frame) = body.frame().await {
            // A body broken off is answered as too large: the client is gone and sees nothing.
            let Ok(data) = frame.map_err(|_| Error::BodyTooLarge)?.into_data() else { continue };
            if kept.len() + data.len() > MAX_BODY_BYTES {
                return Err(Error::BodyTooLarge);
            }
            kept.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(())) => Ok(kept),
        Ok(Err(err)) => {
            tokio::spawn(discard(body, kept.len() as u64, timeout));
            Err(err)
        }
        Err(_) => Err(Error::BodyTooSlow),
    }
}

/// Reads the rest of a refused body and throws it away while the answer goes out, so the client
/// reads its 400 rather than a reset; gives up (closing the connection) past
/// [`MAX_DISCARD_BYTES`] or the read timeout.
async fn discard(mut body: Incoming, mut seen: u64, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |data| data.len() as u64);
            if seen > MAX_DISCARD_BYTES {
                return;
            }
        }
    })
    .await;
}

/// The request as API Gateway would deliver it: the body moved, not copied, and a query string
/// parsed only when there is one (API Gateway gives none for an empty one).
fn to_lambda_request(
    parts: hyper::http::request::Parts,
    body: Vec<u8>,
    request_id: String,
) -> lambda_http::Request {
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().filter(|query| !query.is_empty()).map(|query| query.parse::<QueryMap>());
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.request_id = Some(request_id);
    context.http.method = parts.method.clone();
    context.http.path = Some(path.clone());
    let body = if body.is_empty() { Body::Empty } else { Body::Binary(body) };
    let request = lambda_http::Request::from_parts(parts, body)
        .with_raw_http_path(path)
        .with_request_context(RequestContext::ApiGatewayV2(context));
    match query {
        Some(parsed) => request.with_query_string_parameters(parsed.unwrap_or_default()),
        None => request,
    }
}

/// The bytes of an answer's body, moved (or, for a shared document, shared), never copied.
fn hyper_body(body: AnswerBody) -> Bytes {
    match body {
        AnswerBody::Shared(bytes) => bytes,
        AnswerBody::Built(Body::Text(text)) => Bytes::from(text),
        AnswerBody::Built(Body::Binary(bytes)) => Bytes::from(bytes),
        AnswerBody::Built(_) => Bytes::new(),
    }
}

/// How many connections each address holds, to keep each under its limit.
struct Peers {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back when the connection ends.
struct PeerSlot {
    peers: Arc<Peers>,
    address: IpAddr,
}

impl Peers {
    fn new(limit: usize) -> Self {
        Self { limit, open: Mutex::default() }
    }

    /// A slot for one more connection from `address`, or `None` if it holds the limit.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<PeerSlot> {
        // An IPv4 client of a server listening on `::` is the same client as over IPv4.
        let address = address.to_canonical();
        let mut open = self.open.lock().expect("never poisoned: nothing panics while holding it");
        let count = open.entry(address).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot { peers: self.clone(), address })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().expect("never poisoned: nothing panics while holding it");
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}
