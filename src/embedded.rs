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
//! | `embedded.rs` | [`Error`], `Pump`: all the sans-I/O steps (the handshake's answer, what to write, when to read, what to return) |
//! | `blocking.rs` | [`blocking::WebSocket`]: `Pump`'s steps as `embedded_io::{Read, Write}` calls |
//! | `asynch.rs` | [`asynch::WebSocket`]: the same, as `embedded_io_async::{Read, Write}` calls |

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
    /// Read into [`Pump::space`], then tell [`Pump::filled`].
    Read,
    /// Return this to the caller: an event; `None` when the connection is over (close the
    /// stream); the peer's violation, once its failing Close was written.
    Return(Result<Option<FixedEvent>, ProtocolError>),
}

/// A session and its receive buffer: the steps of a connection, without I/O, that the
/// blocking and the async adapters both take.
struct Pump<'b, K> {
    session: FixedSession<K>,
    rx: &'b mut [u8],
    start: usize,
    end: usize,
    /// The peer's violation, reported once the output (the failing Close) is written.
    failure: Option<ProtocolError>,
}

impl<'b, K: MaskKeys> Pump<'b, K> {
    fn new(session: FixedSession<K>, rx: &'b mut [u8]) -> Self {
        Pump {
            session,
            rx,
            start: 0,
            end: 0,
            failure: None,
        }
    }

    /// The next step towards an event; its payload goes to `chunk`.
    fn step(&mut self, chunk: &mut [u8]) -> Step {
        loop {
            if !self.session.output().is_empty() {
                return Step::Write;
            }
            if let Some(error) = self.failure.take() {
                return Step::Return(Err(error));
            }
            if self.session.should_close_tcp() {
                return Step::Return(Ok(None));
            }
            if self.start == self.end {
                return Step::Read;
            }
            match self.session.read(&self.rx[self.start..self.end], chunk) {
                Ok(read) => {
                    self.start += read.used;
                    if let Some(event) = read.event {
                        return Step::Return(Ok(Some(event)));
                    }
                }
                Err(error) => self.failure = Some(error),
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

    /// The space to read the upgrade request into, after what was read of it so far.
    fn head_space(&mut self) -> &mut [u8] {
        &mut self.rx[self.end..]
    }

    /// `n` more bytes of the upgrade request were read into [`Pump::head_space`] (0: the
    /// stream ended). `None`: read more. Else the answer (the `101`, or the refusal's
    /// status) is in `out`: write its `len` bytes (0: none), then the handshake is over with
    /// this outcome. On success the frames after the head stay in the buffer for the session.
    fn head_read(&mut self, n: usize, out: &mut [u8; ANSWER_LEN]) -> Option<HeadAnswer> {
        if n == 0 {
            // The client left before finishing its request.
            return Some(HeadAnswer {
                len: 0,
                outcome: Err(HandshakeError::Malformed),
            });
        }
        self.end = (self.end + n).min(self.rx.len());
        let mut headers = [fixed::EMPTY_HEADER; 32];
        let error = match fixed::accept(&self.rx[..self.end], &mut headers) {
            Ok(Some(upgrade)) => {
                self.start = upgrade.head_len();
                return Some(HeadAnswer {
                    len: upgrade.write_response(out).unwrap_or(0),
                    outcome: Ok(()),
                });
            }
            Ok(None) if self.end < self.rx.len() => return None,
            // The buffer is the limit on a head's size (RFC 6585 §5: 431).
            Ok(None) => HandshakeError::HeadersTooLarge,
            Err(error) => error,
        };
        Some(HeadAnswer {
            len: fixed::write_refusal(error, out).unwrap_or(0),
            outcome: Err(error),
        })
    }
}

/// The room for the handshake's answer: any `101` without subprotocol or extensions (129
/// bytes) and any refusal (at most 80).
const ANSWER_LEN: usize = 160;

/// How the opening handshake ended: `len` bytes of answer to write, then `outcome`.
struct HeadAnswer {
    len: usize,
    outcome: Result<(), HandshakeError>,
}
