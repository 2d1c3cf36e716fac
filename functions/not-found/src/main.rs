//! API Gateway's `$default` route: whatever no route takes gets the local server's answer, 404 or
//! 405 in its path's envelope. Reads no configuration and no store.
use keygate_core::http::router;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    lambda.serve_http(|request| async move { router::unmatched(&request) }).await
}
