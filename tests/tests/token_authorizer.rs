//! The token authorizer for customers' own APIs: a fresh access token is let through with its
//! subject, tenant, scope and client as context; an expired, forged, `alg:none`, foreign-issuer or
//! foreign-audience token, or none at all, is refused with an empty context.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use keygate_core::config::{AUDIENCE, ISSUER};
use keygate_core::http::token_authorizer::authorize;
use keygate_core::tokens::AccessVerifier;
use keygate_tests::*;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use serde_json::{Value, json};

fn verifier(t: &TestApp) -> AccessVerifier {
    let jwks = t.app.jwks().unwrap().clone();
    AccessVerifier::from_jwks(&jwks, "keygate".into(), "keygate".into()).unwrap()
}

async fn mint(t: &TestApp) -> String {
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (status, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["access_token"].as_str().unwrap().to_owned()
}

fn request_with(authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
    let mut event: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/token-authorizer.json"))
            .unwrap(),
    )
    .unwrap();
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
    let rotated =
        Settings::new().with(keygate_core::config::SIGNING_KEY_PREVIOUS, before.signing_key.clone());
    let new = TestApp::with(&rotated, old.store.clone());
    assert_eq!(new.app.jwks().unwrap().keys.len(), 2);
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
            (keygate_core::config::SIGNING_KEY_PREVIOUS, before.signing_key.clone()),
        ],
    };
    let new = TestApp::with(&switched, old.store.clone());
    let algorithms: Vec<String> =
        new.app.jwks().unwrap().keys.iter().map(|k| k.common.key_algorithm.unwrap().to_string()).collect();
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

/// Serves whatever JWKS `published` holds, over HTTP, as keygate's own API would.
async fn jwks_server(published: std::sync::Arc<std::sync::Mutex<Value>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = published.lock().unwrap().to_string();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{address}/.well-known/jwks.json")
}

/// After a rotation, a warm authorizer meets tokens under a key it has not seen: it fetches the
/// JWKS again (not more often than its interval) and lets them in.
#[tokio::test]
async fn a_token_under_a_key_not_yet_seen_makes_the_authorizer_fetch_the_keys_again() {
    use keygate_core::http::token_authorizer::{JWKS_URL, PublishedKeys};
    let before = TestApp::new().await;
    let published =
        std::sync::Arc::new(std::sync::Mutex::new(serde_json::to_value(before.app.jwks().unwrap()).unwrap()));
    let url = jwks_server(published.clone()).await;
    let lookup = |name: &str| (name == JWKS_URL).then(|| url.clone());
    let eager = PublishedKeys::from_lookup(lookup, std::time::Duration::ZERO).await.unwrap();
    let patient = PublishedKeys::from_lookup(lookup, std::time::Duration::from_secs(3600)).await.unwrap();

    let after = TestApp::new().await;
    let token = mint(&after).await;
    let event = request_with(Some(&format!("Bearer {token}")));
    assert!(!eager.authorize(after.app.now(), &event).await.is_authorized, "not published yet");
    *published.lock().unwrap() = serde_json::to_value(after.app.jwks().unwrap()).unwrap();
    assert!(eager.authorize(after.app.now(), &event).await.is_authorized, "fetched again");
    assert!(!patient.authorize(after.app.now(), &event).await.is_authorized, "not before its interval");
}

/// A token authorizer that cannot read the published keys fails its start, naming the setting.
#[tokio::test]
async fn an_authorizer_without_reachable_keys_fails_its_start() {
    use keygate_core::http::token_authorizer::{JWKS_URL, PublishedKeys};
    let interval = std::time::Duration::from_secs(60);
    let missing = PublishedKeys::from_lookup(|_| None, interval).await.err().unwrap().to_string();
    assert_eq!(missing, "configuration: KEYGATE_JWKS_URL is not set");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}/.well-known/jwks.json");
    let unreachable = PublishedKeys::from_lookup(|name| (name == JWKS_URL).then(|| url.clone()), interval)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(unreachable.starts_with(&format!("configuration: KEYGATE_JWKS_URL {url}: ")), "{unreachable}");

    let empty = std::sync::Arc::new(std::sync::Mutex::new(json!({ "keys": [] })));
    let url = jwks_server(empty).await;
    let no_keys = PublishedKeys::from_lookup(|name| (name == JWKS_URL).then(|| url.clone()), interval)
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(no_keys, "configuration: the JWKS has no key");
}
