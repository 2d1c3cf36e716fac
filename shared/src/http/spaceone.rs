//! The SpaceONE-compatible admin API of seed 001 (`/identity/v1/...`): `APIKeyInfo` messages and
//! `{"error": {"code": "ERROR_...", "message": "..."}}` errors.

use chrono::DateTime;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    authorized_caller, authorized_write, json_response, only_query_parameters, parse_json,
    parse_optional_json, path_key_id,
};
use crate::Keygate;
use crate::api_key_info::{ApiKeyInfo, api_key_info};
use crate::error::Error;
use crate::model::{KeyState, Timestamp};
use crate::query::stat::StatisticsQuery;
use crate::query::{Document, Query};
use crate::service::{KeySearch, KeyStat, KeyTarget, NewKey};

/// `CreateAPIKeyRequest` plus keygate's own key settings.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CreateAPIKeyRequest))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// 1 to 128 characters.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1, max_length = 128))]
    user_id: Option<String>,
    /// The caller's domain (the default); any other is 403.
    domain_id: Option<String>,
    /// 1 to 64 characters; the key's id when left out.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    name: Option<String>,
    /// At most 256 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    description: Option<String>,
    /// Copied into every access token the key buys: up to 64 entries of 1 to 128 visible ASCII
    /// characters.
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    scope: Option<Vec<String>>,
    /// Tokens the key may ever mint.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2147483647))]
    max_total_usage: Option<i64>,
    /// The key expires this long after its registration (at most 100 years); exclusive with
    /// `expires_at`.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3153600000_i64))]
    validity_seconds: Option<i64>,
    /// A fixed expiry, RFC 3339, in the future; exclusive with `validity_seconds`.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: Option<String>,
}

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
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
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
            Ok(ApiKeyInfo::of(&created.key, Some(&created.primary)))
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
            let key = app.set_state(&caller, &key_target(&request)?, state, &nonce).await?;
            Ok(ApiKeyInfo::of(&key, None))
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
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.delete_key(&caller, &key_target(&request)?, &nonce).await?;
            Ok(Empty {})
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

/// `APIKeyRequest`: both fields repeat what the path and the signature already say, so they
/// are optional, but must agree.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyRequest))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyRequest {
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyQuery))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyQuery {
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

/// SpaceONE `list`, its `APIKeyQuery` in the query string (no `query`).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "spaceone_list", path = "/identity/v1/api-keys", tag = "SpaceONE admin API",
    params(ListApiKeysParameters),
    responses(
        (status = 200, description = "The caller's keys, oldest first", body = ApiKeysInfo),
        (status = 400, description = "Unknown parameter or bad value", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
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
        (status = 400, description = "Bad body or query", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
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

/// `APIKeyStatQuery`
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyStatQuery))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyStatQuery {
    query: StatisticsQuery,
    domain_id: Option<String>,
}

/// SpaceONE `stat`: a `StatisticsQuery` over the caller's keys.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, operation_id = "spaceone_stat", path = "/identity/v1/api-keys/stat", tag = "SpaceONE admin API",
    request_body = ApiKeyStatQuery,
    responses(
        (status = 200, description = "The query's results", body = crate::query::stat::StatResult),
        (status = 400, description = "Bad body or query", body = SpaceOneError),
        (status = 401, description = "Missing or bad signature", body = SpaceOneError),
        (status = 403, description = "`domain_id` is not the caller's domain", body = SpaceOneError),
        (status = 405, description = "Another method on this path", body = SpaceOneError),
        (status = 500, description = "Store failure", body = SpaceOneError),
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
    let envelope = SpaceOneError { error: SpaceOneErrorBody { code: code.to_owned(), message } };
    json_response(status, &serde_json::to_value(envelope).expect("texts serialise"))
}

/// `APIKeysInfo`: a page of `APIKeyInfo` (the fields the query's `only` or `minimal` keep) and
/// how many keys matched in all.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeysInfo))]
pub(crate) struct ApiKeysInfo {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::api_key_info::ApiKeyInfoFields>))]
    results: Vec<Document>,
    total_count: usize,
}

/// `google.protobuf.Empty`: `{}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Empty {}

/// The SpaceONE error envelope.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SpaceOneError {
    error: SpaceOneErrorBody,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SpaceOneErrorBody {
    /// `ERROR_INVALID_ARGUMENT`, `ERROR_REQUIRED_PARAMETER`, `ERROR_AUTHENTICATE_FAILURE`,
    /// `ERROR_PERMISSION_DENIED`, `ERROR_NOT_FOUND`, `ERROR_METHOD_NOT_ALLOWED`,
    /// `ERROR_ALREADY_EXISTS` or `ERROR_INTERNAL_API`.
    code: String,
    /// What is wrong, naming no value.
    message: String,
}

/// The key id in a key-scoped route's path.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyIdPath {
    /// `api-key-` and 12 lowercase hex digits.
    #[param(pattern = "^api-key-[0-9a-f]{12}$")]
    api_key_id: String,
}

/// `GetAPIKeyRequest`'s fields beyond the path.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct GetApiKeyParameters {
    /// The caller's domain (the default); any other is 403.
    domain_id: Option<String>,
    /// Fields of `APIKeyInfo` to keep, repeated or separated by commas.
    #[param(style = Form, explode)]
    only: Option<Vec<String>>,
}

/// `APIKeyQuery`'s fields, in the query string.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListApiKeysParameters {
    api_key_id: Option<String>,
    /// `ENABLED` or `DISABLED`.
    state: Option<String>,
    user_id: Option<String>,
    /// The caller's domain (the default); any other is 403.
    domain_id: Option<String>,
}
