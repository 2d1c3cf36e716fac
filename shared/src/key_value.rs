//! Key values (`kg_<id hex>_<secret><checksum>`) and their keyed hashes.
//!
//! The id inside the value addresses the store directly; the checksum lets a mistyped or forged
//! value be refused without a store call; only an HMAC of the value, keyed by a server-side
//! pepper, is ever stored.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::Sha256;

use crate::model::{ApiKeyId, ID_HEX_LEN, SecretHash};

const PREFIX: &str = "kg_";
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
pub const KEY_VALUE_LEN: usize = PREFIX.len() + ID_HEX_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// A well-formed key value. Its `Debug` never shows the value, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue(String);

impl KeyValue {
    pub fn generate(id: &ApiKeyId) -> Self {
        let secret: String =
            rand::rng().sample_iter(&Alphanumeric).take(SECRET_LEN).map(char::from).collect();
        let body = format!("{PREFIX}{}_{secret}", id.hex());
        let checksum = checksum(&body);
        Self(body + &checksum)
    }

    /// Accepts only values this service could have generated (prefix, lengths, alphabet, checksum).
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != KEY_VALUE_LEN || !value.is_ascii() {
            return None;
        }
        let rest = value.strip_prefix(PREFIX)?;
        let (id_hex, rest) = rest.split_at(ID_HEX_LEN);
        ApiKeyId::from_hex(id_hex)?;
        let rest = rest.strip_prefix('_')?;
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (body, given) = value.split_at(value.len() - CHECKSUM_LEN);
        (checksum(body) == given).then(|| Self(value.to_owned()))
    }

    pub fn api_key_id(&self) -> ApiKeyId {
        let hex = &self.0[PREFIX.len()..PREFIX.len() + ID_HEX_LEN];
        ApiKeyId::from_hex(hex).expect("a parsed key value holds a valid id")
    }

    pub fn last4(&self) -> String {
        self.0[self.0.len() - 4..].to_owned()
    }

    /// The value in clear, for the one response that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyValue(*****{})", self.last4())
    }
}

/// CRC32 of everything before the checksum, as 6 base62 digits.
fn checksum(body: &str) -> String {
    let crc = crc32fast::hash(body.as_bytes());
    format!("{:0>width$}", base62::encode(crc), width = CHECKSUM_LEN)
}

/// The server-side key of the secret hashes: an HMAC keyed once, which each hash starts from.
#[derive(Clone)]
pub struct Pepper(Hmac<Sha256>);

impl Pepper {
    pub const MIN_LEN: usize = 16;

    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= Self::MIN_LEN)
            .then(|| Self(Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes any key length")))
    }

    pub fn hash(&self, value: &KeyValue) -> SecretHash {
        let mut mac = self.0.clone();
        mac.update(value.0.as_bytes());
        SecretHash::from_stored(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_parse_and_carry_their_id() {
        let id = ApiKeyId::generate();
        let value = KeyValue::generate(&id);
        assert_eq!(value.expose().len(), KEY_VALUE_LEN);
        let parsed = KeyValue::parse(value.expose()).expect("parses");
        assert_eq!(parsed.api_key_id(), id);
    }

    #[test]
    fn checksum_is_crc32_in_six_base62_digits() {
        // CRC32("kg_0123456789ab_" + 32 × 'A') worked out with Python:
        // zlib.crc32(b"kg_0123456789ab_" + b"A"*32) == 1135791423, which is "1ErfEV" in base62
        // over 0-9A-Za-z, zero-padded to six digits.
        let body = format!("kg_0123456789ab_{}", "A".repeat(32));
        assert_eq!(crc32fast::hash(body.as_bytes()), 1135791423);
        assert_eq!(checksum(&body), "1ErfEV");
        assert!(KeyValue::parse(&format!("{body}1ErfEV")).is_some());
    }

    #[test]
    fn any_single_character_change_is_refused() {
        let value = KeyValue::generate(&ApiKeyId::generate());
        let text = value.expose();
        for position in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[position] = if bytes[position] == b'z' { b'y' } else { b'z' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(KeyValue::parse(&changed).is_none(), "accepted a change at {position}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let good = KeyValue::generate(&ApiKeyId::generate()).expose().to_owned();
        let cases = [
            ("empty", String::new()),
            ("wrong prefix", good.replacen("kg_", "kx_", 1)),
            ("too short", good[..good.len() - 1].to_owned()),
            ("too long", format!("{good}0")),
            ("non-ascii", format!("{}é", &good[..good.len() - 2])),
            ("separator missing", good.replacen('_', "-", 2)),
        ];
        for (what, value) in cases {
            assert!(KeyValue::parse(&value).is_none(), "{what}");
        }
    }

    #[test]
    fn hashes_depend_on_the_pepper_and_debug_hides_secrets() {
        let value = KeyValue::generate(&ApiKeyId::generate());
        let a = Pepper::new(vec![1; 32]).unwrap().hash(&value);
        let b = Pepper::new(vec![2; 32]).unwrap().hash(&value);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        let debug = format!("{value:?} {a:?}");
        assert!(!debug.contains(value.expose()) && !debug.contains(a.as_str()));
    }

    #[test]
    fn a_hash_is_the_hex_hmac_sha256_of_the_value_under_the_pepper() {
        // Stored hashes must keep matching: this one is Python's `hmac.new(bytes([1] * 32),
        // value, hashlib.sha256).hexdigest()`.
        let value = KeyValue::parse("kg_64bf0318337b_RrY0GcueTzshTs0isR0iTKYKPpySrXXE2poKUI").unwrap();
        let pepper = Pepper::new(vec![1; 32]).unwrap();
        let expected = "76bdd777fbe856495cd1f912ef79a29bf9342021239054ea0d1a8549398fa5d6";
        assert_eq!(pepper.hash(&value).as_str(), expected);
    }
}
