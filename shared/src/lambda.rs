//! What every function's `main` runs: telemetry set up at start, then the Lambda runtime, with
//! each invocation's metrics flushed to stdout afterwards in CloudWatch's embedded metric format
//! (with its request id, and `ColdStart` counted on the first).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Body, Error, Request, RequestExt, Response, service_fn};
use metrics_cloudwatch_embedded::Collector;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::telemetry;

/// The variable naming the metrics' namespace (the template gives each stack its own).
pub const METRICS_NAMESPACE: &str = "KEYGATE_METRICS_NAMESPACE";
/// Counted once per instance, on its first invocation.
pub const COLD_START: &str = "ColdStart";

pub struct Lambda {
    metrics: &'static Collector,
    cold: AtomicBool,
}

/// Starts a function: JSON logs, and the metrics recorder.
pub fn start() -> Lambda {
    telemetry::init_json_logs();
    let namespace = std::env::var(METRICS_NAMESPACE).unwrap_or_else(|_| "keygate".into());
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .init()
        .expect("the metrics recorder is installed once, at start");
    Lambda { metrics, cold: AtomicBool::new(true) }
}

impl Lambda {
    /// Serves an HTTP route: API Gateway's request in, the route's response out.
    pub async fn serve_http<F, Fut>(&self, handler: F) -> Result<(), Error>
    where
        F: Fn(Request) -> Fut,
        Fut: Future<Output = Response<Body>> + Send,
    {
        lambda_http::run(service_fn(|request: Request| {
            let request_id = request.lambda_context_ref().map(|context| context.request_id.clone());
            let answered = handler(request);
            async move {
                let response = answered.await;
                self.invoked(request_id);
                Ok::<_, Error>(response)
            }
        }))
        .await
    }

    /// Serves events of one type (an authorizer's requests).
    pub async fn serve<E, A, F, Fut>(&self, handler: F) -> Result<(), Error>
    where
        E: DeserializeOwned,
        A: Serialize,
        F: Fn(E) -> Fut,
        Fut: Future<Output = A>,
    {
        lambda_runtime::run(lambda_runtime::service_fn(|event: LambdaEvent<E>| async {
            let answer = handler(event.payload).await;
            self.invoked(Some(event.context.request_id));
            Ok::<_, Error>(answer)
        }))
        .await
    }

    /// After an invocation: its metrics out, as one document.
    fn invoked(&self, request_id: Option<String>) {
        if self.cold.swap(false, Ordering::Relaxed) {
            metrics::counter!(COLD_START).increment(1);
        }
        if let Some(request_id) = request_id {
            self.metrics.set_property("RequestId", request_id);
        }
        if let Err(err) = self.metrics.flush(std::io::stdout().lock()) {
            tracing::warn!(error = %err, "metrics could not be written");
        }
    }
}
