//! JSON logs. Nothing logged anywhere in keygate carries a key value, secret or token: the types
//! that hold them print redacted, and handlers log statuses and codes, not requests.

use tracing_subscriber::EnvFilter;

pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever RUST_LOG asks, libraries that log raw events or requests (headers, bodies, keys)
    // below info stay at info.
    let filter = [
        "lambda_runtime",
        "lambda_http",
        "aws_smithy_runtime",
        "aws_sdk_dynamodb",
        "hyper",
        "hyper_util",
        "reqwest",
    ]
    .iter()
    .fold(filter, |filter, target| {
        filter.add_directive(format!("{target}=info").parse().expect("valid directive"))
    });
    // A second initialisation (tests, or a host that set its own) keeps the first.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
