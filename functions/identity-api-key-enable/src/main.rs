//! `PUT /identity/v1/api-key/{api_key_id}/enable`: enables a key (SpaceONE `enable`).
use keygate_core::config::Uses;
use keygate_core::http::spaceone;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let app = keygate_core::Keygate::from_env(Uses::NO_SECRET).await?;
    lambda.serve_http(|request| spaceone::enable_api_key(&app, request)).await
}
