//! NCP API Gateway signature v2 on admin requests:
//! `base64(HMAC-SHA256(secret, METHOD + " " + path?query + "\n" + timestamp + "\n" + accessKey))`.
//!
//! [`Credentials::verify`] is what the authorizer (in AWS) and the local server run before any
//! admin handler. The replay nonce that state-changing handlers store is in [`crate::replay`].

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

use crate::limits::{ADMIN_SECRET_MIN_BYTES, SIGNATURE_MAX_SKEW};
use crate::model::{Caller, Timestamp};
use crate::telemetry::{self, Metric};

pub const TIMESTAMP_HEADER: &str = "x-ncp-apigw-timestamp";
pub const ACCESS_KEY_HEADER: &str = "x-ncp-iam-access-key";
pub const SIGNATURE_HEADER: &str = "x-ncp-apigw-signature-v2";
/// NCP's generated SDK clients send the same HMAC under this name.
pub const SIGNATURE_ALIAS_HEADER: &str = "x-ncp-apigw-signature-v1";

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Deserialize)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub domain_id: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("domain_id", &self.domain_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("timestamp is not epoch milliseconds")]
    MalformedTimestamp,
    #[error("timestamp is more than 5 minutes away")]
    Skewed,
    #[error("signature does not match")]
    Mismatch,
    #[error("request already seen")]
    Replayed,
}

pub fn string_to_sign(method: &str, path_and_query: &str, timestamp: &str, access_key: &str) -> String {
    format!("{method} {path_and_query}\n{timestamp}\n{access_key}")
}

fn mac(secret: &str, method: &str, path_and_query: &str, timestamp: &str, access_key: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign(method, path_and_query, timestamp, access_key).as_bytes());
    mac
}

/// The signature a client sends.
pub fn sign(secret: &str, method: &str, path_and_query: &str, timestamp: &str, access_key: &str) -> String {
    STANDARD.encode(mac(secret, method, path_and_query, timestamp, access_key).finalize().into_bytes())
}

#[derive(Clone, Debug, Default)]
pub struct Credentials(HashMap<String, Credential>);

/// Why a credential list is refused at start. Each names the access key, never the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("an admin credential has an empty access_key or domain_id")]
    Empty,
    #[error("admin credential {0} has a secret_key shorter than {ADMIN_SECRET_MIN_BYTES} bytes")]
    ShortSecret(String),
    #[error("admin access key {0} is listed more than once")]
    Duplicate(String),
}

impl Credentials {
    /// Refuses a list anyone could sign for: an empty or short secret, or one access key twice
    /// (only one of the two secrets would work, and which one would be an accident).
    pub fn new(list: Vec<Credential>) -> Result<Self, CredentialError> {
        let mut credentials = HashMap::with_capacity(list.len());
        for credential in list {
            if credential.access_key.is_empty() || credential.domain_id.is_empty() {
                return Err(CredentialError::Empty);
            }
            if credential.secret_key.len() < ADMIN_SECRET_MIN_BYTES {
                return Err(CredentialError::ShortSecret(credential.access_key));
            }
            if let Some(twice) = credentials.insert(credential.access_key.clone(), credential) {
                return Err(CredentialError::Duplicate(twice.access_key));
            }
        }
        Ok(Self(credentials))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the signature headers of a request. `path_and_query` is the path as the client sent
    /// it, with its query string. A refusal is counted ([`Metric::SignatureRefused`]).
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Result<Caller, SignatureError> {
        let verified = self.check(method, path_and_query, headers, now);
        if verified.is_err() {
            telemetry::count(Metric::SignatureRefused);
        }
        verified
    }

    fn check(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        now: Timestamp,
    ) -> Result<Caller, SignatureError> {
        let timestamp = header(headers, TIMESTAMP_HEADER)?;
        let access_key = header(headers, ACCESS_KEY_HEADER)?;
        let signature = signature_header(headers)?;
        let millis: i64 = timestamp.parse().map_err(|_| SignatureError::MalformedTimestamp)?;
        let skew = (now.timestamp_millis() as i128 - millis as i128).abs();
        if skew > SIGNATURE_MAX_SKEW.num_milliseconds() as i128 {
            return Err(SignatureError::Skewed);
        }
        let presented = STANDARD.decode(signature).unwrap_or_default();
        // An unknown access key costs the same HMAC and gets the same answer as a wrong
        // signature, so neither timing nor message tells which access keys exist.
        let (secret, credential) = match self.0.get(access_key) {
            Some(credential) => (credential.secret_key.as_str(), Some(credential)),
            None => ("no such access key", None),
        };
        let matches =
            mac(secret, method, path_and_query, timestamp, access_key).verify_slice(&presented).is_ok();
        let credential = credential.filter(|_| matches).ok_or(SignatureError::Mismatch)?;
        Ok(Caller { domain_id: credential.domain_id.clone(), access_key: access_key.to_owned() })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::MissingHeader(name))
}

fn signature_header(headers: &HeaderMap) -> Result<&str, SignatureError> {
    header(headers, SIGNATURE_HEADER)
        .or_else(|_| header(headers, SIGNATURE_ALIAS_HEADER))
        .map_err(|_| SignatureError::MissingHeader(SIGNATURE_HEADER))
}

/// The signature a request presents, under either header name.
pub fn presented_signature(headers: &HeaderMap) -> Option<&str> {
    signature_header(headers).ok()
}

/// The instant a request says it was signed at.
pub fn presented_timestamp(headers: &HeaderMap) -> Option<Timestamp> {
    let millis: i64 = header(headers, TIMESTAMP_HEADER).ok()?.parse().ok()?;
    Timestamp::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use http::HeaderValue;

    const SECRET: &str = "local-secret-key";
    const ACCESS_KEY: &str = "AKLOCALTEST";
    const TIMESTAMP: &str = "1764000000000";
    const PATH: &str = "/identity/v1/api-keys";

    // Worked out without this code:
    //   printf 'POST /identity/v1/api-keys\n1764000000000\nAKLOCALTEST' \
    //     | openssl dgst -sha256 -hmac 'local-secret-key' -binary | base64
    const EXPECTED: &str = "byO3d75uQpTVeSHznNIoSrUTOOeUu9/pAxSAraqAAic=";

    fn at(millis: i64) -> Timestamp {
        DateTime::from_timestamp_millis(millis).unwrap()
    }

    fn credentials() -> Credentials {
        Credentials::new(vec![Credential {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET.into(),
            domain_id: "domain-a".into(),
        }])
        .unwrap()
    }

    #[test]
    fn refuses_credentials_anyone_could_sign_for_naming_the_access_key_only() {
        let credential = |access_key: &str, secret_key: &str| Credential {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            domain_id: "domain-a".into(),
        };
        let cases = [
            (vec![credential("AK1", "")], CredentialError::ShortSecret("AK1".into())),
            (vec![credential("AK1", "fifteen-bytes!!")], CredentialError::ShortSecret("AK1".into())),
            (
                vec![credential("AK1", SECRET), credential("AK1", "another-long-secret")],
                CredentialError::Duplicate("AK1".into()),
            ),
            (vec![credential("", SECRET)], CredentialError::Empty),
        ];
        for (list, expected) in cases {
            let message = Credentials::new(list).unwrap_err();
            assert_eq!(message, expected);
            assert!(!message.to_string().contains("fifteen") && !message.to_string().contains(SECRET));
        }
        assert!(Credentials::new(vec![credential("AK1", "sixteen-bytes!!!")]).is_ok());
    }

    fn signed_headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
        headers.insert(ACCESS_KEY_HEADER, HeaderValue::from_static(ACCESS_KEY));
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        headers
    }

    #[test]
    fn signs_the_independently_computed_vector() {
        assert_eq!(sign(SECRET, "POST", PATH, TIMESTAMP, ACCESS_KEY), EXPECTED);
    }

    #[test]
    fn accepts_the_vector_and_names_the_callers_domain() {
        let caller = credentials()
            .verify("POST", PATH, &signed_headers(EXPECTED, TIMESTAMP), at(1764000000000 + 1000))
            .unwrap();
        assert_eq!(caller, Caller { domain_id: "domain-a".into(), access_key: ACCESS_KEY.into() });
    }

    #[test]
    fn accepts_the_v1_header_name_as_an_alias() {
        let mut headers = signed_headers(EXPECTED, TIMESTAMP);
        let value = headers.remove(SIGNATURE_HEADER).unwrap();
        headers.insert(SIGNATURE_ALIAS_HEADER, value);
        assert!(credentials().verify("POST", PATH, &headers, at(1764000000000)).is_ok());
    }

    #[test]
    fn rejects_bad_signatures() {
        let now = at(1764000000000);
        let wrong_secret = sign("another-secret", "POST", PATH, TIMESTAMP, ACCESS_KEY);
        let six_minutes_late = at(1764000000000 + 6 * 60 * 1000);
        let six_minutes_early = at(1764000000000 - 6 * 60 * 1000);
        let cases: Vec<(&str, &str, HeaderMap, Timestamp, SignatureError)> = vec![
            ("wrong secret", "POST", signed_headers(&wrong_secret, TIMESTAMP), now, SignatureError::Mismatch),
            ("other method", "PUT", signed_headers(EXPECTED, TIMESTAMP), now, SignatureError::Mismatch),
            ("not base64", "POST", signed_headers("%%%", TIMESTAMP), now, SignatureError::Mismatch),
            (
                "skew past 5 min",
                "POST",
                signed_headers(EXPECTED, TIMESTAMP),
                six_minutes_late,
                SignatureError::Skewed,
            ),
            (
                "skew before 5 min",
                "POST",
                signed_headers(EXPECTED, TIMESTAMP),
                six_minutes_early,
                SignatureError::Skewed,
            ),
            (
                "timestamp not a number",
                "POST",
                signed_headers(EXPECTED, "yesterday"),
                now,
                SignatureError::MalformedTimestamp,
            ),
        ];
        for (what, method, headers, when, expected) in cases {
            assert_eq!(credentials().verify(method, PATH, &headers, when), Err(expected), "{what}");
        }
    }

    #[test]
    fn rejects_missing_headers_and_unknown_access_keys() {
        let now = at(1764000000000);
        for name in [TIMESTAMP_HEADER, ACCESS_KEY_HEADER, SIGNATURE_HEADER] {
            let mut headers = signed_headers(EXPECTED, TIMESTAMP);
            headers.remove(name);
            assert_eq!(
                credentials().verify("POST", PATH, &headers, now),
                Err(SignatureError::MissingHeader(name))
            );
        }
        assert_eq!(
            Credentials::default().verify("POST", PATH, &signed_headers(EXPECTED, TIMESTAMP), now),
            Err(SignatureError::Mismatch),
            "an unknown access key is answered like a wrong signature"
        );
    }
}
