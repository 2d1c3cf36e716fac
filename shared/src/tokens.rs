//! Access tokens: RFC 9068 JWTs signed with the configured algorithm (EdDSA unless configured
//! otherwise), the JWKS that publishes their public keys, and verification for refresh.

mod algorithm;
mod jws;
mod keys;

use chrono::TimeDelta;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::{ApiKey, KeySlot, Timestamp, ValueRef};

pub use self::algorithm::SigningAlgorithm;
pub use self::keys::{PublicKeys, SigningKeyError, SigningKeys, public_jwk_of_pem};

/// What a token says about its key. A refresh builds the next token from the verified claims of
/// the previous one (the store's single-use write cannot also read the key back), which is sound
/// because none of these change once a key is registered; the value that bought the family is
/// checked by the refresh's write itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSubject {
    pub api_key_id: String,
    pub domain_id: String,
    pub scope: String,
    pub key_expires_at: Timestamp,
    /// The key value that bought the family.
    pub bought_with: ValueRef,
    /// When that value was presented, which starts the family.
    pub family_started_at: Timestamp,
}

impl TokenSubject {
    /// The subject of a new family, bought at `now` with the key value `bought_with`. `None` for
    /// a key that is not registered, which has no expiry yet.
    pub fn of_key(key: &ApiKey, bought_with: ValueRef, now: Timestamp) -> Option<Self> {
        Some(Self {
            api_key_id: key.api_key_id.to_string(),
            domain_id: key.domain_id.clone(),
            scope: key.scope.join(" "),
            key_expires_at: key.expires_at?,
            bought_with,
            family_started_at: now,
        })
    }

    pub fn of_claims(claims: &AccessClaims) -> Option<Self> {
        Some(Self {
            api_key_id: claims.sub.clone(),
            domain_id: claims.tid.clone(),
            scope: claims.scope.clone(),
            key_expires_at: Timestamp::from_timestamp_millis(claims.key_expired)?,
            bought_with: ValueRef { slot: claims.key_slot, generation: claims.key_generation },
            family_started_at: Timestamp::from_timestamp(claims.auth_time, 0)?,
        })
    }
}

pub const TOKEN_TYPE: &str = "at+jwt";

/// Who signs the tokens, and how: all that the discovery documents publish, and no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    pub issuer: String,
    pub algorithm: SigningAlgorithm,
    pub served_at: ServedAt,
}

/// Where clients reach the endpoints, for the discovery documents to name them when the issuer is
/// not a URL. In AWS, API Gateway names the domain a request came to, and that counts instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServedAt {
    /// Nowhere known: only an issuer URL or API Gateway's domain can name the endpoints.
    #[default]
    Unknown,
    /// The local server's listening address.
    Listening(std::net::SocketAddr),
    /// Wherever `Host` and `X-Forwarded-Proto` say, as a proxy in front of the local server sets
    /// them (`KEYGATE_TRUST_PROXY_HEADERS`). A client chooses those headers when nothing stands in
    /// front, so only an operator's setting trusts them, and a document built from them is never
    /// cached.
    ProxyHeaders,
}

/// The claims of an access token (RFC 9068, with `auth_time`: when the key value was presented
/// that started the token's refresh chain) plus `fam`, the `jti` that started the chain,
/// `key_expired`, the key's expiry in epoch milliseconds, and `key_slot` and `key_generation`,
/// the key value that bought the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub tid: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub fam: String,
    pub key_expired: i64,
    pub auth_time: i64,
    pub key_slot: KeySlot,
    pub key_generation: u32,
}

pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub claims: AccessClaims,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT at all: a client error.
    Malformed,
    /// A JWT we did not issue, or may no longer accept.
    Rejected,
}

pub struct TokenService {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    ttl: TimeDelta,
    refresh_grace: TimeDelta,
    refresh_max_age: TimeDelta,
}

/// How long tokens live: each token `ttl`, refreshable for `refresh_grace` after it expires, and
/// its family refreshable until `refresh_max_age` after the key value was presented.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub ttl: TimeDelta,
    pub refresh_grace: TimeDelta,
    pub refresh_max_age: TimeDelta,
}

impl TokenService {
    pub fn new(keys: SigningKeys, issuer: String, audience: String, lifetimes: Lifetimes) -> Self {
        let Lifetimes { ttl, refresh_grace, refresh_max_age } = lifetimes;
        Self { keys, issuer, audience, ttl, refresh_grace, refresh_max_age }
    }

    pub fn public_keys(&self) -> &PublicKeys {
        self.keys.public_keys()
    }

    pub fn refresh_grace(&self) -> TimeDelta {
        self.refresh_grace
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.keys.algorithm
    }

    pub fn ttl(&self) -> TimeDelta {
        self.ttl
    }

    /// Signs a token, never valid past the key's own expiry. `family` is `None` for a token bought
    /// with the key value, which starts a new family.
    pub fn mint(
        &self,
        subject: &TokenSubject,
        family: Option<&str>,
        now: Timestamp,
    ) -> Result<IssuedToken, String> {
        let jti = hex::encode(rand::rng().random::<[u8; 16]>());
        let iat = now.timestamp();
        let exp = iat.saturating_add(self.ttl.num_seconds()).min(subject.key_expires_at.timestamp()).max(iat);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.api_key_id.clone(),
            client_id: subject.api_key_id.clone(),
            tid: subject.domain_id.clone(),
            scope: subject.scope.clone(),
            iat,
            exp,
            fam: family.map_or_else(|| jti.clone(), str::to_owned),
            jti,
            key_expired: subject.key_expires_at.timestamp_millis(),
            auth_time: subject.family_started_at.timestamp(),
            key_slot: subject.bought_with.slot,
            key_generation: subject.bought_with.generation,
        };
        let access_token = self.keys.signer.sign(&claims)?;
        Ok(IssuedToken { access_token, expires_in: exp - iat, claims })
    }

    /// Verifies a token presented for refresh: our signature under a published key, the pinned
    /// algorithm, our issuer and audience, and not expired for longer than the refresh grace.
    /// A refused token is told apart as malformed only then, off the path of accepted ones.
    pub fn verify_for_refresh(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        self.refreshable_claims(token, now).map_err(|_refused| {
            if looks_like_jws(token) { TokenError::Rejected } else { TokenError::Malformed }
        })
    }

    fn refreshable_claims(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        let keys = &self.keys;
        let claims = signed_claims(token, &keys.published, &self.issuer, &self.audience)?;
        // Refreshable strictly before exp + grace: the refresh marker lapses at that instant, and a
        // token accepted after it could be refreshed a second time unnoticed.
        let refreshable_until = self.refreshable_until(&claims).ok_or(TokenError::Rejected)?;
        // A family ends at its maximum age: then the client goes back to its key.
        let family_ends = Timestamp::from_timestamp(claims.auth_time, 0)
            .and_then(|started| started.checked_add_signed(self.refresh_max_age))
            .ok_or(TokenError::Rejected)?;
        if now >= refreshable_until || now >= family_ends {
            return Err(TokenError::Rejected);
        }
        Ok(claims)
    }

    /// The instant a token stops being refreshable: one grace after its `exp`. `None` for an `exp`
    /// past what a clock can hold, which only a forged or foreign token has.
    pub fn refreshable_until(&self, claims: &AccessClaims) -> Option<Timestamp> {
        Timestamp::from_timestamp(claims.exp, 0)?.checked_add_signed(self.refresh_grace)
    }

    /// Until when a family revoked at `now` must stay revoked: every token of it expires within
    /// one lifetime, and can be refreshed for one grace after that.
    pub fn family_outlived_at(&self, now: Timestamp) -> Timestamp {
        now.checked_add_signed(self.ttl)
            .and_then(|expired| expired.checked_add_signed(self.refresh_grace))
            .unwrap_or(Timestamp::MAX_UTC)
    }
}

/// The claims of a token we signed: `typ` at+jwt, the pinned algorithm, a key we publish, our
/// issuer and audience. Its expiry is left to the caller, which knows which instant counts.
fn signed_claims(
    token: &str,
    keys: &PublicKeys,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    // The header names a key we publish, the algorithm that key is pinned to, and our type.
    let payload = jws::verified_payload(token, |header| {
        let key = keys.get(header.kid.as_deref()?)?;
        let ours = header.alg == key.algorithm.name() && header.typ.as_deref() == Some(TOKEN_TYPE);
        ours.then_some(&key.key)
    })
    .ok_or(TokenError::Rejected)?;
    // Every member is required (`exp`, `iss`, `aud` and `sub` among them), `aud` a single string.
    let claims: AccessClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Rejected)?;
    if claims.iss != issuer || claims.aud != audience {
        return Err(TokenError::Rejected);
    }
    Ok(claims)
}

/// Checks access tokens with public keys alone, as the token authorizer of customers' own APIs
/// does: everything [`TokenService`] checks of a token it signed, and that it has not expired.
pub struct AccessVerifier {
    keys: PublicKeys,
    issuer: String,
    audience: String,
}

impl AccessVerifier {
    pub fn new(keys: PublicKeys, issuer: String, audience: String) -> Self {
        Self { keys, issuer, audience }
    }

    /// The claims of a token that is ours and still valid at `now` (strictly before `exp`).
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        self.verify_for(token, now, &self.audience)
    }

    /// [`Self::verify`] for an API that names the audience its tokens carry, in place of the
    /// configured one.
    pub fn verify_for(
        &self,
        token: &str,
        now: Timestamp,
        audience: &str,
    ) -> Result<AccessClaims, TokenError> {
        let claims = signed_claims(token, &self.keys, &self.issuer, audience)?;
        if now.timestamp() >= claims.exp {
            return Err(TokenError::Rejected);
        }
        Ok(claims)
    }
}

/// Three base64url segments whose first two are JSON objects (header and claims): anything else
/// is not a bearer token at all. The signature may be empty: that is a token we refuse, not a
/// malformed one.
fn looks_like_jws(token: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json_object = |segment: &str| {
        URL_SAFE_NO_PAD.decode(segment).is_ok_and(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok()
        })
    };
    let base64url =
        |segment: &str| segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match token.split('.').collect::<Vec<_>>().as_slice() {
        [header, claims, signature] => json_object(header) && json_object(claims) && base64url(signature),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_value::{KeyValue, Pepper};
    use crate::model::{ApiKeyId, KeyState, StoredSecret, now};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::DateTime;

    fn service(algorithm: SigningAlgorithm) -> TokenService {
        let keys = SigningKeys::from_pems(algorithm, &algorithm.generate_pem(), None).unwrap();
        let lifetimes = Lifetimes {
            ttl: TimeDelta::seconds(300),
            refresh_grace: TimeDelta::seconds(600),
            refresh_max_age: TimeDelta::hours(24),
        };
        TokenService::new(keys, "keygate".into(), "keygate".into(), lifetimes)
    }

    fn subject(expires_in: TimeDelta) -> TokenSubject {
        TokenSubject::of_key(&key(expires_in), ValueRef { slot: KeySlot::Primary, generation: 0 }, now())
            .unwrap()
    }

    fn key(expires_in: TimeDelta) -> ApiKey {
        let id = ApiKeyId::generate();
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let secret = |v: KeyValue| StoredSecret::first(pepper.hash(&v), v.last4());
        let now = now();
        ApiKey {
            primary: secret(KeyValue::generate(&id)),
            secondary: secret(KeyValue::generate(&id)),
            api_key_id: id,
            domain_id: "domain-a".into(),
            user_id: "user".into(),
            name: "n".into(),
            description: String::new(),
            state: KeyState::Enabled,
            scope: vec!["read".into(), "write".into()],
            max_total_usage: 10,
            remaining_total_usage: 10,
            validity_seconds: None,
            expires_at: Some(now + expires_in),
            registered_at: Some(now),
            last_accessed_at: None,
            created_at: now,
            modified_at: now,
            modifier: "AK".into(),
            domain_code: "PUB".into(),
        }
    }

    #[test]
    fn minted_tokens_verify_for_each_algorithm() {
        for algorithm in SigningAlgorithm::ALL {
            let service = service(algorithm);
            let issued = service.mint(&subject(TimeDelta::days(1)), None, now()).unwrap();
            let claims = service.verify_for_refresh(&issued.access_token, now()).unwrap();
            assert_eq!(claims, issued.claims);
            assert_eq!(claims.fam, claims.jti, "a token from the key starts its own family");
            assert_eq!(claims.scope, "read write");
            assert_eq!(issued.expires_in, 300);
        }
    }

    /// Before a first rotation the previous key may be configured as the current one: published once.
    #[test]
    fn a_previous_key_equal_to_the_current_one_is_published_once() {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let keys = SigningKeys::from_pems(SigningAlgorithm::EdDsa, &pem, Some(&pem)).unwrap();
        assert_eq!(keys.public_keys().jwks().keys.len(), 1);
    }

    #[test]
    fn lifetime_is_capped_by_the_keys_expiry() {
        let issued =
            service(SigningAlgorithm::EdDsa).mint(&subject(TimeDelta::seconds(42)), None, now()).unwrap();
        assert!((41..=42).contains(&issued.expires_in), "{}", issued.expires_in);
    }

    #[test]
    fn refresh_accepts_expired_tokens_only_within_the_grace() {
        let service = service(SigningAlgorithm::EdDsa);
        let issued = service.mint(&subject(TimeDelta::days(1)), None, now()).unwrap();
        let in_grace = now() + TimeDelta::seconds(300 + 599);
        let past_grace = now() + TimeDelta::seconds(300 + 602);
        assert!(service.verify_for_refresh(&issued.access_token, in_grace).is_ok());
        assert_eq!(service.verify_for_refresh(&issued.access_token, past_grace), Err(TokenError::Rejected));
    }

    #[test]
    fn refresh_ends_at_the_instant_the_single_use_marker_lapses() {
        let service = service(SigningAlgorithm::EdDsa);
        let issued = service.mint(&subject(TimeDelta::days(1)), None, now()).unwrap();
        let lapse = DateTime::from_timestamp(issued.claims.exp + 600, 0).unwrap();
        assert!(service.verify_for_refresh(&issued.access_token, lapse - TimeDelta::milliseconds(1)).is_ok());
        assert_eq!(service.verify_for_refresh(&issued.access_token, lapse), Err(TokenError::Rejected));
        let half_a_second_later = lapse + TimeDelta::milliseconds(500);
        assert_eq!(
            service.verify_for_refresh(&issued.access_token, half_a_second_later),
            Err(TokenError::Rejected)
        );
    }

    #[test]
    fn foreign_and_forged_tokens_are_rejected() {
        let ours = service(SigningAlgorithm::EdDsa);
        let theirs = service(SigningAlgorithm::EdDsa);
        let token = theirs.mint(&subject(TimeDelta::days(1)), None, now()).unwrap().access_token;
        assert_eq!(ours.verify_for_refresh(&token, now()), Err(TokenError::Rejected), "unknown kid");

        let good = ours.mint(&subject(TimeDelta::days(1)), None, now()).unwrap();
        let parts: Vec<&str> = good.access_token.split('.').collect();
        // Each forgery differs from the genuine token in one place only, so the signature check
        // (or the pinned algorithm) is what refuses it.
        let kid = jsonwebtoken::decode_header(&good.access_token).unwrap().kid.unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
        let alg_none = format!("{none_header}.{}.", parts[1]);
        let alg_none_signed = format!("{none_header}.{}.{}", parts[1], parts[2]);
        let mut claims = good.claims.clone();
        claims.scope = "admin".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        let cases = [
            ("alg none, no signature", alg_none, TokenError::Rejected),
            ("alg none", alg_none_signed, TokenError::Rejected),
            ("tampered scope", tampered, TokenError::Rejected),
        ];
        for (what, token, expected) in cases {
            assert_eq!(ours.verify_for_refresh(&token, now()), Err(expected), "{what}");
        }
        assert!(ours.verify_for_refresh(&good.access_token, now()).is_ok(), "the genuine token verifies");
    }

    #[test]
    fn strings_that_are_not_jws_are_malformed() {
        let service = service(SigningAlgorithm::EdDsa);
        let object = URL_SAFE_NO_PAD.encode("{}");
        let not_json = URL_SAFE_NO_PAD.encode("[1]");
        let cases = [
            "".to_owned(),
            "abc".into(),
            "a.b".into(),
            "a..c".into(),
            "a.b.c.d".into(),
            "a b.c.d".into(),
            "a.b.c=".into(),
            format!("{object}.{not_json}.c"),
            format!("{not_json}.{object}."),
            format!("{object}.{object}.c="),
        ];
        for bad in &cases {
            assert_eq!(service.verify_for_refresh(bad, now()), Err(TokenError::Malformed), "{bad:?}");
        }
        for refused in [format!("{object}.{object}."), format!("{object}.{object}.c")] {
            assert_eq!(service.verify_for_refresh(&refused, now()), Err(TokenError::Rejected), "{refused:?}");
        }
    }
}
