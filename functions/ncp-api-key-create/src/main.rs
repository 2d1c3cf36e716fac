//! `POST /api/v1/api-keys`: creates a key; both values shown this once (201).
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER).await?;
    lambda.serve_http(|request| ncp::create_api_key(&app, request)).await
}
