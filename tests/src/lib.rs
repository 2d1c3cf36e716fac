//! Test harness: a keygate with known secrets and a clock the test moves, requests as API Gateway
//! delivers them, and a store that is down.

pub mod conformance;
pub mod dynamodb;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta};
use keygate_core::Keygate;
use keygate_core::config::{self, Config};
use keygate_core::model::{ApiKey, ApiKeyId, Caller, SecretHash, Timestamp};
use keygate_core::replay::ReplayNonce;
use keygate_core::service::{CreatedKey, NewKey};
use keygate_core::signature;
use keygate_core::store::{Imported, MemoryStore, Record, RefreshMarker, Store, StoreError, WriteError};
use keygate_core::tokens::SigningAlgorithm;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

pub const DOMAIN: &str = "domain-a";
pub const ACCESS_KEY: &str = "AKTESTDOMAINA";
pub const SECRET_KEY: &str = "secret-of-domain-a";
pub const OTHER_DOMAIN: &str = "domain-b";
pub const OTHER_ACCESS_KEY: &str = "AKTESTDOMAINB";
pub const OTHER_SECRET_KEY: &str = "secret-of-domain-b";
pub const THIRD_DOMAIN: &str = "domain-c";
pub const THIRD_ACCESS_KEY: &str = "AKTESTDOMAINC";
pub const THIRD_SECRET_KEY: &str = "secret-of-domain-c";
/// The instant every test starts at: 2026-01-01T00:00:00Z.
pub const START_MILLIS: i64 = 1_767_225_600_000;
pub const PEPPER: &str = "a-pepper-known-to-the-tests-only";

/// Settings shared by every keygate a test builds, so keys and tokens of one are valid in another
/// unless a test changes a setting on purpose.
#[derive(Clone)]
pub struct Settings {
    pub signing_key: String,
    pub overrides: Vec<(&'static str, String)>,
}

impl Settings {
    pub fn new() -> Self {
        Self { signing_key: SigningAlgorithm::EdDsa.generate_pem(), overrides: Vec::new() }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.overrides.push((name, value.into()));
        self
    }

    pub fn config(&self) -> Config {
        let credentials = serde_json::json!([
            { "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "domain_id": DOMAIN },
            { "access_key": OTHER_ACCESS_KEY, "secret_key": OTHER_SECRET_KEY, "domain_id": OTHER_DOMAIN },
            { "access_key": THIRD_ACCESS_KEY, "secret_key": THIRD_SECRET_KEY, "domain_id": THIRD_DOMAIN },
        ]);
        Config::from_lookup(|name| {
            if let Some((_, value)) = self.overrides.iter().find(|(n, _)| *n == name) {
                return Some(value.clone());
            }
            match name {
                config::PEPPER => Some(PEPPER.into()),
                config::SIGNING_KEY => Some(self.signing_key.clone()),
                config::ADMIN_CREDENTIALS => Some(credentials.to_string()),
                _ => None,
            }
        })
        .expect("test configuration is valid")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

/// A clock that stands still until the test moves it.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    pub fn now(&self) -> Timestamp {
        DateTime::from_timestamp_millis(START_MILLIS + self.0.load(Ordering::SeqCst)).unwrap()
    }

    pub fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

pub struct TestApp {
    pub app: Arc<Keygate>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
}

/// Which store the suites run on: the embedded one, or (`KEYGATE_TEST_STORE=dynamodb`, as
/// `scripts/test` sets for its second run) a fresh table on the DynamoDB emulator.
pub async fn fresh_store() -> Arc<dyn Store> {
    match std::env::var("KEYGATE_TEST_STORE").as_deref() {
        Ok("dynamodb") => dynamodb::store().await,
        Ok("memory") | Err(_) => Arc::new(MemoryStore::new()),
        Ok(other) => panic!("KEYGATE_TEST_STORE={other}: expected memory or dynamodb"),
    }
}

/// A fresh SQLite store in a new file under `dir` (a test binary's `CARGO_TARGET_TMPDIR`).
pub fn sqlite_store(dir: &str) -> Arc<dyn Store> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let path = std::path::Path::new(dir).join(format!("keygate-{}-{n}.db", std::process::id()));
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", path.display()));
    }
    Arc::new(keygate_core::store::SqliteStore::open(&path).expect("the database opens"))
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(&Settings::new(), fresh_store().await)
    }

    pub fn with(settings: &Settings, store: Arc<dyn Store>) -> Self {
        Self::built(settings, store, |app| app)
    }

    /// As [`Self::with`], with the service changed by `build` (given an address to serve at, say).
    pub fn built(settings: &Settings, store: Arc<dyn Store>, build: impl FnOnce(Keygate) -> Keygate) -> Self {
        let clock = Clock::default();
        let ticking = clock.clone();
        let app = build(Keygate::new(settings.config(), store.clone())).with_clock(move || ticking.now());
        Self { app: Arc::new(app), store, clock }
    }

    pub fn caller(&self) -> Caller {
        Caller { domain_id: DOMAIN.into(), access_key: ACCESS_KEY.into() }
    }

    pub async fn create(&self, new_key: NewKey) -> CreatedKey {
        self.app.create_key(&self.caller(), new_key, None).await.expect("key is created")
    }

    /// A registered key with `max_total_usage` units that expires `validity` after registration.
    pub async fn registered_key(&self, max_total_usage: i64, validity: TimeDelta) -> CreatedKey {
        let created = self
            .create(NewKey {
                user_id: "user-1".into(),
                scope: Some(vec!["orders:read".into(), "orders:write".into()]),
                max_total_usage: Some(max_total_usage),
                validity_seconds: Some(validity.num_seconds()),
                ..NewKey::default()
            })
            .await;
        self.app.register(created.primary.expose()).await.expect("key registers");
        created
    }

    /// Puts a key into the store as it is, for states no route of this issue produces.
    pub async fn insert(&self, key: &ApiKey) {
        self.store.create_key(key, None).await.expect("inserted");
    }

    pub async fn send(&self, request: Request) -> (u16, Value, Response<Body>) {
        let response = keygate_core::http::router::dispatch(&self.app, request).await;
        let (status, body) = status_and_json(&response);
        (status, body, response)
    }

    /// A request signed now by the caller of domain A (or, with `other`, of domain B).
    pub fn admin(&self, method: Method, path: &str, body: &str, other: bool) -> Request {
        let (access_key, secret_key) =
            if other { (OTHER_ACCESS_KEY, OTHER_SECRET_KEY) } else { (ACCESS_KEY, SECRET_KEY) };
        signed(method, path, body, access_key, secret_key, self.clock.now())
    }

    /// A create request signed now by the given credential.
    pub fn signed_create(&self, body: &str, access_key: &str, secret_key: &str) -> Request {
        signed(Method::Post, "/identity/v1/api-keys", body, access_key, secret_key, self.clock.now())
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request as API Gateway hands it to a function: `path` may carry a query string, which also
/// arrives parsed, as the query parameters.
pub fn request(method: Method, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    use lambda_http::RequestExt;
    let mut builder = lambda_http::http::Request::builder().method(method.as_str()).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
    builder
        .body(body.map_or(Body::Empty, |b| Body::Text(b.to_owned())))
        .expect("valid request")
        .with_query_string_parameters(
            query.parse::<lambda_http::aws_lambda_events::query_map::QueryMap>().unwrap(),
        )
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> Request {
    request(Method::Get, path, headers, None)
}

pub fn post(path: &str, body: &str) -> Request {
    request(Method::Post, path, &[("content-type", "application/json")], Some(body))
}

pub fn signed(
    method: Method,
    path: &str,
    body: &str,
    access_key: &str,
    secret_key: &str,
    at: Timestamp,
) -> Request {
    let timestamp = at.timestamp_millis().to_string();
    let signature = signature::sign(secret_key, method.as_str(), path, &timestamp, access_key);
    request(
        method,
        path,
        &[
            (signature::TIMESTAMP_HEADER, &timestamp),
            (signature::ACCESS_KEY_HEADER, access_key),
            (signature::SIGNATURE_HEADER, &signature),
        ],
        Some(body),
    )
}

pub fn status_and_json(response: &Response<Body>) -> (u16, Value) {
    let bytes: &[u8] = match response.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let json = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    (response.status().as_u16(), json)
}

/// The client envelope of an error, as the seed writes it plus our `code`.
pub fn client_error(text: &str, code: &str) -> Value {
    serde_json::json!({ "result": { "error": text, "code": code } })
}

pub fn spaceone_error(code: &str, message: &str) -> Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

/// A store whose every call fails, as DynamoDB does when it is unreachable.
pub struct UnavailableStore;

fn down() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

#[async_trait]
impl Store for UnavailableStore {
    async fn create_key(&self, _: &ApiKey, _: Option<&ReplayNonce>) -> Result<(), WriteError> {
        Err(down().into())
    }
    async fn get_key(&self, _: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Err(down())
    }
    async fn get_keys(&self, _: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError> {
        Err(down())
    }
    async fn list_key_ids(&self, _: &str) -> Result<Vec<ApiKeyId>, StoreError> {
        Err(down())
    }
    async fn register_key(&self, _: &ApiKeyId, _: &SecretHash, _: Timestamp) -> Result<ApiKey, WriteError> {
        Err(down().into())
    }
    async fn consume_for_token(
        &self,
        _: &ApiKeyId,
        _: &SecretHash,
        _: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        Err(down().into())
    }
    async fn consume_for_refresh(
        &self,
        _: &ApiKeyId,
        _: &RefreshMarker,
        _: Timestamp,
    ) -> Result<(), WriteError> {
        Err(down().into())
    }
    async fn change_key(
        &self,
        _: &ApiKeyId,
        _: &str,
        _: &keygate_core::model::KeyChange,
        _: &ReplayNonce,
    ) -> Result<ApiKey, WriteError> {
        Err(down().into())
    }
    async fn delete_key(
        &self,
        _: &ApiKeyId,
        _: &str,
        _: &ReplayNonce,
        _: Timestamp,
    ) -> Result<(), WriteError> {
        Err(down().into())
    }
    async fn spend_nonce(&self, _: &ReplayNonce, _: Timestamp) -> Result<(), WriteError> {
        Err(down().into())
    }
    async fn revoke_family(&self, _: &str, _: Timestamp, _: Timestamp) -> Result<(), StoreError> {
        Err(down())
    }
    async fn export(&self) -> Result<Vec<Record>, StoreError> {
        Err(down())
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn import(&self, _: &[Record]) -> Result<Imported, StoreError> {
        Err(down())
    }
}

/// A store whose listings can be frozen as they are, as an eventually consistent index lags
/// behind the keys: after [`Self::freeze`], `list_listings` answers what it answered then, while
/// every other call sees the keys as they are.
pub struct LaggingIndex {
    keys: MemoryStore,
    frozen: std::sync::Mutex<Option<Vec<keygate_core::store::KeyListing>>>,
}

impl LaggingIndex {
    pub fn new() -> Self {
        Self { keys: MemoryStore::new(), frozen: std::sync::Mutex::new(None) }
    }

    /// From now on the domain's listings are those of this moment.
    pub async fn freeze(&self, domain_id: &str) {
        let now = self.keys.list_listings(domain_id, &Default::default()).await.unwrap();
        *self.frozen.lock().unwrap() = Some(now);
    }
}

impl Default for LaggingIndex {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for LaggingIndex {
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError> {
        self.keys.create_key(key, nonce).await
    }
    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        self.keys.get_key(id).await
    }
    async fn get_keys(&self, ids: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError> {
        self.keys.get_keys(ids).await
    }
    async fn list_key_ids(&self, domain_id: &str) -> Result<Vec<ApiKeyId>, StoreError> {
        self.keys.list_key_ids(domain_id).await
    }
    async fn list_listings(
        &self,
        domain_id: &str,
        filter: &keygate_core::store::ListingFilter,
    ) -> Result<Vec<keygate_core::store::KeyListing>, StoreError> {
        let frozen = self.frozen.lock().unwrap().clone();
        match frozen {
            Some(listings) => Ok(listings.into_iter().filter(|l| filter.matches(l)).collect()),
            None => self.keys.list_listings(domain_id, filter).await,
        }
    }
    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        self.keys.register_key(id, secret, now).await
    }
    async fn consume_for_token(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        self.keys.consume_for_token(id, secret, now).await
    }
    async fn consume_for_refresh(
        &self,
        id: &ApiKeyId,
        marker: &RefreshMarker,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        self.keys.consume_for_refresh(id, marker, now).await
    }
    async fn change_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        change: &keygate_core::model::KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, WriteError> {
        self.keys.change_key(id, domain_id, change, nonce).await
    }
    async fn delete_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        self.keys.delete_key(id, domain_id, nonce, now).await
    }
    async fn spend_nonce(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), WriteError> {
        self.keys.spend_nonce(nonce, now).await
    }
    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.keys.revoke_family(family, expires_at, now).await
    }
    async fn export(&self) -> Result<Vec<Record>, StoreError> {
        self.keys.export().await
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.keys.is_empty().await
    }
    async fn import(&self, records: &[Record]) -> Result<Imported, StoreError> {
        self.keys.import(records).await
    }
}
