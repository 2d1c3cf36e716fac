//! The embedded store of the local server and of the tests. One lock around all tables makes
//! every operation atomic, as DynamoDB's conditional writes and transactions are.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Imported, Record, RefreshMarker, Store, StoreError, WriteError};
use crate::model::{ApiKey, ApiKeyId, KeyChange, SecretHash, Timestamp};
use crate::replay::{ReplayNonce, Seen};

#[derive(Default)]
struct Tables {
    keys: HashMap<ApiKeyId, ApiKey>,
    /// jti → the time the marker may be dropped.
    refresh_markers: Lapsing,
    revoked_families: Lapsing,
    /// Nonce id → the handled request that stored it.
    nonces: Lapsing<String>,
}

/// Entries that count only until their time, dropped in sweeps as DynamoDB's TTL drops items, so
/// a long-running local server does not grow with every refresh and admin write.
struct Lapsing<T = ()> {
    entries: HashMap<String, (Timestamp, T)>,
    sweep_at_len: usize,
}

impl<T> Default for Lapsing<T> {
    fn default() -> Self {
        Self { entries: HashMap::new(), sweep_at_len: 0 }
    }
}

impl<T> Lapsing<T> {
    const FIRST_SWEEP: usize = 1024;

    /// The entry's value while it has not lapsed. Lapsed entries count as absent, as items past
    /// their TTL must on DynamoDB (its TTL deletes lazily, so the DynamoDB store checks the time
    /// in its conditions too).
    fn live(&self, id: &str, now: Timestamp) -> Option<&T> {
        self.entries.get(id).filter(|(lapses_at, _)| *lapses_at > now).map(|(_, value)| value)
    }

    /// Adds an entry unless one is there; says whether it did.
    fn add(&mut self, id: &str, lapses_at: Timestamp, value: T) -> bool {
        if self.entries.contains_key(id) {
            return false;
        }
        self.entries.insert(id.to_owned(), (lapses_at, value));
        true
    }

    /// Inserts an entry; once the map has doubled since the last sweep, drops what has lapsed.
    fn insert(&mut self, id: String, lapses_at: Timestamp, value: T, now: Timestamp) {
        self.entries.insert(id, (lapses_at, value));
        if self.entries.len() >= self.sweep_at_len.max(Self::FIRST_SWEEP) {
            self.entries.retain(|_, (at, _)| *at > now);
            self.sweep_at_len = self.entries.len() * 2;
        }
    }
}

impl Tables {
    fn seen(&self, nonce: &ReplayNonce, now: Timestamp) -> Seen {
        nonce.seen(self.nonces.live(&nonce.id, now).map(String::as_str))
    }

    fn keep(&mut self, nonce: &ReplayNonce, now: Timestamp) {
        self.nonces.insert(nonce.id.clone(), nonce.expires_at, nonce.request.clone(), now);
    }
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
        match nonce.map(|nonce| tables.seen(nonce, now)) {
            Some(Seen::OurOwn) => return Ok(()),
            Some(Seen::Replayed) => return Err(WriteError::Replayed),
            Some(Seen::New) | None => {}
        }
        if tables.keys.contains_key(&key.api_key_id) {
            return Err(WriteError::AlreadyExists);
        }
        if let Some(nonce) = nonce {
            tables.keep(nonce, now);
        }
        tables.keys.insert(key.api_key_id.clone(), key.clone());
        Ok(())
    }

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.tables().keys.get(id).cloned())
    }

    async fn get_keys(&self, ids: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError> {
        let tables = self.tables();
        Ok(ids.iter().filter_map(|id| tables.keys.get(id).cloned()).collect())
    }

    async fn list_key_ids(&self, domain_id: &str) -> Result<Vec<ApiKeyId>, StoreError> {
        Ok(self.list_keys(domain_id).await?.into_iter().map(|key| key.api_key_id).collect())
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
        if tables.refresh_markers.live(&marker.jti, now).is_some() {
            return Err(WriteError::TokenReused);
        }
        if tables.revoked_families.live(&marker.family, now).is_some() {
            return Err(WriteError::FamilyRevoked);
        }
        let key = match tables.keys.get_mut(id) {
            Some(key) if key.check_refreshable(marker.bought_with, now).is_ok() => key,
            other => return Err(WriteError::Rejected(other.map(|k| Box::new(k.clone())))),
        };
        key.consume_unit(now);
        tables.refresh_markers.insert(marker.jti.clone(), marker.expires_at, (), now);
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
        let seen = tables.seen(nonce, now);
        if let Seen::Replayed = seen {
            return Err(WriteError::Replayed);
        }
        let key = match tables.keys.get_mut(id) {
            Some(key) if key.domain_id == domain_id => key,
            _ => return Err(WriteError::Rejected(None)),
        };
        if let Seen::New = seen {
            *key = key.changed(change).ok_or(WriteError::Rejected(None))?;
        }
        let key = key.clone();
        tables.keep(nonce, now);
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
        match tables.seen(nonce, now) {
            Seen::OurOwn => return Ok(()),
            Seen::Replayed => return Err(WriteError::Replayed),
            Seen::New => {}
        }
        if tables.keys.get(id).is_none_or(|key| key.domain_id != domain_id) {
            return Err(WriteError::Rejected(None));
        }
        tables.keys.remove(id);
        tables.keep(nonce, now);
        Ok(())
    }

    async fn spend_nonce(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), WriteError> {
        let mut tables = self.tables();
        match tables.seen(nonce, now) {
            Seen::OurOwn => Ok(()),
            Seen::Replayed => Err(WriteError::Replayed),
            Seen::New => {
                tables.keep(nonce, now);
                Ok(())
            }
        }
    }

    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.tables().revoked_families.insert(family.to_owned(), expires_at, (), now);
        Ok(())
    }

    async fn export(&self) -> Result<Vec<Record>, StoreError> {
        let tables = self.tables();
        let mut records: Vec<Record> =
            tables.keys.values().map(|key| Record::Key(Box::new(key.clone()))).collect();
        let markers = tables.refresh_markers.entries.iter();
        records.extend(
            markers.map(|(jti, (at, ()))| Record::RefreshMarker { jti: jti.clone(), lapses_at: *at }),
        );
        let families = tables.revoked_families.entries.iter();
        records.extend(
            families
                .map(|(family, (at, ()))| Record::RevokedFamily { family: family.clone(), lapses_at: *at }),
        );
        records.extend(tables.nonces.entries.iter().map(|(id, (at, request))| Record::ReplayNonce {
            id: id.clone(),
            request: request.clone(),
            lapses_at: *at,
        }));
        Record::sort(&mut records);
        Ok(records)
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let tables = self.tables();
        Ok(tables.keys.is_empty()
            && tables.refresh_markers.entries.is_empty()
            && tables.revoked_families.entries.is_empty()
            && tables.nonces.entries.is_empty())
    }

    async fn import(&self, records: &[Record]) -> Result<Imported, StoreError> {
        let mut tables = self.tables();
        let mut imported = Imported::default();
        for record in records {
            let added = match record {
                Record::Key(key) => match tables.keys.entry(key.api_key_id.clone()) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(ApiKey::clone(key));
                        true
                    }
                },
                Record::RefreshMarker { jti, lapses_at } => tables.refresh_markers.add(jti, *lapses_at, ()),
                Record::RevokedFamily { family, lapses_at } => {
                    tables.revoked_families.add(family, *lapses_at, ())
                }
                Record::ReplayNonce { id, request, lapses_at } => {
                    tables.nonces.add(id, *lapses_at, request.clone())
                }
            };
            imported.count(added);
        }
        Ok(imported)
    }
}
