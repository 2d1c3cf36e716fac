//! The benchmark's floor (`scripts/bench`): a hyper 1 server that does no work, answering every
//! GET with the same 56 bytes of JSON. What it serves per second on one core is the most any
//! route of `keygate serve` could, since keygate reads and writes HTTP the same way.
//!
//! `cargo run --release -p keygate --example floor -- [PORT]` (0, the default, picks a free port);
//! it prints `floor listening on http://ADDRESS`.
//!
//! The runtime is the one `keygate serve` runs, tokio's multi-thread scheduler: under
//! `taskset -c 0` both get one worker, so the two differ only in the work done per request.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"result":{"status":"ok","served_by":"the hyper floor"}}"#;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    if request.method() == Method::GET {
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    } else {
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|_| std::io::Error::other(format!("not a port: {text}")))?,
        None => 0,
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!("floor listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            // A client that hangs up mid-request ends its connection, nothing more.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
