//! The loop's side of several loops (and of the handles): executing commands, and handing
//! connections from loop to loop.
//!
//! Owns: [`Core::run_command`] for what the handles and the other loops queue, balancing
//! accepted connections across loops, adopting a connection another loop handed over, and
//! handing an upgrade to the loop that holds its sid. Must not: touch the shared state
//! other than through `workers.rs`, nor open sessions itself (`input.rs` replays the
//! upgrade).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::handshake::Request;

use super::core::{Core, Refusal};
use super::handler::{Handler, Ops, SendStatus};
use super::http::status_response;
use super::timer::ConnRef;
use super::transport::{Reactor, Socket};
use super::upgrade::Accepted;
use super::workers::{AddressTicket, Command};

/// How often one connection may be handed from loop to loop before it is served where it is
/// (only a sid moving between loops at that very moment makes a second hand-over happen).
const MAX_HOPS: u8 = 4;

/// What comes with a connection handed over by another loop (`Command::Adopt`).
struct Handover {
    peer: SocketAddr,
    hops: u8,
    ticket: Option<AddressTicket>,
    evict: bool,
    decided: Option<Box<Accepted>>,
}

impl<R: Reactor> Core<R> {
    /// Execute a command a handle or another loop queued for this loop.
    pub(super) fn run_command<H: Handler>(&mut self, handler: &mut H, command: Command) {
        match command {
            Command::Send(sid, message) => {
                let status = self.send_to_sid(&sid, message);
                if status != SendStatus::Queued {
                    log::debug!("send to {} from a handle: {status:?}", sid.escape_debug());
                }
            }
            // A command acts on this loop only: a handle (or another loop) sent every loop
            // its own copy.
            Command::Broadcast(frame) => {
                self.broadcast_here(&frame);
            }
            Command::Publish(topic, frame) => {
                self.publish_here(&topic, &frame);
            }
            Command::SendFrame(sids, frame) => {
                let keys: Vec<usize> = sids.iter().filter_map(|sid| self.lookup(sid)).collect();
                self.queue_shared(keys, &frame);
            }
            Command::Subscribe(sid, topic, join) => {
                if !self.subscribe_here(&sid, &topic, join) {
                    log::debug!(
                        "subscription of {} from a handle: no open session",
                        sid.escape_debug()
                    );
                }
            }
            Command::Close(sid, code, reason) => {
                if !self.close_sid(&sid, code, &reason) {
                    log::debug!(
                        "close of {} from a handle: no open session",
                        sid.escape_debug()
                    );
                }
            }
            Command::Shutdown => self.shutdown_here(),
            Command::Adopt {
                socket,
                peer,
                bytes,
                hops,
                ticket,
                evict,
                decided,
            } => {
                let handover = Handover {
                    peer,
                    hops,
                    ticket,
                    evict,
                    decided,
                };
                self.adopt(handler, socket, &bytes, handover)
            }
        }
    }

    /// Loop 0's accepted socket: served here, or handed to the loop with the fewest
    /// connections. The connection limit is the server's, over all loops: when the server is
    /// full, the newcomer stays here if this loop has a connection still in its handshake to
    /// drop for it (or none has), else it goes to a loop that has one, which drops it.
    pub(super) fn balance(&mut self, socket: R::Stream, peer: SocketAddr) {
        let loops = self.workers.loop_count();
        let full = loops > 1 && self.workers.connection_count() >= self.config.max_connections;
        let evict_on = if full && self.workers.handshakes(self.index) == 0 {
            self.workers.loop_with_handshakes(self.index)
        } else {
            None
        };
        let target = evict_on.unwrap_or_else(|| self.workers.least_loaded());
        if loops == 1 || (full && evict_on.is_none()) || target == self.index {
            return self.add(socket, peer);
        }
        // Counted for its address now, server-wide, so that a burst from one address is
        // refused here rather than after it reached the other loops.
        let ticket = match self.take_address_slot(peer) {
            Ok(ticket) => ticket,
            Err(refusal) => return self.refuse(socket, peer, refusal),
        };
        let Some(socket) = R::into_socket(socket) else {
            return;
        };
        let evict = evict_on.is_some();
        let command = Command::Adopt {
            socket,
            peer,
            bytes: Vec::new(),
            hops: 0,
            ticket,
            evict,
            decided: None,
        };
        // Counted for the target now, so that the next accept sees its share (unless it is
        // to take the place of one of the target's, counted already).
        if !evict {
            self.workers.add_connection(target);
        }
        if let Err(e) = self.workers.push_to(target, command) {
            log::warn!("cannot hand {peer} to loop {target}: {e}; closing it");
            if !evict {
                self.workers.remove_connection(target);
            }
        }
    }

    /// A connection handed over by another loop, with what was read from it so far. It was
    /// admitted under the server's connection limit already, and counted for this loop;
    /// or, with `evict`, it takes the place of this loop's oldest connection still in its
    /// handshake, and is refused (503) when there is none any more.
    fn adopt<H: Handler>(
        &mut self,
        handler: &mut H,
        socket: Socket,
        bytes: &[u8],
        handover: Handover,
    ) {
        let Handover {
            peer,
            hops,
            ticket,
            evict,
            decided,
        } = handover;
        let Some(socket) = R::from_socket(socket) else {
            if !evict {
                self.workers.remove_connection(self.index);
            }
            return;
        };
        if evict {
            if self.shutdown_deadline.is_some() || !self.drop_oldest_handshake(peer) {
                return self.refuse(socket, peer, Refusal::Full);
            }
            self.workers.add_connection(self.index);
        }
        let added = if self.shutdown_deadline.is_some() {
            log::debug!("shutting down: connection from {peer} closed");
            None
        } else {
            self.add_connection(socket, peer, false)
        };
        let Some(key) = added else {
            self.workers.remove_connection(self.index);
            return;
        };
        self.conns[key].hops = hops;
        self.conns[key].address_ticket = ticket;
        if let Some(decided) = decided {
            self.conns[key].extras_mut().decided = Some(*decided);
        }
        if !bytes.is_empty() {
            self.on_data(handler, key, bytes);
        }
        // A TLS stream may hold decrypted bytes the other loop had no room to read, which no
        // readiness event will announce here: read once after the step.
        if let Some(conn) = self.conns.get(key) {
            let generation = conn.generation;
            self.read_again.push(ConnRef { key, generation });
        }
    }

    /// With several loops: claim `sid` for this loop; the application's decision back when
    /// this loop is to serve it. When another loop holds it, hand the connection at `key`
    /// over to that loop with the bytes read from it so far (`request`, then `rest`) and the
    /// decision (so that the application is not asked twice, and the session's data lives
    /// on the session's loop): the loop that holds the sid replays the request, so its
    /// replacement of the old session happens in one place, in order.
    pub(super) fn claim_or_hand_over(
        &mut self,
        key: usize,
        sid: &Arc<str>,
        request: &Request,
        rest: &[u8],
        mut decided: Accepted,
    ) -> Option<Accepted> {
        if self.workers.loop_count() == 1 {
            return Some(decided);
        }
        let owner = match self.workers.claim(sid, self.index) {
            Ok(()) => return Some(decided),
            Err(owner) => owner,
        };
        let hops = self.conns[key].hops;
        if hops >= MAX_HOPS {
            // The sid keeps moving between loops (reconnects racing each other): refuse
            // rather than serve a sid that the directory says another loop holds.
            log::warn!(
                "{}: handed over {hops} times; refusing the upgrade",
                sid.escape_debug()
            );
            self.respond(key, status_response(503));
            return None;
        }
        let mut bytes = request.raw().to_vec();
        bytes.extend_from_slice(rest);
        let mut conn = self.conns.try_remove(key)?;
        self.budget.recharge(conn.charged, 0);
        self.budget.step_down(ConnRef {
            key,
            generation: conn.generation,
        });
        self.reactor.deregister(&mut conn.socket);
        self.counted -= 1;
        self.workers.remove_connection(self.index);
        let peer = conn.peer;
        log::debug!(
            "{} lives on loop {owner}: handing {peer} over",
            sid.escape_debug()
        );
        let socket = R::into_socket(conn.socket)?;
        self.workers.add_connection(owner);
        // The sid is decided: a fresh one must not be drawn again over there.
        decided.sid = Some(sid.to_string());
        let command = Command::Adopt {
            socket,
            peer,
            bytes,
            hops: hops + 1,
            ticket: conn.address_ticket.take(),
            evict: false,
            decided: Some(Box::new(decided)),
        };
        if let Err(e) = self.workers.push_to(owner, command) {
            log::warn!("cannot hand {peer} to loop {owner}: {e}; closing it");
            self.workers.remove_connection(owner);
        }
        None
    }

    /// With several loops: the other loop that holds `sid`, if one does.
    pub(super) fn other_loop_of(&self, sid: &str) -> Option<usize> {
        if self.workers.loop_count() == 1 {
            return None;
        }
        self.workers.owner(sid).filter(|&owner| owner != self.index)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

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
        handle.workers().claim(&Arc::from("x"), 1).unwrap();
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
        handle.workers().add_connection(0);
        let command = Command::Adopt {
            socket: mio::net::TcpStream::from_std(socket).into(),
            peer,
            bytes: request.as_bytes().to_vec(),
            hops: MAX_HOPS,
            ticket: None,
            evict: false,
            decided: None,
        };
        handle.workers().push_to(0, command).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert_eq!(handle.workers().owner("x"), Some(1));
        drop(client);
        handle.shutdown();
        thread.join().unwrap().unwrap();
    }
}
