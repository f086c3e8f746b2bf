//! Why an operation of the client did not succeed.
//!
//! Owns: [`ClientError`], its text, its source and the conversions into it, and which I/O
//! errors are timeouts. Must not: decide when a connection ends (the connection does).

use std::fmt;
use std::io;

use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::handshake::ClientHandshakeError;
use crate::session::SendError;

/// Why an operation of the [`Client`](super::Client) did not succeed.
#[derive(Debug)]
pub enum ClientError {
    /// A socket error. Kinds `WouldBlock` and `TimedOut` are timeouts, which leave the
    /// connection usable; any other error ended it.
    Io(io::Error),
    /// The URL is not a valid `ws://` URL, or the server's handshake response was refused
    /// (§4.1).
    Handshake(ClientHandshakeError),
    /// The server broke the protocol; the connection was failed with the Close that answers
    /// the error (§7.1.7).
    Protocol(ProtocolError),
    /// The connection is closed after a closing handshake: the normal end. The frame is the
    /// server's Close.
    Closed(CloseFrame),
    /// The TCP connection ended without a closing handshake (1006, §7.1.5), or an earlier
    /// I/O error ended it.
    ConnectionLost,
    /// The session refused to send this (e.g. a control payload over 125 bytes, a close code
    /// that may not be sent, or data after our Close).
    Send(SendError),
}

impl ClientError {
    /// Whether this is a read or write timeout, after which the connection is still usable.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Io(e) if is_timeout(e))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            ClientError::Protocol(e) => write!(f, "the server broke the protocol: {e}"),
            ClientError::Closed(frame) if frame.reason.is_empty() => {
                write!(f, "the connection is closed ({})", frame.code)
            }
            ClientError::Closed(frame) => {
                write!(
                    f,
                    "the connection is closed ({}: {})",
                    frame.code, frame.reason
                )
            }
            ClientError::ConnectionLost => {
                f.write_str("the connection ended without a closing handshake")
            }
            ClientError::Send(e) => write!(f, "cannot send: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Handshake(e) => Some(e),
            ClientError::Protocol(e) => Some(e),
            ClientError::Send(e) => Some(e),
            ClientError::Closed(_) | ClientError::ConnectionLost => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        ClientError::Io(error)
    }
}

impl From<ClientHandshakeError> for ClientError {
    fn from(error: ClientHandshakeError) -> Self {
        ClientError::Handshake(error)
    }
}

impl From<ProtocolError> for ClientError {
    fn from(error: ProtocolError) -> Self {
        ClientError::Protocol(error)
    }
}

impl From<SendError> for ClientError {
    fn from(error: SendError) -> Self {
        ClientError::Send(error)
    }
}

/// Whether an I/O error is a read or write timeout, which leaves the connection usable.
pub(super) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
