//! Close codes and the Close frame's payload (RFC 6455 §5.5.1, §7.4).
//!
//! Owns: the status-code type (named after the IANA "WebSocket Close Code Number Registry"),
//! which codes may appear on the wire, and the parsing and building of a Close payload.
//! Must not: decide when to close; that is the session's job. Nor know the other protocol
//! errors: a bad payload is an [`InvalidClosePayload`], which the `error` module turns into a
//! `ProtocolError` (the dependency goes one way, from `error` to `close`).

#[cfg(feature = "alloc")]
use alloc::string::String;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

/// A close status code (§7.4.1, IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose for which the connection was established has been fulfilled.
    NormalClosure,
    /// 1001: an endpoint is going away (server shutdown, browser leaving the page).
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a data type the endpoint cannot accept (e.g. binary for a text-only endpoint).
    UnsupportedData,
    /// 1005: no status code was present. Never sent (§7.4.1): it only reports an empty Close.
    NoStatusReceived,
    /// 1006: the connection closed without a Close frame. Never sent (§7.4.1).
    AbnormalClosure,
    /// 1007: a message's data was not consistent with its type (e.g. invalid UTF-8 in text).
    InvalidFramePayloadData,
    /// 1008: a message violated the endpoint's policy.
    PolicyViolation,
    /// 1009: a message too big to process.
    MessageTooBig,
    /// 1010: (client) the server did not negotiate a required extension.
    MandatoryExtension,
    /// 1011: (server) an unexpected condition prevented the request from being fulfilled.
    InternalError,
    /// 1012: the service is restarting.
    ServiceRestart,
    /// 1013: try again later (temporary overload).
    TryAgainLater,
    /// 1014: a gateway or proxy got an invalid response from upstream.
    BadGateway,
    /// 1015: the TLS handshake failed. Never sent (§7.4.1).
    TlsHandshake,
    /// 3000-3999: registered with IANA by libraries, frameworks and applications.
    Registered(u16),
    /// 4000-4999: private use, by agreement between the two applications.
    Private(u16),
    /// Any other number: reserved or unassigned, never valid on the wire.
    Reserved(u16),
}

impl CloseCode {
    /// Whether this code may appear in a Close frame on the wire.
    ///
    /// RFC 6455 §7.4.1 and §7.4.2: 1005, 1006 and 1015 are reserved for reporting and MUST NOT
    /// be sent; 0-999, 1004 and 1016-2999 are reserved or unassigned. That leaves 1000-1003,
    /// 1007-1014 and 3000-4999.
    pub fn is_sendable(self) -> bool {
        !matches!(
            self,
            CloseCode::NoStatusReceived
                | CloseCode::AbnormalClosure
                | CloseCode::TlsHandshake
                | CloseCode::Reserved(_)
        )
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::NormalClosure,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1003 => CloseCode::UnsupportedData,
            1005 => CloseCode::NoStatusReceived,
            1006 => CloseCode::AbnormalClosure,
            1007 => CloseCode::InvalidFramePayloadData,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::MessageTooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            1014 => CloseCode::BadGateway,
            1015 => CloseCode::TlsHandshake,
            3000..=3999 => CloseCode::Registered(code),
            4000..=4999 => CloseCode::Private(code),
            _ => CloseCode::Reserved(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::NormalClosure => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::UnsupportedData => 1003,
            CloseCode::NoStatusReceived => 1005,
            CloseCode::AbnormalClosure => 1006,
            CloseCode::InvalidFramePayloadData => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::TlsHandshake => 1015,
            CloseCode::Registered(code) | CloseCode::Private(code) | CloseCode::Reserved(code) => {
                code
            }
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// The largest close reason: a control frame carries at most 125 bytes (§5.5), two of which
/// are the status code.
pub const MAX_REASON_LEN: usize = 123;

/// Why a received Close payload is invalid. Each case fails the connection; the matching
/// `ProtocolError` is `InvalidCloseFrame`, `InvalidCloseCode`
/// or `InvalidUtf8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidClosePayload {
    /// §5.5.1: a body of exactly one byte (a status code takes two).
    OneByte,
    /// §7.4.1, §7.4.2: a status code that must not appear on the wire.
    Code(u16),
    /// §5.5.1, §8.1: a reason that is not UTF-8.
    Utf8,
}

/// What a Close frame said: a status code and a UTF-8 reason.
///
/// ```
/// use wsloop::close::{close_payload, CloseFrame, InvalidClosePayload};
/// use wsloop::{CloseCode, ProtocolError};
/// let payload = close_payload(CloseCode::GoingAway, "restart").unwrap();
/// assert_eq!(&payload[..2], &1001u16.to_be_bytes());
/// assert_eq!(CloseFrame::parse(&payload).unwrap().reason, "restart");
/// // 1005 is for reporting only: receiving it is a protocol error (§7.4.1).
/// let error = CloseFrame::parse(&1005u16.to_be_bytes()).unwrap_err();
/// assert_eq!(error, InvalidClosePayload::Code(1005));
/// assert_eq!(ProtocolError::from(error), ProtocolError::InvalidCloseCode(1005));
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; [`CloseCode::NoStatusReceived`] when the frame had no payload.
    pub code: CloseCode,
    /// The reason, possibly empty; meant for debugging, not for display to users (§7.1.6).
    pub reason: String,
}

#[cfg(feature = "alloc")]
impl CloseFrame {
    /// A close with a code and a reason.
    pub fn new(code: CloseCode, reason: &str) -> Self {
        CloseFrame {
            code,
            reason: String::from(reason),
        }
    }

    /// Parse the payload of a received Close frame (already unmasked): [`parse_close`],
    /// with the reason copied.
    pub fn parse(payload: &[u8]) -> Result<CloseFrame, InvalidClosePayload> {
        let (code, reason) = parse_close(payload)?;
        Ok(CloseFrame {
            code,
            reason: String::from(reason),
        })
    }
}

/// Parse the payload of a received Close frame (already unmasked) into its code and its
/// reason, borrowed from `payload`; needs no allocator.
///
/// ```
/// use wsloop::close::{parse_close, InvalidClosePayload};
/// use wsloop::CloseCode;
/// assert_eq!(parse_close(b"\x03\xe8bye"), Ok((CloseCode::NormalClosure, "bye")));
/// assert_eq!(parse_close(b""), Ok((CloseCode::NoStatusReceived, "")));
/// assert_eq!(parse_close(b"\x03"), Err(InvalidClosePayload::OneByte));
/// ```
pub fn parse_close(payload: &[u8]) -> Result<(CloseCode, &str), InvalidClosePayload> {
    match payload {
        // §5.5.1: the body is optional; no body means "no status code" (reported as 1005).
        [] => Ok((CloseCode::NoStatusReceived, "")),
        // §5.5.1: if there is a body, its first two bytes are the status code, so a single
        // byte cannot be a valid body.
        [_] => Err(InvalidClosePayload::OneByte),
        [hi, lo, reason @ ..] => {
            let raw = u16::from_be_bytes([*hi, *lo]);
            let code = CloseCode::from(raw);
            // §7.4.1/§7.4.2: a code outside the sendable ranges is a protocol error.
            if !code.is_sendable() {
                return Err(InvalidClosePayload::Code(raw));
            }
            // §5.5.1: the reason is UTF-8; §8.1: invalid UTF-8 fails the connection (1007).
            let reason = core::str::from_utf8(reason).map_err(|_| InvalidClosePayload::Utf8)?;
            Ok((code, reason))
        }
    }
}

/// Build a Close payload: the code in network byte order followed by the reason, or nothing
/// for [`CloseCode::NoStatusReceived`] (an empty Close). The reason is cut to
/// [`MAX_REASON_LEN`] bytes at a character boundary. [`write_close_payload`], into a `Vec`.
///
/// Returns `None` for a code that must never be sent (§7.4.1).
#[cfg(feature = "alloc")]
pub fn close_payload(code: CloseCode, reason: &str) -> Option<Vec<u8>> {
    let mut payload = [0u8; 125];
    let len = write_close_payload(code, reason, &mut payload)?;
    Some(payload[..len].to_vec())
}

/// [`close_payload`] without an allocator: the payload is written to `out` (a control frame's
/// payload is at most 125 bytes, §5.5), and its length returned; `None` for a code that must
/// never be sent (§7.4.1).
///
/// ```
/// use wsloop::close::write_close_payload;
/// use wsloop::CloseCode;
/// let mut out = [0u8; 125];
/// assert_eq!(write_close_payload(CloseCode::GoingAway, "bye", &mut out), Some(5));
/// assert_eq!(&out[..5], b"\x03\xe9bye");
/// assert_eq!(write_close_payload(CloseCode::AbnormalClosure, "", &mut out), None);
/// ```
pub fn write_close_payload(code: CloseCode, reason: &str, out: &mut [u8; 125]) -> Option<usize> {
    if code == CloseCode::NoStatusReceived {
        return Some(0);
    }
    if !code.is_sendable() {
        return None;
    }
    let reason = truncate_reason(reason);
    out[..2].copy_from_slice(&u16::from(code).to_be_bytes());
    out[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    Some(2 + reason.len())
}

/// `reason` cut to at most [`MAX_REASON_LEN`] bytes without splitting a character.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_allowed_on_the_wire_follow_section_7_4() {
        for raw in 0..=5999u16 {
            let allowed = matches!(raw, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode::from(raw).is_sendable(), allowed, "code {raw}");
            assert_eq!(u16::from(CloseCode::from(raw)), raw);
        }
    }

    #[test]
    fn empty_payload_is_no_status() {
        let close = CloseFrame::parse(&[]).unwrap();
        assert_eq!(close.code, CloseCode::NoStatusReceived);
        assert_eq!(close.reason, "");
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(InvalidClosePayload::OneByte)
        );
    }

    #[test]
    fn invalid_codes_are_protocol_errors() {
        for raw in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let payload = raw.to_be_bytes();
            assert_eq!(
                CloseFrame::parse(&payload),
                Err(InvalidClosePayload::Code(raw))
            );
        }
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xce, 0xba, 0xff]),
            Err(InvalidClosePayload::Utf8)
        );
        let ok = CloseFrame::parse(&[0x03, 0xe8, 0xce, 0xba]).unwrap();
        assert_eq!(ok.code, CloseCode::NormalClosure);
        assert_eq!(ok.reason, "κ");
    }

    #[test]
    fn payload_round_trips_and_truncates_the_reason_at_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let payload = close_payload(CloseCode::Private(4000), &long).unwrap();
        assert!(payload.len() <= 125);
        let parsed = CloseFrame::parse(&payload).unwrap();
        assert_eq!(parsed.code, CloseCode::Private(4000));
        assert_eq!(parsed.reason.len(), 122); // 61 two-byte characters
        assert_eq!(
            close_payload(CloseCode::NoStatusReceived, "x"),
            Some(Vec::new())
        );
        assert_eq!(close_payload(CloseCode::AbnormalClosure, ""), None);
        assert_eq!(close_payload(CloseCode::Reserved(2000), ""), None);
    }
}
