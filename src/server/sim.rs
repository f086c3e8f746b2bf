//! The real server loop over in-memory pipes and a clock that moves only when told: for the
//! `server_loop` fuzz target and for deterministic tests (feature `fuzzing`; not a stable API).
//!
//! Owns: the pipes, the simulated clock, and a handler wrapper that checks that every opened
//! session is closed exactly once. Must not: contain loop logic; it calls the same
//! [`Core`] methods as the mio loop, and after each step the same
//! [`Core::after_events`].

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::close::CloseCode;
use crate::session::Message;

use super::config::ServerConfig;
use super::core::Core;
use super::handler::{CloseReason, Context, Handler};
use super::http::{HttpRequest, HttpResponse};
use super::transport::{Reactor, Socket};
use super::workers::{Command, Workers};

/// One simulated TCP connection, seen from both ends.
#[derive(Debug, Default)]
struct Pipe {
    /// Bytes the client sent that the server has not read.
    to_server: VecDeque<u8>,
    /// Bytes the server wrote.
    to_client: Vec<u8>,
    /// How many more bytes the server may write before `WouldBlock` (the client's window).
    window: usize,
    client_closed: bool,
    reset: bool,
    server_shut_write: bool,
    /// The server dropped the connection.
    dropped: bool,
    key: Option<usize>,
}

/// The server's end of a pipe.
pub(crate) struct MemStream(Rc<RefCell<Pipe>>);

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pipe = self.0.borrow_mut();
        if pipe.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if pipe.to_server.is_empty() {
            return if pipe.client_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(pipe.to_server.len());
        for (slot, byte) in buf.iter_mut().zip(pipe.to_server.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut pipe = self.0.borrow_mut();
        if pipe.reset {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        assert!(!pipe.server_shut_write, "write after shutdown(Write)");
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total > 0 && pipe.window == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut left = pipe.window.min(total);
        let written = left;
        for b in bufs {
            let take = b.len().min(left);
            pipe.to_client.extend_from_slice(&b[..take]);
            left -= take;
        }
        pipe.window -= written;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Readiness is implicit: the simulator calls the core after every change.
pub(crate) struct MemReactor;

impl Reactor for MemReactor {
    type Stream = MemStream;

    fn register(&self, stream: &mut MemStream, key: usize) -> io::Result<()> {
        stream.0.borrow_mut().key = Some(key);
        Ok(())
    }

    fn set_writable(&self, _stream: &mut MemStream, _key: usize, _writable: bool) {}

    fn deregister(&self, stream: &mut MemStream) {
        stream.0.borrow_mut().dropped = true;
    }

    fn release(&self, stream: &mut MemStream) {
        stream.0.borrow_mut().dropped = true;
    }

    fn shutdown_write(&self, stream: &mut MemStream) -> io::Result<()> {
        stream.0.borrow_mut().server_shut_write = true;
        Ok(())
    }

    // The simulator runs one loop: nothing moves between loops.
    fn into_socket(_stream: MemStream) -> Option<Socket> {
        None
    }

    fn from_socket(_stream: Socket) -> Option<MemStream> {
        None
    }
}

/// Wraps the application's handler and checks what the loop promises about callbacks.
struct Tracked<H> {
    inner: H,
    open: HashMap<String, u64>,
    opened: u64,
    closed: u64,
}

impl<H: Handler> Handler for Tracked<H> {
    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let count = self.open.entry(sid.to_string()).or_default();
        assert_eq!(*count, 0, "on_open({sid}) while it is open");
        *count = 1;
        self.opened += 1;
        self.inner.on_open(ctx, sid);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        assert_eq!(
            self.open.get(sid),
            Some(&1),
            "on_message({sid}) for a closed sid"
        );
        self.inner.on_message(ctx, sid, message);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let count = self
            .open
            .get_mut(sid)
            .expect("on_close for a sid never opened");
        assert_eq!(*count, 1, "on_close({sid}) twice");
        *count = 0;
        self.closed += 1;
        self.inner.on_close(ctx, sid, reason);
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        self.inner.on_request(ctx, request)
    }
}

/// The server, simulated.
pub struct Sim<H: Handler> {
    core: Core<MemReactor>,
    handler: Tracked<H>,
    pipes: Vec<Rc<RefCell<Pipe>>>,
    read_buf: Vec<u8>,
    now: Instant,
    stopped: bool,
    /// Keeps the waker's poll alive: a `Handle` needs a waker even when nothing waits on it.
    _poll: mio::Poll,
}

impl<H: Handler> Sim<H> {
    /// A server with `config` and `handler`, no connection yet.
    pub fn new(config: ServerConfig, handler: H) -> io::Result<Self> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), mio::Token(1))?;
        let read_buf = vec![0; config.read_buffer_size.max(1024)];
        let now = Instant::now();
        let workers = Arc::new(Workers::new(vec![waker]));
        let mut core = Core::new(config, MemReactor, workers, 0);
        core.set_now(now);
        Ok(Sim {
            core,
            handler: Tracked {
                inner: handler,
                open: HashMap::new(),
                opened: 0,
                closed: 0,
            },
            pipes: Vec::new(),
            read_buf,
            now,
            stopped: false,
            _poll: poll,
        })
    }

    /// A new client connects; returns its index. After shutdown, nobody can.
    pub fn connect(&mut self) -> Option<usize> {
        if self.stopped || self.core.is_shutting_down() {
            return None;
        }
        let pipe = Rc::new(RefCell::new(Pipe::default()));
        let id = self.pipes.len();
        self.pipes.push(pipe.clone());
        let peer = SocketAddr::from(([127, 0, 0, 1], 1024 + id as u16));
        self.core.add(MemStream(pipe), peer);
        self.settle();
        Some(id)
    }

    fn live_key(&self, client: usize) -> Option<usize> {
        let pipe = self.pipes.get(client)?.borrow();
        if pipe.dropped {
            None
        } else {
            pipe.key
        }
    }

    /// The server reads what is waiting for it (a readiness event).
    fn readable(&mut self, client: usize) {
        if let Some(key) = self.live_key(client) {
            self.core
                .read(&mut self.handler, key, &mut self.read_buf, true);
        }
        self.settle();
    }

    /// The client sends bytes.
    pub fn send(&mut self, client: usize, bytes: &[u8]) {
        if let Some(pipe) = self.pipes.get(client) {
            let mut pipe = pipe.borrow_mut();
            if pipe.client_closed || pipe.reset {
                return;
            }
            pipe.to_server.extend(bytes);
        }
        self.readable(client);
    }

    /// The client reads up to `n` bytes (opening its window); returns them.
    pub fn receive(&mut self, client: usize, n: usize) -> Vec<u8> {
        let Some(pipe) = self.pipes.get(client).cloned() else {
            return Vec::new();
        };
        pipe.borrow_mut().window += n;
        if let Some(key) = self.live_key(client) {
            self.core.mark_dirty(key); // a writable event
        }
        self.settle();
        let out = std::mem::take(&mut pipe.borrow_mut().to_client);
        out
    }

    /// The client shuts its side (FIN).
    pub fn close(&mut self, client: usize) {
        if let Some(pipe) = self.pipes.get(client) {
            pipe.borrow_mut().client_closed = true;
        }
        self.readable(client);
    }

    /// The client resets the connection (RST).
    pub fn reset(&mut self, client: usize) {
        if let Some(pipe) = self.pipes.get(client) {
            pipe.borrow_mut().reset = true;
        }
        self.readable(client);
    }

    /// Time passes; deadlines fire.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.set_now(self.now);
        self.settle();
    }

    /// A command from another thread, as a `Handle` would queue it.
    pub fn send_to(&mut self, sid: &str, message: Message) {
        self.command(Command::Send(sid.to_string(), message));
    }

    /// A broadcast from another thread.
    pub fn broadcast(&mut self, message: Message) {
        self.command(Command::Broadcast(message.to_server_frame().into()));
    }

    /// A close from another thread.
    pub fn close_sid(&mut self, sid: &str, code: CloseCode) {
        self.command(Command::Close(sid.to_string(), code, "sim".into()));
    }

    /// A graceful shutdown from another thread.
    pub fn shutdown(&mut self) {
        self.command(Command::Shutdown);
    }

    fn command(&mut self, command: Command) {
        if self.stopped {
            return;
        }
        self.core.run_command(&mut self.handler, command);
        self.settle();
    }

    /// What the loop does after the events of one poll (leftover reads, deadlines,
    /// flushes, shutdown), then the invariants.
    fn settle(&mut self) {
        if self.stopped {
            return;
        }
        if self
            .core
            .after_events(&mut self.handler, &mut self.read_buf)
        {
            self.core.close_all(&mut self.handler);
            self.stopped = true;
        }
        self.core.check_invariants();
    }

    /// Whether the loop has stopped (after a shutdown).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Connections the server holds.
    pub fn connection_count(&self) -> usize {
        self.core.connection_count()
    }

    /// Sessions opened and closed so far (each close matched to its open).
    pub fn sessions(&self) -> (u64, u64) {
        (self.handler.opened, self.handler.closed)
    }

    /// The bytes the loop's memory budget counts as held now, by its connections and
    /// broadcast frames; not the loop's pool of recycled buffers ([`Sim::memory_pooled`]),
    /// which the budget counts too.
    pub fn memory_held(&self) -> usize {
        self.core.budget.held() - self.core.pool.held()
    }

    /// The bytes the loop keeps in its pool of recycled message buffers (bounded, see
    /// `pool.rs`), as the memory budget last counted them.
    pub fn memory_pooled(&self) -> usize {
        self.core.pool.held()
    }

    /// Whether the server has dropped this client's connection.
    pub fn is_dropped(&self, client: usize) -> bool {
        self.pipes.get(client).is_some_and(|p| p.borrow().dropped)
    }

    /// Shut down, let time pass until the loop stops, and check that every session that
    /// opened was closed exactly once.
    pub fn finish(&mut self) {
        self.shutdown();
        for _ in 0..100 {
            if self.stopped {
                break;
            }
            self.advance(Duration::from_secs(1));
        }
        assert!(self.stopped, "the loop did not stop after shutdown");
        assert_eq!(self.core.connection_count(), 0);
        assert_eq!(
            self.handler.opened, self.handler.closed,
            "sessions opened and closed"
        );
        assert!(self.handler.open.values().all(|&n| n == 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Handler for Echo {
        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            ctx.send(sid, message);
        }
    }

    const UPGRADE: &[u8] = b"GET /ws/a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    const HELLO: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    #[test]
    fn a_session_opens_echoes_and_closes_on_shutdown() {
        let mut sim = Sim::new(ServerConfig::default(), Echo).unwrap();
        let c = sim.connect().unwrap();
        sim.send(c, UPGRADE);
        sim.send(c, HELLO);
        let out = sim.receive(c, 1 << 20);
        assert!(out.starts_with(b"HTTP/1.1 101 "));
        assert!(out.ends_with(b"\x81\x05Hello"));
        assert_eq!(sim.sessions(), (1, 0));
        sim.finish();
        assert_eq!(sim.sessions(), (1, 1));
    }

    #[test]
    fn a_window_of_zero_holds_output_until_the_client_reads() {
        let mut sim = Sim::new(ServerConfig::default(), Echo).unwrap();
        let c = sim.connect().unwrap();
        sim.send(c, UPGRADE);
        sim.send(c, HELLO);
        let first = sim.receive(c, 10);
        assert_eq!(first.len(), 10);
        let rest = sim.receive(c, 1 << 20);
        assert!(rest.ends_with(b"\x81\x05Hello"));
    }

    #[test]
    fn deadlines_fire_only_when_time_is_advanced() {
        let mut sim = Sim::new(ServerConfig::default(), Echo).unwrap();
        let c = sim.connect().unwrap();
        sim.send(c, b"GET /ws/a HTTP/1.1\r\n");
        sim.advance(Duration::from_secs(9));
        assert!(!sim.is_dropped(c));
        sim.advance(Duration::from_secs(2));
        assert!(sim.is_dropped(c), "the 10 s handshake timeout");
        sim.finish();
    }

    #[test]
    fn each_step_ends_with_the_loops_after_events_step() {
        // A deadline already due fires in the step that made it, as after a poll of the mio
        // loop, without time having to pass.
        let config = ServerConfig {
            handshake_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        let mut sim = Sim::new(config, Echo).unwrap();
        let c = sim.connect().unwrap();
        assert!(sim.is_dropped(c));
        sim.finish();
    }

    #[test]
    fn a_replaced_sid_closes_once() {
        let mut sim = Sim::new(ServerConfig::default(), Echo).unwrap();
        let a = sim.connect().unwrap();
        sim.send(a, UPGRADE);
        let b = sim.connect().unwrap();
        sim.send(b, UPGRADE);
        assert_eq!(sim.sessions(), (2, 1));
        sim.reset(a);
        assert_eq!(
            sim.sessions(),
            (2, 1),
            "no second on_close for the replaced one"
        );
        sim.finish();
        assert_eq!(sim.sessions(), (2, 2));
    }
}
