//! `DELETE /api/v1/api-keys/{api-key-id}`: deletes a key (204).
use lambda_http::{Error, Request, run, service_fn};
use shared::http::ncp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(ncp::delete_api_key(&app, request).await) }))
        .await
}
