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
use crate::tokens::{Issuer, ServedAt};

/// The discovery function's configuration: the issuer and algorithm, no secret. In AWS the
/// endpoints are at the issuer when it is a URL, else at the domain API Gateway names.
pub fn issuer_from_env() -> Result<Issuer, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(Issuer {
        issuer: config::issuer(env),
        algorithm: config::algorithm(env)?,
        served_at: ServedAt::Unknown,
    })
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
/// URL, else off the URL the request came to as the operator's side knows it: in AWS the domain
/// API Gateway names in the request context, locally the listening address, never a header the
/// client chose (see [`ServedAt`] for a trusted proxy's).
#[cfg_attr(feature = "openapi", utoipa::path(
    get, operation_id = "openid_configuration", path = "/.well-known/openid-configuration", tag = "Discovery",
    responses(
        (status = 200, description = "The discovery document", body = DiscoveryDocument),
        (status = 400, description = "Nothing to name the endpoints after", body = client_api::ClientError),
        (status = 405, description = "Another method on this path", body = client_api::ClientError),
        (status = 500, description = "Configuration failure", body = client_api::ClientError),
    ),
))]
pub fn document(issuer: &Issuer, request: &Request) -> Response<Body> {
    let Some(base) = base_url(issuer, request) else {
        return client_api::error_response(&crate::error::Error::MissingParameter("host".into()));
    };
    let algorithm = issuer.algorithm.name();
    let document = DiscoveryDocument {
        issuer: issuer.issuer.clone(),
        jwks_uri: format!("{}/.well-known/jwks.json", base.url),
        token_endpoint: format!("{}/v1/auth/token", base.url),
        response_types_supported: ["token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: [algorithm],
        token_endpoint_auth_methods_supported: ["none"],
        access_token_signing_alg_values_supported: [algorithm],
    };
    let mut response = json_response(200, &serde_json::to_value(document).expect("texts serialise"));
    // A shared cache keys a document on its URL, not on the headers it was built from: one built
    // from them is never stored, or a client's headers would name the endpoints for everyone.
    let cache_control = match base.from_headers {
        false => "public, max-age=300",
        true => "no-store",
    };
    response.headers_mut().insert("cache-control", cache_control.parse().expect("valid"));
    response
}

/// Where the endpoints hang, and whether request headers said so.
struct BaseUrl {
    url: String,
    from_headers: bool,
}

/// `None` when nothing names the endpoints: the issuer is not a URL, API Gateway names no domain,
/// and the server neither knows its address nor trusts a proxy's headers (or they are missing).
fn base_url(issuer: &Issuer, request: &Request) -> Option<BaseUrl> {
    let configured = |url: String| Some(BaseUrl { url, from_headers: false });
    if issuer.issuer.starts_with("https://") || issuer.issuer.starts_with("http://") {
        return configured(issuer.issuer.trim_end_matches('/').to_owned());
    }
    if let Some(domain) = api_domain(request) {
        return configured(format!("https://{domain}"));
    }
    match issuer.served_at {
        ServedAt::Unknown => None,
        ServedAt::Listening(address) => configured(format!("http://{address}")),
        ServedAt::ProxyHeaders => {
            let host = header(request, "host")?;
            let scheme = match header(request, "x-forwarded-proto") {
                Some("https") => "https",
                _ => "http",
            };
            Some(BaseUrl { url: format!("{scheme}://{host}"), from_headers: true })
        }
    }
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
        (status = 400, description = "Nothing to name the endpoints after", body = client_api::ClientError),
        (status = 405, description = "Another method on this path", body = client_api::ClientError),
        (status = 500, description = "Configuration failure", body = client_api::ClientError),
    ),
)]
#[allow(dead_code)]
pub(crate) fn authorization_server_metadata() {}
