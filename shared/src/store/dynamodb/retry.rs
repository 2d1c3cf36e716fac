//! The retry rule of the writes that consume a unit (mint and refresh): the SDK's own retries are
//! off for them, and a write is sent again only after an error that proves it was not applied.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// A mint or refresh is sent this many times at most.
const WRITE_ATTEMPTS: u32 = 3;
const WRITE_BACKOFF: Duration = Duration::from_millis(25);

/// An error after which the write certainly did not happen: DynamoDB refused it for capacity or
/// a conflicting transaction, or the connection was refused before anything was sent. A timeout
/// proves nothing (the write may have been applied), so it is never retried.
pub(super) fn not_applied<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(context) => matches!(
            context.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TransactionConflictException"
            )
        ),
        SdkError::DispatchFailure(failure) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                failure.as_connector_error().map(|e| e as _);
            while let Some(err) = source {
                if err
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
                source = err.source();
            }
            false
        }
        _ => false,
    }
}

/// Sends a mint or refresh write, retrying only when `retry` proves the previous attempt was not
/// applied: a unit may be lost, but a token is never issued twice for one unit and a refresh is
/// never mistaken for its own replay.
pub(super) async fn send_once_applied<T, E, R, F, Fut>(
    mut send: F,
    retry: impl Fn(&SdkError<E, R>) -> bool,
) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(err) if attempt < WRITE_ATTEMPTS && retry(&err) => {
                tokio::time::sleep(WRITE_BACKOFF * attempt).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The per-request configuration that turns the SDK's own retries off.
pub(super) fn no_sdk_retries() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;

    type Failure = SdkError<ErrorMetadata, ()>;

    fn service_error(code: &str) -> Failure {
        SdkError::service_error(ErrorMetadata::builder().code(code).build(), ())
    }

    fn io_error(kind: std::io::ErrorKind) -> Failure {
        SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(kind))))
    }

    #[test]
    fn only_refusals_that_prove_nothing_was_written_are_retryable() {
        for code in
            ["ThrottlingException", "ProvisionedThroughputExceededException", "TransactionConflictException"]
        {
            assert!(not_applied(&service_error(code)), "{code}");
        }
        assert!(not_applied(&io_error(std::io::ErrorKind::ConnectionRefused)));
        let applied_or_unknown = [
            ("a failed condition", service_error("ConditionalCheckFailedException")),
            ("an internal error", service_error("InternalServerError")),
            ("a reset connection", io_error(std::io::ErrorKind::ConnectionReset)),
            ("a timeout", SdkError::timeout_error("attempt timed out")),
        ];
        for (what, err) in applied_or_unknown {
            assert!(!not_applied(&err), "{what} may have been applied");
        }
    }

    #[tokio::test]
    async fn a_write_is_sent_again_only_while_retry_allows_and_at_most_three_times() {
        let sent = Cell::new(0);
        let always_throttled = send_once_applied(
            || {
                sent.set(sent.get() + 1);
                async { Err::<(), _>(service_error("ThrottlingException")) }
            },
            not_applied,
        )
        .await;
        assert!(always_throttled.is_err());
        assert_eq!(sent.get(), 3);

        sent.set(0);
        let timed_out = send_once_applied(
            || {
                sent.set(sent.get() + 1);
                async { Err::<(), Failure>(SdkError::timeout_error("attempt timed out")) }
            },
            not_applied,
        )
        .await;
        assert!(timed_out.is_err());
        assert_eq!(sent.get(), 1, "a timeout is never retried");

        sent.set(0);
        let second_time_lucky =
            send_once_applied(
                || {
                    sent.set(sent.get() + 1);
                    let attempt = sent.get();
                    async move {
                        if attempt == 1 { Err(service_error("ThrottlingException")) } else { Ok(attempt) }
                    }
                },
                not_applied,
            )
            .await;
        assert_eq!(second_time_lucky.unwrap(), 2);
    }
}
