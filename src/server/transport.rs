//! What the loop needs from sockets and from the poller.
//!
//! Owns: the seam between the loop's logic and the operating system. The loop's core is
//! generic over a [`Reactor`], so the same code that drives mio's TCP sockets also runs over
//! in-memory pipes (the `sim` module), where a fuzzer can script connects, bytes, resets and
//! time without any socket.
//! Must not: contain loop logic.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// Registers streams for readiness and shuts their write side.
pub(crate) trait Reactor {
    /// A connection's byte stream: non-blocking, `WouldBlock` when it cannot go on.
    type Stream: Read + Write;

    /// Start watching a new stream, readable only.
    fn register(&self, stream: &mut Self::Stream, key: usize) -> io::Result<()>;
    /// Watch for writability too (while bytes are queued), or stop.
    fn set_writable(&self, stream: &mut Self::Stream, key: usize, writable: bool);
    /// Stop watching a stream that stays open (it moves to another loop).
    fn deregister(&self, stream: &mut Self::Stream);
    /// Stop watching a stream that is about to be dropped (closed).
    fn release(&self, stream: &mut Self::Stream);
    /// Send our FIN: nothing more will be written.
    fn shutdown_write(&self, stream: &mut Self::Stream) -> io::Result<()>;
    /// A stream as another loop of the same server can take it over (the `Mio` reactor's
    /// own streams), or `None` for a transport whose streams cannot move between loops.
    fn into_tcp(stream: Self::Stream) -> Option<TcpStream>;
    /// The other way round: a TCP stream handed over by another loop.
    fn from_tcp(stream: TcpStream) -> Option<Self::Stream>;
}

/// Connection tokens are slab keys offset past the listener's and the waker's.
pub(crate) const FIRST_CONNECTION: usize = 2;

pub(crate) fn token(key: usize) -> Token {
    Token(key + FIRST_CONNECTION)
}

/// The real thing: mio's registry and TCP streams.
pub(crate) struct Mio {
    pub(crate) registry: Registry,
}

impl Reactor for Mio {
    type Stream = TcpStream;

    fn register(&self, stream: &mut TcpStream, key: usize) -> io::Result<()> {
        self.registry
            .register(stream, token(key), Interest::READABLE)
    }

    fn set_writable(&self, stream: &mut TcpStream, key: usize, writable: bool) {
        let interest = if writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self.registry.reregister(stream, token(key), interest);
    }

    fn deregister(&self, stream: &mut TcpStream) {
        let _ = self.registry.deregister(stream);
    }

    fn release(&self, _stream: &mut TcpStream) {
        // Nothing to do, and no syscall: closing the descriptor (dropping the stream, which
        // owns the only one) removes it from the epoll set (epoll(7)).
    }

    fn shutdown_write(&self, stream: &mut TcpStream) -> io::Result<()> {
        stream.shutdown(Shutdown::Write)
    }

    fn into_tcp(stream: TcpStream) -> Option<TcpStream> {
        Some(stream)
    }

    fn from_tcp(stream: TcpStream) -> Option<TcpStream> {
        Some(stream)
    }
}
