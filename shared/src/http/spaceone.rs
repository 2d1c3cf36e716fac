//! The SpaceONE-compatible admin API of seed 001 (`/identity/v1/...`): `APIKeyInfo` messages and
//! `{"error": {"code": "ERROR_...", "message": "..."}}` errors.

mod messages;

use chrono::DateTime;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::Value;

use self::messages::{
    ApiKeyQuery, ApiKeyRequest, ApiKeyStatQuery, ApiKeysInfo, CreateApiKeyRequest, Empty, SpaceOneError,
    SpaceOneErrorBody,
};
#[cfg(feature = "openapi")]
use self::messages::{GetApiKeyParameters, ListApiKeysParameters};
#[cfg(feature = "openapi")]
use super::KeyIdPath;

use super::{
    UNAVAILABLE, authorized_caller, authorized_write, json_response, only_query_parameters, parse_json,
    parse_optional_json, path_key_id, with_retry_after,
};
use crate::Keygate;
use crate::api_key_info::{ApiKeyInfo, api_key_info};
use crate::error::Error;
use crate::model::{KeyState, Timestamp};
use crate::query::Query;
use crate::service::{KeySearch, KeyStat, KeyTarget, NewKey};

/// SpaceONE `create`: a new key, whose value the answer shows this once.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, operation_id = "spaceone_create", path = "/identity/v1/api-keys", tag = "SpaceONE admin API",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 200, description = "The key, `api_key` in clear", body = ApiKeyInfo),
        (status = 400, description = "Bad body", body = SpaceOneError),
        (status = 401, description = "Missing, bad or replayed signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 409, description = "Id collision: sign again and retry", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn create_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
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
                Ok(ApiKeyInfo::of(&created.key, Some(&created.primary)))
            })
            .await
        }
        .await,
    )
}

/// SpaceONE `enable`.
#[cfg_attr(feature = "openapi", utoipa::path(
    put, operation_id = "spaceone_enable", path = "/identity/v1/api-key/{api_key_id}/enable", tag = "SpaceONE admin API",
    params(KeyIdPath),
    request_body(content = Option<ApiKeyRequest>, description = "Optional: repeats the path's id"),
    responses(
        (status = 200, description = "The key, enabled", body = ApiKeyInfo),
        (status = 400, description = "Bad body", body = SpaceOneError),
        (status = 401, description = "Missing, bad or replayed signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 404, description = "No such key in the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn enable_api_key(app: &Keygate, request: Request) -> Response<Body> {
    set_state(app, request, KeyState::Enabled).await
}

/// SpaceONE `disable`.
#[cfg_attr(feature = "openapi", utoipa::path(
    put, operation_id = "spaceone_disable", path = "/identity/v1/api-key/{api_key_id}/disable", tag = "SpaceONE admin API",
    params(KeyIdPath),
    request_body(content = Option<ApiKeyRequest>, description = "Optional: repeats the path's id"),
    responses(
        (status = 200, description = "The key, disabled", body = ApiKeyInfo),
        (status = 400, description = "Bad body", body = SpaceOneError),
        (status = 401, description = "Missing, bad or replayed signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 404, description = "No such key in the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn disable_api_key(app: &Keygate, request: Request) -> Response<Body> {
    set_state(app, request, KeyState::Disabled).await
}

async fn set_state(app: &Keygate, request: Request, state: KeyState) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                let key = app.set_state(&caller, &key_target(&request)?, state, &nonce).await?;
                Ok(ApiKeyInfo::of(&key, None))
            })
            .await
        }
        .await,
    )
}

/// SpaceONE `delete`: `google.protobuf.Empty`, `{}`.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, operation_id = "spaceone_delete", path = "/identity/v1/api-key/{api_key_id}", tag = "SpaceONE admin API",
    params(KeyIdPath),
    request_body(content = Option<ApiKeyRequest>, description = "Optional: repeats the path's id"),
    responses(
        (status = 200, description = "Deleted", body = Empty),
        (status = 400, description = "Bad body", body = SpaceOneError),
        (status = 401, description = "Missing, bad or replayed signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 404, description = "No such key in the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                app.delete_key(&caller, &key_target(&request)?, &nonce).await?;
                Ok(Empty {})
            })
            .await
        }
        .await,
    )
}

/// SpaceONE `get`: `APIKeyInfo`, only the fields `only` names if it names any.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "spaceone_get", path = "/identity/v1/api-key/{api_key_id}", tag = "SpaceONE admin API",
    params(KeyIdPath, GetApiKeyParameters),
    responses(
        (status = 200, description = "The key (the fields `only` names)", body = crate::api_key_info::ApiKeyInfoFields),
        (status = 400, description = "Unknown parameter or field", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 404, description = "No such key in the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
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

/// SpaceONE `list`, its `APIKeyQuery` in the query string (no `query`).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "spaceone_list", path = "/identity/v1/api-keys", tag = "SpaceONE admin API",
    params(ListApiKeysParameters),
    responses(
        (status = 200, description = "The caller's keys, oldest first", body = ApiKeysInfo),
        (status = 400, description = "Unknown parameter or bad value, or a query over the cost limit", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "The domain already runs its limit of queries that read all its keys: retry after `Retry-After` seconds", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
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
            Ok(ApiKeysInfo { results: found.results, total_count: found.total_count })
        }
        .await,
    )
}

/// SpaceONE `list` with an `APIKeyQuery` body (a blank body is the empty query).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, operation_id = "spaceone_search", path = "/identity/v1/api-keys/search", tag = "SpaceONE admin API",
    request_body(content = Option<ApiKeyQuery>),
    responses(
        (status = 200, description = "The page of keys and how many matched", body = ApiKeysInfo),
        (status = 400, description = "Bad body or query, or a query over the cost limit", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "The domain already runs its limit of queries that read all its keys: retry after `Retry-After` seconds", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn search_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let query: ApiKeyQuery = parse_optional_json(&request)?;
            let caller = authorized_caller(&request)?;
            let found = app.search_keys(&caller, query.into()).await?;
            Ok(ApiKeysInfo { results: found.results, total_count: found.total_count })
        }
        .await,
    )
}

/// SpaceONE `stat`: a `StatisticsQuery` over the caller's keys.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, operation_id = "spaceone_stat", path = "/identity/v1/api-keys/stat", tag = "SpaceONE admin API",
    request_body = ApiKeyStatQuery,
    responses(
        (status = 200, description = "The query's results", body = crate::query::stat::StatResult),
        (status = 400, description = "Bad body or query, or a query over the cost limit", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
        (status = 503, description = "The domain already runs its limit of queries that read all its keys: retry after `Retry-After` seconds", body = SpaceOneError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
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

/// The one responder of the SpaceONE surface: 200 with the message (its members in name order,
/// as a JSON value keeps them), or the error's envelope.
fn respond(outcome: Result<impl Serialize, Error>) -> Response<Body> {
    match outcome.and_then(|message| {
        serde_json::to_value(message).map_err(|err| Error::Internal(format!("answer not serialised: {err}")))
    }) {
        Ok(body) => json_response(200, &body),
        Err(err) => error_response(&err),
    }
}

/// The one mapping of domain errors to SpaceONE's error envelope.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, code, message) = match err {
        Error::InvalidArgument(m) => (400, "ERROR_INVALID_ARGUMENT", m.clone()),
        Error::Busy(m) => (503, "ERROR_UNAVAILABLE", m.clone()),
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
        Error::Unavailable(_) => (503, "ERROR_UNAVAILABLE", UNAVAILABLE.to_owned()),
        Error::KeyExpired
        | Error::QuotaExhausted
        | Error::InvalidToken
        | Error::TokenReused
        | Error::Internal(_) => (500, "ERROR_INTERNAL_API", "internal error".to_owned()),
    };
    if status >= 500 {
        tracing::error!(error = %err, "admin request failed");
    } else {
        tracing::info!(status, code, reason = %err, "admin request refused");
    }
    let envelope = SpaceOneError { error: SpaceOneErrorBody { code: code.to_owned(), message } };
    let response = json_response(status, &serde_json::to_value(envelope).expect("texts serialise"));
    if status == 503 { with_retry_after(response) } else { response }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_keeps_the_named_fields_and_refuses_a_field_the_info_lacks() {
        let info = json!({ "api_key_id": "api-key-0123456789ab", "name": "orders", "state": "ENABLED" });
        assert_eq!(only_fields(info.clone(), &[]).unwrap(), info);
        assert_eq!(only_fields(info.clone(), &["name"]).unwrap(), json!({ "name": "orders" }));
        assert!(matches!(only_fields(info, &["secret"]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn expires_at_is_rfc_3339() {
        assert!(parse_time("2030-01-02T03:04:05Z").is_ok());
        assert!(matches!(parse_time("2030-01-02"), Err(Error::InvalidArgument(_))));
    }
}
