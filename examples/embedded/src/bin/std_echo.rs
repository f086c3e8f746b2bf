//! The firmware's echo (`serve`, the same code) on the host over std sockets, a thread per
//! connection: for the Autobahn TestSuite (`.ci/autobahn.sh`, "fixed" run).
//!
//! Writes go through a writer thread: the echo streams each message back while it still
//! arrives, and a peer that sends a whole large message before reading any of the echo
//! (Autobahn's does) would otherwise block both sides on full socket buffers. That queue is
//! this host tool's, not the firmware's (whose peer must read as it writes).
//!
//! Usage: `std_echo [ADDR]` (default 127.0.0.1:9003).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;

use wsloop::session::SessionLimits;
use wsloop_embedded_example::{serve, ByteStream};

struct Socket {
    stream: TcpStream,
    writes: mpsc::Sender<Vec<u8>>,
}

impl ByteStream for Socket {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.stream.read(buf).unwrap_or(0)
    }

    fn write_all(&mut self, bytes: &[u8]) {
        // A writer gone (the peer left): the next read ends the connection.
        let _ = self.writes.send(bytes.to_vec());
    }
}

fn connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (writes, queue) = mpsc::channel::<Vec<u8>>();
    let mut out = stream.try_clone()?;
    let writer = std::thread::spawn(move || {
        for bytes in queue {
            if out.write_all(&bytes).is_err() {
                break;
            }
        }
    });
    // Autobahn's cases take up to 16 MiB messages; no larger.
    let limits = SessionLimits {
        max_frame_size: 16 << 20,
        max_message_size: 16 << 20,
    };
    let mut socket = Socket {
        stream: stream.try_clone()?,
        writes,
    };
    serve(&mut socket, limits);
    drop(socket);
    let _ = writer.join();
    // RFC 6455 §7.1.1: the server closes the TCP connection first.
    stream.shutdown(Shutdown::Both)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("std_echo: listening on {addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || connection(stream));
    }
    Ok(())
}
