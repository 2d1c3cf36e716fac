//! The security review's findings, each replayed as the attacker tried it. Every case must be
//! refused in its surface's shape and leave the store as it was.

use chrono::TimeDelta;
use keygate_core::service::REPLAYED;
use keygate_tests::*;
use serde_json::{Value, json};

const NCP_KEYS: &str = "/api/v1/api-keys";

fn ncp_error(status: u16, message: &str) -> Value {
    json!({ "error": { "errorCode": status.to_string(), "message": message } })
}

/// The same signed headers with another body, as someone holding a captured request sends it.
fn with_body(request: &lambda_http::Request, body: &str) -> lambda_http::Request {
    let mut resent = request.clone();
    *resent.body_mut() = lambda_http::Body::Text(body.to_owned());
    resent
}

async fn key_count(t: &TestApp) -> usize {
    t.store.list_keys(DOMAIN).await.expect("listed").len()
}

#[tokio::test]
async fn a_captured_create_resent_with_another_body_makes_no_key() {
    let t = TestApp::new().await;
    let captured = t.signed_create(r#"{"user_id":"owner"}"#, ACCESS_KEY, SECRET_KEY);
    assert_eq!(t.send(captured.clone()).await.0, 200);
    let bodies = [
        json!({ "user_id": "attacker" }).to_string(),
        json!({ "user_id": "owner", "domain_id": DOMAIN }).to_string(),
        json!({ "user_id": "owner", "description": "" }).to_string(),
        json!({ "user_id": "owner", "scope": [] }).to_string(),
    ];
    for body in bodies {
        let (status, json, _) = t.send(with_body(&captured, &body)).await;
        assert_eq!((status, json), (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", REPLAYED)), "{body}");
    }
    assert_eq!(key_count(&t).await, 1, "only the captured request made a key");

    let ncp = t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"mine"}"#, false);
    assert_eq!(t.send(ncp.clone()).await.0, 201);
    let (status, json, _) = t.send(with_body(&ncp, r#"{"apiKeyName":"theirs"}"#)).await;
    assert_eq!((status, json), (401, ncp_error(401, REPLAYED)));
    assert_eq!(key_count(&t).await, 2);
}

#[tokio::test]
async fn a_captured_ncp_update_or_regenerate_cannot_be_turned_into_another() {
    let t = TestApp::new().await;
    let created = t.send(t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"k"}"#, false)).await.1;
    let path = format!("{NCP_KEYS}/{}", created["apiKeyId"].as_str().unwrap());

    let rename = t.admin(Method::Put, &path, r#"{"apiKeyName":"renamed"}"#, false);
    assert_eq!(t.send(rename.clone()).await.0, 200);
    let (status, json, _) = t.send(with_body(&rename, r#"{"isEnabled":false}"#)).await;
    assert_eq!((status, json), (401, ncp_error(401, REPLAYED)));

    t.clock.advance(TimeDelta::seconds(1));
    let rotate_primary = t.admin(Method::Patch, &path, r#"{"keyType":"PRIMARY"}"#, false);
    let rotated = t.send(rotate_primary.clone()).await.1;
    let (status, json, _) = t.send(with_body(&rotate_primary, r#"{"keyType":"SECONDARY"}"#)).await;
    assert_eq!((status, json), (401, ncp_error(401, REPLAYED)), "no second value in clear");

    let now = t.send(t.admin(Method::Get, &path, "", false)).await.1;
    assert_eq!(now["isEnabled"], true, "still enabled");
    assert_eq!(
        now["secondaryKey"],
        json!(format!("*****{}", &created["secondaryKey"].as_str().unwrap()[50..]))
    );
    assert_eq!(now["primaryKey"], json!(format!("*****{}", &rotated["primaryKey"].as_str().unwrap()[50..])));
}

#[tokio::test]
async fn a_request_accepted_at_the_early_edge_of_its_window_is_refused_at_the_late_edge() {
    let t = TestApp::new().await;
    // Signed five minutes ahead of the server's clock: accepted, at the edge of the window.
    let signed_at = t.clock.now() + TimeDelta::minutes(5);
    let body = r#"{"user_id":"edge"}"#;
    let request = signed(Method::Post, "/identity/v1/api-keys", body, ACCESS_KEY, SECRET_KEY, signed_at);
    assert_eq!(t.send(request.clone()).await.0, 200);
    // Ten minutes on, the timestamp is five minutes behind: still inside the window.
    t.clock.advance(TimeDelta::minutes(10));
    let (status, json, _) = t.send(request).await;
    assert_eq!((status, json), (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", REPLAYED)));
    assert_eq!(key_count(&t).await, 1);
}

fn bearer(token: &str) -> lambda_http::Request {
    get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))])
}

async fn token_for(t: &TestApp, key: &str) -> String {
    let (status, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", key)])).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["access_token"].as_str().unwrap().to_owned()
}

async fn remaining(t: &TestApp, key: &str) -> u64 {
    let (_, body, _) = t.send(get("/v1/key/detail", &[("x-api-key", key)])).await;
    body["result"]["remaining_total_usage"].as_u64().unwrap()
}

#[tokio::test]
async fn a_token_naming_another_algorithm_is_refused_as_unauthenticated_whatever_its_signature() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let t = TestApp::new().await;
    let key = t.registered_key(10, TimeDelta::days(1)).await;
    let token = token_for(&t, key.primary.expose()).await;
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let before = remaining(&t, key.primary.expose()).await;
    for alg in ["none", "HS256", "RS256", "ES256"] {
        let mut forged = header.clone();
        forged["alg"] = json!(alg);
        let forged = URL_SAFE_NO_PAD.encode(forged.to_string());
        for signature in ["", parts[2]] {
            let (status, body, _) = t.send(bearer(&format!("{forged}.{}.{signature}", parts[1]))).await;
            let refused = client_error("This token is not authenticated.", "invalid_token");
            assert_eq!(
                (status, body),
                (429, refused),
                "alg {alg}, signature {:?}",
                &signature[..signature.len().min(8)]
            );
        }
    }
    assert_eq!(remaining(&t, key.primary.expose()).await, before, "no unit consumed");
}

#[tokio::test]
async fn names_that_hide_or_reorder_text_are_refused_on_both_surfaces() {
    let t = TestApp::new().await;
    for invisible in ["\u{202E}", "\u{200B}", "\u{2066}", "\u{FEFF}", "\u{7}"] {
        let name = format!("billing{invisible}gnp.exe");
        let body = json!({ "user_id": "u", "name": name }).to_string();
        let (status, json, _) = t.send(t.signed_create(&body, ACCESS_KEY, SECRET_KEY)).await;
        let message = "name must be 1 to 64 printable characters";
        assert_eq!((status, json), (400, spaceone_error("ERROR_INVALID_ARGUMENT", message)), "{invisible:?}");
        t.clock.advance(TimeDelta::milliseconds(1));
        let body = json!({ "apiKeyName": "ok", "apiKeyDescription": name }).to_string();
        let (status, json, _) = t.send(t.admin(Method::Post, NCP_KEYS, &body, false)).await;
        let message = "description must be 0 to 256 printable characters";
        assert_eq!((status, json), (400, ncp_error(400, message)), "{invisible:?}");
        t.clock.advance(TimeDelta::milliseconds(1));
    }
    assert_eq!(key_count(&t).await, 0);
}

async fn refresh(t: &TestApp, token: &str) -> (u16, Value) {
    let (status, body, _) = t.send(bearer(token)).await;
    (status, body)
}

fn next_token(body: &Value) -> String {
    body["result"]["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn regenerating_a_value_ends_the_families_it_bought_and_only_those() {
    let t = TestApp::new().await;
    let key = t.registered_key(100, TimeDelta::days(30)).await;
    let leaked = token_for(&t, key.primary.expose()).await;
    let (status, body) = refresh(&t, &leaked).await;
    assert_eq!(status, 200);
    let leaked_chain = next_token(&body);
    let kept = token_for(&t, key.secondary.expose()).await;

    let path = format!("{NCP_KEYS}/{}", key.key.api_key_id);
    t.clock.advance(TimeDelta::seconds(1));
    let (status, rotated, _) = t.send(t.admin(Method::Patch, &path, r#"{"keyType":"PRIMARY"}"#, false)).await;
    assert_eq!(status, 200);

    let before = remaining(&t, key.secondary.expose()).await;
    let refused = client_error("This token is not authenticated.", "invalid_token");
    assert_eq!(refresh(&t, &leaked_chain).await, (429, refused.clone()), "the leaked value's family ends");
    assert_eq!(remaining(&t, key.secondary.expose()).await, before, "and consumes nothing");
    let (status, body) = refresh(&t, &kept).await;
    assert_eq!(status, 200, "a family bought with the other value goes on: {body}");
    let (status, body) = refresh(&t, &next_token(&body)).await;
    assert_eq!(status, 200, "{body}");
    let new_primary = rotated["primaryKey"].as_str().unwrap();
    let fresh = token_for(&t, new_primary).await;
    assert_eq!(refresh(&t, &fresh).await.0, 200, "the new value buys families that refresh");
}

#[tokio::test]
async fn a_family_past_its_maximum_age_sends_the_client_back_to_its_key() {
    let settings = Settings::new().with(keygate_core::config::REFRESH_MAX_AGE_SECONDS, "3600");
    let t = TestApp::with(&settings, fresh_store().await);
    let key = t.registered_key(100, TimeDelta::days(30)).await;
    let mut token = token_for(&t, key.primary.expose()).await;
    // Refreshed every four minutes, the family lives an hour from the moment the key was shown.
    for _ in 0..14 {
        t.clock.advance(TimeDelta::minutes(4));
        let (status, body) = refresh(&t, &token).await;
        assert_eq!(status, 200, "{body}");
        token = next_token(&body);
    }
    t.clock.advance(TimeDelta::minutes(4));
    let refused = client_error("This token is not authenticated.", "invalid_token");
    assert_eq!(refresh(&t, &token).await, (429, refused));
    assert_eq!(token_for(&t, key.primary.expose()).await.split('.').count(), 3, "the key buys a new family");
}
