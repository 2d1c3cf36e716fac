//! The token authorizer for customers' own APIs: an HTTP API Lambda REQUEST authorizer that lets
//! a request through when its `Authorization: Bearer` token is one of ours and still valid, with
//! the token's `sub`, `tid`, `scope` and `client_id` as context. It verifies with the public keys
//! alone and calls no database. API Gateway may cache a decision (keyed on the header): a cached
//! allow outlives the token's expiry by up to the cache's TTL, so keep it short or zero.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value, json};

use crate::config::{self, ConfigError};
use crate::model::Timestamp;
use crate::tokens::AccessVerifier;

/// The authorizer's configuration: the published keys (`KEYGATE_PUBLIC_KEYS`, the same JWKS the
/// JWKS function serves), and the issuer and audience the token function signs with. Public
/// values all: it reads no secret, and fetches nothing at start.
pub fn verifier_from_env() -> Result<AccessVerifier, ConfigError> {
    verifier_from_lookup(|name| std::env::var(name).ok())
}

pub fn verifier_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AccessVerifier, ConfigError> {
    let keys = config::public_keys(&lookup)?;
    Ok(AccessVerifier::new(keys, config::issuer(&lookup), config::audience(&lookup)))
}

/// The token of an `Authorization: Bearer` header.
fn bearer(event: &ApiGatewayV2CustomAuthorizerV2Request) -> Option<&str> {
    let value = event.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn authorize(
    verifier: &AccessVerifier,
    now: Timestamp,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.context = Value::Object(Map::new());
    match bearer(event).map(|token| verifier.verify(token, now)) {
        Some(Ok(claims)) => {
            response.is_authorized = true;
            response.context = json!({
                "sub": claims.sub,
                "tid": claims.tid,
                "scope": claims.scope,
                "client_id": claims.client_id,
            });
        }
        Some(Err(_)) => tracing::info!("access token refused"),
        None => tracing::info!("no bearer token"),
    }
    response
}
