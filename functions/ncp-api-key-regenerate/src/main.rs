//! `PATCH /api/v1/api-keys/{api-key-id}`: a new primary or secondary value; the other keeps working.
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER).await?;
    lambda.serve_http(|request| ncp::regenerate_api_key(&app, request)).await
}
