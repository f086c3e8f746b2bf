//! permessage-deflate (RFC 7692): compressing each message with DEFLATE (RFC 1951).
//!
//! Owns: the parameters both ends agree on ([`Negotiated`]), what this endpoint is willing to
//! do ([`DeflateConfig`]), and the codec the session uses (through its adapter, `extensions.rs`) to
//! compress what it sends and inflate what it receives (`Codec`, crate-private).
//! Negotiation itself (parsing `Sec-WebSocket-Extensions`, answering or checking an offer)
//! lives in [`negotiate`]. Must not: frame, mask or validate messages (the session does), or
//! touch sockets.
//!
//! How a message is compressed (§7.2.1): DEFLATE the payload, end it with a sync flush (an
//! empty stored block, whose last four bytes are always `00 00 ff ff`), drop those four
//! bytes, and send the rest with RSV1 set on the first frame. The receiver appends the four
//! bytes back and inflates (§7.2.2). "Context takeover" means the LZ77 window (the last
//! 2^window_bits bytes) carries over from one message to the next, so a message may point
//! back into earlier ones; "no context takeover" resets it after every message.
//!
//! Memory (resident, measured with this crate's flate2/zlib-rs): a compressor holds about
//! 300 KiB with a 2^15-byte window and 190 KiB with 2^9 (zlib's hash table and pending buffer
//! dominate), an inflater about 20 KiB. With context takeover both live as long as the
//! connection, once it has compressed or inflated a message. Without it (the
//! `*_no_context_takeover` settings), the state is needed only while one message is being
//! compressed or inflated, so it is borrowed from a small per-thread pool and given back at
//! the end of the message: an idle connection then holds no compression state at all, at the
//! cost of compression ratio (each message starts from an empty window).
//! `benches/e2e` measures both per connection (BENCHMARKS.md).
//!
//! The compressor is zlib's algorithm in pure Rust (`flate2` over `zlib-rs`); this feature
//! needs `std`.

use alloc::vec::Vec;
use core::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::frame::Role;

pub mod negotiate;

/// The extension's registered name (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// RFC 7692 §7.2.1: the four bytes a sync flush ends with, removed before sending and
/// appended again before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The parameters of a permessage-deflate extension both ends agreed on (RFC 7692 §7.1), in
/// the RFC's terms. Absent window bits mean 15 (a 32 KiB window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// §7.1.1.1: the server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// §7.1.1.2: the client resets its compression context after each message.
    pub client_no_context_takeover: bool,
    /// §7.1.2.1: the server compresses with a window of at most 2^this bytes (8..=15).
    pub server_max_window_bits: u8,
    /// §7.1.2.2: the client compresses with a window of at most 2^this bytes (8..=15).
    pub client_max_window_bits: u8,
}

impl Default for Negotiated {
    /// The plain `permessage-deflate` with no parameters.
    fn default() -> Self {
        Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// What this endpoint is willing to negotiate and how it compresses.
///
/// A server answers an offer with the parameters here, or the client's stricter ones: it
/// never uses a larger window or more context than either side asked for. A client offers
/// these parameters and checks that the server's answer stays within them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// DEFLATE level, 0 (store) to 9 (best). Default 1: on JSON notifications it sent about
    /// 2.4× the messages of level 6 for 25% more bytes (BENCHMARKS.md, row 8).
    pub level: u8,
    /// The largest window the server compresses with, 8..=15 (RFC 7692 §7.1.2.1). A server
    /// uses min(this, the client's request); a client below 15 asks for it. Default 15.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with, 8..=15 (§7.1.2.2). A server asks for
    /// it when the client offered the parameter (else the client may use 15, and the
    /// inflater keeps a 32 KiB window); a client offers it. Default 15.
    pub client_max_window_bits: u8,
    /// Ask for (client) or announce (server) `server_no_context_takeover`: the server's
    /// compressor is reset after every message. Default false.
    pub server_no_context_takeover: bool,
    /// Ask for (server) or announce (client) `client_no_context_takeover`: the client's
    /// compressor is reset after every message, so the receiving end keeps no window between
    /// messages. Default false.
    pub client_no_context_takeover: bool,
    /// Messages shorter than this are sent uncompressed (RSV1 clear, which §6 allows on a
    /// connection that negotiated the extension). Default 0: compress every message.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: 1,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            threshold: 0,
        }
    }
}

impl DeflateConfig {
    /// The least memory per connection: no context takeover either way, so the compression
    /// state exists only while a message is being processed, borrowed from a per-thread
    /// pool. Each message is compressed on its own, which costs ratio on streams of similar
    /// small messages. (Smaller windows would save little more: zlib's hash table and
    /// pending buffer, not the window, dominate the compressor's size.)
    pub fn low_memory() -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        }
    }
}

/// zlib cannot open a raw DEFLATE stream with a 2^8-byte window; it uses 2^9 instead. That
/// still honours a limit of 8: zlib never emits a distance longer than the window minus 262
/// bytes (its lookahead), so a 2^9-byte window produces distances of at most 250 < 2^8.
/// For inflating, a window larger than the peer's is always safe.
fn zlib_window_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

std::thread_local! {
    /// Compressors and inflaters of connections without context takeover, between messages.
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { compressors: Vec::new(), inflaters: Vec::new() }) };
}

/// At most this many idle states of each kind are kept per thread.
const POOL_SIZE: usize = 4;

struct Pool {
    compressors: Vec<(u8, u8, Compress)>,
    inflaters: Vec<(u8, Decompress)>,
}

fn new_compressor(level: u8, bits: u8) -> Compress {
    Compress::new_with_window_bits(
        Compression::new(u32::from(level.min(9))),
        false,
        zlib_window_bits(bits),
    )
}

fn new_inflater(bits: u8) -> Decompress {
    Decompress::new_with_window_bits(false, zlib_window_bits(bits))
}

fn take_compressor(level: u8, bits: u8) -> Compress {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let found = pool
            .compressors
            .iter()
            .position(|(l, b, _)| *l == level && *b == bits);
        found.map(|i| pool.compressors.swap_remove(i).2)
    })
    .unwrap_or_else(|| new_compressor(level, bits))
}

fn give_compressor(level: u8, bits: u8, mut compressor: Compress) {
    compressor.reset();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.compressors.len() < POOL_SIZE {
            pool.compressors.push((level, bits, compressor));
        }
    });
}

fn take_inflater(bits: u8) -> Decompress {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let found = pool.inflaters.iter().position(|(b, _)| *b == bits);
        found.map(|i| pool.inflaters.swap_remove(i).1)
    })
    .unwrap_or_else(|| new_inflater(bits))
}

fn give_inflater(bits: u8, mut inflater: Decompress) {
    inflater.reset(false);
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.inflaters.len() < POOL_SIZE {
            pool.inflaters.push((bits, inflater));
        }
    });
}

/// One direction's settings, resolved for this endpoint's role.
#[derive(Debug, Clone, Copy)]
struct Direction {
    window_bits: u8,
    /// Reset after every message (no context takeover), so the state can go back to the pool.
    reset: bool,
}

/// A session's compression state: a compressor for what it sends, an inflater for what it
/// receives, each created on first use.
pub(crate) struct Codec {
    negotiated: Negotiated,
    level: u8,
    threshold: usize,
    send: Direction,
    receive: Direction,
    compressor: Option<Compress>,
    inflater: Option<Decompress>,
    /// The data message being read is compressed (RSV1 on its first frame).
    receiving: bool,
    /// The compressed message being read has brought some payload so far.
    message_has_input: bool,
    /// The inflater met the end of a final block (BFINAL, which §7.2.3.4 allows a sender to
    /// use): the rest of this message's input is ignored and the next starts afresh.
    stream_ended: bool,
}

impl core::fmt::Debug for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codec")
            .field("negotiated", &self.negotiated)
            .field("compressor", &self.compressor.is_some())
            .field("inflater", &self.inflater.is_some())
            .finish_non_exhaustive()
    }
}

impl Codec {
    pub(crate) fn new(role: Role, negotiated: Negotiated, config: &DeflateConfig) -> Codec {
        let server = Direction {
            window_bits: negotiated.server_max_window_bits,
            // A sender may always choose not to use context takeover (§7.1.1); we do when
            // configured to, whether or not the peer asked.
            reset: negotiated.server_no_context_takeover,
        };
        let client = Direction {
            window_bits: negotiated.client_max_window_bits,
            reset: negotiated.client_no_context_takeover,
        };
        let (mut send, receive) = match role {
            Role::Server => (server, client),
            Role::Client => (client, server),
        };
        send.reset |= match role {
            Role::Server => config.server_no_context_takeover,
            Role::Client => config.client_no_context_takeover,
        };
        Codec {
            negotiated,
            level: config.level.min(9),
            threshold: config.threshold,
            send,
            receive,
            compressor: None,
            inflater: None,
            receiving: false,
            message_has_input: false,
            stream_ended: false,
        }
    }

    pub(crate) fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// A data message starts arriving; `compressed`: RSV1 was set on its first frame
    /// (RFC 7692 §6).
    pub(crate) fn start_message(&mut self, compressed: bool) {
        self.receiving = compressed;
    }

    /// Whether the data message being read is compressed.
    pub(crate) fn receiving(&self) -> bool {
        self.receiving
    }

    /// Whether a message of `len` bytes is sent compressed.
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compress one whole message (§7.2.1); the result is the payload to send with RSV1.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let (level, bits) = (self.level, self.send.window_bits);
        let mut compressor = match self.compressor.take() {
            Some(c) => c,
            None if self.send.reset => take_compressor(level, bits),
            None => new_compressor(level, bits),
        };
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let start_in = compressor.total_in();
        loop {
            let consumed = (compressor.total_in() - start_in) as usize;
            let before_out = out.len();
            // Only fails on a stream error, impossible for a well-formed state.
            let status = compressor
                .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                .unwrap_or(Status::BufError);
            let all_in = (compressor.total_in() - start_in) as usize == payload.len();
            // Done when all input is in and the flush fitted in the room we gave.
            if all_in && out.len() < out.capacity() {
                break;
            }
            if status == Status::BufError && out.len() == before_out && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        // §7.2.1: remove the tail of the sync flush.
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // §7.2.3.6: an empty message still needs a DEFLATE block; a single 0x00 byte is
            // an empty stored block's header (its LEN/NLEN are the tail the receiver adds).
            out.push(0x00);
        }
        // The payload is queued as it is and counted by its length: give back the room a
        // message that compressed well did not use.
        if out.capacity() > 2 * out.len() + 64 {
            out.shrink_to_fit();
        }
        if self.send.reset {
            give_compressor(level, bits, compressor);
        } else {
            self.compressor = Some(compressor);
        }
        out
    }

    /// Inflate a piece of a compressed message into `out`, failing with 1009 as soon as the
    /// output would pass `max` bytes, whatever the input announces: a small "bomb" is never
    /// expanded past the limit.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        self.message_has_input |= !input.is_empty();
        self.inflate_stream(input, out, max)
    }

    fn inflate_stream(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        if self.stream_ended {
            return Ok(());
        }
        let bits = self.receive.window_bits;
        let reset = self.receive.reset;
        let inflater = self.inflater.get_or_insert_with(|| {
            if reset {
                take_inflater(bits)
            } else {
                new_inflater(bits)
            }
        });
        let start_in = inflater.total_in();
        loop {
            let consumed = (inflater.total_in() - start_in) as usize;
            // Room for at least one more byte than allowed, to notice going over; first a
            // guess from the input (text often inflates about 4×), then doubling.
            if out.capacity() == out.len() {
                let room = max.saturating_sub(out.len()).saturating_add(1);
                let guess = (input.len() - consumed).saturating_mul(4).max(256);
                // Exact: `reserve` could round up past the limit.
                out.reserve_exact(room.min(out.len().max(guess)));
            }
            let before_out = out.len();
            let status = inflater
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            if out.len() > max {
                return Err(ProtocolError::MessageTooLarge);
            }
            let consumed_now = (inflater.total_in() - start_in) as usize;
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok(());
            }
            let progress = consumed_now > consumed || out.len() > before_out;
            if (consumed_now == input.len() && out.len() < out.capacity()) || !progress {
                return Ok(());
            }
        }
    }

    /// [`Codec::inflate`] for a piece of a frame masked with `key`, starting at `offset`
    /// into the key (RFC 6455 §5.3).
    pub(crate) fn inflate_masked(
        &mut self,
        input: &[u8],
        mask: Option<([u8; 4], usize)>,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        let Some((key, mut offset)) = mask else {
            return self.inflate(input, out, max);
        };
        // Unmasked a piece at a time on the stack: no buffer stays with the connection.
        let mut buf = [0u8; 4096];
        for piece in input.chunks(buf.len()) {
            let buf = &mut buf[..piece.len()];
            buf.copy_from_slice(piece);
            offset = crate::mask::apply_mask(buf, key, offset);
            self.inflate(buf, out, max)?;
        }
        Ok(())
    }

    /// The last frame of a compressed message has been inflated: append the tail (§7.2.2)
    /// and, without context takeover, reset.
    pub(crate) fn end_message(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        self.receiving = false;
        let result = if core::mem::take(&mut self.message_has_input) {
            self.inflate_stream(&TAIL, out, max)
        } else {
            // §7.2.2 turns an empty payload into `00 00 ff ff` alone, which is no DEFLATE
            // block (§7.2.3.6: a sender sends at least `0x00`); inflating it would leave the
            // stream mid-block and corrupt the next message.
            Err(ProtocolError::InvalidCompressedData)
        };
        if core::mem::take(&mut self.stream_ended) {
            // After a final block (§7.2.3.4) the sender starts a new DEFLATE stream.
            if let Some(inflater) = self.inflater.as_mut() {
                inflater.reset(false);
            }
        }
        if self.receive.reset {
            if let Some(inflater) = self.inflater.take() {
                give_inflater(self.receive.window_bits, inflater);
            }
        }
        result
    }

    /// The message being inflated was abandoned (the connection failed or closed).
    pub(crate) fn abandon_message(&mut self) {
        self.receiving = false;
        self.message_has_input = false;
        self.inflater = None;
        self.stream_ended = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_payload_holds_no_more_memory_than_it_needs() {
        // Queued as it is and counted by its length: 1 MiB of zeros compresses to ~1 KiB.
        let mut codec = codec(Role::Server, Negotiated::default());
        let out = codec.compress(&vec![0u8; 1 << 20]);
        assert!(out.len() < 16 << 10, "{}", out.len());
        assert!(out.capacity() <= 2 * out.len() + 64, "{}", out.capacity());
    }

    fn codec(role: Role, negotiated: Negotiated) -> Codec {
        Codec::new(role, negotiated, &DeflateConfig::default())
    }

    fn inflate_all(codec: &mut Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        codec.inflate(data, &mut out, usize::MAX).unwrap();
        codec.end_message(&mut out, usize::MAX).unwrap();
        out
    }

    #[test]
    fn an_empty_message_is_one_empty_stored_block_header() {
        let mut c = codec(Role::Server, Negotiated::default());
        assert_eq!(c.compress(b""), [0x00]);
        let mut r = codec(Role::Client, Negotiated::default());
        assert_eq!(inflate_all(&mut r, &[0x00]), b"");
        // The stream goes on normally after it.
        let hello = c.compress(b"Hello");
        assert_eq!(inflate_all(&mut r, &hello), b"Hello");
    }

    #[test]
    fn without_context_takeover_no_state_is_held_between_messages() {
        let negotiated = Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Negotiated::default()
        };
        let mut server = codec(Role::Server, negotiated);
        let mut client = codec(Role::Client, negotiated);
        let packed = server.compress(b"a message, a message, a message");
        assert!(server.compressor.is_none(), "given back to the pool");
        assert_eq!(
            inflate_all(&mut client, &packed),
            b"a message, a message, a message"
        );
        assert!(client.inflater.is_none(), "given back to the pool");
    }

    #[test]
    fn with_context_takeover_the_state_stays_with_the_connection() {
        let mut server = codec(Role::Server, Negotiated::default());
        let mut client = codec(Role::Client, Negotiated::default());
        let packed = server.compress(b"context");
        assert!(server.compressor.is_some());
        inflate_all(&mut client, &packed);
        assert!(client.inflater.is_some());
    }

    #[test]
    fn the_sender_may_drop_its_context_even_if_the_peer_allows_it() {
        // A server configured for no context takeover resets even if the client did not ask.
        let config = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let mut server = Codec::new(Role::Server, Negotiated::default(), &config);
        let a = server.compress(b"repeat repeat repeat");
        let b = server.compress(b"repeat repeat repeat");
        assert_eq!(a, b);
    }

    #[test]
    fn window_bits_8_compresses_with_zlibs_9() {
        assert_eq!(zlib_window_bits(8), 9);
        assert_eq!(zlib_window_bits(12), 12);
        assert_eq!(zlib_window_bits(15), 15);
    }

    #[test]
    fn pooled_states_are_reset_before_reuse() {
        let negotiated = Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Negotiated::default()
        };
        // Two connections on one thread share the pool; each message decodes on its own.
        let mut s1 = codec(Role::Server, negotiated);
        let mut s2 = codec(Role::Server, negotiated);
        let mut fresh = codec(Role::Client, negotiated);
        let one = s1.compress(b"first connection's message");
        let two = s2.compress(b"second connection's message");
        assert_eq!(inflate_all(&mut fresh, &one), b"first connection's message");
        assert_eq!(
            inflate_all(&mut fresh, &two),
            b"second connection's message"
        );
    }
}
