//! The HTTP surfaces. Handlers are thin adapters (extract, one call into [`Keygate`], map); each
//! surface maps [`Error`] to its envelope in exactly one function, routing failures included.
//!
//! [`Keygate`]: crate::Keygate

pub mod authorizer;
pub mod client_api;
pub mod discovery;
pub mod ncp;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod router;
pub mod spaceone;
pub mod token_authorizer;

use std::collections::HashMap;

use lambda_http::aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequestContext};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::limits::MAX_BODY_BYTES;
use crate::model::Caller;
use crate::replay::ReplayNonce;
use crate::signature::{presented_signature, presented_timestamp};

const DOMAIN_ID_CONTEXT: &str = "domain_id";
const ACCESS_KEY_CONTEXT: &str = "access_key";

/// Which error envelope a path answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Client,
    SpaceOne,
    Ncp,
}

impl Surface {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/identity/") {
            Surface::SpaceOne
        } else if path.starts_with("/api/v1/") {
            Surface::Ncp
        } else {
            Surface::Client
        }
    }

    /// The error in this surface's envelope: the surface's one mapping.
    pub fn error_response(self, err: &Error) -> Response<Body> {
        match self {
            Surface::Client => client_api::error_response(err),
            Surface::SpaceOne => spaceone::error_response(err),
            Surface::Ncp => ncp::error_response(err),
        }
    }
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("status and header are valid")
}

/// What an admin surface says when the store cannot take a write now.
pub(crate) const UNAVAILABLE: &str = "service unavailable: sign the request again and retry";
/// Seconds a client is asked to wait before retrying an answer that was busy or unavailable.
const RETRY_AFTER_SECONDS: &str = "1";

pub(crate) fn with_retry_after(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert("retry-after", RETRY_AFTER_SECONDS.parse().expect("valid header value"));
    response
}

pub(crate) fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Parses a JSON body explicitly (a missing Content-Type must not turn a body into "no body").
/// The message names what is wrong, never a value.
pub(crate) fn parse_json<T: DeserializeOwned>(request: &Request) -> Result<T, Error> {
    let bytes = body_bytes(request);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::InvalidArgument(format!("body is larger than {MAX_BODY_BYTES} bytes")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::InvalidArgument("body is empty".into()));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        let what = match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => "body is not valid JSON".to_owned(),
            Category::Data => data_error_message(&err.to_string()),
        };
        Error::InvalidArgument(what)
    })
}

/// The same for a body that may be left out: a blank body, or JSON `null`, is the default.
pub(crate) fn parse_optional_json<T: DeserializeOwned + Default>(request: &Request) -> Result<T, Error> {
    if body_bytes(request).trim_ascii().is_empty() {
        return Ok(T::default());
    }
    Ok(parse_json::<Option<T>>(request)?.unwrap_or_default())
}

/// serde's data errors quote offending values; keep only the part that names the field.
fn data_error_message(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("missing field {field}");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = rest.split(',').next().unwrap_or(rest);
        return format!("unknown field {field}");
    }
    "a field has the wrong type or value".to_owned()
}

pub(crate) fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).map(|v| v.to_str().unwrap_or_default())
}

/// Refuses query parameters other than `allowed`.
pub(crate) fn only_query_parameters(request: &Request, allowed: &[&str]) -> Result<(), Error> {
    let parameters = request.query_string_parameters();
    match parameters.iter().map(|(k, _)| k).find(|k| !allowed.contains(k)) {
        Some(unknown) => Err(Error::InvalidArgument(format!("unknown parameter {unknown}"))),
        None => Ok(()),
    }
}

/// The path and query the client signed: the path as it arrived at the gateway, including any
/// stage prefix.
pub fn signed_path(request: &Request) -> String {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    path_and_query(path, request.uri().query())
}

/// `path?query`, or the path alone when there is no query: what signature v2 signs.
pub(crate) fn path_and_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

/// The caller the authorizer verified (in AWS, the REQUEST authorizer; locally, the router), or
/// the error of a request that reached an admin handler without one.
pub(crate) fn authorized_caller(request: &Request) -> Result<Caller, Error> {
    caller(request).ok_or_else(|| Error::Unauthenticated("request is not signed".into()))
}

/// The verified caller of a state-changing admin route and the request's replay nonce: its
/// signature, which is accepted once whatever the body.
pub(crate) fn authorized_write(request: &Request) -> Result<(Caller, ReplayNonce), Error> {
    let caller = authorized_caller(request)?;
    let unsigned = || Error::Unauthenticated("request is not signed".into());
    let signature = presented_signature(request.headers()).ok_or_else(unsigned)?;
    let signed_at = presented_timestamp(request.headers()).ok_or_else(unsigned)?;
    Ok((caller, ReplayNonce::new(signature, signed_at)))
}

/// The key id in the path of a key-scoped admin route.
pub(crate) fn path_key_id(request: &Request) -> Result<String, Error> {
    request
        .path_parameters_ref()
        .and_then(|p| p.first("api_key_id"))
        .map(str::to_owned)
        .ok_or_else(|| Error::MissingParameter("api_key_id".into()))
}

/// The admin identity the authorizer established: API Gateway puts a Lambda authorizer's
/// context under `requestContext.authorizer.lambda`.
pub fn caller(request: &Request) -> Option<Caller> {
    let fields = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => &context.authorizer.as_ref()?.fields,
        RequestContext::ApiGatewayV1(context) => &context.authorizer.fields,
        _ => return None,
    };
    let text = |name: &str| fields.get(name)?.as_str().filter(|v| !v.is_empty()).map(str::to_owned);
    Some(Caller { domain_id: text(DOMAIN_ID_CONTEXT)?, access_key: text(ACCESS_KEY_CONTEXT)? })
}

/// The context an authorizer returns for a verified caller.
pub fn authorizer_context(caller: &Caller) -> HashMap<String, Value> {
    HashMap::from([
        (DOMAIN_ID_CONTEXT.to_owned(), Value::from(caller.domain_id.clone())),
        (ACCESS_KEY_CONTEXT.to_owned(), Value::from(caller.access_key.clone())),
    ])
}

/// Attaches a verified caller the way API Gateway would, for the local server.
pub(crate) fn with_caller(request: Request, caller: &Caller) -> Request {
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.fields = authorizer_context(caller);
    let mut context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.clone(),
        _ => ApiGatewayV2httpRequestContext::default(),
    };
    context.authorizer = Some(authorizer);
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        name: Option<String>,
    }

    fn with_body(body: &str) -> Request {
        let mut request = Request::new(Body::Text(body.to_owned()));
        *request.method_mut() = lambda_http::http::Method::PUT;
        request
    }

    #[test]
    fn an_optional_body_left_blank_or_null_is_the_default_and_anything_else_is_parsed() {
        for blank in ["", "  \n", "null", " null "] {
            assert_eq!(
                parse_optional_json::<Optional>(&with_body(blank)).unwrap(),
                Optional::default(),
                "{blank:?}"
            );
        }
        let named = parse_optional_json::<Optional>(&with_body(r#"{"name":"a"}"#)).unwrap();
        assert_eq!(named.name.as_deref(), Some("a"));
        for bad in ["[]", "1", r#"{"other":1}"#, "{"] {
            assert!(
                matches!(parse_optional_json::<Optional>(&with_body(bad)), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}

/// The key id in the path of a key-scoped route (both admin surfaces).
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyIdPath {
    /// `api-key-` and 12 lowercase hex digits.
    #[param(pattern = "^api-key-[0-9a-f]{12}$")]
    api_key_id: String,
}
