//! `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`: where
//! the signing keys and the token endpoint are. Reads the issuer and algorithm; no secret, no store.
use keygate_core::http::discovery;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    keygate_core::telemetry::init_json_logs();
    let issuer = &discovery::issuer_from_env()?;
    run(service_fn(
        move |request: Request| async move { Ok::<_, Error>(discovery::document(issuer, &request)) },
    ))
    .await
}
