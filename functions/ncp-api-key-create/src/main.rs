//! `POST /api/v1/api-keys`: creates a key; both values shown this once (201).
use lambda_http::{Error, Request, run, service_fn};
use shared::http::ncp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::create_api_key(&app, request).await) }))
        .await
}
