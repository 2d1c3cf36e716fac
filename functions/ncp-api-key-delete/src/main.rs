//! `DELETE /api/v1/api-keys/{api-key-id}`: deletes a key (204).
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
        service_fn(|request: Request| async { Ok::<_, Error>(ncp::delete_api_key(&app, request).await) }),
    )
    .await
}
