//! # wsloop — a WebSocket (RFC 6455) stack you can read in an afternoon
//!
//! # What to use
//!
//! - **A server** ([`server`], feature `server`, on by default): a mio event loop that keeps
//!   one session per sid, calls your [`server::Handler`] (`on_open`, `on_message`,
//!   `on_close`, and `on_request` for plain HTTP) and lets any thread push to one session or
//!   to all through a [`server::Handle`]. Start from [`Server::builder`].
//! - **A client** ([`client`], feature `client`, on by default): a blocking client over
//!   `std::net::TcpStream`: [`Client::connect`], then `send_text` / `recv` / `close`.
//! - **Your own I/O** (the protocol core, always built, `no_std` + `alloc`): a
//!   [`Session`] takes the bytes you read and gives back [`Event`]s and the bytes to write;
//!   [`handshake`] reads and answers the HTTP Upgrade. Nothing in the core touches a socket
//!   or a clock, so it runs under any event loop, in tests, and in a fuzzer.
//! - **No allocator at all** (default features off): [`FixedSession`] applies the same
//!   rules as [`Session`] but delivers payloads in chunks into a buffer of yours (125 bytes
//!   or more), and [`handshake::fixed`] reads and answers the Upgrade in buffers of yours;
//!   `embedded` (features `embedded-io`, `embedded-io-async`) runs both over the byte-stream
//!   traits of the embedded world.
//!
//! ```no_run
//! use wsloop::server::{Context, Handler};
//! use wsloop::{Message, Server};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
//!         ctx.send(sid, message); // every client of ws://127.0.0.1:8080/ws/{sid} is echoed
//!     }
//! }
//! Server::builder().bind("127.0.0.1:8080").build().unwrap().run(Echo).unwrap();
//! ```
//!
//! # Guides
//!
//! Short pages per task, each with code that compiles and checks itself ([`guide`]):
//! [authenticate an upgrade](guide::authenticate_an_upgrade),
//! [keep per-session state](guide::per_session_state),
//! [rooms with topics](guide::rooms_with_topics), [run beside tokio](guide::beside_tokio),
//! [deploy behind a TLS-terminating proxy](guide::behind_a_proxy), and
//! [coming from a Java `@ServerEndpoint`](guide::coming_from_java).
//!
//! Features: `server` and `client` (default, both need `std`); `std` (error traits, OS
//! randomness for client masking keys; implies `alloc`); `alloc` ([`Session`], the
//! allocating handshake); `deflate` (permessage-deflate, RFC 7692, with
//! `flate2`); `tls` (https/wss for the server, `wss://` for the client, with rustls in the
//! I/O layer only; see `server::TlsConfig` and `client::ClientTls`); `fuzzing` (the server
//! over in-memory pipes, for fuzz targets only). Every limit
//! is a documented field of [`server::ServerConfig`], [`SessionLimits`] or
//! [`handshake::Limits`], with its default and why.
//!
//! # For maintainers: the layers
//!
//! The crate has two layers, and the first one never touches a socket. `ARCHITECTURE.md`
//! at the repository root follows one message through both, file by file.
//!
//! **The protocol core** turns bytes into events and events into bytes:
//!
//! | module | owns | RFC 6455 |
//! |---|---|---|
//! | [`close`] | close codes and Close payloads | §5.5.1, §7.4 |
//! | [`error`] | protocol errors and the close code answering each | §7.4.1 |
//! | [`frame`] | the frame header codec; [`Role`] (who masks) | §5.1, §5.2 |
//! | [`mask`] | XOR masking, client keys | §5.3, §10.3 |
//! | [`utf8`] | incremental UTF-8 validation | §5.6, §8.1 |
//! | `deflate` | permessage-deflate: negotiation and the per-message codec (feature `deflate`, needs `std`) | RFC 7692 |
//! | `extensions` (private) | the session's one view of the extensions, a no-op without `deflate` | RFC 7692 |
//! | [`handshake`] | the HTTP Upgrade, both sides (`http`, `server`, `client`, `url`); HTTP error responses | §4 |
//! | [`session`] | the state machine: reading, the frame rules, fragmentation, control frames, closing | §5, §7 |
//!
//! A module of the core may use the modules above it in this table, never one below it and
//! never the I/O layer (`.ci/layers.py` checks that the imports have no cycle). The core
//! has no clock: timers (handshake, idle, close) belong to the I/O layer, which asks the
//! session when they apply.
//!
//! **The I/O layer** (feature `std`, or the `embedded-io` ones) drives the core over a stream:
//!
//! | module | owns | feature | RFC 6455 |
//! |---|---|---|---|
//! | [`client`] | a blocking client over `std::net::TcpStream`, and its timers | `client` | §4.1, §7.1.1 |
//! | [`server`] | the mio event loop(s): accept, read, dispatch to the handler, write, timers, shutdown; plain HTTP; handles for other threads | `server` | §4.2, §7.1.1 |
//! | `embedded` | [`FixedSession`] and the allocator-free handshake over `embedded-io` / `embedded-io-async` streams | `embedded-io`, `embedded-io-async` | §4.2 |
//!
//! Each module's page has the table of its own files.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod close;
#[cfg(feature = "deflate")]
pub mod deflate;
#[cfg(any(feature = "embedded-io", feature = "embedded-io-async"))]
pub mod embedded;
pub mod error;
#[cfg(feature = "alloc")]
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

#[cfg(all(feature = "server", feature = "client"))]
pub mod guide;

pub use close::CloseCode;
#[cfg(feature = "alloc")]
pub use close::CloseFrame;
pub use error::ProtocolError;
pub use handshake::HandshakeError;
#[cfg(feature = "alloc")]
pub use session::{Event, Message, Session};
pub use session::{FixedSession, Role, SessionLimits};

#[cfg(feature = "client")]
pub use client::Client;
#[cfg(feature = "server")]
pub use server::Server;

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(all(doctest, feature = "server"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
