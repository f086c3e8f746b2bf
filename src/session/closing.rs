//! Where a connection stands in the closing handshake (RFC 6455 §7), as one enum whose
//! variants are the states the RFC names, and the transitions between them.
//!
//! Owns: [`Closing`] (the Close frames sent and received, and whether the connection was
//! failed) and the coarse public [`State`]. Must not: write frames or read input; the session
//! does, and records here what it did.
//!
//! ```text
//!              our Close                peer's Close
//!   Open ─────────────────▶ CloseSent ─────────────────▶ Both
//!    │  peer's Close                        our Close     ▲
//!    └────────────────────▶ CloseReceived ────────────────┘
//!
//!   Open, CloseSent ── violation, events pending ──▶ Failing ── events taken ──▶ Failed
//!   Open, CloseSent ── violation, no event pending ──▶ Failed
//!   any state but Failing ── the caller fails ──▶ Failed
//!   (Failing stays Failing: its Close still waits for the events before the violation)
//! ```
//!
//! Whether the TCP stream has ended is not a state of the handshake: it can end in any of
//! them, and the session keeps that fact beside this one.

use core::mem;

use crate::error::ProtocolError;
use crate::frame::Role;

/// The coarse state of the connection (§4.1 "_The WebSocket Connection is Established_",
/// §7.1.3 "_The WebSocket Closing Handshake is Started_", §7.1.4 "_Closed_").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// A Close was sent or received, or the connection was failed.
    Closing,
    /// The TCP stream has ended.
    Closed,
}

/// The closing handshake (§7).
///
/// `C` is what is kept of a Close frame: the whole [`CloseFrame`](crate::CloseFrame) in
/// `Session`, the code alone in `FixedSession`, which has no allocator for a reason.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Closing<C> {
    /// No Close either way: messages flow both ways.
    #[default]
    Open,
    /// We sent a Close (§7.1.2) and read on until the peer's.
    CloseSent(C),
    /// The peer's Close arrived (§7.1.3); nothing more is read (§5.5.1).
    CloseReceived(C),
    /// Both Close frames have passed: the closing handshake is complete (§7.1.1).
    Both {
        /// Ours.
        sent: C,
        /// The peer's.
        received: C,
    },
    /// The peer broke the protocol (§7.1.7): nothing more is read, and `close` is sent once
    /// the events decoded before the violation have been taken (so that answers to them
    /// still precede it), unless a Close was sent already. `Session`'s only: `FixedSession`
    /// hands over one event at a time, so none is pending when it fails.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    Failing {
        /// The rule the peer broke.
        error: ProtocolError,
        /// The Close we sent before, if any.
        sent: Option<C>,
        /// The Close that fails the connection.
        close: C,
    },
    /// The connection was failed (§7.1.7): nothing more is read, and the I/O layer closes the
    /// TCP connection.
    Failed {
        /// The rule the peer broke; `None` when the caller failed the connection.
        error: Option<ProtocolError>,
        /// The Close we sent, if any.
        sent: Option<C>,
        /// The peer's Close, if it came first.
        received: Option<C>,
    },
}

impl<C> Closing<C> {
    /// The Close we sent, if any.
    pub(super) fn sent(&self) -> Option<&C> {
        match self {
            Closing::CloseSent(sent) | Closing::Both { sent, .. } => Some(sent),
            Closing::Failing { sent, .. } | Closing::Failed { sent, .. } => sent.as_ref(),
            Closing::Open | Closing::CloseReceived(_) => None,
        }
    }

    /// The Close the peer sent, if any.
    pub(super) fn received(&self) -> Option<&C> {
        match self {
            Closing::CloseReceived(received) | Closing::Both { received, .. } => Some(received),
            Closing::Failed { received, .. } => received.as_ref(),
            Closing::Open | Closing::CloseSent(_) | Closing::Failing { .. } => None,
        }
    }

    /// The protocol error that failed the connection, if the peer broke a rule.
    pub(super) fn failure(&self) -> Option<ProtocolError> {
        match self {
            Closing::Failing { error, .. } => Some(*error),
            Closing::Failed { error, .. } => *error,
            _ => None,
        }
    }

    /// Whether the I/O layer should close TCP once the output is written, for the `role` end
    /// (`eof`: the peer's side of TCP has ended).
    ///
    /// RFC 6455 §7.1.1: after both Close frames, the server closes the TCP connection first
    /// (so that it, not the client, holds TIME_WAIT); a client waits for the server to do it,
    /// until its close timeout. A failed connection (§7.1.7) and one whose peer already closed
    /// TCP are closed at once, whatever the role.
    pub(super) fn should_close_tcp(&self, role: Role, eof: bool) -> bool {
        match self {
            _ if eof => true,
            Closing::Failed { .. } => true,
            Closing::Both { .. } => role == Role::Server,
            _ => false,
        }
    }

    /// Whether the peer's frames are still read: until its Close (§5.5.1: the Close is the
    /// last frame an endpoint sends) or a failure (§7.1.7: discard everything).
    pub(super) fn reading(&self) -> bool {
        matches!(self, Closing::Open | Closing::CloseSent(_))
    }

    /// We wrote `close`. Callers write at most one Close (they check [`Closing::sent`]).
    pub(super) fn record_sent(&mut self, close: C) {
        *self = match mem::take(self) {
            Closing::Open => Closing::CloseSent(close),
            Closing::CloseReceived(received) => Closing::Both {
                sent: close,
                received,
            },
            Closing::Failing {
                error,
                sent: None,
                close: failing,
            } => Closing::Failing {
                error,
                sent: Some(close),
                close: failing,
            },
            Closing::Failed {
                error,
                sent: None,
                received,
            } => Closing::Failed {
                error,
                sent: Some(close),
                received,
            },
            // A Close was sent already: it stays the one we sent.
            state => state,
        };
    }

    /// The peer's Close arrived.
    pub(super) fn record_received(&mut self, close: C) {
        *self = match mem::take(self) {
            Closing::Open => Closing::CloseReceived(close),
            Closing::CloseSent(sent) => Closing::Both {
                sent,
                received: close,
            },
            // Not reading any more: no Close can arrive.
            state => state,
        };
    }

    /// Stop reading for good (§7.1.7), after a violation (`error`) or because the caller
    /// failed the connection (`None`). A Failing connection stays Failing: its Close still
    /// waits for the events before the violation.
    pub(super) fn fail(&mut self, error: Option<ProtocolError>) {
        *self = match mem::take(self) {
            Closing::Open => Closing::Failed {
                error,
                sent: None,
                received: None,
            },
            Closing::CloseSent(sent) => Closing::Failed {
                error,
                sent: Some(sent),
                received: None,
            },
            Closing::CloseReceived(received) => Closing::Failed {
                error,
                sent: None,
                received: Some(received),
            },
            Closing::Both { sent, received } => Closing::Failed {
                error,
                sent: Some(sent),
                received: Some(received),
            },
            Closing::Failed {
                error: before,
                sent,
                received,
            } => Closing::Failed {
                error: before.or(error),
                sent,
                received,
            },
            failing @ Closing::Failing { .. } => failing,
        };
    }

    /// The peer broke `error` while events decoded before it are still to be taken: stop
    /// reading now, send `close` once they are.
    #[cfg(feature = "alloc")]
    pub(super) fn fail_after_events(&mut self, error: ProtocolError, close: C) {
        *self = match mem::take(self) {
            Closing::Open => Closing::Failing {
                error,
                sent: None,
                close,
            },
            Closing::CloseSent(sent) => Closing::Failing {
                error,
                sent: Some(sent),
                close,
            },
            // Not reading any more: no violation can be found.
            state => state,
        };
    }

    /// Every event before the violation has been taken: Failing becomes Failed, and its
    /// Close is returned, to be written unless one was sent already.
    #[cfg(feature = "alloc")]
    pub(super) fn take_failing_close(&mut self) -> Option<C> {
        match mem::take(self) {
            Closing::Failing { error, sent, close } => {
                *self = Closing::Failed {
                    error: Some(error),
                    sent,
                    received: None,
                };
                Some(close)
            }
            state => {
                *self = state;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::{CloseCode, CloseFrame};

    fn close(code: u16) -> CloseFrame {
        CloseFrame::new(CloseCode::from(code), "")
    }

    #[test]
    fn the_handshake_completes_in_either_order() {
        let mut a: Closing<CloseFrame> = Closing::Open;
        a.record_sent(close(1000));
        assert!(a.reading());
        a.record_received(close(1001));
        assert_eq!(a.sent(), Some(&close(1000)));
        assert_eq!(a.received(), Some(&close(1001)));
        assert!(!a.reading() && matches!(a, Closing::Both { .. }));

        let mut b = Closing::Open;
        b.record_received(close(1001));
        assert!(!b.reading() && matches!(b, Closing::CloseReceived(_)));
        b.record_sent(close(1000));
        assert_eq!(a, b);
    }

    #[test]
    fn a_failing_close_waits_and_keeps_the_error() {
        let mut c = Closing::Open;
        c.fail_after_events(ProtocolError::InvalidUtf8, close(1007));
        assert!(!c.reading() && matches!(c, Closing::Failing { .. }));
        assert_eq!(c.failure(), Some(ProtocolError::InvalidUtf8));
        // The caller failing meanwhile does not drop the pending Close.
        c.fail(None);
        assert_eq!(c.take_failing_close(), Some(close(1007)));
        assert!(matches!(c, Closing::Failed { .. }));
        assert_eq!(c.failure(), Some(ProtocolError::InvalidUtf8));
        assert_eq!(c.take_failing_close(), None);
    }

    #[test]
    fn only_the_first_close_sent_counts() {
        let mut c = Closing::Open;
        c.record_sent(close(1000));
        c.record_sent(close(1001));
        assert_eq!(c.sent(), Some(&close(1000)));
        c.fail(None);
        assert_eq!(c.sent(), Some(&close(1000)));
        assert_eq!(c.failure(), None);
    }
}
