//! `GET /identity/v1/api-keys`: lists keys (SpaceONE `list`).
use lambda_http::{Error, Request, run, service_fn};
use shared::http::spaceone;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(spaceone::list_api_keys(&app, request).await) }))
        .await
}
