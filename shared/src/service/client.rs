//! The client API's use cases: a customer registers its key, reads it, and exchanges it (or a
//! token it bought) for an access token. Each is one conditional write, or one read.

use super::Keygate;
use crate::error::Error;
use crate::model::{ApiKey, ApiKeyId};
use crate::store::{RefreshMarker, WriteError};
use crate::telemetry::{self, Metric};
use crate::tokens::{IssuedToken, TokenError, TokenSubject};

/// The message logged (at warn, with the key's id and nothing secret) when a reused refresh token
/// revokes its family; [`Metric::RefreshReuseDetected`] counts it, and the template alarms on it.
pub const FAMILY_REVOKED_MESSAGE: &str = "refresh token reused; family revoked";

impl Keygate {
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
        counted(self.mint_for_key(key_value).await)
    }

    async fn mint_for_key(&self, key_value: &str) -> Result<IssuedToken, Error> {
        let (id, secret) = self.parse_key(key_value)?;
        let now = self.now();
        let key = self
            .store
            .consume_for_token(&id, &secret, now)
            .await
            .map_err(|err| self.explain(err, |key| key.check_mintable(Some(&secret), now)))?;
        let bought_with = key
            .value_ref(&secret)
            .ok_or_else(|| Error::Internal("minted with a value the key does not hold".into()))?;
        let subject = TokenSubject::of_key(&key, bought_with, now)
            .ok_or_else(|| Error::Internal("minted for an unregistered key".into()))?;
        self.tokens()?.mint(&subject, None, now).map_err(Error::Internal)
    }

    /// Exchanges a token for a new one of the same family. A second refresh of one token is
    /// taken as theft (RFC 9700, refresh token reuse): the whole family is revoked.
    pub async fn refresh(&self, bearer: &str) -> Result<IssuedToken, Error> {
        counted(self.mint_for_token(bearer).await)
    }

    async fn mint_for_token(&self, bearer: &str) -> Result<IssuedToken, Error> {
        let now = self.now();
        let claims = self.tokens()?.verify_for_refresh(bearer, now).map_err(|err| match err {
            TokenError::Malformed => Error::InvalidArgument("bearer token is not a JWT".into()),
            TokenError::Rejected => Error::InvalidToken,
        })?;
        let id = ApiKeyId::parse(&claims.sub).ok_or(Error::InvalidToken)?;
        let subject = TokenSubject::of_claims(&claims).ok_or(Error::InvalidToken)?;
        let marker = RefreshMarker {
            jti: claims.jti.clone(),
            family: claims.fam.clone(),
            bought_with: subject.bought_with,
            expires_at: self.tokens()?.refreshable_until(&claims).ok_or(Error::InvalidToken)?,
        };
        match self.store.consume_for_refresh(&id, &marker, now).await {
            Ok(()) => self.tokens()?.mint(&subject, Some(&claims.fam), now).map_err(Error::Internal),
            Err(WriteError::TokenReused) => {
                // Counted first: the theft is detected even if the revocation then fails.
                telemetry::count(Metric::RefreshReuseDetected);
                let until = self.tokens()?.family_outlived_at(now);
                self.store.revoke_family(&claims.fam, until, now).await?;
                tracing::warn!(api_key_id = %id, "{FAMILY_REVOKED_MESSAGE}");
                Err(Error::TokenReused)
            }
            Err(WriteError::FamilyRevoked) => Err(Error::TokenReused),
            Err(err) => Err(self.explain(err, |key| key.check_refreshable(subject.bought_with, now))),
        }
    }
}

/// Counts a token issued, or a refusal for want of quota.
fn counted(minted: Result<IssuedToken, Error>) -> Result<IssuedToken, Error> {
    match &minted {
        Ok(_) => telemetry::count(Metric::TokensIssued),
        Err(Error::QuotaExhausted) => telemetry::count(Metric::QuotaExhausted),
        Err(_) => {}
    }
    minted
}
