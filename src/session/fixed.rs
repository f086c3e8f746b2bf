//! [`FixedSession`]: the session without an allocator. Bytes in, events out, a message's
//! payload handed over in chunks into a buffer of the caller's (at least [`MIN_CHUNK`] bytes,
//! so that a control frame fits), replies written to a fixed output of its own.
//!
//! Owns: reading frames in any chunking into chunks (§5.2, §5.3), the UTF-8 check across
//! chunk and fragment boundaries (§5.6, §8.1), the automatic Pong and Close replies (§5.5.2,
//! §5.5.1), failing the connection (§7.1.7) and encoding what the caller sends into its
//! buffer. Must not: allocate, touch I/O or clocks, or have rules of its own: the frame rules
//! ([`check_header`]), the header reader, the closing handshake's states, the UTF-8 validator
//! and the Close payload parser are the ones [`Session`](super) uses, so both answer every
//! input alike (the `differential` fuzz target checks it).
//!
//! ```
//! use wsloop::session::{FixedEvent, FixedSession, SessionLimits};
//! use wsloop::frame::DataOpcode;
//! let mut server = FixedSession::server(SessionLimits::default());
//! let mut chunk = [0u8; 125];
//! // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
//! let input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let read = server.read(&input, &mut chunk).unwrap();
//! assert_eq!(read.used, input.len());
//! let event = FixedEvent::Data { kind: DataOpcode::Text, len: 5, last: true };
//! assert_eq!(read.event, Some(event));
//! assert_eq!(&chunk[..5], b"Hello");
//! // Echo it: the frame is written to a buffer of ours.
//! let mut out = [0u8; 16];
//! let n = server.send(DataOpcode::Text, true, &chunk[..5], &mut out).unwrap();
//! assert_eq!(&out[..n], b"\x81\x05Hello");
//! ```

use crate::close::{parse_close, write_close_payload, CloseCode};
use crate::error::ProtocolError;
use crate::frame::{ControlOpcode, DataOpcode, FrameHeader, Opcode, Role};
use crate::mask::{apply_mask, MaskKeys};
use crate::utf8::Utf8Validator;

use super::closing::{Closing, State};
use super::header::HeaderBuf;
use super::limits::SessionLimits;
use super::rules::{check_header, next_fragment, PartialMessage, Receiver};
use super::send_error::SendError;

/// The smallest chunk buffer [`FixedSession::read`] works with: a control frame's payload
/// (§5.5: at most 125 bytes) is handed over whole.
pub const MIN_CHUNK: usize = 125;

/// The longest control frame we send: a client's header (2 bytes and a 4-byte key) and 125
/// bytes of payload.
const MAX_CONTROL_FRAME: usize = 6 + 125;

/// The output holds three control frames: the reply to the last event (a Pong or a Close),
/// control frames the caller sends before writing the output out (a Ping, a Close), and one
/// slot kept free for the Close that fails the connection, so that it is always written.
const OUTPUT_LEN: usize = 3 * MAX_CONTROL_FRAME;

/// The key source of a server, which never masks (§5.1): a type with no value, so no key can
/// ever be taken from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOnly {}

impl MaskKeys for ServerOnly {
    fn next_key(&mut self) -> [u8; 4] {
        match *self {}
    }
}

/// What a [`FixedSession::read`] found; the bytes it speaks of are at the start of the
/// caller's chunk buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedEvent {
    /// The next `len` bytes of a data message; `last` on its final chunk (which may be
    /// empty). `kind` is the message's: Text or Binary. Text is UTF-8 as a whole (§5.6),
    /// checked as it arrives, but a chunk may end inside a character.
    Data {
        /// Text or Binary.
        kind: DataOpcode,
        /// The chunk's length.
        len: usize,
        /// This chunk ends the message.
        last: bool,
    },
    /// A Ping with a payload of `len` bytes; its Pong is in [`FixedSession::output`].
    Ping {
        /// The payload's length.
        len: usize,
    },
    /// A Pong with a payload of `len` bytes.
    Pong {
        /// The payload's length.
        len: usize,
    },
    /// The peer's Close, with a reason of `len` bytes; the answering Close, if one is due,
    /// is in [`FixedSession::output`].
    Close {
        /// The status code ([`CloseCode::NoStatusReceived`] for an empty Close).
        code: CloseCode,
        /// The reason's length (UTF-8).
        len: usize,
    },
}

/// What one [`FixedSession::read`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// How many bytes of the input were taken; pass the rest to the next call.
    pub used: usize,
    /// The event found, if any.
    pub event: Option<FixedEvent>,
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes already read, for the key offset.
    read: usize,
    /// Payload bytes still to come. A `usize`: [`check_header`] let the frame in, so it is
    /// at most `max_frame_size` (and 125 for a control frame).
    remaining: usize,
}

/// One WebSocket connection's protocol state in a fixed amount of memory (about 680 bytes
/// and the key source), for either role. The same rules and answers as
/// [`Session`](super::Session), without reassembling messages.
///
/// The loop: [`FixedSession::read`] the bytes received, one event at a time; write
/// [`FixedSession::output`] (the Pong or Close replies) to the peer whenever it is not empty:
/// `read` takes no input while it is, so that replies keep their order. Frames of your own go
/// through [`FixedSession::send`], which puts any waiting output first.
#[derive(Debug)]
pub struct FixedSession<K = ServerOnly> {
    /// A client's key source (§5.3); `None` for a server.
    keys: Option<K>,
    limits: SessionLimits,
    header: HeaderBuf,
    frame: Option<InFrame>,
    /// The data message being read: its kind, its payload bytes so far (at most
    /// `max_message_size`, as [`check_header`] checks).
    message: Option<(DataOpcode, usize)>,
    utf8: Utf8Validator,
    /// The payload of the control frame being read.
    control: [u8; 125],
    output: Output,
    closing: Closing<CloseCode>,
    /// A fragmented message of ours is in progress.
    sending_fragments: bool,
    /// The TCP stream has ended.
    eof: bool,
}

impl FixedSession<ServerOnly> {
    /// A server session: it sends unmasked frames and requires masked ones (§5.1).
    pub fn server(limits: SessionLimits) -> Self {
        FixedSession::with_keys(None, limits)
    }
}

impl<K: MaskKeys> FixedSession<K> {
    /// A client session that masks each frame with the next key of `keys` (§5.3), which must
    /// be unpredictable (§10.3): e.g. a closure reading an RNG peripheral. The source is
    /// kept by value: no `Box`, no `Send` or `'static` needed.
    pub fn client(limits: SessionLimits, keys: K) -> Self {
        FixedSession::with_keys(Some(keys), limits)
    }

    fn with_keys(keys: Option<K>, limits: SessionLimits) -> Self {
        FixedSession {
            keys,
            limits,
            header: HeaderBuf::default(),
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            control: [0; 125],
            output: Output {
                buf: [0; OUTPUT_LEN],
                len: 0,
            },
            closing: Closing::Open,
            sending_fragments: false,
            eof: false,
        }
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        if self.keys.is_some() {
            Role::Client
        } else {
            Role::Server
        }
    }

    // ----- Input -------------------------------------------------------------------------

    /// Read from `input` up to the next event, payload bytes going to `chunk`.
    ///
    /// Takes nothing (`used == 0`) while [`FixedSession::output`] is not empty, or when
    /// `chunk` is shorter than [`MIN_CHUNK`]. After the peer's Close, a failure or the end of
    /// the stream, input is discarded (all of it is `used`). On a protocol violation the
    /// connection is failed (§7.1.7): the Close that says why is in the output, and the error
    /// is returned, once.
    pub fn read(&mut self, input: &[u8], chunk: &mut [u8]) -> Result<Read, ProtocolError> {
        let nothing = |used| Ok(Read { used, event: None });
        if !self.reading() {
            return nothing(input.len());
        }
        if self.output.len > 0 || chunk.len() < MIN_CHUNK {
            return nothing(0);
        }
        match self.read_event(input, chunk) {
            Ok(read) => Ok(read),
            Err(error) => {
                self.fail_with(error);
                Err(error)
            }
        }
    }

    fn read_event(&mut self, input: &[u8], chunk: &mut [u8]) -> Result<Read, ProtocolError> {
        let mut used = 0;
        loop {
            let frame = match self.frame {
                Some(frame) => frame,
                None => {
                    let Some((header, n)) = self.header.push(&input[used..])? else {
                        return Ok(Read {
                            used: input.len(),
                            event: None,
                        });
                    };
                    used += n;
                    let frame = self.start_frame(header)?;
                    if frame.remaining == 0 {
                        // An empty frame ends at once.
                        let event = self.end_frame(frame, 0, chunk)?;
                        if event.is_some() {
                            return Ok(Read { used, event });
                        }
                        continue;
                    }
                    frame
                }
            };
            if used == input.len() {
                return Ok(Read { used, event: None });
            }
            let (n, event) = self.read_payload(frame, &input[used..], chunk)?;
            used += n;
            if event.is_some() {
                return Ok(Read { used, event });
            }
        }
    }

    /// Check a header against the shared rules; prepare for its payload, if it has one.
    fn start_frame(&mut self, h: FrameHeader) -> Result<InFrame, ProtocolError> {
        let receiver = Receiver {
            role: self.role(),
            limits: self.limits,
            rsv1_allowed: false,
            message: self.message.map(|(_, len)| PartialMessage {
                len: len as u64,
                compressed: false,
            }),
        };
        check_header(&h, &receiver)?;
        if let Opcode::Data(kind @ (DataOpcode::Text | DataOpcode::Binary)) = h.opcode {
            self.message = Some((kind, 0));
            self.utf8.reset();
        }
        let frame = InFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            read: 0,
            // At most `max_frame_size`, a `usize` (checked above).
            remaining: h.payload_len as usize,
        };
        if frame.remaining > 0 {
            self.frame = Some(frame);
        }
        Ok(frame)
    }

    /// Read (part of) a payload from `input`: a data frame's into `chunk` (then it is an
    /// event at once), a control frame's into the session's buffer (an event once whole).
    fn read_payload(
        &mut self,
        mut frame: InFrame,
        input: &[u8],
        chunk: &mut [u8],
    ) -> Result<(usize, Option<FixedEvent>), ProtocolError> {
        let at = frame.read;
        let (dest, take) = match frame.opcode {
            // Control frames are at most 125 bytes (checked with the header): they are
            // gathered whole in the session's buffer.
            Opcode::Control(_) => {
                let take = frame.remaining.min(input.len());
                (&mut self.control[at..at + take], take)
            }
            // A data frame's payload goes to the chunk as it comes.
            Opcode::Data(_) => {
                let take = frame.remaining.min(input.len()).min(chunk.len());
                (&mut chunk[..take], take)
            }
        };
        dest.copy_from_slice(&input[..take]);
        if let Some(key) = frame.mask {
            // RFC 6455 §5.3: unmask, continuing from this frame's key offset.
            apply_mask(dest, key, at & 3);
        }
        if let (Opcode::Data(_), Some((kind, len))) = (frame.opcode, &mut self.message) {
            // RFC 6455 §8.1: fail fast on invalid UTF-8, whatever the chunking.
            if *kind == DataOpcode::Text {
                self.utf8
                    .feed(dest)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            *len += take;
        }
        frame.read += take;
        frame.remaining -= take;
        self.frame = (frame.remaining > 0).then_some(frame);
        let event = match frame.opcode {
            Opcode::Data(_) if frame.remaining > 0 => self.data_event(take, false)?,
            _ if frame.remaining > 0 => None,
            _ => self.end_frame(frame, take, chunk)?,
        };
        Ok((take, event))
    }

    /// A chunk of `len` bytes of the message, the last one if `last`.
    fn data_event(&mut self, len: usize, last: bool) -> Result<Option<FixedEvent>, ProtocolError> {
        let Some((kind, _)) = self.message else {
            return Ok(None);
        };
        if last {
            // RFC 6455 §5.6/§8.1: a text message is UTF-8 as a whole; this also catches a
            // code point cut off by the end of the message.
            if kind == DataOpcode::Text {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            self.message = None;
        }
        Ok(Some(FixedEvent::Data { kind, len, last }))
    }

    /// A frame's payload is complete, its last `len` bytes read into `chunk` (data frames):
    /// the event it makes, if any, and the reply it calls for.
    fn end_frame(
        &mut self,
        frame: InFrame,
        len: usize,
        chunk: &mut [u8],
    ) -> Result<Option<FixedEvent>, ProtocolError> {
        let op = match frame.opcode {
            // A data frame: an empty one ends a message only with `fin` (§5.4).
            Opcode::Data(_) if len == 0 && !frame.fin => return Ok(None),
            Opcode::Data(_) => return self.data_event(len, frame.fin),
            Opcode::Control(op) => op,
        };
        // Control frames are at most 125 bytes (checked with the header).
        let payload = &self.control[..frame.read.min(125)];
        let len = payload.len();
        // The event, and what of the payload the caller gets in its chunk.
        let (event, shown) = match op {
            ControlOpcode::Ping => (FixedEvent::Ping { len }, payload),
            ControlOpcode::Pong => (FixedEvent::Pong { len }, payload),
            ControlOpcode::Close => {
                let (code, reason) = parse_close(payload)?;
                let len = reason.len();
                (FixedEvent::Close { code, len }, reason.as_bytes())
            }
        };
        chunk[..shown.len()].copy_from_slice(shown);
        match event {
            // RFC 6455 §5.5.2: a Ping is answered with a Pong carrying the same payload,
            // unless we already sent a Close (§5.5.1: it is our last frame).
            FixedEvent::Ping { .. } if self.may_send() => {
                let pong = &self.control[..len];
                self.output.push(&mut self.keys, ControlOpcode::Pong, pong);
            }
            FixedEvent::Close { code, .. } => {
                // A message in progress will never be completed; drop it.
                self.message = None;
                self.closing.record_received(code);
                // RFC 6455 §5.5.1: if we have not sent a Close, we MUST answer with one,
                // typically echoing the status code received (an empty Close for none).
                if self.may_send() {
                    self.write_close(code, "");
                }
            }
            // RFC 6455 §5.5.3: an unsolicited Pong is a heartbeat; no answer.
            _ => {}
        }
        Ok(Some(event))
    }

    /// The peer closed its side of the TCP stream. Without a prior Close frame this is an
    /// abnormal closure (1006, §7.1.5): [`FixedSession::close_received`] stays `None`.
    pub fn receive_eof(&mut self) {
        if self.reading() {
            log::debug!("{:?}: TCP closed without a Close frame (1006)", self.role());
        }
        self.eof = true;
    }

    /// Whether the peer's frames are still read: not after its Close (§5.5.1), a failure
    /// (§7.1.7) or the end of the TCP stream.
    fn reading(&self) -> bool {
        self.closing.reading() && !self.eof
    }

    /// Fail the connection (§7.1.7) for `error`: send a Close with the error's code, then read
    /// nothing more.
    fn fail_with(&mut self, error: ProtocolError) {
        log::debug!("{:?}: failing the connection: {error}", self.role());
        self.fail_for(error.close_code(), error.reason(), Some(error));
    }

    // ----- Output ------------------------------------------------------------------------

    /// Bytes waiting to be written to the peer (replies, and the control frames the caller
    /// sent), oldest first.
    pub fn output(&self) -> &[u8] {
        &self.output.buf[..self.output.len]
    }

    /// Forget the first `n` bytes of [`FixedSession::output`] (they were written).
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.output.len);
        self.output.buf.copy_within(n..self.output.len, 0);
        self.output.len -= n;
    }

    /// Write the waiting output, then a data frame of `kind` carrying `payload` (masked for
    /// a client, §5.3), into `out`; returns how many bytes of `out` to send. `kind` is Text or
    /// Binary for the first frame of a message, Continuation for the next ones; `fin` on the
    /// last (§5.4). For text, a split may fall inside a character. Nothing is written when
    /// `out` is too short ([`SendError::BufferTooSmall`]).
    pub fn send(
        &mut self,
        kind: DataOpcode,
        fin: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        self.check_may_send()?;
        let sending = next_fragment(kind, fin, self.sending_fragments)?;
        let header = FrameHeader::new(fin, Opcode::Data(kind), payload.len() as u64);
        let waiting = self.output.len;
        let total = waiting + frame_len(&header, self.keys.is_some());
        if out.len() < total {
            return Err(SendError::BufferTooSmall);
        }
        out[..waiting].copy_from_slice(self.output());
        self.output.len = 0;
        encode(&mut self.keys, header, payload, &mut out[waiting..total]);
        self.sending_fragments = sending;
        Ok(total)
    }

    /// Send a Ping (§5.5.2), e.g. as a heartbeat; it goes to the output.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(ControlOpcode::Ping, payload)
    }

    /// Send an unsolicited Pong (§5.5.3), a one-way heartbeat; it goes to the output.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(ControlOpcode::Pong, payload)
    }

    fn send_control(&mut self, op: ControlOpcode, payload: &[u8]) -> Result<(), SendError> {
        self.check_may_send()?;
        // RFC 6455 §5.5: control frames carry at most 125 bytes.
        if payload.len() > 125 {
            return Err(SendError::ControlFrameTooLong);
        }
        // One slot stays free for a failing Close.
        if !self.output.has_room(2) {
            return Err(SendError::BufferTooSmall);
        }
        self.output.push(&mut self.keys, op, payload);
        Ok(())
    }

    /// Start the closing handshake (§7.1.2); the Close goes to the output. `code` must be
    /// sendable (§7.4.1), or [`CloseCode::NoStatusReceived`] for a Close without a body; a
    /// reason longer than 123 bytes is cut at a character boundary.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_may_send()?;
        if code != CloseCode::NoStatusReceived && !code.is_sendable() {
            return Err(SendError::InvalidCloseCode);
        }
        // One slot stays free for a failing Close.
        if !self.output.has_room(2) {
            return Err(SendError::BufferTooSmall);
        }
        self.write_close(code, reason);
        Ok(())
    }

    /// Fail the connection (§7.1.7): send a Close with `code` (if none was sent yet) and
    /// discard all further input; then close the TCP connection.
    pub fn fail(&mut self, code: CloseCode, reason: &str) {
        self.fail_for(code, reason, None);
    }

    fn fail_for(&mut self, code: CloseCode, reason: &str, error: Option<ProtocolError>) {
        // There is room (`read` runs with an empty output, and the caller's control frames
        // keep a slot free), checked all the same: `Output::push` relies on it.
        if self.may_send() && self.output.has_room(1) {
            let code = if code.is_sendable() {
                code
            } else {
                CloseCode::InternalError
            };
            self.write_close(code, reason);
        }
        self.closing.fail(error);
        self.frame = None;
        self.message = None;
    }

    fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; 125];
        // Callers pass sendable codes or 1005, which makes an empty Close.
        let len = write_close_payload(code, reason, &mut payload).unwrap_or(0);
        let close = &payload[..len];
        self.output
            .push(&mut self.keys, ControlOpcode::Close, close);
        self.closing.record_sent(code);
    }

    /// Whether we may still send: no Close sent and TCP open.
    fn may_send(&self) -> bool {
        self.closing.sent().is_none() && !self.eof
    }

    fn check_may_send(&self) -> Result<(), SendError> {
        // RFC 6455 §5.5.1: no data frames after our Close.
        if self.may_send() {
            Ok(())
        } else {
            Err(SendError::Closing)
        }
    }

    // ----- State -------------------------------------------------------------------------

    /// Open, closing, or closed.
    pub fn state(&self) -> State {
        match (&self.closing, self.eof) {
            (_, true) => State::Closed,
            (Closing::Open, false) => State::Open,
            (_, false) => State::Closing,
        }
    }

    /// The code of the Close we sent, if any.
    pub fn close_sent(&self) -> Option<CloseCode> {
        self.closing.sent().copied()
    }

    /// The code of the Close the peer sent, if any.
    pub fn close_received(&self) -> Option<CloseCode> {
        self.closing.received().copied()
    }

    /// The protocol error that failed the connection, if the peer broke a rule.
    pub fn failure(&self) -> Option<ProtocolError> {
        self.closing.failure()
    }

    /// True while the peer is in the middle of something: a frame header or payload only
    /// partly received, or a fragmented message not yet finished.
    pub fn is_mid_message(&self) -> bool {
        self.reading()
            && (!self.header.is_empty() || self.frame.is_some() || self.message.is_some())
    }

    /// True from our Close until the TCP stream ends: arm the close-handshake timeout.
    pub fn awaiting_close(&self) -> bool {
        self.closing.sent().is_some() && !self.eof
    }

    /// Whether to close the TCP connection once the output is written (§7.1.1): the server
    /// after both Close frames, either end at once after a failure or the peer's end of TCP.
    pub fn should_close_tcp(&self) -> bool {
        self.closing.should_close_tcp(self.role(), self.eof)
    }
}

/// The session's output: the replies and the caller's control frames, to be written out.
#[derive(Debug)]
struct Output {
    buf: [u8; OUTPUT_LEN],
    len: usize,
}

impl Output {
    /// Whether `frames` more control frames fit.
    fn has_room(&self, frames: usize) -> bool {
        OUTPUT_LEN - self.len >= frames * MAX_CONTROL_FRAME
    }

    /// Append a control frame (at most 125 bytes of payload; callers checked
    /// [`Output::has_room`], or that the output was empty).
    fn push<K: MaskKeys>(&mut self, keys: &mut Option<K>, op: ControlOpcode, payload: &[u8]) {
        let header = FrameHeader::new(true, Opcode::Control(op), payload.len() as u64);
        let end = self.len + frame_len(&header, keys.is_some());
        encode(keys, header, payload, &mut self.buf[self.len..end]);
        self.len = end;
    }
}

/// The length of a frame with `header`, masked or not: RFC 6455 §5.2, 2 bytes, the extended
/// payload length, the masking key, the payload.
fn frame_len(header: &FrameHeader, masked: bool) -> usize {
    let key = if masked { 4 } else { 0 };
    2 + header.length_form().extra_bytes() + key + header.payload_len as usize
}

/// Encode a frame into `out`, exactly [`frame_len`] long; masked with a fresh key of `keys`
/// for a client (RFC 6455 §5.3).
fn encode<K: MaskKeys>(
    keys: &mut Option<K>,
    mut header: FrameHeader,
    payload: &[u8],
    out: &mut [u8],
) {
    header.mask = keys.as_mut().map(MaskKeys::next_key);
    let encoded = header.encode();
    let (head, body) = out.split_at_mut(encoded.as_bytes().len());
    head.copy_from_slice(encoded.as_bytes());
    body.copy_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(body, key, 0);
    }
}
