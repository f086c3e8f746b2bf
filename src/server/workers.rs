//! What the loops of one server share: each loop's command queue, waker and counters, and the
//! directory of which loop holds which sid.
//!
//! Owns: the plumbing between threads and loops behind `Handle` (queueing a [`Command`] and
//! waking its loop, the stop protocol), the connection and session counts each loop
//! reports, the per-address connection counts ([`AddressSlots`]), and the sid directory.
//! Must not: touch connections or call the
//! handler; the loops execute the commands (`handover.rs` holds the loop's side of a
//! hand-over). Nothing here imports the loop's core.
//!
//! Several loops: each has its own queue and waker; a send or close for a sid goes to the loop
//! that holds it (one directory lookup), a broadcast to every loop, a shutdown to every loop.
//! Loops use the same queues to pass each other connections and commands, so the only lock a
//! loop takes besides its queue's is the directory's, when a session opens or closes, or when
//! a handler addresses a sid that is not on its own loop.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;

use crate::close::CloseCode;
use crate::session::Message;

#[cfg(feature = "tls")]
use super::tls::TlsSlot;
use super::transport::Socket;
use super::upgrade::Accepted;

/// How many commands may wait for a loop before [`Handle`](struct.Handle.html) methods fail with
/// [`HandleError::QueueFull`]: a bound on the memory a runaway producer can take.
pub const COMMAND_QUEUE_LIMIT: usize = 65_536;

/// How many bytes the commands waiting for one loop may hold (message payloads, sids and
/// close reasons; a broadcast's frame is counted once in each loop's queue) before
/// [`Handle`](struct.Handle.html) methods fail with [`HandleError::QueueFull`].
/// [`COMMAND_QUEUE_LIMIT`] alone bounds the count, not the size: 65,536 sends of 64 MiB each
/// would be 4 TiB.
///
/// 64 MiB, the largest message size the examples allow: a loop that has that much of
/// commands it has not yet taken is behind, and the producer is told so rather than the
/// server's memory growing (these bytes are part of the memory budget's documented slack). The bytes are released when the loop takes its commands, which
/// it does on every wake-up. One command larger than the bound is still accepted when the
/// queue holds no bytes, so that a large message can always be sent to an idle loop: a queue
/// holds at most this bound plus one command. A shutdown is never refused for being full.
pub const COMMAND_QUEUE_BYTES: usize = 64 << 20;

/// Why a command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// The server has stopped; nothing will execute the command.
    Stopped,
    /// The loop is too far behind ([`COMMAND_QUEUE_LIMIT`] commands, or
    /// [`COMMAND_QUEUE_BYTES`] bytes of them, waiting).
    QueueFull,
    /// RFC 6455 §7.4.1: this close code may not be sent (1005, 1006, 1015, or a reserved or
    /// unassigned one); nothing was queued.
    NotSendable(CloseCode),
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Stopped => f.write_str("the server has stopped"),
            HandleError::QueueFull => f.write_str("the server's command queue is full"),
            HandleError::NotSendable(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}

impl std::error::Error for HandleError {}

/// A request from another thread (or another loop of the same server), executed by a loop.
#[derive(Debug)]
pub(crate) enum Command {
    Send(String, Message),
    /// A broadcast's frame, encoded once by whoever broadcast and shared by every loop.
    Broadcast(Arc<[u8]>),
    /// A frame for the subscribers of a topic on this loop, encoded once and shared.
    Publish(Arc<str>, Arc<[u8]>),
    /// A frame for these sids of this loop, encoded once and shared.
    SendFrame(Vec<String>, Arc<[u8]>),
    /// Subscribe (true) or unsubscribe the session `sid` of this loop to a topic.
    Subscribe(String, String, bool),
    Close(String, CloseCode, String),
    Shutdown,
    /// A connection handed over by another loop of the same server: by the accepting loop,
    /// to balance the loops, or by the loop that read an upgrade for a sid this loop holds,
    /// with the bytes it read so far. `hops` bounds how often one connection is passed on.
    Adopt {
        socket: Socket,
        peer: SocketAddr,
        bytes: Vec<u8>,
        hops: u8,
        /// The connection's slot under `max_connections_per_ip`, travelling with it.
        ticket: Option<AddressTicket>,
        /// The server is full: the receiving loop makes room by dropping its oldest
        /// connection still in its handshake (the accepting loop had none), or refuses this
        /// one with 503. Not counted for the receiving loop yet.
        evict: bool,
        /// The application's decision on the upgrade in `bytes`, when the sending loop made
        /// it (`Handler::on_upgrade` runs once per upgrade, on the loop that read it).
        decided: Option<Box<Accepted>>,
    },
}

impl Command {
    /// The bytes this command holds, charged to the queue it waits in.
    fn bytes(&self) -> usize {
        match self {
            Command::Send(sid, message) => sid.len() + message.len(),
            Command::Broadcast(frame) => frame.len(),
            Command::Publish(topic, frame) => topic.len() + frame.len(),
            Command::SendFrame(sids, frame) => {
                sids.iter().map(String::len).sum::<usize>() + frame.len()
            }
            Command::Subscribe(sid, topic, _) => sid.len() + topic.len(),
            Command::Close(sid, _, reason) => sid.len() + reason.len(),
            Command::Shutdown => 0,
            Command::Adopt { bytes, .. } => bytes.len(),
        }
    }
}

/// One loop's waiting commands and the bytes they hold.
#[derive(Default)]
struct Queue {
    commands: Vec<Command>,
    bytes: usize,
}

/// What other threads share with one event loop.
struct Loop {
    commands: Mutex<Queue>,
    waker: mio::Waker,
    stopped: AtomicBool,
    /// Open sessions and live connections on this loop, as the loop last reported them.
    sessions: AtomicUsize,
    connections: AtomicUsize,
    /// Admitted connections of this loop still in their handshake (a [`HandshakeTicket`]
    /// each), so that the accepting loop of a full server can find one to drop on any loop.
    handshakes: Arc<AtomicUsize>,
    thread: Mutex<Option<ThreadId>>,
}

/// What the handles and the loops of one server share.
pub(crate) struct Workers {
    loops: Vec<Loop>,
    /// With several loops: which loop holds each open sid. Touched when a session opens or
    /// closes and by sends addressed to a sid on another loop, never per message on a
    /// loop's own sessions.
    directory: Mutex<HashMap<Arc<str>, usize>>,
    stopping: AtomicBool,
    /// How many loops have stopped.
    stopped: Mutex<usize>,
    stopped_cond: Condvar,
    /// Connections per client address, over all loops (`max_connections_per_ip`).
    addresses: Arc<AddressSlots>,
    /// The TLS configuration new connections get (feature `tls`); empty on a plain server.
    #[cfg(feature = "tls")]
    pub(crate) tls: TlsSlot,
}

/// What `max_connections_per_ip` counts by: an IPv4 address, or the /64 prefix of an IPv6
/// one (one subscriber or host usually gets a whole /64, so counting single IPv6 addresses
/// would let one client take 2^64 of them). An IPv4-mapped IPv6 address counts as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                AddressKey::V6Prefix(prefix)
            }
        }
    }
}

/// How many admitted connections each client address holds, over all loops of a server.
/// An entry exists only while its count is above zero, so the map holds at most one entry
/// per admitted connection.
#[derive(Default)]
pub(crate) struct AddressSlots {
    counts: Mutex<HashMap<AddressKey, usize>>,
}

impl AddressSlots {
    /// How many connections `ip`'s address (or /64) holds now.
    pub(crate) fn count(&self, ip: IpAddr) -> usize {
        lock(&self.counts)
            .get(&AddressKey::of(ip))
            .copied()
            .unwrap_or(0)
    }

    /// How many addresses hold a connection: the size of the map.
    pub(crate) fn addresses(&self) -> usize {
        lock(&self.counts).len()
    }
}

/// One connection's slot under `max_connections_per_ip`: taken when the connection is
/// admitted, handed from loop to loop with it, and given back when it is dropped (the
/// connection closed, or lost on a failed hand-over), so no path can leak a count.
#[derive(Debug)]
pub(crate) struct AddressTicket {
    slots: Arc<AddressSlots>,
    key: AddressKey,
}

impl Drop for AddressTicket {
    fn drop(&mut self) {
        let mut counts = lock(&self.slots.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// An admitted connection counted as still in its handshake on its loop: taken when it is
/// admitted, dropped when it becomes a session or gets its final HTTP answer, or when it
/// goes (however it goes), so the count cannot leak.
#[derive(Debug)]
pub(crate) struct HandshakeTicket(Arc<AtomicUsize>);

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for AddressSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddressSlots({} addresses)", self.addresses())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic on another thread while holding the lock leaves the data consistent for our
    // uses (plain pushes and inserts), so a poisoned lock is still used.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Workers {
    /// The shared state of the loops woken by `wakers`, one per loop, in loop order.
    pub(crate) fn new(wakers: Vec<mio::Waker>) -> Workers {
        let loops = wakers
            .into_iter()
            .map(|waker| Loop {
                commands: Mutex::new(Queue::default()),
                waker,
                stopped: AtomicBool::new(false),
                sessions: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
                handshakes: Arc::new(AtomicUsize::new(0)),
                thread: Mutex::new(None),
            })
            .collect();
        Workers {
            loops,
            directory: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            stopped: Mutex::new(0),
            stopped_cond: Condvar::new(),
            addresses: Arc::new(AddressSlots::default()),
            #[cfg(feature = "tls")]
            tls: TlsSlot::default(),
        }
    }

    /// A slot for one more connection from `ip`'s address, or `None` when it holds `limit`
    /// already. Check and count are one step under one lock, so a burst of accepts cannot
    /// all pass the check before any is counted.
    pub(crate) fn take_address_slot(&self, ip: IpAddr, limit: usize) -> Option<AddressTicket> {
        let key = AddressKey::of(ip);
        let mut counts = lock(&self.addresses.counts);
        let n = counts.entry(key).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(AddressTicket {
            slots: self.addresses.clone(),
            key,
        })
    }

    /// The per-address counts, for tests and invariants.
    pub(crate) fn address_slots(&self) -> &AddressSlots {
        &self.addresses
    }

    pub(crate) fn loop_count(&self) -> usize {
        self.loops.len()
    }

    // ----- Commands ----------------------------------------------------------------------

    /// Queue `command` for loop `index` and wake it.
    pub(crate) fn push_to(&self, index: usize, command: Command) -> Result<(), HandleError> {
        let target = &self.loops[index];
        {
            let mut queue = lock(&target.commands);
            // Checked under the lock `mark_stopped` clears the queue under, so nothing is
            // queued for a loop that will never read it.
            if target.stopped.load(Ordering::Acquire) {
                return Err(HandleError::Stopped);
            }
            let bytes = command.bytes();
            // A shutdown always gets through: it is queued once per loop, and it is what
            // ends a loop that is behind.
            if !matches!(command, Command::Shutdown) {
                if queue.commands.len() >= COMMAND_QUEUE_LIMIT {
                    return Err(HandleError::QueueFull);
                }
                // Over the byte bound, except one command alone in an empty queue.
                if queue.bytes > 0 && queue.bytes.saturating_add(bytes) > COMMAND_QUEUE_BYTES {
                    return Err(HandleError::QueueFull);
                }
            }
            queue.bytes = queue.bytes.saturating_add(bytes);
            queue.commands.push(command);
        }
        // A wake-up on a loop that has already stopped is harmless.
        let _ = target.waker.wake();
        Ok(())
    }

    /// Loop `index` takes what is queued for it (swapped with `into`, which should be
    /// empty); the bytes they held no longer count against the queue.
    pub(crate) fn take_commands(&self, index: usize, into: &mut Vec<Command>) {
        let mut queue = lock(&self.loops[index].commands);
        std::mem::swap(&mut queue.commands, into);
        queue.bytes = 0;
    }

    // ----- Counts ------------------------------------------------------------------------

    pub(crate) fn set_session_count(&self, index: usize, sessions: usize) {
        self.loops[index]
            .sessions
            .store(sessions, Ordering::Relaxed);
    }

    /// Sessions open on all loops, as last reported.
    pub(crate) fn session_count(&self) -> usize {
        self.loops
            .iter()
            .map(|l| l.sessions.load(Ordering::Relaxed))
            .sum()
    }

    /// Count a connection of loop `index` as in its handshake, until the ticket is dropped.
    pub(crate) fn handshake_ticket(&self, index: usize) -> HandshakeTicket {
        let count = &self.loops[index].handshakes;
        count.fetch_add(1, Ordering::Relaxed);
        HandshakeTicket(count.clone())
    }

    /// Connections of loop `index` in their handshake.
    pub(crate) fn handshakes(&self, index: usize) -> usize {
        self.loops[index].handshakes.load(Ordering::Relaxed)
    }

    /// A loop other than `except` with a connection in its handshake, the one with the most.
    pub(crate) fn loop_with_handshakes(&self, except: usize) -> Option<usize> {
        (0..self.loops.len())
            .filter(|&i| i != except && self.handshakes(i) > 0)
            .max_by_key(|&i| self.handshakes(i))
    }

    /// The loop with the fewest connections (the first of equals).
    pub(crate) fn least_loaded(&self) -> usize {
        let loops = &self.loops;
        (0..loops.len())
            .min_by_key(|&i| loops[i].connections.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// An admitted connection is now loop `index`'s: accepted there, or on its way there (counted
    /// before it arrives, so that the balance sees it at once).
    pub(crate) fn add_connection(&self, index: usize) {
        self.loops[index]
            .connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Loop `index` closed a connection, handed it on, or could not take it.
    pub(crate) fn remove_connection(&self, index: usize) {
        let connections = &self.loops[index].connections;
        // Saturating: the count of a loop that stopped was reset to 0.
        let _ = connections.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }

    /// Connections on all loops, as last reported.
    pub(crate) fn connection_count(&self) -> usize {
        self.loops
            .iter()
            .map(|l| l.connections.load(Ordering::Relaxed))
            .sum()
    }

    // ----- The sid directory -------------------------------------------------------------

    /// Record that loop `index` is opening a session for `sid`, unless another loop holds
    /// it: then `Err` with that loop, which must take the connection so that the
    /// replacement of the old session happens in one place, in order.
    pub(crate) fn claim(&self, sid: &Arc<str>, index: usize) -> Result<(), usize> {
        let mut directory = lock(&self.directory);
        match directory.get(sid) {
            Some(&owner) if owner != index => Err(owner),
            Some(_) => Ok(()),
            None => {
                directory.insert(sid.clone(), index);
                Ok(())
            }
        }
    }

    /// Loop `index` no longer holds `sid`.
    pub(crate) fn release(&self, sid: &str, index: usize) {
        let mut directory = lock(&self.directory);
        if directory.get(sid) == Some(&index) {
            directory.remove(sid);
        }
    }

    /// The loop that holds `sid`, if any.
    pub(crate) fn owner(&self, sid: &str) -> Option<usize> {
        lock(&self.directory).get(sid).copied()
    }

    /// The loop that holds `sid`, or the first loop when no loop does (it logs that the
    /// session is not there).
    pub(crate) fn loop_of(&self, sid: &str) -> usize {
        if self.loops.len() == 1 {
            return 0;
        }
        self.owner(sid).unwrap_or(0)
    }

    // ----- Starting and stopping ---------------------------------------------------------

    pub(crate) fn set_loop_thread(&self, index: usize) {
        *lock(&self.loops[index].thread) = Some(std::thread::current().id());
    }

    /// Whether the calling thread runs one of the loops.
    pub(crate) fn on_loop_thread(&self) -> bool {
        let me = Some(std::thread::current().id());
        self.loops.iter().any(|l| *lock(&l.thread) == me)
    }

    /// Tell every loop to shut down, without waiting.
    pub(crate) fn begin_shutdown(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            for index in 0..self.loops.len() {
                let _ = self.push_to(index, Command::Shutdown);
            }
        }
    }

    /// Block until every loop has stopped.
    pub(crate) fn wait_stopped(&self) {
        let mut stopped = lock(&self.stopped);
        while *stopped < self.loops.len() {
            stopped = self
                .stopped_cond
                .wait(stopped)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether every loop has stopped.
    pub(crate) fn all_stopped(&self) -> bool {
        *lock(&self.stopped) == self.loops.len()
    }

    pub(crate) fn mark_stopped(&self, index: usize) {
        let l = &self.loops[index];
        {
            let mut queue = lock(&l.commands);
            if l.stopped.swap(true, Ordering::AcqRel) {
                return;
            }
            queue.commands.clear();
            queue.bytes = 0;
        }
        l.sessions.store(0, Ordering::Relaxed);
        l.connections.store(0, Ordering::Relaxed);
        // Its sids are gone with it (closed, or lost with a panicking loop): a reconnect is
        // served by a loop that runs.
        lock(&self.directory).retain(|_, owner| *owner != index);
        let mut stopped = lock(&self.stopped);
        *stopped += 1;
        self.stopped_cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared state for `loops` loops that nobody runs: the test reads their queues.
    fn workers(loops: usize) -> (Vec<mio::Poll>, Workers) {
        let polls: Vec<mio::Poll> = (0..loops).map(|_| mio::Poll::new().unwrap()).collect();
        let wakers = polls
            .iter()
            .map(|p| mio::Waker::new(p.registry(), mio::Token(1)).unwrap())
            .collect();
        (polls, Workers::new(wakers))
    }

    #[test]
    fn a_loop_queue_is_bounded_in_bytes_and_released_when_taken() {
        let (_polls, workers) = workers(2);
        // 1 MiB frames, shared (one allocation), counted in full in each queue they are in.
        let frame: Arc<[u8]> = Arc::from(vec![0u8; 1 << 20]);
        let fits = COMMAND_QUEUE_BYTES / frame.len();
        for _ in 0..fits {
            workers
                .push_to(0, Command::Broadcast(frame.clone()))
                .unwrap();
        }
        assert_eq!(
            workers.push_to(0, Command::Broadcast(frame.clone())),
            Err(HandleError::QueueFull)
        );
        // A small command does not fit either; the other loop's queue is its own.
        let send = || Command::Send("alice".into(), Message::Text("hi".into()));
        assert_eq!(workers.push_to(0, send()), Err(HandleError::QueueFull));
        workers
            .push_to(1, Command::Broadcast(frame.clone()))
            .unwrap();
        // A shutdown is never refused.
        workers.push_to(0, Command::Shutdown).unwrap();
        // Taking the commands releases their bytes.
        let mut taken = Vec::new();
        workers.take_commands(0, &mut taken);
        assert_eq!(taken.len(), fits + 1);
        workers.push_to(0, send()).unwrap();
        workers.push_to(0, Command::Broadcast(frame)).unwrap();
    }

    #[test]
    fn a_send_counts_its_payload_and_one_huge_command_fits_only_an_empty_queue() {
        let (_polls, workers) = workers(1);
        let big = || Command::Send("s".into(), Message::Binary(vec![0u8; COMMAND_QUEUE_BYTES]));
        // Alone in an empty queue it is accepted (it could never be sent otherwise) ...
        workers.push_to(0, big()).unwrap();
        // ... and then nothing else with bytes fits until the loop takes it.
        let close = Command::Close("s".into(), CloseCode::NormalClosure, "bye".into());
        assert_eq!(workers.push_to(0, close), Err(HandleError::QueueFull));
        let mut taken = Vec::new();
        workers.take_commands(0, &mut taken);
        assert_eq!(taken.len(), 1);
        // A payload that would cross the bound behind a small command is refused.
        let small = Command::Send("s".into(), Message::Text("hi".into()));
        workers.push_to(0, small).unwrap();
        assert_eq!(workers.push_to(0, big()), Err(HandleError::QueueFull));
    }

    /// The per-address counts are bounded: an address's entry goes when its last slot comes
    /// back, a refused take leaves nothing, and a slot inside a command that is never run
    /// (a hand-over dropped with a stopped loop's queue) comes back too.
    #[test]
    fn address_slots_are_given_back_and_their_entries_removed_at_zero() {
        let (_polls, workers) = workers(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = workers.take_address_slot(ip, 2).unwrap();
        let b = workers.take_address_slot(ip, 2).unwrap();
        assert!(workers.take_address_slot(ip, 2).is_none());
        assert_eq!(workers.address_slots().count(ip), 2);
        drop(a);
        assert_eq!(workers.address_slots().count(ip), 1);
        let c = workers.take_address_slot(ip, 2).unwrap();
        drop((b, c));
        assert_eq!(workers.address_slots().addresses(), 0);
        // Refused by a limit of 0: no entry left behind.
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(workers.take_address_slot(other, 0).is_none());
        assert_eq!(workers.address_slots().addresses(), 0);
        // A slot travelling in a hand-over that a stopping loop drops.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, peer) = listener.accept().unwrap();
        let command = Command::Adopt {
            socket: mio::net::TcpStream::from_std(socket).into(),
            peer,
            bytes: Vec::new(),
            hops: 0,
            ticket: workers.take_address_slot(ip, 1),
            evict: false,
            decided: None,
        };
        workers.push_to(1, command).unwrap();
        assert_eq!(workers.address_slots().count(ip), 1);
        workers.mark_stopped(1);
        assert_eq!(workers.address_slots().addresses(), 0);
        drop(client);
    }
}
