//! The loop's core: its state over any transport, and the steps that keep it consistent.
//!
//! Owns: [`Core`] (the connection slab, the sid map, the timer heap, the counts, the shutdown
//! deadline), admitting and removing connections, shutdown, deadlines (the policy is
//! `deadline.rs`'s; the core schedules them and acts on them), and the one step that every
//! driver runs after the events of a poll ([`Core::after_events`]). The rest of the core's
//! methods live by concern: `input.rs` (reading, the upgrade, dispatch), `output.rs`
//! (queueing and flushing, and the `Ops` behind a `Context`), `http_fallback.rs` (plain
//! HTTP), `handover.rs` (commands, and the other loops).
//! Must not: know about mio or sockets beyond the [`Reactor`] seam (the drivers are
//! `event_loop.rs` and `sim.rs`), or implement protocol rules (the session does).
//!
//! One invariant keeps the borrow structure simple: **only the loop itself removes a
//! connection**, never an operation a handler calls through its `Context`, so a connection
//! being processed still exists when a callback returns.

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use crate::close::CloseCode;
use crate::handshake::{http_response, RequestParser};

use super::budget::Budget;
use super::config::ServerConfig;
use super::connection::{Connection, Phase};
use super::deadline::{self, Expiry, Timing};
use super::handle::Handle;
use super::handler::{CloseReason, Context, Handler};
use super::http::too_many_connections;
use super::pool::BufferPool;
use super::timer::{ConnRef, Timers};
use super::topics::Topics;
use super::transport::Reactor;
#[cfg(any(test, feature = "fuzzing"))]
use super::workers::AddressKey;
use super::workers::{AddressTicket, Workers};

/// The application's data for a session (`Upgrade::with_data`).
pub(super) type SessionData = Box<dyn Any + Send>;

/// Connections refused with 503 that we still hold while their answer drains. Beyond this,
/// refused connections are closed at once.
const MAX_REFUSING: usize = 1024;

/// Why a new connection is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The server holds `max_connections`, none of this loop's still in its handshake.
    Full,
    /// Its address holds `max_connections_per_ip`.
    PerAddress,
}

/// The answer to a connection over `max_connections_per_ip`. RFC 6585 §4: 429 Too Many
/// Requests, "the user has sent too many requests", here too many connections from one
/// address; the server as a whole may have room, so it is not 503. Retry-After as for 503.
fn too_many_from_address() -> Vec<u8> {
    http_response(
        429,
        &[("Retry-After", "5")],
        "text/plain; charset=utf-8",
        b"too many connections from your address\n",
    )
}

/// The loop's state and logic, over any [`Reactor`]: everything a handler's
/// `Context` can reach.
pub(crate) struct Core<R: Reactor> {
    /// Which loop of the server this is (0 when there is one).
    pub(super) index: usize,
    pub(super) config: ServerConfig,
    pub(super) reactor: R,
    pub(super) conns: Slab<Connection<R::Stream>>,
    pub(super) sids: HashMap<Arc<str>, ConnRef>,
    timers: Timers,
    /// What this loop shares with the handles and the other loops.
    pub(super) workers: Arc<Workers>,
    next_generation: u64,
    /// Connections with queued bytes to flush once the current step is done.
    pub(super) dirty: Vec<usize>,
    /// Connections whose read budget ran out while data may be left.
    pub(super) read_again: Vec<ConnRef>,
    /// Connections counting toward `max_connections`, and those refused (429 or 503).
    pub(super) counted: usize,
    refusing: usize,
    pub(super) shutdown_deadline: Option<Instant>,
    pub(super) now: Instant,
    /// The connection whose message the handler is handling (`dispatch`), if any: a hint
    /// for `lookup`, which checks it.
    pub(super) handling: Option<usize>,
    /// Buffers of payloads already written, lent to the next messages read (`pool.rs`).
    pub(super) pool: BufferPool,
    /// This loop's share of the memory budget, and what its connections hold.
    pub(super) budget: Budget,
    /// What `pool` is charged in the budget (what it held at the end of the last step).
    pool_charged: usize,
    /// Connections not read while the budget is under pressure, read again once it is not.
    pub(super) budget_waiting: Vec<ConnRef>,
    /// Which sessions of this loop are subscribed to which topics.
    pub(super) topics: Topics,
    /// The sid whose `on_close` runs, with its data (see `call_on_close`).
    pub(super) closing_data: Option<(Arc<str>, Option<SessionData>)>,
}

impl<R: Reactor> Core<R> {
    pub(crate) fn new(
        config: ServerConfig,
        reactor: R,
        workers: Arc<Workers>,
        index: usize,
    ) -> Self {
        Core {
            index,
            reactor,
            conns: Slab::new(),
            sids: HashMap::new(),
            timers: Timers::default(),
            workers,
            next_generation: 0,
            dirty: Vec::new(),
            read_again: Vec::new(),
            counted: 0,
            refusing: 0,
            shutdown_deadline: None,
            now: Instant::now(),
            handling: None,
            pool: BufferPool::new(config.session.max_message_size),
            budget: Budget::new(config.memory_budget / config.workers.max(1)),
            pool_charged: 0,
            budget_waiting: Vec::new(),
            closing_data: None,
            topics: Topics::default(),
            config,
        }
    }

    /// What the loop does after the events of one poll (or one simulated step), the same
    /// for every transport: go on reading the connections whose read budget ran out, fire
    /// the deadlines that are due, flush, and take the next step of a shutdown. True once
    /// the loop may stop.
    pub(super) fn after_events<H: Handler>(&mut self, handler: &mut H, buf: &mut [u8]) -> bool {
        self.budget_step();
        self.read_again(handler, buf);
        self.fire_timers(handler);
        self.flush_dirty(handler);
        let stop = self.shutdown_step(handler);
        self.charge_pool();
        stop
    }

    /// Charge the recycled buffers (`pool`) against the memory budget as they are at the end
    /// of the step: memory the loop keeps, within the pool's bounds, for as long as it runs
    /// (dropped under pressure, see `budget_step`).
    fn charge_pool(&mut self) {
        let now = self.pool.held();
        self.budget.recharge(self.pool_charged, now);
        self.pool_charged = now;
    }

    /// The clock of this step: the mio loop reads it after each poll, the simulator moves it.
    pub(super) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// The soonest deadline of any connection.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Whether there is more to read without waiting for a readiness event.
    pub(super) fn has_reads_pending(&self) -> bool {
        !self.read_again.is_empty()
    }

    /// Whether a graceful shutdown has begun.
    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// A handle on the loops this one belongs to.
    pub(super) fn handle(&self) -> Handle {
        Handle::new(self.workers.clone())
    }

    // ----- Connections -------------------------------------------------------------------

    /// A new connection on this loop (accepted here, or connected in the simulator):
    /// admitted, or refused: 429 when its address holds `max_connections_per_ip` already,
    /// 503 when the server is full and no connection of this loop is still in its handshake
    /// (when one is, the oldest such is dropped and the newcomer admitted).
    pub(super) fn add(&mut self, socket: R::Stream, peer: SocketAddr) {
        let ticket = match self.take_address_slot(peer) {
            Ok(ticket) => ticket,
            Err(refusal) => return self.refuse(socket, peer, refusal),
        };
        // The limit is the server's, over all loops. The handles count admitted connections
        // only: one being refused holds no slot.
        if self.workers.connection_count() >= self.config.max_connections
            && !self.drop_oldest_handshake(peer)
        {
            // `ticket` is dropped here, which gives the address's slot back.
            return self.refuse(socket, peer, Refusal::Full);
        }
        if let Some(key) = self.add_connection(socket, peer, false) {
            self.conns[key].address_ticket = ticket;
            self.workers.add_connection(self.index);
        }
    }

    /// The slot of a new connection from `peer` under `max_connections_per_ip`, over all
    /// loops: `Ok(None)` when that limit is off, `Err` when the address holds it already.
    pub(super) fn take_address_slot(
        &self,
        peer: SocketAddr,
    ) -> Result<Option<AddressTicket>, Refusal> {
        let limit = self.config.max_connections_per_ip;
        if limit == 0 {
            return Ok(None);
        }
        match self.workers.take_address_slot(peer.ip(), limit) {
            Some(ticket) => Ok(Some(ticket)),
            None => Err(Refusal::PerAddress),
        }
    }

    /// Answer a connection that is not admitted (429 or 503), holding no slot, or close it at
    /// once when too many refused ones are draining already.
    pub(super) fn refuse(&mut self, socket: R::Stream, peer: SocketAddr, refusal: Refusal) {
        self.admit(socket, peer, Some(refusal));
    }

    /// The server is full: drop the oldest connection of this loop that is still in its
    /// handshake (its request head or a plain request's body not read yet, so no session
    /// and no handler state), to make room for `newcomer`. False when there is none: a
    /// session is never dropped for a newcomer. Otherwise a client could keep every slot
    /// with idle or half-sent heads, renewed before the handshake timeout. Costs one pass
    /// over the loop's connections, only when the server is full.
    pub(super) fn drop_oldest_handshake(&mut self, newcomer: SocketAddr) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| c.counted && c.in_handshake())
            .min_by_key(|(_, c)| c.generation)
            .map(|(key, _)| key);
        let Some(key) = oldest else {
            return false;
        };
        let mut conn = self.conns.remove(key);
        self.budget.recharge(conn.charged, 0);
        self.budget.step_down(ConnRef {
            key,
            generation: conn.generation,
        });
        self.reactor.release(&mut conn.socket);
        self.counted -= 1;
        self.workers.remove_connection(self.index);
        log::warn!(
            "server full (max_connections): dropping {}, still in its handshake after {:?}, \
             for {newcomer}",
            conn.peer,
            self.now.saturating_duration_since(conn.accepted_at)
        );
        true
    }

    /// Register a connection and give it its first deadline; with `refuse`, queue the 503
    /// instead of admitting it. `None` when it could not be kept (and is closed).
    pub(super) fn add_connection(
        &mut self,
        socket: R::Stream,
        peer: SocketAddr,
        refuse: bool,
    ) -> Option<usize> {
        self.admit(socket, peer, refuse.then_some(Refusal::Full))
    }

    fn admit(
        &mut self,
        mut socket: R::Stream,
        peer: SocketAddr,
        refusal: Option<Refusal>,
    ) -> Option<usize> {
        if refusal.is_some() && self.refusing >= MAX_REFUSING {
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
        if let Some(refusal) = refusal {
            let answer = match refusal {
                Refusal::Full => {
                    log::warn!(
                        "refusing {peer}: {} connections open (max_connections)",
                        self.counted
                    );
                    too_many_connections()
                }
                Refusal::PerAddress => {
                    log::warn!(
                        "refusing {peer}: {} connections from its address open \
                         (max_connections_per_ip)",
                        self.workers.address_slots().count(peer.ip())
                    );
                    too_many_from_address()
                }
            };
            conn.counted = false;
            self.refusing += 1;
            conn.queue.push_copy(&answer);
            conn.phase = Phase::Done;
            conn.closing_since = Some(self.now);
        } else {
            self.counted += 1;
            conn.handshake_ticket = Some(self.workers.handshake_ticket(self.index));
            log::debug!("accepted {peer}");
        }
        entry.insert(conn);
        self.mark_dirty(key);
        self.schedule(key);
        Some(key)
    }

    /// Tell the handles how many sessions this loop has.
    pub(super) fn report_counts(&self) {
        self.workers.set_session_count(self.index, self.sids.len());
    }

    /// The slab key of the session for `sid`, checked against the slot's generation so that
    /// a reused slot never gets what was meant for its previous occupant.
    pub(super) fn lookup(&self, sid: &str) -> Option<usize> {
        // Most sends answer the session whose event the handler is handling: found without
        // hashing the sid. A registered connection with this sid is the one the map holds
        // for it (the invariant `check_invariants` asserts), so this is the same answer.
        if let Some(conn) = self.handling.and_then(|key| self.conns.get(key)) {
            // The handler usually passes the very `&str` it was given: same address, no compare.
            let same = |own: &Arc<str>| {
                (own.as_ptr() == sid.as_ptr() && own.len() == sid.len()) || **own == *sid
            };
            if conn.registered && conn.sid().is_some_and(same) {
                return self.handling;
            }
        }
        let conn = *self.sids.get(sid)?;
        self.is_current(conn).then_some(conn.key)
    }

    pub(super) fn is_current(&self, conn: ConnRef) -> bool {
        self.conns
            .get(conn.key)
            .is_some_and(|c| c.generation == conn.generation)
    }

    /// Remove a connection: close it, and tell the handler if it had a session open.
    pub(super) fn remove<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        self.budget.recharge(conn.charged, 0);
        let this = ConnRef {
            key,
            generation: conn.generation,
        };
        self.budget.step_down(this);
        // Its subscriptions end with it, before the application hears of the close.
        if let Some(extras) = &conn.extras {
            self.topics.leave_all(&extras.topics, this);
        }
        self.reactor.release(&mut conn.socket);
        if conn.counted {
            self.counted -= 1;
            self.workers.remove_connection(self.index);
        } else {
            self.refusing -= 1;
        }
        // The address's slot comes back before `on_close` runs, so that whoever learns of the
        // close from the handler finds the slot free.
        conn.address_ticket = None;
        let reason = match conn.close_reason.take().map(|reason| *reason) {
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
            log::info!("close {} ({}): {reason}", sid.escape_debug(), conn.peer);
            let data = conn.extras.take().and_then(|e| e.data);
            self.call_on_close(handler, &sid, &reason, data);
        } else {
            log::debug!("connection from {} closed", conn.peer);
        }
    }

    /// The handler's `on_close` for `sid`, with the session's data still reachable through
    /// `Context::data` (the session is no longer in the sid map); the data is dropped after.
    pub(super) fn call_on_close<H: Handler>(
        &mut self,
        handler: &mut H,
        sid: &Arc<str>,
        reason: &CloseReason,
        data: Option<SessionData>,
    ) {
        let outer = self.closing_data.replace((sid.clone(), data));
        handler.on_close(&mut Context::new(self), sid, reason);
        self.closing_data = outer;
    }

    fn unregister_sid(&mut self, sid: &str, key: usize) {
        if self.sids.get(sid).is_some_and(|c| c.key == key) {
            self.sids.remove(sid);
            if self.workers.loop_count() > 1 {
                self.workers.release(sid, self.index);
            }
        }
        self.report_counts();
    }

    // ----- Shutdown ----------------------------------------------------------------------

    /// Start this loop's graceful shutdown.
    pub(super) fn shutdown_here(&mut self) {
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

    /// While shutting down: drop connections that never opened a session; true once the
    /// loop may stop (every connection gone, or the close timeout over).
    fn shutdown_step<H: Handler>(&mut self, handler: &mut H) -> bool {
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
    pub(super) fn close_all<H: Handler>(&mut self, handler: &mut H) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.set_reason(CloseReason::Shutdown);
            }
            self.remove(handler, key);
        }
    }

    // ----- The step after the events ------------------------------------------------------

    /// Continue reading the connections whose read budget ran out (or whose reading resumed
    /// after backpressure), then flush.
    fn read_again<H: Handler>(&mut self, handler: &mut H, buf: &mut [u8]) {
        for conn in std::mem::take(&mut self.read_again) {
            if self.is_current(conn) {
                self.read(handler, conn.key, buf, true);
            }
        }
        self.flush_dirty(handler);
    }

    /// Charge the connection at `key` what it holds now against the memory budget.
    pub(super) fn recharge(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            let holding = conn.holding();
            self.budget.recharge(conn.charged, holding);
            conn.charged = holding;
        }
    }

    /// The memory budget between steps: forget broadcast frames no queue holds; under
    /// pressure give back the recycled buffers; once pressure is over, read the connections
    /// that waited for it (reading checks again).
    fn budget_step(&mut self) {
        self.budget.prune_shared();
        if self.budget.under_pressure() {
            self.pool.clear();
        } else if !self.budget_waiting.is_empty() {
            for conn in std::mem::take(&mut self.budget_waiting) {
                if let Some(c) = self.conns.get_mut(conn.key) {
                    if c.generation == conn.generation {
                        c.budget_paused = false;
                        c.read_paused = false;
                        self.read_again.push(conn);
                    }
                }
            }
        }
    }

    /// Flush `key` at the end of the step (bytes were queued, or the socket became
    /// writable).
    pub(super) fn mark_dirty(&mut self, key: usize) {
        self.dirty.push(key);
    }

    // ----- Time --------------------------------------------------------------------------

    /// Make sure the timer heap wakes us no later than this connection's deadline.
    pub(super) fn schedule(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let at = deadline::deadline(&Timing::of(conn), &self.config, self.now);
        if conn.timer_at.is_some_and(|t| t <= at) {
            return; // An entry at or before `at` is queued; it re-checks when it fires.
        }
        let generation = conn.generation;
        self.conns[key].timer_at = Some(at);
        self.timers.push(at, ConnRef { key, generation });
    }

    fn fire_timers<H: Handler>(&mut self, handler: &mut H) {
        while let Some((at, conn_ref)) = self.timers.pop_due(self.now) {
            let Some(conn) = self.conns.get_mut(conn_ref.key) else {
                continue;
            };
            if conn.generation != conn_ref.generation || conn.timer_at != Some(at) {
                continue; // stale entry
            }
            conn.timer_at = None;
            let due = deadline::deadline(&Timing::of(conn), &self.config, self.now);
            if due > self.now {
                self.schedule(conn_ref.key);
                continue;
            }
            self.expire(handler, conn_ref.key);
        }
    }

    /// A connection's deadline passed: act on what the deadline policy says is due.
    fn expire<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let expiry = deadline::expiry(&Timing::of(&self.conns[key]), &self.config, self.now);
        let conn = &mut self.conns[key];
        match expiry {
            Expiry::HandshakeTimeout => {
                log::info!("handshake timeout for {}", conn.peer);
                self.remove(handler, key);
            }
            Expiry::MessageTimeout => {
                log::info!("{}: message not completed in time; closing", conn.peer);
                if let Some(session) = conn.session_mut() {
                    session.fail(CloseCode::PolicyViolation, "message timeout");
                }
                conn.set_reason(CloseReason::MessageTimeout);
                conn.message_since = None;
                self.touch(key);
            }
            Expiry::SendPing => {
                // RFC 6455 §5.5.2: a Ping as a keepalive, to see whether the peer is there.
                let pinged = conn.session_mut().is_some_and(|s| s.ping(b"").is_ok());
                if pinged {
                    conn.ping_sent_at = Some(self.now);
                    self.touch(key);
                } else {
                    self.remove(handler, key);
                }
            }
            Expiry::NoPong => {
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
            Expiry::CloseTimeout => {
                conn.set_reason(CloseReason::CloseTimeout);
                self.remove(handler, key);
            }
        }
    }
}

/// For the simulator: the connection count, and the invariants the fuzzer checks after every
/// step.
#[cfg(any(test, feature = "fuzzing"))]
impl<R: Reactor> Core<R> {
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
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
        assert_eq!(self.workers.session_count(), self.sids.len());
        // The connection counts add up.
        assert_eq!(self.counted + self.refusing, self.conns.len());
        assert!(self.counted <= self.config.max_connections);
        assert_eq!(self.workers.connection_count(), self.counted);
        // Each admitted connection still in its handshake is counted as such for the other
        // loops, and no other.
        let handshaking = self
            .conns
            .iter()
            .filter(|(_, c)| c.counted && c.in_handshake())
            .count();
        assert_eq!(self.workers.handshakes(self.index), handshaking);
        // Each admitted connection holds its address's slot while the limit is on, a refused
        // one never does, and the server-wide counts are those slots (one loop here), with
        // no entry left for an address without connections.
        let mut per_address: HashMap<AddressKey, usize> = HashMap::new();
        for (key, conn) in &self.conns {
            let limited = conn.counted && self.config.max_connections_per_ip > 0;
            assert_eq!(
                conn.address_ticket.is_some(),
                limited,
                "connection {key}: address slot"
            );
            if limited {
                *per_address
                    .entry(AddressKey::of(conn.peer.ip()))
                    .or_insert(0) += 1;
            }
        }
        let slots = self.workers.address_slots();
        assert_eq!(slots.addresses(), per_address.len());
        for (key, conn) in &self.conns {
            let n = per_address
                .get(&AddressKey::of(conn.peer.ip()))
                .copied()
                .unwrap_or(0);
            assert_eq!(slots.count(conn.peer.ip()), n, "connection {key}");
            assert!(n <= self.config.max_connections_per_ip || n == 0);
        }
        // Topics and the sessions' own lists agree, both ways, and name live connections.
        let mut subscriptions = 0;
        for (key, conn) in &self.conns {
            let this = ConnRef {
                key,
                generation: conn.generation,
            };
            for topic in conn.extras.iter().flat_map(|e| e.topics.iter()) {
                assert!(
                    self.topics.members(topic).any(|c| c == this),
                    "connection {key} lists {topic} but is not its member"
                );
                subscriptions += 1;
            }
        }
        assert_eq!(
            self.topics.total(),
            subscriptions,
            "members without a connection listing them"
        );
        // The memory budget's books: each connection is charged what it holds (every change
        // is charged by the end of a step), and the total is those charges plus the
        // broadcast frames, counted once.
        assert_eq!(
            self.pool_charged,
            self.pool.held(),
            "the buffer pool's charge"
        );
        let mut charged = self.budget.shared_bytes() + self.pool_charged;
        for (key, conn) in &self.conns {
            assert_eq!(
                conn.charged,
                conn.holding(),
                "connection {key}: stale charge"
            );
            charged += conn.charged;
        }
        assert_eq!(self.budget.held(), charged, "the budget's total");
        // Memory per connection is bounded: the queue can exceed the mark by at most one
        // message (accepted while under it) plus the control frames and HTTP answers after.
        let bound = self.config.max_queued_bytes + self.config.session.max_message_size + 64 * 1024;
        for (key, conn) in &self.conns {
            // The memory the queue holds, not only the bytes it will write (`charge` counts
            // each entry's slot and allocation; `len() <= charge()`).
            assert!(
                conn.queue.charge() <= bound,
                "connection {key}: {} bytes charged, {} queued",
                conn.queue.charge(),
                conn.queue.len()
            );
            // Every live connection has a deadline queued.
            assert!(conn.timer_at.is_some(), "connection {key} has no deadline");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::sim::Sim;

    struct Echo;
    impl Handler for Echo {
        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: crate::Message) {
            let _ = ctx.send(sid, message);
        }
    }

    fn upgrade(sid: &str) -> Vec<u8> {
        format!(
            "GET /ws/{sid} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes()
    }

    fn status_line(answer: &[u8]) -> String {
        let text = String::from_utf8_lossy(answer);
        text.lines().next().unwrap_or("").to_string()
    }

    /// Full: the oldest half-sent head makes room for a newcomer, and when only sessions are
    /// left the newcomer gets 503; the books (`check_invariants`, after every step) agree.
    #[test]
    fn a_full_loop_drops_its_oldest_handshake_never_a_session() {
        let config = ServerConfig {
            max_connections: 3,
            ..ServerConfig::default()
        };
        let mut sim = Sim::new(config, Echo).unwrap();
        let session = sim.connect().unwrap();
        sim.send(session, &upgrade("s"));
        assert!(status_line(&sim.receive(session, 1 << 16)).starts_with("HTTP/1.1 101 "));
        let old = sim.connect().unwrap();
        sim.send(old, b"GET /ws/old HTTP/1.1\r\n");
        sim.advance(Duration::from_secs(1));
        let young = sim.connect().unwrap();
        sim.send(young, b"GET /ws/young HTTP/1.1\r\n");
        // Full. The newcomer takes the oldest handshake's slot.
        let newcomer = sim.connect().unwrap();
        assert!(sim.is_dropped(old));
        assert!(!sim.is_dropped(young) && !sim.is_dropped(session));
        sim.send(newcomer, &upgrade("n"));
        assert!(status_line(&sim.receive(newcomer, 1 << 16)).starts_with("HTTP/1.1 101 "));
        // Then the young one goes too; then only sessions are left: 503.
        let second = sim.connect().unwrap();
        assert!(sim.is_dropped(young));
        sim.send(second, &upgrade("m"));
        assert!(status_line(&sim.receive(second, 1 << 16)).starts_with("HTTP/1.1 101 "));
        let refused = sim.connect().unwrap();
        assert!(status_line(&sim.receive(refused, 1 << 16)).starts_with("HTTP/1.1 503 "));
        assert_eq!(sim.sessions(), (3, 0));
        assert_eq!(sim.connection_count(), 4, "three sessions and one refused");
        sim.finish();
    }

    /// Over the per-address limit: 429 with Retry-After, the address's connections carry on,
    /// and its slot comes back when one of them closes.
    #[test]
    fn the_per_address_limit_refuses_with_429_and_gives_slots_back() {
        let config = ServerConfig {
            max_connections_per_ip: 2,
            ..ServerConfig::default()
        };
        let mut sim = Sim::new(config, Echo).unwrap();
        let a = sim.connect().unwrap();
        let b = sim.connect().unwrap();
        sim.send(b, &upgrade("b"));
        let refused = sim.connect().unwrap();
        let answer = String::from_utf8(sim.receive(refused, 1 << 16)).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nRetry-After: 5\r\n"), "{answer}");
        assert!(!sim.is_dropped(a) && !sim.is_dropped(b));
        sim.reset(a);
        let c = sim.connect().unwrap();
        sim.send(c, &upgrade("c"));
        assert!(status_line(&sim.receive(c, 1 << 16)).starts_with("HTTP/1.1 101 "));
        sim.finish();
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddressKey::of(ip("::ffff:10.0.0.1")),
            AddressKey::of(ip("10.0.0.1"))
        );
        assert_ne!(
            AddressKey::of(ip("10.0.0.1")),
            AddressKey::of(ip("10.0.0.2"))
        );
    }
}
