//! `GET /.well-known/jwks.json`: the public keys that verify access tokens.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::client;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client::jwks(&app, request).await) })).await
}
