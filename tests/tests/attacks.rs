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
