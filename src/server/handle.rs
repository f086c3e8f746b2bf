//! The cross-thread [`Handle`]: how business code on other threads reaches the sessions.
//!
//! Owns: the public face of the loops' shared state: send, broadcast, close, shutdown, and
//! the counts. Must not: touch connections, or hold loop plumbing; the queues, wakers,
//! counters and sid directory are `workers.rs`'s, and the loops execute the commands.
//!
//! What a handle reports: a handle cannot know at once whether a sid exists or how many
//! sessions a broadcast reached without waiting for the loop, and it must never make the
//! caller wait on a slow client. So its methods answer only whether the command was *queued*
//! ([`HandleError::Stopped`] once the server has stopped, [`HandleError::QueueFull`] when
//! the loop is [`COMMAND_QUEUE_LIMIT`] commands or [`COMMAND_QUEUE_BYTES`] bytes behind).
//! The outcome of each command is logged by the loop, and a session that has to be closed
//! because of it is reported to the handler's `on_close` as usual. Code that needs the
//! exact outcome runs inside the loop, in a handler, where `Context` answers at once.

use std::fmt;
use std::sync::Arc;

use crate::close::CloseCode;
use crate::session::Message;

use super::workers::{Command, Workers};
pub use super::workers::{HandleError, COMMAND_QUEUE_BYTES, COMMAND_QUEUE_LIMIT};

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
    workers: Arc<Workers>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("loops", &self.workers.loop_count())
            .field("sessions", &self.session_count())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Handle {
    /// A handle on the loops that share `workers`.
    pub(crate) fn new(workers: Arc<Workers>) -> Handle {
        Handle { workers }
    }

    /// What the loops share, for the server's own plumbing.
    pub(crate) fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Replace the TLS certificate and key (feature `tls`), e.g. after a renewal: connections
    /// accepted from now on use `tls`, open ones keep theirs, and nothing restarts. Fails
    /// with `ErrorKind::Unsupported` on a server built without [`ServerBuilder::tls`], which
    /// a reload never turns into a TLS server.
    ///
    /// [`ServerBuilder::tls`]: super::ServerBuilder::tls
    #[cfg(feature = "tls")]
    pub fn reload_tls(&self, tls: super::tls::TlsConfig) -> std::io::Result<()> {
        if self.workers.tls.set(tls, true) {
            log::info!("TLS certificate replaced; new connections use it");
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this server was built without TLS",
            ))
        }
    }

    /// Queue a message for the session `sid` (on whichever loop holds it).
    pub fn send(&self, sid: &str, message: impl Into<Message>) -> Result<(), HandleError> {
        self.workers.push_to(
            self.workers.loop_of(sid),
            Command::Send(sid.to_string(), message.into()),
        )
    }

    /// Queue a message for every session open when the loops execute the command. The
    /// frame is encoded once, here, and every loop and session shares it.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), HandleError> {
        let frame: Arc<[u8]> = Arc::from(message.into().to_server_frame());
        let mut result = Ok(());
        for index in 0..self.workers.loop_count() {
            result = result.and(
                self.workers
                    .push_to(index, Command::Broadcast(frame.clone())),
            );
        }
        result
    }

    /// Queue a message for every session subscribed to `topic`, on every loop; the frame is
    /// encoded once, here, and shared.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> Result<(), HandleError> {
        let frame: Arc<[u8]> = Arc::from(message.into().to_server_frame());
        let name: Arc<str> = Arc::from(topic);
        let mut result = Ok(());
        for index in 0..self.workers.loop_count() {
            result = result.and(
                self.workers
                    .push_to(index, Command::Publish(name.clone(), frame.clone())),
            );
        }
        result
    }

    /// Queue the subscription of the session `sid` to `topic` (see `Context::subscribe`).
    pub fn subscribe(&self, sid: &str, topic: &str) -> Result<(), HandleError> {
        let command = Command::Subscribe(sid.to_string(), topic.to_string(), true);
        self.workers.push_to(self.workers.loop_of(sid), command)
    }

    /// Queue the end of the subscription of the session `sid` to `topic`.
    pub fn unsubscribe(&self, sid: &str, topic: &str) -> Result<(), HandleError> {
        let command = Command::Subscribe(sid.to_string(), topic.to_string(), false);
        self.workers.push_to(self.workers.loop_of(sid), command)
    }

    /// Queue one message for each of `sids`, encoded once and shared (see
    /// `Context::send_many`).
    pub fn send_many(&self, sids: &[&str], message: impl Into<Message>) -> Result<(), HandleError> {
        let frame: Arc<[u8]> = Arc::from(message.into().to_server_frame());
        let mut per_loop: Vec<Vec<String>> = vec![Vec::new(); self.workers.loop_count()];
        for sid in sids {
            per_loop[self.workers.loop_of(sid)].push(sid.to_string());
        }
        let mut result = Ok(());
        for (index, sids) in per_loop.into_iter().enumerate() {
            if !sids.is_empty() {
                result = result.and(
                    self.workers
                        .push_to(index, Command::SendFrame(sids, frame.clone())),
                );
            }
        }
        result
    }

    /// Queue the closing of the session `sid` with `code` and `reason` (cut to 123 bytes). A
    /// code that may not be sent (§7.4.1) is refused here, not turned into an empty Close.
    pub fn close(&self, sid: &str, code: CloseCode, reason: &str) -> Result<(), HandleError> {
        if !code.is_sendable() {
            return Err(HandleError::NotSendable(code));
        }
        let command = Command::Close(sid.to_string(), code, reason.to_string());
        self.workers.push_to(self.workers.loop_of(sid), command)
    }

    /// Gracefully shut the server down: every session is closed with 1001, the loops wait
    /// for their answers up to the close timeout, then stop. Blocks until every loop has
    /// stopped, except when called on a loop's own thread (from a handler), where it only
    /// starts the shutdown.
    pub fn shutdown(&self) {
        self.workers.begin_shutdown();
        if self.workers.on_loop_thread() {
            return;
        }
        self.workers.wait_stopped();
    }

    /// Whether the server has stopped (every loop).
    pub fn is_stopped(&self) -> bool {
        self.workers.all_stopped()
    }

    /// How many sessions are open, on all loops (updated by the loops as they open and
    /// close).
    pub fn session_count(&self) -> usize {
        self.workers.session_count()
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
        (polls, Handle::new(Arc::new(Workers::new(wakers))))
    }

    #[test]
    fn a_broadcast_is_encoded_once_and_shared_by_every_loop() {
        let (_polls, handle) = handle(3);
        handle.broadcast("order 42 is ready".to_string()).unwrap();
        let frames: Vec<Arc<[u8]>> = (0..3)
            .map(|index| {
                let mut commands = Vec::new();
                handle.workers().take_commands(index, &mut commands);
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
        handle.workers().mark_stopped(0);
        assert_eq!(handle.broadcast(vec![1u8, 2, 3]), Err(HandleError::Stopped));
        let mut commands = Vec::new();
        handle.workers().take_commands(1, &mut commands);
        assert!(
            matches!(commands.as_slice(), [Command::Broadcast(f)] if f[..] == [0x82, 3, 1, 2, 3])
        );
    }
}
