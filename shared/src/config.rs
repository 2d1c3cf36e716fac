//! Configuration from the environment (names in DESIGN.md, "Conventions and limits"), read once
//! at start so that a missing or bad variable fails the cold start, not a request.

use chrono::TimeDelta;

use crate::key_value::Pepper;
use crate::signature::Credentials;
use crate::tokens::{SigningAlgorithm, SigningKeys, TokenService};

pub const ADMIN_CREDENTIALS: &str = "KEYGATE_ADMIN_CREDENTIALS";
pub const PEPPER: &str = "KEYGATE_PEPPER";
pub const SIGNING_KEY: &str = "KEYGATE_SIGNING_KEY";
pub const SIGNING_KEY_PREVIOUS: &str = "KEYGATE_SIGNING_KEY_PREVIOUS";
pub const JWT_ALG: &str = "KEYGATE_JWT_ALG";
pub const ISSUER: &str = "KEYGATE_ISSUER";
pub const AUDIENCE: &str = "KEYGATE_AUDIENCE";
pub const TOKEN_TTL_SECONDS: &str = "KEYGATE_TOKEN_TTL_SECONDS";
pub const REFRESH_GRACE_SECONDS: &str = "KEYGATE_REFRESH_GRACE_SECONDS";
pub const DEFAULT_VALIDITY_SECONDS: &str = "KEYGATE_DEFAULT_VALIDITY_SECONDS";
pub const DEFAULT_MAX_TOTAL_USAGE: &str = "KEYGATE_DEFAULT_MAX_TOTAL_USAGE";

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// What a key gets when its creator does not say.
#[derive(Clone, Copy, Debug)]
pub struct KeyDefaults {
    pub validity_seconds: u64,
    pub max_total_usage: u32,
}

pub struct Config {
    pub pepper: Pepper,
    pub tokens: TokenService,
    pub credentials: Credentials,
    pub key_defaults: KeyDefaults,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup`, so the local server can fill in what the
    /// environment lacks from its data directory.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &str| lookup(name).ok_or_else(|| ConfigError(format!("{name} is not set")));
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            lookup(name).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|_| ConfigError(format!("{name} is not a whole number")))
            })
        };

        let pepper = Pepper::new(required(PEPPER)?.into_bytes())
            .ok_or_else(|| ConfigError(format!("{PEPPER} needs at least {} bytes", Pepper::MIN_LEN)))?;

        let algorithm_name = lookup(JWT_ALG).unwrap_or_else(|| "EdDSA".into());
        let algorithm = SigningAlgorithm::parse(&algorithm_name)
            .ok_or_else(|| ConfigError(format!("{JWT_ALG} must be EdDSA or ES256")))?;
        let keys = SigningKeys::from_pems(
            algorithm,
            &required(SIGNING_KEY)?,
            lookup(SIGNING_KEY_PREVIOUS).as_deref(),
        )
        .map_err(ConfigError)?;
        let seconds = |name: &str, default: u64| -> Result<TimeDelta, ConfigError> {
            let value = number(name, default)?;
            i64::try_from(value)
                .ok()
                .and_then(TimeDelta::try_seconds)
                .filter(|d| *d > TimeDelta::zero())
                .ok_or_else(|| ConfigError(format!("{name} is out of range")))
        };
        let tokens = TokenService::new(
            keys,
            lookup(ISSUER).unwrap_or_else(|| "keygate".into()),
            lookup(AUDIENCE).unwrap_or_else(|| "keygate".into()),
            seconds(TOKEN_TTL_SECONDS, 300)?,
            seconds(REFRESH_GRACE_SECONDS, 600)?,
        );

        let credentials = match lookup(ADMIN_CREDENTIALS) {
            Some(json) => Credentials::from_json(&json)
                .map_err(|e| ConfigError(format!("{ADMIN_CREDENTIALS} is not a credential list: {e}")))?,
            None => Credentials::default(),
        };

        let max_total_usage = u32::try_from(number(DEFAULT_MAX_TOTAL_USAGE, 10_000)?)
            .ok()
            .filter(|n| (1..=crate::service::MAX_TOTAL_USAGE).contains(n))
            .ok_or_else(|| ConfigError(format!("{DEFAULT_MAX_TOTAL_USAGE} is out of range")))?;
        let key_defaults = KeyDefaults {
            validity_seconds: seconds(DEFAULT_VALIDITY_SECONDS, 365 * 24 * 3600)?.num_seconds() as u64,
            max_total_usage,
        };
        Ok(Self { pepper, tokens, credentials, key_defaults })
    }
}
