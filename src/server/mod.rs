//! The server: one mio event loop driving many connections, keyed by sid (feature `server`).
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | configuration, its defaults and why, [`Server`] |
//! | [`route`] | which upgrade path yields which sid |
//! | `handler.rs` | [`Handler`], [`Context`], [`CloseReason`], HTTP request/response types |
//! | `handle.rs` | [`Handle`]: commands from other threads, through a `mio::Waker` |
//! | `event_loop.rs` | the loop: accept, read, dispatch, write, timers, shutdown |
//! | `connection.rs` | one connection's phase, write queue and deadlines |
//! | `timer.rs` | deadlines in a heap, so a wake-up never scans every connection |
//! | `transport.rs` | the seam to sockets and the poller (mio, or in-memory pipes) |
//! | `sim.rs` | the same loop over in-memory pipes and a manual clock, for fuzzing (feature `fuzzing`) |
//!
//! The protocol itself lives in the sans-I/O core ([`crate::session`],
//! [`crate::handshake`]); this layer only moves bytes between sockets and sessions, keeps
//! time, and calls the handler.
//!
//! **Duplicate sids.** A new connection for a sid that is already open replaces the old
//! one: the old session gets `on_close` with [`CloseReason::Replaced`] *before* the new one
//! gets `on_open`, and its client receives a Close with code 4000 and reason "replaced".
//! A browser tab that reconnects thus takes over its sid without waiting for the old TCP
//! connection to time out.

mod connection;
mod event_loop;
mod handle;
mod handler;
pub mod route;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod sim;
mod timer;
mod transport;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub use handle::{Handle, HandleError, COMMAND_QUEUE_LIMIT};
pub use handler::{CloseReason, Context, Handler, HttpRequest, HttpResponse, SendStatus};
pub use route::Route;

use crate::handshake::Limits;

/// Everything the server can be told. Every default is chosen for a back office with a
/// few thousand browser tabs on one small machine; each field says why.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Which upgrade requests become sessions. Default `/ws/{sid}`.
    pub route: Route,
    /// Subprotocols we speak, in our order of preference; the client's first offered one that
    /// is listed here is selected (§4.2.2). Default none.
    pub protocols: Vec<String>,
    /// Most simultaneous connections (handshaking and open); the next one gets 503.
    /// Default 10,000: an idle session costs about 1 KiB of our memory plus the kernel's
    /// socket buffers, and the default file-descriptor limit of many systems is near this.
    pub max_connections: usize,
    /// Bounds on the handshake request head (431 beyond). Default 8 KiB and 64 headers.
    pub handshake_limits: Limits,
    /// Limits on incoming frames and messages (1009 beyond). Default 64 MiB for both.
    pub session: crate::session::SessionLimits,
    /// High-water mark of bytes queued for one client. A message is accepted while the
    /// queue is below it (so one message larger than the mark still goes out on an idle
    /// connection); a send to a connection already over it closes that connection with 1008.
    /// While a client's queue is over the mark, the loop also stops reading from it, so a
    /// client that floods Pings (or echo requests) without reading the answers is held back
    /// by TCP instead of growing our memory.
    /// Default 4 MiB: several seconds of traffic for a dashboard, yet 10,000 stuck clients
    /// cannot take more than their share.
    pub max_queued_bytes: usize,
    /// Largest body of a plain HTTP request (413 beyond). Default 64 KiB.
    pub max_http_body: usize,
    /// Time from accept to a complete handshake (or HTTP request). Default 10 s: generous
    /// for a slow mobile link, short enough that half-open handshakes do not pile up.
    pub handshake_timeout: Duration,
    /// Silence after which we send a Ping. Default 30 s: under the 60 s idle timeout of
    /// common proxies and NATs, so the heartbeat also keeps the path open.
    pub idle_timeout: Duration,
    /// Time to wait for any sign of life after that Ping before dropping the connection.
    /// Default 30 s.
    pub pong_timeout: Duration,
    /// Longest time a client may take to send one message, from its first byte to its last
    /// (pings in between do not extend it); beyond it, Close 1008. Default 60 s: a 64 MiB
    /// message needs about 1 MB/s, and a client that trickles a message to hold its buffer
    /// open (slowloris) is cut off.
    pub message_timeout: Duration,
    /// Time to wait for the client's Close after ours, and for the TCP close after that.
    /// Default 5 s: a live client answers in one round trip.
    pub close_timeout: Duration,
    /// Size of the one read buffer the loop shares among all connections. Default 64 KiB.
    /// (The loop also keeps the buffer of the last large payload it wrote, at most one
    /// message's worth, so that the next large message reuses memory already mapped.)
    pub read_buffer_size: usize,
    /// How many event loops, each on its own thread with its own poll, slab, read buffer
    /// and timers. Default 1: one loop on one core serves tens of thousands of sessions and
    /// keeps the handler on one thread. With more, loop 0 accepts and hands each connection
    /// to the loop with the fewest; sends, broadcasts, closes, duplicate sids and shutdown
    /// work across loops as on one (see [`Server::run_each`]).
    pub workers: usize,
    /// permessage-deflate (RFC 7692), feature `deflate`: `Some` accepts the first offer of a
    /// client that this configuration can honour ([`crate::deflate::negotiate::answer`]);
    /// such a session then compresses what [`Context::send`] and [`Handle::send`] send to
    /// it, and inflates what it receives. Default `None`, not offered: compression costs CPU
    /// on every message and memory on every connection that uses it (hundreds of KiB with
    /// context takeover, none between messages without; see [`crate::deflate`]), and pays
    /// off only for large or repetitive text.
    ///
    /// Broadcasts are not compressed: one frame is built once and shared by every session,
    /// which compression per connection would undo. RFC 7692 §6 allows uncompressed messages
    /// (RSV1 clear) on a connection that negotiated the extension, so receivers take them.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            route: Route::default(),
            protocols: Vec::new(),
            max_connections: 10_000,
            handshake_limits: Limits::default(),
            session: crate::session::SessionLimits::default(),
            max_queued_bytes: 4 << 20,
            max_http_body: 64 << 10,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            message_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            read_buffer_size: 64 << 10,
            workers: 1,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// Builds a [`Server`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    addr: Option<String>,
    config: ServerConfig,
    invalid_route: Option<String>,
}

impl ServerBuilder {
    /// The address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// The path pattern with one `{sid}`; an invalid pattern is reported by
    /// [`ServerBuilder::build`].
    pub fn route(mut self, pattern: &str) -> Self {
        match Route::pattern(pattern) {
            Some(route) => self.config.route = route,
            None => self.invalid_route = Some(pattern.to_string()),
        }
        self
    }

    /// A custom routing function.
    pub fn route_fn(
        mut self,
        f: impl Fn(&crate::handshake::Request) -> Result<String, u16> + Send + Sync + 'static,
    ) -> Self {
        self.config.route = Route::custom(f);
        self
    }

    /// Accept permessage-deflate with `config` (feature `deflate`); see
    /// [`ServerConfig::deflate`].
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, config: crate::deflate::DeflateConfig) -> Self {
        self.config.deflate = Some(config);
        self
    }

    /// Run `n` event loops, one thread each (see [`ServerConfig::workers`]); run the
    /// server with [`Server::run_each`] or [`Server::spawn_each`], which make one handler
    /// per loop.
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n.max(1);
        self
    }

    /// Replace the whole configuration (keeps the address).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Change the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Bind the listener and prepare the loop.
    pub fn build(self) -> io::Result<Server> {
        if let Some(pattern) = self.invalid_route {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("route pattern {pattern:?} needs exactly one {{sid}}"),
            ));
        }
        let addr = self.addr.as_deref().unwrap_or("127.0.0.1:8080");
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
        })?;
        event_loop::EventLoop::bind(addr, self.config).map(|loops| Server { loops })
    }
}

/// A bound server, ready to run its loop (or loops).
pub struct Server {
    /// Loop 0 (the listening one) first.
    loops: Vec<event_loop::EventLoop>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr().ok())
            .field("loops", &self.loops.len())
            .finish()
    }
}

impl Server {
    /// Start building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.loops[0].local_addr()
    }

    /// A handle for other threads; take it before [`Server::run`].
    pub fn handle(&self) -> Handle {
        self.loops[0].handle()
    }

    /// Run the loop on this thread until shutdown. For a server with one loop (the
    /// default); with [`ServerBuilder::workers`] above 1 use [`Server::run_each`].
    pub fn run<H: Handler>(self, handler: H) -> io::Result<()> {
        if self.loops.len() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a server with several loops needs one handler per loop: use run_each",
            ));
        }
        let mut loops = self.loops;
        loops.remove(0).run(handler)
    }

    /// Run every loop until shutdown: loop 0 on this thread, the others on threads of their
    /// own. `make(i)` builds loop `i`'s handler on that loop's thread, so the handler type
    /// need not be `Send`; the callbacks of a connection always run on its loop's handler.
    /// State shared by all loops (a map of online users, say) must therefore be shared
    /// explicitly, e.g. an `Arc<Mutex<..>>` captured by `make`; per-sid state kept in a
    /// handler stays consistent, because a sid's `on_open`, `on_message`s and `on_close` all
    /// run on the loop that holds it. Returns once every loop has stopped, with the first
    /// error.
    pub fn run_each<H, F>(self, make: F) -> io::Result<()>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let make = std::sync::Arc::new(make);
        let handle = self.handle();
        let mut loops = self.loops.into_iter();
        let first = loops.next().expect("a server has at least one loop");
        let mut threads = Vec::new();
        for (i, event_loop) in loops.enumerate() {
            let make = make.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wsloop-{}", i + 1))
                .spawn(move || event_loop.run(make(i + 1)));
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    handle.begin_shutdown();
                    return Err(e);
                }
            }
        }
        let mut result = first.run(make(0));
        // Loop 0 stopped (a shutdown, or an error that began one): wait for the others.
        handle.begin_shutdown();
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a loop panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }

    /// Run the loop on a new thread; returns the handle and the thread. For one loop; see
    /// [`Server::spawn_each`].
    pub fn spawn<H: Handler + Send + 'static>(
        self,
        handler: H,
    ) -> io::Result<(Handle, std::thread::JoinHandle<io::Result<()>>)> {
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("wsloop".into())
            .spawn(move || self.run(handler))?;
        Ok((handle, thread))
    }

    /// [`Server::run_each`] on a new thread; returns the handle and that thread, which ends
    /// once every loop has stopped.
    pub fn spawn_each<H, F>(
        self,
        make: F,
    ) -> io::Result<(Handle, std::thread::JoinHandle<io::Result<()>>)>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("wsloop".into())
            .spawn(move || self.run_each(make))?;
        Ok((handle, thread))
    }
}
