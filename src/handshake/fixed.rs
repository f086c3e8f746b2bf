//! The server's side of the opening handshake without an allocator (RFC 6455 §4.2): the
//! request is read from the caller's buffer into the caller's header slots (`httparse`
//! works that way), checked by the same rules as [`accept`](super::accept), and answered
//! into the caller's buffer.
//!
//! Owns: the checks of §4.2.1, shared with the allocating side through `Headers`, the
//! `101` response's fixed part, and the allocator-free [`accept`] / [`Upgrade`] and
//! [`write_refusal`].
//! Must not: do I/O, allocate, or decide routing (the caller reads [`Upgrade::path`]).
//!
//! ```
//! use wsloop::handshake::fixed;
//! let bytes = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! let mut headers = [fixed::EMPTY_HEADER; 16];
//! let upgrade = fixed::accept(bytes, &mut headers).unwrap().expect("a whole head");
//! assert_eq!((upgrade.path(), upgrade.head_len()), ("/chat", bytes.len()));
//! let mut out = [0u8; 160];
//! let n = upgrade.write_response(&mut out).unwrap();
//! assert!(out[..n].ends_with(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
//! ```

/// The header slots [`accept`] fills: `httparse`'s, re-exported so that a caller needs no
/// dependency of its own.
pub use httparse::{Header, EMPTY_HEADER};

use super::fields::{has_token, trim_ascii};
use super::key::{is_valid_key, AcceptKey};
use super::server_error::HandshakeError;

/// A request head's headers, as the checks of §4.2.1 see them.
pub(super) trait Headers {
    /// The first header with this name (case-insensitive).
    fn first(&self, name: &str) -> Option<&[u8]>;
    /// Whether the token lists of the headers with this name include `token`.
    fn has_token(&self, name: &str, token: &str) -> bool;
}

/// Check an upgrade request against RFC 6455 §4.2.1; returns its `Sec-WebSocket-Key`,
/// trimmed. Both sides of the handshake, allocating or not, apply this one function.
pub(super) fn check_upgrade<'h>(
    method: &str,
    version: u8,
    headers: &'h impl Headers,
) -> Result<&'h [u8], HandshakeError> {
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if !matches!(method.as_bytes(), b"GET") {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if version < 1 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // §4.2.1 item 2: a |Host| header field.
    if headers.first("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    // §4.2.1 item 3: |Upgrade| containing "websocket", case-insensitive.
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    // §4.2.1 item 4: |Connection| including the token "Upgrade", case-insensitive.
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // §4.2.1 item 5: |Sec-WebSocket-Key|, base64 that decodes to 16 bytes.
    let key = headers
        .first("sec-websocket-key")
        .ok_or(HandshakeError::MissingKey)?;
    let key = trim_ascii(key);
    if !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    // §4.2.1 item 6: |Sec-WebSocket-Version| 13; §4.2.2: else 426 with the versions we speak.
    match headers.first("sec-websocket-version").map(trim_ascii) {
        None => Err(HandshakeError::MissingVersion),
        Some(b"13") => Ok(key),
        Some(_) => Err(HandshakeError::UnsupportedVersion),
    }
}

/// §4.2.2 item 5: the start of every `101` answer, up to the accept value.
pub(super) const SWITCHING_PROTOCOLS: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";

/// The header slots `httparse` filled.
struct Slots<'a, 'b>(&'a [httparse::Header<'b>]);

impl Headers for Slots<'_, '_> {
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .any(|h| has_token(h.value, token))
    }
}

/// A valid upgrade request read from a buffer of the caller's, ready to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade<'b> {
    path: &'b str,
    head_len: usize,
    accept: AcceptKey,
}

impl<'b> Upgrade<'b> {
    /// The request target, e.g. `/ws/alice?x=1`.
    pub fn path(&self) -> &'b str {
        self.path
    }

    /// How many bytes of the buffer the head took; what follows (a first frame) is the
    /// session's.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_value(&self) -> &str {
        self.accept.as_str()
    }

    /// Write the `101 Switching Protocols` response (§4.2.2 item 5, no subprotocol, no
    /// extension) to `out`; its length, or `None` if `out` is shorter than 129 bytes.
    pub fn write_response(&self, out: &mut [u8]) -> Option<usize> {
        let parts: [&[u8]; 3] = [
            SWITCHING_PROTOCOLS,
            self.accept.as_str().as_bytes(),
            b"\r\n\r\n",
        ];
        write_parts(&parts, out)
    }
}

/// Write the response that refuses an upgrade with `error`'s status to `out`: a status line
/// without a reason phrase (which RFC 9112 §4 allows), `Sec-WebSocket-Version: 13` for a 426
/// (RFC 6455 §4.2.2: the versions we speak), no body, `Connection: close`. Its length, or
/// `None` if `out` is shorter than 96 bytes (the longest is 80).
///
/// ```
/// use wsloop::handshake::{fixed, HandshakeError};
/// let mut out = [0u8; 96];
/// let n = fixed::write_refusal(HandshakeError::MissingHost, &mut out).unwrap();
/// assert!(out[..n].starts_with(b"HTTP/1.1 400 \r\n"));
/// ```
pub fn write_refusal(error: HandshakeError, out: &mut [u8]) -> Option<usize> {
    let status = error.status();
    let version: &[u8] = if status == 426 {
        b"Sec-WebSocket-Version: 13\r\n"
    } else {
        b""
    };
    let parts: [&[u8]; 5] = [
        b"HTTP/1.1 ",
        &[
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ],
        b" \r\n",
        version,
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    ];
    write_parts(&parts, out)
}

/// `parts` one after the other at the start of `out`: their length, or `None` if they do not
/// fit.
fn write_parts(parts: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    for part in parts {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    Some(len)
}

/// Read and check the upgrade request at the start of `buf`, using `headers` as the slots
/// for its header lines (their number is the limit: more is [`HandshakeError::TooManyHeaders`]).
///
/// `Ok(None)`: the head is not complete yet; read more into `buf`. When `buf` is full and
/// this is still `Ok(None)`, refuse with [`HandshakeError::HeadersTooLarge`]: the caller's
/// buffer is the limit on a head's size. An error's [`HandshakeError::status`] is the status
/// to answer with.
pub fn accept<'b>(
    buf: &'b [u8],
    headers: &mut [Header<'b>],
) -> Result<Option<Upgrade<'b>>, HandshakeError> {
    let mut request = httparse::Request::new(headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HandshakeError::UnsupportedHttpVersion),
        Err(_) => return Err(HandshakeError::Malformed),
    };
    let (Some(method), Some(path), Some(version)) = (request.method, request.path, request.version)
    else {
        return Err(HandshakeError::Malformed);
    };
    let slots = Slots(request.headers);
    let accept = AcceptKey::for_key(check_upgrade(method, version, &slots)?);
    Ok(Some(Upgrade {
        path,
        head_len,
        accept,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn every_prefix_of_a_request_needs_more_and_the_whole_one_is_accepted() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        for end in 0..REQUEST.len() {
            assert_eq!(accept(&REQUEST[..end], &mut headers), Ok(None), "{end}");
        }
        let upgrade = accept(REQUEST, &mut headers).unwrap().unwrap();
        assert_eq!(upgrade.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut out = [0u8; 128];
        assert_eq!(upgrade.write_response(&mut out), None, "one byte short");
    }

    #[test]
    fn refusals_match_the_allocating_side() {
        let cases: [(&[u8], HandshakeError); 4] = [
            (b"POST / HTTP/1.1\r\n\r\n", HandshakeError::MethodNotAllowed),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                HandshakeError::NotWebSocketUpgrade,
            ),
            (
                b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n",
                HandshakeError::Malformed,
            ),
            (
                b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                HandshakeError::TooManyHeaders,
            ),
        ];
        for (bytes, error) in cases {
            let mut headers = [httparse::EMPTY_HEADER; 2];
            assert_eq!(accept(bytes, &mut headers), Err(error));
            let mut parser = super::super::RequestParser::new(super::super::Limits {
                max_head_bytes: 1024,
                max_headers: 2,
            });
            let allocating = parser
                .push(bytes)
                .and_then(|r| super::super::accept(&r.expect("whole").0));
            assert_eq!(allocating.err(), Some(error));
        }
    }

    #[test]
    fn refusals_carry_their_status_and_fit_in_96_bytes() {
        let mut out = [0u8; 96];
        let n = write_refusal(HandshakeError::UnsupportedVersion, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 426 \r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n"
        );
        let n = write_refusal(HandshakeError::HeadersTooLarge, &mut out).unwrap();
        assert!(out[..n].starts_with(b"HTTP/1.1 431 \r\nContent-Length: 0\r\n"));
        assert_eq!(
            write_refusal(HandshakeError::UnsupportedVersion, &mut out[..79]),
            None
        );
    }
}
