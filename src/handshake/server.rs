//! The server's side of the opening handshake (RFC 6455 §4.2): reading a client's upgrade
//! request, checking it (§4.2.1) and answering it (§4.2.2).
//!
//! Owns: [`Request`] and its WebSocket-level accessors, [`RequestParser`] (a request head,
//! read with [`http`](super::http)), [`accept`] (the checks of §4.2.1, shared with the
//! allocator-free side in `fixed`) and the `101` answer ([`Accept`]). The refusals are
//! `server_error`'s [`HandshakeError`].
//! Must not: do I/O, decide routing (which path is a WebSocket endpoint), read bodies, or
//! interpret `Sec-WebSocket-Extensions`: the offers are handed over as received, and the
//! answer is taken as given (`deflate::negotiate` decides both, feature `deflate`).

use super::fixed::{check_upgrade, Headers, SWITCHING_PROTOCOLS};
use super::http::{Head, HeadError, HeadReader, Limits, RequestLine};
use super::key::accept_key;
use super::server_error::HandshakeError;
use alloc::string::String;
use alloc::vec::Vec;

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

impl Headers for Head {
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.header(name)
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        Head::has_token(self, name, token)
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

/// A valid upgrade request, ready to be answered with `101 Switching Protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    accept: String,
    offered: Vec<String>,
    extensions: Vec<String>,
}

/// Check an upgrade request against RFC 6455 §4.2.1.
pub fn accept(request: &Request) -> Result<Accept, HandshakeError> {
    let key = check_upgrade(request.method(), request.version(), &request.head)?;
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
        out.extend_from_slice(SWITCHING_PROTOCOLS);
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
