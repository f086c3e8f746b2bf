//! What the application writes: a [`Handler`] with `on_open / on_message / on_close` (the
//! counterparts of `@OnOpen / @OnMessage / @OnClose` in a Java endpoint) and `on_request` for
//! plain HTTP, and the [`Context`] it gets to act on sessions.
//!
//! Owns: the application-facing callbacks and what they get ([`Context`], [`CloseReason`],
//! [`SendStatus`]); the HTTP types are `http.rs`'s. Must not: touch sockets or the slab
//! directly; every action goes through the loop's core, behind the `Ops` trait.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;

use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::session::Message;

use super::handle::Handle;
use super::http::{HttpRequest, HttpResponse};
use super::upgrade::{Upgrade, UpgradeRequest};

/// The application's callbacks. They run on the event loop's thread, one at a time; a
/// callback that blocks stalls every connection, so hand slow work to another thread and
/// come back through a [`Handle`].
///
/// ```no_run
/// use wsloop::server::{CloseReason, Context, Handler, Server};
/// use wsloop::Message;
///
/// struct Chat;
/// impl Handler for Chat {
///     fn on_open(&mut self, _ctx: &mut Context<'_>, sid: &str) {
///         log::info!("{sid} joined");
///     }
///     fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
///         if let Message::Text(text) = message {
///             ctx.broadcast(format!("{sid}: {text}"));
///         }
///     }
///     fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
///         log::info!("{sid} left: {reason}");
///     }
/// }
///
/// let server = Server::builder().bind("127.0.0.1:8080").build().unwrap();
/// server.run(Chat).unwrap();
/// ```
pub trait Handler {
    /// An upgrade request matched the route and passed the handshake's checks (RFC 6455
    /// §4.2.1): decide, on the loop and with the handler's state, whether it becomes a
    /// session: [`Upgrade::accept`] (optionally choosing the sid, the subprotocol and the
    /// session's data) or [`Upgrade::reject`] with any HTTP response (a `401` with
    /// `WWW-Authenticate`, a `403` for a foreign `Origin`). Default: accept, with the route's
    /// sid (a fresh one for a pattern without `{sid}`) and the first of
    /// `ServerConfig::protocols` the client offered.
    ///
    /// ```
    /// use wsloop::server::{Context, Handler, HttpResponse, Upgrade, UpgradeRequest};
    ///
    /// struct User { name: String }
    /// struct App;
    /// impl Handler for App {
    ///     fn on_upgrade(&mut self, _ctx: &mut Context<'_>, req: &UpgradeRequest<'_>) -> Upgrade {
    ///         let token = req.query("token").or_else(|| req.cookie("token").map(Into::into));
    ///         match token.as_deref() {
    ///             Some("s3cret") => Upgrade::accept().with_data(User { name: "alice".into() }),
    ///             _ => Upgrade::reject(
    ///                 HttpResponse::text(401, "log in\n").with_header("WWW-Authenticate", "Bearer"),
    ///             ),
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// With several loops the decision is made on the loop that accepted the request; the
    /// data travels with the connection when the sid's session lives on another loop.
    fn on_upgrade(&mut self, ctx: &mut Context<'_>, request: &UpgradeRequest<'_>) -> Upgrade {
        let _ = (ctx, request);
        Upgrade::accept()
    }

    /// A session opened: the handshake for `sid` completed.
    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let _ = (ctx, sid);
    }

    /// A whole message arrived from `sid`.
    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let _ = (ctx, sid, message);
    }

    /// The session for `sid` ended, for `reason`. Called exactly once per `on_open`.
    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let _ = (ctx, sid, reason);
    }

    /// A plain HTTP request (not an upgrade) with its body. Default: 404.
    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        let _ = (ctx, request);
        HttpResponse::text(404, "not found\n")
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client started the closing handshake with this Close; we answered it.
    ByClient(CloseFrame),
    /// The application closed the session (through a [`Context`] or a [`Handle`]) with this
    /// code and reason; `answered` tells whether the client answered with its Close.
    ByServer {
        /// The Close we sent.
        close: CloseFrame,
        /// Whether the client's Close arrived before TCP closed.
        answered: bool,
    },
    /// The client broke the protocol; we failed the connection with the matching code.
    ProtocolError(ProtocolError),
    /// No sign of life for the idle timeout, then no answer to our Ping.
    IdleTimeout,
    /// Our Close got no answer within the close timeout.
    CloseTimeout,
    /// The client took longer than the message timeout to send one message (closed with
    /// 1008).
    MessageTimeout,
    /// The client did not read fast enough: its write queue passed the high-water mark
    /// (closed with 1008).
    WriteQueueFull,
    /// The server's memory budget (`ServerConfig::memory_budget`) could not take this
    /// client's incoming frame, or a message sent to it (closed with 1013 Try Again Later).
    Overloaded,
    /// A newer connection opened with the same sid (closed with 4000 "replaced").
    Replaced,
    /// The server is shutting down (closed with 1001).
    Shutdown,
    /// TCP closed without a Close frame (1006, §7.1.5).
    ConnectionLost,
    /// A socket error.
    Io(std::io::ErrorKind),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::ByClient(c) => write!(f, "closed by client ({} {:?})", c.code, c.reason),
            CloseReason::ByServer { close, answered } => write!(
                f,
                "closed by server ({} {:?}){}",
                close.code,
                close.reason,
                if *answered { "" } else { ", unanswered" }
            ),
            CloseReason::ProtocolError(e) => {
                write!(f, "protocol error: {e} ({})", e.close_code())
            }
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::CloseTimeout => f.write_str("close handshake timed out"),
            CloseReason::MessageTimeout => f.write_str("message not completed in time (1008)"),
            CloseReason::WriteQueueFull => f.write_str("write queue full (1008)"),
            CloseReason::Overloaded => f.write_str("server memory budget spent (1013)"),
            CloseReason::Replaced => f.write_str("replaced by a newer connection (4000)"),
            CloseReason::Shutdown => f.write_str("server shutdown (1001)"),
            CloseReason::ConnectionLost => f.write_str("connection lost without a Close (1006)"),
            CloseReason::Io(kind) => write!(f, "I/O error: {kind}"),
        }
    }
}

/// The outcome of sending to one sid from the loop. New outcomes may be added (as
/// `Forwarded` was with several loops): match with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendStatus {
    /// Queued for the client.
    Queued,
    /// No open session has this sid.
    NoSuchSession,
    /// The session is closing; no more messages may be sent on it (§5.5.1).
    Closing,
    /// The message would have taken the client's write queue over the high-water mark
    /// (`ServerConfig::max_queued_bytes`): it was dropped and the connection is being
    /// closed with 1008.
    QueueFull,
    /// The message would have taken the server over its memory budget
    /// (`ServerConfig::memory_budget`): it was dropped and the connection is being closed
    /// with 1013 Try Again Later.
    Overloaded,
    /// The sid is held by another loop of this server (`ServerConfig::workers`): the message
    /// was passed to that loop, which sends it (and logs the outcome) when it runs next.
    Forwarded,
}

/// Why [`Context::close`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// No open session has this sid (or it is closing already).
    NoSuchSession,
    /// RFC 6455 §7.4.1: this code reports a condition and must not be sent (1005, 1006,
    /// 1015), or is reserved or unassigned (0-999, 1004, 1016-2999, 5000 and up).
    NotSendable(CloseCode),
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::NoSuchSession => f.write_str("no open session with this sid"),
            CloseError::NotSendable(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}

impl std::error::Error for CloseError {}

/// Why [`Context::ping`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingError {
    /// No open session on this loop has this sid (or it is closing).
    NoSuchSession,
    /// RFC 6455 §5.5: a control frame carries at most 125 bytes.
    TooLong,
}

/// What a handler can do while it runs: act on sessions by sid.
///
/// Sends are queued and written together when the callback returns (one `writev` per
/// connection for everything a callback sent it).
pub struct Context<'a> {
    core: &'a mut dyn Ops,
}

/// The loop's side of a [`Context`] (implemented by the loop's core, whatever its transport).
pub(crate) trait Ops {
    fn send_to_sid(&mut self, sid: &str, message: Message) -> SendStatus;
    fn broadcast(&mut self, message: &Message) -> usize;
    fn publish(&mut self, topic: &str, message: &Message) -> usize;
    fn send_many(&mut self, sids: &[&str], message: &Message) -> usize;
    fn subscribe(&mut self, sid: &str, topic: &str, join: bool) -> bool;
    fn subscribers(&self, topic: &str) -> usize;
    fn close_sid(&mut self, sid: &str, code: CloseCode, reason: &str) -> bool;
    fn is_open(&self, sid: &str) -> bool;
    fn data(&mut self, sid: &str) -> Option<&mut (dyn Any + Send)>;
    fn ping(&mut self, sid: &str, payload: &[u8]) -> bool;
    fn queued_bytes(&self, sid: &str) -> Option<usize>;
    fn protocol(&self, sid: &str) -> Option<&str>;
    fn extensions(&self, sid: &str) -> Option<&str>;
    fn peer_addr(&self, sid: &str) -> Option<SocketAddr>;
    fn sids(&self) -> Box<dyn Iterator<Item = &str> + '_>;
    fn session_count(&self) -> usize;
    fn handle(&self) -> Handle;
    fn begin_shutdown(&mut self);
}

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut dyn Ops) -> Self {
        Context { core }
    }

    /// Send a message to one session.
    pub fn send(&mut self, sid: &str, message: impl Into<Message>) -> SendStatus {
        self.core.send_to_sid(sid, message.into())
    }

    /// Send a message to every open session; returns for how many it was queued. The frame
    /// is encoded once and its bytes are shared by every connection's queue. With several
    /// loops (`ServerConfig::workers`) the count is this loop's; every other loop gets the
    /// message through its queue and encodes it once for its own sessions. A broadcast that
    /// would take the loop over its memory budget (`ServerConfig::memory_budget`) is not
    /// queued at all (0, and a warning in the log); a session whose queue it would take over
    /// the high-water mark is closed with 1008 instead.
    pub fn broadcast(&mut self, message: impl Into<Message>) -> usize {
        self.core.broadcast(&message.into())
    }

    /// Send one message to each of `sids`: encoded once, one frame shared by their queues
    /// (like a broadcast, so not compressed). Returns for how many sessions of this loop it
    /// was queued; sids on other loops are passed to them, unknown sids are skipped.
    pub fn send_many(&mut self, sids: &[&str], message: impl Into<Message>) -> usize {
        self.core.send_many(sids, &message.into())
    }

    /// Subscribe the session `sid` to `topic` (any name: a room, a shop, a channel); false
    /// when it already was or no open session has it. A sid on another loop is passed to
    /// that loop (true if it was). Subscriptions end with the session.
    pub fn subscribe(&mut self, sid: &str, topic: &str) -> bool {
        self.core.subscribe(sid, topic, true)
    }

    /// Unsubscribe the session `sid` from `topic`; false when it was not subscribed.
    pub fn unsubscribe(&mut self, sid: &str, topic: &str) -> bool {
        self.core.subscribe(sid, topic, false)
    }

    /// Send a message to every session subscribed to `topic`: encoded once, one frame shared
    /// by every subscriber's queue and counted once in the memory budget, like a broadcast.
    /// Returns for how many sessions of this loop it was queued; every other loop gets it
    /// through its queue.
    pub fn publish(&mut self, topic: &str, message: impl Into<Message>) -> usize {
        self.core.publish(topic, &message.into())
    }

    /// How many sessions of this loop are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.core.subscribers(topic)
    }

    /// Start the closing handshake with `sid`, sending `code` and `reason` (cut to 123
    /// bytes at a character boundary). A code that may not be sent (§7.4.1: 1005, 1006, 1015,
    /// reserved or unassigned ones) is refused rather than turned into an empty Close. A sid
    /// on another loop is passed to that loop.
    pub fn close(&mut self, sid: &str, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        if !code.is_sendable() {
            return Err(CloseError::NotSendable(code));
        }
        if self.core.close_sid(sid, code, reason) {
            Ok(())
        } else {
            Err(CloseError::NoSuchSession)
        }
    }

    /// The data the upgrade gave this session ([`Upgrade::with_data`]), if it is of type `T`;
    /// `None` for a session without data, of another type, or not on this loop. Dropped
    /// after the session's `on_close`.
    pub fn data<T: Any>(&mut self, sid: &str) -> Option<&mut T> {
        let data: &mut dyn Any = self.core.data(sid)?;
        data.downcast_mut()
    }

    /// Send a Ping to `sid` (RFC 6455 §5.5.2: at most 125 bytes of payload); its Pong arrives
    /// as a sign of life (the idle timer restarts). Only for a session on this loop.
    pub fn ping(&mut self, sid: &str, payload: &[u8]) -> Result<(), PingError> {
        // RFC 6455 §5.5: control frames carry at most 125 bytes.
        if payload.len() > 125 {
            return Err(PingError::TooLong);
        }
        if self.core.ping(sid, payload) {
            Ok(())
        } else {
            Err(PingError::NoSuchSession)
        }
    }

    /// The bytes waiting to be written to `sid`: how far the client is behind, measured
    /// like the high-water mark (`ServerConfig::max_queued_bytes`, 1008 beyond), so a
    /// producer can slow down before the cliff. `None` when no session on this loop has it.
    pub fn queued_bytes(&self, sid: &str) -> Option<usize> {
        self.core.queued_bytes(sid)
    }

    /// The subprotocol `sid` agreed on (`Sec-WebSocket-Protocol` in our 101), if any.
    pub fn protocol(&self, sid: &str) -> Option<&str> {
        self.core.protocol(sid)
    }

    /// The extensions `sid` agreed on (`Sec-WebSocket-Extensions` in our 101, e.g.
    /// `permessage-deflate`), if any.
    pub fn extensions(&self, sid: &str) -> Option<&str> {
        self.core.extensions(sid)
    }

    /// The address of `sid`'s TCP peer (a proxy's, behind one: see
    /// [`UpgradeRequest::client_addr`] at upgrade time). Only for a session on this loop.
    pub fn peer_addr(&self, sid: &str) -> Option<SocketAddr> {
        self.core.peer_addr(sid)
    }

    /// Whether a session with this sid is open (on any loop).
    pub fn is_open(&self, sid: &str) -> bool {
        self.core.is_open(sid)
    }

    /// The sids of the open sessions, in no particular order (with several loops, this
    /// loop's).
    pub fn sids(&self) -> impl Iterator<Item = &str> {
        self.core.sids()
    }

    /// How many sessions are open (with several loops, on all of them: this loop's count is
    /// exact, the others' as they last reported it).
    pub fn session_count(&self) -> usize {
        self.core.session_count()
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        self.core.handle()
    }

    /// Begin a graceful shutdown: close every session with 1001 and stop accepting; the loop
    /// returns once they are closed or the close timeout has passed.
    pub fn shutdown(&mut self) {
        self.core.begin_shutdown();
    }
}
