//! The SpaceONE-compatible admin API of seed 001 (`/identity/v1/...`): `APIKeyInfo` messages and
//! `{"error": {"code": "ERROR_...", "message": "..."}}` errors.

use chrono::DateTime;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    authorized_caller, authorized_write, json_response, only_query_parameters, parse_json,
    parse_optional_json, path_key_id,
};
use crate::Keygate;
use crate::api_key_info::api_key_info;
use crate::error::Error;
use crate::model::{KeyState, Timestamp};
use crate::query::Query;
use crate::query::stat::StatisticsQuery;
use crate::service::{KeySearch, KeyStat, KeyTarget, NewKey};

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
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            let body: CreateApiKeyRequest = parse_json(&request)?;
            let new_key = NewKey {
                expires_at: body.expires_at.as_deref().map(parse_time).transpose()?,
                user_id: body.user_id.ok_or_else(|| Error::MissingParameter("user_id".into()))?,
                domain_id: body.domain_id,
                name: body.name,
                description: body.description,
                scope: body.scope,
                max_total_usage: body.max_total_usage,
                validity_seconds: body.validity_seconds,
            };
            let created = app.create_key(&caller, new_key, Some(&nonce)).await?;
            Ok(api_key_info(&created.key, Some(&created.primary)))
        }
        .await,
    )
}

/// `PUT /identity/v1/api-key/{api_key_id}/enable`
pub async fn enable_api_key(app: &Keygate, request: Request) -> Response<Body> {
    set_state(app, request, KeyState::Enabled).await
}

/// `PUT /identity/v1/api-key/{api_key_id}/disable`
pub async fn disable_api_key(app: &Keygate, request: Request) -> Response<Body> {
    set_state(app, request, KeyState::Disabled).await
}

async fn set_state(app: &Keygate, request: Request, state: KeyState) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            let key = app.set_state(&caller, &key_target(&request)?, state, &nonce).await?;
            Ok(api_key_info(&key, None))
        }
        .await,
    )
}

/// `DELETE /identity/v1/api-key/{api_key_id}`
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.delete_key(&caller, &key_target(&request)?, &nonce).await?;
            Ok(json!({}))
        }
        .await,
    )
}

/// `GET /identity/v1/api-key/{api_key_id}?domain_id=&only=`
pub async fn get_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let caller = authorized_caller(&request)?;
            only_query_parameters(&request, &["domain_id", "only"])?;
            let query = request.query_string_parameters();
            let target = KeyTarget {
                id: path_key_id(&request)?,
                domain_id: query.first("domain_id").map(str::to_owned),
            };
            let only: Vec<&str> =
                query.all("only").unwrap_or_default().into_iter().flat_map(|v| v.split(',')).collect();
            let key = app.get_key(&caller, &target).await?;
            only_fields(api_key_info(&key, None), &only)
        }
        .await,
    )
}

/// `APIKeyRequest`: both fields repeat what the path and the signature already say, so they
/// are optional, but must agree.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiKeyRequest {
    api_key_id: Option<String>,
    domain_id: Option<String>,
}

/// The key a key-scoped write names: the path's, which an `APIKeyRequest` body, if any, repeats.
fn key_target(request: &Request) -> Result<KeyTarget, Error> {
    let id = path_key_id(request)?;
    let body: ApiKeyRequest = parse_optional_json(request)?;
    if body.api_key_id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(Error::InvalidArgument("api_key_id differs from the path".into()));
    }
    Ok(KeyTarget { id, domain_id: body.domain_id })
}

/// Keeps only the named fields of an `APIKeyInfo`; naming a field it does not have is an error.
fn only_fields(info: Value, only: &[&str]) -> Result<Value, Error> {
    if only.is_empty() {
        return Ok(info);
    }
    let Value::Object(fields) = info else { return Ok(info) };
    let mut kept = serde_json::Map::new();
    for name in only {
        let value = fields
            .get(*name)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown field {name} in only")))?;
        kept.insert((*name).to_owned(), value.clone());
    }
    Ok(Value::Object(kept))
}

/// `APIKeyQuery`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiKeyQuery {
    #[serde(default)]
    query: Query,
    api_key_id: Option<String>,
    state: Option<String>,
    user_id: Option<String>,
    domain_id: Option<String>,
}

impl From<ApiKeyQuery> for KeySearch {
    fn from(q: ApiKeyQuery) -> Self {
        KeySearch {
            query: q.query,
            api_key_id: q.api_key_id,
            state: q.state,
            user_id: q.user_id,
            domain_id: q.domain_id,
        }
    }
}

/// `GET /identity/v1/api-keys?api_key_id=&state=&user_id=&domain_id=`
pub async fn list_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            only_query_parameters(&request, &["api_key_id", "state", "user_id", "domain_id"])?;
            let caller = authorized_caller(&request)?;
            let parameters = request.query_string_parameters();
            let text = |name: &str| parameters.first(name).map(str::to_owned);
            let search = KeySearch {
                query: Query::default(),
                api_key_id: text("api_key_id"),
                state: text("state"),
                user_id: text("user_id"),
                domain_id: text("domain_id"),
            };
            let found = app.search_keys(&caller, search).await?;
            Ok(json!({ "results": found.results, "total_count": found.total_count }))
        }
        .await,
    )
}

/// `POST /identity/v1/api-keys/search` with an `APIKeyQuery`
pub async fn search_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let query: ApiKeyQuery = parse_optional_json(&request)?;
            let caller = authorized_caller(&request)?;
            let found = app.search_keys(&caller, query.into()).await?;
            Ok(json!({ "results": found.results, "total_count": found.total_count }))
        }
        .await,
    )
}

/// `APIKeyStatQuery`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyStatQuery {
    query: StatisticsQuery,
    domain_id: Option<String>,
}

/// `POST /identity/v1/api-keys/stat`
pub async fn stat_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let caller = authorized_caller(&request)?;
            let body: ApiKeyStatQuery = parse_json(&request)?;
            app.stat_keys(&caller, KeyStat { query: body.query, domain_id: body.domain_id }).await
        }
        .await,
    )
}

fn parse_time(text: &str) -> Result<Timestamp, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| Error::InvalidArgument("expires_at is not an RFC 3339 time".into()))
}

/// The one responder of the SpaceONE surface: 200 with the message, or the error's envelope.
fn respond(outcome: Result<Value, Error>) -> Response<Body> {
    match outcome {
        Ok(body) => json_response(200, &body),
        Err(err) => error_response(&err),
    }
}

/// The one mapping of domain errors to SpaceONE's error envelope.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, code, message) = match err {
        Error::InvalidArgument(m) => (400, "ERROR_INVALID_ARGUMENT", m.clone()),
        Error::BodyTooLarge | Error::BodyTooSlow => (400, "ERROR_INVALID_ARGUMENT", err.to_string()),
        Error::MissingParameter(field) => {
            (400, "ERROR_REQUIRED_PARAMETER", format!("required parameter: {field}"))
        }
        Error::Unauthenticated(m) => (401, "ERROR_AUTHENTICATE_FAILURE", m.clone()),
        Error::PermissionDenied(m) => (403, "ERROR_PERMISSION_DENIED", m.clone()),
        Error::NotFound => (404, "ERROR_NOT_FOUND", "resource not found".to_owned()),
        Error::NoSuchRoute => (404, "ERROR_NOT_FOUND", err.to_string()),
        Error::MethodNotAllowed => (405, "ERROR_METHOD_NOT_ALLOWED", err.to_string()),
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
        tracing::info!(status, code, reason = %err, "admin request refused");
    }
    json_response(status, &json!({ "error": { "code": code, "message": message } }))
}
