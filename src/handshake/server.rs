//! The server's side of the opening handshake (RFC 6455 §4.2): reading a client's upgrade
//! request, checking it (§4.2.1) and answering it (§4.2.2).
//!
//! Owns: [`Request`] and its WebSocket-level accessors, [`RequestParser`] (a request head,
//! read with [`http`](super::http)), the checks of §4.2.1 in [`accept`], the `101` answer
//! ([`Accept`]) and the refusals ([`HandshakeError`], each with its status and response).
//! Must not: do I/O, decide routing (which path is a WebSocket endpoint), read bodies, or
//! interpret `Sec-WebSocket-Extensions`: the offers are handed over as received, and the
//! answer is taken as given (`deflate::negotiate` decides both, feature `deflate`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;

use super::http::{http_response, trim_ascii, Head, HeadError, HeadReader, Limits, RequestLine};
use super::key::accept_key;

/// A parsed HTTP request head. Headers are kept as spans into one buffer.
#[derive(Debug, Clone)]
pub struct Request {
    head: Head,
    line: RequestLine,
}

impl Request {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.head.text(&self.line.method)
    }

    /// The request target, e.g. `/ws/alice?x=1`.
    pub fn path(&self) -> &str {
        self.head.text(&self.line.target)
    }

    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn version(&self) -> u8 {
        self.line.version
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

    /// The `Content-Length`: `None` when there is none, or when it is not valid. Valid
    /// means, strictly (RFC 9110 §8.6, RFC 9112 §6.3 item 5), that every `Content-Length`
    /// field, and every element of a comma list in one, holds the same `1*DIGIT` number,
    /// without a sign or a leading zero, that fits in `usize`. So a request with a
    /// `Content-Length` header and `None` here must be refused with 400, as the server does.
    pub fn content_length(&self) -> Option<usize> {
        self.head.content_length().ok().flatten()
    }

    /// The raw head, request line and headers, as received.
    pub fn raw(&self) -> &[u8] {
        self.head.raw()
    }
}

/// Reads a request head from bytes that arrive in any pieces.
#[derive(Debug, Clone)]
pub struct RequestParser {
    head: HeadReader,
}

impl RequestParser {
    /// A parser with the given bounds.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            head: HeadReader::new(limits),
        }
    }

    /// Feed the next bytes. `Ok(None)`: the head is not complete yet. `Ok(Some((request,
    /// used)))`: the head took the first `used` bytes of `data`; the rest of `data` (a first
    /// frame, a request body) is left untouched for the caller.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        let parsed = self.head.push::<RequestLine>(data).map_err(|e| match e {
            HeadError::TooLarge => HandshakeError::HeadersTooLarge,
            HeadError::TooManyHeaders => HandshakeError::TooManyHeaders,
            HeadError::Version => HandshakeError::UnsupportedHttpVersion,
            HeadError::Malformed => HandshakeError::Malformed,
        })?;
        Ok(parsed.map(|(head, line, used)| (Request { head, line }, used)))
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
        extensions: request.head.values_lossy("sec-websocket-extensions"),
    })
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

#[cfg(test)]
mod tests;
