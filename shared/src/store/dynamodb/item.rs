//! The table's item layout: how an [`ApiKey`] and the markers are written as DynamoDB attributes.
//! Times are epoch milliseconds; `ttl` (epoch seconds) is only for DynamoDB's own expiry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::key_value::SecretHash;
use crate::model::{ApiKey, ApiKeyId, KeyState, StoredSecret, Timestamp};
use crate::store::StoreError;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const TTL: &str = "ttl";
/// When a marker, revocation or nonce lapses, in milliseconds: conditions compare it with now,
/// because DynamoDB deletes expired items only eventually.
pub const LAPSES_AT: &str = "lapses_at";

pub const STATE: &str = "state";
pub const PRIMARY_HASH: &str = "primary_hash";
pub const SECONDARY_HASH: &str = "secondary_hash";
pub const REMAINING: &str = "remaining_total_usage";
pub const EXPIRES_AT: &str = "expires_at";
pub const REGISTERED_AT: &str = "registered_at";
pub const LAST_ACCESSED_AT: &str = "last_accessed_at";
/// `expires_at = expiry_base + expiry_offset`, where a validity-based key gets its base (the
/// registration time) at registration and a fixed expiry has base 0: one update expression then
/// registers both kinds of key in a single write.
pub const EXPIRY_BASE: &str = "expiry_base";
pub const EXPIRY_OFFSET: &str = "expiry_offset";

pub fn key_pk(id: &ApiKeyId) -> String {
    format!("KEY#{id}")
}

pub fn domain_pk(domain_id: &str) -> String {
    format!("DOMAIN#{domain_id}")
}

pub fn refresh_marker_pk(jti: &str) -> String {
    format!("JTI#{jti}")
}

pub fn family_pk(family: &str) -> String {
    format!("FAM#{family}")
}

pub fn nonce_pk(nonce: &str) -> String {
    format!("SIG#{nonce}")
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn millis(time: Timestamp) -> AttributeValue {
    n(time.timestamp_millis())
}

/// An item that lapses at `at`: the marker, revocation and nonce items.
pub fn lapsing(pk: String, at: Timestamp) -> Item {
    HashMap::from([
        (PK.to_owned(), s(pk)),
        (LAPSES_AT.to_owned(), millis(at)),
        // Rounded up so DynamoDB never deletes an item before it lapses.
        (TTL.to_owned(), n((at.timestamp_millis() + 999).div_euclid(1000))),
    ])
}

pub fn key_to_item(key: &ApiKey) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(key_pk(&key.api_key_id))),
        (GSI1_PK.to_owned(), s(domain_pk(&key.domain_id))),
        (GSI1_SK.to_owned(), s(format!("{}#{}", key.created_at.timestamp_millis(), key.api_key_id))),
        ("api_key_id".to_owned(), s(key.api_key_id.as_str())),
        ("domain_id".to_owned(), s(&key.domain_id)),
        ("user_id".to_owned(), s(&key.user_id)),
        ("name".to_owned(), s(&key.name)),
        ("description".to_owned(), s(&key.description)),
        (STATE.to_owned(), s(state_name(key.state))),
        (PRIMARY_HASH.to_owned(), s(key.primary.hash.as_str())),
        ("primary_last4".to_owned(), s(&key.primary.last4)),
        (SECONDARY_HASH.to_owned(), s(key.secondary.hash.as_str())),
        ("secondary_last4".to_owned(), s(&key.secondary.last4)),
        ("scope".to_owned(), AttributeValue::L(key.scope.iter().map(s).collect())),
        ("max_total_usage".to_owned(), n(key.max_total_usage)),
        (REMAINING.to_owned(), n(key.remaining_total_usage)),
        ("created_at".to_owned(), millis(key.created_at)),
        ("modified_at".to_owned(), millis(key.modified_at)),
        ("modifier".to_owned(), s(&key.modifier)),
        ("domain_code".to_owned(), s(&key.domain_code)),
    ]);
    let optional = [
        ("validity_seconds", key.validity_seconds.map(n)),
        (EXPIRES_AT, key.expires_at.map(millis)),
        (REGISTERED_AT, key.registered_at.map(millis)),
        (LAST_ACCESSED_AT, key.last_accessed_at.map(millis)),
    ];
    item.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    match (key.expires_at, key.registered_at, key.validity_seconds) {
        (Some(expires_at), None, _) | (Some(expires_at), Some(_), None) => {
            item.insert(EXPIRY_BASE.to_owned(), n(0));
            item.insert(EXPIRY_OFFSET.to_owned(), millis(expires_at));
        }
        (Some(expires_at), Some(registered_at), Some(_)) => {
            item.insert(EXPIRY_BASE.to_owned(), millis(registered_at));
            item.insert(EXPIRY_OFFSET.to_owned(), n((expires_at - registered_at).num_milliseconds()));
        }
        (None, _, validity) => {
            let offset = validity.unwrap_or_default().saturating_mul(1000);
            item.insert(EXPIRY_OFFSET.to_owned(), n(offset));
        }
    }
    item
}

pub fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Enabled => "ENABLED",
        KeyState::Disabled => "DISABLED",
    }
}

pub fn key_from_item(item: &Item) -> Result<ApiKey, StoreError> {
    let id = text(item, "api_key_id")?;
    Ok(ApiKey {
        api_key_id: ApiKeyId::parse(&id).ok_or_else(|| corrupt("api_key_id"))?,
        domain_id: text(item, "domain_id")?,
        user_id: text(item, "user_id")?,
        name: text(item, "name")?,
        description: text(item, "description")?,
        state: match text(item, STATE)?.as_str() {
            "ENABLED" => KeyState::Enabled,
            "DISABLED" => KeyState::Disabled,
            _ => return Err(corrupt(STATE)),
        },
        primary: StoredSecret {
            hash: SecretHash::from_stored(text(item, PRIMARY_HASH)?),
            last4: text(item, "primary_last4")?,
        },
        secondary: StoredSecret {
            hash: SecretHash::from_stored(text(item, SECONDARY_HASH)?),
            last4: text(item, "secondary_last4")?,
        },
        scope: match item.get("scope") {
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| v.as_s().cloned().map_err(|_| corrupt("scope")))
                .collect::<Result<_, _>>()?,
            _ => return Err(corrupt("scope")),
        },
        max_total_usage: number(item, "max_total_usage")?,
        remaining_total_usage: number(item, REMAINING)?,
        validity_seconds: optional_number(item, "validity_seconds")?,
        expires_at: optional_time(item, EXPIRES_AT)?,
        registered_at: optional_time(item, REGISTERED_AT)?,
        last_accessed_at: optional_time(item, LAST_ACCESSED_AT)?,
        created_at: time(item, "created_at")?,
        modified_at: time(item, "modified_at")?,
        modifier: text(item, "modifier")?,
        domain_code: text(item, "domain_code")?,
    })
}

fn corrupt(attribute: &str) -> StoreError {
    StoreError::Unavailable(format!("stored key has a missing or malformed {attribute}"))
}

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().ok_or_else(|| corrupt(name))
}

fn optional_number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    item.get(name)
        .map(|v| v.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| corrupt(name)))
        .transpose()
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    optional_number(item, name)?.ok_or_else(|| corrupt(name))
}

fn optional_time(item: &Item, name: &str) -> Result<Option<Timestamp>, StoreError> {
    optional_number::<i64>(item, name)?
        .map(|ms| Timestamp::from_timestamp_millis(ms).ok_or_else(|| corrupt(name)))
        .transpose()
}

fn time(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    optional_time(item, name)?.ok_or_else(|| corrupt(name))
}
