//! The REQUEST authorizer of the admin routes in AWS: the signature verifier the local server
//! runs before admin handlers, answering in API Gateway's simple-response format. Its context
//! reaches the handlers as `requestContext.authorizer.lambda` (see [`super::caller`]).
//!
//! Results must not be cached across requests (the template sets a TTL of 0): every request
//! carries its own timestamp and signature. A refusal is `{"isAuthorized": false, "context": {}}`:
//! the context is an object either way, never null.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value};

use super::{authorizer_context, path_and_query};
#[cfg(feature = "secrets-manager")]
use crate::config::{self, ADMIN_CREDENTIALS, ConfigError};
use crate::model::Timestamp;
use crate::signature::Credentials;

/// The admin credentials, the one secret the authorizer holds: from the secret
/// `KEYGATE_ADMIN_CREDENTIALS_SECRET_ARN` names, or the variable itself. Required.
#[cfg(feature = "secrets-manager")]
pub async fn credentials_from_env() -> Result<Credentials, ConfigError> {
    let lookup = crate::secrets::lookup_from_env(&[ADMIN_CREDENTIALS]).await?;
    let json = lookup(ADMIN_CREDENTIALS).ok_or_else(|| {
        ConfigError::new(format!("{ADMIN_CREDENTIALS} (or {ADMIN_CREDENTIALS}_SECRET_ARN) is not set"))
    })?;
    config::admin_credentials(&json)
}

pub fn authorize(
    credentials: &Credentials,
    now: Timestamp,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let path_and_query =
        path_and_query(event.raw_path.as_deref().unwrap_or_default(), event.raw_query_string.as_deref());
    let method = event.request_context.http.method.as_str();
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.context = Value::Object(Map::new());
    match credentials.verify(method, &path_and_query, &event.headers, now) {
        Ok(caller) => {
            response.is_authorized = true;
            response.context = Value::Object(authorizer_context(&caller).into_iter().collect());
        }
        Err(err) => tracing::info!(reason = %err, "admin request signature refused"),
    }
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_refusal_carries_an_empty_context() {
        let credentials = crate::config::admin_credentials(
            &json!([{ "access_key": "AK-test", "secret_key": "a-secret-of-enough-bytes", "domain_id": "d" }])
                .to_string(),
        )
        .expect("credentials");
        let mut unsigned = ApiGatewayV2CustomAuthorizerV2Request::default();
        unsigned.raw_path = Some("/identity/v1/api-keys".into());
        let response = authorize(&credentials, crate::model::now(), &unsigned);
        assert_eq!(serde_json::to_value(&response).unwrap(), json!({ "isAuthorized": false, "context": {} }));
    }
}
