//! The API Gateway events in `events/` (also used by `sam local invoke`) replayed through the
//! handlers the Lambdas run.

use std::path::PathBuf;

use chrono::TimeDelta;
use keygate_core::http::{authorizer, client_api, router, spaceone};
use keygate_tests::*;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use serde_json::{Value, json};

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(format!("{name}.json"))).expect("event file")
}

fn lambda_request(json: &str) -> lambda_http::Request {
    lambda_http::request::from_str(json).expect("a valid API Gateway event")
}

#[test]
fn every_function_has_an_event_and_every_event_parses() {
    let functions =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions")).unwrap();
    for function in functions {
        let name = function.unwrap().file_name().into_string().unwrap();
        let text = read(&name);
        if name.ends_with("-authorizer") {
            serde_json::from_str::<ApiGatewayV2CustomAuthorizerV2Request>(&text).expect("authorizer event");
        } else {
            let request = lambda_request(&text);
            assert!(!request.uri().path().is_empty(), "{name}");
        }
    }
}

#[tokio::test]
async fn the_sample_events_get_the_answers_their_placeholders_deserve() {
    let t = TestApp::new().await;
    let app = &t.app;
    let status = |response: lambda_http::Response<lambda_http::Body>| status_and_json(&response);
    assert_eq!(status(client_api::regist(app, lambda_request(&read("key-regist"))).await).0, 404);
    assert_eq!(status(client_api::detail(app, lambda_request(&read("key-detail"))).await).0, 404);
    assert_eq!(status(client_api::token(app, lambda_request(&read("auth-token"))).await).0, 404);
    assert_eq!(
        status(client_api::refresh(app, lambda_request(&read("auth-refresh"))).await),
        (429, client_error("This token is not authenticated.", "invalid_token"))
    );
    // The JWKS route reads nothing of its request: its event need only be one.
    lambda_request(&read("jwks"));
    assert_eq!(status(client_api::jwks(app.public_keys().unwrap())).0, 200);
}

#[test]
fn the_discovery_event_names_the_apis_own_jwks() {
    let issuer = keygate_core::tokens::Issuer {
        issuer: "keygate".into(),
        algorithm: keygate_core::tokens::SigningAlgorithm::Rs256,
        served_at: keygate_core::tokens::ServedAt::Unknown,
    };
    let (status, body) = status_and_json(&keygate_core::http::discovery::document(
        &issuer,
        &lambda_request(&read("discovery")),
    ));
    assert_eq!(status, 200);
    assert_eq!(
        body["jwks_uri"],
        json!("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/.well-known/jwks.json")
    );
    assert_eq!(body["id_token_signing_alg_values_supported"], json!(["RS256"]));

    // In AWS the API's own domain counts, not a Host header the client chose.
    let mut event: Value = serde_json::from_str(&read("discovery")).unwrap();
    event["headers"]["host"] = json!("attacker.example");
    let (_, body) = status_and_json(&keygate_core::http::discovery::document(
        &issuer,
        &lambda_request(&event.to_string()),
    ));
    assert_eq!(
        body["token_endpoint"],
        json!("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/auth/token")
    );
}

#[test]
fn the_health_and_catch_all_events_get_their_answers() {
    assert_eq!(status_and_json(&client_api::health()), (200, json!({ "status": "ok" })));
    let request = lambda_request(&read("not-found"));
    assert_eq!(
        status_and_json(&router::unmatched(&request)),
        (405, client_error("Method not allowed", "method_not_allowed"))
    );
}

/// `$default` answers what no route takes exactly as the local server does, on every surface.
#[tokio::test]
async fn the_catch_all_answers_as_the_local_server_on_every_surface() {
    let t = TestApp::new().await;
    let event: Value = serde_json::from_str(&read("not-found")).unwrap();
    let cases = [
        ("GET", "/v1/nothing", 404),
        ("POST", "/v1/auth/token", 405),
        ("GET", "/identity/v1/nothing", 404),
        ("DELETE", "/identity/v1/api-keys", 405),
        ("GET", "/api/v1/nothing/at/all", 404),
        ("POST", "/api/v1/api-keys/api-key-0123456789ab", 405),
        ("GET", "/", 404),
    ];
    for (method, path, expected) in cases {
        let mut event = event.clone();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        let text = event.to_string();
        let caught = status_and_json(&router::unmatched(&lambda_request(&text)));
        let served = status_and_json(&router::dispatch(&t.app, lambda_request(&text)).await);
        assert_eq!(caught.0, expected, "{method} {path}: {}", caught.1);
        assert_eq!(caught, served, "{method} {path}");
    }
}

#[tokio::test]
async fn a_real_key_in_the_client_events_is_served() {
    let t = TestApp::new().await;
    let created = t.create(keygate_core::service::NewKey { user_id: "u".into(), ..Default::default() }).await;
    let key = created.primary.expose();
    let placeholder = "kg_0f1e2d3c4b5a_ExampleKeyValueForSamLocalInvoke2AKuJn";
    let event = |name: &str| lambda_request(&read(name).replace(placeholder, key));

    let (status, body) = status_and_json(&client_api::regist(&t.app, event("key-regist")).await);
    assert_eq!(status, 200, "{body}");
    let (status, body) = status_and_json(&client_api::detail(&t.app, event("key-detail")).await);
    assert_eq!((status, &body["result"]["remaining_total_usage"]), (200, &json!(10_000)));
    let (status, body) = status_and_json(&client_api::token(&t.app, event("auth-token")).await);
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_create_event_carries_the_authorizers_caller_to_the_handler() {
    let t = TestApp::new().await;
    let event: Value = serde_json::from_str(&read("identity-api-key-create")).unwrap();
    let (status, body) =
        status_and_json(&spaceone::create_api_key(&t.app, lambda_request(&event.to_string())).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domain_id"], json!("local"));
    assert_eq!(body["name"], json!("checkout"));

    let mut without_authorizer = event.clone();
    without_authorizer["requestContext"].as_object_mut().unwrap().remove("authorizer");
    let (status, body) = status_and_json(
        &spaceone::create_api_key(&t.app, lambda_request(&without_authorizer.to_string())).await,
    );
    assert_eq!((status, body), (401, spaceone_error("ERROR_AUTHENTICATE_FAILURE", "request is not signed")));
}

#[tokio::test]
async fn the_authorizer_event_is_authorized_only_inside_its_time_window() {
    let settings = Settings::new().with(
        keygate_core::config::ADMIN_CREDENTIALS,
        json!([{ "access_key": "AKEXAMPLE0000000000", "secret_key": "example-secret-key-for-events", "domain_id": "local" }])
            .to_string(),
    );
    let t = TestApp::with(&settings, fresh_store().await);
    let event: ApiGatewayV2CustomAuthorizerV2Request =
        serde_json::from_str(&read("admin-authorizer")).unwrap();
    // The event was signed at 1795589040000 ms; the test clock starts at START_MILLIS.
    t.clock.advance(TimeDelta::milliseconds(1_795_589_040_000 - START_MILLIS));
    let response = authorizer::authorize(t.app.credentials(), t.app.now(), &event);
    assert!(response.is_authorized);
    assert_eq!(response.context, json!({ "domain_id": "local", "access_key": "AKEXAMPLE0000000000" }));

    t.clock.advance(TimeDelta::minutes(6));
    let response = authorizer::authorize(t.app.credentials(), t.app.now(), &event);
    assert!(!response.is_authorized);
    assert_eq!(serde_json::to_value(&response).unwrap(), json!({ "isAuthorized": false, "context": {} }));

    let mut tampered = event.clone();
    tampered.raw_path = Some("/identity/v1/api-keys/stat".into());
    t.clock.advance(TimeDelta::minutes(-6));
    assert!(!authorizer::authorize(t.app.credentials(), t.app.now(), &tampered).is_authorized);
}
