//! The event loop: one `mio::Poll`, a slab of connections, a sid map, timers.
//!
//! Owns: accepting, reading into the one shared read buffer, feeding sessions, calling the
//! handler, flushing write queues, deadlines, commands from other threads, shutdown.
//! Must not: implement protocol rules (the session does) or hold a lock on the message path.
//!
//! The loop reads straight: a `match` on the token; read until `WouldBlock` (with a budget,
//! for fairness); write-queue flushes once per event, after the handler has run (so
//! everything a callback sends to a connection leaves in one `writev`); WRITABLE interest only
//! while a queue is non-empty.
//!
//! **Several loops** (`ServerConfig::workers`): each loop is one `EventLoop` on its own
//! thread, with its own poll, slab, read buffer and timers. Loop 0 owns the listener and
//! hands each accepted socket to the loop with the fewest connections (exact balance, no
//! `SO_REUSEPORT` and so no `unsafe` socket option). A sid lives on one loop at a time: the
//! loop that completes an upgrade first claims the sid in the shared directory (see
//! [`Handle`]); if another loop holds it, the new connection, with the bytes read so far, is
//! handed to that loop, which then replaces the old session exactly as a single loop does
//! (`on_close(Replaced)` before the new `on_open`). Commands and hand-overs between loops go
//! through each loop's command queue and waker.
//!
//! One invariant keeps the borrow structure simple: **only the loop itself removes a
//! connection**, never an operation a handler calls through its [`Context`], so a connection
//! being processed still exists when a callback returns.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::close::CloseCode;
use crate::handshake::{self, http_response, Request, RequestParser};
use crate::session::{Event, Message, Role, Session};

use super::connection::{Connection, Phase};
use super::handle::{Command, Handle};
use super::handler::{CloseReason, Context, Handler, HttpRequest, Ops, SendStatus};
use super::timer::{ConnRef, Timers};
use super::transport::{Mio, Reactor, FIRST_CONNECTION};
use super::ServerConfig;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// Reads from one connection per readiness event before others get a turn.
const READ_BUDGET: usize = 16;

/// How often one connection may be handed from loop to loop before it is served where it is
/// (only a sid moving between loops at that very moment makes a second hand-over happen).
const MAX_HOPS: u8 = 4;

/// How long accepting pauses after an error such as EMFILE (no file descriptors left):
/// long enough not to spin, short enough to pick up again soon after descriptors free up.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Connections refused with 503 that we still hold while their answer drains. Beyond this,
/// refused connections are closed at once.
const MAX_REFUSING: usize = 1024;

pub(crate) struct EventLoop {
    poll: Poll,
    /// The listener (loop 0 only).
    listener: Option<TcpListener>,
    listening: bool,
    core: Core<Mio>,
    read_buf: Vec<u8>,
}

impl Drop for EventLoop {
    /// However a loop ends, the server ends with it and nothing waits for it any more:
    /// after `run` returns, when a handler's panic unwinds through `run`, and for a loop
    /// that never ran (a refused `Server::run`, a failed thread spawn in `run_each`). The
    /// other loops shut down, handles answer `Stopped`, and `Handle::shutdown` returns.
    fn drop(&mut self) {
        self.core.handle.begin_shutdown();
        self.core.handle.mark_stopped(self.core.index);
    }
}

/// Everything a handler's [`Context`] can reach: the loop's state and logic, over any
/// [`Reactor`].
pub(crate) struct Core<R: Reactor> {
    /// Which loop of the server this is (0 when there is one).
    index: usize,
    config: ServerConfig,
    reactor: R,
    conns: Slab<Connection<R::Stream>>,
    sids: HashMap<Arc<str>, ConnRef>,
    timers: Timers,
    handle: Handle,
    next_generation: u64,
    /// Connections with queued bytes to flush once the current step is done.
    dirty: Vec<usize>,
    /// Connections whose read budget ran out while data may be left.
    read_again: Vec<ConnRef>,
    /// Connections counting toward `max_connections`, and those refused with 503.
    counted: usize,
    refusing: usize,
    shutdown_deadline: Option<Instant>,
    accept_paused_until: Option<Instant>,
    now: Instant,
    /// The buffer of a large payload already written, kept for the next large message
    /// (see [`Session::receive_with_spare`]); at most one, of at most `max_message_size`.
    spare: Option<Vec<u8>>,
}

impl EventLoop {
    /// The loops of a server: `config.workers` of them (at least one), loop 0 listening on
    /// `addr`, all sharing one [`Handle`].
    pub(crate) fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Vec<EventLoop>> {
        let count = config.workers.max(1);
        let mut polls = Vec::with_capacity(count);
        let mut wakers = Vec::with_capacity(count);
        for _ in 0..count {
            let poll = Poll::new()?;
            wakers.push(Waker::new(poll.registry(), WAKER)?);
            polls.push(poll);
        }
        let handle = Handle::new(wakers);
        let mut loops = Vec::with_capacity(count);
        for (index, poll) in polls.into_iter().enumerate() {
            let listener = if index == 0 {
                let mut listener = TcpListener::bind(addr)?;
                poll.registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)?;
                Some(listener)
            } else {
                None
            };
            let reactor = Mio {
                registry: poll.registry().try_clone()?,
            };
            let read_buf = vec![0u8; config.read_buffer_size.max(1024)];
            loops.push(EventLoop {
                poll,
                listening: listener.is_some(),
                listener,
                core: Core::new(config.clone(), reactor, handle.clone(), index),
                read_buf,
            });
        }
        Ok(loops)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::other("not the listening loop")),
        }
    }

    pub(crate) fn handle(&self) -> Handle {
        self.core.handle.clone()
    }

    pub(crate) fn run<H: Handler>(mut self, mut handler: H) -> io::Result<()> {
        let index = self.core.index;
        self.core.handle.set_loop_thread(index);
        if let Ok(addr) = self.local_addr() {
            log::info!("listening on {addr}");
        }
        let result = self.run_loop(&mut handler);
        if let Err(e) = &result {
            // One loop failing stops the server, not just its share of it.
            log::error!("loop {index} failed: {e}; shutting the server down");
            self.core.handle.begin_shutdown();
        }
        self.core.close_all(&mut handler);
        log::info!("loop {index} stopped");
        result
        // Dropping `self` marks the loop stopped.
    }

    fn run_loop<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut commands = Vec::new();
        loop {
            let timeout = if self.core.read_again.is_empty() {
                self.core.poll_timeout()
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.core.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        self.core
                            .handle
                            .take_commands(self.core.index, &mut commands);
                        for command in commands.drain(..) {
                            self.core.run_command(handler, command);
                        }
                    }
                    Token(t) => {
                        let key = t - FIRST_CONNECTION;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // A FIN (or an error) is seen only by reading until the end.
                            let drain = event.is_read_closed() || event.is_error();
                            self.core.read(handler, key, &mut self.read_buf, drain);
                        }
                        if event.is_writable() || event.is_write_closed() {
                            self.core.mark_dirty(key);
                        }
                    }
                }
                self.core.flush_dirty(handler);
            }
            self.core.read_again(handler, &mut self.read_buf);
            if self
                .core
                .accept_paused_until
                .is_some_and(|t| t <= self.core.now)
            {
                self.core.accept_paused_until = None;
                self.accept();
            }
            self.core.fire_timers(handler);
            self.core.flush_dirty(handler);
            if self.core.shutdown_deadline.is_some() && self.listening {
                if let Some(listener) = self.listener.as_mut() {
                    self.poll.registry().deregister(listener)?;
                }
                self.listening = false;
            }
            if self.core.shutdown_step(handler) {
                return Ok(());
            }
        }
    }

    fn accept(&mut self) {
        while self.listening && self.core.accept_paused_until.is_none() {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    // We cork ourselves (one writev per event); Nagle would only add latency.
                    let _ = socket.set_nodelay(true);
                    self.core.balance(socket, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: the pending connections stay in the
                    // backlog; try again shortly instead of spinning on a readable listener.
                    log::warn!("accept failed: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.core.accept_paused_until = Some(self.core.now + ACCEPT_PAUSE);
                }
            }
        }
    }
}

impl<R: Reactor> Core<R> {
    pub(crate) fn new(config: ServerConfig, reactor: R, handle: Handle, index: usize) -> Self {
        Core {
            index,
            config,
            reactor,
            conns: Slab::new(),
            sids: HashMap::new(),
            timers: Timers::default(),
            handle,
            next_generation: 0,
            dirty: Vec::new(),
            read_again: Vec::new(),
            counted: 0,
            refusing: 0,
            shutdown_deadline: None,
            accept_paused_until: None,
            now: Instant::now(),
            spare: None,
        }
    }

    // ----- Connections -------------------------------------------------------------------

    /// Read until the socket is empty, the budget is spent, or the connection ends.
    ///
    /// A read shorter than the buffer means the socket was empty a moment ago, and new data
    /// raises a new readiness event; so unless `drain` is set, the loop stops there instead
    /// of paying one more `recv` just to see `WouldBlock` (a syscall per message on a
    /// request/response connection). `drain` is set when that event will not come: the
    /// event also reported the peer's FIN or an error, or reading resumes after a pause.
    pub(crate) fn read<H: Handler>(
        &mut self,
        handler: &mut H,
        key: usize,
        buf: &mut [u8],
        drain: bool,
    ) {
        let max_queued = self.config.max_queued_bytes;
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.queue.len() >= max_queued {
                // Backpressure: what the client sends waits in the kernel until it has read
                // what we owe it; `flush` resumes reading once the queue is below the mark.
                conn.read_paused = true;
                return;
            }
            let n = match conn.socket.read(buf) {
                Ok(0) => {
                    self.on_eof(handler, key);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("read from {} failed: {e}", conn.peer);
                    conn.set_reason(CloseReason::Io(e.kind()));
                    self.remove(handler, key);
                    return;
                }
            };
            conn.last_read = self.now;
            conn.ping_sent_at = None;
            self.on_data(handler, key, &buf[..n]);
            if n < buf.len() && !drain {
                return;
            }
        }
        if let Some(conn) = self.conns.get(key) {
            let generation = conn.generation;
            self.read_again.push(ConnRef { key, generation });
        }
    }

    /// Loop 0's accepted socket: served here, or handed to the loop with the fewest
    /// connections. The connection limit is the server's, over all loops.
    fn balance(&mut self, socket: R::Stream, peer: SocketAddr) {
        let loops = self.handle.loop_count();
        let full = loops > 1 && self.handle.connection_count() >= self.config.max_connections;
        let target = self.handle.least_loaded();
        if loops == 1 || full || target == self.index {
            return self.add(socket, peer);
        }
        let Some(socket) = R::into_tcp(socket) else {
            return;
        };
        let command = Command::Adopt {
            socket,
            peer,
            bytes: Vec::new(),
            hops: 0,
        };
        // Counted for the target now, so that the next accept sees its share.
        self.handle.add_connection(target);
        if let Err(e) = self.handle.push_to(target, command) {
            log::warn!("cannot hand {peer} to loop {target}: {e}; closing it");
            self.handle.remove_connection(target);
        }
    }

    pub(crate) fn add(&mut self, socket: R::Stream, peer: SocketAddr) {
        // The limit is the server's, over all loops. The handles count admitted connections
        // only: one being answered 503 holds no slot.
        let refuse = self.handle.connection_count() >= self.config.max_connections;
        if self.add_connection(socket, peer, refuse).is_some() && !refuse {
            self.handle.add_connection(self.index);
        }
    }

    /// A connection handed over by another loop, with what was read from it so far. It was
    /// admitted under the server's connection limit already, and counted for this loop.
    fn adopt<H: Handler>(
        &mut self,
        handler: &mut H,
        socket: mio::net::TcpStream,
        peer: SocketAddr,
        bytes: &[u8],
        hops: u8,
    ) {
        let added = match R::from_tcp(socket) {
            Some(_) if self.shutdown_deadline.is_some() => {
                log::debug!("shutting down: connection from {peer} closed");
                None
            }
            Some(socket) => self.add_connection(socket, peer, false),
            None => None,
        };
        let Some(key) = added else {
            self.handle.remove_connection(self.index);
            return;
        };
        self.conns[key].hops = hops;
        if !bytes.is_empty() {
            self.on_data(handler, key, bytes);
        }
    }

    fn add_connection(
        &mut self,
        mut socket: R::Stream,
        peer: SocketAddr,
        refuse: bool,
    ) -> Option<usize> {
        if refuse && self.refusing >= MAX_REFUSING {
            log::warn!("refusing {peer}: too many connections, closing at once");
            return None;
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.reactor.register(&mut socket, key) {
            log::warn!("cannot register {peer}: {e}");
            return None;
        }
        self.next_generation += 1;
        let limits = self.config.handshake_limits;
        let mut conn = Connection::new(
            socket,
            peer,
            self.next_generation,
            Phase::Handshake(RequestParser::new(limits)),
            self.now,
        );
        if refuse {
            log::warn!(
                "refusing {peer}: {} connections open (max_connections)",
                self.counted
            );
            conn.counted = false;
            self.refusing += 1;
            conn.queue.push_copy(&http_response(
                503,
                &[("Retry-After", "5")],
                "text/plain; charset=utf-8",
                b"too many connections\n",
            ));
            conn.phase = Phase::Done;
            conn.closing_since = Some(self.now);
        } else {
            self.counted += 1;
            log::debug!("accepted {peer}");
        }
        entry.insert(conn);
        self.mark_dirty(key);
        self.schedule(key);
        Some(key)
    }

    /// Tell the handles how many sessions this loop has.
    fn report_counts(&self) {
        self.handle.set_session_count(self.index, self.sids.len());
    }

    /// The slab key of the session for `sid`, checked against the slot's generation so that
    /// a reused slot never gets what was meant for its previous occupant.
    fn lookup(&self, sid: &str) -> Option<usize> {
        let conn = *self.sids.get(sid)?;
        self.is_current(conn).then_some(conn.key)
    }

    fn is_current(&self, conn: ConnRef) -> bool {
        self.conns
            .get(conn.key)
            .is_some_and(|c| c.generation == conn.generation)
    }

    /// Remove a connection: close it, and tell the handler if it had a session open.
    pub(crate) fn remove<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        self.reactor.release(&mut conn.socket);
        if conn.counted {
            self.counted -= 1;
            self.handle.remove_connection(self.index);
        } else {
            self.refusing -= 1;
        }
        let reason = match conn.close_reason.take() {
            Some(CloseReason::ByServer { close, .. }) => CloseReason::ByServer {
                answered: matches!(&conn.phase, Phase::WebSocket { session, .. }
                    if session.close_received().is_some()),
                close,
            },
            Some(reason) => reason,
            None => CloseReason::ConnectionLost,
        };
        if conn.registered {
            let sid = conn.sid().cloned().unwrap_or_else(|| Arc::from(""));
            self.unregister_sid(&sid, key);
            log::info!("close {sid} ({}): {reason}", conn.peer);
            handler.on_close(&mut Context::new(self), &sid, &reason);
        } else {
            log::debug!("connection from {} closed", conn.peer);
        }
    }

    fn unregister_sid(&mut self, sid: &str, key: usize) {
        if self.sids.get(sid).is_some_and(|c| c.key == key) {
            self.sids.remove(sid);
            if self.handle.loop_count() > 1 {
                self.handle.release(sid, self.index);
            }
        }
        self.report_counts();
    }

    /// With several loops: claim `sid` for this loop, true when this loop is to serve it.
    /// When another loop holds it, hand the connection at `key` over to that loop with the
    /// bytes read from it so far (`request`, then `rest`): the loop that holds the sid
    /// replays the request, so its replacement of the old session happens in one place, in
    /// order.
    fn claim_or_hand_over(
        &mut self,
        key: usize,
        sid: &Arc<str>,
        request: &Request,
        rest: &[u8],
    ) -> bool {
        if self.handle.loop_count() == 1 {
            return true;
        }
        let owner = match self.handle.claim(sid, self.index) {
            Ok(()) => return true,
            Err(owner) => owner,
        };
        let hops = self.conns[key].hops;
        if hops >= MAX_HOPS {
            // The sid keeps moving between loops (reconnects racing each other): refuse
            // rather than serve a sid that the directory says another loop holds.
            log::warn!("{sid}: handed over {hops} times; refusing the upgrade");
            self.respond(key, status_response(503));
            return false;
        }
        let mut bytes = request.raw().to_vec();
        bytes.extend_from_slice(rest);
        let Some(mut conn) = self.conns.try_remove(key) else {
            return false;
        };
        self.reactor.deregister(&mut conn.socket);
        self.counted -= 1;
        self.handle.remove_connection(self.index);
        let peer = conn.peer;
        log::debug!("{sid} lives on loop {owner}: handing {peer} over");
        let Some(socket) = R::into_tcp(conn.socket) else {
            return false;
        };
        self.handle.add_connection(owner);
        let command = Command::Adopt {
            socket,
            peer,
            bytes,
            hops: hops + 1,
        };
        if let Err(e) = self.handle.push_to(owner, command) {
            log::warn!("cannot hand {peer} to loop {owner}: {e}; closing it");
            self.handle.remove_connection(owner);
        }
        false
    }

    /// While shutting down: drop connections that never opened a session; true once the
    /// loop may stop (every connection gone, or the close timeout over).
    pub(crate) fn shutdown_step<H: Handler>(&mut self, handler: &mut H) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        let unopened: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Handshake(_) | Phase::HttpBody { .. }))
            .map(|(k, _)| k)
            .collect();
        for key in unopened {
            self.remove(handler, key);
        }
        if self.conns.is_empty() {
            return true;
        }
        if self.now >= deadline {
            log::info!(
                "shutdown: {} connections did not close in time",
                self.conns.len()
            );
            return true;
        }
        false
    }

    /// The loop is over: every connection goes, and every open session gets its on_close.
    pub(crate) fn close_all<H: Handler>(&mut self, handler: &mut H) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.set_reason(CloseReason::Shutdown);
            }
            self.remove(handler, key);
        }
    }

    /// Continue reading the connections whose read budget ran out (or whose reading resumed
    /// after backpressure), then flush.
    pub(crate) fn read_again<H: Handler>(&mut self, handler: &mut H, buf: &mut [u8]) {
        for conn in std::mem::take(&mut self.read_again) {
            if self.is_current(conn) {
                self.read(handler, conn.key, buf, true);
            }
        }
        self.flush_dirty(handler);
    }

    pub(crate) fn mark_dirty(&mut self, key: usize) {
        self.dirty.push(key);
    }

    // ----- Input -------------------------------------------------------------------------

    fn on_data<H: Handler>(&mut self, handler: &mut H, key: usize, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match &mut conn.phase {
            Phase::Handshake(parser) => match parser.push(data) {
                Ok(None) => {}
                Ok(Some((request, used))) => {
                    self.on_request_head(handler, key, request, &data[used..]);
                }
                Err(e) => {
                    log::info!("bad request from {}: {e}", conn.peer);
                    self.respond(key, e.response());
                }
            },
            Phase::HttpBody { request, body } => {
                let need = request.content_length().unwrap_or(0);
                let take = (need - body.len()).min(data.len());
                body.extend_from_slice(&data[..take]);
                if body.len() == need {
                    self.finish_http(handler, key);
                }
            }
            Phase::WebSocket { session, .. } => {
                let result = session.receive_with_spare(data, &mut self.spare);
                // The message deadline runs from the first byte of an unfinished message.
                if !session.is_mid_message() {
                    conn.message_since = None;
                } else if conn.message_since.is_none() {
                    conn.message_since = Some(self.now);
                }
                if let Err(e) = result {
                    log::info!("protocol error from {}: {e}", conn.peer);
                    conn.set_reason(CloseReason::ProtocolError(e));
                }
                self.dispatch(handler, key);
            }
            // Flushing a final answer or draining before close: input no longer matters.
            Phase::Done => {}
        }
        self.touch(key);
    }

    fn on_eof<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(session) = conn.session_mut() {
            session.receive_eof();
        }
        // Last chance for what is queued (the peer may only have half-closed).
        let _ = conn.queue.flush(&mut conn.socket, &mut self.spare);
        self.remove(handler, key);
    }

    fn on_request_head<H: Handler>(
        &mut self,
        handler: &mut H,
        key: usize,
        request: Request,
        rest: &[u8],
    ) {
        let attempt = request.is_websocket_upgrade()
            || request.header("sec-websocket-key").is_some()
            || request.header("sec-websocket-version").is_some();
        if !attempt {
            return self.start_http(handler, key, request, rest);
        }
        let peer = self.conns[key].peer;
        let accepted = match handshake::accept(&request) {
            Ok(accepted) => accepted,
            Err(e) => {
                log::info!("handshake from {peer} refused: {e}");
                return self.respond(key, e.response());
            }
        };
        let sid = match self.config.route.sid(&request) {
            Ok(sid) => sid,
            Err(status) => {
                log::info!(
                    "upgrade to {} from {peer} refused: {status}",
                    request.path()
                );
                return self.respond(key, status_response(status));
            }
        };
        if self.shutdown_deadline.is_some() {
            return self.respond(key, status_response(503));
        }
        let sid: Arc<str> = Arc::from(sid);
        if !self.claim_or_hand_over(key, &sid, &request, rest) {
            return;
        }
        let supported: Vec<&str> = self.config.protocols.iter().map(String::as_str).collect();
        let protocol = accepted.select_protocol(&supported);
        let mut session = Session::new(Role::Server, self.config.session);
        let extensions = self.deflate_answer(&accepted, &mut session);
        let response = accepted.response_with(protocol, extensions.as_deref());
        let conn = &mut self.conns[key];
        conn.queue.push_copy(&response);
        conn.phase = Phase::WebSocket {
            session,
            sid: sid.clone(),
        };
        self.register(handler, key, sid);
        // A client may send its first frames in the same packet as the request (§4.1 lets
        // it send as soon as it has the 101; a pipelining client sends earlier).
        if !rest.is_empty() {
            self.on_data(handler, key, rest);
        }
        self.mark_dirty(key);
    }

    /// RFC 7692: answer the client's permessage-deflate offers when configured to, turning
    /// compression on in `session`; the `Sec-WebSocket-Extensions` value for the `101`, or
    /// `None` when not configured or every offer was declined.
    #[cfg(feature = "deflate")]
    fn deflate_answer(
        &self,
        accepted: &handshake::Accept,
        session: &mut Session,
    ) -> Option<String> {
        let config = self.config.deflate.as_ref()?;
        let offers = accepted.offered_extensions().iter().map(String::as_str);
        let (negotiated, header) = crate::deflate::negotiate::answer(offers, config)?;
        session.set_deflate(negotiated, config);
        Some(header)
    }

    /// Without the `deflate` feature no extension is ever accepted.
    #[cfg(not(feature = "deflate"))]
    fn deflate_answer(
        &self,
        _accepted: &handshake::Accept,
        _session: &mut Session,
    ) -> Option<String> {
        None
    }

    /// Make `key` the session for its sid, replacing an older connection with the same sid.
    fn register<H: Handler>(&mut self, handler: &mut H, key: usize, sid: Arc<str>) {
        if let Some(old) = self.sids.get(&sid).copied() {
            if let Some(conn) = self.conns.get_mut(old.key) {
                log::info!(
                    "close {sid} ({}): replaced by a newer connection",
                    conn.peer
                );
                conn.registered = false;
                conn.set_reason(CloseReason::Replaced);
                if let Some(session) = conn.session_mut() {
                    let _ = session.close(CloseCode::Private(4000), "replaced");
                }
                self.sids.remove(&sid);
                self.touch(old.key);
                // The old session ends for the application before the new one begins.
                handler.on_close(&mut Context::new(self), &sid, &CloseReason::Replaced);
            }
        }
        let conn = &mut self.conns[key];
        conn.registered = true;
        let generation = conn.generation;
        log::info!("open {sid} ({})", conn.peer);
        self.sids.insert(sid.clone(), ConnRef { key, generation });
        self.report_counts();
        handler.on_open(&mut Context::new(self), &sid);
    }

    /// Hand the session's events to the handler, in order.
    fn dispatch<H: Handler>(&mut self, handler: &mut H, key: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Phase::WebSocket { session, sid } = &mut conn.phase else {
                return;
            };
            let Some(event) = session.next_event() else {
                return;
            };
            let sid = sid.clone();
            // Replies written by taking the event (Pong, Close) go out before anything the
            // handler sends in answer to it.
            conn.take_session_output();
            match event {
                Event::Message(message) => {
                    log::debug!("message from {sid}: {} bytes", message.len());
                    if conn.registered {
                        handler.on_message(&mut Context::new(self), &sid, message);
                    }
                }
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(close) => {
                    log::debug!("close from {sid}: {} {:?}", close.code, close.reason);
                    conn.set_reason(CloseReason::ByClient(close));
                }
            }
        }
    }

    fn start_http<H: Handler>(
        &mut self,
        handler: &mut H,
        key: usize,
        request: Request,
        rest: &[u8],
    ) {
        // Bodies are read by Content-Length only; chunked uploads are not for this server.
        if request.header("transfer-encoding").is_some() {
            return self.respond(key, status_response(411));
        }
        let need = match request.header("content-length") {
            None => 0,
            Some(_) => match request.content_length() {
                Some(n) => n,
                None => return self.respond(key, status_response(400)),
            },
        };
        if need > self.config.max_http_body {
            return self.respond(key, status_response(413));
        }
        let body = rest[..need.min(rest.len())].to_vec();
        let complete = body.len() == need;
        self.conns[key].phase = Phase::HttpBody { request, body };
        if complete {
            self.finish_http(handler, key);
        }
    }

    fn finish_http<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let conn = &mut self.conns[key];
        let Phase::HttpBody { request, body } = std::mem::replace(&mut conn.phase, Phase::Done)
        else {
            return;
        };
        let request = HttpRequest {
            head: request,
            body,
        };
        let peer = conn.peer;
        let response = handler.on_request(&mut Context::new(self), &request);
        log::info!(
            "{} {} from {peer}: {}",
            request.method(),
            request.head.path(),
            response.status
        );
        self.respond(key, response.to_bytes());
    }

    /// Queue a final HTTP answer; the connection closes once it is written.
    fn respond(&mut self, key: usize, bytes: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.queue.push_copy(&bytes);
            conn.phase = Phase::Done;
            conn.closing_since = Some(self.now);
            self.touch(key);
        }
    }

    // ----- Output ------------------------------------------------------------------------

    /// After any change to a connection: collect the session's output, note whether our
    /// Close went out, schedule its next deadline, and flush it at the end of the step.
    fn touch(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.take_session_output();
        if conn.closing_since.is_none() {
            if let Phase::WebSocket { session, .. } = &conn.phase {
                if session.close_sent().is_some() {
                    conn.closing_since = Some(self.now);
                }
            }
        }
        self.schedule(key);
        self.mark_dirty(key);
    }

    pub(crate) fn flush_dirty<H: Handler>(&mut self, handler: &mut H) {
        while let Some(key) = self.dirty.pop() {
            self.flush(handler, key);
        }
    }

    fn flush<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let flushed = conn.queue.flush(&mut conn.socket, &mut self.spare);
        if self
            .spare
            .as_ref()
            .is_some_and(|s| s.capacity() > self.config.session.max_message_size)
        {
            self.spare = None; // never keep more than one message's worth
        }
        if conn.read_paused && conn.queue.len() < self.config.max_queued_bytes {
            // Below the mark again: read what the client sent meanwhile.
            conn.read_paused = false;
            let generation = conn.generation;
            self.read_again.push(ConnRef { key, generation });
        }
        match flushed {
            Ok(true) => {
                if conn.writable_interest {
                    conn.writable_interest = false;
                    self.reactor.set_writable(&mut conn.socket, key, false);
                }
                let finished = match &conn.phase {
                    Phase::WebSocket { session, .. } => session.should_close_tcp(),
                    Phase::Done => true,
                    _ => false,
                };
                // RFC 6455 §7.1.1: after both Close frames the server closes TCP first. The
                // client sends nothing after its Close (§5.5.1), so nothing unread can turn
                // our Close into a reset: close at once.
                let handshake_done = matches!(&conn.phase, Phase::WebSocket { session, .. }
                    if session.close_handshake_done());
                if handshake_done {
                    return self.remove(handler, key);
                }
                if finished && !conn.draining {
                    // Any other end (an HTTP answer, a failed connection): close our side,
                    // then wait (bounded) for the peer's FIN, so that unread bytes never turn
                    // our last frame into a reset.
                    conn.draining = true;
                    conn.closing_since = Some(self.now);
                    if self.reactor.shutdown_write(&mut conn.socket).is_err() {
                        return self.remove(handler, key);
                    }
                    self.schedule(key);
                }
            }
            Ok(false) => {
                if !conn.writable_interest {
                    conn.writable_interest = true;
                    self.reactor.set_writable(&mut conn.socket, key, true);
                }
            }
            Err(e) => {
                log::debug!("write to {} failed: {e}", conn.peer);
                conn.queue.clear();
                conn.set_reason(CloseReason::Io(e.kind()));
                self.remove(handler, key);
            }
        }
    }

    /// Queue `message` on the connection at `key`.
    fn send_on(&mut self, key: usize, message: Message) -> SendStatus {
        if self.over_mark(key) {
            self.close_slow(key);
            return SendStatus::QueueFull;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return SendStatus::NoSuchSession;
        };
        let Some(session) = conn.session_mut() else {
            return SendStatus::NoSuchSession;
        };
        // Compressed when permessage-deflate is on for this session, else the message's own
        // bytes, not copied.
        match session.frame_message(message) {
            Ok((header, payload)) => {
                conn.queue.push_frame(header, payload);
                self.mark_dirty(key);
                SendStatus::Queued
            }
            Err(_) => SendStatus::Closing,
        }
    }

    /// Whether the connection's queue is at or over the high-water mark, after giving the
    /// socket a chance to take some of it (the loop flushes only between events, and one
    /// event may send many messages). A write error is left for the loop's flush to find.
    fn over_mark(&mut self, key: usize) -> bool {
        let max = self.config.max_queued_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.queue.len() < max {
            return false;
        }
        let _ = conn.queue.flush(&mut conn.socket, &mut self.spare);
        conn.queue.len() >= max
    }

    /// A client that does not read: close it (1008) behind what is already queued.
    fn close_slow(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let queued = conn.queue.len();
        if let Phase::WebSocket { session, sid } = &mut conn.phase {
            if session
                .close(CloseCode::PolicyViolation, "write queue full")
                .is_ok()
            {
                log::warn!("{sid}: {queued} bytes queued, over the high-water mark; closing");
            }
        }
        conn.set_reason(CloseReason::WriteQueueFull);
        self.touch(key);
    }

    pub(crate) fn run_command<H: Handler>(&mut self, handler: &mut H, command: Command) {
        match command {
            Command::Send(sid, message) => {
                let status = self.send_to_sid(&sid, message);
                if status != SendStatus::Queued {
                    log::debug!("send to {sid} from a handle: {status:?}");
                }
            }
            // A command acts on this loop only: a handle (or another loop) sent every loop
            // its own copy.
            Command::Broadcast(frame) => {
                self.broadcast_here(&frame);
            }
            Command::Close(sid, code, reason) => {
                if !self.close_sid(&sid, code, &reason) {
                    log::debug!("close of {sid} from a handle: no open session");
                }
            }
            Command::Shutdown => self.shutdown_here(),
            Command::Adopt {
                socket,
                peer,
                bytes,
                hops,
            } => self.adopt(handler, socket, peer, &bytes, hops),
        }
    }

    // ----- Time --------------------------------------------------------------------------

    /// The moment this connection next needs attention.
    fn deadline(&self, conn: &Connection<R::Stream>) -> Instant {
        let c = &self.config;
        if conn.draining {
            return conn.closing_since.unwrap_or(conn.accepted_at) + c.close_timeout;
        }
        match &conn.phase {
            Phase::Handshake(_) | Phase::HttpBody { .. } => conn.accepted_at + c.handshake_timeout,
            Phase::Done => conn.closing_since.unwrap_or(conn.accepted_at) + c.close_timeout,
            Phase::WebSocket { session, .. } => {
                if session.awaiting_close() || session.should_close_tcp() {
                    return conn.closing_since.unwrap_or(self.now) + c.close_timeout;
                }
                let liveness = match conn.ping_sent_at {
                    Some(sent) => sent + c.pong_timeout,
                    None => conn.last_read + c.idle_timeout,
                };
                match conn.message_since {
                    Some(since) => liveness.min(since + c.message_timeout),
                    None => liveness,
                }
            }
        }
    }

    /// Make sure the timer heap wakes us no later than this connection's deadline.
    fn schedule(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let at = self.deadline(conn);
        if conn.timer_at.is_some_and(|t| t <= at) {
            return; // An entry at or before `at` is queued; it re-checks when it fires.
        }
        let generation = conn.generation;
        self.conns[key].timer_at = Some(at);
        self.timers.push(at, ConnRef { key, generation });
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let next = [self.timers.next_deadline(), self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn fire_timers<H: Handler>(&mut self, handler: &mut H) {
        while let Some((at, conn_ref)) = self.timers.pop_due(self.now) {
            let Some(conn) = self.conns.get_mut(conn_ref.key) else {
                continue;
            };
            if conn.generation != conn_ref.generation || conn.timer_at != Some(at) {
                continue; // stale entry
            }
            conn.timer_at = None;
            let due = self.deadline(&self.conns[conn_ref.key]);
            if due > self.now {
                self.schedule(conn_ref.key);
                continue;
            }
            self.expire(handler, conn_ref.key);
        }
    }

    /// A connection's deadline passed.
    fn expire<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let conn = &mut self.conns[key];
        let closing = conn.draining || conn.closing_since.is_some();
        match &mut conn.phase {
            Phase::Handshake(_) | Phase::HttpBody { .. } => {
                log::info!("handshake timeout for {}", conn.peer);
                self.remove(handler, key);
            }
            Phase::WebSocket { session, .. }
                if !closing
                    && conn
                        .message_since
                        .is_some_and(|t| t + self.config.message_timeout <= self.now) =>
            {
                log::info!("{}: message not completed in time; closing", conn.peer);
                session.fail(CloseCode::PolicyViolation, "message timeout");
                conn.set_reason(CloseReason::MessageTimeout);
                conn.message_since = None;
                self.touch(key);
            }
            Phase::WebSocket { session, .. } if !closing && conn.ping_sent_at.is_none() => {
                // RFC 6455 §5.5.2: a Ping as a keepalive, to see whether the peer is there.
                if session.ping(b"").is_ok() {
                    conn.ping_sent_at = Some(self.now);
                    self.touch(key);
                } else {
                    self.remove(handler, key);
                }
            }
            Phase::WebSocket { .. } if !closing => {
                // Silent through a whole ping round; if its queue is backed up it is not
                // reading either.
                let reason = if conn.read_paused {
                    CloseReason::WriteQueueFull
                } else {
                    CloseReason::IdleTimeout
                };
                log::info!("{}: no sign of life after our ping; dropping", conn.peer);
                conn.set_reason(reason);
                self.remove(handler, key);
            }
            _ => {
                conn.set_reason(CloseReason::CloseTimeout);
                self.remove(handler, key);
            }
        }
    }
}

/// For the simulator: the clock, and the invariants the fuzzer checks after every step.
#[cfg(any(test, feature = "fuzzing"))]
impl<R: Reactor> Core<R> {
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Panics if the loop's books disagree.
    pub(crate) fn check_invariants(&self) {
        // The sid map and the slab agree, both ways.
        for (sid, conn_ref) in &self.sids {
            let conn = self
                .conns
                .get(conn_ref.key)
                .unwrap_or_else(|| panic!("sid {sid} points to an empty slot"));
            assert_eq!(
                conn.generation, conn_ref.generation,
                "sid {sid}: stale slot"
            );
            assert!(conn.registered, "sid {sid}: connection not registered");
            assert_eq!(
                conn.sid().map(|s| &**s),
                Some(&**sid),
                "sid {sid}: wrong connection"
            );
        }
        let registered = self.conns.iter().filter(|(_, c)| c.registered).count();
        assert_eq!(
            registered,
            self.sids.len(),
            "registered connections missing from the map"
        );
        assert_eq!(self.handle.session_count(), self.sids.len());
        // The connection counts add up.
        assert_eq!(self.counted + self.refusing, self.conns.len());
        assert!(self.counted <= self.config.max_connections);
        assert_eq!(self.handle.connection_count(), self.counted);
        // Memory per connection is bounded: the queue can exceed the mark by at most one
        // message (accepted while under it) plus the control frames and HTTP answers after.
        let bound = self.config.max_queued_bytes + self.config.session.max_message_size + 64 * 1024;
        for (key, conn) in &self.conns {
            assert!(
                conn.queue.len() <= bound,
                "connection {key}: {} bytes queued",
                conn.queue.len()
            );
            // Every live connection has a deadline queued.
            assert!(conn.timer_at.is_some(), "connection {key} has no deadline");
        }
    }
}

/// What a handler's [`Context`] can do, on any transport.
impl<R: Reactor> Ops for Core<R> {
    fn send_to_sid(&mut self, sid: &str, message: Message) -> SendStatus {
        match self.lookup(sid) {
            Some(key) => self.send_on(key, message),
            None => match self.other_loop_of(sid) {
                Some(owner) => {
                    let command = Command::Send(sid.to_string(), message);
                    match self.handle.push_to(owner, command) {
                        Ok(()) => SendStatus::Forwarded,
                        Err(_) => SendStatus::NoSuchSession,
                    }
                }
                None => SendStatus::NoSuchSession,
            },
        }
    }

    fn broadcast(&mut self, message: &Message) -> usize {
        // Encoded once: the other loops get the same frame.
        let frame: Arc<[u8]> = Arc::from(message.to_server_frame());
        for other in (0..self.handle.loop_count()).filter(|&i| i != self.index) {
            if let Err(e) = self
                .handle
                .push_to(other, Command::Broadcast(frame.clone()))
            {
                log::warn!("broadcast not passed to loop {other}: {e}");
            }
        }
        self.broadcast_here(&frame)
    }

    fn close_sid(&mut self, sid: &str, code: CloseCode, reason: &str) -> bool {
        if self.lookup(sid).is_none() {
            if let Some(owner) = self.other_loop_of(sid) {
                let command = Command::Close(sid.to_string(), code, reason.to_string());
                return self.handle.push_to(owner, command).is_ok();
            }
        }
        self.close_here(sid, code, reason)
    }

    fn is_open(&self, sid: &str) -> bool {
        self.sids.contains_key(sid) || self.other_loop_of(sid).is_some()
    }

    fn sids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.sids.keys().map(|s| &**s))
    }

    fn session_count(&self) -> usize {
        if self.handle.loop_count() == 1 {
            self.sids.len()
        } else {
            self.handle.session_count()
        }
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    fn begin_shutdown(&mut self) {
        self.handle.begin_shutdown();
        self.shutdown_here();
    }
}

impl<R: Reactor> Core<R> {
    /// With several loops: the other loop that holds `sid`, if one does.
    fn other_loop_of(&self, sid: &str) -> Option<usize> {
        if self.handle.loop_count() == 1 {
            return None;
        }
        self.handle.owner(sid).filter(|&owner| owner != self.index)
    }

    /// Broadcast to this loop's sessions.
    fn broadcast_here(&mut self, frame: &Arc<[u8]>) -> usize {
        let mut queued = 0;
        let mut slow = Vec::new();
        let keys: Vec<usize> = self.sids.values().map(|c| c.key).collect();
        for key in keys {
            if self.over_mark(key) {
                slow.push(key);
                continue;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let Phase::WebSocket { session, .. } = &conn.phase else {
                continue;
            };
            if session.can_send() {
                conn.queue.push_shared(frame.clone());
                self.dirty.push(key);
                queued += 1;
            }
        }
        for key in slow {
            self.close_slow(key);
        }
        log::debug!(
            "broadcast a {}-byte frame to {queued} sessions",
            frame.len()
        );
        queued
    }

    fn close_here(&mut self, sid: &str, code: CloseCode, reason: &str) -> bool {
        let Some(key) = self.lookup(sid) else {
            return false;
        };
        let conn = &mut self.conns[key];
        let Some(session) = conn.session_mut() else {
            return false;
        };
        if session.close(code, reason).is_err() {
            return false;
        }
        conn.set_reason(CloseReason::ByServer {
            close: crate::close::CloseFrame::new(code, reason),
            answered: false,
        });
        self.touch(key);
        true
    }

    /// Start this loop's graceful shutdown.
    fn shutdown_here(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!("shutting down: closing {} sessions", self.sids.len());
        self.shutdown_deadline = Some(self.now + self.config.close_timeout);
        let keys: Vec<usize> = self.sids.values().map(|c| c.key).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.set_reason(CloseReason::Shutdown);
                if let Some(session) = conn.session_mut() {
                    let _ = session.close(CloseCode::GoingAway, "server shutdown");
                }
                self.touch(key);
            }
        }
    }
}

fn status_response(status: u16) -> Vec<u8> {
    let body = format!("{status} {}\n", handshake::reason_phrase(status));
    http_response(status, &[], "text/plain; charset=utf-8", body.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::server::Server;

    /// A connection handed from loop to loop `MAX_HOPS` times (reconnects of one sid racing
    /// each other) is refused with 503, not served by a loop that does not hold its sid.
    #[test]
    fn a_connection_handed_over_max_hops_times_is_refused() {
        let server = Server::builder()
            .bind("127.0.0.1:0")
            .workers(2)
            .build()
            .unwrap();
        let handle = server.handle();
        // As far as the directory knows, loop 1 holds "x".
        handle.claim(&Arc::from("x"), 1).unwrap();
        struct Nothing;
        impl Handler for Nothing {}
        let (_, thread) = server.spawn_each(|_| Nothing).unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (socket, peer) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let request = "GET /ws/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";
        handle.add_connection(0);
        let command = Command::Adopt {
            socket: mio::net::TcpStream::from_std(socket),
            peer,
            bytes: request.as_bytes().to_vec(),
            hops: MAX_HOPS,
        };
        handle.push_to(0, command).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert_eq!(handle.owner("x"), Some(1));
        drop(client);
        handle.shutdown();
        thread.join().unwrap().unwrap();
    }
}
