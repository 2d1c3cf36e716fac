//! The use cases: what each route does, independent of how the request arrived.

use std::sync::Arc;

use chrono::TimeDelta;
use jsonwebtoken::jwk::JwkSet;

use crate::config::{Config, KeyDefaults};
use crate::error::Error;
use crate::key_value::{KeyValue, Pepper};
use crate::model::{self, ApiKey, ApiKeyId, KeyChange, KeyState, StoredSecret, Timestamp};
use crate::signature::{Caller, Credentials, ReplayNonce};
use crate::store::{RefreshMarker, Store, WriteError};
use crate::tokens::{IssuedToken, TokenError, TokenService, TokenSubject};

pub const MAX_TOTAL_USAGE: u32 = i32::MAX as u32;
const NAME_MAX_CHARS: usize = 64;
const DESCRIPTION_MAX_CHARS: usize = 256;
const USER_ID_MAX_CHARS: usize = 128;
const SCOPE_MAX_ENTRIES: usize = 64;
const SCOPE_ENTRY_MAX_CHARS: usize = 128;
/// About a century: anything longer is a typo, and it keeps every expiry representable.
const VALIDITY_MAX_SECONDS: i64 = 100 * 365 * 24 * 3600;
const DEFAULT_DOMAIN_CODE: &str = "PUB";

type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub struct Keygate {
    store: Arc<dyn Store>,
    pepper: Pepper,
    tokens: TokenService,
    credentials: Credentials,
    key_defaults: KeyDefaults,
    clock: Clock,
}

/// One of the two values of a key (NCP's `keyType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeySlot {
    Primary,
    Secondary,
}

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

impl Keygate {
    /// The service as a Lambda or the local server builds it at start: configuration from the
    /// environment, and the store it names.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(Config::from_env()?, crate::store::from_env().await))
    }

    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            pepper: config.pepper,
            tokens: config.tokens,
            credentials: config.credentials,
            key_defaults: config.key_defaults,
            clock: Arc::new(model::now),
        }
    }

    /// Replaces the clock, so tests can move time instead of waiting for it.
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn jwks(&self) -> &JwkSet {
        self.tokens.jwks()
    }

    /// A value that is not a well-formed key is unknown, and costs no store call.
    fn parse_key(&self, value: &str) -> Result<(ApiKeyId, crate::key_value::SecretHash), Error> {
        let value = KeyValue::parse(value).ok_or(Error::NotFound)?;
        Ok((value.api_key_id(), self.pepper.hash(&value)))
    }

    pub async fn register(&self, key_value: &str) -> Result<ApiKey, Error> {
        let (id, secret) = self.parse_key(key_value)?;
        self.store
            .register_key(&id, &secret, self.now())
            .await
            .map_err(|err| self.explain(err, |key| key.check_registrable(&secret)))
    }

    pub async fn detail(&self, key_value: &str) -> Result<ApiKey, Error> {
        let (id, secret) = self.parse_key(key_value)?;
        let key = self.store.get_key(&id).await?.ok_or(Error::NotFound)?;
        key.check_readable(&secret)?;
        Ok(key)
    }

    pub async fn issue_token(&self, key_value: &str) -> Result<IssuedToken, Error> {
        let (id, secret) = self.parse_key(key_value)?;
        let now = self.now();
        let key = self
            .store
            .consume_for_token(&id, &secret, now)
            .await
            .map_err(|err| self.explain(err, |key| key.check_mintable(Some(&secret), now)))?;
        let subject = TokenSubject::of_key(&key)
            .ok_or_else(|| Error::Internal("minted for an unregistered key".into()))?;
        self.tokens.mint(&subject, None, now).map_err(Error::Internal)
    }

    /// Exchanges a token for a new one of the same family. A second refresh of one token is
    /// taken as theft (RFC 9700, refresh token reuse): the whole family is revoked.
    pub async fn refresh(&self, bearer: &str) -> Result<IssuedToken, Error> {
        let now = self.now();
        let claims = self.tokens.verify_for_refresh(bearer, now).map_err(|err| match err {
            TokenError::Malformed => Error::InvalidArgument("bearer token is not a JWT".into()),
            TokenError::Rejected => Error::InvalidToken,
        })?;
        let id = ApiKeyId::parse(&claims.sub).ok_or(Error::InvalidToken)?;
        let subject = TokenSubject::of_claims(&claims).ok_or(Error::InvalidToken)?;
        let grace = self.tokens.refresh_grace();
        let marker = RefreshMarker {
            jti: claims.jti.clone(),
            family: claims.fam.clone(),
            expires_at: timestamp_from_seconds(claims.exp) + grace,
        };
        match self.store.consume_for_refresh(&id, &marker, now).await {
            Ok(()) => self.tokens.mint(&subject, Some(&claims.fam), now).map_err(Error::Internal),
            Err(WriteError::TokenReused) => {
                // Every token of the family expires within one lifetime from now, and can be
                // refreshed for one grace after that: the revocation need not outlive them.
                let until = now + self.tokens.ttl() + grace;
                self.store.revoke_family(&claims.fam, until, now).await?;
                tracing::warn!(api_key_id = %id, "refresh token reused; family revoked");
                Err(Error::TokenReused)
            }
            Err(WriteError::FamilyRevoked) => Err(Error::TokenReused),
            Err(err) => Err(self.explain(err, |key| key.check_mintable(None, now))),
        }
    }

    pub async fn create_key(
        &self,
        caller: &Caller,
        request: NewKey,
        nonce: Option<&ReplayNonce>,
    ) -> Result<CreatedKey, Error> {
        let now = self.now();
        let domain_id = match request.domain_id {
            Some(domain) if domain != caller.domain_id => {
                return Err(Error::PermissionDenied("domain_id is not the caller's domain".into()));
            }
            _ => caller.domain_id.clone(),
        };
        let user_id = bounded_text("user_id", request.user_id, 1, USER_ID_MAX_CHARS)?;
        let id = ApiKeyId::generate();
        let name = match request.name {
            Some(name) => bounded_text("name", name, 1, NAME_MAX_CHARS)?,
            None => id.to_string(),
        };
        let description =
            bounded_text("description", request.description.unwrap_or_default(), 0, DESCRIPTION_MAX_CHARS)?;
        let scope = validate_scope(request.scope.unwrap_or_default())?;
        let max_total_usage = match request.max_total_usage {
            None => self.key_defaults.max_total_usage,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_TOTAL_USAGE).contains(n))
                .ok_or_else(|| invalid("max_total_usage must be between 1 and 2147483647"))?,
        };
        let (validity_seconds, expires_at) = match (request.validity_seconds, request.expires_at) {
            (Some(_), Some(_)) => return Err(invalid("validity_seconds and expires_at are exclusive")),
            (Some(seconds), None) if (1..=VALIDITY_MAX_SECONDS).contains(&seconds) => {
                (Some(seconds as u64), None)
            }
            (Some(_), None) => return Err(invalid("validity_seconds must be between 1 and 3153600000")),
            (None, Some(at)) if at <= now => return Err(invalid("expires_at is in the past")),
            (None, Some(at)) if at > now + TimeDelta::seconds(VALIDITY_MAX_SECONDS) => {
                return Err(invalid("expires_at is more than 100 years away"));
            }
            (None, Some(at)) => (None, Some(at)),
            (None, None) => (Some(self.key_defaults.validity_seconds), None),
        };

        let primary = KeyValue::generate(&id);
        let secondary = KeyValue::generate(&id);
        let stored = |value: &KeyValue| StoredSecret { hash: self.pepper.hash(value), last4: value.last4() };
        let key = ApiKey {
            primary: stored(&primary),
            secondary: stored(&secondary),
            api_key_id: id,
            domain_id,
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

    /// A key of the caller's domain; any other id, well-formed or not, is unknown.
    pub async fn key_of(&self, caller: &Caller, id: &str) -> Result<ApiKey, Error> {
        let id = ApiKeyId::parse(id).ok_or(Error::NotFound)?;
        match self.store.get_key(&id).await? {
            Some(key) if key.domain_id == caller.domain_id => Ok(key),
            _ => Err(Error::NotFound),
        }
    }

    /// Every key of the caller's domain, oldest first.
    pub async fn keys_of(&self, caller: &Caller) -> Result<Vec<ApiKey>, Error> {
        Ok(self.store.list_keys(&caller.domain_id).await?)
    }

    pub async fn set_state(
        &self,
        caller: &Caller,
        id: &str,
        state: KeyState,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let change = KeyChange { state: Some(state), ..KeyChange::by(&caller.access_key, self.now()) };
        self.change(caller, id, &change, nonce).await
    }

    /// Applies an admin change to a key of the caller's domain.
    pub async fn change(
        &self,
        caller: &Caller,
        id: &str,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let id = ApiKeyId::parse(id).ok_or(Error::NotFound)?;
        self.store.change_key(&id, &caller.domain_id, change, nonce).await.map_err(admin_write_error)
    }

    /// Replaces one of a key's two values; the other keeps working, so a customer can move to the
    /// new value without a failed request. The new value is returned this once.
    pub async fn regenerate(
        &self,
        caller: &Caller,
        id: &str,
        slot: KeySlot,
        nonce: &ReplayNonce,
    ) -> Result<(ApiKey, KeyValue), Error> {
        let key_id = ApiKeyId::parse(id).ok_or(Error::NotFound)?;
        let value = KeyValue::generate(&key_id);
        let secret = StoredSecret { hash: self.pepper.hash(&value), last4: value.last4() };
        let mut change = KeyChange::by(&caller.access_key, self.now());
        match slot {
            KeySlot::Primary => change.primary = Some(secret),
            KeySlot::Secondary => change.secondary = Some(secret),
        }
        Ok((self.change(caller, id, &change, nonce).await?, value))
    }

    /// Checks a name and description an admin gives a key.
    pub fn check_details(
        name: Option<String>,
        description: Option<String>,
    ) -> Result<(Option<String>, Option<String>), Error> {
        let name = name.map(|n| bounded_text("name", n, 1, NAME_MAX_CHARS)).transpose()?;
        let description =
            description.map(|d| bounded_text("description", d, 0, DESCRIPTION_MAX_CHARS)).transpose()?;
        Ok((name, description))
    }

    /// Deletes a key of the caller's domain: the client API refuses it from this moment.
    pub async fn delete_key(&self, caller: &Caller, id: &str, nonce: &ReplayNonce) -> Result<(), Error> {
        let id = ApiKeyId::parse(id).ok_or(Error::NotFound)?;
        self.store.delete_key(&id, &caller.domain_id, nonce, self.now()).await.map_err(admin_write_error)
    }

    /// Turns a failed conditional write into the precise error, from the key as it was.
    fn explain(
        &self,
        err: WriteError,
        condition: impl FnOnce(&ApiKey) -> Result<(), model::Rejection>,
    ) -> Error {
        match err {
            WriteError::Rejected(None) => Error::NotFound,
            WriteError::Rejected(Some(old)) => match condition(&old) {
                Err(rejection) => rejection.into(),
                // The key changed between the write and now; the write was still refused.
                Ok(()) => Error::Internal("condition failed on a key that satisfies it".into()),
            },
            WriteError::Store(err) => err.into(),
            other => Error::Internal(format!("unexpected write outcome {other:?}")),
        }
    }
}

fn replayed() -> Error {
    Error::Unauthenticated("request already accepted once".into())
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

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(message.to_owned())
}

fn bounded_text(field: &str, value: String, min: usize, max: usize) -> Result<String, Error> {
    let chars = value.chars().count();
    if min > 0 && value.trim().is_empty() {
        return Err(Error::MissingParameter(field.to_owned()));
    }
    if chars < min || chars > max || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!("{field} must be {min} to {max} printable characters")));
    }
    Ok(value)
}

fn validate_scope(scope: Vec<String>) -> Result<Vec<String>, Error> {
    if scope.len() > SCOPE_MAX_ENTRIES {
        return Err(invalid("scope has more than 64 entries"));
    }
    let valid = |s: &String| {
        !s.is_empty() && s.chars().count() <= SCOPE_ENTRY_MAX_CHARS && s.chars().all(|c| c.is_ascii_graphic())
    };
    if !scope.iter().all(valid) {
        return Err(invalid("each scope entry must be 1 to 128 visible ASCII characters, no spaces"));
    }
    Ok(scope)
}

fn timestamp_from_seconds(seconds: i64) -> Timestamp {
    Timestamp::from_timestamp(seconds, 0).unwrap_or(Timestamp::MAX_UTC)
}
