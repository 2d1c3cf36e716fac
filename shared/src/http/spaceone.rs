//! The SpaceONE-compatible admin API of seed 001 (`/identity/v1/...`): `APIKeyInfo` messages and
//! `{"error": {"code": "ERROR_...", "message": "..."}}` errors.

use chrono::{DateTime, SecondsFormat};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    body_bytes, json_response, parse_json, path_key_id, signed_bodiless_write, signed_caller, signed_write,
};
use crate::Keygate;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::model::{ApiKey, KeyState, Timestamp};
use crate::query::stat::StatisticsQuery;
use crate::query::{Document, FieldKind, Projection, Query, Schema};
use crate::service::NewKey;
use crate::signature::{Caller, ReplayNonce};

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
        let (caller, nonce) = signed_write(app, &request)?;
        let body: CreateApiKeyRequest = parse_json(&request)?;
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

/// `APIKeyRequest`: both fields repeat what the path and the signature already say, so they
/// are optional, but must agree.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiKeyRequest {
    api_key_id: Option<String>,
    domain_id: Option<String>,
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
    let outcome = async {
        let (caller, id, nonce) = key_scoped_write(app, &request)?;
        app.set_state(&caller, &id, state, &nonce).await
    };
    match outcome.await {
        Ok(key) => json_response(200, &api_key_info(&key, None)),
        Err(err) => error_response(&err),
    }
}

/// `DELETE /identity/v1/api-key/{api_key_id}`
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let (caller, id, nonce) = key_scoped_write(app, &request)?;
        app.delete_key(&caller, &id, &nonce).await
    };
    match outcome.await {
        Ok(()) => json_response(200, &json!({})),
        Err(err) => error_response(&err),
    }
}

/// `GET /identity/v1/api-key/{api_key_id}?domain_id=&only=`
pub async fn get_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let caller = signed_caller(&request)?;
        let query = request.query_string_parameters();
        if let Some(unknown) = query.iter().map(|(k, _)| k).find(|k| !["domain_id", "only"].contains(k)) {
            return Err(Error::InvalidArgument(format!("unknown parameter {unknown}")));
        }
        check_domain(&caller, query.first("domain_id"))?;
        let only: Vec<String> = query
            .all("only")
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::to_owned)
            .collect();
        let key = app.key_of(&caller, &path_key_id(&request)?).await?;
        only_fields(api_key_info(&key, None), &only)
    };
    match outcome.await {
        Ok(info) => json_response(200, &info),
        Err(err) => error_response(&err),
    }
}

/// The caller, the key id of the path and the request's replay nonce, after checking that an
/// `APIKeyRequest` body, if any, names the same key and the caller's domain.
fn key_scoped_write(app: &Keygate, request: &Request) -> Result<(Caller, String, ReplayNonce), Error> {
    let (caller, nonce) = signed_bodiless_write(app, request)?;
    let id = path_key_id(request)?;
    let body: ApiKeyRequest = if body_bytes(request).iter().all(u8::is_ascii_whitespace) {
        ApiKeyRequest::default()
    } else {
        parse_json(request)?
    };
    if body.api_key_id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(Error::InvalidArgument("api_key_id differs from the path".into()));
    }
    check_domain(&caller, body.domain_id.as_deref())?;
    Ok((caller, id, nonce))
}

/// A `domain_id` the request names must be the caller's own.
fn check_domain(caller: &Caller, domain_id: Option<&str>) -> Result<(), Error> {
    match domain_id {
        Some(domain) if domain != caller.domain_id => {
            Err(Error::PermissionDenied("domain_id is not the caller's domain".into()))
        }
        _ => Ok(()),
    }
}

/// Keeps only the named fields of an `APIKeyInfo`; naming a field it does not have is an error.
fn only_fields(info: Value, only: &[String]) -> Result<Value, Error> {
    if only.is_empty() {
        return Ok(info);
    }
    let Value::Object(fields) = info else { return Ok(info) };
    let mut kept = serde_json::Map::new();
    for name in only {
        let value = fields
            .get(name)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown field {name} in only")))?;
        kept.insert(name.clone(), value.clone());
    }
    Ok(Value::Object(kept))
}

/// The fields of `APIKeyInfo` a query may name.
fn api_key_schema() -> Schema {
    use FieldKind::*;
    Schema::new(&[
        ("api_key_id", Text),
        ("state", Text),
        ("user_id", Text),
        ("domain_id", Text),
        ("last_accessed_at", Time),
        ("created_at", Time),
        ("name", Text),
        ("description", Text),
        ("scope", List),
        ("max_total_usage", Number),
        ("remaining_total_usage", Number),
        ("validity_seconds", Number),
        ("expires_at", Time),
        ("registered_at", Time),
    ])
}

const PROJECTION: Projection<'static> = Projection {
    minimal: &["api_key_id", "name", "state", "user_id", "domain_id"],
    keyword: &["api_key_id", "user_id", "name"],
};

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

/// `GET /identity/v1/api-keys?api_key_id=&state=&user_id=&domain_id=`
pub async fn list_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let parameters = request.query_string_parameters();
        let allowed = ["api_key_id", "state", "user_id", "domain_id"];
        if let Some(unknown) = parameters.iter().map(|(k, _)| k).find(|k| !allowed.contains(k)) {
            return Err(Error::InvalidArgument(format!("unknown parameter {unknown}")));
        }
        let text = |name: &str| parameters.first(name).map(str::to_owned);
        let query = ApiKeyQuery {
            query: Query::default(),
            api_key_id: text("api_key_id"),
            state: text("state"),
            user_id: text("user_id"),
            domain_id: text("domain_id"),
        };
        search(app, &request, query).await
    };
    respond(outcome.await)
}

/// `POST /identity/v1/api-keys/search` with an `APIKeyQuery`
pub async fn search_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let query = if body_bytes(&request).iter().all(u8::is_ascii_whitespace) {
            ApiKeyQuery::default()
        } else {
            parse_json(&request)?
        };
        search(app, &request, query).await
    };
    respond(outcome.await)
}

async fn search(app: &Keygate, request: &Request, request_query: ApiKeyQuery) -> Result<Value, Error> {
    let caller = signed_caller(request)?;
    check_domain(&caller, request_query.domain_id.as_deref())?;
    let mut query = request_query.query;
    query.and_equal("api_key_id", request_query.api_key_id);
    query.and_equal("state", request_query.state);
    query.and_equal("user_id", request_query.user_id);
    let documents = documents(&app.keys_of(&caller).await?);
    let found = query.run(documents, &api_key_schema(), &PROJECTION, app.now())?;
    Ok(json!({ "results": found.results, "total_count": found.total_count }))
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
    let outcome = async {
        let caller = signed_caller(&request)?;
        let body: ApiKeyStatQuery = parse_json(&request)?;
        check_domain(&caller, body.domain_id.as_deref())?;
        let documents = documents(&app.keys_of(&caller).await?);
        body.query.run(documents, &api_key_schema(), app.now())
    };
    respond(outcome.await)
}

/// The `APIKeyInfo` of each key, as the documents a query runs over.
fn documents(keys: &[ApiKey]) -> Vec<Document> {
    keys.iter()
        .filter_map(|key| match api_key_info(key, None) {
            Value::Object(fields) => Some(fields),
            _ => None,
        })
        .collect()
}

fn respond(outcome: Result<Value, Error>) -> Response<Body> {
    match outcome {
        Ok(body) => json_response(200, &body),
        Err(err) => error_response(&err),
    }
}

fn parse_time(text: &str) -> Result<Timestamp, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| Error::InvalidArgument("expires_at is not an RFC 3339 time".into()))
}

pub(crate) fn format_time(time: Option<Timestamp>) -> String {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).unwrap_or_default()
}

/// `APIKeyInfo`, with keygate's key settings after the seed's fields. `api_key` is the primary key
/// value: in clear on create only, masked everywhere else.
pub fn api_key_info(key: &ApiKey, api_key: Option<&KeyValue>) -> Value {
    let mut info = json!({
        "api_key_id": key.api_key_id,
    "state": key.state,
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
    info["api_key"] = Value::from(api_key.map_or_else(|| key.primary.masked(), |v| v.expose().to_owned()));
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
