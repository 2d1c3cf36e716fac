//! The token authorizer for customers' own HTTP APIs: lets a request through when its bearer
//! token is a valid keygate access token. Holds only the public keys; no secret, no store.
use keygate_core::http::token_authorizer;
use keygate_core::telemetry;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let verifier = &token_authorizer::verifier_from_env()?;
    telemetry::run(
        metrics,
        service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
            Ok::<_, Error>(token_authorizer::authorize(verifier, keygate_core::model::now(), &event.payload))
        }),
    )
    .await
}
