//! The REQUEST authorizer of every admin route: verifies the signature v2 headers. Holds only the
//! admin credentials: no other secret, no store.
use keygate_core::http::authorizer;
use keygate_core::telemetry;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = telemetry::init_lambda();
    let credentials = &authorizer::credentials_from_env().await?;
    telemetry::run(
        metrics,
        service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
            Ok::<_, Error>(authorizer::authorize(credentials, keygate_core::model::now(), &event.payload))
        }),
    )
    .await
}
