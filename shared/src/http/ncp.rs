//! The NCP-compatible API-key resource of seed 002 (`/api/v1/api-keys`): the seed's camelCase
//! document, `{"error": {"errorCode", "message"}}` errors. Keys are the same keys the SpaceONE
//! surface manages.

use chrono::SecondsFormat;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use super::KeyIdPath;
use super::{
    UNAVAILABLE, authorized_caller, authorized_write, json_response, only_query_parameters, parse_json,
    path_key_id, with_retry_after,
};
use crate::Keygate;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::limits::LIST_DEFAULT_LIMIT;
use crate::model::{ApiKey, KeySlot, KeyState};
use crate::service::{KeyTarget, KeyUpdate, ListPage, NewKey};

/// The seed's API-key document. Its members are sent in name order (the order of a JSON value,
/// as [`respond`] sends it).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpApiKey))]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDocument {
    api_key_id: String,
    /// The key's domain.
    tenant_id: String,
    api_key_name: String,
    api_key_description: String,
    /// In clear in the answer that made it (create, regenerate), else masked: `*****` and its
    /// last 4 characters.
    primary_key: String,
    secondary_key: String,
    /// The access key that made the last change.
    modifier: String,
    is_enabled: bool,
    /// RFC 3339, in seconds.
    mod_time: String,
    domain_code: String,
}

impl ApiKeyDocument {
    /// The document of a key, with the values in clear that were just made, if any.
    pub fn of(key: &ApiKey, clear_primary: Option<&KeyValue>, clear_secondary: Option<&KeyValue>) -> Self {
        let shown =
            |clear: Option<&KeyValue>, masked: String| clear.map_or(masked, |v| v.expose().to_owned());
        Self {
            api_key_id: key.api_key_id.to_string(),
            tenant_id: key.domain_id.clone(),
            api_key_name: key.name.clone(),
            api_key_description: key.description.clone(),
            primary_key: shown(clear_primary, key.primary.masked()),
            secondary_key: shown(clear_secondary, key.secondary.masked()),
            modifier: key.modifier.clone(),
            is_enabled: key.state == KeyState::Enabled,
            mod_time: key.modified_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            domain_code: key.domain_code.clone(),
        }
    }
}

/// A page of the list: `{apiKeyPage: {content, total}}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpApiKeyList))]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyList {
    api_key_page: ApiKeyPage,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpApiKeyPage))]
pub(crate) struct ApiKeyPage {
    /// The page's keys, oldest first.
    content: Vec<ApiKeyDocument>,
    /// How many keys matched in all.
    total: usize,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpCreateRequest))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateRequest {
    /// 1 to 64 characters.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1, max_length = 64))]
    api_key_name: Option<String>,
    /// At most 256 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    api_key_description: Option<String>,
}

/// NCP create: a key with the default quota and validity, both values in clear this once.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, operation_id = "ncp_create", path = "/api/v1/api-keys", tag = "NCP admin API",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The key, both values in clear", body = ApiKeyDocument),
        (status = 400, description = "Bad body", body = NcpError),
        (status = 401, description = "Missing, bad or replayed signature", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 409, description = "Id collision: sign again and retry", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn create_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                let body: CreateRequest = parse_json(&request)?;
                let name = body.api_key_name.ok_or_else(|| Error::MissingParameter("apiKeyName".into()))?;
                let new_key = NewKey {
                    user_id: caller.access_key.clone(),
                    name: Some(name),
                    description: body.api_key_description,
                    ..NewKey::default()
                };
                let created = app.create_key(&caller, new_key, Some(&nonce)).await?;
                Ok((
                    201,
                    Some(ApiKeyDocument::of(&created.key, Some(&created.primary), Some(&created.secondary))),
                ))
            })
            .await
        }
        .await,
    )
}

/// NCP get: the seed's "API key detail".
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "ncp_get", path = "/api/v1/api-keys/{api_key_id}", tag = "NCP admin API",
    params(KeyIdPath),
    responses(
        (status = 200, description = "The key, values masked", body = ApiKeyDocument),
        (status = 401, description = "Missing or bad signature", body = NcpError),
        (status = 404, description = "No such key in the caller's domain", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn get_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let caller = authorized_caller(&request)?;
            let key = app.get_key(&caller, &KeyTarget::id(path_key_id(&request)?)).await?;
            Ok((200, Some(ApiKeyDocument::of(&key, None, None))))
        }
        .await,
    )
}

/// NCP list: a page of the caller's keys, oldest first; `apiKeyName` matches as a substring.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "ncp_list", path = "/api/v1/api-keys", tag = "NCP admin API",
    params(ListParameters),
    responses(
        (status = 200, description = "The page", body = ApiKeyList),
        (status = 400, description = "Unknown parameter or bad number, or a name filter over the query cost limit", body = NcpError),
        (status = 401, description = "Missing or bad signature", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
        (status = 503, description = "The domain already runs its limit of queries that read all its keys (a name filter is one): retry after `Retry-After` seconds", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn list_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let caller = authorized_caller(&request)?;
            only_query_parameters(&request, &["offset", "limit", "apiKeyName"])?;
            let parameters = request.query_string_parameters();
            let number = |name: &str, default: usize| -> Result<usize, Error> {
                parameters.first(name).map_or(Ok(default), |v| {
                    v.parse().map_err(|_| Error::InvalidArgument(format!("{name} is not a whole number")))
                })
            };
            let page = ListPage {
                offset: number("offset", 0)?,
                limit: number("limit", LIST_DEFAULT_LIMIT)?,
                name_contains: parameters.first("apiKeyName").map(str::to_owned),
            };
            let found = app.list_keys(&caller, page).await?;
            let content = found.keys.iter().map(|key| ApiKeyDocument::of(key, None, None)).collect();
            Ok((200, Some(ApiKeyList { api_key_page: ApiKeyPage { content, total: found.total } })))
        }
        .await,
    )
}

/// What to change; a field left out keeps its value.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpUpdateRequest))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateRequest {
    /// 1 to 64 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    api_key_name: Option<String>,
    /// At most 256 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    api_key_description: Option<String>,
    is_enabled: Option<bool>,
}

/// NCP update: name, description, enabled.
#[cfg_attr(feature = "openapi", utoipa::path(
    put, operation_id = "ncp_update", path = "/api/v1/api-keys/{api_key_id}", tag = "NCP admin API",
    params(KeyIdPath),
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "The key as changed, values masked", body = ApiKeyDocument),
        (status = 400, description = "Bad body", body = NcpError),
        (status = 401, description = "Missing, bad or replayed signature", body = NcpError),
        (status = 404, description = "No such key in the caller's domain", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn update_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                let body: UpdateRequest = parse_json(&request)?;
                let update = KeyUpdate {
                    name: body.api_key_name,
                    description: body.api_key_description,
                    enabled: body.is_enabled,
                };
                let target = KeyTarget::id(path_key_id(&request)?);
                let key = app.update_key(&caller, &target, update, &nonce).await?;
                Ok((200, Some(ApiKeyDocument::of(&key, None, None))))
            })
            .await
        }
        .await,
    )
}

/// Which value to replace.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NcpRegenerateRequest))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RegenerateRequest {
    key_type: KeySlot,
}

/// NCP regenerate: a new value for one slot, shown this once; the other value keeps working.
#[cfg_attr(feature = "openapi", utoipa::path(
    patch, operation_id = "ncp_regenerate", path = "/api/v1/api-keys/{api_key_id}", tag = "NCP admin API",
    params(KeyIdPath),
    request_body = RegenerateRequest,
    responses(
        (status = 200, description = "The key, the new value in clear", body = ApiKeyDocument),
        (status = 400, description = "Bad body", body = NcpError),
        (status = 401, description = "Missing, bad or replayed signature", body = NcpError),
        (status = 404, description = "No such key in the caller's domain", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn regenerate_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                let slot = parse_json::<RegenerateRequest>(&request)?.key_type;
                let target = KeyTarget::id(path_key_id(&request)?);
                let (key, value) = app.regenerate(&caller, &target, slot, &nonce).await?;
                Ok((
                    200,
                    Some(match slot {
                        KeySlot::Primary => ApiKeyDocument::of(&key, Some(&value), None),
                        KeySlot::Secondary => ApiKeyDocument::of(&key, None, Some(&value)),
                    }),
                ))
            })
            .await
        }
        .await,
    )
}

/// NCP delete: 204, no body.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, operation_id = "ncp_delete", path = "/api/v1/api-keys/{api_key_id}", tag = "NCP admin API",
    params(KeyIdPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, bad or replayed signature", body = NcpError),
        (status = 404, description = "No such key in the caller's domain", body = NcpError),
        (status = 405, description = "Another method on this path", body = NcpError),
        (status = 500, description = "Store failure", body = NcpError),
        (status = 503, description = "A refused request whose signature could not be spent: sign again and retry", body = NcpError),
    ),
    security(("ncp_timestamp" = [], "ncp_access_key" = [], "ncp_signature" = [])),
))]
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.spending_signature(&nonce, async {
                app.delete_key(&caller, &KeyTarget::id(path_key_id(&request)?), &nonce).await?;
                Ok((204, None::<ApiKeyDocument>))
            })
            .await
        }
        .await,
    )
}

/// The one responder of the NCP surface: the status and document (none for 204; members in name
/// order, as a JSON value keeps them), or the error's envelope.
fn respond(outcome: Result<(u16, Option<impl Serialize>), Error>) -> Response<Body> {
    let sent = outcome.and_then(|(status, document)| match document {
        None => Ok((status, None)),
        Some(document) => serde_json::to_value(document)
            .map(|value| (status, Some(value)))
            .map_err(|err| Error::Internal(format!("answer not serialised: {err}"))),
    });
    match sent {
        Ok((status, None)) => Response::builder().status(status).body(Body::Empty).expect("valid response"),
        Ok((status, Some(document))) => json_response(status, &document),
        Err(err) => error_response(&err),
    }
}

/// The one mapping of domain errors to NCP's error envelope; `errorCode` is the HTTP status.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, message) = match err {
        Error::InvalidArgument(m) => (400, m.clone()),
        Error::Busy(m) => (503, m.clone()),
        Error::BodyTooLarge | Error::BodyTooSlow => (400, err.to_string()),
        Error::MissingParameter(field) => (400, format!("required parameter: {field}")),
        Error::Unauthenticated(m) => (401, m.clone()),
        Error::PermissionDenied(m) => (403, m.clone()),
        Error::NotFound => (404, "api key not found".to_owned()),
        Error::NoSuchRoute => (404, err.to_string()),
        Error::MethodNotAllowed => (405, err.to_string()),
        Error::Conflict => (409, "api key already exists, retry".to_owned()),
        Error::Unavailable(_) => (503, UNAVAILABLE.to_owned()),
        Error::KeyExpired
        | Error::QuotaExhausted
        | Error::InvalidToken
        | Error::TokenReused
        | Error::Internal(_) => (500, "internal error".to_owned()),
    };
    if status >= 500 {
        tracing::error!(error = %err, "ncp request failed");
    } else {
        tracing::info!(status, reason = %err, "ncp request refused");
    }
    let envelope = NcpError { error: NcpErrorBody { error_code: status.to_string(), message } };
    let response = json_response(status, &serde_json::to_value(envelope).expect("texts serialise"));
    if status == 503 { with_retry_after(response) } else { response }
}

/// The NCP error envelope.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct NcpError {
    error: NcpErrorBody,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct NcpErrorBody {
    /// The HTTP status, as text.
    error_code: String,
    /// What is wrong, naming no value.
    message: String,
}

/// The list's query parameters.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListParameters {
    /// Keys to skip; 0 when left out.
    offset: Option<u64>,
    /// Keys in the page; 10 when left out.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Keeps the keys whose name contains this, ignoring case.
    #[param(rename = "apiKeyName")]
    api_key_name: Option<String>,
}
