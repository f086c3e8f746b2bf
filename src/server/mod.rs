//! The server: one mio event loop (or several) driving many WebSocket sessions, each known
//! by its sid (feature `server`).
//!
//! # Using it
//!
//! 1. Build a [`Server`] with [`Server::builder`]: the address, the route that maps an
//!    upgrade request to a sid (default `/ws/{sid}`, see [`Route`]), and any
//!    [`ServerConfig`] setting (limits, timeouts, `workers`, permessage-deflate).
//! 2. Write a [`Handler`]: `on_open`, `on_message` and `on_close` for sessions, and
//!    `on_request` for plain HTTP requests ([`HttpRequest`] in, [`HttpResponse`] out). Each
//!    callback gets a [`Context`] to send to a sid, broadcast, close or shut down; what it
//!    sends is queued and written when the callback returns ([`SendStatus`] tells what
//!    happened), and `on_close` says why a session ended ([`CloseReason`]).
//! 3. Run it: [`Server::run`] on this thread, [`Server::spawn`] on a new one, or
//!    [`Server::run_each`] / [`Server::spawn_each`] with several loops. Code on other
//!    threads reaches the sessions through a [`Handle`] ([`Server::handle`]), which queues
//!    commands for the loop and answers only whether they were queued ([`HandleError`]).
//!
//! ```no_run
//! use wsloop::server::{Context, Handler, Server};
//! use wsloop::Message;
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
//!         ctx.send(sid, message);
//!     }
//! }
//!
//! let server = Server::builder().bind("127.0.0.1:8080").build().unwrap();
//! let handle = server.handle(); // for other threads: handle.broadcast("..."), shutdown()
//! # let _ = handle;
//! server.run(Echo).unwrap();
//! ```
//!
//! **Duplicate sids.** A new connection for a sid that is already open replaces the old
//! one: the old session gets `on_close` with [`CloseReason::Replaced`] *before* the new one
//! gets `on_open`, and its client receives a Close with code 4000 and reason "replaced".
//! A browser tab that reconnects thus takes over its sid without waiting for the old TCP
//! connection to time out.
//!
//! **Stopping on SIGTERM / SIGINT.** [`Handle::shutdown`] is the graceful stop: a Close 1001
//! to every session, `on_close` for each, and `run` returns within
//! [`ServerConfig::close_timeout`]. The library installs no signal handler (signal
//! dispositions belong to the application, and the default build's dependencies are fixed);
//! since a [`Handle`] works from any thread, a few lines over the `signal-hook` crate do it,
//! as the `echo` and `dashboard` examples do (`examples/common/shutdown.rs`; the README has
//! the whole program): the first signal shuts down, a second one exits at once.
//!
//! ```no_run
//! # #[cfg(unix)]
//! # fn main() -> std::io::Result<()> {
//! # struct App;
//! # impl wsloop::server::Handler for App {}
//! use std::sync::{atomic::AtomicBool, Arc};
//! use signal_hook::{consts::{SIGINT, SIGTERM}, flag, iterator::Signals};
//!
//! let server = wsloop::Server::builder().bind("127.0.0.1:8080").build()?;
//! let signalled = Arc::new(AtomicBool::new(false));
//! for (signal, status) in [(SIGTERM, 143), (SIGINT, 130)] {
//!     // The second signal exits at once (128 + its number, as shells report it).
//!     flag::register_conditional_shutdown(signal, status, Arc::clone(&signalled))?;
//!     flag::register(signal, Arc::clone(&signalled))?;
//! }
//! let mut signals = Signals::new([SIGTERM, SIGINT])?;
//! let handle = server.handle();
//! std::thread::spawn(move || {
//!     if signals.forever().next().is_some() {
//!         handle.shutdown(); // the first: graceful shutdown, `run` returns
//!     }
//! });
//! server.run(App)
//! # }
//! # #[cfg(not(unix))]
//! # fn main() {}
//! ```
//!
//! The protocol itself lives in the sans-I/O core ([`crate::session`],
//! [`crate::handshake`]); this layer only moves bytes between sockets and sessions, keeps
//! time, and calls the handler.
//!
//! # For maintainers
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | this page, the module list and the public names |
//! | `builder.rs` | [`ServerBuilder`], [`Server`]: binding, running the loops on threads |
//! | `config.rs` | [`ServerConfig`], its defaults and why |
//! | [`route`] | which upgrade path yields which sid and parameters |
//! | `upgrade.rs` | [`UpgradeRequest`] and [`Upgrade`]: the application's decision on an upgrade |
//! | `handler.rs` | [`Handler`], [`Context`] (over the core's `Ops`), [`CloseReason`], [`SendStatus`] |
//! | `http.rs` | [`HttpRequest`], [`HttpResponse`], the loop's own status answers |
//! | `handle.rs` | [`Handle`]: the public way in from other threads |
//! | `workers.rs` | what the loops share: command queues and wakers, counts, the sid directory |
//! | `event_loop.rs` | the mio driver: poll, accept (and its pause), dispatch by token |
//! | `core.rs` | the loop's state over any transport: connections, sid map, shutdown, timers, the step after the events |
//! | `input.rs` | reading, the upgrade, dispatching session events to the handler |
//! | `output.rs` | queueing, the high-water mark, flushing, the `Ops` behind [`Context`] |
//! | `http_fallback.rs` | a plain HTTP request: its body, `on_request`, the final answer |
//! | `handover.rs` | commands from handles and loops; passing connections between loops |
//! | `topics.rs` | which sessions of a loop are subscribed to which topics |
//! | `budget.rs` | the server-wide memory budget, pure: what is held, who may read, what fits |
//! | `pool.rs` | the loop's recycled message buffers: payloads written out, lent to the next messages |
//! | `deadline.rs` | the deadline policy, pure: when a connection is due, and for what |
//! | `connection.rs` | one connection's phase, write queue and timing fields |
//! | `timer.rs` | deadlines in a heap, so a wake-up never scans every connection |
//! | `transport.rs` | the seam to sockets and the poller (mio, or in-memory pipes); a mio connection's `Socket`, plain or TLS |
//! | `tls.rs` | `TlsConfig`, the slot reloads replace, a socket behind rustls (feature `tls`) |
//! | `sim.rs` | the same core over in-memory pipes and a manual clock, for fuzzing (feature `fuzzing`) |
//!
//! The data path: `event_loop.rs` polls; a readable connection goes to `input.rs`, which
//! reads into the shared buffer and feeds the request parser (then the upgrade, or
//! `http_fallback.rs`) or the session, and calls the handler for each event; what the
//! handler sends is queued by `output.rs`; after each event the dirty queues are flushed,
//! and after the events of a poll `core.rs`'s `after_events` finishes leftover reads,
//! fires deadlines (`deadline.rs` decides, `timer.rs` holds them), flushes and steps a
//! shutdown. `sim.rs` drives the same core and the same step without sockets.
//!
//! The imports among these files form a DAG, lowest first: `tls` < `transport`, `timer`,
//! `budget`, `pool`, `topics`, `route`, `config`, `http` < `upgrade` < `workers` < `handle` < `handler` <
//! `connection` < `deadline` < `core` < `input`, `output`, `http_fallback`, `handover` <
//! `event_loop`, `sim` < `builder` (`.ci/layers.py` prints the exact order).

mod budget;
mod builder;
mod config;
mod connection;
mod core;
mod deadline;
mod event_loop;
mod handle;
mod handler;
mod handover;
mod http;
mod http_fallback;
mod input;
mod output;
mod pool;
pub mod route;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod sim;
mod timer;
#[cfg(feature = "tls")]
mod tls;
mod topics;
mod transport;
mod upgrade;
mod workers;

pub use builder::{Server, ServerBuilder};
pub use config::ServerConfig;
pub use handle::{Handle, HandleError, COMMAND_QUEUE_BYTES, COMMAND_QUEUE_LIMIT};
pub use handler::{CloseError, CloseReason, Context, Handler, PingError, SendStatus};
pub use http::{HttpRequest, HttpResponse};
pub use route::{Route, RouteMatch};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use upgrade::{percent_decode, Upgrade, UpgradeRequest};
