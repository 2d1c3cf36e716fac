//! `PUT /identity/v1/api-key/{api_key_id}/disable`: disables a key (SpaceONE `disable`).
use lambda_http::{Error, Request, run, service_fn};
use shared::http::spaceone;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(spaceone::disable_api_key(&app, request).await)
    }))
    .await
}
