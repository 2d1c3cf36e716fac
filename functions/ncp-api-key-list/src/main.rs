//! `GET /api/v1/api-keys`: a page of keys, filtered by name.
use keygate_core::config::Uses;
use keygate_core::http::ncp;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    lambda.serve_http(|request| ncp::list_api_keys(&app, request)).await
}
