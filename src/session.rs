//! The WebSocket session: the whole protocol after the handshake as a state machine, for
//! either role, with no I/O and no clock (sans-I/O).
//!
//! Owns: reading frames from bytes in any chunking (§5.2), unmasking (§5.3), reassembling
//! fragmented messages (§5.4), control frames (§5.5), UTF-8 checks on text (§5.6, §8.1), size
//! limits, the closing handshake (§5.5.1, §7), and encoding what we send.
//! Must not: touch sockets, threads or clocks, or know about other sessions.
//!
//! The caller feeds bytes with [`Session::receive`] (and [`Session::receive_eof`] when the
//! TCP stream ends), takes [`Event`]s with [`Session::next_event`], and writes
//! [`Session::output`] to the peer. Replies the protocol requires (a Pong for each Ping, the
//! Close that answers a Close, the Close that fails the connection) are written to the output
//! by the session itself; the first two when their event is taken.
//!
//! **Timers are the I/O layer's job.** The session says when one should run:
//! [`Session::awaiting_close`] is true from the moment we send a Close until the TCP stream
//! ends (arm the close-handshake timeout), and [`Session::should_close_tcp`] says when to close
//! the socket after flushing the output. Heartbeats are a Ping sent by the caller.
//!
//! ```
//! use wsloop::session::{SessionLimits, Event, Message, Role, Session};
//! let mut server = Session::new(Role::Server, SessionLimits::default());
//! // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).unwrap();
//! assert_eq!(server.next_event(), Some(Event::Message(Message::Text("Hello".into()))));
//! server.send_text("Hi").unwrap();
//! assert_eq!(server.output(), b"\x81\x02Hi");
//! ```
//!
//! The files, each one concern, in dependency order (each uses only those before it):
//!
//! | file | owns |
//! |---|---|
//! | `limits.rs` | [`SessionLimits`] |
//! | `message.rs` | [`Message`], [`Event`] |
//! | `send_error.rs` | [`SendError`] |
//! | `rules.rs` | [`check_header`]: the frame rules that depend on the receiver (§5.1-§5.5) |
//! | `header.rs` | a frame header cut off by the end of an input (§5.2) |
//! | `closing.rs` | the closing handshake's states (§7), [`State`] |
//! | `recycle.rs` | the message buffers an I/O layer lends the reader |
//! | `read.rs` | the input path: headers, payloads, messages |
//! | `write.rs` | the output path: masking, fragmenting, compressing; [`SendError`] |
//! | `machine.rs` | [`Session`]: the public API, events, replies, failing |
//! | `fixed.rs` | [`FixedSession`]: the same rules without an allocator, payloads in chunks |
//!
//! Without the `alloc` feature only `limits`, `send_error`, `rules`, `header`, `closing` and
//! `fixed` are built: everything [`FixedSession`] needs, and all that it shares with
//! [`Session`].

mod closing;
mod fixed;
mod header;
mod limits;
#[cfg(feature = "alloc")]
mod machine;
#[cfg(feature = "alloc")]
mod message;
#[cfg(feature = "alloc")]
mod read;
#[cfg(feature = "alloc")]
mod recycle;
mod rules;
mod send_error;
#[cfg(feature = "alloc")]
mod write;

pub use crate::frame::Role;
pub use closing::State;
pub use fixed::{FixedEvent, FixedSession, Read, ServerOnly, MIN_CHUNK};
pub use limits::SessionLimits;
#[cfg(feature = "alloc")]
pub use machine::Session;
#[cfg(feature = "alloc")]
pub use message::{Event, Message};
#[cfg(feature = "alloc")]
pub(crate) use recycle::Recycle;
pub use rules::{check_header, PartialMessage, Receiver};
pub use send_error::SendError;

#[cfg(test)]
mod tests;
