//! `GET /v1/auth/token`: exchanges a key for an access token, consuming one unit.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::client;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client::token(&app, request).await) })).await
}
