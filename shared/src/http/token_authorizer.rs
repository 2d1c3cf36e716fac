//! The token authorizer for customers' own APIs: an HTTP API Lambda REQUEST authorizer that lets
//! a request through when its `Authorization: Bearer` token is one of ours and still valid, and
//! meets what the API requires of it, with the token's `sub`, `tid`, `scope` and `client_id` as
//! context. It verifies with the public keys alone and calls no database. API Gateway may cache a
//! decision (keyed on the header): a cached allow outlives the token's expiry by up to the cache's
//! TTL, so keep it short or zero.

use std::collections::HashMap;

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value, json};

use crate::config::{self, ConfigError};
use crate::model::Timestamp;
use crate::tokens::{AccessClaims, AccessVerifier};

/// The stage variable naming the audience (`aud`) an API's tokens carry, in place of the
/// authorizer's `KEYGATE_AUDIENCE`.
pub const AUDIENCE_VARIABLE: &str = "keygateAudience";
/// The stage variable naming the tenant (`tid`, the key's domain) an API's tokens must belong to;
/// several, comma-separated, for any of them.
pub const TENANT_VARIABLE: &str = "keygateTenant";
/// The stage variable naming the scopes a token must all hold for an API, comma-separated (a
/// stage variable's value cannot hold a space).
pub const SCOPES_VARIABLE: &str = "keygateScopes";

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

/// What one API requires of a token beyond its being ours and valid, read from the variables of
/// the API's stage: one authorizer serves many APIs, each with its own rules, and none writes code
/// for them. A variable that is not set checks nothing.
struct Requirements<'a> {
    audience: Option<&'a str>,
    tenants: Option<Vec<&'a str>>,
    scopes: Vec<&'a str>,
}

impl<'a> Requirements<'a> {
    /// `Err` names a stage variable that looks like ours and is not (`keygateScope`, say): a typo
    /// that would otherwise check nothing refuses every token instead.
    fn of(variables: &'a HashMap<String, String>) -> Result<Self, &'a str> {
        let ours = [AUDIENCE_VARIABLE, TENANT_VARIABLE, SCOPES_VARIABLE];
        if let Some(unknown) = variables
            .keys()
            .find(|name| name.to_ascii_lowercase().starts_with("keygate") && !ours.contains(&name.as_str()))
        {
            return Err(unknown);
        }
        let list = |name: &str| {
            variables.get(name).map(|value| value.split(',').map(str::trim).filter(|item| !item.is_empty()))
        };
        Ok(Self {
            audience: variables.get(AUDIENCE_VARIABLE).map(String::as_str),
            tenants: list(TENANT_VARIABLE).map(Iterator::collect),
            scopes: list(SCOPES_VARIABLE).map(Iterator::collect).unwrap_or_default(),
        })
    }

    /// The stage variable whose requirement `claims` miss, if any (the audience is checked with
    /// the signature).
    fn unmet_by(&self, claims: &AccessClaims) -> Option<&'static str> {
        if self.tenants.as_ref().is_some_and(|tenants| !tenants.contains(&claims.tid.as_str())) {
            return Some(TENANT_VARIABLE);
        }
        let held: Vec<&str> = claims.scope.split(' ').collect();
        if !self.scopes.iter().all(|scope| held.contains(scope)) {
            return Some(SCOPES_VARIABLE);
        }
        None
    }
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
    let requirements = match Requirements::of(&event.stage_variables) {
        Ok(requirements) => requirements,
        Err(unknown) => {
            tracing::warn!(stage_variable = unknown, "unknown keygate stage variable; every token refused");
            return response;
        }
    };
    let Some(token) = bearer(event) else {
        tracing::info!("no bearer token");
        return response;
    };
    let verified = match requirements.audience {
        Some(audience) => verifier.verify_for(token, now, audience),
        None => verifier.verify(token, now),
    };
    match verified.map(|claims| (requirements.unmet_by(&claims), claims)) {
        Ok((None, claims)) => {
            response.is_authorized = true;
            response.context = json!({
                "sub": claims.sub,
                "tid": claims.tid,
                "scope": claims.scope,
                "client_id": claims.client_id,
            });
        }
        Ok((Some(unmet), claims)) => {
            tracing::info!(api_key_id = %claims.sub, requirement = unmet, "token does not meet this API's requirement");
        }
        Err(_) => tracing::info!("access token refused"),
    }
    response
}
