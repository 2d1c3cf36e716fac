//! The token-signing keys: the algorithms we sign with, the private keys a signer holds, and the
//! public keys (the JWKS) that verifiers trust.

use bytes::Bytes;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};

use super::algorithm::SigningAlgorithm;
use super::jws;

/// A published key, with the one algorithm tokens under it must name: the algorithm comes from
/// our configuration, never from the token.
#[derive(Clone)]
pub(super) struct VerifyingKey {
    pub(super) kid: String,
    pub(super) algorithm: SigningAlgorithm,
    pub(super) key: jws::PublicKey,
}

/// The members of a JWK that only a private key has (RFC 7518, section 6): `d` for EC, OKP and
/// RSA keys, the CRT parameters of RSA, `k` of a symmetric key.
const PRIVATE_PARTS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The public keys tokens verify under, as `/.well-known/jwks.json` publishes them (current and
/// previous, across a rotation). Public: the functions that only publish or verify hold these and
/// no private key.
#[derive(Clone)]
pub struct PublicKeys {
    pub(super) jwks: JwkSet,
    /// The JWKS as JSON, serialised once: the JWKS route answers with these very bytes.
    pub(super) document: Bytes,
    verifying: Vec<VerifyingKey>,
}

impl PublicKeys {
    /// From a JWKS document, as JSON or as its base64url encoding (what [`Self::encoded`] gives: a
    /// form with no quote or space, which a stack parameter passes through any shell and
    /// `sam deploy --parameter-overrides` unharmed). Every key needs a `kid` and one of our
    /// algorithms as `alg`, of its own key type, and no private part: a private key given here
    /// would sit in a stack parameter and four functions' environments.
    pub fn parse(document: &str) -> Result<Self, String> {
        use base64::Engine;
        let document = document.trim();
        let json = match document.starts_with('{') {
            true => document.as_bytes().to_vec(),
            false => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(document.trim_end_matches('='))
                .map_err(|_| "not a JWKS (JSON, or JSON in base64url)".to_owned())?,
        };
        // serde's message quotes no more than a token of input; a private part is never quoted.
        let raw: serde_json::Value = serde_json::from_slice(&json).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys =
            raw.get("keys").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for key in keys {
            if let Some(part) = PRIVATE_PARTS.iter().find(|part| key.get(**part).is_some()) {
                let kid = key.get("kid").and_then(serde_json::Value::as_str).unwrap_or("without a kid");
                return Err(format!("key {kid} holds a private part ({part}): publish public keys only"));
            }
        }
        let jwks: JwkSet = serde_json::from_value(raw).map_err(|e| format!("not a JWKS: {e}"))?;
        Self::from_jwks(jwks)
    }

    /// The public keys in a text: a JWKS document (JSON or base64url), or a PKCS#8 PEM private
    /// key (its public half).
    pub fn read(text: &str) -> Result<Self, String> {
        match text.trim_start().starts_with("-----BEGIN") {
            true => Self::from_jwks(JwkSet { keys: vec![public_jwk_of_pem(text)?] }),
            false => Self::parse(text).map_err(|e| format!("not a PKCS#8 PEM private key, and {e}")),
        }
    }

    /// The JWKS document in base64url: the stack's `SigningPublicKeys`.
    pub fn encoded(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.document)
    }

    /// These keys, then those of `more` not among them.
    pub fn and(&self, more: &PublicKeys) -> Result<Self, String> {
        let mut keys = self.jwks.keys.clone();
        let new =
            more.jwks.keys.iter().filter(|jwk| {
                !self.verifying.iter().any(|known| Some(&known.kid) == jwk.common.key_id.as_ref())
            });
        keys.extend(new.cloned());
        Self::from_jwks(JwkSet { keys })
    }

    fn from_jwks(jwks: JwkSet) -> Result<Self, String> {
        if jwks.keys.is_empty() {
            return Err("the JWKS has no key".into());
        }
        let mut verifying: Vec<VerifyingKey> = Vec::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            let kid = jwk.common.key_id.clone().ok_or("a published key has no kid")?;
            let named = jwk.common.key_algorithm.map(|alg| alg.to_string()).unwrap_or_default();
            let algorithm = SigningAlgorithm::parse(&named)
                .ok_or_else(|| format!("key {kid} names the algorithm {named:?}, not one of ours"))?;
            if !algorithm.fits(&jwk.algorithm) {
                return Err(format!("key {kid} is not a {} key", algorithm.name()));
            }
            if jwk.common.public_key_use.as_ref().is_some_and(|usage| *usage != PublicKeyUse::Signature) {
                return Err(format!("key {kid} is not for signatures (use)"));
            }
            if verifying.iter().any(|key| key.kid == kid) {
                return Err(format!("key {kid} is listed twice"));
            }
            let key =
                jws::PublicKey::from_jwk(algorithm, &jwk.algorithm).map_err(|e| format!("key {kid}: {e}"))?;
            verifying.push(VerifyingKey { kid, algorithm, key });
        }
        let document = serde_json::to_vec(&jwks).map_err(|e| format!("JWKS: {e}"))?.into();
        Ok(Self { jwks, document, verifying })
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The JWKS as JSON.
    pub fn document(&self) -> &str {
        std::str::from_utf8(&self.document).expect("serde_json writes UTF-8")
    }

    /// The JWKS as JSON, shared: a clone is the same bytes, not a copy.
    pub fn shared_document(&self) -> Bytes {
        self.document.clone()
    }

    pub(super) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.iter().find(|key| key.kid == kid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The signing key itself is unusable.
    #[error("{0}")]
    Key(String),
    /// Its public key is not published: nobody could verify what it signs.
    #[error("the signing key's public key ({0}) is not among the published keys")]
    NotPublished(String),
}

/// The key tokens are signed with, parsed once, and the public keys they verify under.
pub struct SigningKeys {
    pub(super) algorithm: SigningAlgorithm,
    pub(super) signer: jws::CompactSigner,
    pub(super) published: PublicKeys,
}

impl SigningKeys {
    /// `current` signs; `previous` (the key rotated out) still verifies. Both are published: what
    /// the local server does, which holds every key itself.
    pub fn from_pems(
        algorithm: SigningAlgorithm,
        current: &str,
        previous: Option<&str>,
    ) -> Result<Self, String> {
        let (encoding, current_jwk) = load_pem(algorithm, current)?;
        let mut jwks = vec![current_jwk];
        // The key rotated out may be of the algorithm used before a switch (EdDSA to RS256, say):
        // it keeps verifying the tokens it signed, under its own algorithm.
        if let Some(previous) = previous {
            let mut algorithms = SigningAlgorithm::ALL.into_iter().filter(|other| *other != algorithm);
            let (_, jwk) = load_pem(algorithm, previous)
                .or_else(|err| algorithms.find_map(|other| load_pem(other, previous).ok()).ok_or(err))
                .map_err(|err| format!("previous {err}"))?;
            // The same key as both (a rotation not yet made) is published once.
            if jwk.common.key_id != jwks[0].common.key_id {
                jwks.push(jwk);
            }
        }
        let kid = jwks[0].common.key_id.clone().unwrap_or_default();
        let signer = jws::CompactSigner::new(algorithm, encoding.as_bytes(), &kid)?;
        let published = PublicKeys::from_jwks(JwkSet { keys: jwks })?;
        Ok(Self { algorithm, signer, published })
    }

    /// `current` signs; tokens verify under the keys published apart from it (in AWS, what
    /// `KEYGATE_PUBLIC_KEYS` gives the JWKS function), which must include `current`'s own:
    /// otherwise nobody could verify what it signs.
    pub fn with_public_keys(
        algorithm: SigningAlgorithm,
        current: &str,
        published: PublicKeys,
    ) -> Result<Self, SigningKeyError> {
        let (encoding, jwk) = load_pem(algorithm, current).map_err(SigningKeyError::Key)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        match published.get(&kid) {
            Some(key)
                if key.algorithm == algorithm
                    && published.jwks.find(&kid).is_some_and(|found| found.algorithm == jwk.algorithm) =>
            {
                let signer = jws::CompactSigner::new(algorithm, encoding.as_bytes(), &kid)
                    .map_err(SigningKeyError::Key)?;
                Ok(Self { algorithm, signer, published })
            }
            _ => Err(SigningKeyError::NotPublished(kid)),
        }
    }

    pub fn public_keys(&self) -> &PublicKeys {
        &self.published
    }
}

/// A private key in PKCS#8 PEM, and its public half as published.
fn load_pem(algorithm: SigningAlgorithm, pem: &str) -> Result<(EncodingKey, Jwk), String> {
    let encoding = match algorithm {
        SigningAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes()),
        SigningAlgorithm::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        SigningAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .map_err(|e| format!("signing key is not a PKCS#8 PEM for {algorithm:?}: {e}"))?;
    let jwk = public_jwk(&encoding, algorithm)?;
    Ok((encoding, jwk))
}

/// The public JWK of a private key, named by its RFC 7638 thumbprint.
fn public_jwk(encoding: &EncodingKey, algorithm: SigningAlgorithm) -> Result<Jwk, String> {
    let mut jwk = Jwk::from_encoding_key(encoding, algorithm.jwt())
        .map_err(|e| format!("signing key (PKCS#8 v1 expected): {e}"))?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| format!("key id: {e}"))?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

/// The public key of a private key in PKCS#8 PEM, for whichever of our algorithms it is: what
/// `keygate secrets public-keys` prints for the stack's `SigningPublicKeys`.
pub fn public_jwk_of_pem(pem: &str) -> Result<Jwk, String> {
    SigningAlgorithm::ALL
        .into_iter()
        .find_map(|algorithm| load_pem(algorithm, pem).ok())
        .map(|(_, jwk)| jwk)
        .ok_or_else(|| "not a PKCS#8 PEM private key for EdDSA, ES256 or RS256".into())
}
