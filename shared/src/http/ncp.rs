//! The NCP-compatible API-key resource of seed 002 (`/api/v1/api-keys`): the seed's camelCase
//! document, `{"error": {"errorCode", "message"}}` errors. Keys are the same keys the SpaceONE
//! surface manages.

use chrono::SecondsFormat;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{json_response, parse_json, path_key_id, signed_bodiless_write, signed_caller, signed_write};
use crate::Keygate;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::model::{ApiKey, KeyChange, KeyState};
use crate::service::{KeySlot, NewKey};

const LIST_DEFAULT_LIMIT: usize = 10;
const LIST_MAX_LIMIT: usize = 100;

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
    let outcome = async {
        let (caller, nonce) = signed_write(app, &request)?;
        let body: CreateRequest = parse_json(&request)?;
        let name = body.api_key_name.ok_or_else(|| Error::MissingParameter("apiKeyName".into()))?;
        let new_key = NewKey {
            user_id: caller.access_key.clone(),
            name: Some(name),
            description: body.api_key_description,
            ..NewKey::default()
        };
        app.create_key(&caller, new_key, Some(&nonce)).await
    };
    match outcome.await {
        Ok(created) => json_response(
            201,
            &api_key_document(&created.key, Some(&created.primary), Some(&created.secondary)),
        ),
        Err(err) => error_response(&err),
    }
}

/// `GET /api/v1/api-keys/{api-key-id}`
pub async fn get_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let caller = signed_caller(&request)?;
        app.key_of(&caller, &path_key_id(&request)?).await
    };
    match outcome.await {
        Ok(key) => json_response(200, &api_key_document(&key, None, None)),
        Err(err) => error_response(&err),
    }
}

/// `GET /api/v1/api-keys?offset=&limit=&apiKeyName=`: `apiKeyName` matches as a substring.
pub async fn list_api_keys(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let caller = signed_caller(&request)?;
        let parameters = request.query_string_parameters();
        if let Some(unknown) =
            parameters.iter().map(|(k, _)| k).find(|k| !["offset", "limit", "apiKeyName"].contains(k))
        {
            return Err(Error::InvalidArgument(format!("unknown parameter {unknown}")));
        }
        let number = |name: &str, default: usize| -> Result<usize, Error> {
            parameters.first(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| Error::InvalidArgument(format!("{name} is not a whole number")))
            })
        };
        let offset = number("offset", 0)?;
        let limit = number("limit", LIST_DEFAULT_LIMIT)?;
        if !(1..=LIST_MAX_LIMIT).contains(&limit) {
            return Err(Error::InvalidArgument(format!("limit must be between 1 and {LIST_MAX_LIMIT}")));
        }
        let name = parameters.first("apiKeyName").map(str::to_lowercase);
        let matching: Vec<ApiKey> = app
            .keys_of(&caller)
            .await?
            .into_iter()
            .filter(|key| name.as_deref().is_none_or(|n| key.name.to_lowercase().contains(n)))
            .collect();
        let content: Vec<Value> =
            matching.iter().skip(offset).take(limit).map(|key| api_key_document(key, None, None)).collect();
        Ok(json!({ "apiKeyPage": { "content": content, "total": matching.len() } }))
    };
    match outcome.await {
        Ok(page) => json_response(200, &page),
        Err(err) => error_response(&err),
    }
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
    let outcome = async {
        let (caller, nonce) = signed_write(app, &request)?;
        let body: UpdateRequest = parse_json(&request)?;
        let (name, description) = Keygate::check_details(body.api_key_name, body.api_key_description)?;
        let change = KeyChange {
            name,
            description,
            state: body.is_enabled.map(|on| if on { KeyState::Enabled } else { KeyState::Disabled }),
            ..KeyChange::by(&caller.access_key, app.now())
        };
        app.change(&caller, &path_key_id(&request)?, &change, &nonce).await
    };
    match outcome.await {
        Ok(key) => json_response(200, &api_key_document(&key, None, None)),
        Err(err) => error_response(&err),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegenerateRequest {
    key_type: KeySlot,
}

/// `PATCH /api/v1/api-keys/{api-key-id}` `{keyType}`: a new value for that slot, shown this once.
pub async fn regenerate_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let (caller, nonce) = signed_write(app, &request)?;
        let slot = parse_json::<RegenerateRequest>(&request)?.key_type;
        let (key, value) = app.regenerate(&caller, &path_key_id(&request)?, slot, &nonce).await?;
        Ok(match slot {
            KeySlot::Primary => api_key_document(&key, Some(&value), None),
            KeySlot::Secondary => api_key_document(&key, None, Some(&value)),
        })
    };
    match outcome.await {
        Ok(document) => json_response(200, &document),
        Err(err) => error_response(&err),
    }
}

/// `DELETE /api/v1/api-keys/{api-key-id}`: 204.
pub async fn delete_api_key(app: &Keygate, request: Request) -> Response<Body> {
    let outcome = async {
        let (caller, nonce) = signed_bodiless_write(app, &request)?;
        app.delete_key(&caller, &path_key_id(&request)?, &nonce).await
    };
    match outcome.await {
        Ok(()) => Response::builder().status(204).body(Body::Empty).expect("valid response"),
        Err(err) => error_response(&err),
    }
}

/// The one mapping of domain errors to NCP's error envelope; `errorCode` is the HTTP status.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, message) = match err {
        Error::InvalidArgument(m) => (400, m.clone()),
        Error::MissingParameter(field) => (400, format!("required parameter: {field}")),
        Error::Unauthenticated(m) => (401, m.clone()),
        Error::PermissionDenied(m) => (403, m.clone()),
        Error::NotFound => (404, "api key not found".to_owned()),
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
        tracing::info!(status, "ncp request refused");
    }
    error_body(status, &message)
}

pub(crate) fn error_body(status: u16, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": { "errorCode": status.to_string(), "message": message } }))
}
