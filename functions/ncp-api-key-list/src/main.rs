//! `GET /api/v1/api-keys`: a page of keys, filtered by name.
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::list_api_keys(&app, request).await) }))
        .await
}
