//! The REQUEST authorizer of every admin route: verifies the signature v2 headers.
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::http::authorizer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json_logs();
    let app = &shared::Keygate::from_env().await?;
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
        Ok::<_, Error>(authorizer::authorize(app, &event.payload))
    }))
    .await
}
