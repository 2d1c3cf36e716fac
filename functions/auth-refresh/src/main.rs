//! `GET /v1/auth/refresh`: exchanges a token for the next of its family, consuming one unit.
use lambda_http::{Error, Request, run, service_fn};
use shared::http::client;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = shared::Keygate::from_env().await?;
    run(service_fn(|request: Request| async { Ok::<_, Error>(client::refresh(&app, request).await) })).await
}
