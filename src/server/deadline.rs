//! The deadline policy: when a connection next needs attention, and what it needs then.
//!
//! Owns: two pure functions of a connection's timing ([`Timing`]), the configuration and the
//! clock: [`deadline`] (the moment to wake up for it) and [`expiry`] (what is due once that
//! moment has passed). Must not: touch sockets, sessions, the timer heap or the handler; the
//! loop's core schedules the wake-ups (`timer.rs` holds them) and acts on the [`Expiry`].
//!
//! The timeouts, from the [`ServerConfig`]: a handshake (or plain HTTP request) must be
//! complete within `handshake_timeout` of the accept; an open session that is silent for
//! `idle_timeout` gets a Ping (RFC 6455 §5.5.2) and then `pong_timeout` to show any sign of
//! life; one message may take at most `message_timeout` from its first byte to its last;
//! and once closing has begun, the peer has `close_timeout` to finish it.

use std::time::Instant;

use super::config::ServerConfig;
use super::connection::{Connection, Phase};

/// Where a connection is, as far as its deadline goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Reading the request: the handshake, or a plain HTTP request and its body.
    Request,
    /// A WebSocket session; `closing` once a Close was sent or received (or the session
    /// failed), so that only the end of TCP is awaited.
    Session { closing: bool },
    /// Nothing more to read that matters: a final answer is flushing before TCP closes.
    Done,
}

/// The timing fields of one connection: all the deadline policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) stage: Stage,
    /// Our side of TCP is shut down; waiting for the peer's FIN.
    pub(crate) draining: bool,
    pub(crate) accepted_at: Instant,
    pub(crate) last_read: Instant,
    /// When we sent a heartbeat Ping that is still unanswered.
    pub(crate) ping_sent_at: Option<Instant>,
    /// When the client started the message it has not finished yet.
    pub(crate) message_since: Option<Instant>,
    /// When we started closing (our Close sent, or TCP write side shut).
    pub(crate) closing_since: Option<Instant>,
}

impl Timing {
    /// The timing of `conn`.
    pub(crate) fn of<S>(conn: &Connection<S>) -> Timing {
        let stage = match &conn.phase {
            Phase::Handshake(_) | Phase::HttpBody { .. } => Stage::Request,
            Phase::WebSocket { session, .. } => Stage::Session {
                closing: session.awaiting_close() || session.should_close_tcp(),
            },
            Phase::Done => Stage::Done,
        };
        Timing {
            stage,
            draining: conn.draining,
            accepted_at: conn.accepted_at,
            last_read: conn.last_read,
            ping_sent_at: conn.ping_sent_at,
            message_since: conn.message_since,
            closing_since: conn.closing_since,
        }
    }
}

/// What an expired connection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The request did not arrive in time: drop the connection.
    HandshakeTimeout,
    /// A message was started and not finished in time: fail the session with 1008.
    MessageTimeout,
    /// Silent for the idle timeout: send a keepalive Ping.
    SendPing,
    /// Silent through a whole ping round: drop the connection.
    NoPong,
    /// Closing took too long (or a final answer found no reader): drop the connection.
    CloseTimeout,
}

/// The moment this connection next needs attention.
pub(crate) fn deadline(t: &Timing, c: &ServerConfig, now: Instant) -> Instant {
    if t.draining {
        return t.closing_since.unwrap_or(t.accepted_at) + c.close_timeout;
    }
    match t.stage {
        Stage::Request => t.accepted_at + c.handshake_timeout,
        Stage::Done => t.closing_since.unwrap_or(t.accepted_at) + c.close_timeout,
        Stage::Session { closing: true } => t.closing_since.unwrap_or(now) + c.close_timeout,
        Stage::Session { closing: false } => {
            let liveness = match t.ping_sent_at {
                Some(sent) => sent + c.pong_timeout,
                None => t.last_read + c.idle_timeout,
            };
            match t.message_since {
                Some(since) => liveness.min(since + c.message_timeout),
                None => liveness,
            }
        }
    }
}

/// What is due for a connection whose [`deadline`] is not after `now`.
pub(crate) fn expiry(t: &Timing, c: &ServerConfig, now: Instant) -> Expiry {
    let closing = t.draining || t.closing_since.is_some();
    match t.stage {
        Stage::Request => Expiry::HandshakeTimeout,
        Stage::Session { .. } if closing => Expiry::CloseTimeout,
        Stage::Session { .. }
            if t.message_since
                .is_some_and(|since| since + c.message_timeout <= now) =>
        {
            Expiry::MessageTimeout
        }
        Stage::Session { .. } if t.ping_sent_at.is_none() => Expiry::SendPing,
        Stage::Session { .. } => Expiry::NoPong,
        Stage::Done => Expiry::CloseTimeout,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// An open, idle session accepted (and last heard from) at `t0`.
    fn open(t0: Instant) -> Timing {
        Timing {
            stage: Stage::Session { closing: false },
            draining: false,
            accepted_at: t0,
            last_read: t0,
            ping_sent_at: None,
            message_since: None,
            closing_since: None,
        }
    }

    /// Both functions at `now`, as the loop calls them: `expiry` only once due.
    fn due(t: &Timing, now: Instant) -> Option<Expiry> {
        let c = ServerConfig::default();
        (deadline(t, &c, now) <= now).then(|| expiry(t, &c, now))
    }

    #[test]
    fn a_handshake_has_the_handshake_timeout_from_the_accept() {
        let t0 = Instant::now();
        let t = Timing {
            stage: Stage::Request,
            ..open(t0)
        };
        let c = ServerConfig::default();
        assert_eq!(deadline(&t, &c, t0), t0 + 10 * S);
        assert_eq!(due(&t, t0 + 10 * S - Duration::from_nanos(1)), None);
        // Exactly at the deadline is expired.
        assert_eq!(due(&t, t0 + 10 * S), Some(Expiry::HandshakeTimeout));
    }

    #[test]
    fn an_idle_session_gets_a_ping_then_is_dropped_without_a_pong() {
        let t0 = Instant::now();
        let mut t = open(t0);
        t.last_read = t0 + 5 * S;
        assert_eq!(due(&t, t0 + 34 * S), None);
        assert_eq!(due(&t, t0 + 35 * S), Some(Expiry::SendPing));
        t.ping_sent_at = Some(t0 + 35 * S);
        assert_eq!(deadline(&t, &ServerConfig::default(), t0), t0 + 65 * S);
        assert_eq!(due(&t, t0 + 64 * S), None);
        assert_eq!(due(&t, t0 + 65 * S), Some(Expiry::NoPong));
    }

    #[test]
    fn an_unfinished_message_has_the_message_timeout_from_its_first_byte() {
        let t0 = Instant::now();
        let mut t = open(t0);
        t.message_since = Some(t0);
        // Reads keep the session alive, but do not extend the message's time.
        t.last_read = t0 + 59 * S;
        let c = ServerConfig::default();
        assert_eq!(deadline(&t, &c, t0), t0 + 60 * S);
        assert_eq!(due(&t, t0 + 60 * S), Some(Expiry::MessageTimeout));
        // When the idle deadline comes first, that one is due: a Ping, not a 1008.
        t.last_read = t0;
        t.message_since = Some(t0 + 20 * S);
        assert_eq!(deadline(&t, &c, t0), t0 + 30 * S);
        assert_eq!(due(&t, t0 + 30 * S), Some(Expiry::SendPing));
    }

    #[test]
    fn closing_has_the_close_timeout_from_when_it_began() {
        let t0 = Instant::now();
        let c = ServerConfig::default();
        let mut t = open(t0);
        t.stage = Stage::Session { closing: true };
        t.closing_since = Some(t0 + 2 * S);
        t.message_since = Some(t0);
        assert_eq!(deadline(&t, &c, t0 + 3 * S), t0 + 7 * S);
        // A closing session is past the message and ping rules.
        assert_eq!(due(&t, t0 + 7 * S), Some(Expiry::CloseTimeout));
        // Without a recorded start (a Close received, ours not yet out), it runs from now.
        t.closing_since = None;
        assert_eq!(deadline(&t, &c, t0 + 3 * S), t0 + 8 * S);
    }

    #[test]
    fn a_final_answer_and_a_drain_have_the_close_timeout() {
        let t0 = Instant::now();
        let c = ServerConfig::default();
        let done = Timing {
            stage: Stage::Done,
            closing_since: Some(t0 + S),
            ..open(t0)
        };
        assert_eq!(deadline(&done, &c, t0), t0 + 6 * S);
        assert_eq!(due(&done, t0 + 6 * S), Some(Expiry::CloseTimeout));
        let no_start = Timing {
            closing_since: None,
            ..done
        };
        assert_eq!(deadline(&no_start, &c, t0 + 3 * S), t0 + 5 * S);
        // Draining (our FIN sent) overrides the stage, even a request's.
        let draining = Timing {
            stage: Stage::Request,
            draining: true,
            closing_since: Some(t0 + 3 * S),
            ..open(t0)
        };
        assert_eq!(deadline(&draining, &c, t0), t0 + 8 * S);
        let open_draining = Timing {
            stage: Stage::Session { closing: false },
            ..draining
        };
        assert_eq!(due(&open_draining, t0 + 8 * S), Some(Expiry::CloseTimeout));
    }
}
