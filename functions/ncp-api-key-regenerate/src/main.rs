//! `PATCH /api/v1/api-keys/{api-key-id}`: a new primary or secondary value; the other keeps working.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::ncp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::regenerate_api_key(&app, request).await) }))
        .await
}
