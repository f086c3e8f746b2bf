//! Guides: one short page per task an application meets, each with code that compiles
//! (and, where it can, runs and checks itself) as a doctest.
//!
//! Owns: documentation only; no item here is code. Must not: define anything the library
//! uses. The pages are Markdown files under `docs/guide/` (readable in the repository),
//! included here so that rustdoc renders them and `cargo test` runs their examples.
//!
//! | page | the task |
//! |---|---|
//! | [`authenticate_an_upgrade`] | decide at upgrade time: a token in the query, a header or a cookie; `401` with `WWW-Authenticate`; the `Origin` check; the client's address behind trusted proxies |
//! | [`per_session_state`] | keep data per session without maps: `Upgrade::with_data`, `Context::data`, its lifetime, several loops |
//! | [`rooms_with_topics`] | rooms as topics: `subscribe`, `publish`, `send_many`, `Handle::publish`, several instances with `wsloop-redis` |
//! | [`beside_tokio`] | the server in a tokio application: the `Handle` from tasks, messages from the handler to async code |
//! | [`behind_a_proxy`] | TLS terminated by nginx or Caddy: the configuration that keeps WebSockets working, timeouts, `X-Forwarded-For` |
//! | [`coming_from_java`] | from a Java `@ServerEndpoint`: which map disappears, where each annotation goes |
//!
//! **The design in one paragraph.** The simple endpoint stays what it was: a [`Handler`]
//! with `on_open` / `on_message` / `on_close` by sid, on the route `/ws/{sid}`. Everything
//! else is opt-in and has one place: the decision at upgrade time is
//! [`Handler::on_upgrade`] (it runs on the loop, with the handler's own state, as
//! uWebSockets' `upgrade` handler and Python websockets' `process_request` do); the
//! session's data is given there ([`Upgrade::with_data`]) and typed where it is read
//! ([`Context::data`]), so no handler has to declare a type it does not use; groups are
//! topics ([`Context::subscribe`], [`Context::publish`]: `socket.join(room)` and
//! `io.to(room).emit()` in Socket.IO terms), each publish encoded once and shared by every
//! subscriber, like [`Context::broadcast`].
//!
//! [`Handler`]: crate::server::Handler
//! [`Handler::on_upgrade`]: crate::server::Handler::on_upgrade
//! [`Upgrade::with_data`]: crate::server::Upgrade::with_data
//! [`Context::data`]: crate::server::Context::data
//! [`Context::subscribe`]: crate::server::Context::subscribe
//! [`Context::publish`]: crate::server::Context::publish
//! [`Context::broadcast`]: crate::server::Context::broadcast

#[doc = include_str!("../docs/guide/authenticate_an_upgrade.md")]
pub mod authenticate_an_upgrade {}

#[doc = include_str!("../docs/guide/per_session_state.md")]
pub mod per_session_state {}

#[doc = include_str!("../docs/guide/rooms_with_topics.md")]
pub mod rooms_with_topics {}

#[doc = include_str!("../docs/guide/beside_tokio.md")]
pub mod beside_tokio {}

#[doc = include_str!("../docs/guide/behind_a_proxy.md")]
pub mod behind_a_proxy {}

#[doc = include_str!("../docs/guide/coming_from_java.md")]
pub mod coming_from_java {}
