//! The loop's memory budget: the bytes its connections hold, and who may take more.
//!
//! Owns: the running total of what this loop's connections hold (incoming messages as they
//! are assembled or inflated, write queues, plain HTTP bodies, each broadcast frame once),
//! and the three decisions that keep it under the limit before memory is taken:
//! - **reading** (`may_read`): under pressure (half the limit held), a connection holding a
//!   large share stops being read (TCP holds the rest of its message back), except one at a
//!   time, the *leader*, which may go on to three quarters of the limit so that large
//!   messages still complete one after another instead of all waiting for each other (a
//!   leader that stops sending keeps the role until its message completes or its
//!   `message_timeout` closes it);
//! - **incoming frames** (`allowance`): the most a connection's message may hold, given to
//!   its session (`Session::set_receive_allowance`), which refuses a frame that would not fit
//!   from its header, with 1013;
//! - **sends and broadcasts** (`admits`): refused when they would take the total over the
//!   limit.
//!
//! The last quarter of the limit is thus kept for connections holding little: a normal client
//! is still served while large holders wait.
//!
//! Must not: touch connections or sockets: the loop's core asks and acts (`input.rs`,
//! `output.rs`). Pure arithmetic, so its rules are unit-tested here.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use super::timer::ConnRef;

/// A connection holding less than this is never paused for the budget.
const SMALL: usize = 64 * 1024;

/// The header of an `Arc<[u8]>` allocation: its strong and weak counts.
const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();

/// One loop's share of `ServerConfig::memory_budget` and what is charged against it.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    /// The sum of the connections' charges and of the live broadcast frames.
    held: usize,
    /// Broadcast frames queued on this loop, oldest first, each counted once in `held`
    /// (every queue holding one is charged only its slot). A frame leaves once no queue
    /// holds it; pruned from the front, so one still queued keeps the later ones counted
    /// (they are usually still queued too: queues are in order).
    shared: VecDeque<(Weak<[u8]>, usize)>,
    /// The one large holder allowed to read under pressure.
    leader: Option<ConnRef>,
}

impl Budget {
    /// A budget of `limit` bytes (`usize::MAX`: unlimited).
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            held: 0,
            shared: VecDeque::new(),
            leader: None,
        }
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// A connection's charge changed from `old` to `new` (0 when it comes or goes).
    pub(crate) fn recharge(&mut self, old: usize, new: usize) {
        self.held = self.held - old + new;
    }

    /// Half the limit is held: large holders wait.
    pub(crate) fn under_pressure(&self) -> bool {
        self.held >= self.limit / 2
    }

    /// From what a connection counts as a large holder: a 64th of the limit, at least 64 KiB.
    fn large(&self) -> usize {
        (self.limit / 64).max(SMALL)
    }

    /// Whether the connection `conn`, charged `charge` bytes, may be read now. Under
    /// pressure a large holder may not, unless it is the leader (or becomes it, when there is
    /// none) and three quarters of the limit are not yet held.
    pub(crate) fn may_read(&mut self, conn: ConnRef, charge: usize) -> bool {
        if !self.under_pressure() || charge < self.large() {
            return true;
        }
        let leader = *self.leader.get_or_insert(conn);
        leader == conn && self.held < self.limit / 4 * 3
    }

    /// `conn` no longer needs to lead (its message is complete, or it is gone).
    pub(crate) fn step_down(&mut self, conn: ConnRef) {
        if self.leader == Some(conn) {
            self.leader = None;
        }
    }

    /// The most the incoming message of a connection may hold, given that it holds
    /// `message` bytes of it now (they are part of `held`).
    pub(crate) fn allowance(&self, message: usize) -> usize {
        self.limit.saturating_add(message).saturating_sub(self.held)
    }

    /// Whether `cost` more bytes fit.
    pub(crate) fn admits(&self, cost: usize) -> bool {
        self.held.saturating_add(cost) <= self.limit
    }

    /// A broadcast frame was queued on this loop: count its allocation once.
    pub(crate) fn track_shared(&mut self, frame: &Arc<[u8]>) {
        let cost = frame.len() + ARC_HEADER;
        self.held += cost;
        self.shared.push_back((Arc::downgrade(frame), cost));
    }

    /// The bytes of broadcast frames counted now (for the simulator's invariants).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn shared_bytes(&self) -> usize {
        self.shared.iter().map(|(_, cost)| cost).sum()
    }

    /// Forget the broadcast frames at the front that no queue holds any more.
    pub(crate) fn prune_shared(&mut self) {
        while let Some((frame, cost)) = self.shared.front() {
            if frame.strong_count() > 0 {
                break;
            }
            self.held -= cost;
            self.shared.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::frame::{Decoded, FrameHeader};
    use crate::server::config::ServerConfig;
    use crate::server::handler::{Context, Handler};
    use crate::server::sim::Sim;
    use crate::Message;

    const MIB: usize = 1 << 20;
    const KIB: usize = 1 << 10;

    struct Echo;
    impl Handler for Echo {
        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            let _ = ctx.send(sid, message);
        }
    }

    fn upgrade(sim: &mut Sim<Echo>, sid: &str) -> usize {
        let client = sim.connect().unwrap();
        let request = format!(
            "GET /ws/{sid} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        sim.send(client, request.as_bytes());
        let answer = sim.receive(client, 200);
        assert!(answer.starts_with(b"HTTP/1.1 101 "), "{answer:?}");
        client
    }

    /// A masked client frame header (key 0: the payload goes as it is).
    fn header(opcode: u8, len: usize) -> Vec<u8> {
        let mut h = vec![0x80 | opcode];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= 0xffff {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
        h.extend_from_slice(&[0; 4]);
        h
    }

    /// The frames in `bytes`: (opcode, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(Decoded::Header(h, n)) = FrameHeader::decode(bytes) {
            let end = n + h.payload_len as usize;
            out.push((bytes[0] & 0x0f, bytes[n..end.min(bytes.len())].to_vec()));
            bytes = &bytes[end.min(bytes.len())..];
        }
        out
    }

    fn close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
        let (_, payload) = frames.iter().find(|(op, _)| *op == 0x8)?;
        Some(u16::from_be_bytes([payload[0], payload[1]]))
    }

    fn config(budget: usize) -> ServerConfig {
        let mut config = ServerConfig {
            memory_budget: budget,
            ..ServerConfig::default()
        };
        config.session.max_message_size = 64 * MIB;
        config.session.max_frame_size = 64 * MIB;
        config
    }

    /// Four clients each send most of a 6 MiB message and never read; an 8 MiB budget holds:
    /// from 4 MiB on they stop being read (one leads to 6 MiB), and a small client is served.
    #[test]
    fn large_holders_wait_under_pressure_and_a_small_client_is_still_served() {
        let budget = 8 * MIB;
        let mut sim = Sim::new(config(budget), Echo).unwrap();
        let holders: Vec<usize> = (0..4)
            .map(|i| upgrade(&mut sim, &format!("big{i}")))
            .collect();
        for &c in &holders {
            sim.send(c, &header(0x2, 6 * MIB));
        }
        let chunk = vec![0u8; 256 * KIB];
        for _ in 0..20 {
            for &c in &holders {
                sim.send(c, &chunk);
                let all = sim.memory_held() + sim.memory_pooled();
                assert!(all <= budget, "{all} held");
            }
        }
        // 20 MiB were sent: the loop read what the budget allowed and left the rest.
        let held = sim.memory_held();
        assert!(held >= budget / 2, "pressure was reached ({held} held)");
        assert!(held <= budget / 4 * 3 + 4 * 256 * KIB, "{held} held");
        // A small client is read and answered all along.
        let small = upgrade(&mut sim, "small");
        for _ in 0..10 {
            let mut frame = header(0x1, 5);
            frame.extend_from_slice(b"hello");
            sim.send(small, &frame);
            let echo = frames(&sim.receive(small, 1024));
            assert_eq!(echo, vec![(0x1, b"hello".to_vec())]);
        }
        assert!(
            holders.iter().all(|&c| !sim.is_dropped(c)),
            "the holders wait"
        );
        sim.finish();
    }

    /// A frame that does not fit in what is left of the budget is refused from its header
    /// with 1013, before its payload is read, and the memory comes back.
    #[test]
    fn a_frame_that_does_not_fit_gets_1013_from_its_header() {
        let mut sim = Sim::new(config(4 * MIB), Echo).unwrap();
        let c = upgrade(&mut sim, "big");
        sim.send(c, &header(0x2, 5 * MIB));
        let answer = frames(&sim.receive(c, 1024));
        assert_eq!(close_code(&answer), Some(1013), "{answer:?}");
        assert_eq!(sim.memory_held(), 0);
        sim.finish();
    }

    /// A send that would take a queue over the mark is refused (1008), though the queue is
    /// under the mark when asked; an empty queue still takes one message larger than it.
    #[test]
    fn a_send_that_would_cross_the_mark_is_refused() {
        let mut config = config(64 * MIB);
        config.max_queued_bytes = 64 * KIB;
        let mut sim = Sim::new(config, Echo).unwrap();
        let idle = upgrade(&mut sim, "idle");
        sim.send_to("idle", Message::Binary(vec![7; 100 * KIB]));
        let got = frames(&sim.receive(idle, 200 * KIB));
        assert_eq!(
            got,
            vec![(0x2, vec![7; 100 * KIB])],
            "larger than the mark, empty queue"
        );

        let slow = upgrade(&mut sim, "slow");
        sim.send_to("slow", Message::Binary(vec![1; 40 * KIB]));
        sim.send_to("slow", Message::Binary(vec![2; 40 * KIB]));
        let got = frames(&sim.receive(slow, MIB));
        assert_eq!(got[0], (0x2, vec![1; 40 * KIB]));
        assert_eq!(
            got.len(),
            2,
            "the second message was not queued: {}",
            got.len()
        );
        assert_eq!(close_code(&got), Some(1008));
        sim.finish();
    }

    /// A broadcast frame held by many queues is counted once, and leaves the books when the
    /// last queue has written it.
    #[test]
    fn a_broadcast_is_counted_once() {
        let mut sim = Sim::new(config(64 * MIB), Echo).unwrap();
        let clients: Vec<usize> = (0..100)
            .map(|i| upgrade(&mut sim, &format!("s{i}")))
            .collect();
        assert_eq!(sim.memory_held(), 0);
        sim.broadcast(Message::Binary(vec![3; 10 * KIB]));
        let held = sim.memory_held();
        assert!(held >= 10 * KIB, "{held}");
        assert!(
            held < 10 * KIB + 100 * 64,
            "counted once, not 100 times: {held}"
        );
        for &c in &clients {
            assert_eq!(frames(&sim.receive(c, 64 * KIB)).len(), 1);
        }
        sim.advance(std::time::Duration::from_millis(1));
        assert_eq!(sim.memory_held(), 0);
        sim.finish();
    }

    fn conn(key: usize) -> ConnRef {
        ConnRef { key, generation: 0 }
    }

    #[test]
    fn below_half_everyone_reads() {
        let mut b = Budget::new(64 * MIB);
        b.recharge(0, 31 * MIB);
        assert!(!b.under_pressure());
        assert!(b.may_read(conn(1), 31 * MIB));
        assert!(b.may_read(conn(2), 0));
    }

    #[test]
    fn under_pressure_large_holders_wait_but_one_leads_and_small_ones_read() {
        let mut b = Budget::new(64 * MIB);
        // Four connections hold 11 MiB each: 44 MiB, over half.
        for _ in 0..4 {
            b.recharge(0, 11 * MIB);
        }
        assert!(b.under_pressure());
        assert!(b.may_read(conn(1), 11 * MIB), "the first to ask leads");
        assert!(!b.may_read(conn(2), 11 * MIB));
        assert!(!b.may_read(conn(3), 11 * MIB));
        assert!(b.may_read(conn(1), 11 * MIB), "and keeps leading");
        // A connection holding less than a 64th of the limit is never held back.
        assert!(b.may_read(conn(5), MIB - 1));
        // The leader stops at three quarters: the last quarter is for small holders.
        b.recharge(11 * MIB, 26 * MIB); // 59 MiB held
        assert!(!b.may_read(conn(1), 26 * MIB));
        assert!(b.may_read(conn(5), 0));
        // Its message done (33 MiB held, still over half), another large holder may lead.
        b.recharge(26 * MIB, 0);
        assert!(b.under_pressure());
        b.step_down(conn(1));
        assert!(b.may_read(conn(3), 11 * MIB));
        assert!(!b.may_read(conn(2), 11 * MIB));
    }

    #[test]
    fn the_allowance_is_what_is_left_plus_what_the_message_holds() {
        let mut b = Budget::new(10 * MIB);
        b.recharge(0, 4 * MIB); // another connection
        b.recharge(0, MIB); // this connection's message
        assert_eq!(b.allowance(MIB), 6 * MIB);
        b.recharge(0, 5 * MIB);
        assert_eq!(b.allowance(MIB), MIB, "nothing more, but what it holds");
        assert!(b.admits(0));
        assert!(!b.admits(1));
        // Unlimited: never pressed, never refused.
        let mut b = Budget::new(usize::MAX);
        b.recharge(0, 1 << 40);
        assert!(!b.under_pressure() && b.admits(1 << 40));
        assert_eq!(b.allowance(0), usize::MAX - (1 << 40));
    }

    #[test]
    fn broadcast_frames_count_once_and_leave_with_their_last_queue() {
        let mut b = Budget::new(MIB);
        let first: Arc<[u8]> = Arc::from(vec![1u8; 1000]);
        let second: Arc<[u8]> = Arc::from(vec![2u8; 500]);
        b.track_shared(&first);
        b.track_shared(&second);
        let queues = [first.clone(), first.clone()];
        drop(first);
        assert_eq!(b.held(), 1500 + 2 * ARC_HEADER);
        // The second frame is gone, but the first, still queued, keeps it counted.
        drop(second);
        b.prune_shared();
        assert_eq!(b.held(), 1500 + 2 * ARC_HEADER);
        drop(queues);
        b.prune_shared();
        assert_eq!(b.held(), 0);
    }
}
