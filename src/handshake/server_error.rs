//! Why a client's upgrade request is refused (RFC 6455 §4.2.1, §4.2.2), each reason with its
//! HTTP status and, with an allocator, its whole response.
//!
//! Owns: [`HandshakeError`]. Must not: decide which requests are refused (the server's side
//! and `fixed` do), or allocate without the `alloc` feature.

use core::fmt;

#[cfg(feature = "alloc")]
use super::http::http_response;

/// Why a client's upgrade request was refused. Each knows its HTTP status and response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The head is not valid HTTP/1.x.
    Malformed,
    /// The head is longer than `Limits::max_head_bytes`, or than the caller's buffer
    /// (`fixed::accept`).
    HeadersTooLarge,
    /// More header lines than `Limits::max_headers`, or than the caller's header slots
    /// (`fixed::accept`).
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
    #[cfg(feature = "alloc")]
    pub fn response(self) -> alloc::vec::Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            // RFC 9110 §15.5.6: a 405 MUST carry Allow.
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            // RFC 6455 §4.2.2 and §4.4: tell the client which versions we speak.
            HandshakeError::UnsupportedVersion | HandshakeError::MissingVersion => {
                &[("Sec-WebSocket-Version", "13")]
            }
            _ => &[],
        };
        let mut body = alloc::string::String::from(self.reason());
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
