//! The firmware's echo (`serve`, the same code) on the host over std sockets, one connection
//! at a time: for the Autobahn TestSuite (`.ci/autobahn.sh`, "fixed" run).
//!
//! Usage: `std_echo [ADDR]` (default 127.0.0.1:9003).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use wsloop::session::SessionLimits;
use wsloop_embedded_example::{serve, ByteStream};

struct Socket(TcpStream);

impl ByteStream for Socket {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.0.read(buf).unwrap_or(0)
    }

    fn write_all(&mut self, bytes: &[u8]) {
        // A peer that went away: the next read ends the connection.
        let _ = self.0.write_all(bytes);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("std_echo: listening on {addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        // Autobahn's cases take up to 16 MiB messages; no larger.
        let limits = SessionLimits {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
        };
        std::thread::spawn(move || serve(&mut Socket(stream), limits));
    }
    Ok(())
}
