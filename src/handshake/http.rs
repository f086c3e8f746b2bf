//! The HTTP/1.1 of the opening handshake (RFC 9110, RFC 9112): reading a head, request or
//! response, incrementally, and writing the small responses a server sends.
//!
//! Owns: the bounds on a head ([`Limits`]), collecting its bytes until the empty line that
//! ends it, the one `httparse` call that parses it (request line or status line, then the
//! header lines), header access by name and as token lists (RFC 9110 §5.3, §5.6.1), the
//! reason phrases, and complete `Connection: close` responses.
//! Must not: know about WebSocket (which headers matter and what they must say is the
//! server's and the client's business), do I/O, or read bodies.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

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

/// Why a head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    /// Longer than [`Limits::max_head_bytes`].
    TooLarge,
    /// More header lines than [`Limits::max_headers`].
    TooManyHeaders,
    /// The HTTP version is not 1.x.
    Version,
    /// Not a valid HTTP/1.x head.
    Malformed,
}

/// The first line of a head, which says whether it is a request or a response.
pub(super) trait StartLine: Sized {
    /// Parse `raw`, a complete head, with `httparse`, filling `headers`; returns the line and
    /// how many of `headers` were filled.
    fn parse<'b>(
        raw: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<(Self, usize), HeadError>;
}

/// A request line (RFC 9112 §3): `GET /chat HTTP/1.1`.
#[derive(Debug, Clone)]
pub(super) struct RequestLine {
    /// The method's span in the head.
    pub(super) method: Range<usize>,
    /// The request target's span in the head.
    pub(super) target: Range<usize>,
    /// The minor HTTP version.
    pub(super) version: u8,
}

impl StartLine for RequestLine {
    fn parse<'b>(
        raw: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<(Self, usize), HeadError> {
        let mut request = httparse::Request::new(headers);
        complete(request.parse(raw))?;
        let (Some(method), Some(target), Some(version)) =
            (request.method, request.path, request.version)
        else {
            return Err(HeadError::Malformed);
        };
        let line = RequestLine {
            method: span(raw, method.as_bytes()),
            target: span(raw, target.as_bytes()),
            version,
        };
        Ok((line, request.headers.len()))
    }
}

/// A status line (RFC 9112 §4): `HTTP/1.1 101 Switching Protocols`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StatusLine {
    /// The status code.
    pub(super) code: u16,
}

impl StartLine for StatusLine {
    fn parse<'b>(
        raw: &'b [u8],
        headers: &mut [httparse::Header<'b>],
    ) -> Result<(Self, usize), HeadError> {
        let mut response = httparse::Response::new(headers);
        complete(response.parse(raw))?;
        let code = response.code.ok_or(HeadError::Malformed)?;
        Ok((StatusLine { code }, response.headers.len()))
    }
}

/// What `httparse` said about a head that is already known to be complete.
fn complete(status: httparse::Result<usize>) -> Result<(), HeadError> {
    match status {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        // The empty line was found, so a partial head is a malformed one.
        Ok(httparse::Status::Partial) => Err(HeadError::Malformed),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => Err(HeadError::Version),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Collects bytes until a whole HTTP head (ending in an empty line) has arrived, then parses
/// it.
///
/// Remembers how far it has searched for the end, so a head trickling in byte by byte costs
/// linear time, and hands it to `httparse` once, when it is complete.
#[derive(Debug, Clone)]
pub(super) struct HeadReader {
    buf: Vec<u8>,
    scanned: usize,
    limits: Limits,
}

impl HeadReader {
    pub(super) fn new(limits: Limits) -> Self {
        HeadReader {
            buf: Vec::new(),
            scanned: 0,
            limits,
        }
    }

    /// Feed the next bytes. `Ok(None)`: the head is not complete yet. `Ok(Some((head, line,
    /// used)))`: the head took the first `used` bytes of `data`; the rest of `data` is left
    /// for the caller.
    pub(super) fn push<L: StartLine>(
        &mut self,
        data: &[u8],
    ) -> Result<Option<(Head, L, usize)>, HeadError> {
        let Some(used) = self.collect(data)? else {
            return Ok(None);
        };
        let raw = core::mem::take(&mut self.buf);
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let (line, count) = L::parse(&raw, &mut headers)?;
        let spans = headers[..count]
            .iter()
            .map(|h| (span(&raw, h.name.as_bytes()), span(&raw, h.value)))
            .collect();
        Ok(Some((
            Head {
                raw,
                headers: spans,
            },
            line,
            used,
        )))
    }

    /// Append `data`; once the end of the head is in the buffer, the buffer holds exactly
    /// the head, and the result is how many bytes of `data` belong to it.
    fn collect(&mut self, data: &[u8]) -> Result<Option<usize>, HeadError> {
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
                Ok(Some(end - before))
            }
            None if take < data.len() || self.buf.len() >= self.limits.max_head_bytes => {
                Err(HeadError::TooLarge)
            }
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

/// A parsed head, request or response: the bytes as received, and the spans of each header's
/// name and value in them.
#[derive(Debug, Clone)]
pub(super) struct Head {
    raw: Vec<u8>,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    /// The head as received, start line and headers.
    pub(super) fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The text of a span of the start line.
    pub(super) fn text(&self, range: &Range<usize>) -> &str {
        // Spans point at parts that httparse has already checked to be ASCII tokens.
        core::str::from_utf8(&self.raw[range.clone()]).unwrap_or("")
    }

    /// The first header with this name (case-insensitive).
    pub(super) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.text(n).eq_ignore_ascii_case(name))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// Every header with this name, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| self.text(n).eq_ignore_ascii_case(name))
            .map(move |(_, v)| &self.raw[v.clone()])
    }

    /// Every header, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(move |(n, v)| (self.text(n), &self.raw[v.clone()]))
    }

    /// The comma-separated tokens of every header called `name`, trimmed (RFC 9110 §5.6.1).
    pub(super) fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name)
            .filter_map(|v| core::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
    }

    /// Whether the token list of the headers called `name` includes `token`, case-insensitive.
    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The value of every header called `name`, in order, as text: a value that is not UTF-8
    /// keeps a replacement character, which no token grammar accepts.
    pub(super) fn values_lossy(&self, name: &str) -> Vec<String> {
        self.all(name)
            .map(|v| String::from(String::from_utf8_lossy(v)))
            .collect()
    }
}

/// `bytes` without leading and trailing ASCII whitespace.
pub(super) fn trim_ascii(bytes: &[u8]) -> &[u8] {
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
        421 => "Misdirected Request",
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
