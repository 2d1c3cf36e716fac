//! `GET /v1/auth/token`: exchanges a key for an access token, consuming one unit.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER_AND_SIGNING_KEY).await?;
    lambda.serve_http(|request| client_api::token(&app, request)).await
}
