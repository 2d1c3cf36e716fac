//! `GET /v1/auth/refresh`: exchanges a token for the next of its family, consuming one unit.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::SIGNING_KEY).await?;
    lambda.serve_http(|request| client_api::refresh(&app, request)).await
}
