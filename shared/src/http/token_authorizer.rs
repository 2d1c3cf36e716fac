//! The token authorizer for customers' own APIs: an HTTP API Lambda REQUEST authorizer that lets
//! a request through when its `Authorization: Bearer` token is one of ours and still valid, with
//! the token's `sub`, `tid`, `scope` and `client_id` as context. It verifies with the public keys
//! alone and calls no database. API Gateway may cache a decision (keyed on the header): a cached
//! allow outlives the token's expiry by up to the cache's TTL, so keep it short or zero.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::{AUDIENCE, ConfigError, ISSUER};
use crate::model::Timestamp;
use crate::tokens::AccessVerifier;

/// Where the authorizer reads the public keys: keygate's own `/.well-known/jwks.json`.
pub const JWKS_URL: &str = "KEYGATE_JWKS_URL";

/// A JWKS fetch gives up after this long: a cold start must not hang on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// After a rotation tokens arrive under a key this instance has not seen: it fetches the JWKS
/// again, at most this often, so forged `kid`s cannot make it hammer keygate.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The published keys, fetched at start and again when a token names a key not among them.
pub struct PublishedKeys {
    url: String,
    issuer: String,
    audience: String,
    client: reqwest::Client,
    refetch_interval: Duration,
    verifier: RwLock<Arc<AccessVerifier>>,
    fetched_at: Mutex<Instant>,
}

impl PublishedKeys {
    /// The keys at `KEYGATE_JWKS_URL`, for the issuer and audience the token function signs with.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), REFETCH_INTERVAL).await
    }

    pub async fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        refetch_interval: Duration,
    ) -> Result<Self, ConfigError> {
        let url = env(JWKS_URL).ok_or_else(|| ConfigError::new(format!("{JWKS_URL} is not set")))?;
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::new(format!("HTTP client: {e}")))?;
        let issuer = env(ISSUER).unwrap_or_else(|| "keygate".into());
        let audience = env(AUDIENCE).unwrap_or_else(|| "keygate".into());
        let verifier = fetch(&client, &url, &issuer, &audience).await.map_err(ConfigError::new)?;
        Ok(Self {
            url,
            issuer,
            audience,
            client,
            refetch_interval,
            verifier: RwLock::new(Arc::new(verifier)),
            fetched_at: Mutex::new(Instant::now()),
        })
    }

    pub fn verifier(&self) -> Arc<AccessVerifier> {
        self.verifier.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// [`authorize`] with the keys as published now: a token under a key not yet seen has the
    /// JWKS fetched again first (at most once per refetch interval).
    pub async fn authorize(
        &self,
        now: Timestamp,
        event: &ApiGatewayV2CustomAuthorizerV2Request,
    ) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
        let verifier = self.verifier();
        let unknown_key = bearer(event).is_some_and(|token| !verifier.knows_key_of(token));
        if unknown_key && self.may_refetch() {
            match fetch(&self.client, &self.url, &self.issuer, &self.audience).await {
                Ok(fresh) => {
                    *self.verifier.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh)
                }
                Err(err) => tracing::warn!(error = %err, "refetching the JWKS failed"),
            }
        }
        authorize(&self.verifier(), now, event)
    }

    /// Claims the next refetch if the interval has passed since the last one.
    fn may_refetch(&self) -> bool {
        let mut fetched_at = self.fetched_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if fetched_at.elapsed() < self.refetch_interval {
            return false;
        }
        *fetched_at = Instant::now();
        true
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessVerifier, String> {
    let fetched = async { client.get(url).send().await?.error_for_status()?.json().await };
    let jwks = fetched.await.map_err(|e| format!("{JWKS_URL} {url}: {e}"))?;
    AccessVerifier::from_jwks(&jwks, issuer.to_owned(), audience.to_owned())
}

/// The token of an `Authorization: Bearer` header.
fn bearer(event: &ApiGatewayV2CustomAuthorizerV2Request) -> Option<&str> {
    let value = event.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn authorize(
    verifier: &AccessVerifier,
    now: Timestamp,
    event: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.context = Value::Object(Map::new());
    match bearer(event).map(|token| verifier.verify(token, now)) {
        Some(Ok(claims)) => {
            response.is_authorized = true;
            response.context = json!({
                "sub": claims.sub,
                "tid": claims.tid,
                "scope": claims.scope,
                "client_id": claims.client_id,
            });
        }
        Some(Err(_)) => tracing::info!("access token refused"),
        None => tracing::info!("no bearer token"),
    }
    response
}
