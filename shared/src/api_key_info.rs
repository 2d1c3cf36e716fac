//! `APIKeyInfo` (seed 001): a key as the SpaceONE surface shows it, and the document that admin
//! queries (`Query`, `StatisticsQuery`) run over, with the schema of what they may name.

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::{Value, json};

use crate::key_value::KeyValue;
use crate::model::{ApiKey, KeyState, Timestamp};
use crate::query::{Document, FieldKind, Projection, Schema};
use crate::store::KeyListing;

/// `APIKeyInfo`: the seed's fields, then keygate's key settings. Times are RFC 3339, `""` when not
/// set yet. It is sent as a JSON object whose members are in name order (a [`Document`]).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyInfo))]
pub struct ApiKeyInfo {
    pub api_key_id: String,
    /// The primary key value: in clear in the answer to create only, else masked (`*****` and
    /// its last 4 characters).
    pub api_key: String,
    pub state: KeyState,
    pub user_id: String,
    pub domain_id: String,
    pub last_accessed_at: String,
    pub created_at: String,
    pub name: String,
    pub description: String,
    pub scope: Vec<String>,
    pub max_total_usage: u32,
    pub remaining_total_usage: u32,
    /// The key expires this long after its registration, unless it has a fixed `expires_at`.
    pub validity_seconds: Option<u64>,
    pub expires_at: String,
    pub registered_at: String,
}

impl ApiKeyInfo {
    /// The `APIKeyInfo` of a key; `api_key` is the primary value in clear, if given.
    pub fn of(key: &ApiKey, api_key: Option<&KeyValue>) -> Self {
        Self {
            api_key_id: key.api_key_id.to_string(),
            api_key: api_key.map_or_else(|| key.primary.masked(), |v| v.expose().to_owned()),
            state: key.state,
            user_id: key.user_id.clone(),
            domain_id: key.domain_id.clone(),
            last_accessed_at: format_time(key.last_accessed_at),
            created_at: format_time(Some(key.created_at)),
            name: key.name.clone(),
            description: key.description.clone(),
            scope: key.scope.clone(),
            max_total_usage: key.max_total_usage,
            remaining_total_usage: key.remaining_total_usage,
            validity_seconds: key.validity_seconds,
            expires_at: format_time(key.expires_at),
            registered_at: format_time(key.registered_at),
        }
    }

    /// As the document a query runs over.
    pub fn document(&self) -> Document {
        match serde_json::to_value(self) {
            Ok(Value::Object(fields)) => fields,
            _ => unreachable!("a struct of texts and numbers serialises to an object"),
        }
    }
}

/// `APIKeyInfo` where a query's `only` (or `minimal`) may have kept some fields only: the same
/// properties, none required. Its schema is made from [`ApiKeyInfo`]'s, so the two cannot differ.
#[cfg(feature = "openapi")]
pub struct ApiKeyInfoFields;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ApiKeyInfoFields {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = <ApiKeyInfo as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.clear();
            object.description = Some("`APIKeyInfo`, with only the fields `only` or `minimal` kept".into());
        }
        schema
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ApiKeyInfoFields {
    fn name() -> std::borrow::Cow<'static, str> {
        "APIKeyInfoFields".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <ApiKeyInfo as utoipa::ToSchema>::schemas(schemas);
    }
}

/// `APIKeyInfo` as a JSON value, with the primary key value in clear if given.
pub fn api_key_info(key: &ApiKey, api_key: Option<&KeyValue>) -> Value {
    Value::Object(ApiKeyInfo::of(key, api_key).document())
}

/// The `APIKeyInfo` of each key, as the documents a query runs over (values masked).
pub fn documents(keys: &[ApiKey]) -> Vec<Document> {
    keys.iter().map(|key| ApiKeyInfo::of(key, None).document()).collect()
}

/// The fields of `APIKeyInfo` that only the key itself holds, not its listing: a query that
/// tests them reads every key of the domain.
pub const COUNTERS: [&str; 2] = ["last_accessed_at", "remaining_total_usage"];

/// `APIKeyInfo` without the [`COUNTERS`] and the masked value: what a query may test of a key
/// from its listing alone.
pub fn listing_document(listing: &KeyListing) -> Document {
    let document = json!({
        "api_key_id": listing.api_key_id,
        "state": listing.state,
        "user_id": listing.user_id,
        "domain_id": listing.domain_id,
        "created_at": format_time(Some(listing.created_at)),
        "name": listing.name,
        "description": listing.description,
        "scope": listing.scope,
        "max_total_usage": listing.max_total_usage,
        "validity_seconds": listing.validity_seconds,
        "expires_at": format_time(listing.expires_at),
        "registered_at": format_time(listing.registered_at),
    });
    match document {
        Value::Object(fields) => fields,
        _ => unreachable!("an object"),
    }
}

/// The fields of `APIKeyInfo` a query may test, sort and group by.
pub fn schema() -> Schema {
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

/// The masked key value may be shown with `only`, but no condition may test it.
pub const PROJECTION: Projection<'static> = Projection {
    minimal: &["api_key_id", "name", "state", "user_id", "domain_id"],
    keyword: &["api_key_id", "user_id", "name"],
    shown_only: &["api_key"],
};

/// RFC 3339 with the milliseconds we keep, or `""` for a time not yet set.
pub fn format_time(time: Option<Timestamp>) -> String {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiKeyId, SecretHash, StoredSecret};

    fn key() -> ApiKey {
        let secret = |c: &str, last4: &str| StoredSecret {
            hash: SecretHash::from_stored(c.repeat(64)),
            last4: last4.into(),
            generation: 0,
        };
        let at = |millis| Timestamp::from_timestamp_millis(millis).unwrap();
        ApiKey {
            api_key_id: ApiKeyId::parse("api-key-0123456789ab").unwrap(),
            domain_id: "domain-a".into(),
            user_id: "user-1".into(),
            name: "orders".into(),
            description: "".into(),
            state: KeyState::Enabled,
            primary: secret("a", "AAAA"),
            secondary: secret("b", "BBBB"),
            scope: vec!["orders:read".into()],
            max_total_usage: 100,
            remaining_total_usage: 99,
            validity_seconds: Some(3600),
            expires_at: None,
            registered_at: Some(at(1_764_000_001_000)),
            last_accessed_at: None,
            created_at: at(1_764_000_000_000),
            modified_at: at(1_764_000_000_500),
            modifier: "AKADMIN".into(),
            domain_code: "PUB".into(),
        }
    }

    #[test]
    fn a_listing_document_is_the_api_key_info_without_the_counters_and_the_value() {
        let key = key();
        let mut info = ApiKeyInfo::of(&key, None).document();
        for name in COUNTERS.iter().chain(PROJECTION.shown_only) {
            assert!(info.remove(*name).is_some(), "{name}");
        }
        assert_eq!(info, listing_document(&KeyListing::from(&key)));
    }

    #[test]
    fn api_key_info_is_sent_in_name_order_with_times_in_rfc_3339_and_unset_ones_empty() {
        let text = api_key_info(&key(), None).to_string();
        assert_eq!(
            text,
            concat!(
                r#"{"api_key":"*****AAAA","api_key_id":"api-key-0123456789ab","created_at":"2025-11-24T16:00:00Z","#,
                r#""description":"","domain_id":"domain-a","expires_at":"","last_accessed_at":"","#,
                r#""max_total_usage":100,"name":"orders","registered_at":"2025-11-24T16:00:01Z","#,
                r#""remaining_total_usage":99,"scope":["orders:read"],"state":"ENABLED","user_id":"user-1","#,
                r#""validity_seconds":3600}"#
            )
        );
    }
}
