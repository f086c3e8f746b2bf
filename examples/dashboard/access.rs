//! Who may use the dashboard: the `Host` allow-list, the same-origin check of upgrades and
//! POSTs (with the `--allow-origin` exceptions), and the optional bearer token; plus [`preview`], the bounded, escaped form in which
//! the dashboard logs text that a client chose.
//!
//! Owns: these rules, the refusals with their statuses and bodies, and how a refusal reads in
//! a log line. Must not: do I/O, log, or know the dashboard's routes; `main.rs` decides which
//! check runs on which request and logs the refusal.
//!
//! The rules, in the order they run:
//! 1. **Host** (every request, page, POSTs and upgrades): exactly one `Host` header (else
//!    400), whose `name[:port]` is on the allow-list (else 421). The list holds `localhost`,
//!    `127.0.0.1` and `[::1]` on any port (a name an attacker's DNS cannot give: a local
//!    proxy such as the `tap` example forwards its own port), the bound IP with the bound
//!    port unless it is `0.0.0.0` or `[::]`, and each `--allow-host NAME[:PORT]`, where a
//!    NAME without a port allows any port (the public name behind a proxy). A `Host` without
//!    a port means port 80. Names compare case-insensitively.
//! 2. **Same origin** (upgrades and every request that is not GET or HEAD): a
//!    `Sec-Fetch-Site: cross-site` is refused, and so is an `Origin` (`null` included) that
//!    is neither the request's own `http://` or `https://` + `Host` (a port that is the
//!    scheme's default may be left out of either) nor `http(s)://` + an `--allow-host` name
//!    (for a proxy that rewrites `Host`). Another server on this machine, on another port,
//!    is another origin. No `Origin` at all passes: browsers send one on every upgrade and
//!    every cross-origin POST, while curl and scripts send none. An `Origin` that is one of
//!    the `--allow-origin URL` entries passes before any of this (whatever its
//!    `Sec-Fetch-Site`, which a browser sets to `cross-site` for exactly those pages).
//! 3. **Token** (only with `--token T`): a POST (or other unsafe method) must carry
//!    `Authorization: Bearer T`; an upgrade may carry it there, as `?token=T` in its URL or
//!    as a `token=T` cookie, since a page cannot set headers on a WebSocket. Else 401 with
//!    `WWW-Authenticate: Bearer`. POSTs take the header only, so that the token stays out of
//!    access logs and the browser history there, and so that a cross-site page cannot send
//!    it without a CORS preflight (which the dashboard never answers); a cross-site page
//!    that knows the token still cannot open a WebSocket, which rule 2 refuses.

use std::fmt;
use std::net::SocketAddr;

use wsloop::handshake::Request;
use wsloop::server::HttpResponse;

/// One entry of the `Host` allow-list: a lower-case name (an IPv6 address in brackets) and
/// its port, or `None` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    name: String,
    port: Option<u16>,
}

impl Allowed {
    /// An `--allow-host` value, `NAME` or `NAME:PORT`.
    pub fn parse(value: &str) -> Result<Allowed, String> {
        match split_authority(value) {
            Some((name, port)) => Ok(Allowed { name, port }),
            None => Err(format!(
                "--allow-host needs NAME or NAME:PORT, not {:?}",
                preview(value, 64)
            )),
        }
    }

    fn matches(&self, name: &str, port: u16) -> bool {
        self.name == name && self.port.map_or(true, |p| p == port)
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => write!(f, "{} (any port)", self.name),
        }
    }
}

/// One `--allow-origin` entry: a serialized origin (RFC 6454 §6.2), `http(s)://NAME[:PORT]`,
/// kept as its scheme, lower-case name and port (the scheme's default when left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    https: bool,
    name: String,
    port: u16,
}

impl AllowedOrigin {
    /// An `--allow-origin` value, e.g. `https://admin.example.com` (one trailing `/` is
    /// tolerated, nothing else after the authority).
    pub fn parse(value: &str) -> Result<AllowedOrigin, String> {
        let origin = value.strip_suffix('/').unwrap_or(value);
        parse_origin(origin).ok_or(format!(
            "--allow-origin needs http(s)://NAME[:PORT], not {:?}",
            preview(value, 64)
        ))
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.name, self.port)
    }
}

/// An `Origin` value, `http(s)://authority`, as an [`AllowedOrigin`]; `None` for `null`,
/// another scheme, or a malformed authority.
fn parse_origin(origin: &str) -> Option<AllowedOrigin> {
    // RFC 6454 §7: the serialized origin, scheme "://" host [":" port].
    let (scheme, authority) = origin.split_once("://")?;
    let https = if scheme.eq_ignore_ascii_case("http") {
        false
    } else if scheme.eq_ignore_ascii_case("https") {
        true
    } else {
        return None;
    };
    let (name, port) = split_authority(authority)?;
    // RFC 6454 §4: an origin is (scheme, host, port); a default port may be left out.
    let port = port.unwrap_or(if https { 443 } else { 80 });
    Some(AllowedOrigin { https, name, port })
}

/// Why a request was refused; [`Refusal::response`] is the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host` header, or more than one.
    BadHost,
    /// A `Host` that is not on the allow-list (as given, for the log).
    WrongHost(String),
    /// A cross-site request (what gave it away, for the log).
    CrossSite(String),
    /// `--token` is set and the request lacks it, or carries another.
    NoToken,
}

impl Refusal {
    /// The status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            // RFC 9112 §3.2: a request without Host, or with several, gets 400.
            Refusal::BadHost => 400,
            // RFC 9110 §15.5.20: 421, "not able to produce a response for this target": the
            // answer to a name that only points here by DNS rebinding.
            Refusal::WrongHost(_) => 421,
            Refusal::CrossSite(_) => 403,
            // RFC 9110 §15.5.2: credentials missing or wrong.
            Refusal::NoToken => 401,
        }
    }

    /// The HTTP answer: the status and a JSON error, like the dashboard's other errors.
    pub fn response(&self) -> HttpResponse {
        let error = match self {
            Refusal::BadHost => "exactly one Host header is required",
            Refusal::WrongHost(_) => "this host name is not served here",
            Refusal::CrossSite(_) => "cross-site request refused",
            Refusal::NoToken => "a bearer token is required",
        };
        let response = HttpResponse::json(self.status(), &format!(r#"{{"error":"{error}"}}"#));
        match self {
            // RFC 9110 §15.5.2: a 401 carries WWW-Authenticate; RFC 6750 §3 names the scheme.
            Refusal::NoToken => response.with_header("WWW-Authenticate", "Bearer"),
            _ => response,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadHost => f.write_str("400, not exactly one Host header"),
            Refusal::WrongHost(host) => write!(f, "421, Host \"{host}\" is not allowed"),
            Refusal::CrossSite(why) => write!(f, "403, cross-site: {why}"),
            Refusal::NoToken => f.write_str("401, no or wrong bearer token"),
        }
    }
}

/// The dashboard's access rules; see the module documentation.
#[derive(Debug)]
pub struct Access {
    /// The `Host` allow-list: the defaults, then `extra`.
    allowed: Vec<Allowed>,
    /// The `--allow-host` entries alone: the origins allowed besides the request's own.
    extra: Vec<Allowed>,
    /// The `--allow-origin` entries: pages elsewhere that may upgrade and POST.
    origins: Vec<AllowedOrigin>,
    token: Option<String>,
}

impl Access {
    /// The rules for a server bound to `local`, with the `--allow-host` entries `extra`, the
    /// `--allow-origin` entries `origins` and the `--token`, if any.
    pub fn new(
        local: SocketAddr,
        extra: &[Allowed],
        origins: &[AllowedOrigin],
        token: Option<String>,
    ) -> Access {
        let port = Some(local.port());
        let mut allowed: Vec<Allowed> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|name| Allowed {
                name: name.to_string(),
                port: None,
            })
            .collect();
        // `0.0.0.0` and `[::]` are not names a client should use; behind them the real name
        // comes with --allow-host.
        if !local.ip().is_unspecified() {
            let name = match local {
                SocketAddr::V4(v4) => v4.ip().to_string(),
                SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
            };
            if !allowed
                .iter()
                .any(|entry| entry.matches(&name, local.port()))
            {
                allowed.push(Allowed { name, port });
            }
        }
        allowed.extend(extra.iter().cloned());
        let mut unique: Vec<Allowed> = Vec::with_capacity(allowed.len());
        for entry in allowed {
            if !unique.contains(&entry) {
                unique.push(entry);
            }
        }
        Access {
            allowed: unique,
            extra: extra.to_vec(),
            origins: origins.to_vec(),
            token,
        }
    }

    /// The allow-list, for the startup log line.
    pub fn hosts(&self) -> String {
        let names: Vec<String> = self.allowed.iter().map(Allowed::to_string).collect();
        names.join(", ")
    }

    /// The `--allow-origin` entries, for the startup log line.
    pub fn origins(&self) -> String {
        let origins: Vec<String> = self.origins.iter().map(AllowedOrigin::to_string).collect();
        origins.join(", ")
    }

    /// Whether a token is required on POSTs and upgrades.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The checks of an upgrade request's head: Host, then same origin. The token, which an
    /// upgrade may carry in three places, is [`Access::check_upgrade_token`]'s.
    pub fn check_upgrade(&self, request: &Request) -> Result<(), Refusal> {
        self.check_host(request)?;
        self.check_same_origin(request)
    }

    /// The token check of an upgrade, given the tokens it `offered` (its `?token=`, the
    /// value of its `Authorization: Bearer`, its `token` cookie): one of them must be the
    /// token, when `--token` is set.
    pub fn check_upgrade_token<'a>(
        &self,
        offered: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Refusal> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        // Every candidate is compared (no early exit), each in constant time.
        let found = offered.into_iter().fold(false, |found, token| {
            same_bytes(token.as_bytes(), want.as_bytes()) | found
        });
        if found {
            Ok(())
        } else {
            Err(Refusal::NoToken)
        }
    }

    /// The checks of a plain HTTP request: Host for all; same origin and token for every
    /// method but GET and HEAD (RFC 9110 §9.2.1: the safe methods, which change nothing here).
    pub fn check_http(&self, request: &Request) -> Result<(), Refusal> {
        self.check_host(request)?;
        if matches!(request.method(), "GET" | "HEAD") {
            return Ok(());
        }
        self.check_same_origin(request)?;
        self.check_token(request)
    }

    /// The one `Host` of `request`, parsed; `check_host` has vouched for it.
    fn host(request: &Request) -> Option<(String, Option<u16>)> {
        let mut hosts = headers(request, "host");
        match (hosts.next(), hosts.next()) {
            (Some(host), None) => split_authority(std::str::from_utf8(host).ok()?),
            _ => None,
        }
    }

    fn check_host(&self, request: &Request) -> Result<(), Refusal> {
        let mut hosts = headers(request, "host");
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(Refusal::BadHost);
        };
        let refused = || Refusal::WrongHost(preview_bytes(host));
        let (name, port) = std::str::from_utf8(host)
            .ok()
            .and_then(split_authority)
            .ok_or_else(refused)?;
        // RFC 9110 §4.2.1 (via §7.2): no port in Host means the scheme's default, 80 for http.
        let port = port.unwrap_or(80);
        if self.allowed.iter().any(|entry| entry.matches(&name, port)) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    fn check_same_origin(&self, request: &Request) -> Result<(), Refusal> {
        let mut origins = headers(request, "origin");
        let origin = match (origins.next(), origins.next()) {
            (Some(origin), None) => Some(origin),
            _ => None,
        };
        // `--allow-origin`: a page the operator named, on another site by definition.
        let named = origin
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(parse_origin)
            .is_some_and(|o| self.origins.contains(&o));
        if named {
            return Ok(());
        }
        // Fetch Metadata: the browser's own verdict on where the request comes from.
        if headers(request, "sec-fetch-site").any(|v| v.eq_ignore_ascii_case(b"cross-site")) {
            return Err(Refusal::CrossSite("Sec-Fetch-Site: cross-site".into()));
        }
        let mut origins = headers(request, "origin");
        let origin = match (origins.next(), origins.next()) {
            (None, _) => return Ok(()),
            (Some(origin), None) => origin,
            (Some(_), Some(_)) => return Err(Refusal::CrossSite("several Origin headers".into())),
        };
        let refused = || Refusal::CrossSite(format!("Origin \"{}\"", preview_bytes(origin)));
        let origin = std::str::from_utf8(origin).map_err(|_| refused())?;
        // RFC 6454 §7: the serialized origin, scheme "://" host [":" port]; "null" for an
        // opaque origin (a sandboxed frame, a file: page), which is never this dashboard.
        let origin = parse_origin(origin).ok_or_else(refused)?;
        let default_port = if origin.https { 443 } else { 80 };
        // RFC 6454 §4: an origin is (scheme, host, port); a default port may be left out of
        // the Host too.
        let own = Access::host(request)
            .is_some_and(|(h, p)| h == origin.name && p.unwrap_or(default_port) == origin.port);
        let listed = self
            .extra
            .iter()
            .any(|entry| entry.matches(&origin.name, origin.port));
        if own || listed {
            Ok(())
        } else {
            Err(refused())
        }
    }

    fn check_token(&self, request: &Request) -> Result<(), Refusal> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        // RFC 9110 §11.6.2 / RFC 6750 §2.1: `Authorization: Bearer <token>`; the scheme is
        // case-insensitive (RFC 9110 §11.1).
        let given = request
            .header_str("authorization")
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim_start_matches(' '));
        match given {
            Some(token) if same_bytes(token.as_bytes(), want.as_bytes()) => Ok(()),
            _ => Err(Refusal::NoToken),
        }
    }
}

/// Every value of the header `name`.
fn headers<'a>(request: &'a Request, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    request
        .headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// `NAME` or `NAME:PORT` (NAME an IPv6 address in brackets, or letters, digits, `-`, `.`
/// and `_`) as a lower-case name and a port; `None` for anything else.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (name, rest) = authority.split_at(end + 1);
        let inner = &name[1..end];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        match rest {
            "" => (name, None),
            _ => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if name.is_empty() || !name.chars().all(valid) {
            return None;
        }
        (name, port)
    };
    let port = match port {
        None => None,
        // RFC 3986 §3.2.3: port = *DIGIT; a sign or anything else is not a port.
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// Constant-time comparison, so that the time of a refusal says nothing about how much of a
/// guessed token was right (the length is not hidden).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `text` for a log line: escaped (`char::escape_debug`: no raw newline, quote or control
/// character gets through) and cut to at most `max` bytes plus `…`.
pub fn preview(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let escaped: String = c.escape_debug().collect();
        if out.len() + escaped.len() > max {
            out.push('…');
            break;
        }
        out.push_str(&escaped);
    }
    out
}

/// Header bytes that may not be UTF-8, for a log line.
fn preview_bytes(bytes: &[u8]) -> String {
    preview(&String::from_utf8_lossy(bytes), 64)
}
