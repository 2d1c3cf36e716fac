//! Configuration from the environment (names in DESIGN.md, "Conventions and limits"), read once
//! at start so that a missing or bad variable fails the cold start, not a request.

use chrono::TimeDelta;

use crate::key_value::Pepper;
use crate::limits::{MAX_TOTAL_USAGE, TOKEN_DURATION_MAX_SECONDS, VALIDITY_MAX_SECONDS};
use crate::signature::Credentials;
use crate::tokens::{Lifetimes, PublicKeys, SigningAlgorithm, SigningKeyError, SigningKeys, TokenService};

pub const ADMIN_CREDENTIALS: &str = "KEYGATE_ADMIN_CREDENTIALS";
pub const PEPPER: &str = "KEYGATE_PEPPER";
pub const SIGNING_KEY: &str = "KEYGATE_SIGNING_KEY";
pub const SIGNING_KEY_PREVIOUS: &str = "KEYGATE_SIGNING_KEY_PREVIOUS";
/// The JWKS to publish and verify with, apart from the signing key: in AWS the JWKS function and
/// the token authorizer hold these public keys and no private one.
pub const PUBLIC_KEYS: &str = "KEYGATE_PUBLIC_KEYS";
pub const JWT_ALG: &str = "KEYGATE_JWT_ALG";
pub const ISSUER: &str = "KEYGATE_ISSUER";
pub const AUDIENCE: &str = "KEYGATE_AUDIENCE";
/// `true` behind a proxy that sets `Host` and `X-Forwarded-Proto`: the discovery documents of the
/// local server then name the endpoints after them (see [`crate::tokens::ServedAt`]).
pub const TRUST_PROXY_HEADERS: &str = "KEYGATE_TRUST_PROXY_HEADERS";
pub const TOKEN_TTL_SECONDS: &str = "KEYGATE_TOKEN_TTL_SECONDS";
pub const REFRESH_GRACE_SECONDS: &str = "KEYGATE_REFRESH_GRACE_SECONDS";
pub const REFRESH_MAX_AGE_SECONDS: &str = "KEYGATE_REFRESH_MAX_AGE_SECONDS";
pub const DEFAULT_VALIDITY_SECONDS: &str = "KEYGATE_DEFAULT_VALIDITY_SECONDS";
pub const DEFAULT_MAX_TOTAL_USAGE: &str = "KEYGATE_DEFAULT_MAX_TOTAL_USAGE";
pub const TABLE_NAME: &str = "KEYGATE_TABLE_NAME";
pub const DYNAMODB_ENDPOINT: &str = "KEYGATE_DYNAMODB_ENDPOINT";

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The DynamoDB table a Lambda keeps keys in. A Lambda has no other store: an embedded one would
/// give each instance keys and quotas of its own, so only `keygate serve` and the tests choose one.
pub struct TableConfig {
    pub name: String,
    /// A DynamoDB-compatible endpoint instead of AWS's own.
    pub endpoint: Option<String>,
}

impl TableConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let name = lookup(TABLE_NAME).filter(|name| !name.trim().is_empty()).ok_or_else(|| {
            ConfigError(format!("{TABLE_NAME} is not set: a Lambda keeps its keys in that DynamoDB table"))
        })?;
        Ok(Self { name, endpoint: lookup(DYNAMODB_ENDPOINT) })
    }
}

/// The admin credentials of `KEYGATE_ADMIN_CREDENTIALS`'s JSON list.
pub fn admin_credentials(json: &str) -> Result<Credentials, ConfigError> {
    // serde's message may quote the value, which holds secrets: give only where it failed.
    let list = serde_json::from_str(json).map_err(|e| {
        ConfigError(format!(
            "{ADMIN_CREDENTIALS} is not a credential list (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Credentials::new(list).map_err(|e| ConfigError(format!("{ADMIN_CREDENTIALS}: {e}")))
}

/// The keys of `KEYGATE_PUBLIC_KEYS`: what a function that publishes or verifies tokens, and
/// signs none, is configured with.
pub fn public_keys(lookup: impl Fn(&str) -> Option<String>) -> Result<PublicKeys, ConfigError> {
    let document = lookup(PUBLIC_KEYS).ok_or_else(|| {
        ConfigError(format!("{PUBLIC_KEYS} is not set: it holds the JWKS of the token-signing public keys"))
    })?;
    PublicKeys::parse(&document).map_err(|e| ConfigError(format!("{PUBLIC_KEYS}: {e}")))
}

/// The algorithm tokens are signed with (`KEYGATE_JWT_ALG`, EdDSA unless set).
pub fn algorithm(lookup: impl Fn(&str) -> Option<String>) -> Result<SigningAlgorithm, ConfigError> {
    let name = lookup(JWT_ALG).unwrap_or_else(|| "EdDSA".into());
    SigningAlgorithm::parse(&name)
        .ok_or_else(|| ConfigError(format!("{JWT_ALG} must be EdDSA, ES256 or RS256")))
}

/// The tokens' `iss` (`KEYGATE_ISSUER`, `keygate` unless set).
pub fn issuer(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup(ISSUER).unwrap_or_else(|| "keygate".into())
}

/// The tokens' `aud` (`KEYGATE_AUDIENCE`, `keygate` unless set).
pub fn audience(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup(AUDIENCE).unwrap_or_else(|| "keygate".into())
}

/// What a key gets when its creator does not say.
#[derive(Clone, Copy, Debug)]
pub struct KeyDefaults {
    pub validity_seconds: u64,
    pub max_total_usage: u32,
}

/// The secrets a function is built with. Each Lambda names those its route uses, and reads no
/// other: its environment and its policy name only those (see `template.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uses {
    /// Hashes key values: routes that take a key or make one.
    pub pepper: bool,
    /// Signs tokens (and verifies them, for refresh).
    pub signing_key: bool,
}

impl Uses {
    /// The local server and the tests: every route in one process.
    pub const EVERYTHING: Uses = Uses { pepper: true, signing_key: true };
    pub const PEPPER: Uses = Uses { pepper: true, signing_key: false };
    pub const PEPPER_AND_SIGNING_KEY: Uses = Uses { pepper: true, signing_key: true };
    pub const SIGNING_KEY: Uses = Uses { pepper: false, signing_key: true };
    /// Admin routes that only read or change stored keys.
    pub const NO_SECRET: Uses = Uses { pepper: false, signing_key: false };

    /// The settings that hold those secrets. (A previous signing key is not one: in AWS its
    /// public half is published through `KEYGATE_PUBLIC_KEYS`, and no function holds it.)
    pub fn secrets(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.pepper {
            names.push(PEPPER);
        }
        if self.signing_key {
            names.push(SIGNING_KEY);
        }
        names
    }
}

pub struct Config {
    /// `None` unless [`Uses::pepper`].
    pub pepper: Option<Pepper>,
    /// `None` unless [`Uses::signing_key`].
    pub tokens: Option<TokenService>,
    pub credentials: Credentials,
    pub key_defaults: KeyDefaults,
    /// [`TRUST_PROXY_HEADERS`].
    pub trust_proxy_headers: bool,
}

impl Config {
    /// Reads every setting through `lookup`, so the local server can fill in what the
    /// environment lacks from its data directory.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::for_uses(lookup, Uses::EVERYTHING)
    }

    /// Reads the settings and the secrets `uses` names; a secret it does not name is never read.
    pub fn for_uses(lookup: impl Fn(&str) -> Option<String>, uses: Uses) -> Result<Self, ConfigError> {
        let required = |name: &str| lookup(name).ok_or_else(|| ConfigError(format!("{name} is not set")));
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            lookup(name).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|_| ConfigError(format!("{name} is not a whole number")))
            })
        };

        let pepper =
            match uses.pepper {
                true => Some(Pepper::new(required(PEPPER)?.into_bytes()).ok_or_else(|| {
                    ConfigError(format!("{PEPPER} needs at least {} bytes", Pepper::MIN_LEN))
                })?),
                false => None,
            };

        // Each duration is bounded, so that no instant computed from it can leave the clock's range.
        let seconds = |name: &str, default: u64, max: i64| -> Result<TimeDelta, ConfigError> {
            let value = number(name, default)?;
            i64::try_from(value)
                .ok()
                .filter(|seconds| (1..=max).contains(seconds))
                .and_then(TimeDelta::try_seconds)
                .ok_or_else(|| {
                    let years = max / (365 * 24 * 3600);
                    ConfigError(format!("{name} is out of range: 1 to {max} seconds ({years} years)"))
                })
        };
        let token_seconds = |name: &str, default: u64| seconds(name, default, TOKEN_DURATION_MAX_SECONDS);
        let lifetimes = Lifetimes {
            ttl: token_seconds(TOKEN_TTL_SECONDS, 300)?,
            refresh_grace: token_seconds(REFRESH_GRACE_SECONDS, 600)?,
            refresh_max_age: token_seconds(REFRESH_MAX_AGE_SECONDS, 24 * 3600)?,
        };
        let tokens = match uses.signing_key {
            true => {
                let algorithm = algorithm(&lookup)?;
                let current = required(SIGNING_KEY)?;
                let keys = match lookup(PUBLIC_KEYS) {
                    Some(_) => SigningKeys::with_public_keys(algorithm, &current, public_keys(&lookup)?)
                        .map_err(|err| match err {
                            SigningKeyError::NotPublished(_) => ConfigError(format!("{err} ({PUBLIC_KEYS})")),
                            SigningKeyError::Key(message) => ConfigError(message),
                        })?,
                    None => {
                        let previous = lookup(SIGNING_KEY_PREVIOUS);
                        SigningKeys::from_pems(algorithm, &current, previous.as_deref())
                            .map_err(ConfigError)?
                    }
                };
                Some(TokenService::new(keys, issuer(&lookup), audience(&lookup), lifetimes))
            }
            false => None,
        };

        let credentials = match lookup(ADMIN_CREDENTIALS) {
            Some(json) => admin_credentials(&json)?,
            None => Credentials::default(),
        };

        let max_total_usage = u32::try_from(number(DEFAULT_MAX_TOTAL_USAGE, 10_000)?)
            .ok()
            .filter(|n| (1..=MAX_TOTAL_USAGE).contains(n))
            .ok_or_else(|| ConfigError(format!("{DEFAULT_MAX_TOTAL_USAGE} is out of range")))?;
        let key_defaults = KeyDefaults {
            validity_seconds: seconds(DEFAULT_VALIDITY_SECONDS, 365 * 24 * 3600, VALIDITY_MAX_SECONDS)?
                .num_seconds() as u64,
            max_total_usage,
        };
        let trust_proxy_headers = match lookup(TRUST_PROXY_HEADERS).as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ConfigError(format!("{TRUST_PROXY_HEADERS} must be true or false"))),
        };
        Ok(Self { pepper, tokens, credentials, key_defaults, trust_proxy_headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup_with(overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let overrides: Vec<(String, String)> =
            overrides.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Config::from_lookup(move |name| {
            if let Some((_, value)) = overrides.iter().find(|(k, _)| k == name) {
                return (!value.is_empty()).then(|| value.clone());
            }
            match name {
                PEPPER => Some("a-pepper-of-enough-bytes".into()),
                SIGNING_KEY => Some(pem.clone()),
                _ => None,
            }
        })
    }

    #[test]
    fn a_lambda_without_a_table_fails_its_start_naming_the_variable() {
        let err = TableConfig::from_lookup(|_| None).err().expect("refused").to_string();
        assert_eq!(
            err,
            "configuration: KEYGATE_TABLE_NAME is not set: a Lambda keeps its keys in that DynamoDB table"
        );
        assert!(TableConfig::from_lookup(|name| (name == TABLE_NAME).then(|| " ".into())).is_err());
        let table = TableConfig::from_lookup(|name| match name {
            TABLE_NAME => Some("keygate".into()),
            DYNAMODB_ENDPOINT => Some("http://127.0.0.1:8000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (table.name.as_str(), table.endpoint.as_deref()),
            ("keygate", Some("http://127.0.0.1:8000"))
        );
    }

    #[test]
    fn defaults_apply_when_only_the_secrets_are_given() {
        let config = lookup_with(&[]).unwrap();
        assert_eq!(config.key_defaults.max_total_usage, 10_000);
        assert_eq!(config.key_defaults.validity_seconds, 365 * 24 * 3600);
        assert!(config.credentials.is_empty());
        let tokens = config.tokens.expect("built with the signing key");
        assert_eq!((tokens.ttl().num_seconds(), tokens.refresh_grace().num_seconds()), (300, 600));
    }

    #[test]
    fn durations_up_to_their_bounds_are_accepted() {
        let ten_years = "315360000";
        let config = lookup_with(&[
            (TOKEN_TTL_SECONDS, ten_years),
            (REFRESH_GRACE_SECONDS, ten_years),
            (REFRESH_MAX_AGE_SECONDS, ten_years),
            (DEFAULT_VALIDITY_SECONDS, "3153600000"),
        ])
        .unwrap();
        assert_eq!(config.key_defaults.validity_seconds, 3_153_600_000);
        assert_eq!(config.tokens.unwrap().refresh_grace().num_seconds(), 315_360_000);
    }

    /// A function reads only the secrets it uses: a setting it does not use is never looked up,
    /// so neither its environment nor its policy needs to name it.
    #[test]
    fn a_function_reads_only_the_secrets_it_uses() {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let cases = [
            (Uses::NO_SECRET, vec![]),
            (Uses::PEPPER, vec![PEPPER]),
            (Uses::SIGNING_KEY, vec![SIGNING_KEY]),
            (Uses::PEPPER_AND_SIGNING_KEY, vec![PEPPER, SIGNING_KEY]),
        ];
        for (uses, expected) in cases {
            let asked = std::cell::RefCell::new(Vec::new());
            let config = Config::for_uses(
                |name| {
                    asked.borrow_mut().push(name.to_owned());
                    match name {
                        PEPPER => Some("a-pepper-of-enough-bytes".into()),
                        SIGNING_KEY => Some(pem.clone()),
                        _ => None,
                    }
                },
                uses,
            )
            .unwrap();
            let secrets = [PEPPER, SIGNING_KEY];
            let mut asked_secrets: Vec<String> =
                asked.take().into_iter().filter(|name| secrets.contains(&name.as_str())).collect();
            asked_secrets.sort();
            assert_eq!(asked_secrets, expected, "{uses:?}");
            assert_eq!(uses.secrets(), expected, "{uses:?}");
            assert_eq!((config.pepper.is_some(), config.tokens.is_some()), (uses.pepper, uses.signing_key));
        }
    }

    /// In AWS the published keys come apart from the signing key, which must be among them.
    #[test]
    fn published_keys_must_include_the_signing_key() {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let other = SigningAlgorithm::EdDsa.generate_pem();
        let jwks_of = |pems: &[&str]| {
            let keys: Vec<_> =
                pems.iter().map(|pem| crate::tokens::public_jwk_of_pem(pem).unwrap()).collect();
            serde_json::json!({ "keys": keys }).to_string()
        };
        let config = |published: String| {
            Config::for_uses(
                |name| match name {
                    SIGNING_KEY => Some(pem.clone()),
                    PUBLIC_KEYS => Some(published.clone()),
                    // Not read when the keys are published apart.
                    SIGNING_KEY_PREVIOUS => Some("not a pem".into()),
                    _ => None,
                },
                Uses::SIGNING_KEY,
            )
        };
        let tokens = config(jwks_of(&[&pem, &other])).unwrap().tokens.unwrap();
        assert_eq!(tokens.public_keys().jwks().keys.len(), 2);

        let err = config(jwks_of(&[&other])).err().unwrap().to_string();
        assert!(err.contains("is not among the published keys (KEYGATE_PUBLIC_KEYS)"), "{err}");
        let err = config("{\"keys\":[]}".into()).err().unwrap().to_string();
        assert_eq!(err, "configuration: KEYGATE_PUBLIC_KEYS: the JWKS has no key");
        let err = public_keys(|_| None).err().unwrap().to_string();
        assert!(err.starts_with("configuration: KEYGATE_PUBLIC_KEYS is not set"), "{err}");
    }

    #[test]
    fn a_missing_or_bad_setting_fails_the_start_with_its_name() {
        let cases = [
            (PEPPER, "", "KEYGATE_PEPPER is not set"),
            (PEPPER, "short", "KEYGATE_PEPPER needs at least 16 bytes"),
            (SIGNING_KEY, "", "KEYGATE_SIGNING_KEY is not set"),
            (SIGNING_KEY, "not a pem", "signing key is not a PKCS#8 PEM"),
            (JWT_ALG, "HS256", "KEYGATE_JWT_ALG must be EdDSA, ES256 or RS256"),
            (JWT_ALG, "ES256", "signing key is not a PKCS#8 PEM for Es256"),
            (TRUST_PROXY_HEADERS, "yes", "KEYGATE_TRUST_PROXY_HEADERS must be true or false"),
            (TOKEN_TTL_SECONDS, "0", "KEYGATE_TOKEN_TTL_SECONDS is out of range"),
            (
                REFRESH_GRACE_SECONDS,
                "9000000000000",
                "KEYGATE_REFRESH_GRACE_SECONDS is out of range: 1 to 315360000 seconds (10 years)",
            ),
            (TOKEN_TTL_SECONDS, "315360001", "KEYGATE_TOKEN_TTL_SECONDS is out of range: 1 to 315360000"),
            (
                REFRESH_MAX_AGE_SECONDS,
                "18446744073709551615",
                "KEYGATE_REFRESH_MAX_AGE_SECONDS is out of range",
            ),
            (
                DEFAULT_VALIDITY_SECONDS,
                "3153600001",
                "KEYGATE_DEFAULT_VALIDITY_SECONDS is out of range: 1 to 3153600000 seconds (100 years)",
            ),
            (REFRESH_GRACE_SECONDS, "soon", "KEYGATE_REFRESH_GRACE_SECONDS is not a whole number"),
            (DEFAULT_MAX_TOTAL_USAGE, "3000000000", "KEYGATE_DEFAULT_MAX_TOTAL_USAGE is out of range"),
            (ADMIN_CREDENTIALS, "{}", "KEYGATE_ADMIN_CREDENTIALS is not a credential list"),
            (ADMIN_CREDENTIALS, r#""[{\"secret_key\":\"s3cr3t\"}]""#, "(line 1, column"),
            (
                ADMIN_CREDENTIALS,
                r#"[{"access_key":"AK1","secret_key":"s3cr3t","domain_id":"d"}]"#,
                "KEYGATE_ADMIN_CREDENTIALS: admin credential AK1 has a secret_key shorter than 16 bytes",
            ),
            (
                ADMIN_CREDENTIALS,
                r#"[{"access_key":"AK1","secret_key":"s3cr3t-s3cr3t-s3cr3t","domain_id":"d"},
                    {"access_key":"AK1","secret_key":"s3cr3t-s3cr3t-s3cr3t-2","domain_id":"e"}]"#,
                "admin access key AK1 is listed more than once",
            ),
        ];
        for (name, value, expected) in cases {
            let message = lookup_with(&[(name, value)]).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{name}={value:?}: {message:?}");
            assert!(!message.contains("s3cr3t"), "a secret in the message: {message}");
        }
    }
}
