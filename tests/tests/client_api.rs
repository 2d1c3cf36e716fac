//! Contract of the client API (seed 000): every route, every status, whole bodies.

use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::model::KeyState;
use keygate_core::service::NewKey;
use keygate_tests::*;
use serde_json::{Value, json};

const NOT_AUTHENTICATED: &str = "This token is not authenticated.";
const DAY: TimeDelta = TimeDelta::days(1);

fn bad_request() -> Value {
    client_error("Bad request", "bad_request")
}

fn not_found() -> Value {
    client_error("Not found", "not_found")
}

fn regist(key: &str) -> lambda_http::Request {
    post("/v1/key/regist", &json!({ "key": key }).to_string())
}

fn with_key(path: &str, key: &str) -> lambda_http::Request {
    get(path, &[("x-api-key", key)])
}

fn bearer(token: &str) -> lambda_http::Request {
    get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))])
}

/// The key value of `created` with one character of its secret changed and the checksum
/// recomputed: well-formed, right id, wrong secret.
fn forged_from(created: &keygate_core::service::CreatedKey) -> String {
    let value = created.primary.expose();
    let body = format!("{}{}", &value[..20], if &value[20..21] == "a" { "b" } else { "a" });
    let body = format!("{body}{}", &value[21..48]);
    let crc = checksum_for_tests(&body);
    format!("{body}{crc}")
}

/// CRC32 in base62 written out here again, so the forgery does not lean on the code under test.
fn checksum_for_tests(body: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut crc: u32 = 0xFFFF_FFFF;
    for byte in body.bytes() {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    let mut n = !crc;
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(DIGITS[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < 6 {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

async fn unregistered(t: &TestApp) -> keygate_core::service::CreatedKey {
    t.create(NewKey { user_id: "user-1".into(), max_total_usage: Some(5), ..NewKey::default() }).await
}

async fn disabled(t: &TestApp) -> String {
    let other = TestApp::new().await;
    let created = other.registered_key(5, DAY).await;
    let mut key = created.key.clone();
    key.state = KeyState::Disabled;
    key.registered_at = Some(t.clock.now());
    key.expires_at = Some(t.clock.now() + DAY);
    t.insert(&key).await;
    created.primary.expose().to_owned()
}

// ---------------------------------------------------------------- POST /v1/key/regist

#[tokio::test]
async fn regist_returns_expiry_in_millis_and_quota() {
    let t = TestApp::new().await;
    let created = t
        .create(NewKey {
            user_id: "u".into(),
            max_total_usage: Some(100),
            validity_seconds: Some(3600),
            ..NewKey::default()
        })
        .await;
    let (status, body, _) = t.send(regist(created.primary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "result": { "key_expired": START_MILLIS + 3_600_000, "max_total_usage": 100 } })
    );
}

#[tokio::test]
async fn regist_is_idempotent() {
    let t = TestApp::new().await;
    let created = unregistered(&t).await;
    let (_, first, _) = t.send(regist(created.primary.expose())).await;
    t.clock.advance(TimeDelta::hours(5));
    let (status, second, _) = t.send(regist(created.primary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(first, second);
}

#[tokio::test]
async fn regist_accepts_the_secondary_key_value() {
    let t = TestApp::new().await;
    let created = unregistered(&t).await;
    let (status, _, _) = t.send(regist(created.secondary.expose())).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn regist_of_a_key_past_its_fixed_expiry_returns_that_expiry() {
    let t = TestApp::new().await;
    let expires_at = t.clock.now() + TimeDelta::hours(1);
    let created =
        t.create(NewKey { user_id: "u".into(), expires_at: Some(expires_at), ..NewKey::default() }).await;
    t.clock.advance(TimeDelta::hours(2));
    let (status, body, _) = t.send(regist(created.primary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["key_expired"], json!(expires_at.timestamp_millis()));
}

#[tokio::test]
async fn regist_answers_400_to_bad_bodies() {
    let t = TestApp::new().await;
    let oversized = json!({ "key": "k".repeat(70 * 1024) }).to_string();
    let cases = [
        ("no body", None),
        ("empty body", Some("")),
        ("not JSON", Some("key=abc")),
        ("truncated JSON", Some("{\"key\":")),
        ("JSON array", Some("[]")),
        ("key missing", Some("{}")),
        ("key is a number", Some("{\"key\":42}")),
        ("key is null", Some("{\"key\":null}")),
        ("unknown field", Some("{\"key\":\"x\",\"extra\":1}")),
        ("oversized", Some(oversized.as_str())),
    ];
    for (what, body) in cases {
        let request = request(Method::Post, "/v1/key/regist", &[], body);
        let (status, json, _) = t.send(request).await;
        assert_eq!((status, json), (400, bad_request()), "{what}");
    }
}

#[tokio::test]
async fn regist_answers_404_to_malformed_unknown_forged_and_disabled_keys() {
    let t = TestApp::new().await;
    let created = unregistered(&t).await;
    let unknown = TestApp::new().await.registered_key(1, DAY).await;
    let disabled = disabled(&t).await;
    let cases = [
        ("malformed", "not-a-key".to_owned()),
        ("unknown", unknown.primary.expose().to_owned()),
        ("forged secret", forged_from(&created)),
        ("disabled", disabled),
    ];
    for (what, key) in cases {
        let (status, body, _) = t.send(regist(&key)).await;
        assert_eq!((status, body), (404, not_found()), "{what}");
    }
}

// ---------------------------------------------------------------- GET /v1/key/detail

#[tokio::test]
async fn detail_returns_expiry_quota_and_scope() {
    let t = TestApp::new().await;
    let created = t.registered_key(100, DAY).await;
    t.send(with_key("/v1/auth/token", created.primary.expose())).await;
    let (status, body, _) = t.send(with_key("/v1/key/detail", created.primary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "result": {
            "key_expired": START_MILLIS + DAY.num_milliseconds(),
            "remaining_total_usage": 99,
            "max_total_usage": 100,
            "scope": ["orders:read", "orders:write"],
        }})
    );
}

#[tokio::test]
async fn detail_of_an_expired_or_exhausted_key_is_still_shown() {
    let t = TestApp::new().await;
    let created = t.registered_key(1, DAY).await;
    t.send(with_key("/v1/auth/token", created.primary.expose())).await;
    t.clock.advance(DAY * 2);
    let (status, body, _) = t.send(with_key("/v1/key/detail", created.secondary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["remaining_total_usage"], json!(0));
}

#[tokio::test]
async fn detail_answers_400_without_the_header() {
    let t = TestApp::new().await;
    let (status, body, _) = t.send(get("/v1/key/detail", &[])).await;
    assert_eq!((status, body), (400, bad_request()));
}

#[tokio::test]
async fn detail_answers_404_to_malformed_unknown_unregistered_forged_and_disabled_keys() {
    let t = TestApp::new().await;
    let registered = t.registered_key(5, DAY).await;
    let unregistered = unregistered(&t).await;
    let disabled = disabled(&t).await;
    let cases = [
        ("malformed", "kg_short".to_owned()),
        ("not ascii", "kg_é_clé".to_owned()),
        ("unknown", TestApp::new().await.registered_key(1, DAY).await.primary.expose().to_owned()),
        ("unregistered", unregistered.primary.expose().to_owned()),
        ("forged secret", forged_from(&registered)),
        ("disabled", disabled),
    ];
    for (what, key) in cases {
        let (status, body, _) = t.send(with_key("/v1/key/detail", &key)).await;
        assert_eq!((status, body), (404, not_found()), "{what}");
    }
}

// ---------------------------------------------------------------- GET /v1/auth/token

#[tokio::test]
async fn token_returns_a_bearer_token_and_is_not_cached() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, DAY).await;
    let (status, mut body, response) = t.send(with_key("/v1/auth/token", created.primary.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token = body["result"]["access_token"].take();
    assert_eq!(token.as_str().unwrap().split('.').count(), 3);
    assert_eq!(
        body,
        json!({ "result": {
            "key_expired": START_MILLIS + DAY.num_milliseconds(),
            "access_token": null,
            "expires_in": 300,
            "token_type": "Bearer",
        }})
    );
}

#[tokio::test]
async fn token_lifetime_never_passes_the_keys_expiry() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::seconds(120)).await;
    let (_, body, _) = t.send(with_key("/v1/auth/token", created.primary.expose())).await;
    assert_eq!(body["result"]["expires_in"], json!(120));
}

#[tokio::test]
async fn token_answers_400_without_the_header() {
    let t = TestApp::new().await;
    let (status, body, _) = t.send(get("/v1/auth/token", &[])).await;
    assert_eq!((status, body), (400, bad_request()));
}

#[tokio::test]
async fn token_answers_404_to_malformed_unknown_unregistered_forged_and_disabled_keys() {
    let t = TestApp::new().await;
    let registered = t.registered_key(5, DAY).await;
    let unregistered = unregistered(&t).await;
    let disabled = disabled(&t).await;
    let cases = [
        ("malformed", "x".repeat(54)),
        ("unknown", TestApp::new().await.registered_key(1, DAY).await.primary.expose().to_owned()),
        ("unregistered", unregistered.primary.expose().to_owned()),
        ("forged secret", forged_from(&registered)),
        ("disabled", disabled),
    ];
    for (what, key) in cases {
        let (status, body, _) = t.send(with_key("/v1/auth/token", &key)).await;
        assert_eq!((status, body), (404, not_found()), "{what}");
    }
    let (_, detail, _) = t.send(with_key("/v1/key/detail", registered.primary.expose())).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(5), "no refused request consumed a unit");
}

#[tokio::test]
async fn token_answers_429_when_the_key_has_expired() {
    let t = TestApp::new().await;
    let created = t.registered_key(5, DAY).await;
    t.clock.advance(DAY);
    let (status, body, _) = t.send(with_key("/v1/auth/token", created.primary.expose())).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "key_expired")));
}

#[tokio::test]
async fn token_answers_429_when_the_quota_is_used_up() {
    let t = TestApp::new().await;
    let created = t.registered_key(2, DAY).await;
    for _ in 0..2 {
        assert_eq!(t.send(with_key("/v1/auth/token", created.primary.expose())).await.0, 200);
    }
    let (status, body, _) = t.send(with_key("/v1/auth/token", created.secondary.expose())).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "quota_exhausted")));
}

// ---------------------------------------------------------------- GET /v1/auth/refresh

async fn token_for(t: &TestApp, key: &str) -> String {
    let (_, body, _) = t.send(with_key("/v1/auth/token", key)).await;
    body["result"]["access_token"].as_str().expect("a token").to_owned()
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

#[tokio::test]
async fn refresh_returns_a_new_token_of_the_same_family_and_consumes_a_unit() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, DAY).await;
    let first = token_for(&t, created.primary.expose()).await;
    let (status, mut body, response) = t.send(bearer(&first)).await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = body["result"]["access_token"].take();
    let second = second.as_str().unwrap();
    assert_eq!(
        body,
        json!({ "result": {
            "key_expired": START_MILLIS + DAY.num_milliseconds(),
            "access_token": null,
            "expires_in": 300,
            "token_type": "Bearer",
        }})
    );
    assert_eq!(claims(second)["fam"], claims(&first)["jti"]);
    assert_ne!(claims(second)["jti"], claims(&first)["jti"]);
    let (_, detail, _) = t.send(with_key("/v1/key/detail", created.primary.expose())).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(8));
}

#[tokio::test]
async fn refresh_accepts_a_token_expired_within_the_grace() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, DAY).await;
    let token = token_for(&t, created.primary.expose()).await;
    t.clock.advance(TimeDelta::seconds(300 + 590));
    assert_eq!(t.send(bearer(&token)).await.0, 200);
}

#[tokio::test]
async fn refresh_answers_400_to_missing_or_malformed_bearers() {
    let t = TestApp::new().await;
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("no header", &[]),
        ("empty header", &[("authorization", "")]),
        ("basic scheme", &[("authorization", "Basic dXNlcjpwYXNz")]),
        ("bearer without token", &[("authorization", "Bearer ")]),
        ("not a JWT", &[("authorization", "Bearer abc")]),
        ("JWT with padding", &[("authorization", "Bearer a.b.c==")]),
    ];
    for (what, headers) in cases {
        let (status, body, _) = t.send(get("/v1/auth/refresh", headers)).await;
        assert_eq!((status, body), (400, bad_request()), "{what}");
    }
}

#[tokio::test]
async fn refresh_answers_429_to_tokens_it_did_not_issue() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let settings = Settings::new();
    let t = TestApp::with(&settings, fresh_store().await);
    let created = t.registered_key(10, DAY).await;
    let good = token_for(&t, created.primary.expose()).await;
    let parts: Vec<&str> = good.split('.').collect();

    let stranger = TestApp::new().await;
    let foreign = {
        let created = stranger.registered_key(1, DAY).await;
        token_for(&stranger, created.primary.expose()).await
    };
    let issuer_elsewhere = {
        let other = TestApp::with(
            &Settings { signing_key: settings.signing_key.clone(), overrides: vec![] }
                .with(keygate_core::config::ISSUER, "https://elsewhere.example"),
            t.store.clone(),
        );
        token_for(&other, created.primary.expose()).await
    };
    let audience_elsewhere = {
        let other = TestApp::with(
            &Settings { signing_key: settings.signing_key.clone(), overrides: vec![] }
                .with(keygate_core::config::AUDIENCE, "another-api"),
            t.store.clone(),
        );
        token_for(&other, created.primary.expose()).await
    };
    let header = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let kid =
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap()["kid"].clone();
    let hs256 = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = kid.as_str().map(str::to_owned);
        encode(&h, &claims(&good), &EncodingKey::from_secret(b"guessable")).unwrap()
    };
    let alg_none =
        format!("{}.{}.AAAA", header(json!({ "alg": "none", "typ": "at+jwt", "kid": kid })), parts[1]);
    let bad_signature = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode([7u8; 64]));
    let tampered_claims = {
        let mut c = claims(&good);
        c["scope"] = json!("admin");
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(c.to_string()), parts[2])
    };
    let wrong_type = {
        let mut h: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        h["typ"] = json!("JWT");
        format!("{}.{}.{}", header(h), parts[1], parts[2])
    };
    let cases = [
        ("signed by another keygate", foreign),
        ("other issuer", issuer_elsewhere),
        ("other audience", audience_elsewhere),
        ("HS256 with a guessed secret", hs256),
        ("alg none", alg_none),
        ("bad signature", bad_signature),
        ("tampered claims", tampered_claims),
        ("typ is not at+jwt", wrong_type),
    ];
    for (what, token) in cases {
        let (status, body, _) = t.send(bearer(&token)).await;
        assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "invalid_token")), "{what}");
    }
    // Not a JWT at all (DESIGN: three base64url parts with a JSON header and claims): 400.
    let not_json = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("nope"), parts[1], parts[2]);
    assert_eq!(t.send(bearer(&not_json)).await.0, 400, "header is not JSON");
    assert_eq!(t.send(bearer(&good)).await.0, 200, "the genuine token still refreshes");
}

#[tokio::test]
async fn refresh_answers_429_past_the_grace() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, DAY).await;
    let token = token_for(&t, created.primary.expose()).await;
    t.clock.advance(TimeDelta::seconds(300 + 601));
    let (status, body, _) = t.send(bearer(&token)).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "invalid_token")));
}

#[tokio::test]
async fn a_second_refresh_of_one_token_revokes_its_family() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, DAY).await;
    let first = token_for(&t, created.primary.expose()).await;
    let (_, body, _) = t.send(bearer(&first)).await;
    let second = body["result"]["access_token"].as_str().unwrap().to_owned();

    let (status, body, _) = t.send(bearer(&first)).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "token_reused")));
    let (status, body, _) = t.send(bearer(&second)).await;
    assert_eq!(
        (status, body),
        (429, client_error(NOT_AUTHENTICATED, "token_reused")),
        "the family is revoked"
    );

    let other_family = token_for(&t, created.primary.expose()).await;
    assert_eq!(t.send(bearer(&other_family)).await.0, 200, "other families are untouched");
    let (_, detail, _) = t.send(with_key("/v1/key/detail", created.primary.expose())).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(6), "refused refreshes consumed nothing");
}

#[tokio::test]
async fn refresh_answers_429_when_the_key_expired_or_ran_out() {
    let t = TestApp::new().await;
    let created = t.registered_key(1, DAY).await;
    let token = token_for(&t, created.primary.expose()).await;
    let (status, body, _) = t.send(bearer(&token)).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "quota_exhausted")));

    let created = t.registered_key(5, TimeDelta::seconds(200)).await;
    let token = token_for(&t, created.primary.expose()).await;
    t.clock.advance(TimeDelta::seconds(201));
    let (status, body, _) = t.send(bearer(&token)).await;
    assert_eq!((status, body), (429, client_error(NOT_AUTHENTICATED, "key_expired")));
}

#[tokio::test]
async fn refresh_answers_404_when_the_key_is_gone() {
    let settings = Settings::new();
    let issuing = TestApp::with(&settings, fresh_store().await);
    let created = issuing.registered_key(5, DAY).await;
    let token = token_for(&issuing, created.primary.expose()).await;
    let emptied = TestApp::with(&settings, fresh_store().await);
    let (status, body, _) = emptied.send(bearer(&token)).await;
    assert_eq!((status, body), (404, not_found()));
}

// ---------------------------------------------------------------- routing, health

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_in_the_client_envelope() {
    let t = TestApp::new().await;
    let (status, body, _) = t.send(get("/v1/key/nothing", &[])).await;
    assert_eq!((status, body), (404, not_found()));
    let (status, body, _) = t.send(post("/v1/auth/token", "{}")).await;
    assert_eq!((status, body), (405, client_error("Method not allowed", "method_not_allowed")));
    let (status, body, _) = t.send(get("/v1/key/regist", &[])).await;
    assert_eq!((status, body), (405, client_error("Method not allowed", "method_not_allowed")));
}

/// The discovery documents point at this server's JWKS and token endpoint: off its listening
/// address while the issuer is a plain name, whatever `Host` or `X-Forwarded-Proto` a client sends,
/// and off the issuer once it is a URL. Both are the operator's own, so a shared cache may keep them.
#[tokio::test]
async fn the_discovery_documents_name_the_issuer_the_jwks_and_the_algorithm() {
    let listening: std::net::SocketAddr = "127.0.0.1:3000".parse().unwrap();
    let t = TestApp::built(&Settings::new(), fresh_store().await, |app| app.serving_at(listening));
    let chosen_by_the_client = [("host", "attacker.example"), ("x-forwarded-proto", "https")];
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let (status, body, response) = t.send(get(path, &chosen_by_the_client)).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({
                    "issuer": "keygate",
                    "jwks_uri": "http://127.0.0.1:3000/.well-known/jwks.json",
                    "token_endpoint": "http://127.0.0.1:3000/v1/auth/token",
                    "response_types_supported": ["token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["EdDSA"],
                    "token_endpoint_auth_methods_supported": ["none"],
                    "access_token_signing_alg_values_supported": ["EdDSA"],
                })
            ),
            "{path}"
        );
        assert_eq!(response.headers()["cache-control"], "public, max-age=300", "{path}");
    }
    let settings = Settings::new().with(keygate_core::config::ISSUER, "https://keys.example.com/");
    let t = TestApp::built(&settings, fresh_store().await, |app| app.serving_at(listening));
    let (_, body, response) = t.send(get("/.well-known/openid-configuration", &chosen_by_the_client)).await;
    assert_eq!(body["issuer"], json!("https://keys.example.com/"));
    assert_eq!(body["jwks_uri"], json!("https://keys.example.com/.well-known/jwks.json"));
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let (status, body, _) = t.send(get("/.well-known/openid-configuration", &[])).await;
    assert_eq!(status, 200, "the issuer names the base: no host needed: {body}");
}

/// Behind a proxy the operator trusts to set them, the endpoints are where its `Host` and
/// `X-Forwarded-Proto` say; a document built from request headers is never kept by a cache, where
/// one client's headers would name the endpoints for every other.
#[tokio::test]
async fn discovery_built_from_a_trusted_proxys_headers_is_never_cached() {
    let settings = Settings::new().with("KEYGATE_TRUST_PROXY_HEADERS", "true");
    let t = TestApp::with(&settings, fresh_store().await);
    let proxied = [("host", "keys.test:8443"), ("x-forwarded-proto", "https")];
    let (status, body, response) = t.send(get("/.well-known/openid-configuration", &proxied)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jwks_uri"], json!("https://keys.test:8443/.well-known/jwks.json"));
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (_, body, _) = t.send(get("/.well-known/openid-configuration", &[("host", "keys.test")])).await;
    assert_eq!(body["token_endpoint"], json!("http://keys.test/v1/auth/token"), "http unless the proxy says");
}

/// Without an issuer URL, a listening address or a trusted proxy nothing names the endpoints, and
/// a `Host` a client sends is not taken instead.
#[tokio::test]
async fn discovery_with_nothing_to_name_the_endpoints_after_is_a_400_whatever_the_host() {
    // Listening on every interface (0.0.0.0, [::]) names no address a client could reach either.
    let every_interface: [std::net::SocketAddr; 2] =
        ["0.0.0.0:3000".parse().unwrap(), "[::]:3000".parse().unwrap()];
    let mut apps = vec![TestApp::new().await];
    for listening in every_interface {
        apps.push(TestApp::built(&Settings::new(), fresh_store().await, |app| app.serving_at(listening)));
    }
    for t in &apps {
        for headers in [&[][..], &[("host", "attacker.example"), ("x-forwarded-proto", "https")][..]] {
            let (status, body, _) = t.send(get("/.well-known/openid-configuration", headers)).await;
            assert_eq!((status, body), (400, client_error("Bad request", "bad_request")), "{headers:?}");
        }
    }
}

#[tokio::test]
async fn health_answers_ok() {
    let t = TestApp::new().await;
    let (status, body, _) = t.send(get("/health", &[])).await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
}

// ---------------------------------------------------------------- store down

#[tokio::test]
async fn every_route_answers_500_when_the_store_is_down() {
    let settings = Settings::new();
    let healthy = TestApp::with(&settings, fresh_store().await);
    let created = healthy.registered_key(5, DAY).await;
    let token = token_for(&healthy, created.primary.expose()).await;
    let t = TestApp::with(&settings, Arc::new(UnavailableStore));
    let key = created.primary.expose();
    let internal = client_error("Internal server error", "internal_error");
    let requests = [
        ("regist", regist(key)),
        ("detail", with_key("/v1/key/detail", key)),
        ("token", with_key("/v1/auth/token", key)),
        ("refresh", bearer(&token)),
    ];
    for (what, request) in requests {
        let (status, body, _) = t.send(request).await;
        assert_eq!((status, body), (500, internal.clone()), "{what}");
    }
}
