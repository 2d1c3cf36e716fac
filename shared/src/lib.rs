//! The keygate domain: API keys, their quotas and the access tokens they buy.
//!
//! Everything here is free of the Lambda runtime's wiring: the `functions/*` binaries and the
//! local server only build a [`Keygate`] from configuration and hand requests to [`http`].

pub mod config;
pub mod error;
pub mod http;
pub mod key_value;
pub mod model;
pub mod query;
pub mod service;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod tokens;

pub use config::Config;
pub use error::Error;
pub use service::Keygate;
