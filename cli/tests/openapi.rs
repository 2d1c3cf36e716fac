//! The OpenAPI document: it names exactly the routes the server serves, the server serves it, and
//! `openapi.json` at the repository root is the document the code generates.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use keygate_core::http::{openapi, router};
use serde_json::Value;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[test]
fn the_document_describes_every_route_the_server_serves_and_no_other() {
    let document: Value = serde_json::from_str(&openapi::document_json()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|method| item.get(**method).is_some()) {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> =
        router::routes().map(|(method, path)| (method.to_string(), path.to_owned())).collect();
    assert_eq!(documented, served);
}

#[test]
fn every_operation_says_what_each_status_sends() {
    let document: Value = serde_json::from_str(&openapi::document_json()).unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success");
            for (status, response) in responses {
                let sends = response.get("content").is_some();
                assert_eq!(sends, status != "204", "{method} {path} {status}: content");
            }
            let signed = path.starts_with("/identity/") || path.starts_with("/api/v1/");
            let security = operation["security"].to_string();
            assert_eq!(security.contains("ncp_signature"), signed, "{method} {path}: {security}");
        }
    }
}

#[test]
fn openapi_json_at_the_root_is_the_generated_document() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == openapi::document_json(),
        "openapi.json is not the document the code generates: regenerate it with \
         `cargo run -q -p keygate -- openapi > openapi.json`"
    );
}

#[test]
fn the_documented_bounds_are_the_limits_the_rules_apply() {
    use keygate_core::limits::*;
    let document: Value = serde_json::from_str(&openapi::document_json()).unwrap();
    let schemas = &document["components"]["schemas"];
    let create = &schemas["CreateAPIKeyRequest"]["properties"];
    assert_eq!(create["name"]["maxLength"], NAME_MAX_CHARS);
    assert_eq!(create["description"]["maxLength"], DESCRIPTION_MAX_CHARS);
    assert_eq!(create["user_id"]["maxLength"], USER_ID_MAX_CHARS);
    assert_eq!(create["scope"]["maxItems"], SCOPE_MAX_ENTRIES);
    assert_eq!(create["max_total_usage"]["maximum"], MAX_TOTAL_USAGE);
    assert_eq!(create["validity_seconds"]["maximum"], VALIDITY_MAX_SECONDS);
    for ncp in ["NcpCreateRequest", "NcpUpdateRequest"] {
        let properties = &schemas[ncp]["properties"];
        assert_eq!(properties["apiKeyName"]["maxLength"], NAME_MAX_CHARS, "{ncp}");
        assert_eq!(properties["apiKeyDescription"]["maxLength"], DESCRIPTION_MAX_CHARS, "{ncp}");
    }
    let list = &document["paths"]["/api/v1/api-keys"]["get"]["parameters"];
    let limit = list.as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["maximum"], LIST_MAX_LIMIT);
}

#[test]
fn operation_ids_are_unique() {
    let document: Value = serde_json::from_str(&openapi::document_json()).unwrap();
    let mut seen = BTreeSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(seen.insert(id.to_owned()), "{id} twice");
        }
    }
}

#[tokio::test]
async fn the_local_server_serves_the_document_at_openapi_json() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = support::start(data_dir.path());
    let response = reqwest::get(format!("{}/openapi.json", server.url)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), openapi::document_json());
    let other = reqwest::Client::new().post(format!("{}/openapi.json", server.url)).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 404, "only GET serves it");
}
