//! `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`: where
//! the signing keys and the token endpoint are. Reads the issuer and algorithm; no secret, no store.
use keygate_core::http::discovery;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let lambda = keygate_core::lambda::start();
    let issuer = &discovery::issuer_from_env()?;
    lambda.serve_http(|request| async move { discovery::document(issuer, &request) }).await
}
