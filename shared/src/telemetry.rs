//! JSON logs, and in a Lambda metrics in CloudWatch's embedded metric format. Nothing logged anywhere in keygate carries a key value, secret or token: the types
//! that hold them print redacted, and handlers log statuses and codes, not requests.
//!
//! Below info, only keygate's own code may log, whatever `RUST_LOG` asks: an allow-list, not a
//! deny-list, because libraries log raw requests at debug and trace (the SDK's request signer
//! logs its canonical request, session token included), and a new dependency must not be able
//! to leak by default.
//!
//! `RUST_LOG` chooses the level when it is set. Otherwise a Lambda's application log level does
//! (`AWS_LAMBDA_LOG_LEVEL`, which Lambda sets from the function's `LoggingConfig`), so the level
//! chosen in the template is the one the code logs at; anywhere else the level is info.
//!
//! Metrics are counted through the `metrics` facade, wherever the event happens ([`count`]). A
//! Lambda installs the EMF recorder ([`crate::lambda`]), which prints one JSON document per
//! invocation to stdout, where CloudWatch Logs turns it into metrics; the local server and the
//! tests install none, and counting costs nothing there.

mod json_lines;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The crates whose debug and trace events may be logged.
const VERBOSE_TARGETS: &[&str] = &["keygate_core", "keygate"];

/// The application log level Lambda passes to the runtime: TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
const LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";

/// Whether an event or span may be logged at its level: info and above from anyone, anything
/// more verbose only from an allowed crate.
pub fn may_log(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO || is_allowed_target(metadata.target())
}

fn is_allowed_target(target: &str) -> bool {
    VERBOSE_TARGETS.iter().any(|allowed| {
        target.strip_prefix(allowed).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// What `RUST_LOG` asks for (`info`, `keygate_core=debug,warn`: a default level and levels per
/// target), else the Lambda application log level. `Targets` rather than `EnvFilter`, whose span
/// and field filters nobody here needs and whose regex engine would be half a megabyte of every
/// function; a `RUST_LOG` it cannot read is ignored, as `EnvFilter` ignored one it could not.
fn requested_levels(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    rust_log
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| lambda_level_directive(lambda_level).parse().expect("a level is a directive"))
}

/// The level directive for a Lambda application log level: `tracing` has no fatal, so FATAL is
/// error, and anything unknown (or no level at all) is info. Other crates never go below info
/// whatever the level ([`may_log`]).
fn lambda_level_directive(level: Option<&str>) -> &'static str {
    match level.map(|level| level.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}

/// What keygate counts, each a CloudWatch metric of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    TokensIssued,
    QuotaExhausted,
    RefreshReuseDetected,
    SignatureRefused,
    StoreErrors,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Self::TokensIssued,
        Self::QuotaExhausted,
        Self::RefreshReuseDetected,
        Self::SignatureRefused,
        Self::StoreErrors,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::TokensIssued => "TokensIssued",
            Self::QuotaExhausted => "QuotaExhausted",
            Self::RefreshReuseDetected => "RefreshReuseDetected",
            Self::SignatureRefused => "SignatureRefused",
            Self::StoreErrors => "StoreErrors",
        }
    }
}

pub fn count(metric: Metric) {
    metrics::counter!(metric.name()).increment(1);
}

pub fn init_json_logs() {
    let requested = requested_levels(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var(LAMBDA_LOG_LEVEL).ok().as_deref(),
    );
    let logs = fmt::layer()
        .fmt_fields(json_lines::JsonMembers)
        .event_format(json_lines::JsonLines)
        .with_filter(requested.and(filter_fn(may_log)));
    // A second initialisation (tests, or a host that set its own) keeps the first.
    let _ = tracing_subscriber::registry().with(logs).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_over_the_lambda_level_when_it_can_be_read() {
        use tracing::level_filters::LevelFilter;
        let levels = requested_levels(Some("keygate_core=debug,warn"), Some("ERROR"));
        assert_eq!(levels.default_level(), Some(LevelFilter::WARN));
        assert!(levels.would_enable("keygate_core::store", &Level::DEBUG));
        assert!(!levels.would_enable("hyper", &Level::INFO));
        let unreadable = requested_levels(Some("[span{field=1}]=debug"), Some("ERROR"));
        assert_eq!(unreadable.default_level(), Some(LevelFilter::ERROR));
        assert_eq!(requested_levels(None, None).default_level(), Some(LevelFilter::INFO));
    }

    #[test]
    fn only_keygate_logs_below_info() {
        for (target, allowed) in [
            ("keygate_core", true),
            ("keygate_core::store::dynamodb", true),
            ("keygate", true),
            ("keygate::serve", true),
            ("keygate_tests", false),
            ("aws_sigv4::http_request::sign", false),
            ("aws_smithy_runtime", false),
            ("hyper", false),
            ("lambda_http", false),
        ] {
            assert_eq!(is_allowed_target(target), allowed, "{target}");
        }
    }

    #[test]
    fn the_lambda_application_log_level_becomes_the_level_directive() {
        for (level, directive) in [
            (Some("TRACE"), "trace"),
            (Some("DEBUG"), "debug"),
            (Some("INFO"), "info"),
            (Some("WARN"), "warn"),
            (Some("ERROR"), "error"),
            (Some("FATAL"), "error"),
            (Some("debug"), "debug"),
            (Some(" Warn "), "warn"),
            (Some("VERBOSE"), "info"),
            (Some(""), "info"),
            (None, "info"),
        ] {
            assert_eq!(lambda_level_directive(level), directive, "{level:?}");
            assert!(directive.parse::<Targets>().is_ok(), "{directive}");
        }
    }
}
