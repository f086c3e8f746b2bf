//! The loop's output side: what goes to connections, and when it is written.
//!
//! Owns: queueing (a message, a broadcast's shared frame, a close), the high-water mark and
//! closing clients that do not read, flushing write queues (one `writev` per connection per
//! step, WRITABLE interest only while bytes wait, closing TCP once everything is out), and
//! the [`Ops`] a handler's `Context` calls. Must not: read from sockets, or call the handler
//! other than through `remove` (its `on_close`).

use std::any::Any;
use std::sync::Arc;

use crate::close::CloseCode;
use crate::session::Message;

use super::connection::Phase;
use super::core::Core;
use super::handle::Handle;
use super::handler::{CloseReason, Handler, Ops, SendStatus};
use super::timer::ConnRef;
use super::transport::Reactor;
use super::workers::Command;

impl<R: Reactor> Core<R> {
    /// After any change to a connection: collect the session's output, note whether our
    /// Close went out, schedule its next deadline, and flush it at the end of the step.
    pub(super) fn touch(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.take_session_output();
        if conn.handshake_ticket.is_some() && !conn.in_handshake() {
            conn.handshake_ticket = None;
        }
        if conn.closing_since.is_none() {
            if let Phase::WebSocket { session, .. } = &conn.phase {
                if session.close_sent().is_some() {
                    conn.closing_since = Some(self.now);
                }
            }
        }
        self.schedule(key);
        self.mark_dirty(key);
        self.recharge(key);
    }

    pub(super) fn flush_dirty<H: Handler>(&mut self, handler: &mut H) {
        while let Some(key) = self.dirty.pop() {
            self.flush(handler, key);
        }
    }

    fn flush<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let flushed = conn.queue.flush(&mut conn.socket, &mut self.pool);
        let holding = conn.holding();
        self.budget.recharge(conn.charged, holding);
        conn.charged = holding;
        if conn.read_paused && conn.queue.charge() < self.config.max_queued_bytes {
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

    /// Queue `message` on the connection at `key`, unless that would take its queue over
    /// the high-water mark (1008) or the loop over its memory budget (1013).
    fn send_on(&mut self, key: usize, message: Message) -> SendStatus {
        // What the frame will hold: its payload (as it is; compression only shrinks it) and
        // at most a 14-byte header.
        let cost = message.len() + crate::frame::MAX_HEADER_LEN;
        if self.would_cross_mark(key, cost) {
            self.close_slow(key);
            return SendStatus::QueueFull;
        }
        let open = self.conns.get(key).is_some_and(
            |c| matches!(&c.phase, Phase::WebSocket { session, .. } if session.can_send()),
        );
        if open && !self.budget.admits(cost) {
            self.close_overloaded(key, cost);
            return SendStatus::Overloaded;
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
                conn.queue.push_frame(header, payload, &mut self.pool);
                self.mark_dirty(key);
                SendStatus::Queued
            }
            Err(_) => SendStatus::Closing,
        }
    }

    /// Whether `cost` more bytes would take the connection's queue over the high-water mark,
    /// after giving the socket a chance to take some of it (the loop flushes only between
    /// events, and one event may send many messages). An empty queue takes anything, so that
    /// one message larger than the mark still goes out to a client that reads. A write
    /// error is left for the loop's flush to find. The mark bounds the memory the queue
    /// holds (`WriteQueue::charge`), not only the bytes it will write: a queue of 2-byte
    /// frames holds many times their length.
    fn would_cross_mark(&mut self, key: usize, cost: usize) -> bool {
        let max = self.config.max_queued_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let crosses = |charge: usize| charge > 0 && charge.saturating_add(cost) > max;
        if !crosses(conn.queue.charge()) {
            return false;
        }
        let _ = conn.queue.flush(&mut conn.socket, &mut self.pool);
        crosses(conn.queue.charge())
    }

    /// A send to the connection at `key` does not fit in the memory budget: close it with
    /// 1013 behind what is already queued.
    fn close_overloaded(&mut self, key: usize, cost: usize) {
        let held = self.budget.held();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Phase::WebSocket { session, sid } = &mut conn.phase {
            if session
                .close(CloseCode::TryAgainLater, "server memory budget spent")
                .is_ok()
            {
                log::warn!(
                    "{}: a {cost}-byte message does not fit in the memory budget ({held} of {} \
                     bytes held); closing with 1013",
                    sid.escape_debug(),
                    self.config.memory_budget
                );
            }
        }
        conn.set_reason(CloseReason::Overloaded);
        self.touch(key);
    }

    /// A client that does not read: close it (1008) behind what is already queued.
    fn close_slow(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let (queued, charge) = (conn.queue.len(), conn.queue.charge());
        if let Phase::WebSocket { session, sid } = &mut conn.phase {
            if session
                .close(CloseCode::PolicyViolation, "write queue full")
                .is_ok()
            {
                log::warn!(
                    "{}: {queued} bytes queued holding {charge} bytes, over the high-water \
                     mark; closing",
                    sid.escape_debug()
                );
            }
        }
        conn.set_reason(CloseReason::WriteQueueFull);
        self.touch(key);
    }

    /// Broadcast to this loop's sessions (see `queue_shared`).
    pub(super) fn broadcast_here(&mut self, frame: &Arc<[u8]>) -> usize {
        // The sessions in slab order (the registered connections are exactly the sid map's),
        // so that queueing and flushing walk the connections' memory in order rather than in
        // the map's hash order: at 10,000 sessions the slab is far larger than the caches.
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.registered)
            .map(|(key, _)| key)
            .collect();
        self.queue_shared(keys, frame)
    }

    /// Publish to the subscribers of `topic` on this loop (see `queue_shared`).
    pub(super) fn publish_here(&mut self, topic: &str, frame: &Arc<[u8]>) -> usize {
        let mut keys: Vec<usize> = self
            .topics
            .members(topic)
            .filter(|c| self.is_current(*c))
            .map(|c| c.key)
            .collect();
        // In slab order, as a broadcast (`broadcast_here`).
        keys.sort_unstable();
        self.queue_shared(keys, frame)
    }

    /// Subscribe (or unsubscribe) the session `sid` of this loop to `topic`; false when no
    /// open session here has it, or it already was (or was not).
    pub(super) fn subscribe_here(&mut self, sid: &str, topic: &str, join: bool) -> bool {
        let Some(key) = self.lookup(sid) else {
            return false;
        };
        let this = ConnRef {
            key,
            generation: self.conns[key].generation,
        };
        if join {
            let Some(name) = self.topics.join(topic, this) else {
                return false;
            };
            self.conns[key].extras_mut().topics.push(name);
            true
        } else {
            if !self.topics.leave(topic, this) {
                return false;
            }
            let conn = &mut self.conns[key];
            if let Some(extras) = conn.extras.as_mut() {
                extras.topics.retain(|t| &**t != topic);
            }
            conn.settle_extras();
            true
        }
    }

    /// Queue one shared frame on the sessions at `keys` that can take it: one frame for all,
    /// counted once in the memory budget, and not queued at all when it does not fit there;
    /// a session whose queue it would take over the high-water mark is closed with 1008
    /// instead. Returns how many queued it.
    pub(super) fn queue_shared(&mut self, keys: Vec<usize>, frame: &Arc<[u8]>) -> usize {
        if !self.budget.admits(frame.len()) {
            log::warn!(
                "a {}-byte frame for {} sessions does not fit in the memory budget ({} of {} \
                 bytes held); not sent",
                frame.len(),
                keys.len(),
                self.budget.held(),
                self.config.memory_budget
            );
            return 0;
        }
        let mut queued = 0;
        let mut slow = Vec::new();
        for key in keys {
            if self.would_cross_mark(key, frame.len()) {
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
        if queued > 0 {
            self.budget.track_shared(frame);
        }
        for key in slow {
            self.close_slow(key);
        }
        log::debug!(
            "queued a shared {}-byte frame for {queued} sessions",
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
}

/// What a handler's [`Context`] can do, on any transport.
impl<R: Reactor> Ops for Core<R> {
    fn send_to_sid(&mut self, sid: &str, message: Message) -> SendStatus {
        match self.lookup(sid) {
            Some(key) => self.send_on(key, message),
            None => match self.other_loop_of(sid) {
                Some(owner) => {
                    let command = Command::Send(sid.to_string(), message);
                    match self.workers.push_to(owner, command) {
                        Ok(()) => SendStatus::Forwarded,
                        Err(_) => SendStatus::NoSuchSession,
                    }
                }
                None => SendStatus::NoSuchSession,
            },
        }
    }

    fn publish(&mut self, topic: &str, message: &Message) -> usize {
        // Encoded once: the other loops get the same frame.
        let frame: Arc<[u8]> = Arc::from(message.to_server_frame());
        if self.workers.loop_count() > 1 {
            let name: Arc<str> = Arc::from(topic);
            for other in (0..self.workers.loop_count()).filter(|&i| i != self.index) {
                let command = Command::Publish(name.clone(), frame.clone());
                if let Err(e) = self.workers.push_to(other, command) {
                    log::warn!("publish not passed to loop {other}: {e}");
                }
            }
        }
        self.publish_here(topic, &frame)
    }

    fn send_many(&mut self, sids: &[&str], message: &Message) -> usize {
        let frame: Arc<[u8]> = Arc::from(message.to_server_frame());
        let mut here = Vec::new();
        let mut elsewhere: Vec<Vec<String>> = vec![Vec::new(); self.workers.loop_count()];
        for sid in sids {
            match self.lookup(sid) {
                Some(key) => here.push(key),
                None => {
                    if let Some(owner) = self.other_loop_of(sid) {
                        elsewhere[owner].push(sid.to_string());
                    }
                }
            }
        }
        for (owner, sids) in elsewhere.into_iter().enumerate() {
            if !sids.is_empty() {
                let command = Command::SendFrame(sids, frame.clone());
                if let Err(e) = self.workers.push_to(owner, command) {
                    log::warn!("sends not passed to loop {owner}: {e}");
                }
            }
        }
        here.sort_unstable();
        here.dedup();
        self.queue_shared(here, &frame)
    }

    fn subscribe(&mut self, sid: &str, topic: &str, join: bool) -> bool {
        if self.lookup(sid).is_none() {
            if let Some(owner) = self.other_loop_of(sid) {
                let command = Command::Subscribe(sid.to_string(), topic.to_string(), join);
                return self.workers.push_to(owner, command).is_ok();
            }
        }
        self.subscribe_here(sid, topic, join)
    }

    fn subscribers(&self, topic: &str) -> usize {
        self.topics.count(topic)
    }

    fn broadcast(&mut self, message: &Message) -> usize {
        // Encoded once: the other loops get the same frame.
        let frame: Arc<[u8]> = Arc::from(message.to_server_frame());
        for other in (0..self.workers.loop_count()).filter(|&i| i != self.index) {
            if let Err(e) = self
                .workers
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
                return self.workers.push_to(owner, command).is_ok();
            }
        }
        self.close_here(sid, code, reason)
    }

    fn is_open(&self, sid: &str) -> bool {
        self.sids.contains_key(sid) || self.other_loop_of(sid).is_some()
    }

    fn data(&mut self, sid: &str) -> Option<&mut (dyn Any + Send)> {
        if self.closing_data.as_ref().is_some_and(|(c, _)| **c == *sid) {
            return self.closing_data.as_mut()?.1.as_deref_mut();
        }
        let key = self.lookup(sid)?;
        self.conns[key].extras.as_mut()?.data.as_deref_mut()
    }

    fn ping(&mut self, sid: &str, payload: &[u8]) -> bool {
        let Some(key) = self.lookup(sid) else {
            return false;
        };
        let pinged = self.conns[key]
            .session_mut()
            .is_some_and(|s| s.ping(payload).is_ok());
        if pinged {
            self.touch(key);
        }
        pinged
    }

    fn queued_bytes(&self, sid: &str) -> Option<usize> {
        self.lookup(sid).map(|key| self.conns[key].queue.charge())
    }

    fn protocol(&self, sid: &str) -> Option<&str> {
        self.conns[self.lookup(sid)?]
            .extras
            .as_ref()?
            .protocol
            .as_deref()
    }

    fn extensions(&self, sid: &str) -> Option<&str> {
        self.conns[self.lookup(sid)?]
            .extras
            .as_ref()?
            .extensions
            .as_deref()
    }

    fn peer_addr(&self, sid: &str) -> Option<std::net::SocketAddr> {
        self.lookup(sid).map(|key| self.conns[key].peer)
    }

    fn sids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.sids.keys().map(|s| &**s))
    }

    fn session_count(&self) -> usize {
        if self.workers.loop_count() == 1 {
            self.sids.len()
        } else {
            self.workers.session_count()
        }
    }

    fn handle(&self) -> Handle {
        Core::handle(self)
    }

    fn begin_shutdown(&mut self) {
        self.workers.begin_shutdown();
        self.shutdown_here();
    }
}
