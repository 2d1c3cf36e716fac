//! API Gateway's `$default` route: whatever no route takes gets the local server's answer, 404 or
//! 405 in its path's envelope. Reads no configuration and no store.
use keygate_core::http::router;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    run(service_fn(|request: Request| async move { Ok::<_, Error>(router::unmatched(&request)) })).await
}
