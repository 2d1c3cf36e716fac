//! A token verifies against the published JWKS with a verifier configured here, independently of
//! keygate's own verification code.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keygate_tests::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn token_and_jwks(t: &TestApp) -> (String, Value) {
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (_, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();
    let (status, jwks, _) = t.send(get("/.well-known/jwks.json", &[])).await;
    assert_eq!(status, 200);
    (token, jwks)
}

fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_keys_public_half_under_its_thumbprint() {
    let settings = Settings::new();
    let t = TestApp::with(&settings, fresh_store().await);
    let (_, jwks) = token_and_jwks(&t).await;

    // The public key, derived from the PEM with aws-lc-rs rather than through jsonwebtoken.
    let der = pem_body(&settings.signing_key);
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
    use aws_lc_rs::signature::KeyPair;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
    let thumbprint = URL_SAFE_NO_PAD
        .encode(Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#).as_bytes()));
    assert_eq!(
        jwks,
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "alg": "EdDSA", "use": "sig" }] })
    );
}

fn pem_body(pem: &str) -> Vec<u8> {
    let base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(base64).unwrap()
}

#[tokio::test]
async fn a_token_verifies_against_the_jwks_with_an_independent_configuration() {
    let t = TestApp::new().await;
    let (token, jwks) = token_and_jwks(&t).await;
    let header = segment(&token, 0);
    assert_eq!(header["typ"], json!("at+jwt"));
    assert_eq!(header["alg"], json!("EdDSA"));

    let set: JwkSet = serde_json::from_value(jwks).unwrap();
    let jwk = set.find(header["kid"].as_str().unwrap()).expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["keygate"]);
    validation.set_audience(&["keygate"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // The test clock stands in 2026-01-01; check expiry against it rather than the wall clock.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("verifies")
        .claims;

    let names: BTreeSet<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "iss",
            "aud",
            "sub",
            "client_id",
            "tid",
            "scope",
            "iat",
            "exp",
            "jti",
            "fam",
            "key_expired",
            "auth_time",
            "key_slot",
            "key_generation",
        ])
    );
    // A family starts when the key value is presented; the value is named, never shown.
    assert_eq!(claims["auth_time"], claims["iat"]);
    assert_eq!((&claims["key_slot"], &claims["key_generation"]), (&json!("PRIMARY"), &json!(0)));
    assert!(claims["sub"].as_str().unwrap().starts_with("api-key-"));
    assert_eq!(claims["client_id"], claims["sub"]);
    assert_eq!(claims["tid"], json!(DOMAIN));
    assert_eq!(claims["scope"], json!("orders:read orders:write"));
    assert_eq!(claims["iat"], json!(START_MILLIS / 1000));
    assert_eq!(claims["exp"], json!(START_MILLIS / 1000 + 300));
    assert_eq!(claims["fam"], claims["jti"]);
    assert_eq!(claims["key_expired"], json!(START_MILLIS + 86_400_000));
}

#[tokio::test]
async fn the_signature_checks_out_with_raw_ed25519() {
    let t = TestApp::new().await;
    let (token, jwks) = token_and_jwks(&t).await;
    let x = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &x);
    key.verify(signed.as_bytes(), &signature).expect("valid Ed25519 signature");
    assert!(key.verify(format!("{signed}x").as_bytes(), &signature).is_err());
}

#[tokio::test]
async fn the_previous_key_is_published_and_still_verifies_after_rotation() {
    let old = Settings::new();
    let before = TestApp::with(&old, fresh_store().await);
    let created = before.registered_key(10, TimeDelta::days(1)).await;
    let (_, body, _) = before.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    let old_token = body["result"]["access_token"].as_str().unwrap().to_owned();

    let rotated = Settings::new().with(keygate_core::config::SIGNING_KEY_PREVIOUS, old.signing_key.clone());
    let after = TestApp::with(&rotated, before.store.clone());
    let (_, jwks, _) = after.send(get("/.well-known/jwks.json", &[])).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let (status, body, _) =
        after.send(get("/v1/auth/refresh", &[("authorization", &format!("Bearer {old_token}"))])).await;
    assert_eq!(status, 200, "{body}");
    let new_kid = segment(body["result"]["access_token"].as_str().unwrap(), 0)["kid"].clone();
    assert_eq!(new_kid, jwks["keys"][0]["kid"], "new tokens are signed with the current key");
    assert_ne!(new_kid, segment(&old_token, 0)["kid"]);
}

/// With `KEYGATE_JWT_ALG=RS256` (what API Gateway's built-in JWT authorizer verifies) the token is
/// RS256 under an RSA 2048 key, and verifies with the JWKS's modulus and exponent alone.
#[tokio::test]
async fn an_rs256_token_checks_out_with_raw_rsa_from_the_jwks() {
    let settings = Settings {
        signing_key: keygate_core::tokens::SigningAlgorithm::Rs256.generate_pem(),
        overrides: vec![(keygate_core::config::JWT_ALG, "RS256".into())],
    };
    let t = TestApp::with(&settings, fresh_store().await);
    let (token, jwks) = token_and_jwks(&t).await;
    assert_eq!(segment(&token, 0)["alg"], json!("RS256"));
    let key = &jwks["keys"][0];
    assert_eq!((&key["kty"], &key["alg"]), (&json!("RSA"), &json!("RS256")));
    let component = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
    let (n, e) = (component("n"), component("e"));
    assert_eq!(n.len() * 8, 2048, "an RSA 2048 modulus");
    let public = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let scheme = &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;
    public.verify(scheme, signed.as_bytes(), &signature).expect("a valid RS256 signature");
    assert!(public.verify(scheme, format!("{signed}x").as_bytes(), &signature).is_err());
}
