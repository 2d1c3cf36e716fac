//! `APIKeyInfo` (seed 001): a key as the SpaceONE surface shows it, and the document that admin
//! queries (`Query`, `StatisticsQuery`) run over, with the schema of what they may name.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::key_value::KeyValue;
use crate::model::{ApiKey, Timestamp};
use crate::query::{Document, FieldKind, Projection, Schema};

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

/// The `APIKeyInfo` of each key, as the documents a query runs over (values masked).
pub fn documents(keys: &[ApiKey]) -> Vec<Document> {
    keys.iter()
        .filter_map(|key| match api_key_info(key, None) {
            Value::Object(fields) => Some(fields),
            _ => None,
        })
        .collect()
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
