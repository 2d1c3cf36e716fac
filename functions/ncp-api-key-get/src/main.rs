//! `GET /api/v1/api-keys/{api-key-id}`: one key, the seed's document.
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    lambda.serve_http(|request| ncp::get_api_key(&app, request)).await
}
