//! Why a client's opening handshake failed (RFC 6455 §4.1): a URL it cannot use, or a
//! server's response it must refuse.
//!
//! Owns: [`ClientHandshakeError`], its text and its source. Must not: decide anything (the
//! URL parser and the client's checks do).

use core::fmt;

/// Why a URL or a server's handshake response was not accepted by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// The URL is not `ws://host[:port][/path]` (`wss://` needs TLS, which this crate lacks).
    InvalidUrl(&'static str),
    /// The response head is not valid HTTP/1.1.
    Malformed,
    /// The response head is longer than the limit.
    HeadersTooLarge,
    /// §4.1: any status other than 101 means the handshake did not complete.
    UnexpectedStatus(u16),
    /// §4.1: the response lacks `Upgrade: websocket`.
    MissingUpgrade,
    /// §4.1: the response lacks `Connection: Upgrade`.
    MissingConnectionUpgrade,
    /// §4.1: `Sec-WebSocket-Accept` is missing or not the value computed from our key.
    InvalidAccept,
    /// §4.1: the server selected a subprotocol we did not offer.
    UnrequestedProtocol,
    /// §4.1: the server selected an extension although we offered none.
    UnrequestedExtension,
    /// RFC 7692 §7.1: the server's answer to our permessage-deflate offer is not one we can
    /// accept (feature `deflate`).
    #[cfg(feature = "deflate")]
    Deflate(crate::deflate::negotiate::NegotiationError),
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientHandshakeError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ClientHandshakeError::Malformed => f.write_str("malformed HTTP response"),
            ClientHandshakeError::HeadersTooLarge => f.write_str("response headers too large"),
            ClientHandshakeError::UnexpectedStatus(s) => {
                write!(f, "server answered {s} instead of 101")
            }
            ClientHandshakeError::MissingUpgrade => f.write_str("missing Upgrade: websocket"),
            ClientHandshakeError::MissingConnectionUpgrade => {
                f.write_str("missing Connection: Upgrade")
            }
            ClientHandshakeError::InvalidAccept => f.write_str("wrong Sec-WebSocket-Accept"),
            ClientHandshakeError::UnrequestedProtocol => {
                f.write_str("server selected a subprotocol that was not offered")
            }
            ClientHandshakeError::UnrequestedExtension => {
                f.write_str("server selected an extension that was not offered")
            }
            #[cfg(feature = "deflate")]
            ClientHandshakeError::Deflate(e) => {
                write!(f, "server's permessage-deflate answer refused: {e}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientHandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "deflate")]
            ClientHandshakeError::Deflate(e) => Some(e),
            _ => None,
        }
    }
}
