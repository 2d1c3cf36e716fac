//! `GET /api/v1/api-keys`: a page of keys, filtered by name.
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use keygate_core::telemetry;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    telemetry::run_http(
        metrics,
        service_fn(|request: Request| async { Ok::<_, Error>(ncp::list_api_keys(&app, request).await) }),
    )
    .await
}
