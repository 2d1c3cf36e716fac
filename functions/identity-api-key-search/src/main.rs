//! `POST /identity/v1/api-keys/search`: lists keys matching a SpaceONE Query (`list`).
use lambda_http::{Error, Request, run, service_fn};
use shared::http::spaceone;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(spaceone::search_api_keys(&app, request).await)
    }))
    .await
}
