//! The cross-thread [`Handle`]: how business code on other threads reaches the sessions.
//!
//! Owns: the command queue between threads and the loop, and the `mio::Waker` that tells the
//! loop to look at it. Must not: touch connections; the loop executes the commands.
//!
//! What a handle reports: a handle cannot know at once whether a sid exists or how many
//! sessions a broadcast reached without waiting for the loop, and it must never make the
//! caller wait on a slow client. So its methods answer only whether the command was *queued*
//! ([`HandleError::Stopped`] once the server has stopped, [`HandleError::QueueFull`] when
//! the loop is [`COMMAND_QUEUE_LIMIT`] commands behind). The outcome of each command is
//! logged by the loop, and a session that has to be closed because of it is reported to the
//! handler's `on_close` as usual. Code that needs the exact outcome runs inside the loop,
//! in a handler, where [`super::Context`] answers at once.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;

use crate::close::CloseCode;
use crate::session::Message;

/// How many commands may wait for the loop before [`Handle`] methods fail with
/// [`HandleError::QueueFull`]: a bound on the memory a runaway producer can take.
pub const COMMAND_QUEUE_LIMIT: usize = 65_536;

/// A request from another thread, executed by the loop.
#[derive(Debug)]
pub(crate) enum Command {
    Send(String, Message),
    Broadcast(Message),
    Close(String, CloseCode, String),
    Shutdown,
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

pub(crate) struct Shared {
    commands: Mutex<Vec<Command>>,
    waker: mio::Waker,
    stopped: Mutex<bool>,
    stopped_cond: Condvar,
    stopping: AtomicBool,
    sessions: AtomicUsize,
    loop_thread: Mutex<Option<ThreadId>>,
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
            .field("sessions", &self.session_count())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Handle {
    pub(crate) fn new(waker: mio::Waker) -> Handle {
        Handle {
            shared: Arc::new(Shared {
                commands: Mutex::new(Vec::new()),
                waker,
                stopped: Mutex::new(false),
                stopped_cond: Condvar::new(),
                stopping: AtomicBool::new(false),
                sessions: AtomicUsize::new(0),
                loop_thread: Mutex::new(None),
            }),
        }
    }

    fn push(&self, command: Command) -> Result<(), HandleError> {
        if self.is_stopped() {
            return Err(HandleError::Stopped);
        }
        {
            let mut queue = self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if queue.len() >= COMMAND_QUEUE_LIMIT {
                return Err(HandleError::QueueFull);
            }
            queue.push(command);
        }
        // A wake-up on a loop that has already stopped is harmless.
        let _ = self.shared.waker.wake();
        Ok(())
    }

    /// Queue a message for the session `sid`.
    pub fn send(&self, sid: &str, message: impl Into<Message>) -> Result<(), HandleError> {
        self.push(Command::Send(sid.to_string(), message.into()))
    }

    /// Queue a message for every session open when the loop executes the command.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), HandleError> {
        self.push(Command::Broadcast(message.into()))
    }

    /// Queue the closing of the session `sid` with `code` and `reason`.
    pub fn close(&self, sid: &str, code: CloseCode, reason: &str) -> Result<(), HandleError> {
        self.push(Command::Close(sid.to_string(), code, reason.to_string()))
    }

    /// Gracefully shut the server down: every session is closed with 1001, the loop waits
    /// for their answers up to the close timeout, then stops. Blocks until the loop has
    /// stopped, except when called on the loop's own thread (from a handler), where it only
    /// starts the shutdown.
    pub fn shutdown(&self) {
        if !self.shared.stopping.swap(true, Ordering::SeqCst) {
            let _ = self.push(Command::Shutdown);
        }
        let on_loop = *self
            .shared
            .loop_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            == Some(std::thread::current().id());
        if on_loop {
            return;
        }
        let mut stopped = self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = self
                .shared
                .stopped_cond
                .wait(stopped)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the loop has stopped.
    pub fn is_stopped(&self) -> bool {
        *self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// How many sessions are open (updated by the loop as they open and close).
    pub fn session_count(&self) -> usize {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    // ----- The loop's side ---------------------------------------------------------------

    pub(crate) fn take_commands(&self, into: &mut Vec<Command>) {
        let mut queue = self
            .shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *queue, into);
    }

    pub(crate) fn set_session_count(&self, n: usize) {
        self.shared.sessions.store(n, Ordering::Relaxed);
    }

    pub(crate) fn set_loop_thread(&self) {
        *self
            .shared
            .loop_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
    }

    pub(crate) fn mark_stopped(&self) {
        let mut stopped = self
            .shared
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *stopped = true;
        self.shared.stopped_cond.notify_all();
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
