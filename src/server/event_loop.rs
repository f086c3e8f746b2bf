//! The mio driver of one loop: poll, accept, dispatch the readiness events to the core.
//!
//! Owns: [`EventLoop`]: the `mio::Poll`, the listener (loop 0 only) and the pause of accepts
//! after an error such as EMFILE, the waker's token, the one read buffer, and the loop
//! itself. Must not: hold connection logic; each event goes to the [`Core`], and after the
//! events of a poll the core takes the same step as under the simulator
//! ([`Core::after_events`]).
//!
//! The loop reads straight: a `match` on the token; read until `WouldBlock` (with a budget,
//! for fairness); write-queue flushes once per event, after the handler has run (so
//! everything a callback sends to a connection leaves in one `writev`); WRITABLE interest only
//! while a queue is non-empty.
//!
//! **Several loops** (`ServerConfig::workers`): each loop is one `EventLoop` on its own
//! thread, with its own poll, slab, read buffer and timers. Loop 0 owns the listener and
//! hands each accepted socket to the loop with the fewest connections (exact balance, no
//! `SO_REUSEPORT` and so no `unsafe` socket option). A sid lives on one loop at a time: the
//! loop that completes an upgrade first claims the sid in the shared directory
//! (`workers.rs`); if another loop holds it, the new connection, with the bytes read so far,
//! is handed to that loop, which then replaces the old session exactly as a single loop does
//! (`on_close(Replaced)` before the new `on_open`). Commands and hand-overs between loops go
//! through each loop's command queue and waker (`handover.rs`).
//!
//! **TLS** (feature `tls`): with a configuration in the loops' shared slot, loop 0 puts
//! each accepted socket behind rustls (`tls.rs`) before anything else happens to it, with
//! the configuration the slot holds at that moment (so a reload affects new connections
//! only); a hand-over moves the whole TLS stream. After reading a TLS connection the loop
//! flushes it when rustls holds handshake records the socket did not take at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::config::ServerConfig;
use super::core::Core;
use super::handle::Handle;
use super::handler::Handler;
#[cfg(feature = "tls")]
use super::tls::TlsConfig;
use super::transport::{Mio, Socket, FIRST_CONNECTION};
use super::workers::Workers;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// How long accepting pauses after an error such as EMFILE (no file descriptors left):
/// long enough not to spin, short enough to pick up again soon after descriptors free up.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

pub(crate) struct EventLoop {
    poll: Poll,
    /// The listener (loop 0 only).
    listener: Option<TcpListener>,
    listening: bool,
    accept_paused_until: Option<Instant>,
    core: Core<Mio>,
    read_buf: Vec<u8>,
}

impl Drop for EventLoop {
    /// However a loop ends, the server ends with it and nothing waits for it any more:
    /// after `run` returns, when a handler's panic unwinds through `run`, and for a loop
    /// that never ran (a refused `Server::run`, a failed thread spawn in `run_each`). The
    /// other loops shut down, handles answer `Stopped`, and `Handle::shutdown` returns.
    fn drop(&mut self) {
        self.core.workers.begin_shutdown();
        self.core.workers.mark_stopped(self.core.index);
    }
}

impl EventLoop {
    /// The loops of a server: `config.workers` of them (at least one), loop 0 listening on
    /// `addr`, all sharing one [`Workers`].
    pub(crate) fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        #[cfg(feature = "tls")] tls: Option<TlsConfig>,
    ) -> io::Result<Vec<EventLoop>> {
        let count = config.workers.max(1);
        let mut polls = Vec::with_capacity(count);
        let mut wakers = Vec::with_capacity(count);
        for _ in 0..count {
            let poll = Poll::new()?;
            wakers.push(Waker::new(poll.registry(), WAKER)?);
            polls.push(poll);
        }
        let workers = Workers::new(wakers);
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            workers.tls.set(tls, false);
        }
        let workers = Arc::new(workers);
        let mut loops = Vec::with_capacity(count);
        for (index, poll) in polls.into_iter().enumerate() {
            let listener = if index == 0 {
                let mut listener = TcpListener::bind(addr)?;
                poll.registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)?;
                Some(listener)
            } else {
                None
            };
            let reactor = Mio {
                registry: poll.registry().try_clone()?,
            };
            let read_buf = vec![0u8; config.read_buffer_size.max(1024)];
            loops.push(EventLoop {
                poll,
                listening: listener.is_some(),
                listener,
                accept_paused_until: None,
                core: Core::new(config.clone(), reactor, workers.clone(), index),
                read_buf,
            });
        }
        Ok(loops)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::other("not the listening loop")),
        }
    }

    pub(crate) fn handle(&self) -> Handle {
        self.core.handle()
    }

    pub(crate) fn run<H: Handler>(mut self, mut handler: H) -> io::Result<()> {
        let index = self.core.index;
        self.core.workers.set_loop_thread(index);
        if let Ok(addr) = self.local_addr() {
            log::info!("listening on {addr}");
        }
        let result = self.run_loop(&mut handler);
        if let Err(e) = &result {
            // One loop failing stops the server, not just its share of it.
            log::error!("loop {index} failed: {e}; shutting the server down");
            self.core.workers.begin_shutdown();
        }
        self.core.close_all(&mut handler);
        log::info!("loop {index} stopped");
        result
        // Dropping `self` marks the loop stopped.
    }

    fn run_loop<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut commands = Vec::new();
        loop {
            let timeout = if self.core.has_reads_pending() {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.core.set_now(Instant::now());
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        let index = self.core.index;
                        self.core.workers.take_commands(index, &mut commands);
                        for command in commands.drain(..) {
                            self.core.run_command(handler, command);
                        }
                    }
                    Token(t) => {
                        let key = t - FIRST_CONNECTION;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // A FIN (or an error) is seen only by reading until the end.
                            let drain = event.is_read_closed() || event.is_error();
                            self.core.read(handler, key, &mut self.read_buf, drain);
                            if self
                                .core
                                .conns
                                .get(key)
                                .is_some_and(|c| c.socket.has_pending_output())
                            {
                                self.core.mark_dirty(key);
                            }
                        }
                        if event.is_writable() || event.is_write_closed() {
                            self.core.mark_dirty(key);
                        }
                    }
                }
                self.core.flush_dirty(handler);
            }
            if self.accept_paused_until.is_some_and(|t| t <= self.core.now) {
                self.accept_paused_until = None;
                self.accept();
            }
            if self.core.after_events(handler, &mut self.read_buf) {
                return Ok(());
            }
            if self.core.is_shutting_down() && self.listening {
                if let Some(listener) = self.listener.as_mut() {
                    self.poll.registry().deregister(listener)?;
                }
                self.listening = false;
            }
        }
    }

    /// How long the next poll may wait: until the soonest deadline, or the end of a pause
    /// of accepts.
    fn poll_timeout(&self) -> Option<Duration> {
        let next = [self.core.next_deadline(), self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn accept(&mut self) {
        while self.listening && self.accept_paused_until.is_none() {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    // We cork ourselves (one writev per event); Nagle would only add latency.
                    let _ = socket.set_nodelay(true);
                    let Some(socket) = self.wrap(socket) else {
                        continue;
                    };
                    self.core.balance(socket, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: the pending connections stay in the
                    // backlog; try again shortly instead of spinning on a readable listener.
                    log::warn!("accept failed: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(self.core.now + ACCEPT_PAUSE);
                }
            }
        }
    }

    /// An accepted socket as the loop serves it: behind TLS when the server speaks TLS.
    #[cfg(feature = "tls")]
    fn wrap(&self, socket: mio::net::TcpStream) -> Option<Socket> {
        let slot = &self.core.workers.tls;
        if !slot.is_on() {
            return Some(Socket::Plain(socket));
        }
        match slot.accept(socket) {
            Ok(tls) => Some(Socket::Tls(Box::new(tls))),
            Err(e) => {
                log::warn!("cannot start TLS on an accepted connection: {e}; closing it");
                None
            }
        }
    }

    #[cfg(not(feature = "tls"))]
    fn wrap(&self, socket: mio::net::TcpStream) -> Option<Socket> {
        Some(Socket::Plain(socket))
    }
}
