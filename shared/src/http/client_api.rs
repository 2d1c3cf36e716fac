//! The client API of seed 000 (`/v1/...`, what a customer calls with its key or token): `{"result": {...}}` envelopes, epoch-millisecond expiries.

use bytes::Bytes;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

use super::{header, json_response, parse_json, with_retry_after};
use crate::Keygate;
use crate::error::Error;
use crate::model::ApiKey;
use crate::tokens::{IssuedToken, PublicKeys};

pub const API_KEY_HEADER: &str = "x-api-key";

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistRequest {
    /// The key value (`kg_...`).
    key: String,
}

/// Register a key: the first call starts a validity-based key's clock; later calls answer the
/// same.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/key/regist", tag = "Client API",
    request_body = RegistRequest,
    responses(
        (status = 200, description = "Registered", body = ClientResult<Registered>),
        (status = 400, description = "`Bad request`: bad body", body = ClientError),
        (status = 404, description = "`Not found`: unknown, malformed, disabled or deleted key", body = ClientError),
        (status = 405, description = "Another method on this path", body = ClientError),
        (status = 500, description = "`Internal server error`", body = ClientError),
    ),
))]
pub async fn regist(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let body: RegistRequest = parse_json(&request)?;
            let key = app.register(&body.key).await?;
            Ok(Registered { key_expired: key_expired(&key), max_total_usage: key.max_total_usage })
        }
        .await,
    )
}

/// A registered key's expiry, quota and scope.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/key/detail", tag = "Client API",
    responses(
        (status = 200, description = "The key's details", body = ClientResult<Detail>),
        (status = 400, description = "`Bad request`: no `x-api-key`", body = ClientError),
        (status = 404, description = "`Not found`: unknown, malformed, unregistered, disabled or deleted key", body = ClientError),
        (status = 405, description = "Another method on this path", body = ClientError),
        (status = 500, description = "`Internal server error`", body = ClientError),
    ),
    security(("api_key" = [])),
))]
pub async fn detail(app: &Keygate, request: Request) -> Response<Body> {
    respond(
        async {
            let key = app.detail(api_key_header(&request)?).await?;
            Ok(Detail {
                key_expired: key_expired(&key),
                max_total_usage: key.max_total_usage,
                remaining_total_usage: key.remaining_total_usage,
                scope: key.scope,
            })
        }
        .await,
    )
}

/// An access token for a registered key; consumes one unit of its quota.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/auth/token", tag = "Client API",
    responses(
        (status = 200, description = "A token", body = ClientResult<Token>, headers(("cache-control" = String, description = "`no-store`"))),
        (status = 400, description = "`Bad request`: no `x-api-key`", body = ClientError),
        (status = 404, description = "`Not found`: unknown, malformed, unregistered, disabled or deleted key", body = ClientError),
        (status = 405, description = "Another method on this path", body = ClientError),
        (status = 429, description = "`This token is not authenticated.`: the key expired or its quota is used up", body = ClientError),
        (status = 500, description = "`Internal server error`", body = ClientError),
    ),
    security(("api_key" = [])),
))]
pub async fn token(app: &Keygate, request: Request) -> Response<Body> {
    token_response(async { app.issue_token(api_key_header(&request)?).await }.await)
}

/// The next token of the presented token's family; consumes one unit. A token refreshes once: a
/// second refresh revokes its family.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/auth/refresh", tag = "Client API",
    responses(
        (status = 200, description = "The next token", body = ClientResult<Token>, headers(("cache-control" = String, description = "`no-store`"))),
        (status = 400, description = "`Bad request`: no bearer token, or not a JWT", body = ClientError),
        (status = 404, description = "`Not found`: the key is disabled or deleted", body = ClientError),
        (status = 405, description = "Another method on this path", body = ClientError),
        (status = 429, description = "`This token is not authenticated.`: bad or expired token, reused, or the key expired or ran out", body = ClientError),
        (status = 500, description = "`Internal server error`", body = ClientError),
    ),
    security(("bearer" = [])),
))]
pub async fn refresh(app: &Keygate, request: Request) -> Response<Body> {
    token_response(async { app.refresh(bearer_token(&request)?).await }.await)
}

/// `GET /.well-known/jwks.json`: the document as serialised once, at start, shared by every
/// answer (what the local server sends).
pub fn jwks_document(keys: &PublicKeys) -> Response<Bytes> {
    let mut response = Response::new(keys.shared_document());
    response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The same answer as a Lambda gives it: its runtime copies the body into the invocation's
/// response anyway.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "Discovery",
    responses(
        (status = 200, description = "The current and previous token-signing public keys", body = Jwks,
            headers(("cache-control" = String, description = "`public, max-age=300`"))),
        (status = 405, description = "Another method on this path", body = ClientError),
        (status = 500, description = "`Internal server error`: no keys configured", body = ClientError),
    ),
))]
pub fn jwks(keys: &PublicKeys) -> Response<Body> {
    jwks_document(keys).map(|_| Body::Text(keys.document().to_owned()))
}

/// Readiness, for load balancers and the local server's callers.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/health", tag = "Client API",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 405, description = "Another method on this path", body = ClientError),
    ),
))]
pub fn health() -> Response<Body> {
    json_answer(200, &Health { status: "ok" })
}

fn api_key_header(request: &Request) -> Result<&str, Error> {
    header(request, API_KEY_HEADER).ok_or_else(|| Error::MissingParameter(API_KEY_HEADER.into()))
}

fn bearer_token(request: &Request) -> Result<&str, Error> {
    let value =
        header(request, "authorization").ok_or_else(|| Error::MissingParameter("authorization".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim())
        }
        _ => Err(Error::InvalidArgument("authorization is not a bearer token".into())),
    }
}

fn key_expired(key: &ApiKey) -> Option<i64> {
    key.expires_at.map(|t| t.timestamp_millis())
}

// The answers, serialised straight from these (members in alphabetical order, as they always
// were: the order of a `serde_json::Value` object).

/// `{"result": ...}`
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct ClientResult<T> {
    result: T,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Health {
    /// `ok`
    status: &'static str,
}

/// The key's expiry (epoch milliseconds; none for a validity-based key not yet registered) and
/// quota.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Registered {
    key_expired: Option<i64>,
    max_total_usage: u32,
}

/// The key's expiry (epoch milliseconds), quota left and in all, and scope.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Detail {
    key_expired: Option<i64>,
    max_total_usage: u32,
    remaining_total_usage: u32,
    scope: Vec<String>,
}

/// An access token (an RFC 9068 JWT), its lifetime in seconds, and the key's expiry (epoch
/// milliseconds).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Token<'a> {
    access_token: &'a str,
    expires_in: i64,
    key_expired: i64,
    /// `Bearer`
    token_type: &'static str,
}

fn token_response(outcome: Result<IssuedToken, Error>) -> Response<Body> {
    let mut response = match outcome {
        Ok(token) => result_response(&Token {
            access_token: &token.access_token,
            expires_in: token.expires_in,
            key_expired: token.claims.key_expired,
            token_type: "Bearer",
        }),
        Err(err) => error_response(&err),
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The one responder of the client API: `{"result": ...}`, or the error's envelope.
fn respond(outcome: Result<impl Serialize, Error>) -> Response<Body> {
    match outcome {
        Ok(result) => result_response(&result),
        Err(err) => error_response(&err),
    }
}

/// `{"result": ...}` with status 200.
fn result_response(result: &impl Serialize) -> Response<Body> {
    json_answer(200, &ClientResult { result })
}

/// The JSON of `body` with `status`, or the 500 of an answer that would not serialise.
fn json_answer(status: u16, body: &impl Serialize) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => {
            let mut response = Response::new(Body::Text(text));
            *response.status_mut() = status.try_into().expect("a valid status");
            response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
            response
        }
        Err(err) => error_response(&Error::Internal(format!("answer not serialised: {err}"))),
    }
}

/// The one mapping of domain errors to the client envelope: the seed's texts plus our `code`.
pub fn error_response(err: &Error) -> Response<Body> {
    let (status, text, code) = match err {
        Error::InvalidArgument(_) | Error::MissingParameter(_) | Error::BodyTooLarge | Error::BodyTooSlow => {
            (400, "Bad request", "bad_request")
        }
        Error::NotFound | Error::NoSuchRoute => (404, "Not found", "not_found"),
        Error::MethodNotAllowed => (405, "Method not allowed", "method_not_allowed"),
        Error::KeyExpired => (429, NOT_AUTHENTICATED, "key_expired"),
        Error::QuotaExhausted => (429, NOT_AUTHENTICATED, "quota_exhausted"),
        Error::InvalidToken => (429, NOT_AUTHENTICATED, "invalid_token"),
        Error::TokenReused => (429, NOT_AUTHENTICATED, "token_reused"),
        // No client route runs an admin query.
        Error::Busy(_) => (500, "Internal server error", "internal_error"),
        Error::Unauthenticated(_) | Error::PermissionDenied(_) | Error::Conflict | Error::Internal(_) => {
            (500, "Internal server error", "internal_error")
        }
        // Seed 000 knows no 503.
        Error::Unavailable(_) => (500, "Internal server error", "unavailable"),
    };
    if status == 500 {
        tracing::error!(error = %err, "client request failed");
    } else {
        tracing::info!(status, code, reason = %err, "client request refused");
    }
    match err {
        Error::Unavailable(_) => with_retry_after(error_body(status, text, code)),
        _ => error_body(status, text, code),
    }
}

const NOT_AUTHENTICATED: &str = "This token is not authenticated.";

fn error_body(status: u16, text: &'static str, code: &'static str) -> Response<Body> {
    json_response(
        status,
        &serde_json::to_value(ClientError { result: ClientErrorBody { error: text, code } })
            .expect("texts serialise"),
    )
}

/// The client API's error envelope.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct ClientError {
    result: ClientErrorBody,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct ClientErrorBody {
    /// The seed's text: `Bad request`, `Not found`, `Method not allowed`,
    /// `This token is not authenticated.` or `Internal server error`.
    error: &'static str,
    /// `bad_request`, `not_found`, `method_not_allowed`, `key_expired`, `quota_exhausted`,
    /// `invalid_token`, `token_reused` or `internal_error`.
    code: &'static str,
}

/// The JWKS (RFC 7517) the tokens verify under: the current signing key and the previous one.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwks {
    keys: Vec<Jwk>,
}

/// A public key: `OKP`/`Ed25519` (`x`), `EC`/`P-256` (`x`, `y`) or `RSA` (`n`, `e`).
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwk {
    kty: String,
    kid: String,
    alg: String,
    /// `sig`
    #[serde(rename = "use")]
    use_: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}
