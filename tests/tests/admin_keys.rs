//! Contract of SpaceONE `enable`, `disable`, `delete` and `get` (seed 001): whole responses,
//! every error status, and tenant isolation.

use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::service::CreatedKey;
use keygate_tests::*;
use serde_json::{Value, json};

fn key_path(created: &CreatedKey, suffix: &str) -> String {
    format!("/identity/v1/api-key/{}{suffix}", created.key.api_key_id)
}

async fn status_of_token(t: &TestApp, created: &CreatedKey) -> u16 {
    t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await.0
}

fn expected_info(created: &CreatedKey, state: &str) -> Value {
    let key = &created.key;
    json!({
        "api_key_id": key.api_key_id,
        "api_key": format!("*****{}", &created.primary.expose()[50..]),
        "state": state,
        "user_id": "user-1",
        "domain_id": DOMAIN,
        "last_accessed_at": "",
        "created_at": "2026-01-01T00:00:00Z",
        "name": key.api_key_id,
        "description": "",
        "scope": ["orders:read", "orders:write"],
        "max_total_usage": 10,
        "remaining_total_usage": 10,
        "validity_seconds": 86400,
        "expires_at": "2026-01-02T00:00:00Z",
        "registered_at": "2026-01-01T00:00:00Z",
    })
}

#[tokio::test]
async fn get_returns_the_key_with_its_value_masked() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (status, body, _) = t.send(t.admin(Method::Get, &key_path(&created, ""), "", false)).await;
    assert_eq!((status, body), (200, expected_info(&created, "ENABLED")));
}

#[tokio::test]
async fn get_with_only_returns_just_those_fields() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let path = key_path(&created, &format!("?domain_id={DOMAIN}&only=state,api_key_id"));
    let (status, body, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!((status, body), (200, json!({ "state": "ENABLED", "api_key_id": created.key.api_key_id })));
    let path = key_path(&created, "?only=state&only=user_id");
    let (_, body, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!(body, json!({ "state": "ENABLED", "user_id": "user-1" }), "only repeated");
}

#[tokio::test]
async fn disable_then_enable_switches_the_client_api_off_and_on() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let body = json!({ "api_key_id": created.key.api_key_id, "domain_id": DOMAIN }).to_string();
    t.clock.advance(TimeDelta::seconds(5));
    let (status, info, _) = t.send(t.admin(Method::Put, &key_path(&created, "/disable"), &body, false)).await;
    assert_eq!((status, info), (200, expected_info(&created, "DISABLED")));
    assert_eq!(status_of_token(&t, &created).await, 404);

    let (status, info, _) = t.send(t.admin(Method::Put, &key_path(&created, "/enable"), "", false)).await;
    assert_eq!((status, info), (200, expected_info(&created, "ENABLED")), "an empty body is fine");
    assert_eq!(status_of_token(&t, &created).await, 200);
}

#[tokio::test]
async fn delete_answers_an_empty_message_and_the_key_is_gone_everywhere_at_once() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (_, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();

    let (status, body, _) = t.send(t.admin(Method::Delete, &key_path(&created, ""), "", false)).await;
    assert_eq!((status, body), (200, json!({})));
    let not_found = client_error("Not found", "not_found");
    for (what, request) in [
        ("detail", get("/v1/key/detail", &[("x-api-key", created.primary.expose())])),
        ("token", get("/v1/auth/token", &[("x-api-key", created.primary.expose())])),
        ("refresh", get("/v1/auth/refresh", &[("authorization", &format!("Bearer {token}"))])),
        ("regist", post("/v1/key/regist", &json!({ "key": created.primary.expose() }).to_string())),
    ] {
        let (status, body, _) = t.send(request).await;
        assert_eq!((status, body), (404, not_found.clone()), "{what}");
    }
    let (status, body, _) = t.send(t.admin(Method::Get, &key_path(&created, ""), "", false)).await;
    assert_eq!((status, body), (404, spaceone_error("ERROR_NOT_FOUND", "resource not found")));
}

#[tokio::test]
async fn key_routes_answer_400_to_bad_bodies_and_parameters() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let disable = key_path(&created, "/disable");
    let cases = [
        (
            "other key id in the body",
            Method::Put,
            disable.clone(),
            r#"{"api_key_id":"api-key-000000000000"}"#,
            "api_key_id differs from the path",
        ),
        ("not JSON", Method::Put, disable.clone(), "{", "body is not valid JSON"),
        ("unknown field", Method::Put, disable.clone(), r#"{"state":"DISABLED"}"#, "unknown field `state`"),
        (
            "id of the wrong type",
            Method::Put,
            disable.clone(),
            r#"{"api_key_id":7}"#,
            "a field has the wrong type or value",
        ),
        (
            "unknown query parameter",
            Method::Get,
            key_path(&created, "?color=red"),
            "",
            "unknown parameter color",
        ),
        (
            "unknown field in only",
            Method::Get,
            key_path(&created, "?only=secret"),
            "",
            "unknown field secret in only",
        ),
    ];
    for (what, method, path, body, message) in cases {
        // A refused write spends its signature: each is signed at a millisecond of its own.
        t.clock.advance(TimeDelta::milliseconds(1));
        let (status, json, _) = t.send(t.admin(method, &path, body, false)).await;
        assert_eq!((status, json), (400, spaceone_error("ERROR_INVALID_ARGUMENT", message)), "{what}");
    }
    assert_eq!(status_of_token(&t, &created).await, 200, "nothing was disabled");
}

#[tokio::test]
async fn key_routes_answer_401_to_unsigned_and_replayed_requests() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let unsigned = request(Method::Put, &key_path(&created, "/disable"), &[], None);
    let (status, body, _) = t.send(unsigned).await;
    assert_eq!(
        (status, body),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", "missing header x-ncp-apigw-timestamp"))
    );

    let disable = t.admin(Method::Put, &key_path(&created, "/disable"), "", false);
    let replay = disable.clone();
    assert_eq!(t.send(disable).await.0, 200);
    assert_eq!(t.send(t.admin(Method::Put, &key_path(&created, "/enable"), "", false)).await.0, 200);
    let (status, body, _) = t.send(replay.clone()).await;
    assert_eq!(
        (status, body),
        (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED))
    );
    let same_meaning = ["\n".to_owned(), "{}".to_owned(), json!({ "domain_id": DOMAIN }).to_string()];
    for other_body in same_meaning {
        let mut replayed = replay.clone();
        *replayed.body_mut() = lambda_http::Body::Text(other_body.clone());
        let (status, body, _) = t.send(replayed).await;
        assert_eq!(
            (status, body),
            (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", keygate_core::service::REPLAYED)),
            "a disable whose body says nothing new, {other_body:?}, is the same request"
        );
    }
    assert_eq!(status_of_token(&t, &created).await, 200, "the replayed disable changed nothing");
}

#[tokio::test]
async fn key_routes_answer_403_to_another_domain_id() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let denied = spaceone_error("ERROR_PERMISSION_DENIED", "domain_id is not the caller's domain");
    let body = json!({ "domain_id": OTHER_DOMAIN }).to_string();
    let (status, json, _) = t.send(t.admin(Method::Put, &key_path(&created, "/disable"), &body, false)).await;
    assert_eq!((status, json), (403, denied.clone()));
    let path = key_path(&created, &format!("?domain_id={OTHER_DOMAIN}"));
    let (status, json, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!((status, json), (403, denied));
    assert_eq!(status_of_token(&t, &created).await, 200);
}

#[tokio::test]
async fn key_routes_answer_404_to_unknown_and_malformed_ids() {
    let t = TestApp::new().await;
    let not_found = spaceone_error("ERROR_NOT_FOUND", "resource not found");
    for id in ["api-key-000000000000", "not-an-id", "api-key-ABCDEF000000"] {
        for (method, suffix) in
            [(Method::Get, ""), (Method::Put, "/enable"), (Method::Put, "/disable"), (Method::Delete, "")]
        {
            let path = format!("/identity/v1/api-key/{id}{suffix}");
            let (status, body, _) = t.send(t.admin(method, &path, "", false)).await;
            assert_eq!((status, body), (404, not_found.clone()), "{method:?} {path}");
        }
    }
}

#[tokio::test]
async fn another_domain_can_neither_see_nor_change_a_key() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let before = t.store.get_key(&created.key.api_key_id).await.unwrap();
    let not_found = spaceone_error("ERROR_NOT_FOUND", "resource not found");
    let routes =
        [(Method::Get, ""), (Method::Put, "/enable"), (Method::Put, "/disable"), (Method::Delete, "")];
    for (method, suffix) in routes {
        let (status, body, _) = t.send(t.admin(method, &key_path(&created, suffix), "", true)).await;
        assert_eq!((status, body), (404, not_found.clone()), "{method:?} {suffix}");
    }
    assert_eq!(t.store.get_key(&created.key.api_key_id).await.unwrap(), before, "nothing changed");
}

#[tokio::test]
async fn wrong_methods_on_key_routes_answer_405() {
    let t = TestApp::new().await;
    let created = t.registered_key(10, TimeDelta::days(1)).await;
    let (status, body, _) = t.send(t.admin(Method::Post, &key_path(&created, ""), "", false)).await;
    assert_eq!((status, body), (405, spaceone_error("ERROR_METHOD_NOT_ALLOWED", "method not allowed")));
}

#[tokio::test]
async fn every_admin_route_answers_in_its_envelope_when_the_store_is_down() {
    let t = TestApp::with(&Settings::new(), std::sync::Arc::new(UnavailableStore));
    let id = "api-key-0123456789ab";
    let spaceone = spaceone_error("ERROR_INTERNAL_API", "internal error");
    let ncp = json!({ "error": { "errorCode": "500", "message": "internal error" } });
    // A write whose signature cannot be spent either asks to be signed again and retried.
    let unavailable = "service unavailable: sign the request again and retry";
    let spaceone_write = spaceone_error("ERROR_UNAVAILABLE", unavailable);
    let ncp_write = json!({ "error": { "errorCode": "503", "message": unavailable } });
    let cases = [
        (Method::Get, format!("/identity/v1/api-key/{id}"), "", &spaceone),
        (Method::Put, format!("/identity/v1/api-key/{id}/enable"), "", &spaceone_write),
        (Method::Put, format!("/identity/v1/api-key/{id}/disable"), "", &spaceone_write),
        (Method::Delete, format!("/identity/v1/api-key/{id}"), "", &spaceone_write),
        (Method::Get, "/identity/v1/api-keys".to_owned(), "", &spaceone),
        (Method::Post, "/identity/v1/api-keys/search".to_owned(), "{}", &spaceone),
        (Method::Post, "/identity/v1/api-keys/search".to_owned(), r#"{"query":{"keyword":"x"}}"#, &spaceone),
        (
            Method::Post,
            "/identity/v1/api-keys/search".to_owned(),
            r#"{"query":{"count_only":true}}"#,
            &spaceone,
        ),
        (Method::Post, "/identity/v1/api-keys/stat".to_owned(), r#"{"query":{}}"#, &spaceone),
        (Method::Post, "/api/v1/api-keys".to_owned(), r#"{"apiKeyName":"n"}"#, &ncp_write),
        (Method::Get, "/api/v1/api-keys".to_owned(), "", &ncp),
        (Method::Get, "/api/v1/api-keys?apiKeyName=x".to_owned(), "", &ncp),
        (Method::Get, format!("/api/v1/api-keys/{id}"), "", &ncp),
        (Method::Put, format!("/api/v1/api-keys/{id}"), r#"{"isEnabled":false}"#, &ncp_write),
        (Method::Patch, format!("/api/v1/api-keys/{id}"), r#"{"keyType":"PRIMARY"}"#, &ncp_write),
        (Method::Delete, format!("/api/v1/api-keys/{id}"), "", &ncp_write),
    ];
    for (method, path, body, expected) in cases {
        let (status, json, _) = t.send(t.admin(method, &path, body, false)).await;
        let status_expected = if *expected == spaceone_write || *expected == ncp_write { 503 } else { 500 };
        assert_eq!((status, &json), (status_expected, expected), "{method:?} {path}");
    }
}

/// The index a list reads may lag behind the keys: a key disabled, renamed or deleted after the
/// index was read is noticed when the page's keys are read, and the list reads every key instead.
#[tokio::test]
async fn a_list_never_shows_a_key_that_no_longer_matches_a_lagging_index() {
    use keygate_core::query::Query;
    use keygate_core::service::{KeySearch, KeyTarget, ListPage, NewKey};

    let store = Arc::new(LaggingIndex::new());
    let t = TestApp::with(&Settings::new(), store.clone());
    let mut ids = Vec::new();
    for name in ["orders-a", "orders-b", "orders-c"] {
        let new = NewKey { user_id: "u".into(), name: Some(name.into()), ..NewKey::default() };
        ids.push(t.create(new).await.key.api_key_id.to_string());
        t.clock.advance(TimeDelta::seconds(1));
    }
    store.freeze(DOMAIN).await;
    let nonce = |n: &str| keygate_core::replay::ReplayNonce {
        id: n.into(),
        request: n.into(),
        expires_at: t.clock.now() + chrono::TimeDelta::minutes(10),
    };
    let disabled = keygate_core::model::KeyState::Disabled;
    t.app.set_state(&t.caller(), &KeyTarget::id(&ids[0]), disabled, &nonce("n1")).await.unwrap();
    t.app.delete_key(&t.caller(), &KeyTarget::id(&ids[2]), &nonce("n2")).await.unwrap();

    let enabled: Query =
        serde_json::from_value(json!({ "filter": [{ "k": "state", "v": "ENABLED" }] })).unwrap();
    let found =
        t.app.search_keys(&t.caller(), KeySearch { query: enabled, ..KeySearch::default() }).await.unwrap();
    let names: Vec<&str> = found.results.iter().map(|doc| doc["name"].as_str().unwrap()).collect();
    assert_eq!((names, found.total_count), (vec!["orders-b"], 1));

    let by_name = ListPage { offset: 0, limit: 10, name_contains: Some("ORDERS".into()) };
    let listed = t.app.list_keys(&t.caller(), by_name).await.unwrap();
    let names: Vec<&str> = listed.keys.iter().map(|key| key.name.as_str()).collect();
    assert_eq!((names, listed.total), (vec!["orders-a", "orders-b"], 2), "the deleted key is gone");
}
