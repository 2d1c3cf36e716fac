//! The token authorizer for customers' own APIs: a fresh access token is let through with its
//! subject, tenant, scope and client as context; an expired, forged, `alg:none`, foreign-issuer or
//! foreign-audience token, or none at all, is refused with an empty context.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use keygate_core::config::{AUDIENCE, ISSUER, PUBLIC_KEYS, SIGNING_KEY_PREVIOUS};
use keygate_core::http::token_authorizer::{authorize, verifier_from_lookup};
use keygate_core::tokens::{AccessVerifier, public_jwk_of_pem};
use keygate_tests::*;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use serde_json::{Value, json};

/// The authorizer as deployed beside `t`: configured with the JWKS `t` publishes.
fn verifier(t: &TestApp) -> AccessVerifier {
    let published = t.app.public_keys().unwrap().document().to_owned();
    verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| published.clone())).unwrap()
}

async fn mint(t: &TestApp) -> String {
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (status, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["access_token"].as_str().unwrap().to_owned()
}

fn request_with(authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
    event_with("token-authorizer", authorization)
}

/// The event `events/{name}.json` with this `Authorization` header, or none.
fn event_with(name: &str, authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: ApiGatewayV2CustomAuthorizerV2Request =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event.headers.remove("authorization");
    if let Some(value) = authorization {
        event.headers.insert("authorization", value.parse().unwrap());
    }
    event
}

fn decision(verifier: &AccessVerifier, t: &TestApp, authorization: Option<&str>) -> Value {
    serde_json::to_value(authorize(verifier, t.app.now(), &request_with(authorization))).unwrap()
}

fn refused() -> Value {
    json!({ "isAuthorized": false, "context": {} })
}

#[tokio::test]
async fn a_fresh_token_is_let_through_with_its_claims_as_context() {
    let t = TestApp::new().await;
    let token = mint(&t).await;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let allowed = decision(&verifier(&t), &t, Some(&format!("Bearer {token}")));
    assert_eq!(
        allowed,
        json!({ "isAuthorized": true, "context": {
            "sub": claims["sub"], "tid": DOMAIN, "scope": claims["scope"], "client_id": claims["client_id"],
        } })
    );
    assert_eq!(decision(&verifier(&t), &t, Some(&format!("bearer {token}")))["isAuthorized"], json!(true));
}

#[tokio::test]
async fn an_expired_token_is_refused_from_its_exp_on() {
    let t = TestApp::new().await;
    let token = mint(&t).await;
    let verifier = verifier(&t);
    t.clock.advance(TimeDelta::seconds(299));
    assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {token}")))["isAuthorized"], json!(true));
    t.clock.advance(TimeDelta::seconds(1));
    assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {token}"))), refused());
}

#[tokio::test]
async fn forged_unsigned_and_foreign_tokens_are_refused() {
    let ours = Settings::new();
    let t = TestApp::with(&ours, fresh_store().await);
    let token = mint(&t).await;
    let verifier = verifier(&t);
    let [header, payload, signature]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();

    // Another scope, under the original signature.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["scope"] = json!("admin");
    let tampered = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    // alg:none, with our kid and no signature.
    let mut none: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(none.to_string()));
    // Signed by another key.
    let stranger = mint(&TestApp::new().await).await;
    // Our key, another issuer or audience.
    let settings = |name, value: &str| Settings {
        signing_key: ours.signing_key.clone(),
        overrides: vec![(name, value.to_owned())],
    };
    let other_issuer = mint(&TestApp::with(&settings(ISSUER, "someone-else"), fresh_store().await)).await;
    let other_audience = mint(&TestApp::with(&settings(AUDIENCE, "another-api"), fresh_store().await)).await;
    let own_key = mint(&TestApp::with(&settings(ISSUER, "keygate"), fresh_store().await)).await;

    assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {own_key}")))["isAuthorized"], json!(true));
    for (what, forged) in [
        ("tampered", tampered),
        ("alg:none", unsigned),
        ("another key", stranger),
        ("another issuer", other_issuer),
        ("another audience", other_audience),
        ("not a JWT", "not-a-token".to_owned()),
    ] {
        assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {forged}"))), refused(), "{what}");
    }
    assert_eq!(decision(&verifier, &t, None), refused(), "no header");
    assert_eq!(decision(&verifier, &t, Some(&format!("Basic {token}"))), refused(), "another scheme");
}

#[tokio::test]
async fn a_token_of_the_previous_key_passes_after_a_rotation() {
    let before = Settings::new();
    let old = TestApp::with(&before, fresh_store().await);
    let token = mint(&old).await;
    let rotated = Settings::new().with(SIGNING_KEY_PREVIOUS, before.signing_key.clone());
    let new = TestApp::with(&rotated, old.store.clone());
    assert_eq!(new.app.public_keys().unwrap().jwks().keys.len(), 2);
    assert_eq!(
        decision(&verifier(&new), &old, Some(&format!("Bearer {token}")))["isAuthorized"],
        json!(true)
    );
}

/// Switching the algorithm (EdDSA to RS256) is a rotation too: the EdDSA key, now previous, keeps
/// verifying the tokens it signed under EdDSA, and the new ones verify under RS256.
#[tokio::test]
async fn a_switch_of_algorithm_keeps_the_old_tokens_valid() {
    let before = Settings::new();
    let old = TestApp::with(&before, fresh_store().await);
    let old_token = mint(&old).await;
    let switched = Settings {
        signing_key: keygate_core::tokens::SigningAlgorithm::Rs256.generate_pem(),
        overrides: vec![
            (keygate_core::config::JWT_ALG, "RS256".into()),
            (SIGNING_KEY_PREVIOUS, before.signing_key.clone()),
        ],
    };
    let new = TestApp::with(&switched, old.store.clone());
    let published = new.app.public_keys().unwrap().jwks();
    let algorithms: Vec<String> =
        published.keys.iter().map(|k| k.common.key_algorithm.unwrap().to_string()).collect();
    assert_eq!(algorithms, ["RS256", "EdDSA"]);
    let new_token = mint(&new).await;
    let verifier = verifier(&new);
    for token in [&old_token, &new_token] {
        assert_eq!(decision(&verifier, &new, Some(&format!("Bearer {token}")))["isAuthorized"], json!(true));
    }
    // An EdDSA token re-labelled RS256 is refused: each key verifies only its own algorithm.
    let [header, payload, signature]: [&str; 3] =
        old_token.split('.').collect::<Vec<_>>().try_into().unwrap();
    let mut relabelled: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    relabelled["alg"] = json!("RS256");
    let relabelled = format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(relabelled.to_string()));
    assert_eq!(decision(&verifier, &new, Some(&format!("Bearer {relabelled}"))), refused());
    // And the refresh of an old token goes on under the new key.
    let (status, body, _) =
        new.send(get("/v1/auth/refresh", &[("authorization", &format!("Bearer {old_token}"))])).await;
    assert_eq!(status, 200, "{body}");
}

/// The same ES256 token with its signature `(r, s)` turned into `(r, n - s)`: as valid a signature
/// of the same input, in its other form.
fn with_s_negated(token: &str) -> String {
    use num_bigint::BigUint;
    let order = BigUint::parse_bytes(b"FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
        .unwrap();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let (r, s) = signature.split_at(32);
    let negated = (order - BigUint::from_bytes_be(s)).to_bytes_be();
    let mut other = r.to_vec();
    other.resize(64 - negated.len(), 0);
    other.extend(negated);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(other))
}

/// ES256 signatures come in two forms that both verify; only the low-S one is accepted, on every
/// path that verifies a token, so no token has a second spelling.
#[tokio::test]
async fn an_es256_token_in_its_other_signature_form_is_refused_by_the_authorizer_and_refresh() {
    let settings = Settings {
        signing_key: keygate_core::tokens::SigningAlgorithm::Es256.generate_pem(),
        overrides: vec![(keygate_core::config::JWT_ALG, "ES256".into())],
    };
    let t = TestApp::with(&settings, fresh_store().await);
    let verifier = verifier(&t);
    let refresh = |token: &str| get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))]);
    for _ in 0..4 {
        let token = mint(&t).await;
        let other = with_s_negated(&token);
        assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {other}"))), refused());
        let (status, body, _) = t.send(refresh(&other)).await;
        assert_eq!((status, body), (429, client_error("This token is not authenticated.", "invalid_token")));
        assert_eq!(decision(&verifier, &t, Some(&format!("Bearer {token}")))["isAuthorized"], json!(true));
        let (status, body, _) = t.send(refresh(&token)).await;
        assert_eq!(status, 200, "the token as issued refreshes: {body}");
    }
}

/// A token of a fresh key of `domain` (the caller's, or the other test domain's) holding `scope`.
async fn mint_of(t: &TestApp, other_domain: bool, scope: &[&str]) -> String {
    let caller = match other_domain {
        false => t.caller(),
        true => keygate_core::model::Caller {
            domain_id: OTHER_DOMAIN.into(),
            access_key: OTHER_ACCESS_KEY.into(),
        },
    };
    let new_key = keygate_core::service::NewKey {
        user_id: "user-1".into(),
        scope: Some(scope.iter().map(|s| (*s).to_owned()).collect()),
        ..Default::default()
    };
    let created = t.app.create_key(&caller, new_key, None).await.unwrap();
    t.app.register(created.primary.expose()).await.unwrap();
    let (status, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["access_token"].as_str().unwrap().to_owned()
}

/// The decision for `token` on an API whose stage has these variables.
fn decision_on(verifier: &AccessVerifier, t: &TestApp, token: &str, variables: &[(&str, &str)]) -> bool {
    let mut event = request_with(Some(&format!("Bearer {token}")));
    event.stage_variables = variables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let answer = serde_json::to_value(authorize(verifier, t.app.now(), &event)).unwrap();
    answer["isAuthorized"] == json!(true)
}

/// The example API's event: its stage requires the tenant `domain-a` and the scope `orders:read`.
#[tokio::test]
async fn an_api_requiring_a_tenant_and_a_scope_refuses_other_tenants_and_missing_scopes() {
    let t = TestApp::new().await;
    let verifier = verifier(&t);
    let cases = [
        ("its tenant, with the scope", mint_of(&t, false, &["orders:read", "orders:write"]).await, true),
        ("another tenant, with the scope", mint_of(&t, true, &["orders:read"]).await, false),
        ("its tenant, without the scope", mint_of(&t, false, &["orders:write"]).await, false),
        (
            "its tenant, a scope that only begins like it",
            mint_of(&t, false, &["orders:readonly"]).await,
            false,
        ),
    ];
    for (what, token, allowed) in cases {
        let event = event_with("token-authorizer-with-requirements", Some(&format!("Bearer {token}")));
        let answer = serde_json::to_value(authorize(&verifier, t.app.now(), &event)).unwrap();
        assert_eq!(answer["isAuthorized"], json!(allowed), "{what}");
        if !allowed {
            assert_eq!(answer, refused(), "{what}");
        }
    }
}

/// An API that sets no requirement lets every valid token of ours through, as before.
#[tokio::test]
async fn an_api_requiring_nothing_lets_every_valid_token_through() {
    let t = TestApp::new().await;
    let verifier = verifier(&t);
    for token in [
        mint_of(&t, false, &["orders:read"]).await,
        mint_of(&t, true, &["orders:read"]).await,
        mint_of(&t, false, &["orders:write"]).await,
    ] {
        assert!(decision_on(&verifier, &t, &token, &[]));
        assert!(decision_on(&verifier, &t, &token, &[("unrelated", "x")]), "another stage variable");
    }
}

#[tokio::test]
async fn an_api_may_accept_several_tenants_and_require_several_scopes() {
    let t = TestApp::new().await;
    let verifier = verifier(&t);
    let both_scopes = mint_of(&t, false, &["orders:read", "orders:write"]).await;
    let one_scope = mint_of(&t, false, &["orders:read"]).await;
    let other_tenant = mint_of(&t, true, &["orders:read"]).await;
    let two_scopes = [("keygateScopes", "orders:read,orders:write")];
    assert!(decision_on(&verifier, &t, &both_scopes, &two_scopes));
    assert!(!decision_on(&verifier, &t, &one_scope, &two_scopes), "every scope named is required");
    let two_tenants = [("keygateTenant", "domain-b,domain-a")];
    assert!(decision_on(&verifier, &t, &other_tenant, &two_tenants));
    assert!(decision_on(&verifier, &t, &one_scope, &two_tenants));
    assert!(!decision_on(&verifier, &t, &other_tenant, &[("keygateTenant", "domain-a,domain-c")]));
}

/// An API may name the audience its tokens carry in place of the authorizer's `KEYGATE_AUDIENCE`:
/// then a token for the configured audience is refused there, and one for its own passes.
#[tokio::test]
async fn an_api_naming_an_audience_takes_tokens_of_that_audience_only() {
    let ours = Settings::new();
    let t = TestApp::with(&ours, fresh_store().await);
    let verifier = verifier(&t);
    let billing =
        Settings { signing_key: ours.signing_key.clone(), overrides: vec![(AUDIENCE, "billing".into())] };
    let for_billing = mint(&TestApp::with(&billing, fresh_store().await)).await;
    let for_keygate = mint(&t).await;
    let requires_billing = [("keygateAudience", "billing")];
    assert!(decision_on(&verifier, &t, &for_billing, &requires_billing));
    assert!(!decision_on(&verifier, &t, &for_keygate, &requires_billing));
    assert!(!decision_on(&verifier, &t, &for_billing, &[]), "elsewhere the configured audience counts");
    assert!(decision_on(&verifier, &t, &for_keygate, &[]));
}

/// A variable that looks like ours but is not (a typo) would check nothing: every token is
/// refused instead, so the mistake shows at once.
#[tokio::test]
async fn a_mistyped_keygate_stage_variable_refuses_every_token() {
    let t = TestApp::new().await;
    let verifier = verifier(&t);
    let token = mint_of(&t, false, &["orders:read"]).await;
    for typo in ["keygateScope", "keygateTenants", "KeygateAudience"] {
        assert!(!decision_on(&verifier, &t, &token, &[(typo, "orders:read")]), "{typo}");
    }
}

/// The JWKS of these private keys' public halves, as `keygate secrets public-keys` prints it.
fn published(pems: &[&str]) -> String {
    let keys: Vec<_> = pems.iter().map(|pem| public_jwk_of_pem(pem).unwrap()).collect();
    json!({ "keys": keys }).to_string()
}

/// A rotation as in AWS, where no function holds the previous private key: the token functions
/// sign with the new key and verify refreshes, and the authorizer verifies, under the published
/// keys (new and previous), so tokens of both keys pass.
#[tokio::test]
async fn a_rotation_published_apart_from_the_signing_key_keeps_old_tokens_valid() {
    let before = Settings::new();
    let old = TestApp::with(&before, fresh_store().await);
    let old_token = mint(&old).await;

    let after = Settings::new();
    let both = published(&[&after.signing_key, &before.signing_key]);
    let new = TestApp::with(&after.clone().with(PUBLIC_KEYS, both.clone()), old.store.clone());
    let new_token = mint(&new).await;
    let (status, served, _) = new.send(get("/.well-known/jwks.json", &[])).await;
    assert_eq!((status, served), (200, serde_json::from_str::<Value>(&both).unwrap()));

    // The stack parameter passes it in base64url; either form configures the same keys.
    let encoded = keygate_core::tokens::PublicKeys::parse(&both).unwrap().encoded();
    let verifier = verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| encoded.clone())).unwrap();
    for token in [&old_token, &new_token] {
        assert_eq!(decision(&verifier, &new, Some(&format!("Bearer {token}")))["isAuthorized"], json!(true));
    }
    let (status, body, _) =
        new.send(get("/v1/auth/refresh", &[("authorization", &format!("Bearer {old_token}"))])).await;
    assert_eq!(status, 200, "a token of the previous key refreshes: {body}");

    // Once the previous key is no longer published, its tokens stop passing.
    let only_new = published(&[&after.signing_key]);
    let verifier = verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| only_new.clone())).unwrap();
    assert_eq!(decision(&verifier, &new, Some(&format!("Bearer {old_token}"))), refused());
    assert_eq!(decision(&verifier, &new, Some(&format!("Bearer {new_token}")))["isAuthorized"], json!(true));
}

/// A private JWK given by mistake is refused at start: a private key would otherwise sit in the
/// stack's parameter and in the functions' environments.
#[tokio::test]
async fn a_published_key_with_a_private_part_fails_the_start() {
    let settings = Settings::new();
    let mut jwks: Value = serde_json::from_str(&published(&[&settings.signing_key])).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    jwks["keys"][0]["d"] = json!("cHJpdmF0ZS1wYXJ0LW9mLXRoZS1rZXk");
    let refused = verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| jwks.to_string())).err().unwrap();
    assert_eq!(
        refused.to_string(),
        format!(
            "configuration: KEYGATE_PUBLIC_KEYS: key {kid} holds a private part (d): publish public keys only"
        )
    );
    assert!(!refused.to_string().contains("cHJpdmF0ZS"), "the private part is never quoted");
}

/// An authorizer whose published keys are missing or unusable fails its start, naming the setting
/// and what is wrong.
#[test]
fn an_authorizer_without_usable_keys_fails_its_start() {
    let key: Value =
        serde_json::from_str::<Value>(&published(&[&Settings::new().signing_key])).unwrap()["keys"][0]
            .clone();
    let with = |changes: Value| {
        let mut changed = key.clone();
        changed.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        changed
    };
    let kid = key["kid"].as_str().unwrap();
    let cases = [
        (
            None,
            "KEYGATE_PUBLIC_KEYS is not set: it holds the JWKS of the token-signing public keys".to_owned(),
        ),
        (
            Some("-----BEGIN PRIVATE KEY-----".to_owned()),
            "KEYGATE_PUBLIC_KEYS: not a JWKS (JSON, or JSON in base64url)".into(),
        ),
        (Some("{\"keys\":".to_owned()), "KEYGATE_PUBLIC_KEYS: not a JWKS: ".into()),
        (Some(json!({ "keys": [] }).to_string()), "KEYGATE_PUBLIC_KEYS: the JWKS has no key".into()),
        (
            Some(json!({ "keys": [with(json!({ "kid": null }))] }).to_string()),
            "KEYGATE_PUBLIC_KEYS: a published key has no kid".into(),
        ),
        (
            Some(json!({ "keys": [with(json!({ "alg": "HS256" }))] }).to_string()),
            format!("KEYGATE_PUBLIC_KEYS: key {kid} names the algorithm \"HS256\", not one of ours"),
        ),
        (
            Some(
                json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "alg": "EdDSA", "kid": "k1" }] })
                    .to_string(),
            ),
            "KEYGATE_PUBLIC_KEYS: key k1 holds a private part (k): publish public keys only".into(),
        ),
        (
            Some(json!({ "keys": [key, key] }).to_string()),
            format!("KEYGATE_PUBLIC_KEYS: key {kid} is listed twice"),
        ),
    ];
    for (value, expected) in cases {
        let err = verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| value.clone()).flatten())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.starts_with(&format!("configuration: {expected}")), "{value:?}: {err}");
    }
}
