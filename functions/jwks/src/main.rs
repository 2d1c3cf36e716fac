//! `GET /.well-known/jwks.json`: the public keys that verify access tokens. Holds those public keys
//! (`KEYGATE_PUBLIC_KEYS`) and nothing else: no private key, no secret, no store.
use keygate_core::config;
use keygate_core::http::client_api;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let keys = &config::public_keys(|name| std::env::var(name).ok())?;
    lambda.serve_http(|_| async { client_api::jwks(keys) }).await
}
