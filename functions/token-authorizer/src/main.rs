//! The token authorizer for customers' own HTTP APIs: lets a request through when its bearer
//! token is a valid keygate access token that meets what the API's stage variables require.
//! Holds only the public keys; no secret, no store.
use keygate_core::http::token_authorizer;
use lambda_http::Error;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let verifier = &token_authorizer::verifier_from_env()?;
    lambda
        .serve(|request: ApiGatewayV2CustomAuthorizerV2Request| async move {
            token_authorizer::authorize(verifier, keygate_core::model::now(), &request)
        })
        .await
}
