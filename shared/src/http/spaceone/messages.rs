//! The SpaceONE surface's messages (seed 001): the requests it parses, the answers it sends and
//! its error envelope, with the schemas the OpenAPI document shows of them.

use serde::{Deserialize, Serialize};

use crate::query::stat::StatisticsQuery;
use crate::query::{Document, Query};
use crate::service::KeySearch;

/// `CreateAPIKeyRequest` plus keygate's own key settings.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CreateAPIKeyRequest))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// 1 to 128 characters.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1, max_length = 128))]
    pub(crate) user_id: Option<String>,
    /// The caller's domain (the default); any other is 403.
    pub(crate) domain_id: Option<String>,
    /// 1 to 64 characters; the key's id when left out.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub(crate) name: Option<String>,
    /// At most 256 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub(crate) description: Option<String>,
    /// Copied into every access token the key buys: up to 64 entries of 1 to 128 visible ASCII
    /// characters.
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    pub(crate) scope: Option<Vec<String>>,
    /// Tokens the key may ever mint.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2147483647))]
    pub(crate) max_total_usage: Option<i64>,
    /// The key expires this long after its registration (at most 100 years); exclusive with
    /// `expires_at`.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3153600000_i64))]
    pub(crate) validity_seconds: Option<i64>,
    /// A fixed expiry, RFC 3339, in the future; exclusive with `validity_seconds`.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub(crate) expires_at: Option<String>,
}

/// `APIKeyRequest`: both fields repeat what the path and the signature already say, so they
/// are optional, but must agree.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyRequest))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyRequest {
    pub(crate) api_key_id: Option<String>,
    pub(crate) domain_id: Option<String>,
}

/// `APIKeyQuery`
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyQuery))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyQuery {
    #[serde(default)]
    pub(crate) query: Query,
    pub(crate) api_key_id: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) domain_id: Option<String>,
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

/// `APIKeyStatQuery`
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyStatQuery))]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyStatQuery {
    pub(crate) query: StatisticsQuery,
    pub(crate) domain_id: Option<String>,
}

/// `APIKeysInfo`: a page of `APIKeyInfo` (the fields the query's `only` or `minimal` keep) and
/// how many keys matched in all.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeysInfo))]
pub(crate) struct ApiKeysInfo {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::api_key_info::ApiKeyInfoFields>))]
    pub(crate) results: Vec<Document>,
    pub(crate) total_count: usize,
}

/// `google.protobuf.Empty`: `{}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Empty {}

/// The SpaceONE error envelope.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SpaceOneError {
    pub(crate) error: SpaceOneErrorBody,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SpaceOneErrorBody {
    /// `ERROR_INVALID_ARGUMENT`, `ERROR_REQUIRED_PARAMETER`, `ERROR_AUTHENTICATE_FAILURE`,
    /// `ERROR_PERMISSION_DENIED`, `ERROR_NOT_FOUND`, `ERROR_METHOD_NOT_ALLOWED`,
    /// `ERROR_ALREADY_EXISTS` or `ERROR_INTERNAL_API`.
    pub(crate) code: String,
    /// What is wrong, naming no value.
    pub(crate) message: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_an_empty_object_and_errors_are_code_and_message() {
        assert_eq!(serde_json::to_string(&Empty {}).unwrap(), "{}");
        let error = SpaceOneError {
            error: SpaceOneErrorBody { code: "ERROR_NOT_FOUND".into(), message: "resource not found".into() },
        };
        assert_eq!(
            serde_json::to_value(error).unwrap().to_string(),
            r#"{"error":{"code":"ERROR_NOT_FOUND","message":"resource not found"}}"#
        );
    }

    #[test]
    fn requests_refuse_fields_the_seed_does_not_have() {
        assert!(serde_json::from_str::<ApiKeyRequest>(r#"{"api_key_id":"a","extra":1}"#).is_err());
        assert!(serde_json::from_str::<CreateApiKeyRequest>(r#"{"user_id":"u","api_key":"k"}"#).is_err());
        let query: ApiKeyQuery = serde_json::from_str(r#"{"state":"ENABLED"}"#).unwrap();
        assert_eq!(KeySearch::from(query).state.as_deref(), Some("ENABLED"));
    }
}
