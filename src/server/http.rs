//! Plain HTTP, the server's fallback for requests that are not upgrades: the
//! [`HttpRequest`] a handler gets, the [`HttpResponse`] it returns, and the canned answers
//! the loop gives on its own (an error status, the 503 of a full server).
//!
//! Owns: these types and the bytes of the answers. Must not: read sockets or call the
//! handler; `http_fallback.rs` does that for the loop. The HTTP/1.1 head itself is written
//! by `crate::handshake::http_response`.

use crate::handshake::{http_response, reason_phrase, Request};

/// A plain HTTP request, head and body.
#[derive(Debug)]
pub struct HttpRequest {
    pub(crate) head: Request,
    pub(crate) body: Vec<u8>,
}

impl HttpRequest {
    /// The method, e.g. `POST`.
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        let target = self.head.path();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.head.path().split_once('?').map(|(_, q)| q)
    }

    /// The first header with this name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// The body (empty without `Content-Length`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The whole head, for anything not covered here.
    pub fn head(&self) -> &Request {
        &self.head
    }
}

/// A small HTTP response. The connection closes after it (`Connection: close`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a body of the given type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            content_type: content_type.to_string(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    /// An `application/json` response (the body is sent as given).
    pub fn json(status: u16, body: &str) -> Self {
        Self::new(status, "application/json", body)
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: &str) -> Self {
        Self::new(status, "text/html; charset=utf-8", body)
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        http_response(self.status, &headers, &self.content_type, &self.body)
    }
}

/// A plain-text answer with just a status, e.g. `404 Not Found` for an upgrade to an unknown
/// path.
pub(crate) fn status_response(status: u16) -> Vec<u8> {
    let body = format!("{status} {}\n", reason_phrase(status));
    http_response(status, &[], "text/plain; charset=utf-8", body.as_bytes())
}

/// The answer to a connection over `max_connections`: come back in a few seconds.
pub(crate) fn too_many_connections() -> Vec<u8> {
    http_response(
        503,
        &[("Retry-After", "5")],
        "text/plain; charset=utf-8",
        b"too many connections\n",
    )
}
