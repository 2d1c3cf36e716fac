//! `GET /v1/key/detail`: a key's expiry, quota and scope.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::client;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client::detail(&app, request).await) })).await
}
