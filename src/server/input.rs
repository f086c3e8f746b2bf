//! The loop's input side: bytes from a connection, through its phase, to the handler.
//!
//! Owns: reading a connection (with a budget, and backpressure), feeding the request parser
//! or the session, the upgrade (accept, route, claim the sid, answer permessage-deflate,
//! open the session, replace an older one with the same sid), and handing session events to
//! the handler in order. Must not: flush write queues (`output.rs` does; the one exception is
//! the last chance at end of input) or decide deadlines; a request that is not an upgrade
//! goes to `http_fallback.rs`.

use std::io::{self, Read};
use std::sync::Arc;

use crate::close::CloseCode;
use crate::error::ProtocolError;
use crate::handshake::{self, Request};
use crate::session::{Event, Role, Session};

use super::connection::Phase;
use super::core::Core;
use super::handler::{CloseReason, Context, Handler};
use super::http::status_response;
use super::route::RouteMatch;
use super::timer::ConnRef;
use super::transport::Reactor;
use super::upgrade::{Accepted, Decision, UpgradeRequest};

/// Reads from one connection per readiness event before others get a turn.
const READ_BUDGET: usize = 16;

impl<R: Reactor> Core<R> {
    /// Read until the socket is empty, the budget is spent, or the connection ends.
    ///
    /// A read shorter than the buffer means the socket was empty a moment ago, and new data
    /// raises a new readiness event; so unless `drain` is set, the loop stops there instead
    /// of paying one more `recv` just to see `WouldBlock` (a syscall per message on a
    /// request/response connection). `drain` is set when that event will not come: the
    /// event also reported the peer's FIN or an error, or reading resumes after a pause.
    pub(super) fn read<H: Handler>(
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
            if conn.queue.charge() >= max_queued {
                // Backpressure: what the client sends waits in the kernel until it has read
                // what we owe it; `flush` resumes reading once the queue is below the mark.
                conn.read_paused = true;
                return;
            }
            let this = ConnRef {
                key,
                generation: conn.generation,
            };
            if !self.budget.may_read(this, conn.charged) {
                // The memory budget is under pressure and this connection holds a large
                // share: what it sends waits in the kernel until the pressure is over.
                conn.read_paused = true;
                if !conn.budget_paused {
                    conn.budget_paused = true;
                    log::debug!(
                        "{}: holds {} bytes, {} held in all: not read for now",
                        conn.peer,
                        conn.charged,
                        self.budget.held()
                    );
                    self.budget_waiting.push(this);
                }
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

    pub(super) fn on_data<H: Handler>(&mut self, handler: &mut H, key: usize, data: &[u8]) {
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
                // What the message may still take of the memory budget (1013 beyond).
                let held = session.buffered_bytes();
                session.set_receive_allowance(self.budget.allowance(held));
                let result = session.receive_pooled(data, &mut self.pool);
                // The message deadline runs from the first byte of an unfinished message.
                if !session.is_mid_message() {
                    conn.message_since = None;
                } else if conn.message_since.is_none() {
                    conn.message_since = Some(self.now);
                }
                let done = session.buffered_bytes() == 0;
                match result {
                    Err(ProtocolError::Overloaded) => {
                        log::warn!(
                            "{}: its next frame does not fit in the memory budget ({} of {} \
                             bytes held); closing with 1013",
                            conn.peer,
                            self.budget.held(),
                            self.config.memory_budget
                        );
                        conn.set_reason(CloseReason::Overloaded);
                    }
                    Err(e) => {
                        log::info!("protocol error from {}: {e}", conn.peer);
                        conn.set_reason(CloseReason::ProtocolError(e));
                    }
                    Ok(()) => {}
                }
                if done {
                    let generation = conn.generation;
                    self.budget.step_down(ConnRef { key, generation });
                }
                // The messages completed are handed over: charge what is left before the
                // handler sends (an echo then moves the message, charged once).
                self.recharge(key);
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
        let _ = conn.queue.flush(&mut conn.socket, &mut self.pool);
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
        let matched = match self.config.route.matches(&request) {
            Ok(matched) => matched,
            Err(status) => {
                log::info!(
                    "upgrade to {} from {peer} refused: {status}",
                    request.path().escape_debug()
                );
                return self.respond(key, status_response(status));
            }
        };
        if self.shutdown_deadline.is_some() {
            return self.respond(key, status_response(503));
        }
        let Some(decided) = self.decide_upgrade(handler, key, &request, &matched) else {
            return;
        };
        // RFC 6455 §4.2.2: the subprotocol is one the client offered: the application's
        // choice, or the first of ours (in our order of preference) the client offered.
        let offered = accepted.offered_protocols();
        let protocol = match &decided.protocol {
            Some(chosen) if offered.contains(chosen) => Some(chosen.clone()),
            Some(chosen) => {
                log::error!(
                    "upgrade from {peer}: the application chose the subprotocol {:?}, which \
                     the client did not offer ({offered:?}); answering 500",
                    chosen.escape_debug().to_string()
                );
                return self.respond(key, status_response(500));
            }
            None => self
                .config
                .protocols
                .iter()
                .find(|ours| offered.contains(ours))
                .cloned(),
        };
        let sid: Arc<str> = match (&decided.sid, &matched.sid) {
            (Some(sid), _) | (None, Some(sid)) => Arc::from(sid.as_str()),
            // A pattern without {sid}: a sid no other connection of this server has.
            (None, None) => Arc::from(format!(
                "anon-{}-{}",
                self.index, self.conns[key].generation
            )),
        };
        let Some(decided) = self.claim_or_hand_over(key, &sid, &request, rest, decided) else {
            return;
        };
        let mut session = Session::new(Role::Server, self.config.session);
        let extensions = self.deflate_answer(&accepted, &mut session);
        let response = accepted.response_with(protocol.as_deref(), extensions.as_deref());
        let conn = &mut self.conns[key];
        conn.queue.push_copy_pooled(&response, &mut self.pool);
        conn.phase = Phase::WebSocket {
            session,
            sid: sid.clone(),
        };
        let extras = conn.extras_mut();
        extras.data = decided.data;
        extras.protocol = protocol;
        extras.extensions = extensions;
        conn.settle_extras();
        self.register(handler, key, sid);
        // A client may send its first frames in the same packet as the request (§4.1 lets
        // it send as soon as it has the 101; a pipelining client sends earlier).
        if !rest.is_empty() {
            self.on_data(handler, key, rest);
        }
        self.mark_dirty(key);
    }

    /// The application's decision on the upgrade at `key`: made by the loop that handed the
    /// connection over, or asked of the handler now. `None` when it was rejected (the answer
    /// is queued) or the server began shutting down meanwhile (503).
    fn decide_upgrade<H: Handler>(
        &mut self,
        handler: &mut H,
        key: usize,
        request: &Request,
        matched: &RouteMatch,
    ) -> Option<Accepted> {
        if let Some(decided) = self.conns[key]
            .extras
            .as_mut()
            .and_then(|e| e.decided.take())
        {
            return Some(decided);
        }
        let peer = self.conns[key].peer;
        let trusted = self.config.trusted_proxies.clone();
        let view = UpgradeRequest {
            request,
            params: &matched.params,
            sid: matched.sid.as_deref(),
            peer,
            trusted_proxies: &trusted,
        };
        let upgrade = handler.on_upgrade(&mut Context::new(self), &view);
        match upgrade.0 {
            Decision::Reject(response) => {
                log::info!(
                    "upgrade to {} from {peer} refused by the application: {}",
                    request.path().escape_debug(),
                    response.status
                );
                self.respond(key, response.to_bytes());
                None
            }
            // The handler may have started a shutdown.
            Decision::Accept(_) if self.shutdown_deadline.is_some() => {
                self.respond(key, status_response(503));
                None
            }
            Decision::Accept(accepted) => Some(accepted),
        }
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
                    "close {} ({}): replaced by a newer connection",
                    sid.escape_debug(),
                    conn.peer
                );
                conn.registered = false;
                conn.set_reason(CloseReason::Replaced);
                if let Some(session) = conn.session_mut() {
                    let _ = session.close(CloseCode::Private(4000), "replaced");
                }
                let data = conn.extras.as_mut().and_then(|e| e.data.take());
                self.sids.remove(&sid);
                self.touch(old.key);
                // The old session ends for the application before the new one begins.
                self.call_on_close(handler, &sid, &CloseReason::Replaced, data);
            }
        }
        let conn = &mut self.conns[key];
        conn.registered = true;
        let generation = conn.generation;
        log::info!("open {} ({})", sid.escape_debug(), conn.peer);
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
                    log::debug!(
                        "message from {}: {} bytes",
                        sid.escape_debug(),
                        message.len()
                    );
                    if conn.registered {
                        self.handling = Some(key);
                        handler.on_message(&mut Context::new(self), &sid, message);
                        self.handling = None;
                    }
                }
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(close) => {
                    log::debug!(
                        "close from {}: {} {:?}",
                        sid.escape_debug(),
                        close.code,
                        close.reason
                    );
                    conn.set_reason(CloseReason::ByClient(close));
                }
            }
        }
    }
}
