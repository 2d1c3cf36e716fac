//! The REQUEST authorizer of every admin route: verifies the signature v2 headers. Holds only the
//! admin credentials: no other secret, no store.
use keygate_core::http::authorizer;
use lambda_http::Error;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let credentials = &authorizer::credentials_from_env().await?;
    lambda
        .serve(|request: ApiGatewayV2CustomAuthorizerV2Request| async move {
            authorizer::authorize(credentials, keygate_core::model::now(), &request)
        })
        .await
}
