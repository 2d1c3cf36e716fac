//! `keygate serve`: every route on one port, on the embedded store (SQLite, or memory) or a DynamoDB table, through the same router and handlers the Lambdas
//! use. Each HTTP request becomes the `lambda_http::Request` API Gateway would have produced.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use keygate_core::http::router::{self, AnswerBody};
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

/// The server keeps at most this much of a body; handlers refuse anything over 64 KiB anyway.
const MAX_READ_BYTES: usize = 1024 * 1024;
/// Past that it reads on and discards up to here before answering, so a client still writing its
/// body gets the 400 rather than a reset connection; a body beyond this is cut off.
const MAX_DISCARD_BYTES: usize = 16 * 1024 * 1024;
/// A connection is closed gracefully after this long, however busy: a client cannot hold one
/// open for ever.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// After a failed accept (no file descriptors left, say), wait before trying again rather than
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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
    let app = Arc::new(Keygate::new(config, store).with_queries(queries));

    let listener = TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("keygate listening on http://{address}");
    tracing::info!(%address, "listening");

    let limits = Limits { read_timeout: Duration::from_secs(args.read_timeout_seconds.max(1)) };
    let openapi = Bytes::from(keygate_core::http::openapi::document_json());
    let connections = Arc::new(Semaphore::new(args.max_connections.max(1)));
    let shutdown = shutdown_requested();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(app.clone(), openapi.clone(), stream, limits, permit));
                }
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

#[derive(Clone, Copy)]
struct Limits {
    read_timeout: Duration,
}

/// One connection, holding its slot (`_permit`) until it ends.
async fn serve_connection(
    app: Arc<Keygate>,
    openapi: Bytes,
    stream: tokio::net::TcpStream,
    limits: Limits,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let service =
        hyper::service::service_fn(move |request| serve_one(app.clone(), openapi.clone(), request, limits));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
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
        // A request without a body (a GET, most of them) sets no timer to read it.
        let read = match body.is_end_stream() {
            true => Ok(Some(Vec::new())),
            false => tokio::time::timeout(limits.read_timeout, read_body(body)).await,
        };
        let response = match read {
            Ok(Some(bytes)) => router::serve(&app, to_lambda_request(parts, bytes, request_id)).await,
            Ok(None) => router::unread(parts.uri.path(), &Error::BodyTooLarge).map(AnswerBody::Built),
            Err(_) => router::unread(parts.uri.path(), &Error::BodyTooSlow).map(AnswerBody::Built),
        };
        tracing::info!(status = response.status().as_u16(), "served");
        Ok(response.map(|body| Full::new(hyper_body(body))))
    }
    .instrument(span)
    .await
}

/// The body, or `None` when it is larger than [`MAX_READ_BYTES`] or broken off.
async fn read_body(mut body: Incoming) -> Option<Vec<u8>> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else { continue };
        seen += data.len();
        if seen > MAX_DISCARD_BYTES {
            return None;
        }
        if seen <= MAX_READ_BYTES {
            kept.extend_from_slice(&data);
        }
    }
    (seen <= MAX_READ_BYTES).then_some(kept)
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
