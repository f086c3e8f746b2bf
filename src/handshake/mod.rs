//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade, both sides.
//!
//! Owns, one file each: the HTTP/1.1 heads and responses (`http`, which knows nothing of
//! WebSocket; field-value helpers in `fields`), the key and its answer (`key`, §1.3), the
//! server's side (`server`: validating a client's upgrade request, §4.2.1, and answering it,
//! §4.2.2; its refusals in `server_error`), the same without an allocator ([`fixed`], whose
//! checks `server` shares), the client's side (`client`: building the request and checking
//! the answer, §4.1; its errors in `client_error`) and `ws://` URLs (`url`, §3). This file
//! only re-exports them. Without the `alloc` feature only `fields`, `fixed`, `key` and
//! `server_error` are built.
//! Must not: do I/O, decide routing (which path is a WebSocket endpoint), or read bodies.
//! Extensions (§9): this module carries `Sec-WebSocket-Extensions` both ways; what the values
//! mean is decided by `deflate::negotiate` (feature `deflate`), the only extension we speak.
//!
//! Server side: feed bytes to a [`RequestParser`] until it yields a [`Request`]; then
//! [`accept`] checks it and gives an [`Accept`] whose [`Accept::response`] (or
//! [`Accept::response_with`], to add an extension) is the `101` answer, or a
//! [`HandshakeError`] whose [`HandshakeError::response`] is the refusal.
//!
//! ```
//! use wsloop::handshake::{accept, Limits, RequestParser};
//! let mut parser = RequestParser::new(Limits::default());
//! let bytes = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! let (request, used) = parser.push(bytes).unwrap().expect("a whole head");
//! assert_eq!(used, bytes.len());
//! let upgrade = accept(&request).unwrap();
//! assert_eq!(upgrade.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```
//!
//! Client side: [`Url::parse`] the address, [`ClientHandshake::new`] gives the request to
//! send, and [`ClientHandshake::push`] takes the response's bytes until it yields the
//! accepted [`Response`], or a [`ClientHandshakeError`].

#[cfg(feature = "alloc")]
mod client;
#[cfg(feature = "alloc")]
mod client_error;
mod fields;
pub mod fixed;
#[cfg(feature = "alloc")]
mod http;
mod key;
#[cfg(feature = "alloc")]
mod server;
mod server_error;
#[cfg(feature = "alloc")]
mod url;

#[cfg(feature = "alloc")]
pub use client::{ClientHandshake, Response};
#[cfg(feature = "alloc")]
pub use client_error::ClientHandshakeError;
#[cfg(feature = "alloc")]
pub use http::{http_response, invalid_response_part, reason_phrase, Limits};
#[cfg(feature = "alloc")]
pub use key::accept_key;
pub use key::{AcceptKey, GUID};
#[cfg(feature = "alloc")]
pub use server::{accept, Accept, Request, RequestParser};
pub use server_error::HandshakeError;
#[cfg(feature = "alloc")]
pub use url::Url;
