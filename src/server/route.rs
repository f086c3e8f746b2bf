//! Which upgrade requests become sessions, and under which sid.
//!
//! Owns: the path pattern (`/ws/{sid}` by default, any number of `{name}` parameters) and
//! custom routing functions.
//! Must not: look at anything but the request head.

use std::fmt;
use std::sync::Arc;

use crate::handshake::Request;

/// A custom router: the sid for a request, or the HTTP status that refuses it (e.g. 403 after
/// an `Origin` check, RFC 6455 §10.2).
pub type RouteFn = dyn Fn(&Request) -> Result<String, u16> + Send + Sync;

/// Maps an upgrade request to a sid and named parameters: a path pattern
/// ([`Route::pattern`]) or a function of the request ([`Route::custom`]).
#[derive(Clone)]
pub struct Route(Rule);

/// How a [`Route`] matches; private, so that the pattern's parts stay the route's own.
#[derive(Clone)]
enum Rule {
    /// A path of literal text and `{name}` placeholders, each standing for one non-empty
    /// run of characters without `/`, like the default `/ws/{sid}` or `/chat/{room}/{user}`.
    /// Other paths get 404 before any 101.
    Pattern { text: String, pieces: Vec<Piece> },
    /// A function of the request.
    Custom(Arc<RouteFn>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Param(String),
}

/// What a route found in a request: the sid (`None` for a pattern without `{sid}`: the
/// session gets a fresh unique one) and every named parameter, `{sid}` included, as they
/// appear in the path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// The `{sid}` parameter, or a custom route's answer.
    pub sid: Option<String>,
    /// Every `{name}` of the pattern with its value, in the pattern's order.
    pub params: Vec<(String, String)>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Rule::Pattern { text, .. } => write!(f, "Route({text})"),
            Rule::Custom(_) => f.write_str("Route(custom)"),
        }
    }
}

impl Default for Route {
    fn default() -> Self {
        Route::pattern("/ws/{sid}").expect("the default pattern is valid")
    }
}

impl Route {
    /// A pattern such as `/ws/{sid}`, `/rooms/{sid}/socket` or `/chat/{room}/{user}`: literal
    /// text and `{name}` placeholders (names of letters, digits and `_`, each used once, never
    /// two placeholders side by side). `{sid}`, when present, is the session's sid; without
    /// it every connection gets a fresh unique sid, so two anonymous tabs never replace each
    /// other. `None` for a malformed pattern.
    pub fn pattern(pattern: &str) -> Option<Route> {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            } else if matches!(pieces.last(), Some(Piece::Param(_))) {
                return None; // "{a}{b}": where would one end?
            }
            let close = rest[open..].find('}')? + open;
            let name = &rest[open + 1..close];
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !pieces.contains(&Piece::Param(name.to_string()));
            if !valid {
                return None;
            }
            pieces.push(Piece::Param(name.to_string()));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return None;
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Some(Route(Rule::Pattern {
            text: pattern.to_string(),
            pieces,
        }))
    }

    /// A custom routing function: the sid, or the status refusing the request.
    pub fn custom(f: impl Fn(&Request) -> Result<String, u16> + Send + Sync + 'static) -> Route {
        Route(Rule::Custom(Arc::new(f)))
    }

    /// The sid and parameters for `request`, or the status refusing it (404 for a path the
    /// pattern does not match).
    pub fn matches(&self, request: &Request) -> Result<RouteMatch, u16> {
        match &self.0 {
            Rule::Pattern { pieces, .. } => {
                let target = request.path();
                let path = target.split_once('?').map_or(target, |(p, _)| p);
                let mut params = Vec::new();
                if !match_pieces(pieces, path, &mut params) {
                    return Err(404);
                }
                let sid = params
                    .iter()
                    .find(|(name, _)| name == "sid")
                    .map(|(_, value)| value.clone());
                Ok(RouteMatch { sid, params })
            }
            Rule::Custom(f) => Ok(RouteMatch {
                sid: Some(f(request)?),
                params: Vec::new(),
            }),
        }
    }

    /// The sid for `request`, or the status refusing it; 404 also for a pattern without
    /// `{sid}` (see [`Route::matches`]).
    pub fn sid(&self, request: &Request) -> Result<String, u16> {
        self.matches(request)?.sid.ok_or(404)
    }
}

/// Whether `path` matches `pieces` exactly, collecting the parameters. A placeholder takes the
/// shortest run (at least one character, no `/`) after which the rest matches.
fn match_pieces(pieces: &[Piece], path: &str, params: &mut Vec<(String, String)>) -> bool {
    match pieces.split_first() {
        None => path.is_empty(),
        Some((Piece::Literal(text), rest)) => path
            .strip_prefix(text.as_str())
            .is_some_and(|tail| match_pieces(rest, tail, params)),
        Some((Piece::Param(name), rest)) => {
            let run = path.find('/').unwrap_or(path.len());
            for end in (1..=run).filter(|&end| path.is_char_boundary(end)) {
                params.push((name.clone(), path[..end].to_string()));
                if match_pieces(rest, &path[end..], params) {
                    return true;
                }
                params.pop();
            }
            false
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
        assert!(
            Route::pattern("/{sid}/{sid}").is_none(),
            "a name used twice"
        );
        assert!(
            Route::pattern("/{a}{b}").is_none(),
            "placeholders side by side"
        );
        assert!(Route::pattern("/{a").is_none());
        assert!(Route::pattern("/a}").is_none());
        assert!(Route::pattern("/{}").is_none());
        assert!(Route::pattern("/{a-b}").is_none());
    }

    #[test]
    fn several_named_parameters() {
        let route = Route::pattern("/chat/{room}/{user}").unwrap();
        let m = route.matches(&request("/chat/rust/alice?x=1")).unwrap();
        assert_eq!(m.sid, None, "no {{sid}}: the server gives a fresh one");
        assert_eq!(
            m.params,
            vec![
                ("room".into(), "rust".into()),
                ("user".into(), "alice".into())
            ]
        );
        assert_eq!(route.matches(&request("/chat/rust")), Err(404));
        assert_eq!(route.matches(&request("/chat/rust/alice/x")), Err(404));
        assert_eq!(route.matches(&request("/chat//alice")), Err(404));
        assert_eq!(route.sid(&request("/chat/rust/alice")), Err(404));

        let route = Route::pattern("/files/{name}.json/{sid}").unwrap();
        let m = route.matches(&request("/files/a.b.json/s1")).unwrap();
        assert_eq!(m.sid.as_deref(), Some("s1"));
        assert_eq!(m.params[0], ("name".into(), "a.b".into()));
    }

    #[test]
    fn a_pattern_without_placeholders_matches_one_path() {
        let route = Route::pattern("/live").unwrap();
        assert_eq!(
            route.matches(&request("/live")).unwrap(),
            RouteMatch::default()
        );
        assert_eq!(route.matches(&request("/live/x")), Err(404));
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
