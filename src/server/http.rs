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
    ///
    /// The name must be a token and the value visible text, spaces and tabs (RFC 9110
    /// §5.5, §5.6.2): no CR, LF, NUL or other control character. This is checked when the
    /// response is sent (the fields are public, so it cannot be checked only here): a
    /// response with an invalid header name or value, an invalid `content_type`, or a
    /// status that is not three digits is not sent; the client gets
    /// `500 Internal Server Error` instead, and the server logs an error naming the header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The bytes to send: this response, or a 500 (logged) when a part of it is invalid.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // An invalid header or content type becomes a logged 500 there, never bytes on the
        // wire (RFC 9110 §5.5).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: &HttpResponse) -> String {
        String::from_utf8(response.to_bytes()).unwrap()
    }

    #[test]
    fn a_valid_response_is_sent_as_built() {
        let ok = HttpResponse::text(201, "made\n").with_header("Location", "/orders/7");
        let bytes = text(&ok);
        assert!(bytes.starts_with("HTTP/1.1 201 Created\r\nLocation: /orders/7\r\n"));
        assert!(bytes.ends_with("\r\n\r\nmade\n"));
    }

    #[test]
    fn an_invalid_header_or_content_type_never_reaches_the_wire() {
        let split =
            HttpResponse::text(200, "hi").with_header("X-Name", "a\r\nSet-Cookie: sid=evil");
        let lf = HttpResponse::text(200, "hi").with_header("X-Name", "a\nb");
        let name = HttpResponse::text(200, "hi").with_header("X Name", "a");
        let mut content_type = HttpResponse::text(200, "hi");
        content_type.content_type = "text/html\r\n\r\n<script>".into();
        let status = HttpResponse::text(1200, "hi");
        for response in [split, lf, name, content_type, status] {
            let bytes = text(&response);
            assert!(
                bytes.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
                "{bytes}"
            );
            assert!(
                !bytes.contains("evil") && !bytes.contains("<script>"),
                "{bytes}"
            );
            assert!(
                bytes.ends_with("\r\n\r\n500 Internal Server Error\n"),
                "{bytes}"
            );
        }
    }
}
