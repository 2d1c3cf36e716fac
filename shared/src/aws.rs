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

/// The SDK configuration of a Lambda, from its environment alone.
pub fn lambda_config() -> Result<SdkConfig, String> {
    let region = std::env::var(REGION).map_err(|_| format!("{REGION} is not set (Lambda sets it)"))?;
    Ok(SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .build())
}

/// The SDK configuration anywhere else: the SDK's default chain, in us-east-1 when no region is
/// configured (a local emulator needs one, and ignores it).
pub async fn default_config() -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest()).region(region).load().await
}
