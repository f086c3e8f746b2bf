//! One TCP connection of the server: its phase, its write queue, its timing.
//!
//! Owns: the per-connection state and the write queue (bytes waiting for the socket, shared
//! broadcast frames included), flushed with vectored writes.
//! Must not: call the handler, or know about other connections; the loop's core does both.
//! Nor decide what the timing fields mean: `deadline.rs` does.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::frame::EncodedHeader;
use crate::handshake::{Request, RequestParser};
use crate::session::{Recycle, Session};

use super::handler::CloseReason;
use super::pool::BufferPool;
use super::upgrade::Accepted;
use super::workers::{AddressTicket, HandshakeTicket};

/// Payloads up to this size are copied into the queue's tail buffer rather than queued as
/// their own chunk: one copy of a small payload is cheaper than one more iovec.
const COALESCE_MAX: usize = 1024;

/// The capacity a new tail buffer starts with: a frame of the largest payload copied, and
/// its header, with room to spare for the next ones.
const TAIL_START: usize = 2 * COALESCE_MAX;

/// How many chunks one `writev` takes at most.
const MAX_IOVECS: usize = 64;

/// What one queued chunk costs besides its bytes: its slot in the queue's `VecDeque`.
const CHUNK_SLOT: usize = std::mem::size_of::<Chunk>();

/// The header of an `Arc<[u8]>` allocation: its strong and weak counts.
const ARC_HEADER: usize = 2 * std::mem::size_of::<std::sync::atomic::AtomicUsize>();

/// Unused slots of the queue's `VecDeque` kept without shrinking it.
const SLOTS_KEPT: usize = 64;

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

    /// The heap memory this chunk keeps alive: a buffer's capacity (not its length), or a
    /// shared frame's whole allocation (charged in full to every queue holding it, since any
    /// one of them keeps it alive).
    fn heap(&self) -> usize {
        match self {
            Chunk::Buffer(v) | Chunk::Payload(v) => v.capacity(),
            Chunk::Shared(s) => s.len() + ARC_HEADER,
        }
    }
}

/// Bytes waiting to be written, in order, without copying large or shared payloads.
///
/// Two measures: [`len`](WriteQueue::len), the bytes still to write, and
/// [`charge`](WriteQueue::charge), the memory the queue holds, which is what the high-water
/// mark bounds (a 2-byte broadcast frame holds far more than 2 bytes).
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Bytes queued and not yet written.
    len: usize,
    /// The sum of [`Chunk::heap`] over `chunks`.
    heap: usize,
    /// The part of `heap` in shared broadcast frames.
    shared: usize,
}

impl WriteQueue {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The memory this queue holds, charged against the high-water mark: for each chunk
    /// its slot ([`CHUNK_SLOT`] bytes) plus the heap memory it keeps alive (a buffer's
    /// capacity, a shared frame's allocation with its reference counts). Zero when empty.
    ///
    /// Not charged: the deque's unused slots, which `advance` keeps to at most
    /// `SLOTS_KEPT` or three times the used ones, and the allocator's own rounding.
    pub(crate) fn charge(&self) -> usize {
        self.heap + self.chunks.len() * CHUNK_SLOT
    }

    /// The memory this queue alone holds: [`charge`](WriteQueue::charge) less the shared
    /// broadcast frames, which the loop's memory budget counts once for all the queues
    /// holding them (each queue still pays their slots).
    pub(crate) fn owned(&self) -> usize {
        self.charge() - self.shared
    }

    fn push_chunk(&mut self, chunk: Chunk) {
        self.heap += chunk.heap();
        if let Chunk::Shared(_) = chunk {
            self.shared += chunk.heap();
        }
        self.chunks.push_back(chunk);
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append bytes, copying them into the tail buffer.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        self.copy_in(bytes, None);
    }

    /// Append bytes, copying them into the tail buffer; a new tail buffer comes from `pool`
    /// when it has one.
    pub(crate) fn push_copy_pooled(&mut self, bytes: &[u8], pool: &mut BufferPool) {
        self.copy_in(bytes, Some(pool));
    }

    fn copy_in(&mut self, bytes: &[u8], pool: Option<&mut BufferPool>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        // Appending never moves what was already written, even in a partly written chunk;
        // the cap keeps one buffer from living (and growing) for ever.
        if let Some(Chunk::Buffer(tail)) = self.chunks.back_mut() {
            if tail.len() < 64 * 1024 {
                let before = tail.capacity();
                tail.extend_from_slice(bytes);
                self.heap += tail.capacity() - before;
                return;
            }
        }
        let tail = match pool {
            // The loop's frames: room for a few at once, so that coalescing them does not
            // reallocate, in a buffer that goes back to the pool once written.
            Some(pool) => {
                let room = bytes.len().max(TAIL_START);
                let mut tail = pool.take(room).unwrap_or_else(|| Vec::with_capacity(room));
                tail.extend_from_slice(bytes);
                tail
            }
            // A session's own replies (Pong, Close) and HTTP answers: rare, exactly sized.
            None => bytes.to_vec(),
        };
        self.push_chunk(Chunk::Buffer(tail));
    }

    /// Append a frame: its header, and a payload the queue takes ownership of; a small
    /// payload is copied instead, and its buffer handed to `pool` for the next message.
    pub(crate) fn push_frame(
        &mut self,
        header: EncodedHeader,
        payload: Vec<u8>,
        pool: &mut BufferPool,
    ) {
        self.push_copy_pooled(header.as_bytes(), pool);
        if payload.len() <= COALESCE_MAX {
            self.push_copy(&payload);
            pool.give(payload);
        } else {
            self.len += payload.len();
            self.push_chunk(Chunk::Payload(payload));
        }
    }

    /// Append a frame shared with other connections.
    pub(crate) fn push_shared(&mut self, frame: Arc<[u8]>) {
        if frame.is_empty() {
            return;
        }
        self.len += frame.len();
        self.push_chunk(Chunk::Shared(frame));
    }

    /// Write as much as the socket takes. `Ok(true)` when the queue is empty.
    ///
    /// A payload written in full goes back to `pool`, so that the loop reuses its memory for
    /// a next message instead of unmapping it and faulting in fresh pages.
    pub(crate) fn flush(
        &mut self,
        socket: &mut impl Write,
        pool: &mut BufferPool,
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
            self.advance(written, pool);
        }
        // A stream that buffers output of its own (TLS records) writes it now, and reports
        // `WouldBlock` while some remains, so that the loop keeps waiting for writability.
        match socket.flush() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn advance(&mut self, mut written: usize, pool: &mut BufferPool) {
        self.len -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_written;
            if written >= left {
                written -= left;
                self.front_written = 0;
                let Some(chunk) = self.chunks.pop_front() else {
                    break;
                };
                self.heap -= chunk.heap();
                if let Chunk::Shared(_) = chunk {
                    self.shared -= chunk.heap();
                }
                if let Chunk::Payload(buffer) | Chunk::Buffer(buffer) = chunk {
                    pool.give(buffer);
                }
            } else {
                self.front_written += written;
                written = 0;
            }
        }
        // A deque that once held many small frames keeps its slots: give them back once
        // three quarters are unused, so that the memory `charge` leaves out stays bounded.
        let capacity = self.chunks.capacity();
        if capacity > SLOTS_KEPT && self.chunks.len() < capacity / 4 {
            self.chunks
                .shrink_to((self.chunks.len() * 2).max(SLOTS_KEPT));
        }
    }

    /// Drop everything (the connection is going away).
    pub(crate) fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.front_written = 0;
        self.len = 0;
        self.heap = 0;
        self.shared = 0;
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

/// What only some connections carry.
#[derive(Default)]
pub(crate) struct Extras {
    /// The application's data for the session (`Upgrade::with_data`), dropped with the
    /// connection, after `on_close`.
    pub(crate) data: Option<Box<dyn Any + Send>>,
    /// The subprotocol and the extensions our 101 agreed on.
    pub(crate) protocol: Option<String>,
    pub(crate) extensions: Option<String>,
    /// The application's decision on this connection's upgrade, made by the loop that
    /// handed the connection over to this one (its sid lives here): used instead of asking
    /// the handler again when the replayed request head arrives.
    pub(crate) decided: Option<Accepted>,
    /// The topics the session is subscribed to (left when it goes).
    pub(crate) topics: Vec<Arc<str>>,
}

impl Extras {
    fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.protocol.is_none()
            && self.extensions.is_none()
            && self.decided.is_none()
            && self.topics.is_empty()
    }
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
    /// The first cause of closing, kept for `on_close`; boxed because only a closing
    /// connection has one (8 bytes per idle connection instead of 40).
    pub(crate) close_reason: Option<Box<CloseReason>>,
    /// What only some sessions have (data, a subprotocol, extensions), boxed so that a
    /// plain idle session pays one pointer for it.
    pub(crate) extras: Option<Box<Extras>>,
    /// Our side of TCP is shut down; waiting for the peer's FIN (bounded by the close timeout).
    pub(crate) draining: bool,
    /// Counts toward `max_connections` (connections refused with 503 do not).
    pub(crate) counted: bool,
    /// Its slot under `max_connections_per_ip` (when that limit is on); given back when the
    /// connection is dropped.
    pub(crate) address_ticket: Option<AddressTicket>,
    /// Counts it as in its handshake on this loop while it is (an admitted connection in
    /// `Phase::Handshake` or `Phase::HttpBody`); dropped by `touch` once it is past that.
    pub(crate) handshake_ticket: Option<HandshakeTicket>,
    pub(crate) accepted_at: Instant,
    pub(crate) last_read: Instant,
    /// When we sent a heartbeat Ping that is still unanswered.
    pub(crate) ping_sent_at: Option<Instant>,
    /// When the client started the message (or frame) it has not finished yet.
    pub(crate) message_since: Option<Instant>,
    /// Reading is paused because the write queue is over the high-water mark, or because
    /// the loop's memory budget is under pressure and this connection holds a large share.
    pub(crate) read_paused: bool,
    /// Paused for the memory budget (and listed in the loop's `budget_waiting`).
    pub(crate) budget_paused: bool,
    /// What this connection is charged in the loop's memory budget now (see `holding`).
    pub(crate) charged: usize,
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
            extras: None,
            draining: false,
            counted: true,
            address_ticket: None,
            handshake_ticket: None,
            accepted_at: now,
            last_read: now,
            ping_sent_at: None,
            message_since: None,
            read_paused: false,
            budget_paused: false,
            charged: 0,
            closing_since: None,
            timer_at: None,
            hops: 0,
        }
    }

    /// The extras, created on first use.
    pub(crate) fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Keep the extras only if there are any (after the upgrade filled them in).
    pub(crate) fn settle_extras(&mut self) {
        if self.extras.as_ref().is_some_and(|e| e.is_empty()) {
            self.extras = None;
        }
    }

    /// Still in its handshake: no session, no final answer yet.
    pub(crate) fn in_handshake(&self) -> bool {
        matches!(self.phase, Phase::Handshake(_) | Phase::HttpBody { .. })
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

    /// The memory this connection holds that the loop's budget counts: its write queue (less
    /// the broadcast frames, counted once by the budget itself), the incoming message being
    /// assembled, or a plain HTTP request's body.
    pub(crate) fn holding(&self) -> usize {
        self.queue.owned()
            + match &self.phase {
                Phase::WebSocket { session, .. } => session.buffered_bytes(),
                Phase::HttpBody { body, .. } => body.capacity(),
                Phase::Handshake(_) | Phase::Done => 0,
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
            self.close_reason = Some(Box::new(reason));
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

    /// `charge` recomputed from scratch, to check the running sum.
    fn recount(q: &WriteQueue) -> usize {
        q.chunks.iter().map(|c| c.heap() + CHUNK_SLOT).sum()
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
        q.push_frame(
            header(big.len()),
            big.clone(),
            &mut BufferPool::new(1 << 20),
        );
        q.push_shared(shared.clone());
        q.push_copy(b"tail");
        let mut expected = b"abc".to_vec();
        expected.extend_from_slice(header(big.len()).as_bytes());
        expected.extend_from_slice(&big);
        expected.extend_from_slice(&shared);
        expected.extend_from_slice(b"tail");
        assert_eq!(q.len(), expected.len());
        assert_eq!(q.charge(), recount(&q));
        assert!(q.charge() >= q.len() + 4 * CHUNK_SLOT);

        let mut w = Trickle {
            out: Vec::new(),
            limit: 7,
            calls: 3,
        };
        let mut pool = BufferPool::new(1 << 20);
        assert!(
            !q.flush(&mut w, &mut pool).unwrap(),
            "blocked before the end"
        );
        assert_eq!(pool.held(), 0, "the payload is not written yet");
        assert_eq!(q.len(), expected.len() - 21);
        assert_eq!(q.charge(), recount(&q));
        // Bytes pushed while partly written still go after everything else.
        q.push_copy(b"!");
        expected.push(b'!');
        assert_eq!(q.charge(), recount(&q));
        w.calls = usize::MAX;
        w.limit = 1000;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.out, expected);
        assert!(q.is_empty());
        assert_eq!(q.charge(), 0);
        // The payload's buffer, written out, went to the pool for the next message.
        assert_eq!(pool.held(), 5000);
    }

    #[test]
    fn tiny_shared_frames_are_charged_their_memory_not_their_length() {
        // 10,000 broadcasts of a 2-byte message: 4-byte frames, each its own allocation.
        let mut q = WriteQueue::default();
        let entries = 10_000;
        for i in 0..entries {
            let frame = [0x82, 2, i as u8, (i >> 8) as u8];
            q.push_shared(Arc::from(&frame[..]));
        }
        assert_eq!(q.len(), entries * 4, "len stays the bytes to write");
        assert_eq!(q.charge(), recount(&q));
        // The loop's budget counts each shared frame once: the queue alone owns the slots.
        assert_eq!(q.owned(), entries * CHUNK_SLOT);
        assert!(
            q.charge() >= entries * (CHUNK_SLOT + 4 + ARC_HEADER),
            "charged {} for {entries} frames",
            q.charge()
        );
        // The old accounting charged the 40,000 bytes to write: with a 64 KiB mark that let
        // 16,384 such frames pile up, holding over 10 times the mark.
        assert!(q.charge() >= 10 * q.len());

        // Written out, the queue gives its memory back: nothing charged, slots released.
        let mut w = Trickle {
            out: Vec::new(),
            limit: usize::MAX,
            calls: usize::MAX,
        };
        assert!(q.chunks.capacity() >= entries);
        assert!(q.flush(&mut w, &mut BufferPool::new(1 << 20)).unwrap());
        assert_eq!(w.out.len(), entries * 4);
        assert_eq!(q.charge(), 0);
        assert_eq!(q.owned(), 0);
        assert!(
            q.chunks.capacity() <= SLOTS_KEPT * 2,
            "{} slots kept",
            q.chunks.capacity()
        );
    }

    #[test]
    fn a_growing_tail_buffer_is_charged_its_capacity() {
        let mut q = WriteQueue::default();
        for _ in 0..1000 {
            q.push_copy(b"0123456789");
            assert_eq!(q.charge(), recount(&q));
            assert!(q.charge() >= q.len() + CHUNK_SLOT);
        }
        // A large payload is charged its capacity, not only the bytes it will write.
        let mut payload = Vec::with_capacity(8 * COALESCE_MAX);
        payload.resize(2 * COALESCE_MAX, 7);
        let before = q.charge();
        q.push_frame(
            header(payload.len()),
            payload,
            &mut BufferPool::new(1 << 20),
        );
        assert!(q.charge() >= before + 8 * COALESCE_MAX + CHUNK_SLOT);
        assert_eq!(q.charge(), recount(&q));
        q.clear();
        assert_eq!((q.len(), q.charge()), (0, 0));
    }

    #[test]
    fn small_payloads_are_coalesced_into_one_chunk() {
        let mut q = WriteQueue::default();
        for _ in 0..100 {
            q.push_frame(header(64), vec![1; 64], &mut BufferPool::new(1 << 20));
        }
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(q.len(), 100 * 66);
        q.push_frame(
            header(COALESCE_MAX + 1),
            vec![2; COALESCE_MAX + 1],
            &mut BufferPool::new(1 << 20),
        );
        assert_eq!(
            q.chunks.len(),
            2,
            "a large payload is queued without a copy"
        );
    }
}
