//! `GET /health`: answers that the function runs; reads no configuration and no store.
use keygate_core::http::client_api;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    lambda.serve_http(|_| async { client_api::health() }).await
}
