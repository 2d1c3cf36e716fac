//! The algorithms keygate signs tokens with, and what each means to the JWT and JWK formats.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};

/// The algorithms we sign with; anything else is refused at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgorithm {
    EdDsa,
    Es256,
    /// RSA 2048 and up: what API Gateway's built-in JWT authorizer verifies.
    Rs256,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::EdDsa, Self::Es256, Self::Rs256];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    pub(super) fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }

    /// Whether a JWK is a key this algorithm signs with: an Ed25519 key for EdDSA, a P-256 key for
    /// ES256, an RSA key of 2048 bits or more for RS256.
    pub(super) fn fits(self, parameters: &AlgorithmParameters) -> bool {
        use base64::Engine;
        match (self, parameters) {
            (Self::EdDsa, AlgorithmParameters::OctetKeyPair(key)) => key.curve == EllipticCurve::Ed25519,
            (Self::Es256, AlgorithmParameters::EllipticCurve(key)) => key.curve == EllipticCurve::P256,
            (Self::Rs256, AlgorithmParameters::RSA(key)) => {
                let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&key.n);
                modulus.is_ok_and(|n| {
                    let significant: Vec<u8> = n.into_iter().skip_while(|byte| *byte == 0).collect();
                    let bits = significant
                        .first()
                        .map_or(0, |top| 8 * significant.len() - top.leading_zeros() as usize);
                    bits >= 2048
                })
            }
            _ => false,
        }
    }

    /// The name JOSE gives it (`alg`), as `KEYGATE_JWT_ALG` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// A fresh private key as PKCS#8 PEM, the format `KEYGATE_SIGNING_KEY` takes.
    pub fn generate_pem(self) -> String {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        let der = match self {
            Self::EdDsa => {
                Ed25519KeyPair::generate().and_then(|k| k.to_pkcs8v1()).map(|d| d.as_ref().to_vec())
            }
            Self::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            Self::Rs256 => {
                RsaKeyPair::generate(KeySize::Rsa2048).and_then(|k| k.as_der()).map(|d| d.as_ref().to_vec())
            }
        }
        .expect("the system random source works");
        pem::encode(&pem::Pem::new("PRIVATE KEY", der))
    }
}
