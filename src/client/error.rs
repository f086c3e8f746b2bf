//! Why an operation of the client did not succeed.
//!
//! Owns: [`ClientError`], its text, its source and the conversions into it, which I/O
//! errors are timeouts, and the time left before a deadline. Must not: decide when a connection ends (the connection does).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

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
    /// The TLS handshake of a `wss://` connection failed (feature `tls`): most often the
    /// server's certificate does not verify (unknown issuer, expired, not valid for the
    /// URL's host), with rustls' reason.
    #[cfg(feature = "tls")]
    Tls(rustls::Error),
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
            #[cfg(feature = "tls")]
            ClientError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
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
            #[cfg(feature = "tls")]
            ClientError::Tls(e) => Some(e),
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

#[cfg(feature = "tls")]
impl From<rustls::Error> for ClientError {
    fn from(error: rustls::Error) -> Self {
        ClientError::Tls(error)
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

/// The time left before `deadline` (`None`: no deadline), or a `TimedOut` error once it has
/// passed.
pub(super) fn time_left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connect timeout passed before the handshake completed",
        ))
    } else {
        Ok(Some(left))
    }
}
