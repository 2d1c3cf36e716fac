//! `POST /v1/key/regist`: activates a key.
use keygate_core::config::Uses;
use keygate_core::http::client_api;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::PEPPER).await?;
    lambda.serve_http(|request| client_api::regist(&app, request)).await
}
