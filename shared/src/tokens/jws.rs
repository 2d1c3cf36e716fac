//! Access tokens as JWS compact serialisations (RFC 7515, section 7.1), signed and verified with
//! keys parsed once, at start (aws-lc-rs does the cryptography). The header is the same for every
//! token we sign (`alg`, `typ` `at+jwt`, `kid`), so it is encoded once too: a token costs one
//! serialisation of its claims, their base64url and one signature, written into one string. A
//! token is verified in one pass: its header decoded once, its signature checked under a parsed
//! public key, and only then its payload decoded for the caller.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::AlgorithmParameters;
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use super::{SigningAlgorithm, TOKEN_TYPE};

/// A private key, parsed, with the encoded header of the tokens it signs.
pub(super) struct CompactSigner {
    /// `base64url(header) + "."`: what every token starts with.
    header: String,
    key: KeyPair,
}

enum KeyPair {
    Ed25519(Ed25519KeyPair),
    /// ECDSA P-256 with SHA-256, the signature as the fixed 64 bytes of `r || s` that JWS takes.
    Es256(EcdsaKeyPair, SystemRandom),
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256(RsaKeyPair, SystemRandom),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

impl CompactSigner {
    /// `der` is the private key as `jsonwebtoken` reads it from a PEM: PKCS#8 for EdDSA and
    /// ES256, PKCS#1 for RS256.
    pub(super) fn new(algorithm: SigningAlgorithm, der: &[u8], kid: &str) -> Result<Self, String> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| format!("signing key for {algorithm:?}: {e}");
        let key = match algorithm {
            SigningAlgorithm::EdDsa => KeyPair::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
            SigningAlgorithm::Es256 => KeyPair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(rejected)?,
                SystemRandom::new(),
            ),
            SigningAlgorithm::Rs256 => {
                KeyPair::Rs256(RsaKeyPair::from_der(der).map_err(rejected)?, SystemRandom::new())
            }
        };
        let header = Header { alg: algorithm.name(), typ: TOKEN_TYPE, kid };
        let json = serde_json::to_vec(&header).map_err(|e| format!("token header: {e}"))?;
        let mut encoded = URL_SAFE_NO_PAD.encode(json);
        encoded.push('.');
        Ok(Self { header: encoded, key })
    }

    /// The token of `claims`: `header.payload.signature`, each part base64url without padding.
    pub(super) fn sign(&self, claims: &impl Serialize) -> Result<String, String> {
        let payload = serde_json::to_vec(claims).map_err(|e| format!("token claims: {e}"))?;
        let signature_length = match &self.key {
            KeyPair::Ed25519(_) | KeyPair::Es256(..) => 64,
            KeyPair::Rs256(key, _) => key.public_modulus_len(),
        };
        let mut token = String::with_capacity(
            self.header.len() + encoded_length(payload.len()) + 1 + encoded_length(signature_length),
        );
        token.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signing_input = token.as_bytes();
        let failed = |_| "signing failed".to_owned();
        match &self.key {
            KeyPair::Ed25519(key) => {
                let signature = key.sign(signing_input);
                append_part(&mut token, signature.as_ref());
            }
            KeyPair::Es256(key, random) => {
                let signature = key.sign(random, signing_input).map_err(failed)?;
                append_part(&mut token, &with_low_s(signature.as_ref()));
            }
            KeyPair::Rs256(key, random) => {
                let mut signature = vec![0; signature_length];
                key.sign(&RSA_PKCS1_SHA256, random, signing_input, &mut signature).map_err(failed)?;
                append_part(&mut token, &signature);
            }
        }
        Ok(token)
    }
}

fn append_part(token: &mut String, bytes: &[u8]) {
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(bytes, token);
}

/// The length of `bytes` bytes in base64url without padding.
fn encoded_length(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// The order n of P-256's group (SEC 2, section 2.4.2), in hex.
const P256_ORDER: &[u8] = b"FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

fn p256_order() -> BigUint {
    BigUint::parse_bytes(P256_ORDER, 16).expect("a hex constant")
}

/// Whether an ECDSA P-256 signature `r || s` has its `s` in the lower half, at most n/2. If `(r, s)`
/// verifies so does `(r, n - s)`: accepting only the low one makes each signature the one form of
/// itself, so a token cannot be re-encoded into another string that verifies (malleability).
fn is_low_s(signature: &[u8]) -> bool {
    signature.len() == 64 && BigUint::from_bytes_be(&signature[32..]) <= p256_order() >> 1
}

/// The same signature with `s` in the lower half (`n - s` for a high one), the form verifiers take.
fn with_low_s(signature: &[u8]) -> Vec<u8> {
    if is_low_s(signature) {
        return signature.to_vec();
    }
    let (r, s) = signature.split_at(32);
    let low = (p256_order() - BigUint::from_bytes_be(s)).to_bytes_be();
    let mut fixed = r.to_vec();
    fixed.resize(64 - low.len(), 0);
    fixed.extend(low);
    fixed
}

/// A published public key, parsed for the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct PublicKey {
    parsed: ParsedPublicKey,
    /// ECDSA: only signatures with a low `s` are accepted.
    ecdsa: bool,
}

impl PublicKey {
    /// The key of a JWK's parameters, which must be of `algorithm`'s type: `x` of an Ed25519 key,
    /// the point `(x, y)` of a P-256 key, `n` and `e` of an RSA key.
    pub(super) fn from_jwk(
        algorithm: SigningAlgorithm,
        parameters: &AlgorithmParameters,
    ) -> Result<Self, String> {
        let decoded =
            |member: &str| URL_SAFE_NO_PAD.decode(member).map_err(|_| "a member is not base64url".to_owned());
        let parsed = match (algorithm, parameters) {
            (SigningAlgorithm::EdDsa, AlgorithmParameters::OctetKeyPair(key)) => {
                ParsedPublicKey::new(&ED25519, decoded(&key.x)?)
            }
            (SigningAlgorithm::Es256, AlgorithmParameters::EllipticCurve(key)) => {
                // The uncompressed point (SEC 1): 4, then x and y, 32 bytes each.
                let (x, y) = (decoded(&key.x)?, decoded(&key.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("a P-256 coordinate is not 32 bytes".into());
                }
                let point = [vec![4], x, y].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            (SigningAlgorithm::Rs256, AlgorithmParameters::RSA(key)) => {
                let (n, e) = (decoded(&key.n)?, decoded(&key.e)?);
                let significant =
                    |bytes: &[u8]| bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len());
                let components =
                    RsaPublicKeyComponents { n: &n[significant(&n)..], e: &e[significant(&e)..] };
                components.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            }
            _ => return Err(format!("not a {} key", algorithm.name())),
        };
        let ecdsa = algorithm == SigningAlgorithm::Es256;
        parsed
            .map(|parsed| Self { parsed, ecdsa })
            .map_err(|e| format!("not a valid {} public key: {e}", algorithm.name()))
    }
}

/// The header of a received token: the members we sign with, and no other (a token we signed
/// has exactly these).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceivedHeader {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
}

/// The payload of a compact JWS whose signature verifies under the key that `key_for` picks for
/// its header (`None` refuses the token): three base64url parts, a JSON header, a valid signature.
/// `None` for anything else; the payload is neither decoded nor read before the signature holds.
pub(super) fn verified_payload<'k>(
    token: &str,
    key_for: impl FnOnce(&ReceivedHeader) -> Option<&'k PublicKey>,
) -> Option<Vec<u8>> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    let header: ReceivedHeader = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let key = key_for(&header)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if key.ecdsa && !is_low_s(&signature) {
        return None;
    }
    key.parsed.verify_sig(signing_input.as_bytes(), &signature).ok()?;
    URL_SAFE_NO_PAD.decode(payload).ok()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        sub: String,
        exp: i64,
        scope: String,
    }

    fn claims() -> Claims {
        Claims { sub: "api-key-0123456789ab".into(), exp: 4_102_444_800, scope: "read \"quoted\" é".into() }
    }

    /// A fresh key of `algorithm`: the signer, and what `jsonwebtoken` verifies with.
    fn signer_and_key(algorithm: SigningAlgorithm) -> (CompactSigner, DecodingKey) {
        signer_and_key_of(algorithm, &algorithm.generate_pem())
    }

    fn signer_and_key_of(algorithm: SigningAlgorithm, pem: &str) -> (CompactSigner, DecodingKey) {
        let encoding = match algorithm {
            SigningAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes()),
            SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            SigningAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        let jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt()).unwrap();
        let signer = CompactSigner::new(algorithm, encoding.as_bytes(), "the-kid").unwrap();
        (signer, DecodingKey::from_jwk(&jwk).unwrap())
    }

    fn verified(
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> jsonwebtoken::errors::Result<Claims> {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &validation).map(|data| data.claims)
    }

    fn decoded_part(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_jsonwebtoken_for_each_algorithm() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, key) = signer_and_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            assert_eq!(verified(&token, &key, algorithm.jwt()).unwrap(), claims(), "{algorithm:?}");
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, algorithm.jwt());
        }
    }

    #[test]
    fn the_header_holds_exactly_alg_typ_and_kid() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, _) = signer_and_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            let header = decoded_part(token.split('.').next().unwrap());
            assert_eq!(
                header,
                serde_json::json!({ "alg": algorithm.name(), "typ": "at+jwt", "kid": "the-kid" }),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn the_token_is_three_base64url_parts_without_padding() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, _) = signer_and_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3, "{token}");
            let base64url =
                |part: &&str| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            assert!(parts.iter().all(base64url), "{token}");
            assert_eq!(decoded_part(parts[1]), serde_json::to_value(claims()).unwrap());
            let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            let expected = if algorithm == SigningAlgorithm::Rs256 { 256 } else { 64 };
            assert_eq!(signature.len(), expected, "{algorithm:?}");
            assert!(token.capacity() >= token.len());
        }
    }

    #[test]
    fn a_tampered_token_fails_verification() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, key) = signer_and_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            let [header, payload, signature]: [&str; 3] =
                token.split('.').collect::<Vec<_>>().try_into().unwrap();
            let mut changed = claims();
            changed.scope = "admin".into();
            let other_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap());
            let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
            flipped[10] ^= 1;
            let other_kid = URL_SAFE_NO_PAD.encode(
                serde_json::json!({ "alg": algorithm.name(), "typ": "at+jwt", "kid": "another" }).to_string(),
            );
            let cases = [
                ("payload", format!("{header}.{other_payload}.{signature}")),
                ("signature", format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&flipped))),
                ("header", format!("{other_kid}.{payload}.{signature}")),
                ("no signature", format!("{header}.{payload}.")),
            ];
            for (what, forged) in cases {
                assert!(verified(&forged, &key, algorithm.jwt()).is_err(), "{algorithm:?}: {what}");
            }
            let (_, stranger) = signer_and_key(algorithm);
            assert!(verified(&token, &stranger, algorithm.jwt()).is_err(), "{algorithm:?}: another key");
        }
    }

    /// The signer of a fresh key of `algorithm`, and its public key as we parse it from its JWK.
    fn signer_and_public_key(algorithm: SigningAlgorithm) -> (CompactSigner, PublicKey) {
        let pem = algorithm.generate_pem();
        let jwk = super::super::public_jwk_of_pem(&pem).unwrap();
        let (signer, _) = signer_and_key_of(algorithm, &pem);
        (signer, PublicKey::from_jwk(algorithm, &jwk.algorithm).unwrap())
    }

    #[test]
    fn a_signed_token_verifies_under_its_parsed_public_key_for_each_algorithm() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, key) = signer_and_public_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            let mut seen = None;
            let payload = verified_payload(&token, |header| {
                seen = Some((header.alg.clone(), header.typ.clone(), header.kid.clone()));
                Some(&key)
            });
            let payload = payload.unwrap_or_else(|| panic!("{algorithm:?}: refused"));
            assert_eq!(serde_json::from_slice::<Claims>(&payload).unwrap(), claims());
            let expected =
                (algorithm.name().to_owned(), Some("at+jwt".to_owned()), Some("the-kid".to_owned()));
            assert_eq!(seen, Some(expected));
        }
    }

    #[test]
    fn a_tampered_or_misshapen_token_is_refused_by_the_verifier() {
        for algorithm in SigningAlgorithm::ALL {
            let (signer, key) = signer_and_public_key(algorithm);
            let (_, stranger) = signer_and_public_key(algorithm);
            let token = signer.sign(&claims()).unwrap();
            let [header, payload, signature]: [&str; 3] =
                token.split('.').collect::<Vec<_>>().try_into().unwrap();
            let mut changed = claims();
            changed.scope = "admin".into();
            let other_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap());
            let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
            flipped[10] ^= 1;
            let extra_member = URL_SAFE_NO_PAD.encode(
                serde_json::json!({ "alg": algorithm.name(), "typ": "at+jwt", "kid": "the-kid", "jku": "x" })
                    .to_string(),
            );
            let cases = [
                ("payload", format!("{header}.{other_payload}.{signature}")),
                ("signature", format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&flipped))),
                ("header member", format!("{extra_member}.{payload}.{signature}")),
                ("no signature", format!("{header}.{payload}.")),
                ("padded signature", format!("{token}=")),
                ("two parts", format!("{header}.{payload}")),
                ("four parts", format!("{header}.{payload}.{payload}.{signature}")),
                ("header not JSON", format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode("[1]"))),
            ];
            for (what, forged) in cases {
                assert!(verified_payload(&forged, |_| Some(&key)).is_none(), "{algorithm:?}: {what}");
            }
            assert!(verified_payload(&token, |_| Some(&stranger)).is_none(), "{algorithm:?}: another key");
            assert!(verified_payload(&token, |_| None).is_none(), "{algorithm:?}: no key for the header");
            assert!(verified_payload(&token, |_| Some(&key)).is_some(), "{algorithm:?}: the genuine token");
        }
    }

    /// `(r, n - s)` of an ES256 token's signature `(r, s)`: a signature of the same input too.
    fn with_s_negated(token: &str) -> String {
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let (r, s) = signature.split_at(32);
        let negated = (p256_order() - BigUint::from_bytes_be(s)).to_bytes_be();
        let mut other = r.to_vec();
        other.resize(64 - negated.len(), 0);
        other.extend(negated);
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(other))
    }

    #[test]
    fn an_es256_signature_with_a_high_s_is_refused_though_it_verifies() {
        let (signer, key) = signer_and_public_key(SigningAlgorithm::Es256);
        for _ in 0..16 {
            let token = signer.sign(&claims()).unwrap();
            let high = with_s_negated(&token);
            let (signing_input, signature) = high.rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert!(
                key.parsed.verify_sig(signing_input.as_bytes(), &signature).is_ok(),
                "(r, n - s) is a valid signature of the same input"
            );
            assert!(verified_payload(&high, |_| Some(&key)).is_none(), "the high-S form is refused");
            assert!(verified_payload(&token, |_| Some(&key)).is_some(), "the token as we signed it passes");
        }
    }

    /// About half of raw ECDSA signatures have a high `s`: 64 in a row all low is no chance.
    #[test]
    fn every_es256_signature_we_make_has_a_low_s() {
        let (signer, _) = signer_and_public_key(SigningAlgorithm::Es256);
        for _ in 0..64 {
            let token = signer.sign(&claims()).unwrap();
            let signature = URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap();
            assert!(is_low_s(&signature), "{token}");
        }
    }

    #[test]
    fn a_p256_key_with_a_short_coordinate_is_refused() {
        let mut jwk = super::super::public_jwk_of_pem(&SigningAlgorithm::Es256.generate_pem()).unwrap();
        assert!(PublicKey::from_jwk(SigningAlgorithm::Es256, &jwk.algorithm).is_ok());
        let AlgorithmParameters::EllipticCurve(key) = &mut jwk.algorithm else { panic!("a P-256 JWK") };
        let mut x = URL_SAFE_NO_PAD.decode(&key.x).unwrap();
        x.remove(0);
        key.x = URL_SAFE_NO_PAD.encode(&x);
        let refused = PublicKey::from_jwk(SigningAlgorithm::Es256, &jwk.algorithm).err();
        assert_eq!(refused.as_deref(), Some("a P-256 coordinate is not 32 bytes"));
    }

    #[test]
    fn a_public_key_of_another_type_than_its_algorithm_is_refused() {
        let ed25519 = super::super::public_jwk_of_pem(&SigningAlgorithm::EdDsa.generate_pem()).unwrap();
        assert!(PublicKey::from_jwk(SigningAlgorithm::Es256, &ed25519.algorithm).is_err());
        assert!(PublicKey::from_jwk(SigningAlgorithm::Rs256, &ed25519.algorithm).is_err());
        let (_, es256) = signer_and_public_key(SigningAlgorithm::Es256);
        let (_, eddsa) = signer_and_public_key(SigningAlgorithm::EdDsa);
        let token = signer_and_public_key(SigningAlgorithm::Es256).0.sign(&claims()).unwrap();
        assert!(verified_payload(&token, |_| Some(&eddsa)).is_none(), "an ES256 token under an EdDSA key");
        assert!(verified_payload(&token, |_| Some(&es256)).is_none(), "under another ES256 key");
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let ed25519 = SigningAlgorithm::EdDsa.generate_pem();
        let der = EncodingKey::from_ed_pem(ed25519.as_bytes()).unwrap();
        assert!(CompactSigner::new(SigningAlgorithm::Es256, der.as_bytes(), "kid").is_err());
        assert!(CompactSigner::new(SigningAlgorithm::Rs256, der.as_bytes(), "kid").is_err());
        assert!(CompactSigner::new(SigningAlgorithm::EdDsa, b"not a key", "kid").is_err());
    }
}
