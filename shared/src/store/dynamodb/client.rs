//! The SDK client keygate runs with, and how SDK failures become [`StoreError`]s.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

use crate::store::StoreError;

/// The DynamoDB client configuration keygate runs with, over `base` (see [`crate::aws`]): bounded
/// timeouts (a request that hangs becomes a 500 within seconds), standard retries for reads and
/// admin writes, and, when an endpoint is given (DynamoDB Local, an emulator), placeholder
/// credentials unless real ones are configured.
pub fn client_config(base: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(4))
        .build();
    let mut config = aws_sdk_dynamodb::config::Builder::from(base)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            config = config.credentials_provider(Credentials::new("local", "local", None, None, "keygate"));
        }
    }
    config
}

/// The SDK's whole account of a failure, for the log.
pub(crate) fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(err: &SdkError<E, R>) -> String {
    DisplayErrorContext(err).to_string()
}

/// Maps an SDK failure of `operation` to a store error that names it.
pub(crate) fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &str,
) -> impl FnOnce(SdkError<E, R>) -> StoreError + '_ {
    move |err| StoreError::Unavailable(format!("{operation}: {}", describe(&err)))
}
