//! `GET /v1/auth/token`: exchanges a key for an access token, consuming one unit.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER_AND_SIGNING_KEY).await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client_api::token(&app, request).await) })).await
}
