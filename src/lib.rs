//! # wsloop — a WebSocket (RFC 6455) stack you can read in an afternoon
//!
//! The crate has two layers, and the first one never touches a socket.
//!
//! **The protocol core** (`no_std` + `alloc`, always built) turns bytes into events and
//! events into bytes:
//!
//! | module | owns | RFC 6455 |
//! |---|---|---|
//! | [`handshake`] | the HTTP Upgrade, both sides; HTTP error responses | §4 |
//! | [`frame`] | the frame header codec; [`Role`] (who masks) | §5.1, §5.2 |
//! | [`mask`] | XOR masking, client keys | §5.3, §10.3 |
//! | [`utf8`] | incremental UTF-8 validation | §5.6, §8.1 |
//! | [`close`] | close codes and Close payloads | §5.5.1, §7.4 |
//! | [`error`] | protocol errors and the close code answering each | §7.4.1 |
//! | `deflate` | permessage-deflate: negotiation and the per-message codec (feature `deflate`, needs `std`) | RFC 7692 |
//! | `extensions` (private) | the session's one view of the extensions, a no-op without `deflate` | RFC 7692 |
//! | [`session`] | the state machine: reading, fragmentation, control frames, closing | §5, §7 |
//!
//! A module of the core may use the modules above it in this table, never the I/O layer.
//! The core has no clock: timers (handshake, idle, close) belong to the I/O layer, which
//! asks the session when they apply.
//!
//! **The I/O layer** (feature `std`, on by default) drives the core over TCP: a mio
//! event-loop server and a blocking client.
//!
//! | module | owns | feature | RFC 6455 |
//! |---|---|---|---|
//! | `client` | a blocking client over `std::net::TcpStream`, and its timers | `client` | §4.1, §7.1.1 |
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod close;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
mod extensions;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod session;
pub mod utf8;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "server")]
pub mod server;

pub use close::{CloseCode, CloseFrame};
pub use error::ProtocolError;
pub use handshake::HandshakeError;
pub use session::{Event, Message, Role, Session, SessionLimits};

#[cfg(feature = "client")]
pub use client::Client;
#[cfg(feature = "server")]
pub use server::Server;

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(all(doctest, feature = "server"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
