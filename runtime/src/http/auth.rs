//! Access control: the API token (`http.token` / `KFN_HTTP_TOKEN`).
//!
//! - Routes that change state (publishing a record) need
//!   `Authorization: Bearer <token>` whenever a token is set.
//! - With `http.auth: all`, every other route needs it too, except the orchestrator
//!   probes (`/healthz`, `/readyz`), which must answer without credentials, and the
//!   dashboard's own files (`/`, `/static/*`: code, no data). Reads may
//!   then also present it as the `kfn-token` cookie: an `EventSource` cannot send
//!   headers, and the dashboard sets that cookie from the token it was given (see
//!   `static/js/token.js`). Writes never accept the cookie, so a page on another site
//!   cannot make a browser publish with it (no CSRF).
//!
//! Comparison is constant-time ([`HttpToken::matches`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{HttpAuth, HttpToken};

/// The cookie a browser may present the token in, for reads under `auth: all`.
pub const COOKIE: &str = "kfn-token";

/// Who may do what.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `None`: no token configured (only allowed on a loopback address), all open.
    pub token: Option<HttpToken>,
    pub auth: HttpAuth,
}

impl Access {
    /// Whether `method path` with these headers may go ahead.
    pub fn allows(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !writes && (self.auth == HttpAuth::Writes || is_open(path)) {
            return true;
        }
        if bearer(headers).is_some_and(|b| token.matches(b)) {
            return true;
        }
        !writes && cookie(headers).is_some_and(|c| token.matches(c))
    }
}

/// The orchestrator probes and the dashboard's files: open whatever `auth` says.
fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/") || path.starts_with("/static/")
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

fn cookie(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .find_map(|pair| pair.strip_prefix(COOKIE.as_bytes())?.strip_prefix(b"="))
}

/// The middleware: 401 with a `WWW-Authenticate` challenge and a message saying what
/// to send, or the route.
pub async fn require(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    if access.allows(request.method(), request.uri().path(), request.headers()) {
        return next.run(request).await;
    }
    tracing::debug!(method = %request.method(), path = %request.uri().path(), "request without a valid API token refused");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"kfn\"")],
        axum::Json(serde_json::json!({
            "error": "this route needs the API token: send `Authorization: Bearer <token>` (the token is http.token in kfn.yaml or KFN_HTTP_TOKEN)"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access(auth: HttpAuth) -> Access {
        Access {
            token: Some(HttpToken::new("0123456789abcdef-secret").unwrap()),
            auth,
        }
    }

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn writes_need_the_bearer_token_and_reads_stay_open() {
        let a = access(HttpAuth::Writes);
        let none = HeaderMap::new();
        assert!(a.allows(&Method::GET, "/api/bindings", &none));
        assert!(!a.allows(&Method::POST, "/api/topics/R1", &none));
        let good = headers(header::AUTHORIZATION, "Bearer 0123456789abcdef-secret");
        assert!(a.allows(&Method::POST, "/api/topics/R1", &good));
        let lower = headers(header::AUTHORIZATION, "bearer 0123456789abcdef-secret");
        assert!(a.allows(&Method::POST, "/api/topics/R1", &lower));
        for wrong in [
            "Bearer 0123456789abcdef-secreT",
            "Bearer 0123456789abcdef-secret-and-more",
            "Bearer ",
            "Basic 0123456789abcdef-secret",
            "0123456789abcdef-secret",
        ] {
            let h = headers(header::AUTHORIZATION, wrong);
            assert!(!a.allows(&Method::POST, "/api/topics/R1", &h), "{wrong}");
        }
    }

    #[test]
    fn the_cookie_opens_reads_only() {
        let a = access(HttpAuth::All);
        let none = HeaderMap::new();
        assert!(!a.allows(&Method::GET, "/api/bindings", &none));
        assert!(a.allows(&Method::GET, "/healthz", &none));
        assert!(a.allows(&Method::GET, "/readyz", &none));
        assert!(a.allows(&Method::GET, "/static/app.js", &none));
        assert!(!a.allows(&Method::GET, "/analytics", &none));
        let c = headers(header::COOKIE, "a=b; kfn-token=0123456789abcdef-secret");
        assert!(a.allows(&Method::GET, "/api/bindings", &c));
        assert!(a.allows(&Method::GET, "/metrics", &c));
        assert!(!a.allows(&Method::POST, "/api/topics/R1", &c));
    }

    #[test]
    fn no_token_no_checks() {
        let a = Access::default();
        assert!(a.allows(&Method::POST, "/api/topics/R1", &HeaderMap::new()));
    }
}
