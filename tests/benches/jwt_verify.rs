//! Access-token verifications per second on one thread, on the token authorizer's path: the
//! authorizer's whole answer to an API Gateway REQUEST event carrying `Authorization: Bearer`
//! (verify the token under the published keys, then the context of its claims), for a token of
//! each algorithm keygate signs with. `cargo bench -p keygate-tests --bench jwt_verify`; criterion
//! prints each as `thrpt: ... Kelem/s`, one element being one verified request.

use std::sync::Arc;

use chrono::TimeDelta;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keygate_core::config::{JWT_ALG, PUBLIC_KEYS};
use keygate_core::http::token_authorizer::{authorize, verifier_from_lookup};
use keygate_core::store::MemoryStore;
use keygate_core::tokens::{AccessVerifier, SigningAlgorithm};
use keygate_tests::{Settings, TestApp, get};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;

/// The authorizer as deployed beside a keygate signing with `algorithm`, and an event carrying a
/// token that keygate minted.
fn authorizer_and_event(
    algorithm: SigningAlgorithm,
) -> (AccessVerifier, TestApp, ApiGatewayV2CustomAuthorizerV2Request) {
    let settings = Settings {
        signing_key: algorithm.generate_pem(),
        overrides: vec![(JWT_ALG, algorithm.name().to_owned())],
    };
    let t = TestApp::with(&settings, Arc::new(MemoryStore::new()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let token = runtime.block_on(async {
        let created = t.registered_key(10, TimeDelta::days(1)).await;
        let (status, body, _) =
            t.send(get("/v1/auth/token", &[("x-api-key", created.primary.expose())])).await;
        assert_eq!(status, 200, "{body}");
        body["result"]["access_token"].as_str().unwrap().to_owned()
    });
    let published = t.app.public_keys().unwrap().document().to_owned();
    let verifier = verifier_from_lookup(|name| (name == PUBLIC_KEYS).then(|| published.clone())).unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/token-authorizer.json");
    let mut event: ApiGatewayV2CustomAuthorizerV2Request =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    event.headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    (verifier, t, event)
}

fn token_authorizer(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_authorizer");
    group.throughput(Throughput::Elements(1));
    for algorithm in SigningAlgorithm::ALL {
        let (verifier, t, event) = authorizer_and_event(algorithm);
        let now = t.app.now();
        assert!(authorize(&verifier, now, &event).is_authorized, "{} token refused", algorithm.name());
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| {
                let answer = authorize(&verifier, now, std::hint::black_box(&event));
                assert!(answer.is_authorized);
                answer
            })
        });
    }
    group.finish();
}

criterion_group!(benches, token_authorizer);
criterion_main!(benches);
