//! `APIKeyInfo` (seed 001): a key as the SpaceONE surface shows it, and the document that admin
//! queries (`Query`, `StatisticsQuery`) run over, with the schema of what they may name.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::key_value::KeyValue;
use crate::model::{ApiKey, Timestamp};
use crate::query::{Document, FieldKind, Projection, Schema};
use crate::store::KeyListing;

/// `APIKeyInfo`, with keygate's key settings after the seed's fields. `api_key` is the primary key
/// value: in clear on create only, masked everywhere else.
pub fn api_key_info(key: &ApiKey, api_key: Option<&KeyValue>) -> Value {
    let mut info = listing_document(&KeyListing::from(key));
    info.insert("last_accessed_at".into(), format_time(key.last_accessed_at).into());
    info.insert("remaining_total_usage".into(), key.remaining_total_usage.into());
    info.insert(
        "api_key".into(),
        Value::from(api_key.map_or_else(|| key.primary.masked(), |v| v.expose().to_owned())),
    );
    Value::Object(info)
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
