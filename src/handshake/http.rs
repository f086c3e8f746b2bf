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

    /// Whether the header name at `span` is `name` (case-insensitive, RFC 9110 §5.1), compared
    /// as bytes: a handshake looks up about ten headers, each against every name.
    fn is_named(&self, span: &Range<usize>, name: &str) -> bool {
        self.raw[span.clone()].eq_ignore_ascii_case(name.as_bytes())
    }

    /// The first header with this name (case-insensitive).
    pub(super) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.is_named(n, name))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// Every header with this name, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| self.is_named(n, name))
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
        self.all(name).flat_map(super::fields::tokens)
    }

    /// Whether the token list of the headers called `name` includes `token`, case-insensitive.
    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The length of the body from every `Content-Length` field (RFC 9110 §8.6, RFC 9112
    /// §6.3 item 5): `Ok(None)` without one, `Ok(Some(n))` when every value, in every field
    /// and every element of a comma list, is the same valid number, else `Err(())`.
    pub(super) fn content_length(&self) -> Result<Option<usize>, ()> {
        let mut length = None;
        for value in self.all("content-length") {
            // RFC 9112 §6.3 item 5: a list of identical values may be taken as one value;
            // differing or invalid values are unrecoverable (request smuggling otherwise).
            for element in value.split(|&b| b == b',') {
                let n = parse_length(trim_ows(element)).ok_or(())?;
                if length.is_some_and(|l| l != n) {
                    return Err(());
                }
                length = Some(n);
            }
        }
        Ok(length)
    }

    /// The value of every header called `name`, in order, as text: a value that is not UTF-8
    /// keeps a replacement character, which no token grammar accepts.
    pub(super) fn values_lossy(&self, name: &str) -> Vec<String> {
        self.all(name)
            .map(|v| String::from(String::from_utf8_lossy(v)))
            .collect()
    }
}

/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`. No sign, no inner space, not empty; a leading
/// zero is refused too (`005`), so that no two spellings of one length exist for a proxy and
/// us to read differently. `None` also when the number does not fit in `usize`.
fn parse_length(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// RFC 9110 §5.6.3: `bytes` without optional whitespace (SP, HTAB) at either end.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
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

/// RFC 9110 §5.6.2: `token = 1*tchar`, the grammar of a field name.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: a field value is visible characters, SP, HTAB and obs-text (bytes from
/// 0x80), never CR, LF, NUL or another control character, and does not start or end with
/// whitespace.
fn is_field_value(text: &str) -> bool {
    let bytes = text.as_bytes();
    let ok = |b: &u8| *b == b' ' || *b == b'\t' || (0x21..=0x7e).contains(b) || *b >= 0x80;
    bytes.iter().all(ok)
        && !bytes.first().is_some_and(|b| *b == b' ' || *b == b'\t')
        && !bytes.last().is_some_and(|b| *b == b' ' || *b == b'\t')
}

/// The first part of a response that [`http_response`] would refuse to write: the name of a
/// header whose name is not a token or whose value is not a valid field value (RFC 9110
/// §5.5, §5.6.2), `"Content-Type"` for a bad content type, or `"status"` for a status code
/// that is not three digits (RFC 9110 §15). `None` when all of it may be sent.
pub fn invalid_response_part<'a>(
    status: u16,
    headers: &[(&'a str, &'a str)],
    content_type: &str,
) -> Option<&'a str> {
    if !(100..=999).contains(&status) {
        return Some("status");
    }
    if let Some((name, _)) = headers
        .iter()
        .find(|(name, value)| !is_token(name) || !is_field_value(value))
    {
        return Some(name);
    }
    if !is_field_value(content_type) {
        return Some("Content-Type");
    }
    None
}

/// A complete HTTP/1.1 response that closes the connection after it.
///
/// Nothing invalid reaches the wire: when [`invalid_response_part`] finds a header name
/// that is not a token, a value (or content type) with CR, LF, NUL or another control
/// character, or a status that is not three digits, the answer is a plain
/// `500 Internal Server Error` instead. A CR LF in a value would otherwise let whoever
/// chose the value add headers or a whole second response (response splitting).
pub fn http_response(
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    if let Some(part) = invalid_response_part(status, headers, content_type) {
        log::error!(
            "a {status} response with an invalid {part:?} (a control character in a value, a \
             name that is not a token, or a bad status); sending 500 instead"
        );
        return write_response(
            500,
            &[],
            "text/plain; charset=utf-8",
            b"500 Internal Server Error\n",
        );
    }
    write_response(status, headers, content_type, body)
}

/// The bytes of a response whose parts have been checked.
fn write_response(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Head {
        let mut reader = HeadReader::new(Limits::default());
        let (head, _, _) = reader
            .push::<RequestLine>(text.as_bytes())
            .unwrap()
            .unwrap();
        head
    }

    fn length(headers: &str) -> Result<Option<usize>, ()> {
        request(&format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n")).content_length()
    }

    #[test]
    fn content_length_is_strictly_one_number() {
        assert_eq!(length(""), Ok(None));
        assert_eq!(length("Content-Length: 5\r\n"), Ok(Some(5)));
        assert_eq!(length("Content-Length: 0\r\n"), Ok(Some(0)));
        assert_eq!(length("Content-Length:  42 \r\n"), Ok(Some(42)));
        // RFC 9110 §8.6: 1*DIGIT, nothing else.
        for bad in [
            "+5", "-5", "005", "00", "5 5", "5a", "0x5", "", " ", "5.0", "\u{b9}",
        ] {
            assert_eq!(
                length(&format!("Content-Length: {bad}\r\n")),
                Err(()),
                "{bad:?}"
            );
        }
        // Past usize::MAX.
        let huge = format!("Content-Length: {}0\r\n", usize::MAX);
        assert_eq!(length(&huge), Err(()));
        assert_eq!(
            length(&format!("Content-Length: {}\r\n", usize::MAX)),
            Ok(Some(usize::MAX))
        );
    }

    #[test]
    fn several_content_lengths_must_all_agree() {
        // RFC 9112 §6.3 item 5: identical values are one value; differing ones are an error.
        assert_eq!(
            length("Content-Length: 5\r\nContent-Length: 5\r\n"),
            Ok(Some(5))
        );
        assert_eq!(length("Content-Length: 5, 5\r\n"), Ok(Some(5)));
        assert_eq!(
            length("Content-Length: 5\r\nContent-Length: 6\r\n"),
            Err(())
        );
        assert_eq!(length("Content-Length: 5, 6\r\n"), Err(()));
        assert_eq!(length("Content-Length: 5,\r\n"), Err(()));
        assert_eq!(
            length("Content-Length: 5\r\ncontent-length: 05\r\n"),
            Err(())
        );
    }

    #[test]
    fn header_names_must_be_tokens_and_values_visible_text() {
        fn ok<'a>(h: &[(&'a str, &'a str)]) -> Option<&'a str> {
            invalid_response_part(200, h, "text/plain")
        }
        assert_eq!(ok(&[("X-Ok", "a b\tc é")]), None);
        assert_eq!(ok(&[("X-Empty", "")]), None);
        assert_eq!(
            ok(&[("X-Ok", "1"), ("X-Split", "a\r\nSet-Cookie: x")]),
            Some("X-Split")
        );
        assert_eq!(ok(&[("X-Lf", "a\nb")]), Some("X-Lf"));
        assert_eq!(ok(&[("X-Nul", "a\0b")]), Some("X-Nul"));
        assert_eq!(ok(&[("X-Del", "a\x7fb")]), Some("X-Del"));
        assert_eq!(ok(&[("X-Esc", "\x1b[31m")]), Some("X-Esc"));
        assert_eq!(ok(&[("X-Lead", " a")]), Some("X-Lead"));
        assert_eq!(ok(&[("Bad Name", "a")]), Some("Bad Name"));
        assert_eq!(ok(&[("Bad:Name", "a")]), Some("Bad:Name"));
        assert_eq!(ok(&[("", "a")]), Some(""));
        assert_eq!(
            invalid_response_part(200, &[], "text/plain\r\nX-Evil: 1"),
            Some("Content-Type")
        );
        assert_eq!(
            invalid_response_part(1000, &[], "text/plain"),
            Some("status")
        );
        assert_eq!(invalid_response_part(99, &[], "text/plain"), Some("status"));
    }

    #[test]
    fn a_response_with_an_invalid_part_becomes_a_500() {
        let good = http_response(200, &[("X-A", "1")], "text/plain", b"hi");
        assert!(good.starts_with(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n"));
        let bad = http_response(200, &[("X-A", "1\r\nX-Evil: 1")], "text/plain", b"hi");
        let text = String::from_utf8(bad).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert!(!text.contains("Evil"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n500 Internal Server Error\n"),
            "{text}"
        );
    }
}
