//! `GET /api/v1/api-keys`: a page of keys, filtered by name.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::ncp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::list_api_keys(&app, request).await) }))
        .await
}
