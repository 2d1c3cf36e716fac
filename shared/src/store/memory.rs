//! The embedded store of the local server and of the tests. One lock around all tables makes
//! every operation atomic, as DynamoDB's conditional writes and transactions are.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{RefreshMarker, Store, StoreError, WriteError};
use crate::model::{ApiKey, ApiKeyId, KeyChange, SecretHash, Timestamp};
use crate::replay::ReplayNonce;

#[derive(Default)]
struct Tables {
    keys: HashMap<ApiKeyId, ApiKey>,
    /// jti → the time the marker may be dropped.
    refresh_markers: Lapsing,
    revoked_families: Lapsing,
    nonces: Lapsing,
}

/// Entries that count only until their time, dropped in sweeps as DynamoDB's TTL drops items, so
/// a long-running local server does not grow with every refresh and admin write.
#[derive(Default)]
struct Lapsing {
    entries: HashMap<String, Timestamp>,
    sweep_at_len: usize,
}

impl Lapsing {
    const FIRST_SWEEP: usize = 1024;

    fn get(&self, id: &str) -> Option<&Timestamp> {
        self.entries.get(id)
    }

    /// Inserts an entry; once the map has doubled since the last sweep, drops what has lapsed.
    fn insert(&mut self, id: String, lapses_at: Timestamp, now: Timestamp) {
        self.entries.insert(id, lapses_at);
        if self.entries.len() >= self.sweep_at_len.max(Self::FIRST_SWEEP) {
            self.entries.retain(|_, at| *at > now);
            self.sweep_at_len = self.entries.len() * 2;
        }
    }
}

/// Expired entries count as absent, as items past their TTL must on DynamoDB (its TTL deletes
/// lazily, so the DynamoDB store checks the time in its conditions too).
fn is_live(expires_at: Option<&Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|t| *t > now)
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied write: every operation
        // checks all its conditions before it changes anything.
        self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change` to the key if `condition` holds, else hands back the key as it was.
    fn update_key_if(
        &self,
        id: &ApiKeyId,
        condition: impl FnOnce(&ApiKey) -> bool,
        change: impl FnOnce(&mut ApiKey),
    ) -> Result<ApiKey, WriteError> {
        let mut tables = self.tables();
        match tables.keys.get_mut(id) {
            Some(key) if condition(key) => {
                change(key);
                Ok(key.clone())
            }
            other => Err(WriteError::Rejected(other.map(|k| Box::new(k.clone())))),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError> {
        let mut tables = self.tables();
        let now = key.created_at;
        if let Some(nonce) = nonce
            && is_live(tables.nonces.get(&nonce.id), now)
        {
            return Err(WriteError::Replayed);
        }
        if tables.keys.contains_key(&key.api_key_id) {
            return Err(WriteError::AlreadyExists);
        }
        if let Some(nonce) = nonce {
            tables.nonces.insert(nonce.id.clone(), nonce.expires_at, now);
        }
        tables.keys.insert(key.api_key_id.clone(), key.clone());
        Ok(())
    }

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.tables().keys.get(id).cloned())
    }

    async fn list_keys(&self, domain_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> =
            self.tables().keys.values().filter(|key| key.domain_id == domain_id).cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.api_key_id).cmp(&(b.created_at, &b.api_key_id)));
        Ok(keys)
    }

    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        self.update_key_if(id, |key| key.check_registrable(secret).is_ok(), |key| key.register(now))
    }

    async fn consume_for_token(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        self.update_key_if(
            id,
            |key| key.check_mintable(Some(secret), now).is_ok(),
            |key| key.consume_unit(now),
        )
    }

    async fn consume_for_refresh(
        &self,
        id: &ApiKeyId,
        marker: &RefreshMarker,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let mut tables = self.tables();
        if is_live(tables.refresh_markers.get(&marker.jti), now) {
            return Err(WriteError::TokenReused);
        }
        if is_live(tables.revoked_families.get(&marker.family), now) {
            return Err(WriteError::FamilyRevoked);
        }
        let key = match tables.keys.get_mut(id) {
            Some(key) if key.check_refreshable(marker.bought_with, now).is_ok() => key,
            other => return Err(WriteError::Rejected(other.map(|k| Box::new(k.clone())))),
        };
        key.consume_unit(now);
        tables.refresh_markers.insert(marker.jti.clone(), marker.expires_at, now);
        Ok(())
    }

    async fn change_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, WriteError> {
        let mut tables = self.tables();
        let now = change.modified_at;
        if is_live(tables.nonces.get(&nonce.id), now) {
            return Err(WriteError::Replayed);
        }
        let key = match tables.keys.get_mut(id) {
            Some(key) if key.domain_id == domain_id => key,
            _ => return Err(WriteError::Rejected(None)),
        };
        key.apply(change);
        let key = key.clone();
        tables.nonces.insert(nonce.id.clone(), nonce.expires_at, now);
        Ok(key)
    }

    async fn delete_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let mut tables = self.tables();
        if is_live(tables.nonces.get(&nonce.id), now) {
            return Err(WriteError::Replayed);
        }
        if tables.keys.get(id).is_none_or(|key| key.domain_id != domain_id) {
            return Err(WriteError::Rejected(None));
        }
        tables.keys.remove(id);
        tables.nonces.insert(nonce.id.clone(), nonce.expires_at, now);
        Ok(())
    }

    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.tables().revoked_families.insert(family.to_owned(), expires_at, now);
        Ok(())
    }
}
