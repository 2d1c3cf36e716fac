//! The one error of the domain, routing failures included. Each HTTP surface maps it to its own
//! envelope in exactly one function (`error_response` in `http::client_api`, `http::spaceone`,
//! `http::ncp`).

use crate::model::Rejection;
use crate::signature::SignatureError;
use crate::store::StoreError;
use crate::telemetry::{self, Metric};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input: the message is safe to show (it never quotes a secret).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("required parameter missing: {0}")]
    MissingParameter(String),
    #[error("not found")]
    NotFound,
    #[error("key expired")]
    KeyExpired,
    #[error("quota exhausted")]
    QuotaExhausted,
    #[error("invalid token")]
    InvalidToken,
    #[error("token reused; its family is revoked")]
    TokenReused,
    #[error("request signature rejected: {0}")]
    Unauthenticated(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("already exists")]
    Conflict,
    /// No route has this path.
    #[error("no such route")]
    NoSuchRoute,
    /// A route has this path, but not this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the local server reads.
    #[error("body is too large")]
    BodyTooLarge,
    /// The body did not arrive within the local server's read timeout.
    #[error("body was not received in time")]
    BodyTooSlow,
    /// The caller already runs as much of this kind of work as it may at once (a domain's
    /// queries that read all its keys): worth retrying shortly. The message is safe to show.
    #[error("busy: {0}")]
    Busy(String),
    /// A store or signing failure. The cause is logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
    /// The store could not take a write a refusal depends on (a refused admin write's spent
    /// signature): worth retrying, signed anew. The cause is logged, never shown.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        telemetry::count(Metric::StoreErrors);
        Error::Internal(err.to_string())
    }
}

impl From<SignatureError> for Error {
    fn from(err: SignatureError) -> Self {
        Error::Unauthenticated(err.to_string())
    }
}

impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NotFound => Error::NotFound,
            Rejection::Expired => Error::KeyExpired,
            Rejection::Exhausted => Error::QuotaExhausted,
            Rejection::Superseded => Error::InvalidToken,
        }
    }
}
