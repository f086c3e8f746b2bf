//! What the loop needs from sockets and from the poller.
//!
//! Owns: the seam between the loop's logic and the operating system. The loop's core is
//! generic over a [`Reactor`], so the same code that drives mio's TCP sockets also runs over
//! in-memory pipes (the `sim` module), where a fuzzer can script connects, bytes, resets and
//! time without any socket.
//! Must not: contain loop logic.
//!
//! A mio connection is a [`Socket`]: a plain TCP stream, or (feature `tls`) one behind
//! rustls (`tls.rs`), which reads and writes plaintext the same way; the loop cannot tell
//! them apart, except that a TLS socket may hold output after the loop's queue is empty,
//! which `Write::flush` writes.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

#[cfg(feature = "tls")]
use super::tls::TlsStream;

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
    fn into_socket(stream: Self::Stream) -> Option<Socket>;
    /// The other way round: a socket handed over by another loop.
    fn from_socket(stream: Socket) -> Option<Self::Stream>;
}

/// A connection's socket under mio: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Socket {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Socket {
    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Socket::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.tcp(),
        }
    }

    /// Whether the socket holds output of its own (TLS records) not yet written.
    pub(crate) fn has_pending_output(&self) -> bool {
        match self {
            Socket::Plain(_) => false,
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.has_pending_output(),
        }
    }
}

impl From<TcpStream> for Socket {
    fn from(tcp: TcpStream) -> Self {
        Socket::Plain(tcp)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            // Nothing buffered: no system call.
            Socket::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.flush(),
        }
    }
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
    type Stream = Socket;

    fn register(&self, stream: &mut Socket, key: usize) -> io::Result<()> {
        self.registry
            .register(stream.tcp(), token(key), Interest::READABLE)
    }

    fn set_writable(&self, stream: &mut Socket, key: usize, writable: bool) {
        let interest = if writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self.registry.reregister(stream.tcp(), token(key), interest);
    }

    fn deregister(&self, stream: &mut Socket) {
        let _ = self.registry.deregister(stream.tcp());
    }

    fn release(&self, _stream: &mut Socket) {
        // Nothing to do, and no syscall: closing the descriptor (dropping the stream, which
        // owns the only one) removes it from the epoll set (epoll(7)).
    }

    fn shutdown_write(&self, stream: &mut Socket) -> io::Result<()> {
        match stream {
            Socket::Plain(tcp) => tcp.shutdown(Shutdown::Write),
            #[cfg(feature = "tls")]
            Socket::Tls(tls) => tls.shutdown_write(),
        }
    }

    fn into_socket(stream: Socket) -> Option<Socket> {
        Some(stream)
    }

    fn from_socket(stream: Socket) -> Option<Socket> {
        Some(stream)
    }
}
