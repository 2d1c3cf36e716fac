//! The metrics a Lambda publishes (CloudWatch's embedded metric format): each counted where it
//! happens, whatever the function. One test, because the recorder is process-wide.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::store::DynamoStore;
use keygate_core::telemetry::Metric;
use keygate_tests::*;
use serde_json::Value;

/// Each metric's total over the documents `flushed` holds, and the namespaces they name.
fn totals(flushed: &[u8]) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut totals = BTreeMap::new();
    let mut namespaces = Vec::new();
    for line in String::from_utf8_lossy(flushed).lines() {
        let document: Value = serde_json::from_str(line).expect("one JSON document per line");
        for directive in document["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            namespaces.push(directive["Namespace"].as_str().unwrap().to_owned());
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                *totals.entry(name.to_owned()).or_insert(0.0) += document[name].as_f64().unwrap();
            }
        }
    }
    (totals, namespaces)
}

#[tokio::test]
async fn each_event_is_counted_once_under_its_metric() {
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("keygate-tests")
        .init()
        .expect("the only recorder of this process");

    let settings = Settings::new();
    let t = TestApp::with(&settings, fresh_store().await);
    let created = t.registered_key(3, TimeDelta::days(1)).await;
    let key = [("x-api-key", created.primary.expose())];
    let (status, first, _) = t.send(get("/v1/auth/token", &key)).await;
    assert_eq!(status, 200);
    let bearer = format!("Bearer {}", first["result"]["access_token"].as_str().unwrap());
    assert_eq!(t.send(get("/v1/auth/token", &key)).await.0, 200);
    assert_eq!(t.send(get("/v1/auth/refresh", &[("authorization", &bearer)])).await.0, 200);
    assert_eq!(t.send(get("/v1/auth/refresh", &[("authorization", &bearer)])).await.0, 429, "reused");
    assert_eq!(t.send(get("/v1/auth/token", &key)).await.0, 429, "quota exhausted");
    let forged =
        signed(Method::Post, "/identity/v1/api-keys", "{}", ACCESS_KEY, "not-the-secret", t.app.now());
    assert_eq!(t.send(forged).await.0, 401);

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = DynamoStore::connect(Some(&format!("http://127.0.0.1:{closed_port}")), "nowhere").await;
    let down = TestApp::with(&settings, Arc::new(unreachable));
    assert_eq!(down.send(get("/v1/key/detail", &key)).await.0, 500);

    let mut flushed = Vec::new();
    metrics.flush(&mut flushed).unwrap();
    let (totals, namespaces) = totals(&flushed);
    let expected: BTreeMap<String, f64> = [
        (Metric::TokensIssued, 3.0),
        (Metric::QuotaExhausted, 1.0),
        (Metric::RefreshReuseDetected, 1.0),
        (Metric::SignatureRefused, 1.0),
        (Metric::StoreErrors, 1.0),
    ]
    .into_iter()
    .map(|(metric, total)| (metric.name().to_owned(), total))
    .collect();
    assert_eq!(totals, expected, "{}", String::from_utf8_lossy(&flushed));
    assert!(namespaces.iter().all(|namespace| namespace == "keygate-tests"), "{namespaces:?}");
    assert_eq!(Metric::ALL.len(), expected.len(), "every metric is exercised");
}
