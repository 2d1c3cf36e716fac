//! Secrets at cold start: a Lambda's environment names its secrets by ARN and it reads them from
//! Secrets Manager (the emulator here), the current version only; a function built without a
//! secret answers the routes that need it with a 500, never a panic.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials;
use chrono::TimeDelta;
use keygate_core::config::{Config, PEPPER, SIGNING_KEY, Uses};
use keygate_core::secrets;
use keygate_core::tokens::SigningAlgorithm;
use keygate_tests::*;

async fn secrets_manager() -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(dynamodb::endpoint())
        .credentials_provider(Credentials::new("local", "local", None, None, "keygate-tests"))
        .load()
        .await;
    Client::new(&config)
}

/// Creates a secret holding `value` and returns its ARN.
async fn secret(client: &Client, name: &str, value: &str) -> String {
    let name = format!("{name}-{}-{:x}", std::process::id(), rand::random::<u32>());
    let created = client.create_secret().name(name).secret_string(value).send().await.unwrap();
    created.arn().unwrap().to_owned()
}

/// After a rotation only the current version is read: the previous private key reaches no
/// function (its public half stays published through `KEYGATE_PUBLIC_KEYS`).
#[tokio::test]
async fn secrets_are_read_by_arn_current_version_only() {
    let client = secrets_manager().await;
    let (old_pem, new_pem) = (SigningAlgorithm::EdDsa.generate_pem(), SigningAlgorithm::EdDsa.generate_pem());
    let pepper = secret(&client, "pepper", "a-pepper-of-enough-bytes").await;
    let signing = secret(&client, "signing", &old_pem).await;
    // A rotation: the new value becomes current and the old one previous.
    client.put_secret_value().secret_id(&signing).secret_string(&new_pem).send().await.unwrap();

    let wanted = [(PEPPER, pepper), (SIGNING_KEY, signing)];
    let values = secrets::read(&client, &wanted).await.unwrap();
    assert_eq!(values[PEPPER], "a-pepper-of-enough-bytes");
    assert_eq!(values[SIGNING_KEY], new_pem);
    assert_eq!(values.len(), 2, "nothing but the two settings asked for");
    let config = Config::for_uses(|name| values.get(name).cloned(), Uses::SIGNING_KEY).unwrap();
    assert_eq!(config.tokens.unwrap().public_keys().jwks().keys.len(), 1);
}

/// A secret stored as binary, not text, is refused at start: every setting is text.
#[tokio::test]
async fn a_binary_secret_fails_the_start() {
    let client = secrets_manager().await;
    let name = format!("pepper-binary-{}-{:x}", std::process::id(), rand::random::<u32>());
    let blob = aws_sdk_secretsmanager::primitives::Blob::new(b"a-pepper-of-enough-bytes".to_vec());
    let created = client.create_secret().name(name).secret_binary(blob).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let err = secrets::read(&client, &[(PEPPER, arn.clone())]).await.err().unwrap().to_string();
    assert_eq!(err, format!("configuration: KEYGATE_PEPPER: the secret {arn} holds no text"));
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_fails_the_start_naming_the_setting_not_a_value() {
    let client = secrets_manager().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keygate-missing-AbCdEf";
    let err = secrets::read(&client, &[(PEPPER, missing.to_owned())]).await.err().unwrap().to_string();
    assert!(
        err.starts_with(&format!("configuration: KEYGATE_PEPPER: cannot read the secret {missing}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_function_built_without_a_secret_answers_its_routes_that_need_it_with_a_500() {
    let settings = Settings::new();
    let full = TestApp::with(&settings, fresh_store().await);
    let created = full.registered_key(5, TimeDelta::days(1)).await;
    let key = created.primary.expose();

    let lookup = |name: &str| match name {
        SIGNING_KEY => Some(settings.signing_key.clone()),
        _ => None,
    };
    let without_pepper = Config::for_uses(lookup, Uses::SIGNING_KEY).unwrap();
    let now = full.app.now();
    let app = keygate_core::Keygate::new(without_pepper, full.store.clone()).with_clock(move || now);
    let response =
        keygate_core::http::client_api::token(&app, get("/v1/auth/token", &[("x-api-key", key)])).await;
    assert_eq!(status_and_json(&response), (500, client_error("Internal server error", "internal_error")));
    // auth-refresh is built so: its route works.
    let (status, body, _) = full.send(get("/v1/auth/token", &[("x-api-key", key)])).await;
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {}", body["result"]["access_token"].as_str().unwrap());
    let response =
        keygate_core::http::client_api::refresh(&app, get("/v1/auth/refresh", &[("authorization", &bearer)]))
            .await;
    assert_eq!(response.status(), 200, "the route it was built for works");
}
