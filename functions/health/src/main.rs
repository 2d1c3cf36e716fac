//! `GET /health`: answers that the function runs; reads no configuration and no store.
use keygate_core::http::client_api;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    run(service_fn(|_: Request| async { Ok::<_, Error>(client_api::health()) })).await
}
