//! The input path: frames from bytes in any chunking, into events.
//!
//! Owns: the frame whose payload is being read (a header cut off by the end of an input is
//! `header.rs`'s, shared with `FixedSession`), unmasking (§5.3), reassembling a fragmented message (§5.4), UTF-8 checks on text as it
//! arrives (§5.6, §8.1), control frame payloads (§5.5), and parsing the peer's Close.
//! Must not: write output, or decide what a violation or a Close leads to: it returns the
//! error or the event, and the session acts on it.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::extensions::Extensions;
use crate::frame::{ControlOpcode, DataOpcode, FrameHeader, Opcode, Role, RSV1};
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

use super::header::HeaderBuf;
use super::limits::SessionLimits;
use super::message::{Event, Message};
use super::recycle::Recycle;
use super::rules::{check_header, PartialMessage, Receiver};

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

/// The receiving half of a session.
#[derive(Debug)]
pub(super) struct Reader {
    role: Role,
    limits: SessionLimits,
    /// A header cut off by the end of the previous input.
    header: HeaderBuf,
    frame: Option<InFrame>,
    /// The data message being assembled: its kind, its bytes so far.
    message: Option<DataOpcode>,
    message_buf: Vec<u8>,
    utf8: Utf8Validator,
    /// The payload of the control frame being read (at most 125 bytes).
    control_buf: Vec<u8>,
    /// The most the message being read may hold now (the I/O layer's memory budget); below
    /// `limits.max_message_size` when set.
    allowance: usize,
}

impl Reader {
    /// A reader for the `role` end, enforcing `limits`.
    pub(super) fn new(role: Role, limits: SessionLimits) -> Reader {
        Reader {
            role,
            limits,
            header: HeaderBuf::default(),
            frame: None,
            message: None,
            message_buf: Vec::new(),
            utf8: Utf8Validator::new(),
            control_buf: Vec::new(),
            allowance: usize::MAX,
        }
    }

    /// Bytes of the data message being assembled that are held now.
    pub(super) fn held(&self) -> usize {
        self.message_buf.len()
    }

    /// See `Session::set_receive_allowance`.
    pub(super) fn set_allowance(&mut self, bytes: usize) {
        self.allowance = bytes;
    }

    /// The most an inflated message may grow to, and the error for going past it: the
    /// allowance when it is the tighter bound (1013, the message may fit later), else the
    /// limit (1009).
    fn inflate_limit(&self) -> (usize, ProtocolError) {
        if self.allowance < self.limits.max_message_size {
            (self.allowance, ProtocolError::Overloaded)
        } else {
            (self.limits.max_message_size, ProtocolError::MessageTooLarge)
        }
    }

    /// Inflating stopped at `max`: say which bound it was.
    fn inflate_error(&self, error: ProtocolError, tighter: ProtocolError) -> ProtocolError {
        match error {
            ProtocolError::MessageTooLarge => tighter,
            other => other,
        }
    }

    /// The role of the end that reads.
    pub(super) fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub(super) fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// A frame header or payload only partly received, or a fragmented message not finished.
    pub(super) fn is_mid_message(&self) -> bool {
        !self.header.is_empty() || self.frame.is_some() || self.message.is_some()
    }

    /// The capacity of the buffer of the message being read.
    #[cfg(test)]
    pub(super) fn message_buf_capacity(&self) -> usize {
        self.message_buf.capacity()
    }

    /// Read all of `input`, frame by frame, pushing the event of each completed frame to the
    /// back of `events`. Stops after the peer's Close, which is the last frame a peer sends
    /// (§5.5.1): what follows it is discarded. Returns whether a Close was received.
    ///
    /// The loop over the frames of one read is here, and the events are pushed in place,
    /// because this runs for every frame: a step per call from the session, handing each event
    /// back through the return value, cost about 15% more per 64-byte message
    /// (`benches/core.rs`, `session_receive/64B_messages`).
    pub(super) fn read<P: Recycle>(
        &mut self,
        mut input: &[u8],
        pool: &mut P,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<bool, ProtocolError> {
        while !input.is_empty() {
            let (used, closed) = self.step(input, pool, extensions, events)?;
            if closed {
                return Ok(true);
            }
            input = &input[used..];
        }
        Ok(false)
    }

    /// Read some of `input`: (part of) a header, or (part of) a payload. The event of a frame
    /// this completed, if any, goes to the back of `events`. Returns how many bytes were used,
    /// and whether the event was the peer's Close.
    fn step<P: Recycle>(
        &mut self,
        input: &[u8],
        pool: &mut P,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<(usize, bool), ProtocolError> {
        match self.frame {
            None => self.read_header(input, extensions, events),
            Some(frame) => self.read_payload(frame, input, pool, extensions, events),
        }
    }

    /// Discard whatever was being read: the connection failed (§7.1.7).
    pub(super) fn abandon(&mut self, extensions: &mut Extensions) {
        self.frame = None;
        self.drop_message(extensions);
    }

    /// Drop a data message that will never be completed.
    fn drop_message(&mut self, extensions: &mut Extensions) {
        self.message = None;
        self.message_buf = Vec::new();
        extensions.abandon_message();
    }

    /// Read (part of) a header; returns how many input bytes were used.
    fn read_header(
        &mut self,
        input: &[u8],
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<(usize, bool), ProtocolError> {
        let Some((header, used)) = self.header.push(input)? else {
            return Ok((input.len(), false));
        };
        let closed = self.start_frame(header, extensions, events)?;
        Ok((used, closed))
    }

    /// Check a header against the rules that depend on role and state; prepare for payload.
    fn start_frame(
        &mut self,
        h: FrameHeader,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<bool, ProtocolError> {
        log::trace!(
            "{:?} <- frame {} fin={} rsv={:03b} masked={} len={}",
            self.role,
            h.opcode.name(),
            h.fin,
            h.rsv,
            h.mask.is_some(),
            h.payload_len
        );
        let receiver = Receiver {
            role: self.role,
            limits: self.limits,
            rsv1_allowed: extensions.rsv1_allowed(),
            message: self.message.map(|_| PartialMessage {
                len: self.message_buf.len() as u64,
                compressed: extensions.receiving_compressed(),
            }),
        };
        check_header(&h, &receiver)?;
        if let Opcode::Data(kind) = h.opcode {
            // Not a protocol rule: the memory the I/O layer can spare. Checked from the header,
            // before any of the payload is buffered. A compressed payload is not buffered:
            // its inflated bytes are checked as they inflate (`read_compressed`).
            let (so_far, compressed) = match kind {
                DataOpcode::Continuation => {
                    (self.message_buf.len(), extensions.receiving_compressed())
                }
                _ => (0, h.rsv == RSV1),
            };
            if !compressed && (so_far as u64).saturating_add(h.payload_len) > self.allowance as u64
            {
                return Err(ProtocolError::Overloaded);
            }
        }
        match h.opcode {
            Opcode::Control(_) => self.control_buf.clear(),
            Opcode::Data(DataOpcode::Continuation) => {}
            Opcode::Data(kind) => {
                self.message = Some(kind);
                self.utf8.reset();
                // RFC 7692 §6: RSV1 on the first frame marks a compressed message.
                extensions.start_message(h.rsv == RSV1);
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
            self.end_frame(frame, extensions, events)
        } else {
            self.frame = Some(frame);
            Ok(false)
        }
    }

    /// Read (part of) a payload; returns how many input bytes were used.
    fn read_payload<P: Recycle>(
        &mut self,
        frame: InFrame,
        input: &[u8],
        pool: &mut P,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<(usize, bool), ProtocolError> {
        if frame.read == 0 && frame.opcode.is_data() {
            // Room for the whole frame (for a compressed one, its payload as a first guess):
            // from the I/O layer's recycled buffers when the message buffer is short of it.
            // The frame's length was checked against the limits from its header.
            let need = self
                .message_buf
                .len()
                .saturating_add(frame.remaining as usize);
            if self.message_buf.capacity() < need {
                self.adopt_pooled(pool, need);
            }
        }
        let take = (frame.remaining.min(input.len() as u64)) as usize;
        if frame.opcode.is_data() && extensions.receiving_compressed() {
            self.read_compressed(frame, &input[..take], extensions)?;
            return self.advance(frame, take, extensions, events);
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
        self.advance(frame, take, extensions, events)
    }

    /// `take` more payload bytes of `frame` were read.
    fn advance(
        &mut self,
        mut frame: InFrame,
        take: usize,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<(usize, bool), ProtocolError> {
        frame.read += take as u64;
        frame.remaining -= take as u64;
        if frame.remaining == 0 {
            self.frame = None;
            let closed = self.end_frame(frame, extensions, events)?;
            Ok((take, closed))
        } else {
            self.frame = Some(frame);
            Ok((take, false))
        }
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
    fn read_compressed(
        &mut self,
        frame: InFrame,
        chunk: &[u8],
        extensions: &mut Extensions,
    ) -> Result<(), ProtocolError> {
        // RFC 6455 §5.3: the codec unmasks, continuing from this frame's key offset.
        let mask = frame.mask.map(|key| (key, (frame.read & 3) as usize));
        let start = self.message_buf.len();
        // RFC 7692 §6.2 and our limit: the size that counts is the inflated one, checked
        // while inflating.
        let (max, tighter) = self.inflate_limit();
        extensions
            .inflate(chunk, mask, &mut self.message_buf, max)
            .map_err(|e| self.inflate_error(e, tighter))?;
        // Text is checked as it inflates.
        self.check_text_from(start)
    }

    /// Take a buffer with room for `need` bytes from `pool` as the message buffer, keeping
    /// the bytes so far (earlier fragments) and giving the old buffer back.
    fn adopt_pooled<P: Recycle>(&mut self, pool: &mut P, need: usize) {
        if let Some(mut buf) = pool.take(need) {
            buf.extend_from_slice(&self.message_buf);
            pool.give(core::mem::replace(&mut self.message_buf, buf));
        }
    }

    /// A frame's payload is complete: push the event it makes, if any; true for a Close.
    fn end_frame(
        &mut self,
        frame: InFrame,
        extensions: &mut Extensions,
        events: &mut VecDeque<Event>,
    ) -> Result<bool, ProtocolError> {
        let event = match frame.opcode {
            Opcode::Data(_) if !frame.fin => return Ok(false),
            Opcode::Data(_) => {
                if extensions.receiving_compressed() {
                    // RFC 7692 §7.2.2: append 00 00 ff ff, inflate the rest.
                    let start = self.message_buf.len();
                    let (max, tighter) = self.inflate_limit();
                    extensions
                        .end_message(&mut self.message_buf, max)
                        .map_err(|e| self.inflate_error(e, tighter))?;
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
                Event::Message(message)
            }
            // The Pong is written when this event is taken (the session's `next_event`).
            Opcode::Control(ControlOpcode::Ping) => Event::Ping(self.control_buf.clone()),
            // RFC 6455 §5.5.3: an unsolicited Pong is a heartbeat; no answer.
            Opcode::Control(ControlOpcode::Pong) => Event::Pong(self.control_buf.clone()),
            Opcode::Control(ControlOpcode::Close) => {
                let close = CloseFrame::parse(&self.control_buf)?;
                // The answering Close is written when this event is taken. A message in
                // progress will never be completed; drop it.
                self.drop_message(extensions);
                Event::Close(close)
            }
        };
        let closed = matches!(event, Event::Close(_));
        events.push_back(event);
        Ok(closed)
    }
}
