//! Why something could not be sent, by either session.
//!
//! Owns: [`SendError`]. Must not: decide when sending is allowed (the sessions do).

use core::fmt;

/// Why something could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// §5.5.1: after sending a Close, an endpoint MUST NOT send more data frames.
    Closing,
    /// §5.5: control frames carry at most 125 bytes.
    ControlFrameTooLong,
    /// §7.4.1: this close code must not be sent.
    InvalidCloseCode,
    /// §5.4: a new message was started while a fragmented one is still being sent, or a
    /// continuation was sent without one.
    FragmentationOrder,
    /// The zero-copy header path is for servers only: a client must mask the payload.
    MaskingRequired,
    /// [`FixedSession`](super::FixedSession) only: the frame does not fit in the caller's
    /// buffer, or the replies waiting in its output leave no room for one more control frame
    /// (write its output first).
    BufferTooSmall,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closing => "the closing handshake has started",
            SendError::ControlFrameTooLong => "control frame payload over 125 bytes",
            SendError::InvalidCloseCode => "this close code may not be sent",
            SendError::FragmentationOrder => "fragments out of order",
            SendError::MaskingRequired => "a client must mask its frames",
            SendError::BufferTooSmall => "the frame does not fit in the buffer",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}
