//! Contract of the NCP-compatible API-key resource (seed 002), its errors, zero-downtime
//! rotation, and keys shared with the SpaceONE surface.

use chrono::TimeDelta;
use keygate_tests::*;
use serde_json::{Value, json};

const KEYS: &str = "/api/v1/api-keys";

fn ncp_error(status: u16, message: &str) -> Value {
    json!({ "error": { "errorCode": status.to_string(), "message": message } })
}

async fn create(t: &TestApp, name: &str) -> Value {
    let body = json!({ "apiKeyName": name, "apiKeyDescription": "orders service" }).to_string();
    let (status, document, _) = t.send(t.admin(Method::Post, KEYS, &body, false)).await;
    assert_eq!(status, 201, "{document}");
    document
}

fn key_path(document: &Value) -> String {
    format!("{KEYS}/{}", document["apiKeyId"].as_str().unwrap())
}

async fn token_status(t: &TestApp, key: &str) -> u16 {
    t.send(get("/v1/auth/token", &[("x-api-key", key)])).await.0
}

#[tokio::test]
async fn create_answers_201_with_the_seeds_document_and_both_values_in_clear() {
    let t = TestApp::new().await;
    let mut document = create(&t, "checkout").await;
    let id = document["apiKeyId"].take();
    let primary = document["primaryKey"].take();
    let secondary = document["secondaryKey"].take();
    let hex = &id.as_str().unwrap()[8..];
    for value in [&primary, &secondary] {
        assert!(value.as_str().unwrap().starts_with(&format!("kg_{hex}_")), "{value}");
    }
    assert_ne!(primary, secondary);
    assert_eq!(
        document,
        json!({
            "apiKeyId": null,
            "tenantId": DOMAIN,
            "apiKeyName": "checkout",
            "apiKeyDescription": "orders service",
            "primaryKey": null,
            "secondaryKey": null,
            "modifier": ACCESS_KEY,
            "isEnabled": true,
            "modTime": "2026-01-01T00:00:00Z",
            "domainCode": "PUB",
        })
    );
    let regist = post("/v1/key/regist", &json!({ "key": primary }).to_string());
    assert_eq!(t.send(regist).await.0, 200, "the value works on the client API");
}

#[tokio::test]
async fn get_shows_the_document_with_values_masked() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let (status, document, _) = t.send(t.admin(Method::Get, &key_path(&created), "", false)).await;
    assert_eq!(status, 200);
    let masked = |v: &Value| format!("*****{}", &v.as_str().unwrap()[50..]);
    assert_eq!(document["primaryKey"], json!(masked(&created["primaryKey"])));
    assert_eq!(document["secondaryKey"], json!(masked(&created["secondaryKey"])));
    let mut expected = created.clone();
    expected["primaryKey"] = document["primaryKey"].clone();
    expected["secondaryKey"] = document["secondaryKey"].clone();
    assert_eq!(document, expected);
}

#[tokio::test]
async fn list_pages_and_filters_by_name() {
    let t = TestApp::new().await;
    for n in 0..12 {
        create(&t, &format!("{}-{n:02}", if n % 2 == 0 { "checkout" } else { "billing" })).await;
        t.clock.advance(TimeDelta::seconds(1));
    }
    let (status, page, _) = t.send(t.admin(Method::Get, KEYS, "", false)).await;
    assert_eq!(status, 200);
    assert_eq!(page["apiKeyPage"]["total"], json!(12));
    assert_eq!(page["apiKeyPage"]["content"].as_array().unwrap().len(), 10, "10 by default");

    let path = format!("{KEYS}?apiKeyName=CHECK&offset=2&limit=3");
    let (_, page, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    let names: Vec<&str> = page["apiKeyPage"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["apiKeyName"].as_str().unwrap())
        .collect();
    assert_eq!(
        (names, &page["apiKeyPage"]["total"]),
        (vec!["checkout-04", "checkout-06", "checkout-08"], &json!(6))
    );
}

#[tokio::test]
async fn update_renames_and_disables() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let primary = created["primaryKey"].as_str().unwrap().to_owned();
    t.send(post("/v1/key/regist", &json!({ "key": primary }).to_string())).await;
    t.clock.advance(TimeDelta::minutes(2));
    let body = json!({ "apiKeyName": "checkout-v2", "isEnabled": false }).to_string();
    let (status, document, _) = t.send(t.admin(Method::Put, &key_path(&created), &body, false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &document["apiKeyName"],
            &document["apiKeyDescription"],
            &document["isEnabled"],
            &document["modTime"]
        ),
        (&json!("checkout-v2"), &json!("orders service"), &json!(false), &json!("2026-01-01T00:02:00Z"))
    );
    assert_eq!(token_status(&t, &primary).await, 404, "a disabled key mints nothing");
    let body = json!({ "isEnabled": true }).to_string();
    t.clock.advance(TimeDelta::milliseconds(1)); // each write is signed anew
    t.send(t.admin(Method::Put, &key_path(&created), &body, false)).await;
    assert_eq!(token_status(&t, &primary).await, 200);
}

#[tokio::test]
async fn a_customer_rotates_both_values_with_zero_failed_requests() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let old_primary = created["primaryKey"].as_str().unwrap().to_owned();
    t.send(post("/v1/key/regist", &json!({ "key": old_primary }).to_string())).await;
    let path = key_path(&created);
    let mut in_use = old_primary.clone();
    let mut failures = 0;
    let mut requests = 0;
    let mut work = |status: u16| {
        requests += 1;
        failures += usize::from(status != 200);
    };

    for _ in 0..5 {
        work(token_status(&t, &in_use).await);
    }
    // 1. A new secondary; the customer keeps using the primary meanwhile, then moves over.
    let (status, rotated, _) =
        t.send(t.admin(Method::Patch, &path, r#"{"keyType":"SECONDARY"}"#, false)).await;
    assert_eq!(status, 200);
    assert!(rotated["primaryKey"].as_str().unwrap().starts_with("*****"), "only the new value is shown");
    let new_secondary = rotated["secondaryKey"].as_str().unwrap().to_owned();
    assert_ne!(new_secondary, created["secondaryKey"].as_str().unwrap());
    for _ in 0..5 {
        work(token_status(&t, &in_use).await);
    }
    in_use = new_secondary.clone();
    for _ in 0..5 {
        work(token_status(&t, &in_use).await);
    }
    // 2. A new primary retires the old one; the customer, already on the secondary, notices nothing.
    t.clock.advance(TimeDelta::milliseconds(1)); // each write is signed anew
    let (status, rotated, _) = t.send(t.admin(Method::Patch, &path, r#"{"keyType":"PRIMARY"}"#, false)).await;
    assert_eq!(status, 200);
    for _ in 0..5 {
        work(token_status(&t, &in_use).await);
    }
    assert_eq!((failures, requests), (0, 20));
    assert_eq!(token_status(&t, &old_primary).await, 404, "the retired value is refused");
    let new_primary = rotated["primaryKey"].as_str().unwrap();
    assert_eq!(token_status(&t, new_primary).await, 200);
}

#[tokio::test]
async fn delete_answers_204_and_the_key_is_gone() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let primary = created["primaryKey"].as_str().unwrap().to_owned();
    t.send(post("/v1/key/regist", &json!({ "key": primary }).to_string())).await;
    let response =
        keygate_core::http::router::dispatch(&t.app, t.admin(Method::Delete, &key_path(&created), "", false))
            .await;
    assert_eq!(response.status(), 204);
    assert!(matches!(response.body(), lambda_http::Body::Empty));
    assert_eq!(token_status(&t, &primary).await, 404);
    let (status, body, _) = t.send(t.admin(Method::Get, &key_path(&created), "", false)).await;
    assert_eq!((status, body), (404, ncp_error(404, "api key not found")));
}

#[tokio::test]
async fn both_admin_surfaces_manage_the_same_keys() {
    let t = TestApp::new().await;
    let from_ncp = create(&t, "from-ncp").await;
    let path = format!("/identity/v1/api-key/{}", from_ncp["apiKeyId"].as_str().unwrap());
    let (status, info, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!((status, &info["name"], &info["user_id"]), (200, &json!("from-ncp"), &json!(ACCESS_KEY)));

    let (_, info, _) =
        t.send(t.signed_create(r#"{"user_id":"u","name":"from-spaceone"}"#, ACCESS_KEY, SECRET_KEY)).await;
    let path = format!("{KEYS}/{}", info["api_key_id"].as_str().unwrap());
    let (status, document, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!((status, &document["apiKeyName"]), (200, &json!("from-spaceone")));
}

#[tokio::test]
async fn ncp_routes_answer_400_to_bad_bodies_and_parameters() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let path = key_path(&created);
    let long_name = json!({ "apiKeyName": "n".repeat(65) }).to_string();
    let cases = [
        (
            "create without a name",
            Method::Post,
            KEYS.to_owned(),
            r#"{"apiKeyDescription":"x"}"#,
            "required parameter: apiKeyName",
        ),
        (
            "create with an unknown field",
            Method::Post,
            KEYS.to_owned(),
            r#"{"apiKeyName":"x","tenantId":"t"}"#,
            "unknown field `tenantId`",
        ),
        (
            "create with a long name",
            Method::Post,
            KEYS.to_owned(),
            long_name.as_str(),
            "name must be 1 to 64 printable characters",
        ),
        ("update not JSON", Method::Put, path.clone(), "{", "body is not valid JSON"),
        (
            "update isEnabled a string",
            Method::Put,
            path.clone(),
            r#"{"isEnabled":"yes"}"#,
            "a field has the wrong type or value",
        ),
        (
            "update an empty name",
            Method::Put,
            path.clone(),
            r#"{"apiKeyName":""}"#,
            "required parameter: name",
        ),
        (
            "regenerate a third key",
            Method::Patch,
            path.clone(),
            r#"{"keyType":"TERTIARY"}"#,
            "a field has the wrong type or value",
        ),
        ("regenerate without keyType", Method::Patch, path.clone(), "{}", "missing field `keyType`"),
        (
            "list limit above 100",
            Method::Get,
            format!("{KEYS}?limit=101"),
            "",
            "limit must be between 1 and 100",
        ),
        (
            "list offset not a number",
            Method::Get,
            format!("{KEYS}?offset=-1"),
            "",
            "offset is not a whole number",
        ),
        ("list unknown parameter", Method::Get, format!("{KEYS}?sort=name"), "", "unknown parameter sort"),
    ];
    for (what, method, path, body, message) in cases {
        // A refused write spends its signature: each is signed at a millisecond of its own.
        t.clock.advance(TimeDelta::milliseconds(1));
        let (status, json, _) = t.send(t.admin(method, &path, body, false)).await;
        assert_eq!((status, json), (400, ncp_error(400, message)), "{what}");
    }
}

#[tokio::test]
async fn ncp_routes_answer_401_404_and_405() {
    let t = TestApp::new().await;
    let created = create(&t, "checkout").await;
    let path = key_path(&created);
    let (status, body, _) = t.send(request(Method::Get, &path, &[], None)).await;
    assert_eq!((status, body), (401, ncp_error(401, "missing header x-ncp-apigw-timestamp")));

    let rename = t.admin(Method::Put, &path, r#"{"apiKeyName":"renamed"}"#, false);
    let replay = rename.clone();
    assert_eq!(t.send(rename).await.0, 200);
    let (status, body, _) = t.send(replay.clone()).await;
    assert_eq!((status, body), (401, ncp_error(401, keygate_core::service::REPLAYED)));
    let mut with_nulls = replay;
    *with_nulls.body_mut() =
        lambda_http::Body::Text(r#"{"apiKeyName":"renamed","apiKeyDescription":null}"#.into());
    let (status, body, _) = t.send(with_nulls).await;
    assert_eq!(
        (status, body),
        (401, ncp_error(401, keygate_core::service::REPLAYED)),
        "null fields add nothing"
    );

    for (method, body) in [
        (Method::Get, ""),
        (Method::Put, r#"{"isEnabled":false}"#),
        (Method::Patch, r#"{"keyType":"PRIMARY"}"#),
        (Method::Delete, ""),
    ] {
        let (status, json, _) = t.send(t.admin(method, &path, body, true)).await;
        assert_eq!((status, json), (404, ncp_error(404, "api key not found")), "another domain, {method:?}");
        let unknown = format!("{KEYS}/api-key-000000000000");
        let (status, _, _) = t.send(t.admin(method, &unknown, body, false)).await;
        assert_eq!(status, 404, "unknown id, {method:?}");
    }
    let (_, document, _) = t.send(t.admin(Method::Get, &path, "", false)).await;
    assert_eq!(
        (&document["apiKeyName"], &document["isEnabled"]),
        (&json!("renamed"), &json!(true)),
        "nothing changed"
    );
    let (status, body, _) = t.send(t.admin(Method::Post, &path, "{}", false)).await;
    assert_eq!((status, body), (405, ncp_error(405, "method not allowed")));
    let (status, body, _) = t.send(t.admin(Method::Get, "/api/v1/nothing", "", false)).await;
    assert_eq!((status, body), (404, ncp_error(404, "no such route")));
}
