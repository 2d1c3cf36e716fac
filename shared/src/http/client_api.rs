//! The client API of seed 000 (`/v1/...`, what a customer calls with its key or token): `{"result": {...}}` envelopes, epoch-millisecond expiries.

use bytes::Bytes;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{header, json_response, parse_json};
use crate::Keygate;
use crate::error::Error;
use crate::model::ApiKey;
use crate::tokens::{IssuedToken, PublicKeys};

pub const API_KEY_HEADER: &str = "x-api-key";

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistRequest {
    key: String,
}

/// `POST /v1/key/regist`
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

/// `GET /v1/key/detail`
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

/// `GET /v1/auth/token`
pub async fn token(app: &Keygate, request: Request) -> Response<Body> {
    token_response(async { app.issue_token(api_key_header(&request)?).await }.await)
}

/// `GET /v1/auth/refresh`
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
pub fn jwks(keys: &PublicKeys) -> Response<Body> {
    jwks_document(keys).map(|_| Body::Text(keys.document().to_owned()))
}

/// `GET /health`
pub fn health() -> Response<Body> {
    json_response(200, &json!({ "status": "ok" }))
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

#[derive(Serialize)]
struct Registered {
    key_expired: Option<i64>,
    max_total_usage: u32,
}

#[derive(Serialize)]
struct Detail {
    key_expired: Option<i64>,
    max_total_usage: u32,
    remaining_total_usage: u32,
    scope: Vec<String>,
}

#[derive(Serialize)]
struct Token<'a> {
    access_token: &'a str,
    expires_in: i64,
    key_expired: i64,
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
    #[derive(Serialize)]
    struct Envelope<T> {
        result: T,
    }
    match serde_json::to_string(&Envelope { result }) {
        Ok(text) => {
            let mut response = Response::new(Body::Text(text));
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
        Error::Unauthenticated(_) | Error::PermissionDenied(_) | Error::Conflict | Error::Internal(_) => {
            (500, "Internal server error", "internal_error")
        }
    };
    if status == 500 {
        tracing::error!(error = %err, "client request failed");
    } else {
        tracing::info!(status, code, reason = %err, "client request refused");
    }
    error_body(status, text, code)
}

const NOT_AUTHENTICATED: &str = "This token is not authenticated.";

fn error_body(status: u16, text: &str, code: &str) -> Response<Body> {
    json_response(status, &json!({ "result": { "error": text, "code": code } }))
}
