//! The NCP-compatible API-key resource of seed 002 (`/api/v1/api-keys`): the seed's camelCase
//! document, `{"error": {"errorCode", "message"}}` errors. Keys are the same keys the SpaceONE
//! surface manages.

use chrono::SecondsFormat;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    authorized_caller, authorized_write, json_response, only_query_parameters, parse_json, path_key_id,
};
use crate::Keygate;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::limits::LIST_DEFAULT_LIMIT;
use crate::model::{ApiKey, KeySlot, KeyState};
use crate::service::{KeyTarget, KeyUpdate, ListPage, NewKey};

/// The seed's API-key document. Key values are masked unless `clear` holds the one just made.
pub fn api_key_document(
    key: &ApiKey,
    clear_primary: Option<&KeyValue>,
    clear_secondary: Option<&KeyValue>,
) -> Value {
    let shown = |clear: Option<&KeyValue>, masked: String| clear.map_or(masked, |v| v.expose().to_owned());
    json!({
        "apiKeyId": key.api_key_id,
        "tenantId": key.domain_id,
        "apiKeyName": key.name,
        "apiKeyDescription": key.description,
        "primaryKey": shown(clear_primary, key.primary.masked()),
        "secondaryKey": shown(clear_secondary, key.secondary.masked()),
        "modifier": key.modifier,
        "isEnabled": key.state == KeyState::Enabled,
        "modTime": key.modified_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "domainCode": key.domain_code,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateRequest {
    api_key_name: Option<String>,
    api_key_description: Option<String>,
}

/// `POST /api/v1/api-keys`: 201 with both key values in clear, this once.
pub async fn create_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            let body: CreateRequest = parse_json(&request)?;
            let new_key = NewKey {
                user_id: caller.access_key.clone(),
                name: Some(body.api_key_name.ok_or_else(|| Error::MissingParameter("apiKeyName".into()))?),
                description: body.api_key_description,
                ..NewKey::default()
            };
            let created = app.create_key(&caller, new_key, Some(&nonce)).await?;
            Ok((201, api_key_document(&created.key, Some(&created.primary), Some(&created.secondary))))
        }
        .await,
    )
}

/// `GET /api/v1/api-keys/{api-key-id}`
pub async fn get_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let caller = authorized_caller(&request)?;
            let key = app.get_key(&caller, &KeyTarget::id(path_key_id(&request)?)).await?;
            Ok((200, api_key_document(&key, None, None)))
        }
        .await,
    )
}

/// `GET /api/v1/api-keys?offset=&limit=&apiKeyName=`: `apiKeyName` matches as a substring.
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
            let content: Vec<Value> =
                found.keys.iter().map(|key| api_key_document(key, None, None)).collect();
            Ok((200, json!({ "apiKeyPage": { "content": content, "total": found.total } })))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateRequest {
    api_key_name: Option<String>,
    api_key_description: Option<String>,
    is_enabled: Option<bool>,
}

/// `PUT /api/v1/api-keys/{api-key-id}`
pub async fn update_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            let body: UpdateRequest = parse_json(&request)?;
            let update = KeyUpdate {
                name: body.api_key_name,
                description: body.api_key_description,
                enabled: body.is_enabled,
            };
            let key = app.update_key(&caller, &KeyTarget::id(path_key_id(&request)?), update, &nonce).await?;
            Ok((200, api_key_document(&key, None, None)))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegenerateRequest {
    key_type: KeySlot,
}

/// `PATCH /api/v1/api-keys/{api-key-id}` `{keyType}`: a new value for that slot, shown this once.
pub async fn regenerate_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            let slot = parse_json::<RegenerateRequest>(&request)?.key_type;
            let target = KeyTarget::id(path_key_id(&request)?);
            let (key, value) = app.regenerate(&caller, &target, slot, &nonce).await?;
            Ok((
                200,
                match slot {
                    KeySlot::Primary => api_key_document(&key, Some(&value), None),
                    KeySlot::Secondary => api_key_document(&key, None, Some(&value)),
                },
            ))
        }
        .await,
    )
}

/// `DELETE /api/v1/api-keys/{api-key-id}`: 204.
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let (caller, nonce) = authorized_write(&request)?;
            app.delete_key(&caller, &KeyTarget::id(path_key_id(&request)?), &nonce).await?;
            Ok((204, Value::Null))
        }
        .await,
    )
}

/// The one responder of the NCP surface: the status and document (none for 204), or the error's
/// envelope.
fn respond(outcome: Result<(u16, Value), Error>) -> Response<Body> {
    match outcome {
        Ok((204, _)) => Response::builder().status(204).body(Body::Empty).expect("valid response"),
        Ok((status, document)) => json_response(status, &document),
        Err(err) => error_response(&err),
    }
}

/// The one mapping of domain errors to NCP's error envelope; `errorCode` is the HTTP status.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, message) = match err {
        Error::InvalidArgument(m) => (400, m.clone()),
        Error::BodyTooLarge | Error::BodyTooSlow => (400, err.to_string()),
        Error::MissingParameter(field) => (400, format!("required parameter: {field}")),
        Error::Unauthenticated(m) => (401, m.clone()),
        Error::PermissionDenied(m) => (403, m.clone()),
        Error::NotFound => (404, "api key not found".to_owned()),
        Error::NoSuchRoute => (404, err.to_string()),
        Error::MethodNotAllowed => (405, err.to_string()),
        Error::Conflict => (409, "api key already exists, retry".to_owned()),
        Error::KeyExpired
        | Error::QuotaExhausted
        | Error::InvalidToken
        | Error::TokenReused
        | Error::Internal(_) => (500, "internal error".to_owned()),
    };
    if status == 500 {
        tracing::error!(error = %err, "ncp request failed");
    } else {
        tracing::info!(status, reason = %err, "ncp request refused");
    }
    json_response(status, &json!({ "error": { "errorCode": status.to_string(), "message": message } }))
}
