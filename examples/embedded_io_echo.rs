//! A WebSocket echo over any `embedded_io` byte stream, with no allocator in the WebSocket
//! part: `echo` is generic over `embedded_io::{Read, Write}` (a UART, an embedded TCP stack's
//! socket), and `main` runs it over std's TcpStream, one thread per connection.
//!
//! Usage: `cargo run --example embedded_io_echo --features embedded-io [-- ADDR]`
//! (default 127.0.0.1:9004), then connect a WebSocket client to it.

use std::net::{TcpListener, TcpStream};

use embedded_io::{ErrorType, Read, Write};
use wsloop::embedded::{blocking::WebSocket, Error};
use wsloop::frame::DataOpcode;
use wsloop::session::{FixedEvent, FixedSession, SessionLimits};

/// Answer the handshake and echo every message, chunk by chunk as it arrives, until the
/// closing handshake is done. Buffers: 1 KiB for the request head and reads, 256 bytes of
/// payload at a time, and a frame's worth to send.
fn echo<T: Read + Write>(io: T) -> Result<(), Error<T::Error>> {
    let (mut rx, mut chunk, mut tx) = ([0u8; 1024], [0u8; 256], [0u8; 256 + 14 + 262]);
    let session = FixedSession::server(SessionLimits::default());
    let mut ws = WebSocket::accept(io, session, &mut rx)?;
    // Whether the echo of the current message has started (its next frame continues it).
    let mut echoing = false;
    while let Some(event) = ws.next_event(&mut chunk)? {
        if let FixedEvent::Data { kind, len, last } = event {
            let kind = if echoing {
                DataOpcode::Continuation
            } else {
                kind
            };
            ws.send(kind, last, &chunk[..len], &mut tx)?;
            echoing = !last;
        }
    }
    Ok(())
}

/// std's TcpStream as an `embedded_io` stream.
struct Tcp(TcpStream);

impl ErrorType for Tcp {
    type Error = std::io::Error;
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        std::io::Read::read(&mut self.0, buf)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        std::io::Write::write(&mut self.0, buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        std::io::Write::flush(&mut self.0)
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("embedded_io_echo: listening on {addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = echo(Tcp(stream)) {
                eprintln!("connection ended: {e}");
            }
        });
    }
    Ok(())
}
