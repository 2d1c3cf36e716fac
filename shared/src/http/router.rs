//! Routing for the local server, which serves every route from one process. In AWS, API Gateway
//! does this (see `template.yaml`) and each Lambda runs one handler; both call the same handlers.

use lambda_http::http::Method;
use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt, Response};

use super::{client, ncp, signed_path, spaceone, with_caller};
use crate::Keygate;
use crate::signature::SignatureError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Health,
    Regist,
    Detail,
    Token,
    Refresh,
    Jwks,
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
            Route::Health | Route::Regist | Route::Detail | Route::Token | Route::Refresh | Route::Jwks
        )
    }
}

const ROUTES: &[(&str, Method, Route)] = &[
    ("/health", Method::GET, Route::Health),
    ("/v1/key/regist", Method::POST, Route::Regist),
    ("/v1/key/detail", Method::GET, Route::Detail),
    ("/v1/auth/token", Method::GET, Route::Token),
    ("/v1/auth/refresh", Method::GET, Route::Refresh),
    ("/.well-known/jwks.json", Method::GET, Route::Jwks),
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

/// Which error envelope a path answers in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Client,
    SpaceOne,
    Ncp,
}

impl Surface {
    fn of(path: &str) -> Self {
        if path.starts_with("/identity/") {
            Surface::SpaceOne
        } else if path.starts_with("/api/v1/") {
            Surface::Ncp
        } else {
            Surface::Client
        }
    }

    fn error(self, status: u16, spaceone_code: &str, message: &str) -> Response<Body> {
        match self {
            Surface::Client if status == 404 => client::not_found(),
            Surface::Client if status == 405 => client::method_not_allowed(),
            Surface::Client => client::body_too_large(),
            Surface::SpaceOne => spaceone::error_body(status, spaceone_code, message),
            Surface::Ncp => ncp::error_body(status, message),
        }
    }
}

/// Serves one request: finds its route, verifies the signature of admin routes, runs the handler.
pub async fn dispatch(app: &Keygate, request: Request) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let surface = Surface::of(&path);
    let (route, parameters) = match find(request.method(), &path) {
        Ok(found) => found,
        Err(Miss::WrongMethod) => {
            return surface.error(405, "ERROR_METHOD_NOT_ALLOWED", "method not allowed");
        }
        Err(Miss::NoSuchPath) => return surface.error(404, "ERROR_NOT_FOUND", "no such route"),
    };
    let request = request.with_path_parameters(parameters);
    let request = if route.is_admin() {
        match app.credentials().verify(
            request.method().as_str(),
            &signed_path(&request),
            request.headers(),
            app.now(),
        ) {
            Ok(caller) => with_caller(request, &caller),
            Err(err) => return unauthenticated(surface, &err),
        }
    } else {
        request
    };
    match route {
        Route::Health => client::health(app, request).await,
        Route::Regist => client::regist(app, request).await,
        Route::Detail => client::detail(app, request).await,
        Route::Token => client::token(app, request).await,
        Route::Refresh => client::refresh(app, request).await,
        Route::Jwks => client::jwks(app, request).await,
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
    }
}

enum Miss {
    NoSuchPath,
    WrongMethod,
}

/// The route of a method and path, with the values of the path's `{parameters}`.
fn find(method: &Method, path: &str) -> Result<(Route, HashMap<String, String>), Miss> {
    let mut path_matched = false;
    for (pattern, route_method, route) in ROUTES {
        if let Some(parameters) = match_path(pattern, path) {
            if route_method == method {
                return Ok((*route, parameters));
            }
            path_matched = true;
        }
    }
    Err(if path_matched { Miss::WrongMethod } else { Miss::NoSuchPath })
}

fn match_path(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
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

fn unauthenticated(surface: Surface, err: &SignatureError) -> Response<Body> {
    tracing::info!(reason = %err, "admin request signature refused");
    surface.error(401, "ERROR_AUTHENTICATE_FAILURE", &err.to_string())
}

/// The answer to a body larger than the server reads, in the path's envelope.
pub fn body_too_large(path: &str) -> Response<Body> {
    Surface::of(path).error(400, "ERROR_INVALID_ARGUMENT", "body is too large")
}
