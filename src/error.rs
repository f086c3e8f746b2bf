//! Errors of the framing layer: every way a peer can break RFC 6455 after the handshake.
//!
//! Owns: the error taxonomy and its one-to-one mapping to the close code that answers it.
//! Handshake failures live in [`crate::handshake`] (they map to HTTP statuses instead).

use core::fmt;

use crate::close::{CloseCode, InvalidClosePayload};

/// The peer broke the protocol; the session answers with a Close carrying
/// [`ProtocolError::close_code`] and stops reading (§7.1.7 "Fail the WebSocket Connection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// §5.2: RSV1-3 set while no extension defines them.
    ReservedBitsSet,
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    ReservedOpcode(u8),
    /// §5.2: the most significant bit of a 64-bit payload length must be 0.
    InvalidPayloadLength,
    /// §5.1: a client must mask every frame it sends.
    UnmaskedFrameFromClient,
    /// §5.1: a server must not mask any frame it sends.
    MaskedFrameFromServer,
    /// §5.5: control frames carry at most 125 bytes of payload.
    ControlFrameTooLong,
    /// §5.5: control frames must not be fragmented.
    FragmentedControlFrame,
    /// §5.4: a continuation frame without a message in progress.
    UnexpectedContinuation,
    /// §5.4: a new Text or Binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// §5.5.1: a Close body of exactly one byte.
    InvalidCloseFrame,
    /// §7.4: a close status code that must not appear on the wire.
    InvalidCloseCode(u16),
    /// §8.1: a text message or a close reason that is not UTF-8.
    InvalidUtf8,
    /// A frame larger than the configured maximum frame size.
    FrameTooLarge,
    /// A message larger than the configured maximum message size (after inflating, for a
    /// compressed one).
    MessageTooLarge,
    /// RFC 7692 §6.2: a compressed message whose DEFLATE data cannot be inflated.
    InvalidCompressedData,
    /// Not the peer's fault: the message would not fit in the memory the I/O layer can spare
    /// for it now ([`Session::set_receive_allowance`](crate::session::Session::set_receive_allowance),
    /// e.g. a server's memory budget). Answered with 1013 Try Again Later (registered in the
    /// IANA registry of §11.7), not 1009: the message is within the limits and may succeed
    /// later.
    Overloaded,
}

impl ProtocolError {
    /// The close code that answers this error (§7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            // §7.4.1: 1007 is for data "not consistent with the type of the message"; DEFLATE
            // data that does not inflate is that for a compressed message.
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::InvalidFramePayloadData
            }
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => {
                CloseCode::MessageTooBig
            }
            ProtocolError::Overloaded => CloseCode::TryAgainLater,
            _ => CloseCode::ProtocolError,
        }
    }

    /// A short reason for the Close frame and the log.
    pub fn reason(self) -> &'static str {
        match self {
            ProtocolError::ReservedBitsSet => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::InvalidPayloadLength => "invalid payload length",
            ProtocolError::UnmaskedFrameFromClient => "unmasked frame from client",
            ProtocolError::MaskedFrameFromServer => "masked frame from server",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::InvalidCloseFrame => "invalid close frame",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::MessageTooLarge => "message too large",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
            ProtocolError::Overloaded => "server overloaded, try again later",
        }
    }
}

impl From<InvalidClosePayload> for ProtocolError {
    fn from(error: InvalidClosePayload) -> Self {
        match error {
            InvalidClosePayload::OneByte => ProtocolError::InvalidCloseFrame,
            InvalidClosePayload::Code(code) => ProtocolError::InvalidCloseCode(code),
            InvalidClosePayload::Utf8 => ProtocolError::InvalidUtf8,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_close_codes() {
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::InvalidFramePayloadData
        );
        assert_eq!(
            ProtocolError::MessageTooLarge.close_code(),
            CloseCode::MessageTooBig
        );
        assert_eq!(
            ProtocolError::FrameTooLarge.close_code(),
            CloseCode::MessageTooBig
        );
        assert_eq!(
            ProtocolError::ReservedOpcode(3).close_code(),
            CloseCode::ProtocolError
        );
        assert_eq!(
            ProtocolError::Overloaded.close_code(),
            CloseCode::TryAgainLater
        );
        assert!(ProtocolError::ReservedBitsSet.reason().len() <= crate::close::MAX_REASON_LEN);
        assert!(ProtocolError::Overloaded.reason().len() <= crate::close::MAX_REASON_LEN);
    }

    #[test]
    fn invalid_close_payloads_map_to_their_errors() {
        let cases = [
            (&[0x03][..], ProtocolError::InvalidCloseFrame),
            (
                &1005u16.to_be_bytes()[..],
                ProtocolError::InvalidCloseCode(1005),
            ),
            (
                &[0x03, 0xe8, 0xce, 0xba, 0xff][..],
                ProtocolError::InvalidUtf8,
            ),
        ];
        for (payload, error) in cases {
            let parsed = crate::close::CloseFrame::parse(payload).map_err(ProtocolError::from);
            assert_eq!(parsed, Err(error));
        }
    }
}
