//! What a [`Client`] can be configured with.
//!
//! Owns: [`ClientConfig`] and its defaults. Must not: connect or act on the settings (the
//! connection does).

use std::time::Duration;

use crate::session::SessionLimits;

/// Everything a [`Client`] can be configured with.
///
/// [`Client`]: super::Client
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The subprotocols to offer in `Sec-WebSocket-Protocol`, most preferred first (§4.1).
    /// Default: none.
    pub protocols: Vec<String>,
    /// The limits on what the server may send (message and frame sizes).
    pub session: SessionLimits,
    /// How long [`Client::connect`] may take for the TCP connection and the opening handshake
    /// together; `None` waits forever. Name resolution is not covered: the standard library
    /// cannot bound it. Default 10 s.
    ///
    /// [`Client::connect`]: super::Client::connect
    pub connect_timeout: Option<Duration>,
    /// The socket's read timeout after the handshake: how long one read in [`Client::recv`]
    /// may block; `None` blocks forever. Default `None`.
    ///
    /// [`Client::recv`]: super::Client::recv
    pub read_timeout: Option<Duration>,
    /// The socket's write timeout after the handshake; `None` blocks forever. Default `None`.
    pub write_timeout: Option<Duration>,
    /// §7.1.1: how long to wait, after a Close was sent, for the server's Close and for the
    /// server to close TCP. Default 5 s.
    pub close_timeout: Duration,
    /// permessage-deflate (RFC 7692), feature `deflate`: `Some` offers it with these
    /// parameters ([`crate::deflate::negotiate::offer`]). A server may decline (the
    /// connection is then not compressed, see [`Client::deflate`]); an answer outside the
    /// offer fails the handshake with [`ClientHandshakeError::Deflate`]. Default `None`.
    ///
    /// [`Client::deflate`]: super::Client::deflate
    /// [`ClientHandshakeError::Deflate`]: crate::handshake::ClientHandshakeError::Deflate
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateConfig>,
    /// The roots `wss://` servers are verified against (feature `tls`); `None` uses
    /// [`ClientTls::platform`], the usual public roots. Default `None`.
    ///
    /// [`ClientTls::platform`]: super::ClientTls::platform
    #[cfg(feature = "tls")]
    pub tls: Option<super::tls::ClientTls>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocols: Vec::new(),
            session: SessionLimits::default(),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: None,
            write_timeout: None,
            close_timeout: Duration::from_secs(5),
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
