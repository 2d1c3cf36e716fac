//! `GET /v1/auth/token`: exchanges a key for an access token, consuming one unit.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use keygate_core::telemetry;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER_AND_SIGNING_KEY).await?;
    telemetry::run_http(
        metrics,
        service_fn(|request: Request| async { Ok::<_, Error>(client_api::token(&app, request).await) }),
    )
    .await
}
