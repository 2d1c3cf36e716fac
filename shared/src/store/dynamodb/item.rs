//! The table's item layout: how an [`ApiKey`] and the markers are written as DynamoDB attributes.
//! Times are epoch milliseconds; `ttl` (epoch seconds) is only for DynamoDB's own expiry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::{ApiKey, ApiKeyId, KeySlot, KeyState, SecretHash, StoredSecret, Timestamp};
use crate::replay::ReplayNonce;
use crate::store::{KeyListing, Record, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const TTL: &str = "ttl";
/// When a marker, revocation or nonce lapses, in milliseconds: conditions compare it with now,
/// because DynamoDB deletes expired items only eventually.
pub const LAPSES_AT: &str = "lapses_at";
/// On a nonce item: the handled request that stored it (see [`crate::replay::ReplayNonce`]).
pub const REQUEST: &str = "request";

pub const API_KEY_ID: &str = "api_key_id";
pub const DOMAIN_ID: &str = "domain_id";
pub const USER_ID: &str = "user_id";
pub const NAME: &str = "name";
pub const DESCRIPTION: &str = "description";
pub const SCOPE: &str = "scope";
pub const MAX_TOTAL_USAGE: &str = "max_total_usage";
pub const VALIDITY_SECONDS: &str = "validity_seconds";
pub const CREATED_AT: &str = "created_at";
pub const MODIFIER: &str = "modifier";
pub const MODIFIED_AT: &str = "modified_at";
pub const STATE: &str = "state";
pub const ENABLED: &str = "ENABLED";
const DISABLED: &str = "DISABLED";
pub const PRIMARY_HASH: &str = "primary_hash";
pub const SECONDARY_HASH: &str = "secondary_hash";
pub const PRIMARY_LAST4: &str = "primary_last4";
pub const SECONDARY_LAST4: &str = "secondary_last4";
/// How many times a slot's value was replaced; absent on items written before there were
/// generations, which reads as 0.
pub const PRIMARY_GENERATION: &str = "primary_generation";
pub const SECONDARY_GENERATION: &str = "secondary_generation";
pub const REMAINING: &str = "remaining_total_usage";
pub const EXPIRES_AT: &str = "expires_at";
pub const REGISTERED_AT: &str = "registered_at";
pub const LAST_ACCESSED_AT: &str = "last_accessed_at";
/// `expires_at = expiry_base + expiry_offset`, where a validity-based key gets its base (the
/// registration time) at registration and a fixed expiry has base 0: one update expression then
/// registers both kinds of key in a single write.
pub const EXPIRY_BASE: &str = "expiry_base";
pub const EXPIRY_OFFSET: &str = "expiry_offset";

/// The attributes the listing index (`gsi2`) carries besides the keys: a [`KeyListing`]. None of
/// them changes on a mint, so a mint never writes the index. (`template.yaml` declares them; a
/// test holds the two equal.)
#[cfg(test)]
pub const LISTED: [&str; 12] = [
    API_KEY_ID,
    DOMAIN_ID,
    USER_ID,
    NAME,
    DESCRIPTION,
    STATE,
    SCOPE,
    MAX_TOTAL_USAGE,
    VALIDITY_SECONDS,
    EXPIRES_AT,
    REGISTERED_AT,
    CREATED_AT,
];

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

/// A replay nonce's item: lapsing, and naming the handled request that stored it.
pub fn nonce_item(nonce: &ReplayNonce) -> Item {
    let mut item = lapsing(nonce_pk(&nonce.id), nonce.expires_at);
    item.insert(REQUEST.to_owned(), s(&nonce.request));
    item
}

pub fn key_to_item(key: &ApiKey) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(key_pk(&key.api_key_id))),
        (GSI1_PK.to_owned(), s(domain_pk(&key.domain_id))),
        (GSI1_SK.to_owned(), s(format!("{}#{}", key.created_at.timestamp_millis(), key.api_key_id))),
        (API_KEY_ID.to_owned(), s(key.api_key_id.as_str())),
        (DOMAIN_ID.to_owned(), s(&key.domain_id)),
        (USER_ID.to_owned(), s(&key.user_id)),
        (NAME.to_owned(), s(&key.name)),
        (DESCRIPTION.to_owned(), s(&key.description)),
        (STATE.to_owned(), s(state_name(key.state))),
        (PRIMARY_HASH.to_owned(), s(key.primary.hash.as_str())),
        (PRIMARY_LAST4.to_owned(), s(&key.primary.last4)),
        (SECONDARY_HASH.to_owned(), s(key.secondary.hash.as_str())),
        (SECONDARY_LAST4.to_owned(), s(&key.secondary.last4)),
        (PRIMARY_GENERATION.to_owned(), n(key.primary.generation)),
        (SECONDARY_GENERATION.to_owned(), n(key.secondary.generation)),
        (SCOPE.to_owned(), AttributeValue::L(key.scope.iter().map(s).collect())),
        (MAX_TOTAL_USAGE.to_owned(), n(key.max_total_usage)),
        (REMAINING.to_owned(), n(key.remaining_total_usage)),
        (CREATED_AT.to_owned(), millis(key.created_at)),
        (MODIFIED_AT.to_owned(), millis(key.modified_at)),
        (MODIFIER.to_owned(), s(&key.modifier)),
        ("domain_code".to_owned(), s(&key.domain_code)),
    ]);
    let optional = [
        (VALIDITY_SECONDS, key.validity_seconds.map(n)),
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

/// The attribute that holds a slot's generation.
pub fn generation_attribute(slot: KeySlot) -> &'static str {
    match slot {
        KeySlot::Primary => PRIMARY_GENERATION,
        KeySlot::Secondary => SECONDARY_GENERATION,
    }
}

pub fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Enabled => ENABLED,
        KeyState::Disabled => DISABLED,
    }
}

pub fn key_from_item(item: &Item) -> Result<ApiKey, StoreError> {
    let listing = listing_from_item(item)?;
    Ok(ApiKey {
        api_key_id: listing.api_key_id,
        domain_id: listing.domain_id,
        user_id: listing.user_id,
        name: listing.name,
        description: listing.description,
        state: listing.state,
        primary: StoredSecret {
            hash: SecretHash::from_stored(text(item, PRIMARY_HASH)?),
            last4: text(item, PRIMARY_LAST4)?,
            generation: optional_number(item, PRIMARY_GENERATION)?.unwrap_or_default(),
        },
        secondary: StoredSecret {
            hash: SecretHash::from_stored(text(item, SECONDARY_HASH)?),
            last4: text(item, SECONDARY_LAST4)?,
            generation: optional_number(item, SECONDARY_GENERATION)?.unwrap_or_default(),
        },
        scope: listing.scope,
        max_total_usage: listing.max_total_usage,
        remaining_total_usage: number(item, REMAINING)?,
        validity_seconds: listing.validity_seconds,
        expires_at: listing.expires_at,
        registered_at: listing.registered_at,
        last_accessed_at: optional_time(item, LAST_ACCESSED_AT)?,
        created_at: listing.created_at,
        modified_at: time(item, MODIFIED_AT)?,
        modifier: text(item, MODIFIER)?,
        domain_code: text(item, "domain_code")?,
    })
}

/// A key's listing, from its item or from its entry in the listing index.
pub fn listing_from_item(item: &Item) -> Result<KeyListing, StoreError> {
    let id = text(item, API_KEY_ID)?;
    Ok(KeyListing {
        api_key_id: ApiKeyId::parse(&id).ok_or_else(|| corrupt(API_KEY_ID))?,
        domain_id: text(item, DOMAIN_ID)?,
        user_id: text(item, USER_ID)?,
        name: text(item, NAME)?,
        description: text(item, DESCRIPTION)?,
        state: match text(item, STATE)?.as_str() {
            ENABLED => KeyState::Enabled,
            DISABLED => KeyState::Disabled,
            _ => return Err(corrupt(STATE)),
        },
        scope: match item.get(SCOPE) {
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| v.as_s().cloned().map_err(|_| corrupt(SCOPE)))
                .collect::<Result<_, _>>()?,
            _ => return Err(corrupt(SCOPE)),
        },
        max_total_usage: number(item, MAX_TOTAL_USAGE)?,
        validity_seconds: optional_number(item, VALIDITY_SECONDS)?,
        expires_at: optional_time(item, EXPIRES_AT)?,
        registered_at: optional_time(item, REGISTERED_AT)?,
        created_at: time(item, CREATED_AT)?,
    })
}

/// The id of the key an item of either index stands for (its `pk`, `KEY#<id>`).
pub fn key_id_of(item: &Item) -> Result<ApiKeyId, StoreError> {
    text(item, PK)?.strip_prefix("KEY#").and_then(ApiKeyId::parse).ok_or_else(|| corrupt(PK))
}

/// A backup record's item.
pub fn record_to_item(record: &Record) -> Item {
    match record {
        Record::Key(key) => key_to_item(key),
        Record::RefreshMarker { jti, lapses_at } => lapsing(refresh_marker_pk(jti), *lapses_at),
        Record::RevokedFamily { family, lapses_at } => lapsing(family_pk(family), *lapses_at),
        Record::ReplayNonce { id, request, lapses_at } => {
            nonce_item(&ReplayNonce { id: id.clone(), request: request.clone(), expires_at: *lapses_at })
        }
    }
}

/// The backup record of an item of the table.
pub fn record_from_item(item: &Item) -> Result<Record, StoreError> {
    let pk = text(item, PK)?;
    let (kind, id) = pk.split_once('#').ok_or_else(|| corrupt(PK))?;
    let id = id.to_owned();
    Ok(match kind {
        "KEY" => Record::Key(Box::new(key_from_item(item)?)),
        "JTI" => Record::RefreshMarker { jti: id, lapses_at: time(item, LAPSES_AT)? },
        "FAM" => Record::RevokedFamily { family: id, lapses_at: time(item, LAPSES_AT)? },
        // Nonces written before they named their request have none.
        "SIG" => Record::ReplayNonce {
            id,
            request: item.get(REQUEST).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
            lapses_at: time(item, LAPSES_AT)?,
        },
        _ => return Err(corrupt(PK)),
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_timestamp_millis(millis).unwrap()
    }

    fn key() -> ApiKey {
        let secret = |c: &str, last4: &str| StoredSecret {
            hash: SecretHash::from_stored(c.repeat(64)),
            last4: last4.into(),
            generation: 0,
        };
        ApiKey {
            api_key_id: ApiKeyId::parse("api-key-0123456789ab").unwrap(),
            domain_id: "domain-a".into(),
            user_id: "user-1".into(),
            name: "orders".into(),
            description: "".into(),
            state: KeyState::Enabled,
            primary: secret("a", "AAAA"),
            secondary: secret("b", "BBBB"),
            scope: vec!["orders:read".into(), "orders:write".into()],
            max_total_usage: 100,
            remaining_total_usage: 99,
            validity_seconds: Some(3600),
            expires_at: None,
            registered_at: None,
            last_accessed_at: None,
            created_at: at(1_764_000_000_000),
            modified_at: at(1_764_000_000_500),
            modifier: "AKADMIN".into(),
            domain_code: "PUB".into(),
        }
    }

    #[test]
    fn a_key_survives_the_round_trip_in_every_expiry_form() {
        let unregistered = key();
        let mut registered = key();
        registered.register(at(1_764_000_001_000));
        registered.last_accessed_at = Some(at(1_764_000_002_000));
        let fixed = ApiKey { validity_seconds: None, expires_at: Some(at(1_800_000_000_000)), ..key() };
        let mut fixed_registered = fixed.clone();
        fixed_registered.register(at(1_764_000_001_000));
        for (what, key) in [
            ("validity, unregistered", unregistered),
            ("validity, registered", registered),
            ("fixed expiry", fixed),
            ("fixed expiry, registered", fixed_registered),
        ] {
            assert_eq!(key_from_item(&key_to_item(&key)).unwrap(), key, "{what}");
        }
    }

    #[test]
    fn an_item_written_before_generations_reads_as_generation_zero() {
        let mut rotated = key();
        rotated.secondary.generation = 3;
        let mut item = key_to_item(&rotated);
        assert_eq!(item[SECONDARY_GENERATION], n(3));
        assert_eq!(key_from_item(&item).unwrap().secondary.generation, 3);
        item.remove(PRIMARY_GENERATION);
        item.remove(SECONDARY_GENERATION);
        let old = key_from_item(&item).unwrap();
        assert_eq!((old.primary.generation, old.secondary.generation), (0, 0));
    }

    #[test]
    fn the_item_carries_its_table_keys_and_the_expiry_parts_registration_adds() {
        let item = key_to_item(&key());
        assert_eq!(item[PK], s("KEY#api-key-0123456789ab"));
        assert_eq!(item[GSI1_PK], s("DOMAIN#domain-a"));
        assert_eq!(item[GSI1_SK], s("1764000000000#api-key-0123456789ab"));
        assert_eq!(item[STATE], s(ENABLED));
        assert_eq!(item[EXPIRY_OFFSET], n(3_600_000), "validity in milliseconds, added at registration");
        assert!(!item.contains_key(EXPIRY_BASE) && !item.contains_key(EXPIRES_AT));

        let fixed =
            key_to_item(&ApiKey { validity_seconds: None, expires_at: Some(at(1_800_000_000_000)), ..key() });
        assert_eq!((&fixed[EXPIRY_BASE], &fixed[EXPIRY_OFFSET]), (&n(0), &n(1_800_000_000_000_i64)));

        let mut registered = key();
        registered.register(at(1_764_000_001_000));
        let registered = key_to_item(&registered);
        assert_eq!(registered[EXPIRY_BASE], n(1_764_000_001_000_i64));
        assert_eq!(registered[EXPIRES_AT], n(1_764_003_601_000_i64));
    }

    #[test]
    fn a_missing_or_malformed_attribute_is_named_without_its_value() {
        let spoiled = |attribute: &str, value: Option<AttributeValue>| {
            let mut item = key_to_item(&key());
            match value {
                Some(value) => item.insert(attribute.to_owned(), value),
                None => item.remove(attribute),
            };
            (attribute.to_owned(), item)
        };
        let cases = [
            spoiled("user_id", None),
            spoiled(STATE, Some(s("PAUSED"))),
            spoiled(REMAINING, Some(s("many"))),
            spoiled("scope", Some(AttributeValue::L(vec![n(1)]))),
        ];
        for (attribute, item) in cases {
            let message = key_from_item(&item).unwrap_err().to_string();
            assert!(
                message.ends_with(&format!("missing or malformed {attribute}")),
                "{attribute}: {message}"
            );
        }
    }

    #[test]
    fn a_lapsing_item_expires_for_dynamodb_no_sooner_than_it_lapses() {
        let item = lapsing(nonce_pk("abc"), at(1_764_000_000_001));
        assert_eq!(item[PK], s("SIG#abc"));
        assert_eq!(item[LAPSES_AT], n(1_764_000_000_001_i64));
        assert_eq!(item[TTL], n(1_764_000_001), "rounded up to the next second");
        let exact = lapsing(family_pk("f"), at(1_764_000_000_000) + TimeDelta::zero());
        assert_eq!(exact[TTL], n(1_764_000_000));
    }
}
