//! The one error of the domain. Each HTTP surface maps it to its own envelope in one place
//! (`http::client`, `http::spaceone`).

use crate::store::StoreError;

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
    /// A store or signing failure. The cause is logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Error::Internal(err.to_string())
    }
}

impl From<crate::model::Rejection> for Error {
    fn from(rejection: crate::model::Rejection) -> Self {
        use crate::model::Rejection;
        match rejection {
            Rejection::NotFound => Error::NotFound,
            Rejection::Expired => Error::KeyExpired,
            Rejection::Exhausted => Error::QuotaExhausted,
        }
    }
}
