//! The OpenAPI 3.1 document of every route, made from the handlers' `#[utoipa::path]`
//! annotations and the types they send, so it describes what the code does. The local server
//! serves it at `GET /openapi.json`; `openapi.json` at the repository root is a copy that a test
//! keeps equal to it (`keygate openapi > openapi.json` writes it).

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi as _};

use super::{client_api, discovery, ncp, spaceone};
use crate::signature::{ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "keygate",
        description = "API keys and short-lived access tokens. The client API (`/v1/...`, \
            `/.well-known/...`, `/health`), the SpaceONE-compatible admin API (`/identity/v1/...`) and \
            the NCP-compatible API-key resource (`/api/v1/api-keys...`). Every admin request is signed \
            with NCP signature v2: `x-ncp-apigw-signature-v2` = base64(HMAC-SHA256(secret key, \
            METHOD + \" \" + path?query + \"\\n\" + timestamp + \"\\n\" + access key)); a \
            state-changing request is accepted once per signature.",
    ),
    paths(
        client_api::health,
        client_api::regist,
        client_api::detail,
        client_api::token,
        client_api::refresh,
        client_api::jwks,
        discovery::document,
        discovery::authorization_server_metadata,
        spaceone::create_api_key,
        spaceone::enable_api_key,
        spaceone::disable_api_key,
        spaceone::delete_api_key,
        spaceone::get_api_key,
        spaceone::list_api_keys,
        spaceone::search_api_keys,
        spaceone::stat_api_keys,
        ncp::create_api_key,
        ncp::get_api_key,
        ncp::list_api_keys,
        ncp::update_api_key,
        ncp::regenerate_api_key,
        ncp::delete_api_key,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Client API", description = "What a customer calls with its key or token (seed 000)"),
        (name = "Discovery", description = "Where verifiers find the issuer and its keys"),
        (name = "SpaceONE admin API", description = "identity `APIKey` service (seed 001), signed requests"),
        (name = "NCP admin API", description = "NAVER Cloud API Gateway's API-key resource (seed 002), signed requests"),
    ),
)]
struct KeygateApi;

/// The document.
pub fn document() -> OpenApi {
    KeygateApi::openapi()
}

/// The document as the local server sends it and `openapi.json` holds it: pretty JSON and a
/// final newline.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().expect("the document serialises");
    text.push('\n');
    text
}

/// The client API's key and token, and the three headers of a signed admin request (all three
/// together: one security requirement).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, description)))
        };
        components.add_security_scheme(
            "api_key",
            header(client_api::API_KEY_HEADER, "The API key (`kg_...`) an operator issued"),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from `/v1/auth/token` or `/v1/auth/refresh`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ncp_timestamp",
            header(TIMESTAMP_HEADER, "Epoch milliseconds, within 5 minutes of the server's clock"),
        );
        components.add_security_scheme("ncp_access_key", header(ACCESS_KEY_HEADER, "The admin access key"));
        components.add_security_scheme(
            "ncp_signature",
            header(SIGNATURE_HEADER, "NCP signature v2 of the method, path?query, timestamp and access key"),
        );
    }
}
