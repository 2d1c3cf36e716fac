//! The token authorizer for customers' own APIs: an HTTP API Lambda REQUEST authorizer that lets
//! a request through when its `Authorization: Bearer` token is one of ours and still valid, with
//! the token's `sub`, `tid`, `scope` and `client_id` as context. It verifies with the public keys
//! alone and calls no database; API Gateway may cache a decision for at most the token lifetime.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value, json};

use crate::config::{AUDIENCE, ConfigError, ISSUER};
use crate::model::Timestamp;
use crate::tokens::AccessVerifier;

/// Where the authorizer reads the public keys at start: keygate's own `/.well-known/jwks.json`.
pub const JWKS_URL: &str = "KEYGATE_JWKS_URL";

/// The verifier a token authorizer starts with: the keys at `KEYGATE_JWKS_URL`, for the issuer,
/// audience and algorithm the token function signs with.
pub async fn verifier_from_env() -> Result<AccessVerifier, ConfigError> {
    verifier_from_lookup(|name| std::env::var(name).ok()).await
}

pub async fn verifier_from_lookup(
    env: impl Fn(&str) -> Option<String>,
) -> Result<AccessVerifier, ConfigError> {
    let url = env(JWKS_URL).ok_or_else(|| ConfigError::new(format!("{JWKS_URL} is not set")))?;
    let fetched = async { reqwest::get(&url).await?.error_for_status()?.json().await };
    let jwks = fetched.await.map_err(|e| ConfigError::new(format!("{JWKS_URL} {url}: {e}")))?;
    let issuer = env(ISSUER).unwrap_or_else(|| "keygate".into());
    let audience = env(AUDIENCE).unwrap_or_else(|| "keygate".into());
    AccessVerifier::from_jwks(&jwks, issuer, audience).map_err(ConfigError::new)
}

pub fn authorize(
    verifier: &AccessVerifier,
    now: Timestamp,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.context = Value::Object(Map::new());
    let bearer = event.headers.get("authorization").and_then(|value| value.to_str().ok()).and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match bearer.map(|token| verifier.verify(token, now)) {
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
