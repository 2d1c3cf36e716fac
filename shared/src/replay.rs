//! The replay nonce of a signed state-changing admin request, which the request's own write
//! stores in the same transaction so that a captured request is accepted once.
//!
//! Its own module, low in the graph: the HTTP surfaces make it, the stores keep it, and neither
//! needs the other to do so.

use sha2::{Digest, Sha256};

use crate::limits::{MAX_BODY_BYTES, SIGNATURE_MAX_SKEW};
use crate::model::Timestamp;

/// The identity of one signed state-changing request: its signature and the hash of its body
/// (NCP's string to sign does not cover the body, so two bodies signed in the same millisecond
/// are two requests), or its signature alone on routes whose body changes nothing. Stored with a
/// time to live just past the signature's validity window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayNonce {
    pub id: String,
    pub expires_at: Timestamp,
}

impl ReplayNonce {
    /// The nonce of a request presenting `signature` with `body` (empty where the body changes
    /// nothing), accepted at `now`.
    pub fn new(signature: &str, body: &[u8], now: Timestamp) -> Self {
        let mut digest = Sha256::new();
        digest.update(signature.as_bytes());
        digest.update(b"\n");
        digest.update(Sha256::digest(canonical_body(body)));
        Self { id: hex::encode(digest.finalize()), expires_at: now + SIGNATURE_MAX_SKEW * 2 }
    }
}

/// The body as the handlers understand it, so a replay cannot pass as a new request by changing
/// only what they ignore: JSON is re-serialised (white space and key order fall away), a blank
/// body is empty, anything else stays as it is (and is refused by the handler anyway).
fn canonical_body(body: &[u8]) -> Vec<u8> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    // A body this large is refused by the handler; it is not worth parsing here.
    if body.len() > MAX_BODY_BYTES {
        return body.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => without_nulls(json).to_string().into_bytes(),
        Err(_) => body.to_vec(),
    }
}

/// A `null` field means what an absent one means to every handler.
fn without_nulls(json: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match json {
        Value::Object(fields) => Value::Object(
            fields.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    const SIGNATURE: &str = "byO3d75uQpTVeSHznNIoSrUTOOeUu9/pAxSAraqAAic=";

    fn now() -> Timestamp {
        DateTime::from_timestamp_millis(1764000000000).unwrap()
    }

    #[test]
    fn bodies_that_mean_the_same_share_a_nonce() {
        let nonce = |body: &[u8]| ReplayNonce::new(SIGNATURE, body, now()).id;
        assert_eq!(nonce(b""), nonce(b"\n  "), "blank bodies");
        assert_eq!(
            nonce(br#"{"a":1,"b":[2]}"#),
            nonce(b"{ \"b\": [2],\n \"a\": 1 } "),
            "white space and key order"
        );
        assert_eq!(nonce(br#"{"a":1}"#), nonce(br#"{"a":1,"b":null}"#), "null fields");
        assert_ne!(nonce(br#"{"a":1}"#), nonce(br#"{"a":2}"#));
    }

    #[test]
    fn replay_nonces_differ_by_body_and_signature_and_repeat_for_the_same_request() {
        let a = ReplayNonce::new(SIGNATURE, b"{\"a\":1}", now());
        let b = ReplayNonce::new(SIGNATURE, b"{\"a\":2}", now());
        let other_signature = ReplayNonce::new("another", b"{\"a\":1}", now());
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, other_signature.id);
        assert_eq!(a, ReplayNonce::new(SIGNATURE, b"{\"a\":1}", now()));
    }

    #[test]
    fn a_nonce_outlives_the_signature_window_on_both_sides() {
        let nonce = ReplayNonce::new(SIGNATURE, b"", now());
        assert_eq!(nonce.expires_at - now(), SIGNATURE_MAX_SKEW * 2);
    }
}
