//! A WebSocket echo server for one connection over any byte stream, with no allocator: the
//! handshake is read and answered in fixed buffers (`wsloop::handshake::fixed`), and each
//! message is echoed chunk by chunk as it arrives (`wsloop::session::FixedSession`), so a
//! message of any size passes through a 256-byte chunk buffer. Pings are answered and the
//! closing handshake completed by the session itself.
//!
//! The same [`serve`] runs on the bare-metal firmware (`src/bin/firmware.rs`), on the host
//! over std sockets (`src/bin/std_echo.rs`) and in the tests over an in-memory stream.
#![no_std]
#![forbid(unsafe_code)]

use wsloop::frame::DataOpcode;
use wsloop::handshake::{fixed, HandshakeError};
use wsloop::session::{FixedEvent, FixedSession, SessionLimits};

/// A byte stream: a UART, a TCP socket of an embedded stack, an in-memory pipe.
pub trait ByteStream {
    /// Read some bytes into `buf` (at least one, unless the stream ended: then 0).
    fn read(&mut self, buf: &mut [u8]) -> usize;
    /// Write all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]);
}

/// The receive buffer: the handshake's head must fit in it (a browser's is well under 1 KiB).
const RX: usize = 1024;
/// The chunk buffer: payloads pass through it. At least 125 bytes (a control frame).
const CHUNK: usize = 256;
/// The transmit buffer: a chunk's frame (header of at most 14 bytes) and the session's waiting
/// output (two control frames of at most 131 bytes).
const TX: usize = CHUNK + 14 + 2 * 131;

/// Serve one connection: the opening handshake, then echo every message until the closing
/// handshake completes, the peer breaks the protocol, or the stream ends.
pub fn serve(stream: &mut impl ByteStream, limits: SessionLimits) {
    let mut rx = [0u8; RX];
    let Some((start, end)) = handshake(stream, &mut rx) else {
        return;
    };
    echo(stream, limits, &mut rx, start, end);
}

/// Read the upgrade request into `rx` and answer it; on success, the bytes after the head
/// (`rx[start..end]`) are the first frames.
fn handshake(stream: &mut impl ByteStream, rx: &mut [u8; RX]) -> Option<(usize, usize)> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut rx[filled..]);
        if n == 0 {
            return None;
        }
        filled += n;
        let mut out = [0u8; 160];
        // The slots borrow the head: fresh ones for each try.
        let mut headers = [fixed::EMPTY_HEADER; 24];
        match fixed::accept(&rx[..filled], &mut headers) {
            Ok(Some(upgrade)) => {
                let len = upgrade.write_response(&mut out)?;
                let head = upgrade.head_len();
                stream.write_all(&out[..len]);
                return Some((head, filled));
            }
            // The buffer is the limit on a head's size (RFC 6585 §5: 431).
            Ok(None) if filled == rx.len() => {
                refuse(stream, HandshakeError::HeadersTooLarge);
                return None;
            }
            Ok(None) => {}
            Err(error) => {
                refuse(stream, error);
                return None;
            }
        }
    }
}

/// Answer a refused request with its status and close.
fn refuse(stream: &mut impl ByteStream, error: HandshakeError) {
    let mut out = [0u8; 96];
    // 96 bytes hold any refusal.
    let len = fixed::write_refusal(error, &mut out).unwrap_or(0);
    stream.write_all(&out[..len]);
}

/// Echo messages chunk by chunk until the session says to close TCP.
fn echo(
    stream: &mut impl ByteStream,
    limits: SessionLimits,
    rx: &mut [u8; RX],
    mut start: usize,
    mut end: usize,
) {
    let mut session = FixedSession::server(limits);
    let mut chunk = [0u8; CHUNK];
    let mut tx = [0u8; TX];
    // Whether the echo of the current message has started (its next frame continues it).
    let mut echoing = false;
    loop {
        if !session.output().is_empty() {
            stream.write_all(session.output());
            session.consume_output(usize::MAX);
        }
        if session.should_close_tcp() {
            return;
        }
        if start == end {
            start = 0;
            end = stream.read(&mut rx[..]);
            if end == 0 {
                session.receive_eof();
                return;
            }
        }
        // A violation: the session wrote the Close that says why; it goes out above.
        let Ok(read) = session.read(&rx[start..end], &mut chunk) else {
            continue;
        };
        start += read.used;
        if let Some(FixedEvent::Data { kind, len, last }) = read.event {
            let opcode = if echoing {
                DataOpcode::Continuation
            } else {
                kind
            };
            // Our Close may have gone out already (then there is nothing to echo to).
            if let Ok(n) = session.send(opcode, last, &chunk[..len], &mut tx) {
                stream.write_all(&tx[..n]);
                echoing = !last;
            }
        }
    }
}

#[cfg(test)]
mod tests;
