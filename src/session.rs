//! The WebSocket session: the whole protocol after the handshake as a state machine, for
//! either role, with no I/O and no clock (sans-I/O).
//!
//! Owns: reading frames from bytes in any chunking (§5.2), unmasking (§5.3), reassembling
//! fragmented messages (§5.4), control frames (§5.5), UTF-8 checks on text (§5.6, §8.1), size
//! limits, the closing handshake (§5.5.1, §7), and encoding what we send.
//! Must not: touch sockets, threads or clocks, or know about other sessions.
//!
//! The caller feeds bytes with [`Session::receive`] (and [`Session::receive_eof`] when the
//! TCP stream ends), takes [`Event`]s with [`Session::next_event`], and writes
//! [`Session::output`] to the peer. Replies the protocol requires (a Pong for each Ping, the
//! Close that answers a Close, the Close that fails the connection) are written to the output
//! by the session itself; the first two when their event is taken.
//!
//! **Timers are the I/O layer's job.** The session says when one should run:
//! [`Session::awaiting_close`] is true from the moment we send a Close until the TCP stream
//! ends (arm the close-handshake timeout), and [`Session::should_close_tcp`] says when to close
//! the socket after flushing the output. Heartbeats are a Ping sent by the caller.
//!
//! ```
//! use wsloop::session::{SessionLimits, Event, Message, Role, Session};
//! let mut server = Session::new(Role::Server, SessionLimits::default());
//! // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).unwrap();
//! assert_eq!(server.next_event(), Some(Event::Message(Message::Text("Hello".into()))));
//! server.send_text("Hi").unwrap();
//! assert_eq!(server.output(), b"\x81\x02Hi");
//! ```

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::close::{close_payload, CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::frame::MAX_HEADER_LEN;
use crate::frame::{ControlOpcode, DataOpcode, Decoded, EncodedHeader, FrameHeader, Opcode};
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

#[cfg(feature = "deflate")]
use crate::deflate::{Codec, DeflateConfig, Negotiated};

/// Which end of the connection this session is. It decides the masking rules (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// Limits on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// The largest frame payload accepted; a larger one is answered with 1009 as soon as its
    /// header arrives, before any of its payload is buffered. Default: the same as
    /// `max_message_size`, i.e. no separate frame limit.
    pub max_frame_size: usize,
    /// The largest message (all fragments together) accepted; beyond it, 1009, checked from
    /// each frame header before its payload is buffered. Default 64 MiB: large enough for
    /// Autobahn's 16 MiB cases and for most file-transfer uses, and the most memory one
    /// connection can make us hold for an incoming message. Memory grows with what actually
    /// arrives, never with what a header announces.
    pub max_message_size: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
        }
    }
}

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, valid UTF-8 (§5.6).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The opcode of the frame that carries this message.
    pub fn opcode(&self) -> DataOpcode {
        match self {
            Message::Text(_) => DataOpcode::Text,
            Message::Binary(_) => DataOpcode::Binary,
        }
    }

    /// The payload, by value (no copy).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// This message as one whole frame the way a server sends it: unfragmented, unmasked
    /// (§5.1), uncompressed (RFC 7692 §6 lets an endpoint send any message uncompressed).
    /// Built once, such a frame can be shared by every connection a broadcast reaches.
    pub fn to_server_frame(&self) -> Vec<u8> {
        let header = FrameHeader::new(true, Opcode::Data(self.opcode()), self.len() as u64);
        let header = header.encode();
        let mut bytes = Vec::with_capacity(header.as_bytes().len() + self.len());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(self.as_bytes());
        bytes
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(String::from(text))
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(bytes.to_vec())
    }
}

/// Something the peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole data message.
    Message(Message),
    /// A Ping; taking this event writes the Pong to the output.
    Ping(Vec<u8>),
    /// A Pong.
    Pong(Vec<u8>),
    /// The peer started or answered the closing handshake; taking this event writes our
    /// answering Close to the output, if one is due.
    Close(CloseFrame),
}

/// Why something could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// §5.5.1: after sending a Close, an endpoint MUST NOT send more data frames.
    Closing,
    /// §5.5: control frames carry at most 125 bytes.
    ControlFrameTooLong,
    /// §7.4.1: this close code must not be sent.
    InvalidCloseCode,
    /// §5.4: a new message was started while a fragmented one is still being sent, or a
    /// continuation was sent without one.
    FragmentationOrder,
    /// The zero-copy header path is for servers only: a client must mask the payload.
    MaskingRequired,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closing => "the closing handshake has started",
            SendError::ControlFrameTooLong => "control frame payload over 125 bytes",
            SendError::InvalidCloseCode => "this close code may not be sent",
            SendError::FragmentationOrder => "fragments out of order",
            SendError::MaskingRequired => "a client must mask its frames",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}

/// The coarse state of the connection (§4.1 "_The WebSocket Connection is Established_",
/// §7.1.3 "_The WebSocket Closing Handshake is Started_", §7.1.4 "_Closed_").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// A Close was sent or received, or the connection was failed.
    Closing,
    /// The TCP stream has ended.
    Closed,
}

/// Data frames at least this large may take the caller's spare buffer
/// ([`Session::receive_with_spare`]).
pub const LARGE_FRAME: usize = 64 * 1024;

/// RFC 7692 §6: RSV1, the "Per-Message Compressed" bit, in [`FrameHeader::rsv`].
#[cfg(feature = "deflate")]
const RSV1: u8 = 0b100;

/// A source of masking keys for a client session (§5.3: unpredictable for each frame).
pub type MaskKeySource = Box<dyn FnMut() -> [u8; 4] + Send>;

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes already read, for the key offset.
    read: u64,
    remaining: u64,
}

/// One WebSocket connection's protocol state.
pub struct Session {
    role: Role,
    config: SessionLimits,
    mask_keys: Option<MaskKeySource>,

    // Reading.
    /// A header cut off by the end of the previous input.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    frame: Option<InFrame>,
    /// The data message being assembled: its kind, its bytes so far.
    message: Option<DataOpcode>,
    message_buf: Vec<u8>,
    utf8: Utf8Validator,
    /// permessage-deflate, when negotiated (RFC 7692).
    #[cfg(feature = "deflate")]
    deflate: Option<Box<Codec>>,
    /// The payload of the control frame being read (at most 125 bytes).
    control_buf: Vec<u8>,
    events: VecDeque<Event>,

    // Writing.
    out: Vec<u8>,
    /// We are in the middle of sending a fragmented message.
    sending_fragments: bool,

    // Closing.
    close_sent: Option<CloseFrame>,
    close_received: Option<CloseFrame>,
    failure: Option<ProtocolError>,
    /// The Close that fails the connection, held back until the events decoded before the
    /// violation have been taken (so that answers to them still precede it).
    failing_close: Option<CloseFrame>,
    failed: bool,
    eof: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("pending_output", &self.out.len())
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `role`. A client session made this way masks with keys from the
    /// operating system (std builds); in `no_std` builds use [`Session::client_with_keys`].
    pub fn new(role: Role, config: SessionLimits) -> Session {
        let mask_keys: Option<MaskKeySource> = match role {
            Role::Server => None,
            #[cfg(feature = "std")]
            Role::Client => {
                let mut keys = crate::mask::KeyGenerator::new();
                Some(Box::new(move || keys.mask_key()))
            }
            #[cfg(not(feature = "std"))]
            Role::Client => None,
        };
        Session {
            role,
            config,
            mask_keys,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            message_buf: Vec::new(),
            utf8: Utf8Validator::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
            control_buf: Vec::new(),
            events: VecDeque::new(),
            out: Vec::new(),
            sending_fragments: false,
            close_sent: None,
            close_received: None,
            failure: None,
            failing_close: None,
            failed: false,
            eof: false,
        }
    }

    /// A client session whose masking keys come from `keys`, which must be unpredictable
    /// (§10.3). Without `std` this is the way to build a client.
    pub fn client_with_keys(config: SessionLimits, keys: MaskKeySource) -> Session {
        let mut session = Session::new(Role::Client, config);
        session.mask_keys = Some(keys);
        session
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn config(&self) -> &SessionLimits {
        &self.config
    }

    /// Turn on permessage-deflate (RFC 7692) with the parameters the handshake agreed on
    /// (see [`crate::deflate::negotiate`]), before any frame is exchanged. From then on
    /// messages we send are compressed (those of at least `config.threshold` bytes), and
    /// messages the peer marks with RSV1 are inflated, the size limits applying to the
    /// inflated size.
    #[cfg(feature = "deflate")]
    pub fn set_deflate(&mut self, negotiated: Negotiated, config: &DeflateConfig) {
        self.deflate = Some(Box::new(Codec::new(self.role, negotiated, config)));
    }

    /// The permessage-deflate parameters in force, if the extension was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<&Negotiated> {
        self.deflate.as_deref().map(Codec::negotiated)
    }

    /// Whether RSV1 may mark a compressed message (permessage-deflate negotiated).
    fn rsv1_allowed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    // ----- Input -------------------------------------------------------------------------

    /// Feed bytes received from the peer, in any chunking. Events become available from
    /// [`Session::next_event`], replies in [`Session::output`].
    ///
    /// On a protocol violation the session discards all further input and returns the error
    /// (once). Events decoded before the violation stay available; the Close that fails the
    /// connection is written at once if there are none, else by the [`Session::next_event`]
    /// call that finds none left. Input after a received Close is discarded.
    pub fn receive(&mut self, input: &[u8]) -> Result<(), ProtocolError> {
        self.receive_with_spare(input, &mut None)
    }

    /// [`Session::receive`], with a spare buffer to take for a large message.
    ///
    /// When a data frame of [`LARGE_FRAME`] bytes or more starts and the message buffer is
    /// smaller than `spare`, the session takes `spare` as its buffer. An event loop recycles
    /// the buffers of large payloads it has finished writing this way, so that a large
    /// message lands in memory that is already mapped: filling fresh pages (page faults and
    /// zeroing) cost more than half the time of a 16 MiB echo (`benches/e2e`, row 3).
    pub fn receive_with_spare(
        &mut self,
        mut input: &[u8],
        spare: &mut Option<Vec<u8>>,
    ) -> Result<(), ProtocolError> {
        while !input.is_empty() && self.reading() {
            let step = match self.frame {
                None => self.read_header(input),
                Some(frame) => self.read_payload(frame, input, spare),
            };
            match step {
                Ok(used) => input = &input[used..],
                Err(error) => {
                    self.fail_with(error);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// The peer closed its side of the TCP stream. Without a prior Close frame this is an
    /// abnormal closure (1006, §7.1.5), which the caller reads from
    /// [`Session::close_received`] being `None`.
    pub fn receive_eof(&mut self) {
        if !self.eof && self.close_received.is_none() && !self.failed {
            log::debug!("{:?}: TCP closed without a Close frame (1006)", self.role);
        }
        self.eof = true;
    }

    /// The next event, oldest first.
    ///
    /// Taking a [`Event::Ping`] writes its Pong, and taking a [`Event::Close`] writes the
    /// answering Close, so that replies go out in order with whatever the caller sends while
    /// handling the events before them (an echo of a message that preceded the peer's Close
    /// still goes out before our Close). Likewise, when the peer broke the protocol after
    /// some valid events, the failing Close is written by the call that finds no event left.
    pub fn next_event(&mut self) -> Option<Event> {
        let Some(event) = self.events.pop_front() else {
            // Every event before a violation has been taken and handled: now fail. (Even
            // if TCP has ended since: the violation came first, and a peer that only shut its
            // sending side still reads the Close.)
            if let Some(close) = self.failing_close.take() {
                if self.close_sent.is_none() {
                    self.write_close(close);
                }
            }
            return None;
        };
        match &event {
            // RFC 6455 §5.5.2: a Ping is answered with a Pong carrying the same payload,
            // unless we already sent a Close (§5.5.1: it is our last frame).
            Event::Ping(payload) if self.close_sent.is_none() && !self.eof => {
                self.write_frame(Opcode::Control(ControlOpcode::Pong), true, payload);
            }
            // RFC 6455 §5.5.1: if we have not sent a Close, we MUST answer with one,
            // typically echoing the status code received (an empty Close for none).
            Event::Close(close) if self.close_sent.is_none() && !self.eof => {
                self.write_close(CloseFrame::new(close.code, ""));
            }
            _ => {}
        }
        Some(event)
    }

    fn reading(&self) -> bool {
        // After failing we discard everything (§7.1.7); after the peer's Close, nothing more
        // may follow (§5.5.1: the Close is the last frame an endpoint sends).
        !self.failed && self.close_received.is_none() && !self.eof
    }

    /// Read (part of) a header; returns how many input bytes were used.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, ProtocolError> {
        let (header, used) = if self.header_len == 0 {
            match FrameHeader::decode(input)? {
                Decoded::Header(header, len) => (header, len),
                Decoded::NeedMore(_) => {
                    // A header is at most 14 bytes, so a short input fits.
                    self.header[..input.len()].copy_from_slice(input);
                    self.header_len = input.len() as u8;
                    return Ok(input.len());
                }
            }
        } else {
            // Complete the saved header one missing piece at a time.
            let have = self.header_len as usize;
            match FrameHeader::decode(&self.header[..have])? {
                Decoded::NeedMore(n) => {
                    let take = n.min(input.len());
                    self.header[have..have + take].copy_from_slice(&input[..take]);
                    self.header_len += take as u8;
                    match FrameHeader::decode(&self.header[..have + take])? {
                        Decoded::Header(header, _) => {
                            self.header_len = 0;
                            (header, take)
                        }
                        Decoded::NeedMore(_) => return Ok(take),
                    }
                }
                // A complete header is never left in the buffer.
                Decoded::Header(header, _) => {
                    self.header_len = 0;
                    (header, 0)
                }
            }
        };
        self.start_frame(header)?;
        Ok(used)
    }

    /// Check a header against the rules that depend on role and state; prepare for payload.
    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        log::trace!(
            "{:?} <- frame {} fin={} rsv={:03b} masked={} len={}",
            self.role,
            h.opcode.name(),
            h.fin,
            h.rsv,
            h.mask.is_some(),
            h.payload_len
        );
        // RFC 6455 §5.2: RSV1-3 MUST be 0 unless a negotiated extension defines them. The only
        // one we know is permessage-deflate, which defines RSV1 (RFC 7692 §6): set on the
        // first frame of a compressed data message only, never on continuation or control
        // frames (§6.1).
        let rsv1 = h.rsv == 0b100;
        let first_data_frame = matches!(
            h.opcode,
            Opcode::Data(DataOpcode::Text | DataOpcode::Binary)
        );
        if h.rsv != 0 && !(rsv1 && first_data_frame && self.rsv1_allowed()) {
            return Err(ProtocolError::ReservedBitsSet);
        }
        // RFC 6455 §5.1: a server MUST close on an unmasked frame from a client, and a client
        // MUST close on a masked frame from a server.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrameFromClient),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrameFromServer),
            _ => {}
        }
        match h.opcode {
            Opcode::Control(_) => {
                // RFC 6455 §5.5: control frames are at most 125 bytes and MUST NOT be
                // fragmented. They may arrive in the middle of a fragmented message.
                if h.payload_len > 125 {
                    return Err(ProtocolError::ControlFrameTooLong);
                }
                if !h.fin {
                    return Err(ProtocolError::FragmentedControlFrame);
                }
                self.control_buf.clear();
            }
            Opcode::Data(op) => {
                match (op, self.message) {
                    // RFC 6455 §5.4: a continuation frame continues a message in progress...
                    (DataOpcode::Continuation, None) => {
                        return Err(ProtocolError::UnexpectedContinuation)
                    }
                    // ...and a new Text/Binary frame may not interrupt one.
                    (DataOpcode::Text | DataOpcode::Binary, Some(_)) => {
                        return Err(ProtocolError::ExpectedContinuation)
                    }
                    (DataOpcode::Continuation, Some(_)) => {}
                    (kind, None) => {
                        self.message = Some(kind);
                        self.utf8.reset();
                        #[cfg(feature = "deflate")]
                        if let Some(codec) = self.deflate.as_mut() {
                            codec.receiving = rsv1;
                        }
                    }
                }
                // Limits, from the header alone: nothing of an oversized frame is buffered.
                if h.payload_len > self.config.max_frame_size as u64 {
                    return Err(ProtocolError::FrameTooLarge);
                }
                // A compressed message is measured as it inflates (`read_compressed`).
                if !self.message_compressed()
                    && h.payload_len + self.message_buf.len() as u64
                        > self.config.max_message_size as u64
                {
                    return Err(ProtocolError::MessageTooLarge);
                }
            }
        }
        let frame = InFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            read: 0,
            remaining: h.payload_len,
        };
        if h.payload_len == 0 {
            self.end_frame(frame)
        } else {
            self.frame = Some(frame);
            Ok(())
        }
    }

    /// Read (part of) a payload; returns how many input bytes were used.
    fn read_payload(
        &mut self,
        frame: InFrame,
        input: &[u8],
        spare: &mut Option<Vec<u8>>,
    ) -> Result<usize, ProtocolError> {
        if frame.read == 0 && frame.opcode.is_data() && frame.remaining >= LARGE_FRAME as u64 {
            self.adopt_spare(spare);
        }
        let take = (frame.remaining.min(input.len() as u64)) as usize;
        #[cfg(feature = "deflate")]
        if frame.opcode.is_data() && self.message_compressed() {
            self.read_compressed(frame, &input[..take])?;
            return self.advance(frame, take);
        }
        let chunk = &input[..take];
        let whole_frame = frame.read == 0 && take as u64 == frame.remaining;
        let dest = match frame.opcode {
            Opcode::Control(_) => &mut self.control_buf,
            Opcode::Data(_) => &mut self.message_buf,
        };
        let start = dest.len();
        // The one copy of a payload: from the input into the message being assembled.
        dest.extend_from_slice(chunk);
        if let Some(key) = frame.mask {
            // RFC 6455 §5.3: unmask in place, continuing from this frame's key offset.
            apply_mask(&mut dest[start..], key, (frame.read & 3) as usize);
        }
        // RFC 6455 §8.1: fail fast on invalid UTF-8, even mid-frame. A single-frame text
        // message that arrived whole is checked once, when it becomes a String.
        let single_whole = whole_frame && frame.fin && start == 0;
        if frame.opcode.is_data() && !single_whole {
            self.check_text_from(start)?;
        }
        self.advance(frame, take)
    }

    /// `take` more payload bytes of `frame` were read.
    fn advance(&mut self, mut frame: InFrame, take: usize) -> Result<usize, ProtocolError> {
        frame.read += take as u64;
        frame.remaining -= take as u64;
        if frame.remaining == 0 {
            self.frame = None;
            self.end_frame(frame)?;
        } else {
            self.frame = Some(frame);
        }
        Ok(take)
    }

    /// Whether the data message being read is compressed.
    fn message_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.as_ref().is_some_and(|c| c.receiving);
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// RFC 6455 §8.1: fail fast on invalid UTF-8: feed the text message's bytes from `start`
    /// on to the validator (a no-op for a binary message).
    fn check_text_from(&mut self, start: usize) -> Result<(), ProtocolError> {
        if self.message == Some(DataOpcode::Text) {
            self.utf8
                .feed(&self.message_buf[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// A piece of a compressed frame's payload: unmask it, inflate it onto the message.
    #[cfg(feature = "deflate")]
    fn read_compressed(&mut self, frame: InFrame, chunk: &[u8]) -> Result<(), ProtocolError> {
        let Some(codec) = self.deflate.as_mut() else {
            return Ok(());
        };
        // RFC 6455 §5.3: the codec unmasks, continuing from this frame's key offset.
        let mask = frame.mask.map(|key| (key, (frame.read & 3) as usize));
        let start = self.message_buf.len();
        // RFC 7692 §6.2 and our limit: the size that counts is the inflated one, checked
        // while inflating.
        let max = self.config.max_message_size;
        codec.inflate_masked(chunk, mask, &mut self.message_buf, max)?;
        // Text is checked as it inflates.
        self.check_text_from(start)
    }

    /// Take `spare` as the message buffer if it is larger (keeping the bytes so far).
    fn adopt_spare(&mut self, spare: &mut Option<Vec<u8>>) {
        if let Some(mut buf) = spare.take() {
            if buf.capacity() > self.message_buf.capacity() {
                buf.clear();
                buf.extend_from_slice(&self.message_buf);
                self.message_buf = buf;
            } else {
                *spare = Some(buf);
            }
        }
    }

    /// A frame's payload is complete.
    fn end_frame(&mut self, frame: InFrame) -> Result<(), ProtocolError> {
        match frame.opcode {
            Opcode::Data(_) => {
                if frame.fin {
                    #[cfg(feature = "deflate")]
                    if let Some(codec) = self.deflate.as_mut().filter(|c| c.receiving) {
                        // RFC 7692 §7.2.2: append 00 00 ff ff, inflate the rest.
                        let start = self.message_buf.len();
                        let max = self.config.max_message_size;
                        codec.end_message(&mut self.message_buf, max)?;
                        self.check_text_from(start)?;
                    }
                    let bytes = core::mem::take(&mut self.message_buf);
                    let message = match self.message.take() {
                        Some(DataOpcode::Text) => Message::Text(
                            // RFC 6455 §5.6/§8.1: a text message is UTF-8 as a whole; this
                            // also catches a code point cut off by the end of the message.
                            String::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8)?,
                        ),
                        _ => Message::Binary(bytes),
                    };
                    log::trace!("{:?} <- message of {} bytes", self.role, message.len());
                    self.events.push_back(Event::Message(message));
                }
            }
            Opcode::Control(ControlOpcode::Ping) => {
                // The Pong is written when this event is taken (see `next_event`).
                self.events.push_back(Event::Ping(self.control_buf.clone()));
            }
            Opcode::Control(ControlOpcode::Pong) => {
                // RFC 6455 §5.5.3: an unsolicited Pong is a heartbeat; no answer.
                self.events.push_back(Event::Pong(self.control_buf.clone()));
            }
            Opcode::Control(ControlOpcode::Close) => {
                let close = CloseFrame::parse(&self.control_buf)?;
                // The answering Close is written when this event is taken (see `next_event`).
                // A message in progress will never be completed; drop it.
                self.message = None;
                self.message_buf = Vec::new();
                self.abandon_compressed();
                self.close_received = Some(close.clone());
                self.events.push_back(Event::Close(close));
            }
        }
        Ok(())
    }

    /// Fail the connection (§7.1.7): send a Close with the error's code, then read nothing more.
    fn fail_with(&mut self, error: ProtocolError) {
        log::debug!("{:?}: failing the connection: {error}", self.role);
        self.failure = Some(error);
        if self.events.is_empty() {
            self.fail(error.close_code(), error.reason());
        } else {
            // Stop reading now; send the Close once the earlier events are taken.
            self.fail_reading();
            self.failing_close = Some(CloseFrame::new(error.close_code(), error.reason()));
        }
    }

    // ----- Output ------------------------------------------------------------------------

    /// Bytes waiting to be written to the peer, oldest first.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Forget the first `n` bytes of [`Session::output`] (they were written).
    pub fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Take all waiting output, leaving none.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Send a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_message(DataOpcode::Text, text.as_bytes(), usize::MAX)
    }

    /// Send a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_message(DataOpcode::Binary, data, usize::MAX)
    }

    /// Send a message split into frames of at most `frame_size` bytes (§5.4). `kind` is
    /// [`DataOpcode::Text`] or [`DataOpcode::Binary`]; for text, the split may fall inside a
    /// character, which the receiver must accept (§5.6 applies to the whole message).
    pub fn send_fragmented(
        &mut self,
        kind: DataOpcode,
        data: &[u8],
        frame_size: usize,
    ) -> Result<(), SendError> {
        self.send_message(kind, data, frame_size.max(1))
    }

    fn send_message(
        &mut self,
        kind: DataOpcode,
        data: &[u8],
        frame_size: usize,
    ) -> Result<(), SendError> {
        self.check_can_send_data()?;
        if kind == DataOpcode::Continuation || self.sending_fragments {
            return Err(SendError::FragmentationOrder);
        }
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.as_mut().filter(|c| c.compresses(data.len())) {
            // RFC 7692 §6.1: the message is compressed as a whole, then fragmented; RSV1
            // marks its first frame only.
            let compressed = codec.compress(data);
            self.write_fragments(kind, RSV1, &compressed, frame_size);
            return Ok(());
        }
        self.write_fragments(kind, 0, data, frame_size);
        Ok(())
    }

    fn write_fragments(&mut self, kind: DataOpcode, rsv: u8, data: &[u8], frame_size: usize) {
        let mut chunks = data.chunks(frame_size);
        let first = chunks.next().unwrap_or(&[]);
        let mut opcode = Opcode::Data(kind);
        let mut current = first;
        let mut rsv = rsv;
        for next in chunks {
            self.write_frame_rsv(opcode, false, rsv, current);
            opcode = Opcode::Data(DataOpcode::Continuation);
            current = next;
            rsv = 0;
        }
        self.write_frame_rsv(opcode, true, rsv, current);
    }

    /// A whole data message as a header and the payload to send after it, for a server
    /// that queues payloads without copying them: the bytes of `message` themselves, or,
    /// when permessage-deflate is on, their compressed form with RSV1 set. Servers only.
    pub fn frame_message(
        &mut self,
        message: Message,
    ) -> Result<(EncodedHeader, Vec<u8>), SendError> {
        // The checks (a server, free to send, no fragmented message of ours in progress).
        let header = self.data_frame_header(message.opcode(), true, message.len())?;
        #[cfg(feature = "deflate")]
        if let Some(codec) = self
            .deflate
            .as_mut()
            .filter(|c| c.compresses(message.len()))
        {
            let compressed = codec.compress(message.as_bytes());
            let mut header = FrameHeader::new(
                true,
                Opcode::Data(message.opcode()),
                compressed.len() as u64,
            );
            // RFC 7692 §6: RSV1 marks a compressed message.
            header.rsv = RSV1;
            return Ok((header.encode(), compressed));
        }
        Ok((header, message.into_bytes()))
    }

    /// The header for a data frame whose payload the caller sends itself, so that a payload
    /// (or one shared by many connections) is never copied to be framed. Servers only: a
    /// client's payload must be masked. Frames with `fin == false` start or continue a
    /// fragmented message; the one with `fin == true` ends it.
    pub fn data_frame_header(
        &mut self,
        kind: DataOpcode,
        fin: bool,
        payload_len: usize,
    ) -> Result<EncodedHeader, SendError> {
        if self.role == Role::Client {
            return Err(SendError::MaskingRequired);
        }
        self.check_can_send_data()?;
        // RFC 6455 §5.4: the fragments of one message are not interleaved with another's.
        match (kind, self.sending_fragments) {
            (DataOpcode::Continuation, false) | (DataOpcode::Text | DataOpcode::Binary, true) => {
                return Err(SendError::FragmentationOrder)
            }
            _ => {}
        }
        self.sending_fragments = !fin;
        let header = FrameHeader::new(fin, Opcode::Data(kind), payload_len as u64);
        log::trace!(
            "{:?} -> frame {} fin={fin} len={payload_len}",
            self.role,
            header.opcode.name()
        );
        Ok(header.encode())
    }

    fn check_can_send_data(&self) -> Result<(), SendError> {
        // RFC 6455 §5.5.1: no data frames after our Close.
        if self.close_sent.is_some() || self.eof {
            Err(SendError::Closing)
        } else {
            Ok(())
        }
    }

    /// Whether a whole data message may be sent now: no Close sent, TCP open, and no
    /// fragmented message of ours in progress.
    pub fn can_send(&self) -> bool {
        self.check_can_send_data().is_ok() && !self.sending_fragments
    }

    /// Send a Ping (§5.5.2), e.g. as a heartbeat.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(ControlOpcode::Ping, payload)
    }

    /// Send an unsolicited Pong (§5.5.3), a one-way heartbeat.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(ControlOpcode::Pong, payload)
    }

    fn send_control(&mut self, op: ControlOpcode, payload: &[u8]) -> Result<(), SendError> {
        if self.close_sent.is_some() || self.eof {
            return Err(SendError::Closing);
        }
        // RFC 6455 §5.5: control frames carry at most 125 bytes.
        if payload.len() > 125 {
            return Err(SendError::ControlFrameTooLong);
        }
        self.write_frame(Opcode::Control(op), true, payload);
        Ok(())
    }

    /// Start the closing handshake (§7.1.2). `code` must be sendable (§7.4.1), or
    /// [`CloseCode::NoStatusReceived`] for a Close without a body; a reason longer than 123
    /// bytes is cut at a character boundary.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if self.close_sent.is_some() || self.eof {
            return Err(SendError::Closing);
        }
        if code != CloseCode::NoStatusReceived && !code.is_sendable() {
            return Err(SendError::InvalidCloseCode);
        }
        self.write_close(CloseFrame::new(code, reason));
        Ok(())
    }

    /// Fail the connection (§7.1.7): send a Close with `code` (if none was sent yet) and
    /// discard all further input. The caller then closes the TCP connection
    /// ([`Session::should_close_tcp`] becomes true).
    pub fn fail(&mut self, code: CloseCode, reason: &str) {
        if self.close_sent.is_none() && !self.eof {
            let code = if code.is_sendable() {
                code
            } else {
                CloseCode::InternalError
            };
            self.write_close(CloseFrame::new(code, reason));
        }
        self.fail_reading();
    }

    /// Discard all further input and whatever was being read.
    fn fail_reading(&mut self) {
        self.failed = true;
        self.frame = None;
        self.message = None;
        self.message_buf = Vec::new();
        self.abandon_compressed();
    }

    /// Drop the state of a compressed message that will never be completed.
    fn abandon_compressed(&mut self) {
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.as_mut().filter(|c| c.receiving) {
            codec.abandon_message();
        }
    }

    fn write_close(&mut self, close: CloseFrame) {
        let payload = close_payload(close.code, &close.reason).unwrap_or_default();
        self.write_frame(Opcode::Control(ControlOpcode::Close), true, &payload);
        self.close_sent = Some(close);
    }

    /// Encode one frame into the output, masking it for a client (§5.3).
    fn write_frame(&mut self, opcode: Opcode, fin: bool, payload: &[u8]) {
        self.write_frame_rsv(opcode, fin, 0, payload);
    }

    fn write_frame_rsv(&mut self, opcode: Opcode, fin: bool, rsv: u8, payload: &[u8]) {
        let mask = match (self.role, self.mask_keys.as_mut()) {
            (Role::Client, Some(keys)) => Some(keys()),
            // A client built without a key source (no_std, `Session::new`) still masks, with
            // a zero key, which is visible and documented at `client_with_keys`.
            (Role::Client, None) => Some([0; 4]),
            (Role::Server, _) => None,
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        log::trace!(
            "{:?} -> frame {} fin={fin} masked={} len={}",
            self.role,
            opcode.name(),
            mask.is_some(),
            payload.len()
        );
        self.out.extend_from_slice(header.encode().as_bytes());
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key, 0);
        }
    }

    // ----- State -------------------------------------------------------------------------

    /// Open, closing, or closed.
    pub fn state(&self) -> State {
        if self.eof {
            State::Closed
        } else if self.close_sent.is_some() || self.close_received.is_some() || self.failed {
            State::Closing
        } else {
            State::Open
        }
    }

    /// The Close we sent, if any.
    pub fn close_sent(&self) -> Option<&CloseFrame> {
        self.close_sent.as_ref()
    }

    /// The Close the peer sent, if any.
    pub fn close_received(&self) -> Option<&CloseFrame> {
        self.close_received.as_ref()
    }

    /// The protocol error that failed the connection, if the peer broke a rule.
    pub fn failure(&self) -> Option<ProtocolError> {
        self.failure
    }

    /// True while the peer is in the middle of something: a frame header or payload only
    /// partly received, or a fragmented message not yet finished. The I/O layer bounds how
    /// long this may last, so that a peer cannot hold a half-sent message (and its buffer)
    /// open for ever while keeping the connection alive with Pings.
    pub fn is_mid_message(&self) -> bool {
        self.reading() && (self.header_len > 0 || self.frame.is_some() || self.message.is_some())
    }

    /// True from our Close until the TCP stream ends: the I/O layer arms the close-handshake
    /// timeout and closes the socket when it fires (§7.1.1).
    pub fn awaiting_close(&self) -> bool {
        self.close_sent.is_some() && !self.eof
    }

    /// Whether the I/O layer should close the TCP connection once the output is flushed.
    ///
    /// RFC 6455 §7.1.1: after both Close frames, the server closes the TCP connection first
    /// (so that it, not the client, holds TIME_WAIT); a client waits for the server to do it,
    /// until its close timeout. A failed connection (§7.1.7) and one whose peer already closed
    /// TCP are closed at once, whatever the role.
    pub fn should_close_tcp(&self) -> bool {
        if (self.failed && self.failing_close.is_none()) || self.eof {
            return true;
        }
        self.close_handshake_done() && self.role == Role::Server
    }

    /// Whether both Close frames have passed: ours was sent and the peer's received (§7.1.1:
    /// the closing handshake is complete).
    pub fn close_handshake_done(&self) -> bool {
        self.close_sent.is_some() && self.close_received.is_some()
    }
}

#[cfg(test)]
mod tests;
