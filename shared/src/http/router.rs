//! Routing for the local server, which serves every route from one process. In AWS, API Gateway
//! does this (see `template.yaml`) and each Lambda runs one handler; both call the same handlers.
//! A request that no handler takes (no route, wrong method, bad signature, oversized body) is an
//! [`Error`] answered by its path's surface.

use std::collections::HashMap;

use bytes::Bytes;
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};

use super::{Surface, authorized_write, client_api, discovery, ncp, signed_path, spaceone, with_caller};
use crate::Keygate;
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Health,
    Regist,
    Detail,
    Token,
    Refresh,
    Jwks,
    Discovery,
    CreateApiKey,
    EnableApiKey,
    DisableApiKey,
    DeleteApiKey,
    GetApiKey,
    ListApiKeys,
    SearchApiKeys,
    StatApiKeys,
    NcpCreate,
    NcpGet,
    NcpList,
    NcpUpdate,
    NcpRegenerate,
    NcpDelete,
}

impl Route {
    /// Admin routes run the signature verifier first, as the authorizer does in AWS. Every route
    /// is one but the public few, so a new route is guarded unless it says otherwise.
    fn is_admin(self) -> bool {
        !matches!(
            self,
            Route::Health
                | Route::Regist
                | Route::Detail
                | Route::Token
                | Route::Refresh
                | Route::Jwks
                | Route::Discovery
        )
    }

    /// The admin routes that change state: a signature is accepted on them once. (Search and
    /// stat are POSTs that read.)
    fn changes_state(self) -> bool {
        matches!(
            self,
            Route::CreateApiKey
                | Route::EnableApiKey
                | Route::DisableApiKey
                | Route::DeleteApiKey
                | Route::NcpCreate
                | Route::NcpUpdate
                | Route::NcpRegenerate
                | Route::NcpDelete
        )
    }

    async fn handle(self, app: &Keygate, request: Request) -> Response<AnswerBody> {
        let built = match self {
            Route::Jwks => {
                return match app.public_keys() {
                    Ok(keys) => client_api::jwks_document(keys).map(AnswerBody::Shared),
                    Err(err) => Surface::Client.error_response(&err).map(AnswerBody::Built),
                };
            }
            Route::Health => client_api::health(),
            Route::Regist => client_api::regist(app, request).await,
            Route::Detail => client_api::detail(app, request).await,
            Route::Token => client_api::token(app, request).await,
            Route::Refresh => client_api::refresh(app, request).await,
            Route::Discovery => match app.issuer() {
                Ok(issuer) => discovery::document(&issuer, &request),
                Err(err) => Surface::Client.error_response(&err),
            },
            Route::CreateApiKey => spaceone::create_api_key(app, request).await,
            Route::EnableApiKey => spaceone::enable_api_key(app, request).await,
            Route::DisableApiKey => spaceone::disable_api_key(app, request).await,
            Route::DeleteApiKey => spaceone::delete_api_key(app, request).await,
            Route::GetApiKey => spaceone::get_api_key(app, request).await,
            Route::ListApiKeys => spaceone::list_api_keys(app, request).await,
            Route::SearchApiKeys => spaceone::search_api_keys(app, request).await,
            Route::StatApiKeys => spaceone::stat_api_keys(app, request).await,
            Route::NcpCreate => ncp::create_api_key(app, request).await,
            Route::NcpGet => ncp::get_api_key(app, request).await,
            Route::NcpList => ncp::list_api_keys(app, request).await,
            Route::NcpUpdate => ncp::update_api_key(app, request).await,
            Route::NcpRegenerate => ncp::regenerate_api_key(app, request).await,
            Route::NcpDelete => ncp::delete_api_key(app, request).await,
        };
        built.map(AnswerBody::Built)
    }
}

/// The body of an answer: built for its request, or a document every answer shares (the JWKS,
/// serialised once at start), which the local server sends as it is, without a copy. A Lambda's
/// runtime copies either kind into its invocation response.
#[derive(Debug)]
pub enum AnswerBody {
    Built(Body),
    Shared(Bytes),
}

impl AnswerBody {
    /// The body as `lambda_http` holds it (a shared document is copied).
    pub fn into_body(self) -> Body {
        match self {
            AnswerBody::Built(body) => body,
            AnswerBody::Shared(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Body::Text(text),
                Err(binary) => Body::Binary(binary.into_bytes()),
            },
        }
    }
}

const ROUTES: &[(&str, Method, Route)] = &[
    ("/health", Method::GET, Route::Health),
    ("/v1/key/regist", Method::POST, Route::Regist),
    ("/v1/key/detail", Method::GET, Route::Detail),
    ("/v1/auth/token", Method::GET, Route::Token),
    ("/v1/auth/refresh", Method::GET, Route::Refresh),
    ("/.well-known/jwks.json", Method::GET, Route::Jwks),
    ("/.well-known/oauth-authorization-server", Method::GET, Route::Discovery),
    ("/.well-known/openid-configuration", Method::GET, Route::Discovery),
    ("/identity/v1/api-keys", Method::POST, Route::CreateApiKey),
    ("/identity/v1/api-keys", Method::GET, Route::ListApiKeys),
    ("/identity/v1/api-keys/search", Method::POST, Route::SearchApiKeys),
    ("/identity/v1/api-keys/stat", Method::POST, Route::StatApiKeys),
    ("/api/v1/api-keys", Method::POST, Route::NcpCreate),
    ("/api/v1/api-keys", Method::GET, Route::NcpList),
    ("/api/v1/api-keys/{api_key_id}", Method::GET, Route::NcpGet),
    ("/api/v1/api-keys/{api_key_id}", Method::PUT, Route::NcpUpdate),
    ("/api/v1/api-keys/{api_key_id}", Method::PATCH, Route::NcpRegenerate),
    ("/api/v1/api-keys/{api_key_id}", Method::DELETE, Route::NcpDelete),
    ("/identity/v1/api-key/{api_key_id}/enable", Method::PUT, Route::EnableApiKey),
    ("/identity/v1/api-key/{api_key_id}/disable", Method::PUT, Route::DisableApiKey),
    ("/identity/v1/api-key/{api_key_id}", Method::DELETE, Route::DeleteApiKey),
    ("/identity/v1/api-key/{api_key_id}", Method::GET, Route::GetApiKey),
];

/// Every route the local server serves, as method and path pattern (`{name}` for a parameter):
/// `template.yaml` declares the same ones (a test holds them equal).
pub fn routes() -> impl Iterator<Item = (&'static Method, &'static str)> {
    ROUTES.iter().map(|(path, method, _)| (method, *path))
}

/// Serves one request: finds its route, verifies the signature of admin routes, runs the handler.
/// What the local server calls: a shared document's answer holds it without a copy.
pub async fn serve(app: &Keygate, request: Request) -> Response<AnswerBody> {
    let surface = Surface::of(request.uri().path());
    match admit(app, request) {
        Ok((route, request)) => route.handle(app, request).await,
        Err(err) => surface.error_response(&err).map(AnswerBody::Built),
    }
}

/// [`serve`], with the answer's body as `lambda_http` holds it.
pub async fn dispatch(app: &Keygate, request: Request) -> Response<Body> {
    serve(app, request).await.map(AnswerBody::into_body)
}

/// What no route takes, answered as the local server answers it: 405 for a known path with
/// another method, else 404, in the path's envelope. API Gateway's `$default` route sends its
/// requests here, so a deployment and the local server agree.
pub fn unmatched(request: &Request) -> Response<Body> {
    let path = request.uri().path();
    let err = match find(request.method(), path) {
        Err(err) => err,
        // Only a route API Gateway lacks lands here with a path of ours: nothing serves it.
        Ok(_) => Error::NoSuchRoute,
    };
    Surface::of(path).error_response(&err)
}

/// The answer to a request whose body the server could not read (`BodyTooLarge`,
/// `BodyTooSlow`; `request` comes without it) in the path's envelope. A verified state-changing
/// admin request spends its signature here, as its handler would have on any other refusal.
pub async fn unread(app: &Keygate, request: Request, err: Error) -> Response<Body> {
    let surface = Surface::of(request.uri().path());
    let refusal = match admit(app, request) {
        Ok((route, request)) if route.changes_state() => match authorized_write(&request) {
            Ok((_, nonce)) => app.spend_signature(&nonce, err).await,
            Err(_) => err,
        },
        _ => err,
    };
    surface.error_response(&refusal)
}

/// The route of a request, with the request carrying its path parameters and, on an admin route,
/// the caller its signature proves.
fn admit(app: &Keygate, request: Request) -> Result<(Route, Request), Error> {
    let (route, parameters) = find(request.method(), request.uri().path())?;
    // API Gateway gives a route without parameters none (no map, not an empty one).
    let request = match parameters.is_empty() {
        true => request,
        false => request.with_path_parameters(parameters),
    };
    if !route.is_admin() {
        return Ok((route, request));
    }
    let verified = app.credentials().verify(
        request.method().as_str(),
        &signed_path(&request),
        request.headers(),
        app.now(),
    );
    // A refusal is logged, with its reason, by the surface's error mapping.
    Ok((route, with_caller(request, &verified?)))
}

/// The route of a method and path, with the values of the path's `{parameters}`.
fn find(method: &Method, path: &str) -> Result<(Route, HashMap<String, String>), Error> {
    let mut path_matched = false;
    for (pattern, route_method, route) in ROUTES {
        if let Some(parameters) = match_path(pattern, path) {
            if route_method == method {
                return Ok((*route, parameters));
            }
            path_matched = true;
        }
    }
    Err(if path_matched { Error::MethodNotAllowed } else { Error::NoSuchRoute })
}

fn match_path(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    // What comes before the first parameter is compared as it is, which settles most patterns.
    let literal = pattern.find('{').map_or(pattern, |at| &pattern[..at]);
    if literal.len() == pattern.len() {
        return (pattern == path).then(HashMap::new);
    }
    if !path.starts_with(literal) {
        return None;
    }
    let mut parameters = HashMap::new();
    let mut segments = path.split('/');
    for expected in pattern.split('/') {
        let segment = segments.next()?;
        match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !segment.is_empty() => {
                parameters.insert(name.to_owned(), segment.to_owned());
            }
            Some(_) => return None,
            None if expected == segment => {}
            None => return None,
        }
    }
    segments.next().is_none().then_some(parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_route_and_parameters() {
        let (route, parameters) =
            find(&Method::PUT, "/identity/v1/api-key/api-key-0123456789ab/enable").unwrap();
        assert_eq!(route, Route::EnableApiKey);
        assert_eq!(parameters["api_key_id"], "api-key-0123456789ab");
        assert_eq!(find(&Method::GET, "/v1/auth/token").unwrap().0, Route::Token);
    }

    #[test]
    fn a_known_path_with_another_method_is_not_allowed_and_anything_else_is_no_route() {
        assert!(matches!(find(&Method::POST, "/v1/auth/token"), Err(Error::MethodNotAllowed)));
        assert!(matches!(find(&Method::GET, "/v1/auth/tokens"), Err(Error::NoSuchRoute)));
        assert!(
            matches!(find(&Method::GET, "/api/v1/api-keys/"), Err(Error::NoSuchRoute)),
            "empty parameter"
        );
        assert!(
            matches!(find(&Method::GET, "/api/v1/api-keys/a/b"), Err(Error::NoSuchRoute)),
            "extra segment"
        );
    }

    #[test]
    fn only_the_public_routes_skip_the_signature() {
        let public: Vec<Route> = ROUTES.iter().map(|(_, _, r)| *r).filter(|r| !r.is_admin()).collect();
        assert_eq!(
            public,
            [
                Route::Health,
                Route::Regist,
                Route::Detail,
                Route::Token,
                Route::Refresh,
                Route::Jwks,
                Route::Discovery,
                Route::Discovery
            ]
        );
        for (path, _, route) in ROUTES {
            assert_eq!(route.is_admin(), Surface::of(path) != Surface::Client, "{path}");
        }
    }
}
