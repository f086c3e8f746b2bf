//! [`ServerBuilder`] and the [`Server`] it builds: binding, then running the loop (or the
//! loops, one thread each) until shutdown.
//!
//! Owns: the user's entry point and the threads of the loops. Must not: contain loop logic;
//! each loop is an `EventLoop` (`event_loop.rs`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use super::config::ServerConfig;
use super::event_loop::EventLoop;
use super::handle::Handle;
use super::handler::Handler;
use super::route::Route;

/// Builds a [`Server`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    addr: Option<String>,
    config: ServerConfig,
    invalid_route: Option<String>,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
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

    /// Serve https and wss only, with this certificate and key (feature `tls`): the port
    /// speaks TLS alone, with no plaintext fallback. [`Handle::reload_tls`] replaces the
    /// certificate for new connections while the server runs.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
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
        EventLoop::bind(
            addr,
            self.config,
            #[cfg(feature = "tls")]
            self.tls,
        )
        .map(|loops| Server { loops })
    }
}

/// A bound server, ready to run its loop (or loops).
pub struct Server {
    /// Loop 0 (the listening one) first.
    loops: Vec<EventLoop>,
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
                    handle.workers().begin_shutdown();
                    return Err(e);
                }
            }
        }
        let mut result = first.run(make(0));
        // Loop 0 stopped (a shutdown, or an error that began one): wait for the others.
        handle.workers().begin_shutdown();
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
