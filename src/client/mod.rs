//! The blocking client: a [`Session`] in [`Role::Client`] driven over a
//! `std::net::TcpStream` (feature `client`).
//!
//! Owns: connecting (name resolution, TCP connect with a timeout, `TCP_NODELAY`), the opening
//! handshake on the wire (§4.1, with [`ClientHandshake`] and a fresh nonce), moving bytes
//! between the socket and the session, and the timers the session asks for: the read, write
//! and connect timeouts, and the close timeout of §7.1.1.
//! Must not: make protocol rules of its own. Masking, fragmentation, control frames, UTF-8,
//! limits, close codes, which Close answers which and when the connection fails all live in
//! the [`Session`]; the client only writes what the session outputs and reports what the
//! session says.
//!
//! **The closing handshake (§7.1.1, §7.1.2).** The server closes the TCP connection first, so
//! that it, not the client, holds `TIME_WAIT`: after both Close frames the client waits for the
//! server to close TCP, up to [`ClientConfig::close_timeout`], and only then drops its socket.
//! [`Client::close`] does the whole handshake; when the server starts it, [`Client::recv`]
//! answers (the session writes the answer), waits the same way, and reports
//! [`ClientError::Closed`]. A failed connection (§7.1.7) sends its Close and waits the same way,
//! so that the server reads the Close before the connection goes.
//!
//! **Replies in order.** The session writes a Pong or an answering Close when the caller takes
//! the Ping or Close event, and the client sends it before returning the event; so an echo of
//! a message that came just before the server's Close still goes out before our Close. The
//! session likewise holds back the Close that *fails* the connection until the events decoded
//! before the bad frame have been taken: [`Client::recv_event`] hands those out first, then
//! reports the error, so a message that arrived in the same packet as a bad frame is still
//! delivered, and can be answered.
//!
//! **Timeouts** surface as [`ClientError::Io`] with kind `WouldBlock` or `TimedOut`
//! ([`ClientError::is_timeout`]); they leave the connection usable, and a message cut by one
//! is continued by the next [`Client::recv`]. Every other I/O error ends the connection.
//!
//! **`wss://`** (feature `tls`): the same over TLS (rustls, `stream.rs` and `tls.rs`); the
//! session sees only plaintext. The server's certificate is verified against
//! `ClientConfig::tls` (default: the usual public roots), for the URL's host (sent as SNI);
//! a certificate that does not verify fails [`Client::connect`] with `ClientError::Tls`.
//!
//! [`Session`]: crate::session::Session
//! [`Role::Client`]: crate::session::Role::Client
//! [`ClientHandshake`]: crate::handshake::ClientHandshake

mod builder;
mod config;
mod connection;
mod error;
mod stream;
#[cfg(feature = "tls")]
mod tls;

pub use builder::ClientBuilder;
pub use config::ClientConfig;
pub use connection::Client;
pub use error::ClientError;
#[cfg(feature = "tls")]
pub use tls::ClientTls;

#[cfg(test)]
mod tests;
