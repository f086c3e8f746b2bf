//! The frame rules that depend on the receiving end and its state (RFC 6455 §5.1-§5.5, RFC
//! 7692 §6), as one pure function, [`check_header`]: the session applies it to every header
//! it reads (both `Session` and `FixedSession`), and tools that explain traffic
//! (`examples/explain`) call the same function.
//!
//! Owns: which headers a receiver must refuse, in which order, judged from the header alone,
//! before any of its payload is read; and the order of the data frames an end sends (§5.4). Must not: hold state, read payloads, or decide what
//! happens next (the session fails the connection with the error returned).
//! The rules no state can satisfy (reserved opcodes, the 64-bit length's top bit) are
//! [`FrameHeader::decode`]'s.

use crate::error::ProtocolError;
use crate::frame::{DataOpcode, FrameHeader, Opcode, Role, RSV1};

use super::limits::SessionLimits;
use super::send_error::SendError;

/// What the receiving end knows when a frame header arrives: all that the rules need besides
/// the header itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receiver {
    /// The role of the end that receives the frame (§5.1: a server receives masked frames, a
    /// client unmasked ones).
    pub role: Role,
    /// The receiver's size limits.
    pub limits: SessionLimits,
    /// Whether a negotiated extension defines RSV1 (permessage-deflate, RFC 7692 §6).
    pub rsv1_allowed: bool,
    /// The fragmented data message in progress, if any (§5.4).
    pub message: Option<PartialMessage>,
}

/// A data message whose first frames have arrived but not its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialMessage {
    /// Payload bytes received so far.
    pub len: u64,
    /// The message is compressed: its size is checked as it inflates, not from headers.
    pub compressed: bool,
}

/// The rule `header` breaks when `receiver` receives it, checked in this order: RSV bits
/// (§5.2, RFC 7692 §6), masking direction (§5.1), control frames' size and FIN (§5.5),
/// fragmentation order (§5.4), then the frame and message size limits (answered with 1009).
///
/// ```
/// use wsloop::frame::{DataOpcode, FrameHeader, Opcode, Role};
/// use wsloop::session::{check_header, Receiver, SessionLimits};
/// use wsloop::ProtocolError;
/// let server = Receiver {
///     role: Role::Server,
///     limits: SessionLimits::default(),
///     rsv1_allowed: false,
///     message: None,
/// };
/// // An unmasked frame, as a server would send it: a server must refuse it (§5.1).
/// let header = FrameHeader::new(true, Opcode::Data(DataOpcode::Text), 5);
/// assert_eq!(check_header(&header, &server), Err(ProtocolError::UnmaskedFrameFromClient));
/// let masked = FrameHeader { mask: Some([1, 2, 3, 4]), ..header };
/// assert_eq!(check_header(&masked, &server), Ok(()));
/// ```
pub fn check_header(header: &FrameHeader, receiver: &Receiver) -> Result<(), ProtocolError> {
    let h = header;
    // RFC 6455 §5.2: RSV1-3 MUST be 0 unless a negotiated extension defines them. The only
    // one we know is permessage-deflate, which defines RSV1 (RFC 7692 §6): set on the first
    // frame of a compressed data message only, never on continuation or control frames (§6.1).
    let first_data_frame = matches!(
        h.opcode,
        Opcode::Data(DataOpcode::Text | DataOpcode::Binary)
    );
    let rsv1 = h.rsv == RSV1;
    if h.rsv != 0 && !(rsv1 && first_data_frame && receiver.rsv1_allowed) {
        return Err(ProtocolError::ReservedBitsSet);
    }
    // RFC 6455 §5.1: a server MUST close on an unmasked frame from a client, and a client
    // MUST close on a masked frame from a server.
    match (receiver.role, h.mask.is_some()) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrameFromClient),
        (Role::Client, true) => return Err(ProtocolError::MaskedFrameFromServer),
        _ => {}
    }
    match h.opcode {
        Opcode::Control(_) => {
            // RFC 6455 §5.5: control frames are at most 125 bytes and MUST NOT be
            // fragmented. They may arrive in the middle of a fragmented message.
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        Opcode::Data(op) => {
            let message = match (op, receiver.message) {
                // RFC 6455 §5.4: a continuation frame continues a message in progress...
                (DataOpcode::Continuation, None) => {
                    return Err(ProtocolError::UnexpectedContinuation)
                }
                // ...and a new Text/Binary frame may not interrupt one.
                (DataOpcode::Text | DataOpcode::Binary, Some(_)) => {
                    return Err(ProtocolError::ExpectedContinuation)
                }
                (DataOpcode::Continuation, Some(message)) => message,
                // A new message: compressed when RSV1 marks it.
                (_, None) => PartialMessage {
                    len: 0,
                    compressed: rsv1,
                },
            };
            // Limits, from the header alone: nothing of an oversized frame is buffered.
            if h.payload_len > receiver.limits.max_frame_size as u64 {
                return Err(ProtocolError::FrameTooLarge);
            }
            // A compressed message is measured as it inflates.
            if !message.compressed
                && h.payload_len + message.len > receiver.limits.max_message_size as u64
            {
                return Err(ProtocolError::MessageTooLarge);
            }
        }
    }
    Ok(())
}

/// The order of the data frames we send (§5.4): may a frame of `kind` follow, while a
/// fragmented message of ours is (`sending`) or is not in progress? If so, the result says
/// whether one is in progress after it (a frame without `fin` starts or continues one).
pub(super) fn next_fragment(kind: DataOpcode, fin: bool, sending: bool) -> Result<bool, SendError> {
    // RFC 6455 §5.4: the fragments of one message are not interleaved with another's, and a
    // continuation continues a message.
    match (kind, sending) {
        (DataOpcode::Continuation, false) | (DataOpcode::Text | DataOpcode::Binary, true) => {
            Err(SendError::FragmentationOrder)
        }
        _ => Ok(!fin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(rsv1_allowed: bool, message: Option<PartialMessage>) -> Receiver {
        Receiver {
            role: Role::Client,
            limits: SessionLimits {
                max_frame_size: 100,
                max_message_size: 150,
            },
            rsv1_allowed,
            message,
        }
    }

    fn header(rsv: u8, opcode: Opcode, fin: bool, payload_len: u64) -> FrameHeader {
        FrameHeader {
            rsv,
            ..FrameHeader::new(fin, opcode, payload_len)
        }
    }

    const TEXT: Opcode = Opcode::Data(DataOpcode::Text);
    const MORE: Opcode = Opcode::Data(DataOpcode::Continuation);

    #[test]
    fn rsv1_marks_only_the_first_frame_of_a_message_and_only_when_negotiated() {
        let first = header(RSV1, TEXT, false, 10);
        assert_eq!(check_header(&first, &receiver(true, None)), Ok(()));
        assert_eq!(
            check_header(&first, &receiver(false, None)),
            Err(ProtocolError::ReservedBitsSet)
        );
        let partial = Some(PartialMessage {
            len: 10,
            compressed: true,
        });
        assert_eq!(
            check_header(&header(RSV1, MORE, true, 10), &receiver(true, partial)),
            Err(ProtocolError::ReservedBitsSet)
        );
        let ping = header(
            RSV1,
            Opcode::Control(crate::frame::ControlOpcode::Ping),
            true,
            0,
        );
        assert_eq!(
            check_header(&ping, &receiver(true, None)),
            Err(ProtocolError::ReservedBitsSet)
        );
    }

    #[test]
    fn a_compressed_message_is_measured_as_it_inflates_not_from_its_headers() {
        let plain = Some(PartialMessage {
            len: 100,
            compressed: false,
        });
        let compressed = Some(PartialMessage {
            len: 100,
            compressed: true,
        });
        let last = header(0, MORE, true, 100);
        assert_eq!(
            check_header(&last, &receiver(true, plain)),
            Err(ProtocolError::MessageTooLarge)
        );
        assert_eq!(check_header(&last, &receiver(true, compressed)), Ok(()));
        // The frame limit applies to the compressed payload all the same.
        assert_eq!(
            check_header(&header(0, MORE, true, 101), &receiver(true, compressed)),
            Err(ProtocolError::FrameTooLarge)
        );
    }
}
