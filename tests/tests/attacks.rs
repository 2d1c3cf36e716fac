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

/// `claims` signed with the server's own key, as only someone holding it could: what a token of
/// ours with these claims would be.
fn signed_with_our_key(settings: &Settings, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = keygate_core::tokens::public_jwk_of_pem(&settings.signing_key).unwrap().common.key_id;
    let key = jsonwebtoken::EncodingKey::from_ed_pem(settings.signing_key.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Times no clock can hold, in a token with our signature: each is refused as the token it is,
/// never a panic that drops the connection, and consumes nothing.
#[tokio::test]
async fn a_token_of_ours_whose_times_overflow_the_clock_is_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let settings = Settings::new();
    let t = TestApp::with(&settings, fresh_store().await);
    let key = t.registered_key(10, TimeDelta::days(1)).await;
    let token = token_for(&t, key.primary.expose()).await;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let before = remaining(&t, key.primary.expose()).await;
    let refused = client_error("This token is not authenticated.", "invalid_token");
    for (claim, value) in [
        ("exp", 1_i64 << 62),
        ("exp", i64::MAX),
        ("exp", -(1_i64 << 62)),
        ("auth_time", 1 << 62),
        ("auth_time", i64::MIN),
        ("key_expired", 1 << 62),
    ] {
        let mut forged = claims.clone();
        forged[claim] = json!(value);
        let (status, body) = refresh(&t, &signed_with_our_key(&settings, &forged)).await;
        assert_eq!((status, body), (429, refused.clone()), "{claim} = {value}");
    }
    assert_eq!(remaining(&t, key.primary.expose()).await, before, "no unit consumed");
    let (status, body) = refresh(&t, &signed_with_our_key(&settings, &claims)).await;
    assert_eq!(status, 200, "the same claims unchanged refresh: {body}");
}

/// Every key of every test domain, as the store holds it.
async fn snapshot(t: &TestApp) -> Vec<keygate_core::model::ApiKey> {
    let mut keys = Vec::new();
    for domain in [DOMAIN, OTHER_DOMAIN, THIRD_DOMAIN] {
        keys.extend(t.store.list_keys(domain).await.expect("listed"));
    }
    keys
}

/// Whether a refusal is in its path's surface shape.
fn in_surface_shape(path: &str, body: &Value) -> bool {
    if path.starts_with("/identity/") {
        body["error"]["code"].as_str().is_some_and(|c| c.starts_with("ERROR_"))
            && body["error"]["message"].is_string()
    } else if path.starts_with("/api/v1/") {
        body["error"]["errorCode"].is_string() && body["error"]["message"].is_string()
    } else {
        body["result"]["error"].is_string() && body["result"]["code"].is_string()
    }
}

fn with_header(mut request: lambda_http::Request, name: &'static str, value: &[u8]) -> lambda_http::Request {
    let value = lambda_http::http::HeaderValue::from_bytes(value).expect("a header value");
    request.headers_mut().insert(name, value);
    request
}

fn binary_body(mut request: lambda_http::Request, bytes: Vec<u8>) -> lambda_http::Request {
    *request.body_mut() = lambda_http::Body::Binary(bytes);
    request
}

#[tokio::test]
async fn a_corpus_of_hostile_requests_is_refused_in_shape_and_changes_nothing() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let t = TestApp::new().await;
    let mine = t.registered_key(50, TimeDelta::days(30)).await;
    let key = mine.primary.expose().to_owned();
    let theirs = t.send(t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"theirs"}"#, true)).await.1;
    let their_id = theirs["apiKeyId"].as_str().unwrap().to_owned();
    let my_id = mine.key.api_key_id.to_string();
    let token = token_for(&t, &key).await;
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    t.clock.advance(TimeDelta::seconds(1));

    let mut corpus: Vec<(String, lambda_http::Request)> = Vec::new();
    let mut add = |what: String, request: lambda_http::Request| corpus.push((what, request));

    // 1. Forged and confused tokens.
    let mut headers = Vec::new();
    for alg in ["none", "None", "HS256", "HS512", "RS256", "ES256", "PS256", ""] {
        headers.push(json!({ "alg": alg, "typ": "at+jwt", "kid": header["kid"] }));
    }
    headers.push(json!({ "alg": "EdDSA", "typ": "at+jwt" }));
    headers.push(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "unknown" }));
    headers.push(json!({ "alg": "EdDSA", "typ": "JWT", "kid": header["kid"] }));
    headers.push(json!({ "alg": "EdDSA", "kid": header["kid"] }));
    headers.push(
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": header["kid"], "jku": "https://evil.example/jwks" }),
    );
    for forged in &headers {
        for signature in ["", parts[2].as_str(), "AAAA"] {
            let bearer = format!("Bearer {}.{}.{signature}", encode(forged), parts[1]);
            add(
                format!("token header {forged} sig {}", signature.len()),
                get("/v1/auth/refresh", &[("authorization", &bearer)]),
            );
        }
    }
    let mut claim_edits: Vec<(&str, Value)> = vec![
        ("other key", json!({ "sub": their_id, "client_id": their_id })),
        ("other tenant", json!({ "tid": OTHER_DOMAIN })),
        ("later exp", json!({ "exp": claims["exp"].as_i64().unwrap() + 86_400 })),
        ("newer family", json!({ "auth_time": claims["auth_time"].as_i64().unwrap() + 86_400 })),
        ("other slot", json!({ "key_slot": "SECONDARY" })),
        ("later generation", json!({ "key_generation": 7 })),
        ("more scope", json!({ "scope": "orders:read admin" })),
        ("other issuer", json!({ "iss": "evil" })),
    ];
    claim_edits.push(("no subject", json!({ "sub": null })));
    for (what, edit) in &claim_edits {
        let mut forged = claims.clone();
        for (field, value) in edit.as_object().unwrap() {
            forged[field] = value.clone();
        }
        let bearer = format!("Bearer {}.{}.{}", parts[0], encode(&forged), parts[2]);
        add(format!("token claims: {what}"), get("/v1/auth/refresh", &[("authorization", &bearer)]));
    }
    let mut flipped = parts[2].clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let malformed_bearers = [
        format!("Bearer {}.{}.{}", parts[0], parts[1], String::from_utf8(flipped).unwrap()),
        format!("Bearer {}.{}", parts[0], parts[1]),
        format!("Bearer {token}.{}", parts[2]),
        format!("Bearer {}", "A".repeat(20_000)),
        format!("Bearer {}.{}.{}", "e30", "W10", parts[2]),
        format!("Token {token}"),
        token.clone(),
        "Bearer ....".into(),
        "Bearer ..".into(),
    ];
    for bearer in malformed_bearers {
        add(
            format!("bearer {}", &bearer[..bearer.len().min(20)]),
            get("/v1/auth/refresh", &[("authorization", &bearer)]),
        );
    }
    add(
        "non-UTF-8 bearer".into(),
        with_header(get("/v1/auth/refresh", &[]), "authorization", b"Bearer \xff\xfe"),
    );

    // 2. Forged, mistyped and foreign key values on every key route.
    let mut values = vec![
        String::new(),
        "kg_".into(),
        key.replacen("kg_", "KG_", 1),
        format!("{key}x"),
        key[..key.len() - 1].to_owned(),
        key.replace(&my_id[8..], &their_id[8..]),
        format!("{}{}", &key[..20], "Z".repeat(key.len() - 20)),
        "kg_0123456789ab_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000".into(),
        "é".repeat(27),
        "k".repeat(100_000),
    ];
    values.push(format!("{} ", key));
    for value in &values {
        let short = &value[..value.len().min(12)];
        add(format!("detail with {short:?}"), get("/v1/key/detail", &[("x-api-key", value)]));
        add(format!("token with {short:?}"), get("/v1/auth/token", &[("x-api-key", value)]));
        add(format!("regist with {short:?}"), post("/v1/key/regist", &json!({ "key": value }).to_string()));
    }
    add("non-UTF-8 key header".into(), with_header(get("/v1/auth/token", &[]), "x-api-key", b"kg_\xff\xfe"));

    // 3. Captured signed writes resent with other bodies and headers.
    let create = t.admin(Method::Post, "/identity/v1/api-keys", r#"{"user_id":"captured"}"#, false);
    assert_eq!(t.send(create.clone()).await.0, 200);
    let rename = t.admin(Method::Put, &format!("{NCP_KEYS}/{my_id}"), r#"{"apiKeyName":"kept"}"#, false);
    assert_eq!(t.send(rename.clone()).await.0, 200);
    let baseline = snapshot(&t).await;
    let resend_bodies = [
        json!({ "user_id": "attacker" }),
        json!({ "user_id": "captured", "max_total_usage": 2_000_000_000 }),
        json!({ "apiKeyName": "stolen" }),
        json!({ "isEnabled": false }),
        json!({ "keyType": "SECONDARY" }),
        json!({}),
    ];
    for body in &resend_bodies {
        add(format!("create resent with {body}"), with_body(&create, &body.to_string()));
        add(format!("rename resent with {body}"), with_body(&rename, &body.to_string()));
    }
    let mut aliased = create.clone();
    let signature = aliased.headers_mut().remove(keygate_core::signature::SIGNATURE_HEADER).unwrap();
    aliased.headers_mut().insert(keygate_core::signature::SIGNATURE_ALIAS_HEADER, signature);
    add("create resent under the v1 header name".into(), aliased);
    add(
        "create resent with another access key".into(),
        with_header(create.clone(), keygate_core::signature::ACCESS_KEY_HEADER, OTHER_ACCESS_KEY.as_bytes()),
    );
    let mut moved = create.clone();
    *moved.uri_mut() = "/api/v1/api-keys".parse().unwrap();
    add("create resent to the other surface".into(), moved);

    // 4. Timestamps outside the window (by a second: the corpus is sent a little later, the clock
    // moved on by well under that), or not timestamps.
    let now = t.clock.now();
    let body = r#"{"user_id":"skew"}"#;
    for (what, offset) in [
        ("5 min 1 s late", -301_000),
        ("5 min 1 s early", 301_000),
        ("a day late", -86_400_000),
        ("a year early", 31_536_000_000),
    ] {
        let signed_at = now + TimeDelta::milliseconds(offset);
        add(
            what.into(),
            signed(Method::Post, "/identity/v1/api-keys", body, ACCESS_KEY, SECRET_KEY, signed_at),
        );
    }
    for timestamp in
        ["", "-1", "0", "1e12", "1767225600000.5", "９９", "99999999999999999999999", " 1767225600000"]
    {
        let request = t.admin(Method::Post, "/identity/v1/api-keys", body, false);
        add(
            format!("timestamp {timestamp:?}"),
            with_header(request, keygate_core::signature::TIMESTAMP_HEADER, timestamp.as_bytes()),
        );
    }

    // 5. Another tenant's keys and domain, in path, query and body.
    t.clock.advance(TimeDelta::milliseconds(1));
    let spaceone_key = format!("/identity/v1/api-key/{their_id}");
    let ncp_key = format!("{NCP_KEYS}/{their_id}");
    let cross_tenant = [
        (Method::Get, spaceone_key.clone(), String::new()),
        (Method::Put, format!("{spaceone_key}/enable"), String::new()),
        (Method::Put, format!("{spaceone_key}/disable"), String::new()),
        (Method::Delete, spaceone_key.clone(), String::new()),
        (Method::Get, ncp_key.clone(), String::new()),
        (Method::Put, ncp_key.clone(), r#"{"isEnabled":false}"#.into()),
        (Method::Patch, ncp_key.clone(), r#"{"keyType":"PRIMARY"}"#.into()),
        (Method::Delete, ncp_key.clone(), String::new()),
        (Method::Get, format!("/identity/v1/api-key/{my_id}?domain_id={OTHER_DOMAIN}"), String::new()),
        (Method::Get, format!("/identity/v1/api-keys?domain_id={OTHER_DOMAIN}"), String::new()),
        (
            Method::Post,
            "/identity/v1/api-keys/search".into(),
            json!({ "domain_id": OTHER_DOMAIN }).to_string(),
        ),
        (
            Method::Post,
            "/identity/v1/api-keys/stat".into(),
            json!({ "domain_id": OTHER_DOMAIN, "query": {} }).to_string(),
        ),
        (
            Method::Post,
            "/identity/v1/api-keys".into(),
            json!({ "user_id": "u", "domain_id": OTHER_DOMAIN }).to_string(),
        ),
        (
            Method::Put,
            format!("/identity/v1/api-key/{my_id}/disable"),
            json!({ "domain_id": OTHER_DOMAIN }).to_string(),
        ),
        (
            Method::Put,
            format!("/identity/v1/api-key/{my_id}/disable"),
            json!({ "api_key_id": their_id }).to_string(),
        ),
        (
            Method::Delete,
            format!("/identity/v1/api-key/{my_id}"),
            json!({ "domain_id": OTHER_DOMAIN }).to_string(),
        ),
    ];
    for (method, path, body) in cross_tenant {
        t.clock.advance(TimeDelta::milliseconds(1));
        add(format!("cross-tenant {method:?} {path}"), t.admin(method, &path, &body, false));
    }

    // 6. Query and statistics abuse.
    let abusive_queries = [
        json!({ "query": { "filter": [{ "k": "name", "v": "(a+)+$", "o": "regex" }], "page": { "limit": 0 } } }),
        json!({ "query": { "filter": [{ "k": "name", "v": "x{1000}{1000}", "o": "regex" }] } }),
        json!({ "query": { "filter": [{ "k": "name", "v": (0..40).map(|i| format!("^{i}")).collect::<Vec<_>>(), "o": "regex_in" }] } }),
        json!({ "query": { "filter": [{ "k": "primary_hash", "v": "x" }] } }),
        json!({ "query": { "filter": [{ "k": "api_key", "v": "x" }] } }),
        json!({ "query": { "filter": [{ "k": "name", "v": "x", "o": "$where" }] } }),
        json!({ "query": { "filter": [{ "k": "created_at", "v": "now-99999999d", "o": "timediff_lt" }] } }),
        json!({ "query": { "page": { "start": 0 } } }),
        json!({ "query": { "page": { "limit": 100_000 } } }),
        json!({ "query": { "sort": { "key": "primary_hash" } } }),
        json!({ "query": { "only": ["secondary_hash"] } }),
        json!({ "query": { "filter": "name" } }),
        json!({ "query": { "unknown": true } }),
        json!({ "domain_id": [DOMAIN] }),
    ];
    for query in &abusive_queries {
        t.clock.advance(TimeDelta::milliseconds(1));
        add(
            format!("search {query}"),
            t.admin(Method::Post, "/identity/v1/api-keys/search", &query.to_string(), false),
        );
    }
    let abusive_stats = [
        json!({ "query": { "aggregate": [{ "group": { "keys": [{ "key": "primary_hash", "name": "h" }] } }] } }),
        json!({ "query": { "aggregate": [{ "group": { "fields": [{ "key": "name", "name": "n", "operator": "eval" }] } }] } }),
        json!({ "query": { "aggregate": [{ "limit": -1 }] } }),
        json!({ "query": { "distinct": "secondary_hash" } }),
        json!({ "query": { "distinct": "name", "aggregate": [{ "count": { "name": "c" } }] } }),
        json!({ "query": { "filter": [{ "k": "name", "v": "(", "o": "regex" }] } }),
        json!({ "query": { "page": { "limit": 0 } } }),
        json!({}),
    ];
    for stat in &abusive_stats {
        t.clock.advance(TimeDelta::milliseconds(1));
        add(
            format!("stat {stat}"),
            t.admin(Method::Post, "/identity/v1/api-keys/stat", &stat.to_string(), false),
        );
    }

    // 7. Oversized, deeply nested and non-UTF-8 bodies on every route that reads one.
    let body_routes = [
        (Method::Post, "/identity/v1/api-keys".to_owned()),
        (Method::Post, "/identity/v1/api-keys/search".to_owned()),
        (Method::Post, "/identity/v1/api-keys/stat".to_owned()),
        (Method::Put, format!("/identity/v1/api-key/{my_id}/enable")),
        (Method::Post, NCP_KEYS.to_owned()),
        (Method::Put, format!("{NCP_KEYS}/{my_id}")),
        (Method::Patch, format!("{NCP_KEYS}/{my_id}")),
    ];
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("oversized", format!("{{\"user_id\":\"{}\"}}", "x".repeat(70_000)).into_bytes()),
        ("nested arrays", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        ("nested objects", format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)).into_bytes()),
        ("non-UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ("NUL bytes", b"{\"user_id\":\"a\0b\"}\0".to_vec()),
        ("not JSON", b"user_id=a&name=b".to_vec()),
        ("a JSON string", b"\"{}\"".to_vec()),
        ("a JSON number", b"1e999".to_vec()),
    ];
    for (method, path) in &body_routes {
        for (what, bytes) in &bodies {
            t.clock.advance(TimeDelta::milliseconds(1));
            add(
                format!("{what} body on {method:?} {path}"),
                binary_body(t.admin(*method, path, "", false), bytes.clone()),
            );
        }
    }
    for (what, bytes) in &bodies {
        add(format!("{what} body on regist"), binary_body(post("/v1/key/regist", ""), bytes.clone()));
    }

    // 8. Unsigned requests to every admin route, and paths and methods that do not exist.
    let admin_routes = [
        (Method::Post, "/identity/v1/api-keys".to_owned()),
        (Method::Get, "/identity/v1/api-keys".to_owned()),
        (Method::Post, "/identity/v1/api-keys/search".to_owned()),
        (Method::Post, "/identity/v1/api-keys/stat".to_owned()),
        (Method::Get, format!("/identity/v1/api-key/{my_id}")),
        (Method::Put, format!("/identity/v1/api-key/{my_id}/enable")),
        (Method::Put, format!("/identity/v1/api-key/{my_id}/disable")),
        (Method::Delete, format!("/identity/v1/api-key/{my_id}")),
        (Method::Post, NCP_KEYS.to_owned()),
        (Method::Get, NCP_KEYS.to_owned()),
        (Method::Get, format!("{NCP_KEYS}/{my_id}")),
        (Method::Put, format!("{NCP_KEYS}/{my_id}")),
        (Method::Patch, format!("{NCP_KEYS}/{my_id}")),
        (Method::Delete, format!("{NCP_KEYS}/{my_id}")),
    ];
    for (method, path) in &admin_routes {
        add(format!("unsigned {method:?} {path}"), request(*method, path, &[], Some("{}")));
        let signed_by_other = signed(*method, path, "{}", ACCESS_KEY, OTHER_SECRET_KEY, t.clock.now());
        add(format!("wrong secret {method:?} {path}"), signed_by_other);
        use keygate_core::signature::{ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
        for missing in [TIMESTAMP_HEADER, ACCESS_KEY_HEADER, SIGNATURE_HEADER] {
            let mut request = signed(*method, path, "{}", ACCESS_KEY, SECRET_KEY, t.clock.now());
            request.headers_mut().remove(missing);
            add(format!("no {missing} on {method:?} {path}"), request);
        }
    }
    let odd_paths = [
        (Method::Get, "/v1/key/regist"),
        (Method::Post, "/v1/auth/token"),
        (Method::Delete, "/.well-known/jwks.json"),
        (Method::Get, "/v1/../identity/v1/api-keys"),
        (Method::Get, "/identity/v1/api-key/"),
        (Method::Get, "/identity/v1/api-key/a/b/c"),
        (Method::Patch, "/identity/v1/api-keys"),
        (Method::Get, "/api/v1/api-keys/%2e%2e"),
        (Method::Get, "/api/v2/api-keys"),
        (Method::Get, "/health/../v1/key/detail"),
    ];
    for (method, path) in odd_paths {
        add(format!("odd {method:?} {path}"), request(method, path, &[], None));
    }

    let count = corpus.len();
    assert!(count >= 300, "the corpus holds {count} requests");
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (what, request) in corpus {
        let path = request.uri().path().to_owned();
        let (status, body, _) = t.send(request).await;
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        assert!(in_surface_shape(&path, &body), "{what}: {body}");
        *by_status.entry(status).or_default() += 1;
    }
    assert_eq!(snapshot(&t).await, baseline, "no hostile request changed a key");
    assert_eq!(remaining(&t, &key).await, 49, "no unit consumed but the first token's");
    eprintln!("{count} hostile requests, answers by status: {by_status:?}, 0 × 5xx, no key changed");
}

#[tokio::test]
async fn a_signature_whose_write_was_refused_is_spent_on_every_state_changing_route() {
    let t = TestApp::new().await;
    let id = |created: Value| created["apiKeyId"].as_str().unwrap().to_owned();
    let mine = id(t.send(t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"mine"}"#, false)).await.1);
    let theirs = id(t.send(t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"theirs"}"#, true)).await.1);
    let (ncp_mine, ncp_theirs) = (format!("{NCP_KEYS}/{mine}"), format!("{NCP_KEYS}/{theirs}"));
    let (mine, theirs) = (format!("/identity/v1/api-key/{mine}"), format!("/identity/v1/api-key/{theirs}"));
    let (disable, disable_theirs, enable) =
        (format!("{mine}/disable"), format!("{theirs}/disable"), format!("{mine}/enable"));
    let long_name = json!({ "name": "n".repeat(65), "user_id": "u" }).to_string();
    let long_ncp_name = json!({ "apiKeyName": "n".repeat(65) }).to_string();
    let other_domain = json!({ "domain_id": OTHER_DOMAIN }).to_string();
    let other_domain_create = json!({ "user_id": "u", "domain_id": OTHER_DOMAIN }).to_string();
    let (create, user, disabled) = ("/identity/v1/api-keys", r#"{"user_id":"u"}"#, r#"{"isEnabled":false}"#);
    let primary = r#"{"keyType":"PRIMARY"}"#;

    // Each route with each kind of body or target it refuses (and the status it refuses with),
    // then the body the attacker wanted.
    let cases: [(Method, &str, &str, u16, &str); 23] = [
        (Method::Post, create, "{", 400, user),
        (Method::Post, create, r#"{"user_id":"u","color":1}"#, 400, user),
        (Method::Post, create, r#"{"user_id":7}"#, 400, user),
        (Method::Post, create, r#"{"name":"x"}"#, 400, user),
        (Method::Post, create, &long_name, 400, user),
        (Method::Post, create, &other_domain_create, 403, user),
        (Method::Put, &disable, "[", 400, ""),
        (Method::Put, &disable, &other_domain, 403, ""),
        (Method::Put, &disable_theirs, "", 404, ""),
        (Method::Put, &enable, r#"{"extra":true}"#, 400, ""),
        (Method::Delete, &mine, "1", 400, ""),
        (Method::Delete, &mine, &other_domain, 403, ""),
        (Method::Delete, &theirs, "", 404, ""),
        (Method::Post, NCP_KEYS, "{}", 400, r#"{"apiKeyName":"k"}"#),
        (Method::Post, NCP_KEYS, &long_ncp_name, 400, r#"{"apiKeyName":"k"}"#),
        (Method::Put, &ncp_mine, &long_ncp_name, 400, disabled),
        (Method::Put, &ncp_mine, r#"{"apiKeyName":" "}"#, 400, disabled),
        (Method::Put, &ncp_mine, r#"{"isEnabled":"no"}"#, 400, disabled),
        (Method::Put, &ncp_theirs, disabled, 404, disabled),
        (Method::Patch, &ncp_mine, r#"{"keyType":"primary"}"#, 400, primary),
        (Method::Patch, &ncp_mine, "", 400, r#"{"keyType":"SECONDARY"}"#),
        (Method::Patch, &ncp_theirs, primary, 404, primary),
        (Method::Delete, &ncp_theirs, "", 404, ""),
    ];
    for (method, path, refused, refused_status, wanted) in cases {
        // Each case signs at its own millisecond: a signature names its time.
        t.clock.advance(TimeDelta::milliseconds(1));
        let before = snapshot(&t).await;
        let captured = t.admin(method, path, refused, false);
        assert_eq!(t.send(captured.clone()).await.0, refused_status, "{method:?} {path} with {refused:?}");

        let (status, json, _) = t.send(with_body(&captured, wanted)).await;
        let replayed = match path.starts_with(NCP_KEYS) {
            true => ncp_error(401, REPLAYED),
            false => spaceone_error("ERROR_AUTHENTICATE_FAILURE", REPLAYED),
        };
        assert_eq!((status, json), (401, replayed), "{method:?} {path}: {refused:?}, then {wanted:?}");
        assert_eq!(snapshot(&t).await, before, "{method:?} {path}: nothing changed");
    }
}

#[tokio::test]
async fn capture_refuse_reuse_cannot_regenerate_a_key_or_disable_it() {
    let t = TestApp::new().await;
    let created = t.send(t.admin(Method::Post, NCP_KEYS, r#"{"apiKeyName":"k"}"#, false)).await.1;
    let path = format!("{NCP_KEYS}/{}", created["apiKeyId"].as_str().unwrap());
    let before = snapshot(&t).await;

    // The review's two cases: a regenerate refused for its lower-case slot, then resent as the
    // slot it meant; a rename refused for its length, then resent as a disable.
    t.clock.advance(TimeDelta::milliseconds(1));
    let regenerate = t.admin(Method::Patch, &path, r#"{"keyType":"primary"}"#, false);
    assert_eq!(t.send(regenerate.clone()).await.0, 400);
    let (status, json, _) = t.send(with_body(&regenerate, r#"{"keyType":"PRIMARY"}"#)).await;
    assert_eq!((status, json), (401, ncp_error(401, REPLAYED)), "no new value in clear");

    t.clock.advance(TimeDelta::milliseconds(1));
    let rename = t.admin(Method::Put, &path, &json!({ "apiKeyName": "n".repeat(65) }).to_string(), false);
    assert_eq!(t.send(rename.clone()).await.0, 400);
    let (status, json, _) = t.send(with_body(&rename, r#"{"isEnabled":false}"#)).await;
    assert_eq!((status, json), (401, ncp_error(401, REPLAYED)));

    assert_eq!(snapshot(&t).await, before, "the key kept its values and stayed enabled");
}

#[tokio::test]
async fn a_refusal_whose_signature_cannot_be_spent_is_503_not_the_refusal() {
    let t = TestApp::with(&Settings::new(), std::sync::Arc::new(UnavailableStore));
    let (status, json, response) =
        t.send(t.admin(Method::Patch, &format!("{NCP_KEYS}/api-key-0123456789ab"), "{", false)).await;
    assert_eq!(status, 503);
    assert_eq!(json["error"]["errorCode"], "503");
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, json, _) = t.send(t.admin(Method::Post, "/identity/v1/api-keys", "{", false)).await;
    assert_eq!((status, json["error"]["code"].as_str()), (503, Some("ERROR_UNAVAILABLE")));
}
