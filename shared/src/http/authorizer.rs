//! The REQUEST authorizer of the admin routes in AWS: the signature verifier the local server
//! runs before admin handlers, answering in API Gateway's simple-response format. Its context
//! reaches the handlers as `requestContext.authorizer.lambda` (see [`super::caller`]).
//!
//! Results must not be cached across requests (the template sets a TTL of 0): every request
//! carries its own timestamp and signature.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::Value;

use super::{authorizer_context, path_and_query};
use crate::Keygate;

pub fn authorize(
    app: &Keygate,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let path_and_query =
        path_and_query(event.raw_path.as_deref().unwrap_or_default(), event.raw_query_string.as_deref());
    let method = event.request_context.http.method.as_str();
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    match app.credentials().verify(method, &path_and_query, &event.headers, app.now()) {
        Ok(caller) => {
            response.is_authorized = true;
            response.context = Value::Object(authorizer_context(&caller).into_iter().collect());
        }
        Err(err) => tracing::info!(reason = %err, "admin request signature refused"),
    }
    response
}
