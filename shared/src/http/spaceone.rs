//! The SpaceONE-compatible admin API of seed 001 (`/identity/v1/...`): `APIKeyInfo` messages and
//! `{"error": {"code": "ERROR_...", "message": "..."}}` errors.

use chrono::{DateTime, SecondsFormat};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{body_bytes, caller, json_response, parse_json};
use crate::Keygate;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::model::{ApiKey, KeyState, Timestamp};
use crate::service::NewKey;
use crate::signature::ReplayNonce;

/// `CreateAPIKeyRequest` plus keygate's own key settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyRequest {
    user_id: Option<String>,
    domain_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    scope: Option<Vec<String>>,
    max_total_usage: Option<i64>,
    validity_seconds: Option<i64>,
    expires_at: Option<String>,
}

/// `POST /identity/v1/api-keys`
pub async fn create_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let caller = caller(&request).ok_or_else(unauthenticated)?;
        let body: CreateApiKeyRequest = parse_json(&request)?;
        let nonce = ReplayNonce::for_request(request.headers(), body_bytes(&request), app.now())
            .ok_or_else(unauthenticated)?;
        let expires_at = body.expires_at.as_deref().map(parse_time).transpose()?;
        let new_key = NewKey {
            user_id: body.user_id.ok_or_else(|| Error::MissingParameter("user_id".into()))?,
            domain_id: body.domain_id,
            name: body.name,
            description: body.description,
            scope: body.scope,
            max_total_usage: body.max_total_usage,
            validity_seconds: body.validity_seconds,
            expires_at,
        };
        app.create_key(&caller, new_key, Some(&nonce)).await
    };
    match outcome.await {
        Ok(created) => json_response(200, &api_key_info(&created.key, Some(&created.primary))),
        Err(err) => error_response(&err),
    }
}

fn unauthenticated() -> Error {
    Error::Unauthenticated("request is not signed".into())
}

fn parse_time(text: &str) -> Result<Timestamp, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| Error::InvalidArgument("expires_at is not an RFC 3339 time".into()))
}

pub(crate) fn format_time(time: Option<Timestamp>) -> String {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).unwrap_or_default()
}

/// `APIKeyInfo`, with keygate's key settings after the seed's fields. `api_key` is the key value
/// in clear on create only.
pub fn api_key_info(key: &ApiKey, api_key: Option<&KeyValue>) -> Value {
    let mut info = json!({
        "api_key_id": key.api_key_id,
        "state": match key.state { KeyState::Enabled => "ENABLED", KeyState::Disabled => "DISABLED" },
        "user_id": key.user_id,
        "domain_id": key.domain_id,
        "last_accessed_at": format_time(key.last_accessed_at),
        "created_at": format_time(Some(key.created_at)),
        "name": key.name,
        "description": key.description,
        "scope": key.scope,
        "max_total_usage": key.max_total_usage,
        "remaining_total_usage": key.remaining_total_usage,
        "validity_seconds": key.validity_seconds,
        "expires_at": format_time(key.expires_at),
        "registered_at": format_time(key.registered_at),
    });
    if let Some(value) = api_key {
        info["api_key"] = Value::from(value.expose());
    }
    info
}

/// The one mapping of domain errors to SpaceONE's error envelope.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, code, message) = match err {
        Error::InvalidArgument(m) => (400, "ERROR_INVALID_ARGUMENT", m.clone()),
        Error::MissingParameter(field) => {
            (400, "ERROR_REQUIRED_PARAMETER", format!("required parameter: {field}"))
        }
        Error::Unauthenticated(m) => (401, "ERROR_AUTHENTICATE_FAILURE", m.clone()),
        Error::PermissionDenied(m) => (403, "ERROR_PERMISSION_DENIED", m.clone()),
        Error::NotFound => (404, "ERROR_NOT_FOUND", "resource not found".to_owned()),
        Error::Conflict => (409, "ERROR_ALREADY_EXISTS", "resource already exists, retry".to_owned()),
        Error::KeyExpired
        | Error::QuotaExhausted
        | Error::InvalidToken
        | Error::TokenReused
        | Error::Internal(_) => (500, "ERROR_INTERNAL_API", "internal error".to_owned()),
    };
    if status == 500 {
        tracing::error!(error = %err, "admin request failed");
    } else {
        tracing::info!(status, code, "admin request refused");
    }
    error_body(status, code, &message)
}

pub(crate) fn error_body(status: u16, code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": { "code": code, "message": message } }))
}
