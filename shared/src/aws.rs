//! Where the AWS SDK gets its region and credentials. A Lambda's environment holds both: the
//! region (`AWS_REGION`) and its role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), which Lambda sets. Reading them there, rather than through the SDK's
//! default chain (profile files, SSO, STS web identity, the instance and container metadata
//! services), keeps those providers out of the function binaries and their lookups off the cold
//! start. `keygate serve`, the CLI and the tests run anywhere, so they use the default chain.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

/// The region variable Lambda sets.
const REGION: &str = "AWS_REGION";

/// The SDK configuration of a Lambda, from its environment alone: the region and credentials,
/// and the SDK's own endpoint settings (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`,
/// `AWS_ENDPOINT_URL`), which a deployment may set.
pub fn lambda_config() -> Result<SdkConfig, String> {
    lambda_config_from(|name| std::env::var(name).ok())
}

fn lambda_config_from(env: impl Fn(&str) -> Option<String>) -> Result<SdkConfig, String> {
    let region = env(REGION).ok_or_else(|| format!("{REGION} is not set (Lambda sets it)"))?;
    let flag = |name: &str| match env(name).map(|value| value.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(format!("{name} must be true or false")),
    };
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT")?)
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT")?);
    if let Some(endpoint) = env("AWS_ENDPOINT_URL").filter(|url| !url.is_empty()) {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

/// The SDK configuration anywhere else: the SDK's default chain, in us-east-1 when no region is
/// configured (a local emulator needs one, and ignores it).
pub async fn default_config() -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest()).region(region).load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambdas_sdk_settings_come_from_its_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        let config = lambda_config_from(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]))
        .unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!((config.use_fips(), config.use_dual_stack()), (Some(true), Some(false)));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert!(config.credentials_provider().is_some());

        assert_eq!(lambda_config_from(env(&[])).err().unwrap(), "AWS_REGION is not set (Lambda sets it)");
        let bad =
            lambda_config_from(env(&[("AWS_REGION", "eu-west-1"), ("AWS_USE_DUALSTACK_ENDPOINT", "yes")]));
        assert_eq!(bad.err().unwrap(), "AWS_USE_DUALSTACK_ENDPOINT must be true or false");
    }
}
