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
use crate::Keygate;

pub fn authorize(
    app: &Keygate,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let path_and_query =
        path_and_query(event.raw_path.as_deref().unwrap_or_default(), event.raw_query_string.as_deref());
    let method = event.request_context.http.method.as_str();
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.context = Value::Object(Map::new());
    match app.credentials().verify(method, &path_and_query, &event.headers, app.now()) {
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
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::config::{ADMIN_CREDENTIALS, Config, PEPPER, SIGNING_KEY};
    use crate::store::MemoryStore;
    use crate::tokens::SigningAlgorithm;

    #[test]
    fn a_refusal_carries_an_empty_context() {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let config = Config::from_lookup(|name| match name {
            PEPPER => Some("a-pepper-of-enough-bytes".into()),
            SIGNING_KEY => Some(pem.clone()),
            ADMIN_CREDENTIALS => Some(
                json!([{ "access_key": "AK-test", "secret_key": "a-secret-of-enough-bytes", "domain_id": "d" }])
                    .to_string(),
            ),
            _ => None,
        })
        .expect("configuration");
        let app = Keygate::new(config, Arc::new(MemoryStore::new()));
        let mut unsigned = ApiGatewayV2CustomAuthorizerV2Request::default();
        unsigned.raw_path = Some("/identity/v1/api-keys".into());
        let response = authorize(&app, &unsigned);
        assert_eq!(serde_json::to_value(&response).unwrap(), json!({ "isAuthorized": false, "context": {} }));
    }
}
