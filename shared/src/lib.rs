//! The keygate domain: API keys, their quotas and the access tokens they buy.
//!
//! Everything here is free of the Lambda runtime's wiring: the `functions/*` binaries and the
//! local server only build a [`Keygate`] from configuration and hand requests to [`http`].
//!
//! From the bottom of the module graph up: [`limits`], [`model`] and [`background`]; [`key_value`], [`replay`],
//! [`signature`] and [`tokens`]; [`store`]; [`error`] and [`config`]; [`query`]; [`api_key_info`];
//! [`service`]; [`http`] ([`telemetry`], [`lambda`] and [`aws`] stand apart). A module imports only from below it, which
//! a test (`tests/module_graph.rs`) keeps true.

pub mod api_key_info;
#[cfg(feature = "aws")]
pub mod aws;
pub mod background;
pub mod config;
pub mod error;
pub mod http;
pub mod key_value;
pub mod lambda;
pub mod limits;
pub mod model;
pub mod query;
pub mod replay;
#[cfg(feature = "secrets-manager")]
pub mod secrets;
pub mod service;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod tokens;

pub use config::Config;
pub use error::Error;
pub use service::Keygate;
