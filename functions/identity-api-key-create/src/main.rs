//! `POST /identity/v1/api-keys`: creates a key (SpaceONE `create`).
use keygate_core::config::Uses;
use keygate_core::http::spaceone;
use keygate_core::telemetry;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER).await?;
    telemetry::run_http(
        metrics,
        service_fn(|request: Request| async {
            Ok::<_, Error>(spaceone::create_api_key(&app, request).await)
        }),
    )
    .await
}
