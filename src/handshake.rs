//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade, both sides.
//!
//! Owns: reading an HTTP head incrementally (with `httparse`), validating a client's upgrade
//! request (§4.2.1) and answering it (§4.2.2), building a client's request (§4.1) and checking
//! the server's answer, and the small HTTP responses that refuse a request.
//! Must not: do I/O, decide routing (which path is a WebSocket endpoint), or read bodies.
//! Extensions (§9): this module carries `Sec-WebSocket-Extensions` both ways; what the values
//! mean is decided by `deflate::negotiate` (feature `deflate`), the only extension we speak.
//!
//! Server side: feed bytes to a [`RequestParser`] until it yields a [`Request`]; then
//! [`accept`] checks it and gives an [`Accept`] whose [`Accept::response`] (or
//! [`Accept::response_with`], to add an extension) is the `101` answer, or a
//! [`HandshakeError`] whose [`HandshakeError::response`] is the refusal.
//!
//! ```
//! use wsloop::handshake::{accept, Limits, RequestParser};
//! let mut parser = RequestParser::new(Limits::default());
//! let bytes = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! let (request, used) = parser.push(bytes).unwrap().expect("a whole head");
//! assert_eq!(used, bytes.len());
//! let upgrade = accept(&request).unwrap();
//! assert_eq!(upgrade.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use base64::Engine as _;
use sha1::{Digest, Sha1};

#[cfg(feature = "deflate")]
use crate::deflate::{negotiate, negotiate::NegotiationError, DeflateConfig, Negotiated};

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)) (§4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Bounds on an HTTP head, so that a slow or hostile peer cannot make us buffer without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes the head (request line and headers) may take. Default 8 KiB: browsers
    /// send well under 2 KiB, and the common web servers refuse heads of 8-16 KiB.
    pub max_head_bytes: usize,
    /// The most header lines. Default 64: a browser sends about 15.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

/// Collects bytes until a whole HTTP head (ending in an empty line) has arrived.
///
/// Remembers how far it has searched for the end, so a head trickling in byte by byte costs
/// linear time, and hands it to `httparse` once, when it is complete.
#[derive(Debug, Clone)]
struct HeadBuffer {
    buf: Vec<u8>,
    scanned: usize,
    limits: Limits,
}

impl HeadBuffer {
    fn new(limits: Limits) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            scanned: 0,
            limits,
        }
    }

    /// Append `data`; returns the length of the head once its end is in the buffer, and how
    /// many bytes of `data` belong to the head. Past the byte limit, `Err(())`.
    fn push(&mut self, data: &[u8]) -> Result<Option<(usize, usize)>, ()> {
        let before = self.buf.len();
        let room = self.limits.max_head_bytes.saturating_sub(before);
        // Never hold more than the limit plus the bytes that may end the head.
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        // The end is an empty line: "\n\n" or "\n\r\n" (a bare LF is tolerated, as RFC 9112
        // §2.2 allows). Restart the search a little before the old end: a terminator may
        // straddle two pushes.
        let start = self.scanned.saturating_sub(2);
        let mut end = None;
        let bytes = &self.buf;
        let mut i = start;
        while i < bytes.len() {
            if bytes[i] == b'\n' {
                if bytes.get(i + 1) == Some(&b'\n') {
                    end = Some(i + 2);
                    break;
                }
                if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                    end = Some(i + 3);
                    break;
                }
            }
            i += 1;
        }
        match end {
            Some(end) => {
                self.buf.truncate(end);
                Ok(Some((end, end - before)))
            }
            None if take < data.len() || self.buf.len() >= self.limits.max_head_bytes => Err(()),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }
}

fn span(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn text<'a>(buf: &'a [u8], range: &Range<usize>) -> &'a str {
    // Spans point at parts that httparse has already checked to be ASCII tokens.
    core::str::from_utf8(&buf[range.clone()]).unwrap_or("")
}

/// Header access shared by requests and responses.
#[derive(Debug, Clone)]
struct Head {
    raw: Vec<u8>,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| text(&self.raw, n).eq_ignore_ascii_case(name))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| text(&self.raw, n).eq_ignore_ascii_case(name))
            .map(move |(_, v)| &self.raw[v.clone()])
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(move |(n, v)| (text(&self.raw, n), &self.raw[v.clone()]))
    }

    /// The comma-separated tokens of every header called `name`, trimmed (RFC 9110 §5.6.1).
    fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name)
            .filter_map(|v| core::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// A parsed HTTP request head. Headers are kept as spans into one buffer.
#[derive(Debug, Clone)]
pub struct Request {
    head: Head,
    method: Range<usize>,
    path: Range<usize>,
    version: u8,
}

impl Request {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        text(&self.head.raw, &self.method)
    }

    /// The request target, e.g. `/ws/alice?x=1`.
    pub fn path(&self) -> &str {
        text(&self.head.raw, &self.path)
    }

    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The first header with this name, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head.iter()
    }

    /// Whether the request asks to switch to WebSocket (an `Upgrade` header that lists
    /// `websocket`). Requests without it are plain HTTP and are not the handshake's business.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.head.has_token("upgrade", "websocket")
    }

    /// The subprotocols the client offers, in its order of preference (§4.1, §11.3.4).
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> {
        self.head.tokens("sec-websocket-protocol")
    }

    /// The `Content-Length`, if present and a number.
    pub fn content_length(&self) -> Option<usize> {
        self.header_str("content-length")?.trim().parse().ok()
    }

    /// The raw head, request line and headers, as received.
    pub fn raw(&self) -> &[u8] {
        &self.head.raw
    }
}

/// Reads a request head from bytes that arrive in any pieces.
#[derive(Debug, Clone)]
pub struct RequestParser {
    head: HeadBuffer,
}

impl RequestParser {
    /// A parser with the given bounds.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            head: HeadBuffer::new(limits),
        }
    }

    /// Feed the next bytes. `Ok(None)`: the head is not complete yet. `Ok(Some((request,
    /// used)))`: the head took the first `used` bytes of `data`; the rest of `data` (a first
    /// frame, a request body) is left untouched for the caller.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        let Some((len, used)) = self
            .head
            .push(data)
            .map_err(|()| HandshakeError::HeadersTooLarge)?
        else {
            return Ok(None);
        };
        let raw = core::mem::take(&mut self.head.buf);
        let mut headers = vec![httparse::EMPTY_HEADER; self.head.limits.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&raw[..len]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            Err(httparse::Error::Version) => return Err(HandshakeError::UnsupportedHttpVersion),
            Err(_) => return Err(HandshakeError::Malformed),
        }
        let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
            return Err(HandshakeError::Malformed);
        };
        let method = span(&raw, method.as_bytes());
        let path = span(&raw, path.as_bytes());
        let spans = req
            .headers
            .iter()
            .map(|h| (span(&raw, h.name.as_bytes()), span(&raw, h.value)))
            .collect();
        Ok(Some((
            Request {
                head: Head {
                    raw,
                    headers: spans,
                },
                method,
                path,
                version,
            },
            used,
        )))
    }
}

/// Why a client's upgrade request was refused. Each knows its HTTP status and response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The head is not valid HTTP/1.x.
    Malformed,
    /// The head is longer than [`Limits::max_head_bytes`].
    HeadersTooLarge,
    /// More header lines than [`Limits::max_headers`].
    TooManyHeaders,
    /// §4.1: the method of the opening handshake MUST be GET.
    MethodNotAllowed,
    /// §4.1: the HTTP version MUST be at least 1.1.
    UnsupportedHttpVersion,
    /// §4.1: the request MUST contain a `Host` header.
    MissingHost,
    /// §4.1: `Upgrade` MUST include the keyword `websocket`.
    NotWebSocketUpgrade,
    /// §4.1: `Connection` MUST include the token `Upgrade`.
    MissingConnectionUpgrade,
    /// §4.1: the request MUST include `Sec-WebSocket-Key`.
    MissingKey,
    /// §4.1: the key MUST be a base64-encoded 16-byte value.
    InvalidKey,
    /// §4.1: the request MUST include `Sec-WebSocket-Version`.
    MissingVersion,
    /// §4.2.2: a version other than 13 is answered with 426 and the versions we speak.
    UnsupportedVersion,
}

impl HandshakeError {
    /// The HTTP status that answers this error.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::HeadersTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// What went wrong, for the response body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::Malformed => "malformed HTTP request",
            HandshakeError::HeadersTooLarge => "request header block too large",
            HandshakeError::TooManyHeaders => "too many request headers",
            HandshakeError::MethodNotAllowed => "the WebSocket handshake must use GET",
            HandshakeError::UnsupportedHttpVersion => "the WebSocket handshake needs HTTP/1.1",
            HandshakeError::MissingHost => "missing Host header",
            HandshakeError::NotWebSocketUpgrade => "Upgrade header does not name websocket",
            HandshakeError::MissingConnectionUpgrade => "Connection header does not list Upgrade",
            HandshakeError::MissingKey => "missing Sec-WebSocket-Key header",
            HandshakeError::InvalidKey => "Sec-WebSocket-Key is not base64 of 16 bytes",
            HandshakeError::MissingVersion => "missing Sec-WebSocket-Version header",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
        }
    }

    /// The complete HTTP response that refuses the request (`Connection: close`).
    pub fn response(self) -> Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            // RFC 9110 §15.5.6: a 405 MUST carry Allow.
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            // RFC 6455 §4.2.2 and §4.4: tell the client which versions we speak.
            HandshakeError::UnsupportedVersion | HandshakeError::MissingVersion => {
                &[("Sec-WebSocket-Version", "13")]
            }
            _ => &[],
        };
        let mut body = String::from(self.reason());
        body.push('\n');
        http_response(
            self.status(),
            extra,
            "text/plain; charset=utf-8",
            body.as_bytes(),
        )
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}

/// The standard reason phrase of the statuses this crate sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A complete HTTP/1.1 response that closes the connection after it.
pub fn http_response(
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    use core::fmt::Write as _;
    let mut head = String::with_capacity(128);
    let _ = write!(head, "HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A valid upgrade request, ready to be answered with `101 Switching Protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    accept: String,
    offered: Vec<String>,
    extensions: Vec<String>,
}

/// Check an upgrade request against RFC 6455 §4.2.1.
pub fn accept(request: &Request) -> Result<Accept, HandshakeError> {
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method() != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if request.version() < 1 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // §4.2.1 item 2: a |Host| header field.
    if request.header("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    // §4.2.1 item 3: |Upgrade| containing "websocket", case-insensitive.
    if !request.is_websocket_upgrade() {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    // §4.2.1 item 4: |Connection| including the token "Upgrade", case-insensitive.
    if !request.head.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // §4.2.1 item 5: |Sec-WebSocket-Key|, base64 that decodes to 16 bytes.
    let key = request
        .header("sec-websocket-key")
        .ok_or(HandshakeError::MissingKey)?;
    let key = trim_ascii(key);
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(HandshakeError::InvalidKey),
    }
    // §4.2.1 item 6: |Sec-WebSocket-Version| 13; §4.2.2: else 426 with the versions we speak.
    match request.header("sec-websocket-version").map(trim_ascii) {
        None => return Err(HandshakeError::MissingVersion),
        Some(b"13") => {}
        Some(_) => return Err(HandshakeError::UnsupportedVersion),
    }
    Ok(Accept {
        accept: accept_key(key),
        offered: request.subprotocols().map(String::from).collect(),
        // §9.1: the header may appear several times; its values form one list, in order.
        // A value that is not UTF-8 keeps a replacement character, which no extension
        // grammar accepts, so it is declined rather than silently dropped.
        extensions: request
            .head
            .all("sec-websocket-extensions")
            .map(|v| String::from(String::from_utf8_lossy(v)))
            .collect(),
    })
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

impl Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_value(&self) -> &str {
        &self.accept
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offered
    }

    /// The first protocol in the client's order that the server also supports.
    pub fn select_protocol(&self, supported: &[&str]) -> Option<&str> {
        self.offered
            .iter()
            .find(|p| supported.iter().any(|s| s == p))
            .map(String::as_str)
    }

    /// The raw values of every `Sec-WebSocket-Extensions` header of the request, in order
    /// (§9.1: together they are one list of offers, in the client's order of preference).
    /// Empty when the client offered no extension.
    pub fn offered_extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The `101 Switching Protocols` response (§4.2.2 item 5), without extensions.
    ///
    /// `protocol` is echoed in `Sec-WebSocket-Protocol` only if the client offered it: §4.1
    /// makes the client fail a connection whose server picked a protocol it did not offer,
    /// so an unoffered choice is dropped (and logged) rather than sent.
    pub fn response(&self, protocol: Option<&str>) -> Vec<u8> {
        self.response_with(protocol, None)
    }

    /// The `101` response with a `Sec-WebSocket-Extensions` header when `extensions` is given
    /// (§4.2.2 item 5, §9.1): the extensions accepted, as answered by the negotiation (e.g.
    /// `deflate::negotiate::answer`). Only an answer to one of the client's offers belongs
    /// here: §4.1 makes the client fail a connection with an extension it did not offer.
    pub fn response_with(&self, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: ",
        );
        out.extend_from_slice(self.accept.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(p) = protocol {
            if self.offered.iter().any(|o| o == p) {
                out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                log::warn!("subprotocol {p:?} was not offered by the client; not selected");
            }
        }
        if let Some(extensions) = extensions.filter(|e| !e.is_empty()) {
            out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
            out.extend_from_slice(extensions.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// A `ws://` URL, split into what the handshake needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port, 80 when absent.
    pub port: u16,
    /// The path and query, `/` when absent.
    pub path: String,
}

/// Why a URL or a server's handshake response was not accepted by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// The URL is not `ws://host[:port][/path]` (`wss://` needs TLS, which this crate lacks).
    InvalidUrl(&'static str),
    /// The response head is not valid HTTP/1.1.
    Malformed,
    /// The response head is longer than the limit.
    HeadersTooLarge,
    /// §4.1: any status other than 101 means the handshake did not complete.
    UnexpectedStatus(u16),
    /// §4.1: the response lacks `Upgrade: websocket`.
    MissingUpgrade,
    /// §4.1: the response lacks `Connection: Upgrade`.
    MissingConnectionUpgrade,
    /// §4.1: `Sec-WebSocket-Accept` is missing or not the value computed from our key.
    InvalidAccept,
    /// §4.1: the server selected a subprotocol we did not offer.
    UnrequestedProtocol,
    /// §4.1: the server selected an extension although we offered none.
    UnrequestedExtension,
    /// RFC 7692 §7.1: the server's answer to our permessage-deflate offer is not one we can
    /// accept (feature `deflate`).
    #[cfg(feature = "deflate")]
    Deflate(NegotiationError),
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientHandshakeError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ClientHandshakeError::Malformed => f.write_str("malformed HTTP response"),
            ClientHandshakeError::HeadersTooLarge => f.write_str("response headers too large"),
            ClientHandshakeError::UnexpectedStatus(s) => {
                write!(f, "server answered {s} instead of 101")
            }
            ClientHandshakeError::MissingUpgrade => f.write_str("missing Upgrade: websocket"),
            ClientHandshakeError::MissingConnectionUpgrade => {
                f.write_str("missing Connection: Upgrade")
            }
            ClientHandshakeError::InvalidAccept => f.write_str("wrong Sec-WebSocket-Accept"),
            ClientHandshakeError::UnrequestedProtocol => {
                f.write_str("server selected a subprotocol that was not offered")
            }
            ClientHandshakeError::UnrequestedExtension => {
                f.write_str("server selected an extension that was not offered")
            }
            #[cfg(feature = "deflate")]
            ClientHandshakeError::Deflate(e) => {
                write!(f, "server's permessage-deflate answer refused: {e}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientHandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "deflate")]
            ClientHandshakeError::Deflate(e) => Some(e),
            _ => None,
        }
    }
}

impl Url {
    /// Parse `ws://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Url, ClientHandshakeError> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("wss") => {
                return Err(ClientHandshakeError::InvalidUrl("wss:// needs TLS"))
            }
            _ => return Err(ClientHandshakeError::InvalidUrl("scheme must be ws://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => {
                (&rest[..i], alloc::format!("/{}", &rest[i..]))
            }
            Some(i) => (&rest[..i], String::from(&rest[i..])),
            None => (rest, String::from("/")),
        };
        // Fragments are never sent (§3: "Fragment identifiers ... MUST NOT be used").
        if path.contains('#') {
            return Err(ClientHandshakeError::InvalidUrl("fragment in URL"));
        }
        if authority.contains('@') {
            return Err(ClientHandshakeError::InvalidUrl(
                "userinfo is not supported",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or(ClientHandshakeError::InvalidUrl("unclosed IPv6 bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(ClientHandshakeError::InvalidUrl("junk after IPv6 host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(ClientHandshakeError::InvalidUrl("empty host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .map_err(|_| ClientHandshakeError::InvalidUrl("invalid port"))?,
        };
        Ok(Url {
            host: String::from(host),
            port,
            path,
        })
    }

    /// The `Host` header value: the host, with the port unless it is the default 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            alloc::format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            alloc::format!("{host}:{}", self.port)
        }
    }
}

/// The server's accepted response to our handshake.
#[derive(Debug, Clone)]
pub struct Response {
    head: Head,
    status: u16,
    /// The permessage-deflate parameters agreed, once checked.
    #[cfg(feature = "deflate")]
    deflate: Option<Negotiated>,
}

impl Response {
    /// The status code (always 101 once returned by [`ClientHandshake::push`]).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The subprotocol the server selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.head.tokens("sec-websocket-protocol").next()
    }

    /// The permessage-deflate parameters the server accepted (feature `deflate`): `None` when
    /// we offered none or the server declined the offer (no `Sec-WebSocket-Extensions`);
    /// the connection is then not compressed.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<Negotiated> {
        self.deflate
    }
}

/// The client's side of the handshake: the request to send, then the response to check.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: String,
    offered: Vec<String>,
    head: HeadBuffer,
    /// The permessage-deflate configuration we offered, if any.
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateConfig>,
}

impl ClientHandshake {
    /// Build the request for `url` with the 16-byte `nonce` (which must be fresh and random,
    /// §4.1) and the subprotocols to offer. Returns the handshake state and the bytes to send.
    /// No extension is offered, so a response that selects one is refused (§4.1).
    pub fn new(url: &Url, nonce: [u8; 16], protocols: &[&str]) -> (ClientHandshake, Vec<u8>) {
        Self::build(url, nonce, protocols, None)
    }

    /// Like [`ClientHandshake::new`], and also offer permessage-deflate with `config`
    /// (RFC 7692 §5; feature `deflate`). The response may accept the offer, checked by
    /// `deflate::negotiate::check_response` (see [`Response::deflate`]), or decline it.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(
        url: &Url,
        nonce: [u8; 16],
        protocols: &[&str],
        config: &DeflateConfig,
    ) -> (ClientHandshake, Vec<u8>) {
        let offer = negotiate::offer(config);
        let (mut handshake, request) = Self::build(url, nonce, protocols, Some(&offer));
        handshake.deflate = Some(*config);
        (handshake, request)
    }

    fn build(
        url: &Url,
        nonce: [u8; 16],
        protocols: &[&str],
        extensions: Option<&str>,
    ) -> (ClientHandshake, Vec<u8>) {
        use core::fmt::Write as _;
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let mut request = String::with_capacity(256);
        let _ = write!(
            request,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            url.path,
            url.host_header(),
            key
        );
        if !protocols.is_empty() {
            let _ = write!(
                request,
                "Sec-WebSocket-Protocol: {}\r\n",
                protocols.join(", ")
            );
        }
        if let Some(extensions) = extensions {
            let _ = write!(request, "Sec-WebSocket-Extensions: {extensions}\r\n");
        }
        request.push_str("\r\n");
        (
            ClientHandshake {
                expected_accept: accept_key(key.as_bytes()),
                offered: protocols.iter().map(|p| String::from(*p)).collect(),
                head: HeadBuffer::new(Limits::default()),
                #[cfg(feature = "deflate")]
                deflate: None,
            },
            request.into_bytes(),
        )
    }

    /// Whether our request offered any extension.
    fn offers_extensions(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.deflate.is_some() {
            return true;
        }
        false
    }

    /// Feed response bytes. `Ok(Some((response, used)))` once the head is complete and valid;
    /// the bytes of `data` after `used` already belong to the WebSocket stream.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(Response, usize)>, ClientHandshakeError> {
        let Some((len, used)) = self
            .head
            .push(data)
            .map_err(|()| ClientHandshakeError::HeadersTooLarge)?
        else {
            return Ok(None);
        };
        let raw = core::mem::take(&mut self.head.buf);
        let mut headers = vec![httparse::EMPTY_HEADER; self.head.limits.max_headers];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&raw[..len]) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(ClientHandshakeError::Malformed),
        }
        let status = resp.code.ok_or(ClientHandshakeError::Malformed)?;
        let spans = resp
            .headers
            .iter()
            .map(|h| (span(&raw, h.name.as_bytes()), span(&raw, h.value)))
            .collect();
        #[allow(unused_mut)] // assigned to only with the `deflate` feature
        let mut response = Response {
            head: Head {
                raw,
                headers: spans,
            },
            status,
            #[cfg(feature = "deflate")]
            deflate: None,
        };
        self.validate(&response)?;
        #[cfg(feature = "deflate")]
        {
            response.deflate = self.check_deflate(&response)?;
        }
        Ok(Some((response, used)))
    }

    /// §4.1 item 5 for our permessage-deflate offer: no `Sec-WebSocket-Extensions` means the
    /// server declined it (RFC 7692 §5); otherwise the answer must be one we can accept
    /// (RFC 7692 §7.1), or the connection fails.
    #[cfg(feature = "deflate")]
    fn check_deflate(
        &self,
        response: &Response,
    ) -> Result<Option<Negotiated>, ClientHandshakeError> {
        let Some(config) = &self.deflate else {
            return Ok(None);
        };
        if response
            .head
            .tokens("sec-websocket-extensions")
            .next()
            .is_none()
        {
            return Ok(None);
        }
        // RFC 9110 §5.3: several headers of the same name are one comma-separated list.
        let values: Vec<String> = response
            .head
            .all("sec-websocket-extensions")
            .map(|v| String::from(String::from_utf8_lossy(v)))
            .collect();
        negotiate::check_response(&values.join(","), config)
            .map(Some)
            .map_err(ClientHandshakeError::Deflate)
    }

    /// §4.1: the checks a client makes on the server's response.
    fn validate(&self, response: &Response) -> Result<(), ClientHandshakeError> {
        // §4.1 item 1: a status other than 101 is handled per HTTP; the handshake failed.
        if response.status != 101 {
            return Err(ClientHandshakeError::UnexpectedStatus(response.status));
        }
        // §4.1 item 2: |Upgrade| must be "websocket", case-insensitive.
        if !response.head.has_token("upgrade", "websocket") {
            return Err(ClientHandshakeError::MissingUpgrade);
        }
        // §4.1 item 3: |Connection| must be "Upgrade", case-insensitive.
        if !response.head.has_token("connection", "upgrade") {
            return Err(ClientHandshakeError::MissingConnectionUpgrade);
        }
        // §4.1 item 4: |Sec-WebSocket-Accept| must be base64(SHA-1(key + GUID)), exactly.
        match response.header("sec-websocket-accept").map(trim_ascii) {
            Some(value) if value == self.expected_accept.as_bytes() => {}
            _ => return Err(ClientHandshakeError::InvalidAccept),
        }
        // §4.1 item 5: no extension when we asked for none. (An answer to an offer we made
        // is checked by `check_deflate`.)
        if !self.offers_extensions()
            && response
                .head
                .tokens("sec-websocket-extensions")
                .next()
                .is_some()
        {
            return Err(ClientHandshakeError::UnrequestedExtension);
        }
        // §4.1 item 6: no subprotocol we did not offer.
        if let Some(p) = response.protocol() {
            if !self.offered.iter().any(|o| o == p) {
                return Err(ClientHandshakeError::UnrequestedProtocol);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(bytes: &[u8]) -> Result<Request, HandshakeError> {
        let mut parser = RequestParser::new(Limits::default());
        parser.push(bytes).map(|r| r.expect("complete").0)
    }

    fn with_header(replace: &str, by: &str) -> Vec<u8> {
        let text = core::str::from_utf8(RFC_REQUEST).unwrap();
        assert!(text.contains(replace), "{replace}");
        text.replacen(replace, by, 1).into_bytes()
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_the_rfc_request_and_answers_101() {
        let request = parse(RFC_REQUEST).unwrap();
        assert_eq!(request.method(), "GET");
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.header_str("origin"), Some("http://example.com"));
        assert_eq!(
            request.subprotocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        let accepted = accept(&request).unwrap();
        assert_eq!(
            accepted.select_protocol(&["superchat", "chat"]),
            Some("chat")
        );
        let response = String::from_utf8(accepted.response(Some("chat"))).unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn never_selects_a_protocol_the_client_did_not_offer() {
        let accepted = accept(&parse(RFC_REQUEST).unwrap()).unwrap();
        let response = String::from_utf8(accepted.response(Some("mqtt"))).unwrap();
        assert!(!response.contains("Sec-WebSocket-Protocol"));
        assert_eq!(accepted.select_protocol(&["mqtt"]), None);
    }

    #[test]
    fn needs_more_until_the_empty_line_and_returns_what_follows() {
        let mut bytes = RFC_REQUEST.to_vec();
        bytes.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
        let mut parser = RequestParser::new(Limits::default());
        for (i, byte) in bytes.iter().enumerate() {
            match parser.push(core::slice::from_ref(byte)).unwrap() {
                None => assert!(i + 1 < RFC_REQUEST.len(), "byte {i}"),
                Some((request, used)) => {
                    assert_eq!(i + 1, RFC_REQUEST.len());
                    assert_eq!(used, 1);
                    assert_eq!(request.path(), "/chat");
                    return;
                }
            }
        }
        panic!("never completed");
    }

    #[test]
    fn leftover_bytes_in_the_same_push_are_untouched() {
        let mut bytes = RFC_REQUEST.to_vec();
        bytes.extend_from_slice(b"\x81\x85frame");
        let mut parser = RequestParser::new(Limits::default());
        parser.push(&bytes[..10]).unwrap();
        let (_, used) = parser.push(&bytes[10..]).unwrap().unwrap();
        assert_eq!(&bytes[10 + used..], b"\x81\x85frame");
    }

    #[test]
    fn connection_and_upgrade_are_token_lists_case_insensitive() {
        let bytes = with_header("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
        let bytes = String::from_utf8(bytes)
            .unwrap()
            .replace("Upgrade: websocket", "upgrade: WebSocket");
        assert!(accept(&parse(bytes.as_bytes()).unwrap()).is_ok());
    }

    #[test]
    fn each_violation_has_its_status() {
        let cases: [(Vec<u8>, HandshakeError, u16); 10] = [
            (
                with_header("GET /chat", "POST /chat"),
                HandshakeError::MethodNotAllowed,
                405,
            ),
            (
                with_header("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::UnsupportedHttpVersion,
                400,
            ),
            (
                with_header("Host: server.example.com\r\n", ""),
                HandshakeError::MissingHost,
                400,
            ),
            (
                with_header("Upgrade: websocket", "Upgrade: h2c"),
                HandshakeError::NotWebSocketUpgrade,
                400,
            ),
            (
                with_header("Connection: Upgrade", "Connection: keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            (
                with_header("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HandshakeError::MissingKey,
                400,
            ),
            (
                with_header("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                with_header("dGhlIHNhbXBsZSBub25jZQ==", "not base64!!!!!!!!!!!!=="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                with_header("Sec-WebSocket-Version: 13\r\n", ""),
                HandshakeError::MissingVersion,
                400,
            ),
            (
                with_header("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
                HandshakeError::UnsupportedVersion,
                426,
            ),
        ];
        for (bytes, error, status) in cases {
            let result = parse(&bytes).and_then(|r| accept(&r));
            assert_eq!(result, Err(error));
            assert_eq!(error.status(), status);
        }
    }

    #[test]
    fn error_responses_carry_the_required_headers() {
        let r = String::from_utf8(HandshakeError::MethodNotAllowed.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(r.contains("\r\nAllow: GET\r\n"));
        let r = String::from_utf8(HandshakeError::UnsupportedVersion.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        let r = String::from_utf8(HandshakeError::MissingVersion.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        let r = String::from_utf8(HandshakeError::HeadersTooLarge.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(r.contains("Connection: close\r\n"));
    }

    #[test]
    fn a_head_over_the_byte_limit_is_431() {
        let limits = Limits {
            max_head_bytes: 256,
            max_headers: 64,
        };
        let mut parser = RequestParser::new(limits);
        let mut bytes = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        bytes.resize(255, b'a');
        assert!(parser.push(&bytes).unwrap().is_none());
        assert_eq!(
            parser.push(b"aaaa").unwrap_err(),
            HandshakeError::HeadersTooLarge
        );
        // A head that fits exactly is fine.
        let mut exact = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        exact.resize(252, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), 256);
        let mut parser = RequestParser::new(limits);
        assert!(parser.push(&exact).unwrap().is_some());
    }

    #[test]
    fn too_many_headers_is_431() {
        let limits = Limits {
            max_head_bytes: 8192,
            max_headers: 4,
        };
        let mut parser = RequestParser::new(limits);
        let err = parser.push(RFC_REQUEST).unwrap_err();
        assert_eq!(err, HandshakeError::TooManyHeaders);
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn garbage_is_400() {
        let mut parser = RequestParser::new(Limits::default());
        assert_eq!(
            parser.push(b"\x16\x03\x01 hello\r\n\r\n").unwrap_err(),
            HandshakeError::Malformed
        );
    }

    #[test]
    fn url_parsing() {
        let url = Url::parse("ws://127.0.0.1:8080/ws/alice?x=1").unwrap();
        assert_eq!(
            url,
            Url {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/ws/alice?x=1".into()
            }
        );
        assert_eq!(url.host_header(), "127.0.0.1:8080");
        let url = Url::parse("ws://example.com").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert_eq!(url.host_header(), "example.com");
        let url = Url::parse("ws://[::1]:9001?case=3").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(url.path, "/?case=3");
        assert_eq!(url.host_header(), "[::1]:9001");
        assert!(Url::parse("wss://example.com/").is_err());
        assert!(Url::parse("http://example.com/").is_err());
        assert!(Url::parse("ws://:80/").is_err());
        assert!(Url::parse("ws://host:99999/").is_err());
        assert!(Url::parse("ws://host/a#frag").is_err());
    }

    fn server_answer(request: &[u8]) -> Vec<u8> {
        let req = parse(request).unwrap();
        let accepted = accept(&req).unwrap();
        let proto = accepted.select_protocol(&["chat"]).map(String::from);
        accepted.response(proto.as_deref())
    }

    #[test]
    fn client_request_is_accepted_by_the_server_side_and_validates_the_answer() {
        let url = Url::parse("ws://localhost:9001/ws/bob").unwrap();
        let (mut client, request) = ClientHandshake::new(&url, [7; 16], &["chat"]);
        let text = core::str::from_utf8(&request).unwrap();
        assert!(text.starts_with("GET /ws/bob HTTP/1.1\r\nHost: localhost:9001\r\n"));
        let mut answer = server_answer(&request);
        answer.extend_from_slice(b"\x81\x00");
        let (response, used) = client.push(&answer).unwrap().unwrap();
        assert_eq!(response.protocol(), Some("chat"));
        assert_eq!(&answer[used..], b"\x81\x00");
    }

    #[test]
    fn client_rejects_bad_answers() {
        let url = Url::parse("ws://localhost/").unwrap();
        let (client, request) = ClientHandshake::new(&url, [9; 16], &[]);
        let good = String::from_utf8(server_answer(&request)).unwrap();
        let check = |answer: &str| client.clone().push(answer.as_bytes()).map(|r| r.is_some());
        assert_eq!(check(&good), Ok(true));
        assert_eq!(
            check("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Err(ClientHandshakeError::UnexpectedStatus(404))
        );
        assert_eq!(
            check(&good.replace("Upgrade: websocket", "Upgrade: h2c")),
            Err(ClientHandshakeError::MissingUpgrade)
        );
        assert_eq!(
            check(&good.replace("Connection: Upgrade", "Connection: close")),
            Err(ClientHandshakeError::MissingConnectionUpgrade)
        );
        let accept_at = good.find("Accept: ").unwrap() + 8;
        let mut wrong = good.clone();
        wrong.replace_range(accept_at..accept_at + 1, "A");
        if wrong == good {
            wrong.replace_range(accept_at..accept_at + 1, "B");
        }
        assert_eq!(check(&wrong), Err(ClientHandshakeError::InvalidAccept));
        let with = |h: &str| good.replacen("\r\n\r\n", &alloc::format!("\r\n{h}\r\n\r\n"), 1);
        assert_eq!(
            check(&with("Sec-WebSocket-Protocol: chat")),
            Err(ClientHandshakeError::UnrequestedProtocol)
        );
        assert_eq!(
            check(&with("Sec-WebSocket-Extensions: permessage-deflate")),
            Err(ClientHandshakeError::UnrequestedExtension)
        );
        // An empty header selects nothing.
        assert_eq!(check(&with("Sec-WebSocket-Extensions: ")), Ok(true));
    }

    #[test]
    fn accept_keeps_every_extension_header_in_order() {
        let request = parse(RFC_REQUEST).unwrap();
        assert!(accept(&request).unwrap().offered_extensions().is_empty());
        let bytes = with_header(
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Sec-WebSocket-Version: 13\r\nsec-websocket-extensions: x-foo, x-bar\r\n",
        );
        let accepted = accept(&parse(&bytes).unwrap()).unwrap();
        assert_eq!(
            accepted.offered_extensions(),
            ["permessage-deflate; client_max_window_bits", "x-foo, x-bar"]
        );
    }

    #[test]
    fn response_with_carries_the_extension_header() {
        let accepted = accept(&parse(RFC_REQUEST).unwrap()).unwrap();
        let plain = String::from_utf8(accepted.response(Some("chat"))).unwrap();
        assert!(!plain.contains("Sec-WebSocket-Extensions"));
        assert_eq!(accepted.response_with(Some("chat"), None), plain.as_bytes());
        assert_eq!(
            accepted.response_with(Some("chat"), Some("")),
            plain.as_bytes()
        );
        let with = accepted.response_with(
            Some("chat"),
            Some("permessage-deflate; server_no_context_takeover"),
        );
        let with = String::from_utf8(with).unwrap();
        assert!(with.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(with.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
        assert!(with.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        ));
        assert!(with.ends_with("\r\n\r\n") && !with.ends_with("\r\n\r\n\r\n"));
    }

    #[cfg(feature = "deflate")]
    mod deflate {
        use super::*;
        use crate::deflate::negotiate::NegotiationError;
        use crate::deflate::{negotiate, DeflateConfig, Negotiated};

        fn client(config: &DeflateConfig) -> (ClientHandshake, String) {
            let url = Url::parse("ws://localhost/").unwrap();
            let (client, request) = ClientHandshake::with_deflate(&url, [5; 16], &[], config);
            (client, String::from_utf8(request).unwrap())
        }

        /// The server's 101 for `request`, answering its offer with `server` when given.
        fn answer(request: &str, server: Option<&DeflateConfig>) -> String {
            let accepted = accept(&super::parse(request.as_bytes()).unwrap()).unwrap();
            let header = server.and_then(|config| {
                let offers = accepted.offered_extensions().iter().map(String::as_str);
                negotiate::answer(offers, config).map(|(_, header)| header)
            });
            String::from_utf8(accepted.response_with(None, header.as_deref())).unwrap()
        }

        #[test]
        fn offer_accepted_by_our_server() {
            let (client, request) = client(&DeflateConfig::default());
            assert!(request.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            ));
            let server = DeflateConfig {
                server_max_window_bits: 9,
                client_max_window_bits: 9,
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..DeflateConfig::default()
            };
            let answer = answer(&request, Some(&server));
            let (response, _) = client.clone().push(answer.as_bytes()).unwrap().unwrap();
            assert_eq!(
                response.deflate(),
                Some(Negotiated {
                    server_no_context_takeover: true,
                    client_no_context_takeover: true,
                    server_max_window_bits: 9,
                    client_max_window_bits: 9,
                })
            );
        }

        #[test]
        fn offer_declined_means_no_compression() {
            let (client, request) = client(&DeflateConfig::default());
            let answer = answer(&request, None);
            let (response, _) = client.clone().push(answer.as_bytes()).unwrap().unwrap();
            assert_eq!(response.deflate(), None);
        }

        #[test]
        fn without_an_offer_there_is_no_deflate() {
            let url = Url::parse("ws://localhost/").unwrap();
            let (client, request) = ClientHandshake::new(&url, [5; 16], &[]);
            let request = String::from_utf8(request).unwrap();
            assert!(!request.contains("Sec-WebSocket-Extensions"));
            let (response, _) = client
                .clone()
                .push(answer(&request, None).as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(response.deflate(), None);
        }

        #[test]
        fn bad_answers_fail_the_handshake() {
            let config = DeflateConfig {
                server_no_context_takeover: true,
                ..DeflateConfig::default()
            };
            let (client, request) = client(&config);
            let good = answer(&request, Some(&DeflateConfig::default()));
            assert!(good.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            ));
            let check = |answer: &str| {
                client
                    .clone()
                    .push(answer.as_bytes())
                    .map(|r| r.unwrap().0.deflate())
            };
            assert!(matches!(check(&good), Ok(Some(n)) if n.server_no_context_takeover));
            let replace =
                |by: &str| good.replace("permessage-deflate; server_no_context_takeover", by);
            assert_eq!(
                check(&replace("permessage-deflate")),
                Err(ClientHandshakeError::Deflate(
                    NegotiationError::MissingServerNoContextTakeover
                ))
            );
            assert_eq!(
                check(&replace("x-webkit-deflate-frame")),
                Err(ClientHandshakeError::Deflate(
                    NegotiationError::UnrequestedExtension("x-webkit-deflate-frame".into())
                ))
            );
            assert!(matches!(
                check(&replace(
                    "permessage-deflate; server_no_context_takeover; bogus"
                )),
                Err(ClientHandshakeError::Deflate(
                    NegotiationError::UnknownParameter(_)
                ))
            ));
            // Two headers are one list: two extensions where we offered one.
            assert_eq!(
                check(&replace(
                    "permessage-deflate; server_no_context_takeover\r\nSec-WebSocket-Extensions: permessage-deflate"
                )),
                Err(ClientHandshakeError::Deflate(
                    NegotiationError::ExpectedOneExtension(2)
                ))
            );
            let error = check(&replace("permessage-deflate")).unwrap_err();
            assert!(error.to_string().contains("permessage-deflate"), "{error}");
            assert!(std::error::Error::source(&error).is_some());
        }

        #[test]
        fn an_answer_split_over_two_headers_is_one_list() {
            let (client, request) = client(&DeflateConfig::default());
            let good = answer(&request, None);
            let split = good.replacen(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate;\r\n\
                 Sec-WebSocket-Extensions: \r\n\r\n",
                1,
            );
            // "permessage-deflate;" alone is malformed; an empty second header does not fix it.
            assert!(matches!(
                client.clone().push(split.as_bytes()),
                Err(ClientHandshakeError::Deflate(NegotiationError::Malformed(
                    _
                )))
            ));
        }
    }
}
