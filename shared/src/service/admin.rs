//! The admin surfaces' use cases (SpaceONE and NCP alike) on one key: create, read, change, rotate
//! and delete the keys of the caller's domain (the reads of many keys are in [`super::search`]).
//! Each checks its input against [`rules`] first, so the rules hold whichever surface a request
//! came through.

use super::{Keygate, rules};
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::model::{
    ApiKey, ApiKeyId, Caller, KeyChange, KeySlot, KeyState, NewSecret, StoredSecret, Timestamp,
};
use crate::replay::ReplayNonce;
use crate::store::WriteError;

const DEFAULT_DOMAIN_CODE: &str = "PUB";
pub const REPLAYED: &str = "request already accepted once; sign each request with a new timestamp";

/// An admin's request for a new key; `None` means "the default".
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub user_id: String,
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub scope: Option<Vec<String>>,
    pub max_total_usage: Option<i64>,
    pub validity_seconds: Option<i64>,
    pub expires_at: Option<Timestamp>,
}

/// A new key with its two values, which are shown this once and never again.
pub struct CreatedKey {
    pub key: ApiKey,
    pub primary: KeyValue,
    pub secondary: KeyValue,
}

/// The key an admin request names: its id and, where a surface lets the request repeat it, the
/// domain the request says the key is in, which must be the caller's.
#[derive(Clone, Debug, Default)]
pub struct KeyTarget {
    pub id: String,
    pub domain_id: Option<String>,
}

impl KeyTarget {
    pub fn id(id: impl Into<String>) -> Self {
        Self { id: id.into(), domain_id: None }
    }
}

/// An admin's change to a key's details; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl Keygate {
    pub async fn create_key(
        &self,
        caller: &Caller,
        request: NewKey,
        nonce: Option<&ReplayNonce>,
    ) -> Result<CreatedKey, Error> {
        let now = self.now();
        rules::own_domain(caller, request.domain_id.as_deref())?;
        let user_id = rules::user_id(request.user_id)?;
        let id = ApiKeyId::generate();
        let name = match request.name {
            Some(name) => rules::name(name)?,
            None => id.to_string(),
        };
        let description = rules::description(request.description.unwrap_or_default())?;
        let scope = rules::scope(request.scope.unwrap_or_default())?;
        let max_total_usage = match request.max_total_usage {
            None => self.key_defaults.max_total_usage,
            Some(n) => rules::max_total_usage(n)?,
        };
        let (validity_seconds, expires_at) = rules::expiry(
            request.validity_seconds,
            request.expires_at,
            self.key_defaults.validity_seconds,
            now,
        )?;

        let pepper = self.pepper()?;
        let primary = KeyValue::generate(&id);
        let secondary = KeyValue::generate(&id);
        let key = ApiKey {
            primary: StoredSecret::first(pepper.hash(&primary), primary.last4()),
            secondary: StoredSecret::first(pepper.hash(&secondary), secondary.last4()),
            api_key_id: id,
            domain_id: caller.domain_id.clone(),
            user_id,
            name,
            description,
            state: KeyState::Enabled,
            scope,
            max_total_usage,
            remaining_total_usage: max_total_usage,
            validity_seconds,
            expires_at,
            registered_at: None,
            last_accessed_at: None,
            created_at: now,
            modified_at: now,
            modifier: caller.access_key.clone(),
            domain_code: DEFAULT_DOMAIN_CODE.into(),
        };
        match self.store.create_key(&key, nonce).await {
            Ok(()) => Ok(CreatedKey { key, primary, secondary }),
            Err(WriteError::Replayed) => Err(replayed()),
            // 48 random bits collide about once in 16 million keys of one table; say so rather
            // than overwrite, and let the caller retry.
            Err(WriteError::AlreadyExists) => Err(Error::Conflict),
            Err(WriteError::Store(err)) => Err(err.into()),
            Err(other) => Err(Error::Internal(format!("unexpected create outcome {other:?}"))),
        }
    }

    /// A key of the caller's domain; any other id, well-formed or not, is unknown. Naming another
    /// domain is refused.
    pub async fn get_key(&self, caller: &Caller, target: &KeyTarget) -> Result<ApiKey, Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        match self.store.get_key(&id).await? {
            Some(key) if key.domain_id == caller.domain_id => Ok(key),
            _ => Err(Error::NotFound),
        }
    }

    pub async fn set_state(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        state: KeyState,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let change = KeyChange { state: Some(state), ..KeyChange::by(&caller.access_key, self.now()) };
        self.change(caller, target, &change, nonce).await
    }

    /// Renames, redescribes, enables or disables a key (NCP's PUT).
    pub async fn update_key(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        update: KeyUpdate,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let change = KeyChange {
            name: update.name.map(rules::name).transpose()?,
            description: update.description.map(rules::description).transpose()?,
            state: update.enabled.map(|on| if on { KeyState::Enabled } else { KeyState::Disabled }),
            ..KeyChange::by(&caller.access_key, self.now())
        };
        self.change(caller, target, &change, nonce).await
    }

    /// Replaces one of a key's two values; the other keeps working, so a customer can move to the
    /// new value without a failed request. The new value is returned this once.
    pub async fn regenerate(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        slot: KeySlot,
        nonce: &ReplayNonce,
    ) -> Result<(ApiKey, KeyValue), Error> {
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        let value = KeyValue::generate(&id);
        let mut change = KeyChange::by(&caller.access_key, self.now());
        match slot {
            KeySlot::Primary => change.primary = Some(self.new_secret(&value)?),
            KeySlot::Secondary => change.secondary = Some(self.new_secret(&value)?),
        }
        Ok((self.change(caller, target, &change, nonce).await?, value))
    }

    /// Deletes a key of the caller's domain: the client API refuses it from this moment.
    pub async fn delete_key(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        nonce: &ReplayNonce,
    ) -> Result<(), Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        self.store.delete_key(&id, &caller.domain_id, nonce, self.now()).await.map_err(admin_write_error)
    }

    /// Applies an admin change to a key of the caller's domain.
    async fn change(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        self.store.change_key(&id, &caller.domain_id, change, nonce).await.map_err(admin_write_error)
    }

    /// Runs the work of a verified state-changing request, whose signature is spent whatever the
    /// answer: when the work ends in a refusal (its write refused or never attempted), the nonce
    /// is put on its own before the refusal is answered, so the captured request cannot be sent
    /// again with another body. A refusal whose signature could not be spent is 503: answering
    /// it would leave the signature usable.
    pub async fn spending_signature<T>(
        &self,
        nonce: &ReplayNonce,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match work.await {
            Ok(done) => Ok(done),
            // The only signature refusal past the verifier: the nonce is already someone's.
            Err(replay @ Error::Unauthenticated(_)) => Err(replay),
            Err(refusal) => Err(self.spend_signature(nonce, refusal).await),
        }
    }

    /// Spends the signature of a verified state-changing request refused with `refusal` (its
    /// write refused or never attempted), and answers what to say: the refusal, a replay when
    /// another handling spent the signature first, or 503 when it could not be spent.
    pub async fn spend_signature(&self, nonce: &ReplayNonce, refusal: Error) -> Error {
        match self.store.spend_nonce(nonce, self.now()).await {
            Ok(()) => refusal,
            Err(WriteError::Replayed) => replayed(),
            Err(err) => Error::Unavailable(format!("signature not spent after \"{refusal}\": {err:?}")),
        }
    }

    /// What the store keeps of a value that replaces a slot's.
    fn new_secret(&self, value: &KeyValue) -> Result<NewSecret, Error> {
        Ok(NewSecret { hash: self.pepper()?.hash(value), last4: value.last4() })
    }
}

/// Each signature is accepted once: two writes signed in the same millisecond share one.
fn replayed() -> Error {
    Error::Unauthenticated(REPLAYED.into())
}

/// A key-scoped admin write that did not happen: unknown or another domain's key is not found.
fn admin_write_error(err: WriteError) -> Error {
    match err {
        WriteError::Rejected(_) => Error::NotFound,
        WriteError::Replayed => replayed(),
        WriteError::Store(err) => err.into(),
        other => Error::Internal(format!("unexpected admin write outcome {other:?}")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, PEPPER, SIGNING_KEY};
    use crate::store::MemoryStore;
    use crate::tokens::SigningAlgorithm;

    pub(crate) fn keygate() -> Keygate {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let config = Config::from_lookup(|name| match name {
            PEPPER => Some("a-pepper-of-enough-bytes".into()),
            SIGNING_KEY => Some(pem.clone()),
            _ => None,
        })
        .expect("configuration");
        // Each reading is a millisecond later, so keys created one after another sort in order.
        let ticks = std::sync::atomic::AtomicI64::new(1_764_000_000_000);
        Keygate::new(config, Arc::new(MemoryStore::new())).with_clock(move || {
            let millis = ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Timestamp::from_timestamp_millis(millis).expect("in range")
        })
    }

    pub(crate) fn caller(domain: &str) -> Caller {
        Caller { domain_id: domain.into(), access_key: format!("AK-{domain}") }
    }

    pub(crate) async fn create(app: &Keygate, caller: &Caller, name: &str) -> ApiKey {
        let new_key = NewKey { user_id: "user-1".into(), name: Some(name.into()), ..NewKey::default() };
        app.create_key(caller, new_key, None).await.expect("created").key
    }

    fn nonce(id: &str, app: &Keygate) -> ReplayNonce {
        ReplayNonce::new(id, app.now())
    }

    #[tokio::test]
    async fn another_domains_key_is_not_found_to_every_key_scoped_use_case() {
        let app = keygate();
        let theirs = create(&app, &caller("b"), "theirs").await;
        let target = KeyTarget::id(theirs.api_key_id.as_str());
        let me = caller("a");
        assert!(matches!(app.get_key(&me, &target).await, Err(Error::NotFound)));
        let disabled = app.set_state(&me, &target, KeyState::Disabled, &nonce("1", &app)).await;
        assert!(matches!(disabled, Err(Error::NotFound)));
        let rotated = app.regenerate(&me, &target, KeySlot::Primary, &nonce("2", &app)).await;
        assert!(matches!(rotated, Err(Error::NotFound)));
        assert!(matches!(app.delete_key(&me, &target, &nonce("3", &app)).await, Err(Error::NotFound)));
        assert_eq!(app.get_key(&caller("b"), &target).await.unwrap(), theirs, "unchanged");
    }

    #[tokio::test]
    async fn an_update_is_checked_before_it_reaches_the_store_and_records_who_made_it() {
        let app = keygate();
        let key = create(&app, &caller("a"), "before").await;
        let target = KeyTarget::id(key.api_key_id.as_str());
        let blank_name = KeyUpdate { name: Some(" ".into()), ..KeyUpdate::default() };
        let refused = app.update_key(&caller("a"), &target, blank_name, &nonce("1", &app)).await;
        assert!(matches!(refused, Err(Error::MissingParameter(field)) if field == "name"));

        let update = KeyUpdate { name: Some("after".into()), enabled: Some(false), ..KeyUpdate::default() };
        let changed = app.update_key(&caller("a"), &target, update, &nonce("2", &app)).await.unwrap();
        assert_eq!((changed.name.as_str(), changed.state), ("after", KeyState::Disabled));
        assert_eq!(changed.description, key.description, "left as it was");
        assert_eq!(changed.modifier, "AK-a");
        let replayed = app.update_key(&caller("a"), &target, KeyUpdate::default(), &nonce("2", &app)).await;
        assert!(matches!(replayed, Err(Error::Unauthenticated(_))));
    }
}
