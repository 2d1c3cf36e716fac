//! Where verifiers find what they need: OAuth 2.0 Authorization Server Metadata (RFC 8414) at
//! `/.well-known/oauth-authorization-server` and the OpenID Connect discovery document at
//! `/.well-known/openid-configuration`, with the issuer, the JWKS, the token endpoint and the
//! signing algorithm. API Gateway's built-in JWT authorizer reads the second at
//! `{issuer}/.well-known/openid-configuration`, so for it the issuer must be the API's URL.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::{client_api, header, json_response};
use crate::config::{self, ConfigError};
use crate::tokens::Issuer;

/// The discovery function's configuration: the issuer and algorithm, no secret.
pub fn issuer_from_env() -> Result<Issuer, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(Issuer { issuer: config::issuer(env), algorithm: config::algorithm(env)? })
}

/// The discovery document: the members both RFC 8414 and OpenID Connect Discovery define for
/// a token endpoint and its keys (sent in name order, as a JSON value keeps them).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveryDocument {
    /// `KEYGATE_ISSUER`: the tokens' `iss`.
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    /// `["token"]`
    response_types_supported: [&'static str; 1],
    /// `["public"]`
    subject_types_supported: [&'static str; 1],
    /// The one signing algorithm: `EdDSA`, `ES256` or `RS256`.
    id_token_signing_alg_values_supported: [&'static str; 1],
    /// `["none"]`: the token endpoint takes the key in `x-api-key`.
    token_endpoint_auth_methods_supported: [&'static str; 1],
    access_token_signing_alg_values_supported: [&'static str; 1],
}

/// OpenID Connect discovery, and (the same document) RFC 8414's authorization server metadata at
/// `GET /.well-known/oauth-authorization-server`. The endpoints hang off the issuer when it is a
/// URL, else off the URL the request came to: in AWS the domain API Gateway names in the request
/// context (never the client's `Host` header), and locally the `Host` the server was reached at.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "openid_configuration", path = "/.well-known/openid-configuration", tag = "Discovery",
    responses(
        (status = 200, description = "The discovery document", body = DiscoveryDocument),
        (status = 400, description = "No `Host` to name the endpoints after", body = client_api::ClientError),
        (status = 405, description = "Another method on this path", body = client_api::ClientError),
        (status = 500, description = "Configuration failure", body = client_api::ClientError),
    ),
))]
pub fn document(issuer: &Issuer, request: &Request) -> Response<Body> {
    let base = match issuer.issuer.starts_with("https://") || issuer.issuer.starts_with("http://") {
        true => issuer.issuer.trim_end_matches('/').to_owned(),
        false => match (api_domain(request), header(request, "host")) {
            (Some(domain), _) => format!("https://{domain}"),
            (None, Some(host)) => {
                format!("{}://{host}", header(request, "x-forwarded-proto").unwrap_or("http"))
            }
            (None, None) => {
                return client_api::error_response(&crate::error::Error::MissingParameter("host".into()));
            }
        },
    };
    let algorithm = issuer.algorithm.name();
    let document = DiscoveryDocument {
        issuer: issuer.issuer.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/v1/auth/token"),
        response_types_supported: ["token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: [algorithm],
        token_endpoint_auth_methods_supported: ["none"],
        access_token_signing_alg_values_supported: [algorithm],
    };
    let mut response = json_response(200, &serde_json::to_value(document).expect("texts serialise"));
    response.headers_mut().insert("cache-control", "public, max-age=300".parse().expect("valid"));
    response
}

/// The domain API Gateway received the request at.
fn api_domain(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.domain_name.as_deref(),
        _ => None,
    }
    .filter(|domain| !domain.is_empty())
}

/// [`document`] at RFC 8414's path (one handler serves both; this names the second route).
#[cfg(feature = "openapi")]
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "Discovery",
    responses(
        (status = 200, description = "The authorization server metadata", body = DiscoveryDocument),
        (status = 400, description = "No `Host` to name the endpoints after", body = client_api::ClientError),
        (status = 405, description = "Another method on this path", body = client_api::ClientError),
        (status = 500, description = "Configuration failure", body = client_api::ClientError),
    ),
)]
#[allow(dead_code)]
pub(crate) fn authorization_server_metadata() {}
