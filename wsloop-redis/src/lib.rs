//! Several [`wsloop`] servers behind a load balancer, acting as one through Redis pub/sub.
//!
//! A [`Bridge`] connects one server's [`Handle`](wsloop::server::Handle) to Redis:
//!
//! - a broadcast from any instance reaches every session on every instance;
//! - a publish to a topic from any instance reaches the sessions subscribed to it on every
//!   instance ([`Bridge::publish`]; sessions subscribe through their instance's
//!   [`Context`](wsloop::server::Context::subscribe) or
//!   [`Handle`](wsloop::server::Handle::subscribe), as on one server);
//! - a send or close for a sid reaches the instance that holds it, found in a directory in
//!   Redis (sid → instance), whose entries expire when their instance stops refreshing them;
//! - a sid opened on a second instance replaces the first session, which its instance closes
//!   with 4000 "replaced", as one server does for a duplicate sid;
//! - business code anywhere, in any language, can `PUBLISH` a JSON [`Envelope`] on the events
//!   channel:
//!   `redis-cli PUBLISH wsloop:events '{"type":"broadcast","text":"order 42"}'`, or
//!   `'{"type":"publish","topic":"shop-7","text":"order 42"}'` for one topic's subscribers.
//!
//! ```no_run
//! use wsloop::server::{Handler, Server};
//! use wsloop_redis::{Bridge, Config};
//!
//! struct Dashboard;
//! impl Handler for Dashboard {}
//!
//! let server = Server::builder().bind("127.0.0.1:8081").build()?;
//! let bridge = Bridge::start(Config::new("redis://127.0.0.1:6379"), server.handle())?;
//! server.run(bridge.wrap(Dashboard))?; // the handler, wrapped: sessions go in the directory
//! bridge.stop();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Names in Redis
//!
//! With the default prefix `wsloop` ([`Config::prefix`]):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `wsloop:events` | channel | every instance listens; broadcasts, publishes to topics, and sends and closes from business code |
//! | `wsloop:instance:{id}` | channel | one instance listens; sends and closes routed to it through the directory |
//! | `wsloop:sid:{sid}` | string key, TTL | `{id}#{session}`: the instance holding the sid, and that instance's number for the session |
//!
//! On the events channel, a `send` or `close` is applied by whichever instance holds the sid
//! (each knows its own sessions), so a publisher needs no directory lookup. The bridge's own
//! [`Bridge::send`] and [`Bridge::close`] look the sid up and publish to that instance's
//! channel only. The envelope's fields are in [`envelope`].
//!
//! # Topics
//!
//! Subscriptions stay local: each instance knows which of its own sessions follow which
//! topic (its loops keep that, and end it with the session), and Redis holds nothing per
//! subscription. A publish goes on the events channel, every instance receives it and hands
//! it to its subscribers, if any. Why: subscribing and unsubscribing cost no Redis round trip
//! (they happen on the loop, at once, even while Redis is down), and an instance that dies
//! leaves no subscription behind to expire or clean up. The price is that every instance
//! receives every publish, even for a topic none of its sessions follows (a lookup in each
//! of its loops, and the frame encoded once); per-topic channels would spare that at the
//! cost of a `SUBSCRIBE` per first subscriber and state to repair after each reconnection.
//!
//! # Time bounds
//!
//! - Directory entries live [`Config::directory_ttl`] (30 s) and are refreshed every
//!   [`Config::refresh_interval`] (10 s): a crashed instance's sids are gone from the
//!   directory at most 30 s after its last refresh. A graceful stop deletes them at once.
//! - Lost connections are retried at once, then after 100 ms, doubling up to 5 s
//!   ([`Config::reconnect_min`], [`Config::reconnect_max`]).
//! - A silent subscription is checked every `refresh_interval`, and any Redis exchange that
//!   takes over [`Config::io_timeout`] (5 s) counts as a dead connection.
//!
//! # When Redis is down
//!
//! Each instance keeps serving its own sessions: [`Bridge::broadcast`] still reaches them
//! (through the `Handle`), and so does [`Bridge::send`] for a sid open here. What is lost:
//!
//! - **messages published while an instance's subscription is down never reach it** (Redis
//!   pub/sub keeps nothing for absent subscribers); the window is logged when the
//!   subscription comes back;
//! - messages an instance sends to others wait in its outbox ([`Config::outbox_limit`], 1024;
//!   the oldest are dropped beyond it, and the count is logged) and are published once its
//!   connection is back; they reach the instances subscribed by then;
//! - a sid opened on two instances during the outage is resolved when they reconnect (the
//!   later claim replaces the earlier session).
//!
//! After reconnecting, an instance re-subscribes, re-registers its sessions in the directory
//! (a restarted Redis starts empty) and flushes its outbox; a message published after its
//! subscription is back is not missed. Everything above is logged with the `log` crate.
//!
//! # Threads
//!
//! The server's handler callbacks run on its event loop and must not wait for Redis. So
//! [`Bridged`] (the wrapped handler) only records sessions and queues jobs; a writer thread
//! owns one connection (directory, publishing) and a subscriber thread another; commands
//! from Redis reach the sessions through the server's `Handle`.
//!
//! Needs Redis 6.2 or later (`SET … GET`), one Redis or a primary (not Redis Cluster: the
//! refresh script takes many keys at once).

mod bridge;
mod config;
mod directory;
pub mod envelope;
mod handler;
mod shared;
mod subscriber;
mod writer;

pub use bridge::{Bridge, BridgeError, PENDING_LIMIT};
pub use config::Config;
pub use envelope::{Envelope, EnvelopeError};
pub use handler::Bridged;

/// The README's example, compiled by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
