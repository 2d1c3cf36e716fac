//! `GET /.well-known/jwks.json`: the public keys that verify access tokens. Holds those public keys
//! (`KEYGATE_PUBLIC_KEYS`) and nothing else: no private key, no secret, no store.
use keygate_core::config;
use keygate_core::http::client_api;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let keys = &config::public_keys(|name| std::env::var(name).ok())?;
    run(service_fn(move |_: Request| async move { Ok::<_, Error>(client_api::jwks(keys)) })).await
}
