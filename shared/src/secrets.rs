//! Secrets a Lambda reads once, at start, from AWS Secrets Manager. Its environment names each
//! secret by ARN (`KEYGATE_PEPPER_SECRET_ARN` for `KEYGATE_PEPPER`, ...), never by value: whoever
//! can read a function's configuration reads no secret, and a new value needs new instances, not
//! a redeploy. A setting given by value instead (`sam local invoke`, a test) is used as it is.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::ConfigError;

/// The variable that names a setting's secret: `KEYGATE_PEPPER` → `KEYGATE_PEPPER_SECRET_ARN`.
pub fn arn_variable(setting: &str) -> String {
    format!("{setting}_SECRET_ARN")
}

/// The SDK's variable for another Secrets Manager endpoint (an emulator's).
const ENDPOINT: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";

/// A lookup over the environment in which each of `settings` whose ARN variable is set reads as
/// its secret. Builds a Secrets Manager client (see [`crate::aws`]) only if some secret is to be
/// read.
pub async fn lookup_from_env(
    settings: &[&str],
) -> Result<impl Fn(&str) -> Option<String> + use<>, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let wanted: Vec<(&str, String)> =
        settings.iter().filter_map(|setting| Some((*setting, env(&arn_variable(setting))?))).collect();
    let fetched = match wanted.is_empty() {
        true => HashMap::new(),
        false => {
            let aws = crate::aws::lambda_config().map_err(ConfigError::new)?;
            let mut config = aws_sdk_secretsmanager::config::Builder::from(&aws);
            if let Some(endpoint) = env(ENDPOINT) {
                config = config.endpoint_url(endpoint);
            }
            read(&Client::from_conf(config.build()), &wanted).await?
        }
    };
    Ok(move |name: &str| fetched.get(name).cloned().or_else(|| env(name)))
}

/// Reads each setting's secret, its current version. (A signing key rotated out is not read: its
/// public half stays published through `KEYGATE_PUBLIC_KEYS`, which is all a token needs.)
pub async fn read(
    client: &Client,
    wanted: &[(&str, String)],
) -> Result<HashMap<String, String>, ConfigError> {
    let mut values = HashMap::new();
    for (setting, arn) in wanted {
        values.insert((*setting).to_owned(), current_value(client, setting, arn).await?);
    }
    Ok(values)
}

async fn current_value(client: &Client, setting: &str, arn: &str) -> Result<String, ConfigError> {
    match client.get_secret_value().secret_id(arn).send().await {
        Ok(output) => match output.secret_string() {
            Some(value) => Ok(value.to_owned()),
            None => Err(ConfigError::new(format!("{setting}: the secret {arn} holds no text"))),
        },
        // The SDK's error names the call and the cause, never the value.
        Err(err) => Err(ConfigError::new(format!(
            "{setting}: cannot read the secret {arn}: {}",
            DisplayErrorContext(&err)
        ))),
    }
}
