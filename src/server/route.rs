//! Which upgrade requests become sessions, and under which sid.
//!
//! Owns: the path pattern (`/ws/{sid}` by default) and custom routing functions.
//! Must not: look at anything but the request head.

use std::fmt;
use std::sync::Arc;

use crate::handshake::Request;

/// A custom router: the sid for a request, or the HTTP status that refuses it (e.g. 403 after
/// an `Origin` check, RFC 6455 §10.2).
pub type RouteFn = dyn Fn(&Request) -> Result<String, u16> + Send + Sync;

/// Maps an upgrade request to a sid: a path pattern ([`Route::pattern`]) or a function of
/// the request ([`Route::custom`]).
#[derive(Clone)]
pub struct Route(Rule);

/// How a [`Route`] finds the sid; private, so that the pattern's parts stay the route's own.
#[derive(Clone)]
enum Rule {
    /// A path with one `{sid}` placeholder standing for one non-empty segment, like the
    /// default `/ws/{sid}`. Other paths get 404 before any 101.
    Pattern {
        /// The text before `{sid}`.
        prefix: String,
        /// The text after `{sid}`.
        suffix: String,
    },
    /// A function of the request.
    Custom(Arc<RouteFn>),
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Rule::Pattern { prefix, suffix } => write!(f, "Route({prefix}{{sid}}{suffix})"),
            Rule::Custom(_) => f.write_str("Route(custom)"),
        }
    }
}

impl Default for Route {
    fn default() -> Self {
        Route::pattern("/ws/{sid}").expect("the default pattern has a placeholder")
    }
}

impl Route {
    /// A pattern such as `/ws/{sid}` or `/rooms/{sid}/socket`; `None` without exactly one
    /// `{sid}`.
    pub fn pattern(pattern: &str) -> Option<Route> {
        let (prefix, suffix) = pattern.split_once("{sid}")?;
        if suffix.contains("{sid}") {
            return None;
        }
        Some(Route(Rule::Pattern {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        }))
    }

    /// A custom routing function.
    pub fn custom(f: impl Fn(&Request) -> Result<String, u16> + Send + Sync + 'static) -> Route {
        Route(Rule::Custom(Arc::new(f)))
    }

    /// The sid for `request`, or the status refusing it.
    pub fn sid(&self, request: &Request) -> Result<String, u16> {
        match &self.0 {
            Rule::Pattern { prefix, suffix } => {
                let target = request.path();
                let path = target.split_once('?').map_or(target, |(p, _)| p);
                let sid = path
                    .strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                    .ok_or(404u16)?;
                if sid.is_empty() || sid.contains('/') {
                    return Err(404);
                }
                Ok(sid.to_string())
            }
            Rule::Custom(f) => f(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Limits, RequestParser};

    fn request(path: &str) -> Request {
        let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        RequestParser::new(Limits::default())
            .push(text.as_bytes())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn default_pattern_takes_one_non_empty_segment() {
        let route = Route::default();
        assert_eq!(route.sid(&request("/ws/alice")), Ok("alice".into()));
        assert_eq!(route.sid(&request("/ws/alice?token=1")), Ok("alice".into()));
        assert_eq!(route.sid(&request("/ws/")), Err(404));
        assert_eq!(route.sid(&request("/ws/a/b")), Err(404));
        assert_eq!(route.sid(&request("/other/alice")), Err(404));
        assert_eq!(route.sid(&request("/")), Err(404));
    }

    #[test]
    fn patterns_with_a_suffix() {
        let route = Route::pattern("/rooms/{sid}/socket").unwrap();
        assert_eq!(route.sid(&request("/rooms/42/socket")), Ok("42".into()));
        assert_eq!(route.sid(&request("/rooms/42")), Err(404));
        assert!(Route::pattern("/no/placeholder").is_none());
        assert!(Route::pattern("/{sid}/{sid}").is_none());
    }

    #[test]
    fn custom_routes_can_refuse_with_a_status() {
        let route = Route::custom(|req| match req.header_str("origin") {
            Some("http://good.example") => Ok("ok".into()),
            _ => Err(403),
        });
        assert_eq!(route.sid(&request("/")), Err(403));
    }

    #[test]
    fn debug_shows_the_pattern_not_its_parts() {
        assert_eq!(format!("{:?}", Route::default()), "Route(/ws/{sid})");
        let custom = Route::custom(|_| Err(404));
        assert_eq!(format!("{custom:?}"), "Route(custom)");
    }
}
