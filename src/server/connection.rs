//! One TCP connection of the server: its phase, its write queue, its timing.
//!
//! Owns: the per-connection state and the write queue (bytes waiting for the socket, shared
//! broadcast frames included), flushed with vectored writes.
//! Must not: call the handler, or know about other connections; the loop's core does both.
//! Nor decide what the timing fields mean: `deadline.rs` does.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::frame::EncodedHeader;
use crate::handshake::{Request, RequestParser};
use crate::session::Session;

use super::handler::CloseReason;
use super::workers::AddressTicket;

/// Payloads up to this size are copied into the queue's tail buffer rather than queued as
/// their own chunk: one copy of a small payload is cheaper than one more iovec.
const COALESCE_MAX: usize = 1024;

/// Payload buffers at least this large are worth keeping for reuse.
const SPARE_MIN: usize = crate::session::LARGE_FRAME;

/// How many chunks one `writev` takes at most.
const MAX_IOVECS: usize = 64;

/// A piece of the write queue.
#[derive(Debug)]
enum Chunk {
    /// Small frames and headers, coalesced; later small writes are appended here.
    Buffer(Vec<u8>),
    /// A large payload the queue took ownership of, written without a copy.
    Payload(Vec<u8>),
    /// A complete frame shared by every connection a broadcast reaches.
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Buffer(v) | Chunk::Payload(v) => v,
            Chunk::Shared(s) => s,
        }
    }
}

/// Bytes waiting to be written, in order, without copying large or shared payloads.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Bytes queued and not yet written.
    len: usize,
}

impl WriteQueue {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append bytes, copying them into the tail buffer.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        // Appending never moves what was already written, even in a partly written chunk;
        // the cap keeps one buffer from living (and growing) for ever.
        if let Some(Chunk::Buffer(tail)) = self.chunks.back_mut() {
            if tail.len() < 64 * 1024 {
                tail.extend_from_slice(bytes);
                return;
            }
        }
        self.chunks.push_back(Chunk::Buffer(bytes.to_vec()));
    }

    /// Append a frame: its header, and a payload the queue takes ownership of.
    pub(crate) fn push_frame(&mut self, header: EncodedHeader, payload: Vec<u8>) {
        self.push_copy(header.as_bytes());
        if payload.len() <= COALESCE_MAX {
            self.push_copy(&payload);
        } else {
            self.len += payload.len();
            self.chunks.push_back(Chunk::Payload(payload));
        }
    }

    /// Append a frame shared with other connections.
    pub(crate) fn push_shared(&mut self, frame: Arc<[u8]>) {
        if frame.is_empty() {
            return;
        }
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Write as much as the socket takes. `Ok(true)` when the queue is empty.
    ///
    /// A large payload written in full is offered back through `spare` (kept if larger
    /// than the one there), so that the loop can reuse its memory for the next large
    /// message instead of unmapping it and faulting in fresh pages.
    pub(crate) fn flush(
        &mut self,
        socket: &mut impl Write,
        spare: &mut Option<Vec<u8>>,
    ) -> io::Result<bool> {
        while self.len > 0 {
            let mut slices: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let bytes = chunk.bytes();
                slices[n] = IoSlice::new(if i == 0 {
                    &bytes[self.front_written..]
                } else {
                    bytes
                });
                n += 1;
            }
            // One slice (the usual coalesced buffer) is a plain send: writev costs more.
            let result = if n == 1 {
                socket.write(&slices[0])
            } else {
                socket.write_vectored(&slices[..n])
            };
            let written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => written,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance(written, spare);
        }
        Ok(true)
    }

    fn advance(&mut self, mut written: usize, spare: &mut Option<Vec<u8>>) {
        self.len -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_written;
            if written >= left {
                written -= left;
                self.front_written = 0;
                if let Some(Chunk::Payload(payload)) = self.chunks.pop_front() {
                    let bigger = !matches!(spare, Some(s) if s.capacity() >= payload.capacity());
                    if payload.capacity() >= SPARE_MIN && bigger {
                        *spare = Some(payload);
                    }
                }
            } else {
                self.front_written += written;
                written = 0;
            }
        }
    }

    /// Drop everything (the connection is going away).
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.front_written = 0;
        self.len = 0;
    }
}

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// Reading the HTTP request head.
    Handshake(RequestParser),
    /// A plain HTTP request: reading its body.
    HttpBody { request: Request, body: Vec<u8> },
    /// An open (or closing) WebSocket session for `sid`.
    WebSocket { session: Session, sid: Arc<str> },
    /// Nothing more to read that matters: flushing, then closing TCP.
    Done,
}

/// One accepted connection over a stream `S` (a TCP socket, or an in-memory pipe in tests).
pub(crate) struct Connection<S> {
    /// How often another loop of the server has handed this connection on (see
    /// `Command::Adopt`); bounds a hand-over chain when sids move between loops.
    pub(crate) hops: u8,
    pub(crate) socket: S,
    pub(crate) peer: SocketAddr,
    /// Distinguishes this connection from earlier occupants of the same slab slot.
    pub(crate) generation: u64,
    pub(crate) phase: Phase,
    pub(crate) queue: WriteQueue,
    /// Whether WRITABLE interest is registered (only while the queue is non-empty).
    pub(crate) writable_interest: bool,
    /// The handler saw `on_open` and has not yet seen `on_close`.
    pub(crate) registered: bool,
    /// The first cause of closing, kept for `on_close`.
    pub(crate) close_reason: Option<CloseReason>,
    /// Our side of TCP is shut down; waiting for the peer's FIN (bounded by the close timeout).
    pub(crate) draining: bool,
    /// Counts toward `max_connections` (connections refused with 503 do not).
    pub(crate) counted: bool,
    /// Its slot under `max_connections_per_ip` (when that limit is on); given back when the
    /// connection is dropped.
    pub(crate) address_ticket: Option<AddressTicket>,
    pub(crate) accepted_at: Instant,
    pub(crate) last_read: Instant,
    /// When we sent a heartbeat Ping that is still unanswered.
    pub(crate) ping_sent_at: Option<Instant>,
    /// When the client started the message (or frame) it has not finished yet.
    pub(crate) message_since: Option<Instant>,
    /// Reading is paused because the write queue is over the high-water mark.
    pub(crate) read_paused: bool,
    /// When we started closing (our Close sent, or TCP write side shut).
    pub(crate) closing_since: Option<Instant>,
    /// The deadline of this connection's live entry in the timer heap.
    pub(crate) timer_at: Option<Instant>,
}

impl<S> Connection<S> {
    pub(crate) fn new(
        socket: S,
        peer: SocketAddr,
        generation: u64,
        phase: Phase,
        now: Instant,
    ) -> Self {
        Connection {
            socket,
            peer,
            generation,
            phase,
            queue: WriteQueue::default(),
            writable_interest: false,
            registered: false,
            close_reason: None,
            draining: false,
            counted: true,
            address_ticket: None,
            accepted_at: now,
            last_read: now,
            ping_sent_at: None,
            message_since: None,
            read_paused: false,
            closing_since: None,
            timer_at: None,
            hops: 0,
        }
    }

    /// The session, if this is a WebSocket connection.
    pub(crate) fn session_mut(&mut self) -> Option<&mut Session> {
        match &mut self.phase {
            Phase::WebSocket { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The sid, if this is a WebSocket connection.
    pub(crate) fn sid(&self) -> Option<&Arc<str>> {
        match &self.phase {
            Phase::WebSocket { sid, .. } => Some(sid),
            _ => None,
        }
    }

    /// Move what the session wants to send into the write queue.
    pub(crate) fn take_session_output(&mut self) {
        if let Phase::WebSocket { session, .. } = &mut self.phase {
            if !session.output().is_empty() {
                self.queue.push_copy(session.output());
                let n = session.output().len();
                session.consume_output(n);
            }
        }
    }

    /// Record the first cause of closing; later causes do not replace it.
    pub(crate) fn set_reason(&mut self, reason: CloseReason) {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{DataOpcode, FrameHeader, Opcode};

    /// A writer that takes at most `limit` bytes per call, then blocks after `calls` calls.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let mut left = self.limit;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.out.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
                if left == 0 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn header(len: usize) -> EncodedHeader {
        FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), len as u64).encode()
    }

    #[test]
    fn partial_writes_keep_order_across_owned_and_shared_chunks() {
        let mut q = WriteQueue::default();
        let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let shared: Arc<[u8]> = Arc::from(&b"shared-frame"[..]);
        q.push_copy(b"abc");
        q.push_frame(header(big.len()), big.clone());
        q.push_shared(shared.clone());
        q.push_copy(b"tail");
        let mut expected = b"abc".to_vec();
        expected.extend_from_slice(header(big.len()).as_bytes());
        expected.extend_from_slice(&big);
        expected.extend_from_slice(&shared);
        expected.extend_from_slice(b"tail");
        assert_eq!(q.len(), expected.len());

        let mut w = Trickle {
            out: Vec::new(),
            limit: 7,
            calls: 3,
        };
        assert!(
            !q.flush(&mut w, &mut None).unwrap(),
            "blocked before the end"
        );
        assert_eq!(q.len(), expected.len() - 21);
        // Bytes pushed while partly written still go after everything else.
        q.push_copy(b"!");
        expected.push(b'!');
        w.calls = usize::MAX;
        w.limit = 1000;
        assert!(q.flush(&mut w, &mut None).unwrap());
        assert_eq!(w.out, expected);
        assert!(q.is_empty());
    }

    #[test]
    fn small_payloads_are_coalesced_into_one_chunk() {
        let mut q = WriteQueue::default();
        for _ in 0..100 {
            q.push_frame(header(64), vec![1; 64]);
        }
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(q.len(), 100 * 66);
        q.push_frame(header(COALESCE_MAX + 1), vec![2; COALESCE_MAX + 1]);
        assert_eq!(
            q.chunks.len(),
            2,
            "a large payload is queued without a copy"
        );
    }
}
