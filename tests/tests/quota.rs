//! Each mint consumes exactly one unit in the same conditional write that checks the key, so no
//! key is ever oversold, however many requests race for it.

use chrono::TimeDelta;
use keygate_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_hundred_concurrent_token_requests_for_a_quota_of_one_hundred_mint_exactly_one_hundred() {
    let t = TestApp::new().await;
    let created = t.registered_key(100, TimeDelta::days(1)).await;
    let key = created.primary.expose().to_owned();

    let requests: Vec<_> = (0..400)
        .map(|_| {
            let app = t.app.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let response =
                    keygate_core::http::router::dispatch(&app, get("/v1/auth/token", &[("x-api-key", &key)]))
                        .await;
                status_and_json(&response)
            })
        })
        .collect();
    let (mut minted, mut exhausted, mut tokens) = (0, 0, std::collections::HashSet::new());
    for request in requests {
        let (status, body) = request.await.unwrap();
        match status {
            200 => {
                minted += 1;
                tokens.insert(body["result"]["access_token"].as_str().unwrap().to_owned());
            }
            429 => {
                assert_eq!(body, client_error("This token is not authenticated.", "quota_exhausted"));
                exhausted += 1;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!((minted, exhausted), (100, 300));
    assert_eq!(tokens.len(), 100, "every token is distinct");
    let (_, detail, _) = t.send(get("/v1/key/detail", &[("x-api-key", &key)])).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_succeed_once() {
    let t = TestApp::new().await;
    let created = t.registered_key(100, TimeDelta::days(1)).await;
    let (_, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();

    let requests: Vec<_> = (0..32)
        .map(|_| {
            let app = t.app.clone();
            let authorization = format!("Bearer {token}");
            tokio::spawn(async move {
                let request = get("/v1/auth/refresh", &[("authorization", &authorization)]);
                keygate_core::http::router::dispatch(&app, request).await.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 31, "{statuses:?}");
    let (_, detail, _) = t.send(get("/v1/key/detail", &[("x-api-key", created.primary.expose())])).await;
    assert_eq!(detail["result"]["remaining_total_usage"], json!(98), "one token, one refresh");
}
