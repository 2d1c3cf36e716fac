//! JSON logs. Nothing logged anywhere in keygate carries a key value, secret or token: the types
//! that hold them print redacted, and handlers log statuses and codes, not requests.

use tracing_subscriber::EnvFilter;

pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests, or a host that set its own) keeps the first.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
