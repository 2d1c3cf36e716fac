//! The use cases: what each route does, independent of how the request arrived. The client API's
//! (register, detail, token, refresh) are in [`client`], the admin surfaces' in [`admin`] (one key)
//! and [`search`] (many keys, run within [`queries`]' limits), and the rules an admin's input must
//! satisfy in [`rules`].

mod admin;
mod client;
mod queries;
mod rules;
mod search;

use std::sync::Arc;

pub use self::admin::{CreatedKey, KeyTarget, KeyUpdate, NewKey, REPLAYED};
pub use self::queries::{Admission, QUERY_COST_LIMIT, QueryLimits, QueryRunner};
pub use self::rules::stored_key as check_stored_key;
pub use self::search::{KeySearch, KeyStat, KeysPage, ListPage};
use crate::config::{Config, KeyDefaults};
#[cfg(feature = "dynamodb")]
use crate::config::{ConfigError, TableConfig, Uses};
use crate::error::Error;
use crate::key_value::{KeyValue, Pepper};
use crate::model::{self, ApiKey, ApiKeyId, SecretHash, Timestamp};
use crate::signature::Credentials;
use crate::store::{Store, WriteError};
use crate::tokens::{Issuer, PublicKeys, ServedAt, TokenService};
#[cfg(feature = "dynamodb")]
use crate::{aws, store::DynamoStore};

type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Where a function reads its settings by name.
#[cfg(feature = "dynamodb")]
type Settings = Box<dyn Fn(&str) -> Option<String>>;

/// Where a Lambda's configuration is read: its environment, and Secrets Manager for the secrets
/// `uses` names by ARN.
#[cfg(all(feature = "dynamodb", feature = "secrets-manager"))]
async fn settings_lookup(uses: Uses) -> Result<Settings, ConfigError> {
    Ok(Box::new(crate::secrets::lookup_from_env(&uses.secrets()).await?))
}

/// A function built without Secrets Manager (one whose route uses no secret) reads its
/// environment alone.
#[cfg(all(feature = "dynamodb", not(feature = "secrets-manager")))]
async fn settings_lookup(uses: Uses) -> Result<Settings, ConfigError> {
    without_secrets_manager(uses, |name: &str| std::env::var(name).ok())
}

/// The environment alone, unless `uses` names a secret that only its ARN gives: this build could
/// not read it, and says so at start rather than fail each request.
#[cfg(all(feature = "dynamodb", not(feature = "secrets-manager")))]
fn without_secrets_manager<Env: Fn(&str) -> Option<String> + 'static>(
    uses: Uses,
    env: Env,
) -> Result<Settings, ConfigError> {
    let by_arn_only =
        |setting: &&&str| env(setting).is_none() && env(&format!("{setting}_SECRET_ARN")).is_some();
    if let Some(setting) = uses.secrets().iter().find(by_arn_only) {
        return Err(ConfigError::new(format!(
            "{setting}_SECRET_ARN is set, but this function is built without Secrets Manager"
        )));
    }
    Ok(Box::new(env))
}

pub struct Keygate {
    store: Arc<dyn Store>,
    pepper: Option<Pepper>,
    tokens: Option<TokenService>,
    credentials: Credentials,
    key_defaults: KeyDefaults,
    clock: Clock,
    served_at: ServedAt,
    queries: QueryRunner,
}

impl Keygate {
    /// The service as a Lambda builds it at start: configuration from the environment, the
    /// secrets `uses` names from Secrets Manager, and the DynamoDB table (required; see
    /// [`TableConfig`]).
    #[cfg(feature = "dynamodb")]
    pub async fn from_env(uses: Uses) -> Result<Self, ConfigError> {
        let table = TableConfig::from_lookup(|name| std::env::var(name).ok())?;
        let lookup = settings_lookup(uses).await?;
        let query_limits = QueryLimits::from_lookup(&lookup)?;
        let config = Config::for_uses(lookup, uses)?;
        let aws = aws::lambda_config().map_err(ConfigError::new)?;
        let store = DynamoStore::with_config(&aws, table.endpoint.as_deref(), table.name);
        // One request at a time: the instance has no other request to keep serving.
        Ok(Self::new(config, Arc::new(store)).with_queries(QueryRunner::inline(query_limits)))
    }

    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            pepper: config.pepper,
            tokens: config.tokens,
            credentials: config.credentials,
            key_defaults: config.key_defaults,
            clock: Arc::new(model::now),
            served_at: match config.trust_proxy_headers {
                true => ServedAt::ProxyHeaders,
                false => ServedAt::Unknown,
            },
            queries: QueryRunner::inline(QueryLimits::default()),
        }
    }

    /// The local server's listening address, where its discovery documents say its endpoints are
    /// (unless it trusts a proxy's headers to say so).
    pub fn serving_at(mut self, address: std::net::SocketAddr) -> Self {
        // 0.0.0.0 or [::] names no address a client could reach: only the issuer can say then.
        if self.served_at == ServedAt::Unknown && !address.ip().is_unspecified() {
            self.served_at = ServedAt::Listening(address);
        }
        self
    }

    /// Replaces where the admin queries that read a whole domain run, and their limits: the
    /// runtime's choice (a server runs them on threads of their own).
    pub fn with_queries(mut self, queries: QueryRunner) -> Self {
        self.queries = queries;
        self
    }

    pub fn queries(&self) -> &QueryRunner {
        &self.queries
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

    /// The keys `/.well-known/jwks.json` publishes.
    pub fn public_keys(&self) -> Result<&PublicKeys, Error> {
        Ok(self.tokens()?.public_keys())
    }

    /// Who signs this service's tokens, and how: what the discovery documents publish.
    pub fn issuer(&self) -> Result<Issuer, Error> {
        let tokens = self.tokens()?;
        Ok(Issuer {
            issuer: tokens.issuer().to_owned(),
            algorithm: tokens.algorithm(),
            served_at: self.served_at,
        })
    }

    /// The pepper, which a function built without it (see [`Uses`]) cannot serve a route with.
    fn pepper(&self) -> Result<&Pepper, Error> {
        self.pepper
            .as_ref()
            .ok_or_else(|| Error::Internal("this function was built without the pepper".into()))
    }

    fn tokens(&self) -> Result<&TokenService, Error> {
        self.tokens
            .as_ref()
            .ok_or_else(|| Error::Internal("this function was built without the signing key".into()))
    }

    /// A value that is not a well-formed key is unknown, and costs no store call.
    fn parse_key(&self, value: &str) -> Result<(ApiKeyId, SecretHash), Error> {
        let value = KeyValue::parse(value).ok_or(Error::NotFound)?;
        Ok((value.api_key_id(), self.pepper()?.hash(&value)))
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

#[cfg(all(test, feature = "dynamodb", not(feature = "secrets-manager")))]
mod tests {
    use super::without_secrets_manager;
    use crate::config::{PEPPER, Uses};

    #[test]
    fn a_build_without_secrets_manager_refuses_a_secret_given_by_arn_only() {
        let arn_only = |name: &str| (name == "KEYGATE_PEPPER_SECRET_ARN").then(|| "arn:aws:...".to_owned());
        let err = without_secrets_manager(Uses::PEPPER, arn_only).err().unwrap().to_string();
        assert_eq!(
            err,
            "configuration: KEYGATE_PEPPER_SECRET_ARN is set, but this function is built without Secrets Manager"
        );
        let lookup = without_secrets_manager(Uses::NO_SECRET, arn_only).unwrap();
        assert_eq!(lookup("KEYGATE_PEPPER_SECRET_ARN").as_deref(), Some("arn:aws:..."));
        let by_value = |name: &str| (name == PEPPER).then(|| "a-pepper-of-enough-bytes".to_owned());
        assert!(without_secrets_manager(Uses::PEPPER, by_value).is_ok());
    }
}
