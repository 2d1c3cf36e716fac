//! The API key as the domain sees it, and the rules that decide whether it may be used.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub type Timestamp = DateTime<Utc>;

/// The current time, truncated to milliseconds: every timestamp we store or return is in
/// milliseconds, so values survive a round trip through the store unchanged.
pub fn now() -> Timestamp {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

const ID_PREFIX: &str = "api-key-";
pub const ID_HEX_LEN: usize = 12;

/// `api-key-` followed by 12 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub fn generate() -> Self {
        let bytes: [u8; ID_HEX_LEN / 2] = rand::rng().random();
        Self(format!("{ID_PREFIX}{}", hex::encode(bytes)))
    }

    pub fn parse(value: &str) -> Option<Self> {
        let hex_part = value.strip_prefix(ID_PREFIX)?;
        is_lower_hex(hex_part, ID_HEX_LEN).then(|| Self(value.to_owned()))
    }

    pub(crate) fn from_hex(hex_part: &str) -> Option<Self> {
        is_lower_hex(hex_part, ID_HEX_LEN).then(|| Self(format!("{ID_PREFIX}{hex_part}")))
    }

    pub fn hex(&self) -> &str {
        &self.0[ID_PREFIX.len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_lower_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("not an api key id: {value:?}"))
    }
}

impl From<ApiKeyId> for String {
    fn from(id: ApiKeyId) -> Self {
        id.0
    }
}

/// The hex HMAC-SHA256 of a key value under the pepper (see [`crate::key_value::Pepper`]): what
/// the store keeps instead of the value. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Who signed an admin request: the access key and the domain it belongs to. Every admin use case
/// acts within this domain only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub domain_id: String,
    pub access_key: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyState {
    Enabled,
    Disabled,
}

impl KeyState {
    /// The name documents show and stores keep (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "ENABLED",
            KeyState::Disabled => "DISABLED",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [KeyState::Enabled, KeyState::Disabled].into_iter().find(|state| state.as_str() == name)
    }
}

/// One of the two values of a key (NCP's `keyType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeySlot {
    Primary,
    Secondary,
}

/// One of the two key values of a key: only its keyed hash and, for recognition, its last
/// four characters are kept, with how many times the slot's value has been replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSecret {
    pub hash: SecretHash,
    pub last4: String,
    pub generation: u32,
}

/// A value that replaces a slot's: it becomes the slot's next generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSecret {
    pub hash: SecretHash,
    pub last4: String,
}

/// Which value of a key bought a token: its slot and the slot's generation then. Regenerating
/// the slot makes the reference stale, which ends the token's family at its next refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueRef {
    pub slot: KeySlot,
    pub generation: u32,
}

impl StoredSecret {
    /// A slot's first value.
    pub fn first(hash: SecretHash, last4: String) -> Self {
        Self { hash, last4, generation: 0 }
    }

    pub fn masked(&self) -> String {
        format!("*****{}", self.last4)
    }

    /// The slot after `new` replaced this value; `None` when the slot has no next generation (a
    /// generation that stood still would let the families of the replaced value live on).
    pub fn replaced_by(&self, new: &NewSecret) -> Option<Self> {
        Some(Self {
            hash: new.hash.clone(),
            last4: new.last4.clone(),
            generation: self.generation.checked_add(1)?,
        })
    }
}

/// Stores and backups keep it as serialised; a field this version does not know is refused, not
/// dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub api_key_id: ApiKeyId,
    pub domain_id: String,
    pub user_id: String,
    pub name: String,
    pub description: String,
    pub state: KeyState,
    pub primary: StoredSecret,
    pub secondary: StoredSecret,
    pub scope: Vec<String>,
    pub max_total_usage: u32,
    pub remaining_total_usage: u32,
    /// Set for keys that expire a fixed time after registration.
    pub validity_seconds: Option<u64>,
    /// Fixed at creation, or set at registration from `validity_seconds`.
    pub expires_at: Option<Timestamp>,
    pub registered_at: Option<Timestamp>,
    pub last_accessed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub modifier: String,
    pub domain_code: String,
}

/// An admin's change to a key: the fields that are `Some` replace the key's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub state: Option<KeyState>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub primary: Option<NewSecret>,
    pub secondary: Option<NewSecret>,
    pub modifier: String,
    pub modified_at: Timestamp,
}

impl KeyChange {
    pub fn by(modifier: &str, at: Timestamp) -> Self {
        Self {
            state: None,
            name: None,
            description: None,
            primary: None,
            secondary: None,
            modifier: modifier.to_owned(),
            modified_at: at,
        }
    }
}

/// Why a key may not be used for the operation asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Unknown, deleted, disabled, unregistered, or the secret does not match.
    NotFound,
    Expired,
    Exhausted,
    /// Refresh only: the value that bought the token has been regenerated since.
    Superseded,
}

impl ApiKey {
    pub fn secret_matches(&self, presented: &SecretHash) -> bool {
        self.primary.hash == *presented || self.secondary.hash == *presented
    }

    pub fn is_enabled(&self) -> bool {
        self.state == KeyState::Enabled
    }

    /// The condition of registration: the key exists, is enabled and the secret is one of its two.
    pub fn check_registrable(&self, presented: &SecretHash) -> Result<(), Rejection> {
        if self.is_enabled() && self.secret_matches(presented) { Ok(()) } else { Err(Rejection::NotFound) }
    }

    /// The condition of reading details: registrable and registered. Expiry and quota do not hide
    /// a key's details.
    pub fn check_readable(&self, presented: &SecretHash) -> Result<(), Rejection> {
        self.check_registrable(presented)?;
        if self.registered_at.is_none() {
            return Err(Rejection::NotFound);
        }
        Ok(())
    }

    /// The condition under which one unit of quota may be consumed. `presented` is `None` for a
    /// refresh, which proves possession of a token instead of the key value.
    pub fn check_mintable(&self, presented: Option<&SecretHash>, now: Timestamp) -> Result<(), Rejection> {
        let secret_ok = presented.is_none_or(|hash| self.secret_matches(hash));
        if !self.is_enabled() || !secret_ok || self.registered_at.is_none() {
            return Err(Rejection::NotFound);
        }
        match self.expires_at {
            Some(expires_at) if expires_at > now => {}
            _ => return Err(Rejection::Expired),
        }
        if self.remaining_total_usage == 0 {
            return Err(Rejection::Exhausted);
        }
        Ok(())
    }

    /// The value `presented` is, if it is one of the key's.
    pub fn value_ref(&self, presented: &SecretHash) -> Option<ValueRef> {
        [(KeySlot::Primary, &self.primary), (KeySlot::Secondary, &self.secondary)]
            .into_iter()
            .find(|(_, stored)| stored.hash == *presented)
            .map(|(slot, stored)| ValueRef { slot, generation: stored.generation })
    }

    /// The condition of a refresh: mintable without a secret, and the value that bought the
    /// token's family is still the slot's current one.
    pub fn check_refreshable(&self, bought_with: ValueRef, now: Timestamp) -> Result<(), Rejection> {
        self.check_mintable(None, now)?;
        let current = match bought_with.slot {
            KeySlot::Primary => self.primary.generation,
            KeySlot::Secondary => self.secondary.generation,
        };
        if current == bought_with.generation { Ok(()) } else { Err(Rejection::Superseded) }
    }

    /// First registration fixes `registered_at` and, for a validity-based key, `expires_at`;
    /// later registrations change nothing.
    pub fn register(&mut self, now: Timestamp) {
        if self.registered_at.is_some() {
            return;
        }
        self.registered_at = Some(now);
        if self.expires_at.is_none() {
            // A validity past what the clock holds (only an edited backup could give one) expires
            // at the clock's end, never wrapped around into the past.
            let validity = i64::try_from(self.validity_seconds.unwrap_or_default())
                .ok()
                .and_then(TimeDelta::try_seconds);
            let expires_at = validity.and_then(|validity| now.checked_add_signed(validity));
            self.expires_at = Some(expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC));
        }
    }

    /// The key after `change`; `None` when a slot it replaces has no next generation.
    pub fn changed(&self, change: &KeyChange) -> Option<ApiKey> {
        let mut key = self.clone();
        if let Some(state) = change.state {
            key.state = state;
        }
        if let Some(name) = &change.name {
            key.name = name.clone();
        }
        if let Some(description) = &change.description {
            key.description = description.clone();
        }
        if let Some(primary) = &change.primary {
            key.primary = self.primary.replaced_by(primary)?;
        }
        if let Some(secondary) = &change.secondary {
            key.secondary = self.secondary.replaced_by(secondary)?;
        }
        key.modifier = change.modifier.clone();
        key.modified_at = change.modified_at;
        Some(key)
    }

    /// Consumes one unit; the caller has checked [`ApiKey::check_mintable`].
    pub fn consume_unit(&mut self, now: Timestamp) {
        self.remaining_total_usage -= 1;
        self.last_accessed_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = ApiKeyId::generate();
        assert_eq!(ApiKeyId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.hex().len(), ID_HEX_LEN);
    }

    #[test]
    fn a_validity_past_the_clocks_range_expires_at_its_end_not_in_the_past() {
        use crate::key_value::{KeyValue, Pepper};
        let id = ApiKeyId::generate();
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let secret = |v: KeyValue| StoredSecret::first(pepper.hash(&v), v.last4());
        let now = now();
        for validity in [u64::MAX, i64::MAX as u64, 1 << 62] {
            let mut key = ApiKey {
                primary: secret(KeyValue::generate(&id)),
                secondary: secret(KeyValue::generate(&id)),
                api_key_id: id.clone(),
                domain_id: "domain-a".into(),
                user_id: "user".into(),
                name: "n".into(),
                description: String::new(),
                state: KeyState::Enabled,
                scope: vec!["read".into()],
                max_total_usage: 10,
                remaining_total_usage: 10,
                validity_seconds: Some(validity),
                expires_at: None,
                registered_at: None,
                last_accessed_at: None,
                created_at: now,
                modified_at: now,
                modifier: "AK".into(),
                domain_code: "PUB".into(),
            };
            key.register(now);
            assert_eq!(key.expires_at, Some(DateTime::<Utc>::MAX_UTC), "{validity}");
        }
    }

    #[test]
    fn ids_with_upper_case_or_wrong_length_are_rejected() {
        for bad in ["api-key-ABCDEF123456", "api-key-abc", "key-0123456789ab", "api-key-0123456789abc"] {
            assert_eq!(ApiKeyId::parse(bad), None, "{bad}");
        }
    }
}
