//! The cross-thread [`Handle`]: how business code on other threads reaches the sessions.
//!
//! Owns: the command queue between threads and each loop, the `mio::Waker` that tells a loop
//! to look at its queue, and, when the server runs several loops (`workers`), the directory
//! of which loop holds which sid. Must not: touch connections; the loops execute the
//! commands.
//!
//! Several loops: each has its own queue and waker; a send or close for a sid goes to the loop
//! that holds it (one directory lookup), a broadcast to every loop, a shutdown to every loop.
//! Loops use the same queues to pass each other connections and commands, so the only lock a
//! loop takes besides its queue's is the directory's, when a session opens or closes, or when
//! a handler addresses a sid that is not on its own loop.
//!
//! What a handle reports: a handle cannot know at once whether a sid exists or how many
//! sessions a broadcast reached without waiting for the loop, and it must never make the
//! caller wait on a slow client. So its methods answer only whether the command was *queued*
//! ([`HandleError::Stopped`] once the server has stopped, [`HandleError::QueueFull`] when
//! the loop is [`COMMAND_QUEUE_LIMIT`] commands behind). The outcome of each command is
//! logged by the loop, and a session that has to be closed because of it is reported to the
//! handler's `on_close` as usual. Code that needs the exact outcome runs inside the loop,
//! in a handler, where [`super::Context`] answers at once.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;

use crate::close::CloseCode;
use crate::session::Message;

/// How many commands may wait for a loop before [`Handle`] methods fail with
/// [`HandleError::QueueFull`]: a bound on the memory a runaway producer can take.
pub const COMMAND_QUEUE_LIMIT: usize = 65_536;

/// A request from another thread (or another loop of the same server), executed by a loop.
#[derive(Debug)]
pub(crate) enum Command {
    Send(String, Message),
    /// A broadcast's frame, encoded once by whoever broadcast and shared by every loop.
    Broadcast(Arc<[u8]>),
    Close(String, CloseCode, String),
    Shutdown,
    /// A connection handed over by another loop of the same server: by the accepting loop,
    /// to balance the loops, or by the loop that read an upgrade for a sid this loop holds,
    /// with the bytes it read so far. `hops` bounds how often one connection is passed on.
    Adopt {
        socket: mio::net::TcpStream,
        peer: SocketAddr,
        bytes: Vec<u8>,
        hops: u8,
    },
}

/// Why a command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// The server has stopped; nothing will execute the command.
    Stopped,
    /// The loop is too far behind ([`COMMAND_QUEUE_LIMIT`] commands waiting).
    QueueFull,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Stopped => "the server has stopped",
            HandleError::QueueFull => "the server's command queue is full",
        })
    }
}

impl std::error::Error for HandleError {}

/// What other threads share with one event loop.
struct Loop {
    commands: Mutex<Vec<Command>>,
    waker: mio::Waker,
    stopped: AtomicBool,
    /// Open sessions and live connections on this loop, as the loop last reported them.
    sessions: AtomicUsize,
    connections: AtomicUsize,
    thread: Mutex<Option<ThreadId>>,
}

/// What the handles and the loops of one server share.
pub(crate) struct Shared {
    loops: Vec<Loop>,
    /// With several loops: which loop holds each open sid. Touched when a session opens or
    /// closes and by sends addressed to a sid on another loop, never per message on a
    /// loop's own sessions.
    directory: Mutex<HashMap<Arc<str>, usize>>,
    stopping: AtomicBool,
    /// How many loops have stopped.
    stopped: Mutex<usize>,
    stopped_cond: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic on another thread while holding the lock leaves the data consistent for our
    // uses (plain pushes and inserts), so a poisoned lock is still used.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cheap, cloneable way for any thread to send to sessions, broadcast, close and shut down.
///
/// ```no_run
/// use wsloop::server::Server;
/// let server = Server::builder().bind("127.0.0.1:8080").build().unwrap();
/// let handle = server.handle();
/// std::thread::spawn(move || {
///     // Business code learns of order 42 and alerts every dashboard.
///     handle.broadcast(r#"{"type":1,"orderId":42}"#).ok();
/// });
/// # struct Nothing; impl wsloop::server::Handler for Nothing {}
/// server.run(Nothing).unwrap();
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("loops", &self.shared.loops.len())
            .field("sessions", &self.session_count())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Handle {
    /// A handle for the loops woken by `wakers`, one per loop, in loop order.
    pub(crate) fn new(wakers: Vec<mio::Waker>) -> Handle {
        let loops = wakers
            .into_iter()
            .map(|waker| Loop {
                commands: Mutex::new(Vec::new()),
                waker,
                stopped: AtomicBool::new(false),
                sessions: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
                thread: Mutex::new(None),
            })
            .collect();
        Handle {
            shared: Arc::new(Shared {
                loops,
                directory: Mutex::new(HashMap::new()),
                stopping: AtomicBool::new(false),
                stopped: Mutex::new(0),
                stopped_cond: Condvar::new(),
            }),
        }
    }

    /// Queue `command` for loop `index` and wake it.
    pub(crate) fn push_to(&self, index: usize, command: Command) -> Result<(), HandleError> {
        let target = &self.shared.loops[index];
        {
            let mut queue = lock(&target.commands);
            // Checked under the lock `mark_stopped` clears the queue under, so nothing is
            // queued for a loop that will never read it.
            if target.stopped.load(Ordering::Acquire) {
                return Err(HandleError::Stopped);
            }
            if queue.len() >= COMMAND_QUEUE_LIMIT {
                return Err(HandleError::QueueFull);
            }
            queue.push(command);
        }
        // A wake-up on a loop that has already stopped is harmless.
        let _ = target.waker.wake();
        Ok(())
    }

    /// The loop that holds `sid`, or the first loop when no loop does (it logs that the
    /// session is not there).
    fn loop_of(&self, sid: &str) -> usize {
        if self.shared.loops.len() == 1 {
            return 0;
        }
        self.owner(sid).unwrap_or(0)
    }

    /// Queue a message for the session `sid` (on whichever loop holds it).
    pub fn send(&self, sid: &str, message: impl Into<Message>) -> Result<(), HandleError> {
        self.push_to(
            self.loop_of(sid),
            Command::Send(sid.to_string(), message.into()),
        )
    }

    /// Queue a message for every session open when the loops execute the command. The
    /// frame is encoded once, here, and every loop and session shares it.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), HandleError> {
        let frame: Arc<[u8]> = Arc::from(message.into().to_server_frame());
        let mut result = Ok(());
        for index in 0..self.shared.loops.len() {
            result = result.and(self.push_to(index, Command::Broadcast(frame.clone())));
        }
        result
    }

    /// Queue the closing of the session `sid` with `code` and `reason`.
    pub fn close(&self, sid: &str, code: CloseCode, reason: &str) -> Result<(), HandleError> {
        let command = Command::Close(sid.to_string(), code, reason.to_string());
        self.push_to(self.loop_of(sid), command)
    }

    /// Gracefully shut the server down: every session is closed with 1001, the loops wait
    /// for their answers up to the close timeout, then stop. Blocks until every loop has
    /// stopped, except when called on a loop's own thread (from a handler), where it only
    /// starts the shutdown.
    pub fn shutdown(&self) {
        self.begin_shutdown();
        let me = Some(std::thread::current().id());
        if self.shared.loops.iter().any(|l| *lock(&l.thread) == me) {
            return;
        }
        let mut stopped = lock(&self.shared.stopped);
        while *stopped < self.shared.loops.len() {
            stopped = self
                .shared
                .stopped_cond
                .wait(stopped)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Tell every loop to shut down, without waiting.
    pub(crate) fn begin_shutdown(&self) {
        if !self.shared.stopping.swap(true, Ordering::SeqCst) {
            for index in 0..self.shared.loops.len() {
                let _ = self.push_to(index, Command::Shutdown);
            }
        }
    }

    /// Whether the server has stopped (every loop).
    pub fn is_stopped(&self) -> bool {
        *lock(&self.shared.stopped) == self.shared.loops.len()
    }

    /// How many sessions are open, on all loops (updated by the loops as they open and
    /// close).
    pub fn session_count(&self) -> usize {
        let loops = &self.shared.loops;
        loops
            .iter()
            .map(|l| l.sessions.load(Ordering::Relaxed))
            .sum()
    }

    // ----- The loop's side ---------------------------------------------------------------

    pub(crate) fn loop_count(&self) -> usize {
        self.shared.loops.len()
    }

    pub(crate) fn take_commands(&self, index: usize, into: &mut Vec<Command>) {
        std::mem::swap(&mut *lock(&self.shared.loops[index].commands), into);
    }

    pub(crate) fn set_session_count(&self, index: usize, sessions: usize) {
        self.shared.loops[index]
            .sessions
            .store(sessions, Ordering::Relaxed);
    }

    /// The loop with the fewest connections (the first of equals).
    pub(crate) fn least_loaded(&self) -> usize {
        let loops = &self.shared.loops;
        (0..loops.len())
            .min_by_key(|&i| loops[i].connections.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// An admitted connection is now loop `index`'s: accepted there, or on its way there (counted
    /// before it arrives, so that the balance sees it at once).
    pub(crate) fn add_connection(&self, index: usize) {
        self.shared.loops[index]
            .connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Loop `index` closed a connection, handed it on, or could not take it.
    pub(crate) fn remove_connection(&self, index: usize) {
        let connections = &self.shared.loops[index].connections;
        // Saturating: the count of a loop that stopped was reset to 0.
        let _ = connections.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }

    /// Connections on all loops, as last reported.
    pub(crate) fn connection_count(&self) -> usize {
        let loops = &self.shared.loops;
        loops
            .iter()
            .map(|l| l.connections.load(Ordering::Relaxed))
            .sum()
    }

    /// Record that loop `index` is opening a session for `sid`, unless another loop holds
    /// it: then `Err` with that loop, which must take the connection so that the
    /// replacement of the old session happens in one place, in order.
    pub(crate) fn claim(&self, sid: &Arc<str>, index: usize) -> Result<(), usize> {
        let mut directory = lock(&self.shared.directory);
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
        let mut directory = lock(&self.shared.directory);
        if directory.get(sid) == Some(&index) {
            directory.remove(sid);
        }
    }

    /// The loop that holds `sid`, if any.
    pub(crate) fn owner(&self, sid: &str) -> Option<usize> {
        lock(&self.shared.directory).get(sid).copied()
    }

    pub(crate) fn set_loop_thread(&self, index: usize) {
        *lock(&self.shared.loops[index].thread) = Some(std::thread::current().id());
    }

    pub(crate) fn mark_stopped(&self, index: usize) {
        let l = &self.shared.loops[index];
        {
            let mut queue = lock(&l.commands);
            if l.stopped.swap(true, Ordering::AcqRel) {
                return;
            }
            queue.clear();
        }
        l.sessions.store(0, Ordering::Relaxed);
        l.connections.store(0, Ordering::Relaxed);
        // Its sids are gone with it (closed, or lost with a panicking loop): a reconnect is
        // served by a loop that runs.
        lock(&self.shared.directory).retain(|_, owner| *owner != index);
        let mut stopped = lock(&self.shared.stopped);
        *stopped += 1;
        self.shared.stopped_cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle over `loops` loops that nobody runs: the test reads their queues.
    fn handle(loops: usize) -> (Vec<mio::Poll>, Handle) {
        let polls: Vec<mio::Poll> = (0..loops).map(|_| mio::Poll::new().unwrap()).collect();
        let wakers = polls
            .iter()
            .map(|p| mio::Waker::new(p.registry(), mio::Token(1)).unwrap())
            .collect();
        (polls, Handle::new(wakers))
    }

    #[test]
    fn a_broadcast_is_encoded_once_and_shared_by_every_loop() {
        let (_polls, handle) = handle(3);
        handle.broadcast("order 42 is ready".to_string()).unwrap();
        let frames: Vec<Arc<[u8]>> = (0..3)
            .map(|index| {
                let mut commands = Vec::new();
                handle.take_commands(index, &mut commands);
                match commands.as_slice() {
                    [Command::Broadcast(frame)] => frame.clone(),
                    other => panic!("loop {index} got {other:?}"),
                }
            })
            .collect();
        // RFC 6455 §5.2: FIN and the text opcode, no mask bit (§5.1), a 17-byte payload.
        assert_eq!(&frames[0][..2], &[0x81, 17]);
        assert_eq!(&frames[0][2..], b"order 42 is ready");
        // One encoding: every loop holds the same allocation.
        assert!(frames.iter().all(|f| Arc::ptr_eq(f, &frames[0])));
    }

    #[test]
    fn a_broadcast_to_a_stopped_loop_fails_but_still_reaches_the_others() {
        let (_polls, handle) = handle(2);
        handle.mark_stopped(0);
        assert_eq!(handle.broadcast(vec![1u8, 2, 3]), Err(HandleError::Stopped));
        let mut commands = Vec::new();
        handle.take_commands(1, &mut commands);
        assert!(
            matches!(commands.as_slice(), [Command::Broadcast(f)] if f[..] == [0x82, 3, 1, 2, 3])
        );
    }
}
