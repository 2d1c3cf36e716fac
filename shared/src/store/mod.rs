//! Persistence. Each method is one conditional operation (one round trip on DynamoDB); when its
//! condition fails it hands back the item as it was, so the caller can say precisely why
//! without a second read.

mod backup;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use async_trait::async_trait;

pub use backup::{Imported, Record};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::model::{ApiKey, ApiKeyId, KeyChange, KeyState, SecretHash, Timestamp, ValueRef};
use crate::replay::ReplayNonce;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A conditional write did not happen.
#[derive(Debug)]
pub enum WriteError {
    /// The key's condition failed; this is the key as it was (`None`: no such key).
    Rejected(Option<Box<ApiKey>>),
    /// Refresh only: this token was refreshed before.
    TokenReused,
    /// Refresh only: this token's family has been revoked.
    FamilyRevoked,
    /// Create only: the id is taken.
    AlreadyExists,
    /// A state-changing admin request was already accepted once (by another handling of it: an
    /// earlier attempt of the same handling counts as this write, applied).
    Replayed,
    Store(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(err: StoreError) -> Self {
        WriteError::Store(err)
    }
}

/// The single-use marker a refresh leaves behind for the token it consumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshMarker {
    pub jti: String,
    pub family: String,
    /// The key value that bought the family: the refresh needs it to be still current.
    pub bought_with: ValueRef,
    /// After this the token could not be refreshed anyway, so the marker may go.
    pub expires_at: Timestamp,
}

/// What the list index holds of a key: the fields that only admin requests change. Not the
/// counters a mint changes (so a mint never writes the index), nor the values' hashes. A list
/// filters and sorts these, then reads the keys of the one page it returns. (It reads from a
/// stored key's JSON: the same field names.)
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct KeyListing {
    pub api_key_id: ApiKeyId,
    pub domain_id: String,
    pub user_id: String,
    pub name: String,
    pub description: String,
    pub state: KeyState,
    pub scope: Vec<String>,
    pub max_total_usage: u32,
    pub validity_seconds: Option<u64>,
    pub expires_at: Option<Timestamp>,
    pub registered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<&ApiKey> for KeyListing {
    fn from(key: &ApiKey) -> Self {
        Self {
            api_key_id: key.api_key_id.clone(),
            domain_id: key.domain_id.clone(),
            user_id: key.user_id.clone(),
            name: key.name.clone(),
            description: key.description.clone(),
            state: key.state,
            scope: key.scope.clone(),
            max_total_usage: key.max_total_usage,
            validity_seconds: key.validity_seconds,
            expires_at: key.expires_at,
            registered_at: key.registered_at,
            created_at: key.created_at,
        }
    }
}

/// A listing's text fields that a store can compare exactly (DynamoDB: in a `FilterExpression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListedField {
    ApiKeyId,
    UserId,
    Name,
    State,
}

/// Conditions a store tests before it returns listings: each field must equal one of its
/// values. The query engine tests every condition again, so this only saves carrying listings
/// it would drop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingFilter {
    pub equal: Vec<(ListedField, Vec<String>)>,
}

impl ListingFilter {
    pub fn matches(&self, listing: &KeyListing) -> bool {
        self.equal.iter().all(|(field, values)| {
            let value = match field {
                ListedField::ApiKeyId => listing.api_key_id.as_str(),
                ListedField::UserId => &listing.user_id,
                ListedField::Name => &listing.name,
                ListedField::State => listing.state.as_str(),
            };
            values.iter().any(|v| v == value)
        })
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Puts a new key if its id is free, together with the request's replay nonce if any.
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError>;

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError>;

    /// The keys with these ids, in this order; ids with no key are left out.
    async fn get_keys(&self, ids: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError>;

    /// The ids of a domain's keys, oldest first (by `created_at`, then id).
    async fn list_key_ids(&self, domain_id: &str) -> Result<Vec<ApiKeyId>, StoreError>;

    /// How many keys a domain has.
    async fn count_keys(&self, domain_id: &str) -> Result<usize, StoreError> {
        Ok(self.list_key_ids(domain_id).await?.len())
    }

    /// The listings of a domain's keys that `filter` selects, oldest first.
    async fn list_listings(
        &self,
        domain_id: &str,
        filter: &ListingFilter,
    ) -> Result<Vec<KeyListing>, StoreError> {
        let keys = self.list_keys(domain_id).await?;
        Ok(keys.iter().map(KeyListing::from).filter(|listing| filter.matches(listing)).collect())
    }

    /// Every key of a domain, oldest first (by `created_at`, then id): what a query on the
    /// counters needs, and the one list whose cost grows with the domain.
    async fn list_keys(&self, domain_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let ids = self.list_key_ids(domain_id).await?;
        self.get_keys(&ids).await
    }

    /// Registers the key ([`ApiKey::register`]) if [`ApiKey::check_registrable`] holds.
    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError>;

    /// Consumes one unit if [`ApiKey::check_mintable`] holds with the presented secret.
    async fn consume_for_token(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError>;

    /// All or nothing: stores the marker if it is new, checks the family is not revoked, and
    /// consumes one unit if [`ApiKey::check_refreshable`] holds for the value that bought it. (DynamoDB's
    /// transactions return no item, so neither does this.)
    async fn consume_for_refresh(
        &self,
        id: &ApiKeyId,
        marker: &RefreshMarker,
        now: Timestamp,
    ) -> Result<(), WriteError>;

    /// Applies an admin change to a key of `domain_id`, with the request's replay nonce, all or
    /// nothing. A key that is missing or of another domain is `Rejected(None)`.
    async fn change_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, WriteError>;

    /// Deletes a key of `domain_id`, with the request's replay nonce, all or nothing.
    async fn delete_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError>;

    /// Spends the signature of a state-changing request whose write was refused or never
    /// attempted: puts its replay nonce alone, unless a live one is there. `Replayed` when another
    /// handling of the request stored it; done when this handling did (its write was applied).
    async fn spend_nonce(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), WriteError>;

    /// Revokes a token family until `expires_at`, when no token of it can be refreshed anyway.
    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Every stored item (lapsed ones not yet swept included), in [`Record::sort`]'s order.
    async fn export(&self) -> Result<Vec<Record>, StoreError>;

    /// Whether the store holds nothing at all: an import into a store in use must say it merges.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Puts each record whose item is not there yet and keeps the ones that are.
    async fn import(&self, records: &[Record]) -> Result<Imported, StoreError>;
}
