//! `GET /identity/v1/api-key/{api_key_id}`: one key (SpaceONE `get`).
use keygate_core::config::Uses;
use keygate_core::http::spaceone;
use keygate_core::telemetry;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    telemetry::run_http(
        metrics,
        service_fn(|request: Request| async { Ok::<_, Error>(spaceone::get_api_key(&app, request).await) }),
    )
    .await
}
