//! [`FixedSession`] over the byte-stream traits of the embedded world: `embedded-io` (feature
//! `embedded-io`, [`blocking`]) and `embedded-io-async` (feature `embedded-io-async`,
//! [`asynch`]). Both need no allocator.
//!
//! Owns: the receive buffer between reads, answering the opening handshake from it
//! (`handshake::fixed`, RFC 6455 §4.2), and the order of writes (the session's replies
//! before the caller's frames, §5.5). Must not: have protocol rules of its own (the session
//! and the handshake have them) or a clock.
//!
//! | file | owns |
//! |---|---|
//! | `embedded.rs` | [`Error`], `Pump`: the sans-I/O steps both adapters take |
//! | `blocking.rs` | [`blocking::WebSocket`] over `embedded_io::{Read, Write}` |
//! | `asynch.rs` | [`asynch::WebSocket`] over `embedded_io_async::{Read, Write}` |

#[cfg(feature = "embedded-io-async")]
pub mod asynch;
#[cfg(feature = "embedded-io")]
pub mod blocking;

use core::fmt;

use crate::error::ProtocolError;
use crate::handshake::{fixed, HandshakeError};
use crate::mask::MaskKeys;
use crate::session::{FixedEvent, FixedSession, SendError};

/// Why a connection over a byte stream ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The stream failed.
    Io(E),
    /// The opening handshake was refused (its response was written).
    Handshake(HandshakeError),
    /// The peer broke the protocol; the Close that says why was written (§7.1.7).
    Protocol(ProtocolError),
    /// What the caller sent could not be sent.
    Send(SendError),
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e:?}"),
            Error::Handshake(e) => write!(f, "handshake refused: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Send(e) => write!(f, "cannot send: {e}"),
        }
    }
}

/// What an adapter must do next.
enum Step {
    /// Write the session's output.
    Write,
    /// Read into the receive buffer.
    Read,
    /// Hand this event to the caller.
    Event(FixedEvent),
    /// The connection is over: close the stream.
    Closed,
    /// The peer broke the protocol: write the output (the failing Close), then report it.
    Failed(ProtocolError),
}

/// A session and its receive buffer: the steps of a connection, without I/O, that the
/// blocking and the async adapters both take.
struct Pump<'b, K> {
    session: FixedSession<K>,
    rx: &'b mut [u8],
    start: usize,
    end: usize,
}

impl<'b, K: MaskKeys> Pump<'b, K> {
    fn new(session: FixedSession<K>, rx: &'b mut [u8]) -> Self {
        Pump {
            session,
            rx,
            start: 0,
            end: 0,
        }
    }

    /// The next step towards an event; its payload goes to `chunk`.
    fn step(&mut self, chunk: &mut [u8]) -> Step {
        loop {
            if !self.session.output().is_empty() {
                return Step::Write;
            }
            if self.session.should_close_tcp() {
                return Step::Closed;
            }
            if self.start == self.end {
                return Step::Read;
            }
            match self.session.read(&self.rx[self.start..self.end], chunk) {
                Ok(read) => {
                    self.start += read.used;
                    if let Some(event) = read.event {
                        return Step::Event(event);
                    }
                }
                Err(error) => return Step::Failed(error),
            }
        }
    }

    /// The space to read into (the buffer is empty when a read is asked for).
    fn space(&mut self) -> &mut [u8] {
        self.start = 0;
        self.end = 0;
        self.rx
    }

    /// `n` bytes were read into [`Pump::space`]; 0: the stream ended.
    fn filled(&mut self, n: usize) {
        if n == 0 {
            self.session.receive_eof();
        }
        self.end = n.min(self.rx.len());
    }

    /// The head read so far, `filled` bytes: the upgrade, or how to refuse it. `Ok(None)`:
    /// read more after it.
    fn accept(
        &mut self,
        filled: usize,
        response: &mut [u8; 160],
    ) -> Result<Option<usize>, HandshakeError> {
        let mut headers = [fixed::EMPTY_HEADER; 32];
        match fixed::accept(&self.rx[..filled], &mut headers)? {
            Some(upgrade) => {
                // The frames after the head stay in the buffer for the session.
                self.start = upgrade.head_len();
                self.end = filled;
                // 160 bytes hold any `101` without subprotocol or extensions (129 bytes).
                Ok(Some(upgrade.write_response(response).unwrap_or(0)))
            }
            // The buffer is the limit on a head's size (RFC 6585 §5: 431).
            None if filled == self.rx.len() => Err(HandshakeError::HeadersTooLarge),
            None => Ok(None),
        }
    }
}
