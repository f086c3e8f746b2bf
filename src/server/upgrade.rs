//! The application's say at upgrade time: what [`Handler::on_upgrade`] sees of the request
//! ([`UpgradeRequest`]) and what it answers ([`Upgrade`]).
//!
//! Owns: reading the request the way an application wants it (the route's parameters, the
//! query, cookies, the peer and, behind trusted proxies, the client's address) and the
//! decision: accept (choosing the sid, the subprotocol and the session's data) or reject with
//! any HTTP response. Must not: validate the handshake (`handshake::accept` did, before the
//! application is asked) or act on the decision (`input.rs` does).
//!
//! Why per-session data is `Box<dyn Any + Send>` rather than a type parameter of
//! [`Handler`]: the simple endpoint (`on_open / on_message / on_close` by sid) stays exactly
//! as it is, with no associated type to declare; the data is typed where it is used
//! (`ctx.data::<User>(sid)`), at the cost of one type check per access.
//!
//! [`Handler`]: super::Handler
//! [`Handler::on_upgrade`]: super::Handler::on_upgrade

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::handshake::Request;

use super::http::HttpResponse;

/// An upgrade request as the application sees it in
/// [`Handler::on_upgrade`](super::Handler::on_upgrade): the request head, the route's
/// parameters, the peer.
pub struct UpgradeRequest<'a> {
    pub(crate) request: &'a Request,
    pub(crate) params: &'a [(String, String)],
    pub(crate) sid: Option<&'a str>,
    pub(crate) peer: SocketAddr,
    pub(crate) trusted_proxies: &'a [IpAddr],
}

impl fmt::Debug for UpgradeRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeRequest")
            .field("path", &self.path())
            .field("params", &self.params)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<'a> UpgradeRequest<'a> {
    /// The request method (always `GET` for an upgrade, RFC 6455 §4.1).
    pub fn method(&self) -> &'a str {
        self.request.method()
    }

    /// The path, without the query.
    pub fn path(&self) -> &'a str {
        let target = self.request.path();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string after `?`, if any, as sent.
    pub fn query_string(&self) -> Option<&'a str> {
        self.request.path().split_once('?').map(|(_, query)| query)
    }

    /// The first value of the query parameter `name`, decoded (`%XX` and `+` for a space,
    /// as a form encodes it); `None` when absent or not valid UTF-8 once decoded.
    pub fn query(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_string()?
            .split('&')
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(key)? == name).then_some(value)
            })
            .next()
            .and_then(form_decode)
    }

    /// The route's parameter `name` (`{room}` in `/chat/{room}/{user}`, `{sid}` too), as it
    /// appears in the path: still percent-encoded (see [`percent_decode`]).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The sid the route gave (its `{sid}`, or a custom route's answer); `None` for a
    /// pattern without `{sid}`, whose sessions get a fresh unique sid unless
    /// [`Upgrade::with_sid`] names one.
    pub fn sid(&self) -> Option<&'a str> {
        self.sid
    }

    /// A header's value, by case-insensitive name (the first, if repeated); `None` when absent
    /// or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.request.header_str(name)
    }

    /// The cookie `name` from the `Cookie` headers (RFC 6265 §5.4: `name=value` pairs
    /// separated by `; `), with surrounding double quotes removed.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.request
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// The `Origin` header a browser sends with every WebSocket handshake (RFC 6455 §10.2;
    /// scripts usually send none).
    pub fn origin(&self) -> Option<&'a str> {
        self.header("origin")
    }

    /// The subprotocols the client offered, in its order (`Sec-WebSocket-Protocol`).
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> {
        self.request.subprotocols()
    }

    /// The address of the TCP peer.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The client's address: the TCP peer, or, when the peer is one of
    /// `ServerConfig::trusted_proxies`, the address those proxies recorded in
    /// `X-Forwarded-For`: the rightmost entry that is not itself a trusted proxy (each proxy
    /// appends the address it received from, so entries to the left of the last untrusted
    /// one could have been written by the client). Without trusted proxies the header is
    /// ignored: any client can send it.
    pub fn client_addr(&self) -> IpAddr {
        let mut addr = self.peer.ip();
        if !self.trusted_proxies.contains(&addr) {
            return addr;
        }
        let forwarded = self
            .request
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for entry in forwarded.iter().rev() {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                break; // not an address: stop at what cannot be trusted
            };
            addr = ip;
            if !self.trusted_proxies.contains(&ip) {
                break;
            }
        }
        addr
    }

    /// The whole request head, for anything not covered here.
    pub fn request(&self) -> &'a Request {
        self.request
    }
}

/// `%XX` sequences decoded (a path segment or a route parameter); `None` when a sequence is
/// malformed or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    decode(text, false)
}

/// `%XX` and `+` (a space) decoded, as in a query string (`application/x-www-form-urlencoded`).
fn form_decode(text: &str) -> Option<Cow<'_, str>> {
    decode(text, true)
}

fn decode(text: &str, plus_is_space: bool) -> Option<Cow<'_, str>> {
    let escaped = text.contains('%') || (plus_is_space && text.contains('+'));
    if !escaped {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The application's answer to an upgrade request: accept (optionally choosing the sid, the
/// subprotocol and the session's data) or reject with an HTTP response.
///
/// ```
/// use wsloop::server::{HttpResponse, Upgrade};
///
/// struct User { name: String }
/// let accepted = Upgrade::accept().with_sid("alice").with_data(User { name: "Alice".into() });
/// let refused = Upgrade::reject(
///     HttpResponse::text(401, "log in first\n").with_header("WWW-Authenticate", "Bearer"),
/// );
/// # let _ = (accepted, refused);
/// ```
pub struct Upgrade(pub(crate) Decision);

pub(crate) enum Decision {
    Accept(Accepted),
    Reject(HttpResponse),
}

/// What an accepted upgrade carries into its session. `Send`, so that it can travel with
/// the connection to the loop that holds its sid.
#[derive(Default)]
pub(crate) struct Accepted {
    pub(crate) sid: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) data: Option<Box<dyn Any + Send>>,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("sid", &self.sid)
            .field("protocol", &self.protocol)
            .field("data", &self.data.is_some())
            .finish()
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Decision::Accept(a) => write!(f, "Upgrade::Accept({a:?})"),
            Decision::Reject(r) => write!(f, "Upgrade::Reject({})", r.status),
        }
    }
}

impl Upgrade {
    /// Accept: the sid from the route (or a fresh one), the subprotocol chosen in the
    /// server's order of preference (`ServerConfig::protocols`), no data.
    pub fn accept() -> Upgrade {
        Upgrade(Decision::Accept(Accepted::default()))
    }

    /// Reject with this response (any status other than 101, any headers and body, e.g.
    /// `401` with `WWW-Authenticate`, `403` for a foreign `Origin`).
    pub fn reject(response: HttpResponse) -> Upgrade {
        Upgrade(Decision::Reject(response))
    }

    /// The session's sid, instead of the route's (e.g. the user a token names). An open
    /// session with the same sid is replaced, as for the route's sids. No effect on a
    /// rejection.
    pub fn with_sid(mut self, sid: impl Into<String>) -> Upgrade {
        if let Decision::Accept(a) = &mut self.0 {
            a.sid = Some(sid.into());
        }
        self
    }

    /// The subprotocol to answer with; it must be one the client offered
    /// ([`UpgradeRequest::protocols`], RFC 6455 §4.2.2), else the upgrade fails with `500`
    /// and an error in the log. No effect on a rejection.
    pub fn with_protocol(mut self, protocol: impl Into<String>) -> Upgrade {
        if let Decision::Accept(a) = &mut self.0 {
            a.protocol = Some(protocol.into());
        }
        self
    }

    /// The session's data, of the application's own type: reachable with
    /// [`Context::data`](super::Context::data) in every callback for the session, dropped
    /// after its `on_close`. No effect on a rejection.
    pub fn with_data<T: Any + Send>(mut self, data: T) -> Upgrade {
        if let Decision::Accept(a) = &mut self.0 {
            a.data = Some(Box::new(data));
        }
        self
    }
}

impl From<HttpResponse> for Upgrade {
    fn from(response: HttpResponse) -> Upgrade {
        Upgrade::reject(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Limits, RequestParser};

    fn request(target: &str, headers: &str) -> Request {
        let text = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        RequestParser::new(Limits::default())
            .push(text.as_bytes())
            .unwrap()
            .unwrap()
            .0
    }

    fn view<'a>(request: &'a Request, trusted: &'a [IpAddr]) -> UpgradeRequest<'a> {
        UpgradeRequest {
            request,
            params: &[],
            sid: None,
            peer: "10.0.0.1:5000".parse().unwrap(),
            trusted_proxies: trusted,
        }
    }

    #[test]
    fn query_parameters_are_form_decoded() {
        let r = request("/ws/a?token=s%3Dcret&name=J+Doe&flag&x=%ZZ", "");
        let v = view(&r, &[]);
        assert_eq!(v.path(), "/ws/a");
        assert_eq!(v.query("token").as_deref(), Some("s=cret"));
        assert_eq!(v.query("name").as_deref(), Some("J Doe"));
        assert_eq!(v.query("flag").as_deref(), Some(""));
        assert_eq!(v.query("x"), None, "a malformed escape");
        assert_eq!(v.query("missing"), None);
        assert_eq!(view(&request("/ws/a", ""), &[]).query("token"), None);
    }

    #[test]
    fn cookies_come_from_every_cookie_header() {
        let r = request(
            "/",
            "Cookie: theme=dark; token=\"abc\"\r\nCookie: lang=fr\r\n",
        );
        let v = view(&r, &[]);
        assert_eq!(v.cookie("token"), Some("abc"));
        assert_eq!(v.cookie("theme"), Some("dark"));
        assert_eq!(v.cookie("lang"), Some("fr"));
        assert_eq!(v.cookie("tok"), None);
    }

    #[test]
    fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
        let r = request("/", "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.0.0.2\r\n");
        // Not behind a trusted proxy: the header is the client's word, ignored.
        assert_eq!(
            view(&r, &[]).client_addr(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        // Behind two trusted proxies: the rightmost address they did not write themselves.
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(
            view(&r, &trusted).client_addr(),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Garbage in the header stops the walk at the last address that could be trusted.
        let r = request("/", "X-Forwarded-For: 203.0.113.9, garbage\r\n");
        assert_eq!(
            view(&r, &trusted).client_addr(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn percent_decoding_of_path_parameters() {
        assert_eq!(percent_decode("J%C3%BCrgen").as_deref(), Some("Jürgen"));
        assert_eq!(
            percent_decode("a+b").as_deref(),
            Some("a+b"),
            "+ stays in a path"
        );
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }
}
