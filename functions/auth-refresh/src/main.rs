//! `GET /v1/auth/refresh`: exchanges a token for the next of its family, consuming one unit.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let app = keygate_core::Keygate::from_env(Uses::SIGNING_KEY).await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client_api::refresh(&app, request).await) }))
        .await
}
