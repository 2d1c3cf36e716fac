//! `POST /api/v1/api-keys`: creates a key; both values shown this once (201).
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER).await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::create_api_key(&app, request).await) }))
        .await
}
