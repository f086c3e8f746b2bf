//! [`Bridge`]: what the application holds.
//!
//! Owns: starting and stopping the threads, and the public API: queueing the application's
//! messages for the writer thread (bounded by [`PENDING_LIMIT`]), or handing them straight to
//! the server for this instance's own sessions. The state it shares with the threads is in
//! `shared.rs`. Must not: do Redis I/O on the caller's thread: every method only queues (or,
//! for this instance's own sessions, goes straight to the server's [`Handle`]), so it is safe
//! inside handler callbacks, on the event loop.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsloop::server::{Handle, HandleError, Handler};
use wsloop::{CloseCode, Message};

use crate::config::Config;
use crate::envelope::Envelope;
use crate::handler::Bridged;
use crate::shared::{Job, Outgoing, Shared};
use crate::{subscriber, writer};

/// How many outgoing messages may wait for the writer thread before the bridge's methods
/// fail with [`BridgeError::Backlog`] (the thread is stuck in a Redis call of at most
/// `io_timeout`; this bounds the memory a burst can take meanwhile).
pub const PENDING_LIMIT: usize = 65_536;

/// Why a bridge method did not queue its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeError {
    /// The server (or the bridge) has stopped.
    Stopped,
    /// The server's command queue is full ([`HandleError::QueueFull`]).
    QueueFull,
    /// [`PENDING_LIMIT`] messages already wait for Redis.
    Backlog,
    /// RFC 6455 §7.4.1: this close code may not be sent ([`HandleError::NotSendable`]).
    NotSendable(CloseCode),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Stopped => f.write_str("the server or the bridge has stopped"),
            BridgeError::QueueFull => f.write_str("the server's command queue is full"),
            BridgeError::Backlog => f.write_str("too many messages wait for Redis"),
            BridgeError::NotSendable(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}

impl std::error::Error for BridgeError {}

impl From<HandleError> for BridgeError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Stopped => BridgeError::Stopped,
            HandleError::QueueFull => BridgeError::QueueFull,
            HandleError::NotSendable(code) => BridgeError::NotSendable(code),
        }
    }
}

/// Connects a server's [`Handle`] to Redis, so that several servers act as one.
///
/// Cheap to clone, `Send + Sync`; every method may be called from any thread, handler
/// callbacks included: none does Redis I/O on the caller's thread. Like the [`Handle`], the
/// methods report only whether the command was queued; what happens to it is logged.
///
/// ```no_run
/// use wsloop::server::{Handler, Server};
/// use wsloop_redis::{Bridge, Config};
///
/// struct Dashboard;
/// impl Handler for Dashboard {}
///
/// let server = Server::builder().bind("127.0.0.1:8081").build()?;
/// let bridge = Bridge::start(Config::new("redis://127.0.0.1:6379"), server.handle())?;
/// let alerts = bridge.clone();
/// std::thread::spawn(move || {
///     // Every dashboard on every instance pops up order 42.
///     alerts.broadcast(r#"{"type":2,"orderId":42}"#).ok();
/// });
/// server.run(bridge.wrap(Dashboard))?;
/// bridge.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Bridge {
    shared: Arc<Shared>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("instance_id", &self.instance_id())
            .field("redis", &self.shared.redis_addr)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Bridge {
    /// Start the bridge's threads for the server behind `handle`: one that keeps the
    /// directory and publishes, one that listens. Fails only on an invalid configuration;
    /// an unreachable Redis is retried in the background (and logged).
    pub fn start(config: Config, handle: Handle) -> io::Result<Bridge> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        config.check().map_err(invalid)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| invalid(format!("Redis URL {:?}: {e}", config.url)))?;
        let redis_addr = client.get_connection_info().addr().to_string();
        log::info!(
            "instance {} joins the cluster through Redis at {} (channels {} and {})",
            config.instance_id,
            redis_addr,
            config.events_channel(),
            config.instance_channel(&config.instance_id),
        );
        let (jobs, receiver) = channel();
        let shared = Arc::new(Shared::new(config, client, redis_addr, handle, jobs));
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("wsloop-redis-writer".into())
                .spawn(move || writer::run(shared, receiver))?
        };
        let subscriber = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("wsloop-redis-subscriber".into())
                .spawn(move || subscriber::run(shared))?
        };
        shared.keep_threads(vec![writer, subscriber]);
        Ok(Bridge { shared })
    }

    /// Wrap the application's handler: every callback goes to `handler`, and sessions
    /// opening and closing are reported to the directory. Pass the result to
    /// [`wsloop::server::Server::run`].
    pub fn wrap<H: Handler>(&self, handler: H) -> Bridged<H> {
        Bridged::new(handler, self.shared.clone())
    }

    /// This instance's name in the directory and in its channel's name.
    pub fn instance_id(&self) -> &str {
        &self.shared.config.instance_id
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Queue a message for every session of every instance: this instance's through its
    /// [`Handle`] (so they get it even while Redis is down), the others' through Redis.
    /// `Err` if either part could not be queued; each part is tried whatever the other's
    /// outcome, so a Redis backlog never keeps this instance's sessions from the message.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), BridgeError> {
        let message = message.into();
        let here = self.shared.handle.broadcast(message.clone());
        let remote = self.broadcast_remote(message);
        here?;
        remote
    }

    /// Queue a message for every session of the *other* instances: for a handler that has
    /// already broadcast to this instance's sessions through its `Context` (which tells it
    /// how many it reached).
    pub fn broadcast_remote(&self, message: impl Into<Message>) -> Result<(), BridgeError> {
        self.out(Outgoing::Publish {
            channel: self.shared.config.events_channel(),
            envelope: Envelope::Broadcast {
                message: message.into(),
                origin: Some(self.shared.config.instance_id.clone()),
            },
        })
    }

    /// Queue a message for every session subscribed to `topic`, on every instance: this
    /// instance's through its [`Handle`] (so they get it even while Redis is down), the
    /// others' through Redis. As with [`Bridge::broadcast`], each part is tried whatever the
    /// other's outcome.
    ///
    /// Subscriptions stay on the instance that holds the session
    /// ([`Context::subscribe`](wsloop::server::Context::subscribe),
    /// [`Handle::subscribe`]): nothing is kept in Redis per subscription, so subscribing costs
    /// no round trip and a dead instance leaves nothing to clean up. The price: every
    /// instance receives every publish and looks the topic up in its own loops, where a topic
    /// without local subscribers costs one map lookup.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> Result<(), BridgeError> {
        let message = message.into();
        let here = self.shared.handle.publish(topic, message.clone());
        let remote = self.publish_remote(topic, message);
        here?;
        remote
    }

    /// Queue a message for the sessions subscribed to `topic` on the *other* instances: for
    /// a handler that has already published to this instance's subscribers through its
    /// `Context` (which tells it how many it reached).
    pub fn publish_remote(
        &self,
        topic: &str,
        message: impl Into<Message>,
    ) -> Result<(), BridgeError> {
        self.out(Outgoing::Publish {
            channel: self.shared.config.events_channel(),
            envelope: Envelope::Publish {
                topic: topic.to_string(),
                message: message.into(),
                origin: Some(self.shared.config.instance_id.clone()),
            },
        })
    }

    /// Queue a message for the session `sid`, on whichever instance holds it (found in the
    /// directory; straight to the [`Handle`] if it is this one).
    pub fn send(&self, sid: &str, message: impl Into<Message>) -> Result<(), BridgeError> {
        if self.shared.session_of(sid).is_some() {
            return Ok(self.shared.handle.send(sid, message)?);
        }
        self.out(Outgoing::Route(Envelope::send(sid, message)))
    }

    /// Queue the closing of the session `sid` with `code` and `reason`, on whichever instance
    /// holds it.
    pub fn close(&self, sid: &str, code: CloseCode, reason: &str) -> Result<(), BridgeError> {
        if !code.is_sendable() {
            return Err(BridgeError::NotSendable(code));
        }
        if self.shared.session_of(sid).is_some() {
            return Ok(self.shared.handle.close(sid, code, reason)?);
        }
        self.out(Outgoing::Route(Envelope::close(sid, code, reason)))
    }

    /// Whether both connections to Redis are up: the one that publishes and keeps the
    /// directory, and the subscription.
    pub fn is_connected(&self) -> bool {
        self.shared.writer_up.load(Ordering::SeqCst)
            && self.shared.subscribed.load(Ordering::SeqCst)
    }

    /// Wait up to `timeout` for [`Bridge::is_connected`]; returns it.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_connected() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stop the bridge: the writer releases the directory entries of sessions still open,
    /// both threads leave Redis and are joined. (They also stop by themselves once the
    /// server has stopped.) Call it after the server's shutdown, so that the sessions'
    /// entries are released as they close; from one of the bridge's own threads it only
    /// asks them to stop.
    pub fn stop(&self) {
        self.shared.request_stop();
        let threads = self.shared.take_threads();
        let me = std::thread::current().id();
        for thread in threads {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }

    fn out(&self, outgoing: Outgoing) -> Result<(), BridgeError> {
        if self.shared.stopping() {
            return Err(BridgeError::Stopped);
        }
        if self.shared.pending.fetch_add(1, Ordering::SeqCst) >= PENDING_LIMIT {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(BridgeError::Backlog);
        }
        self.shared.job(Job::Out(outgoing));
        Ok(())
    }
}
