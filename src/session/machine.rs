//! The [`Session`] itself: one connection's protocol state, tying the reader, the writer, the
//! extensions and the closing handshake together.
//!
//! Owns: the public API of a session, the queue of events, and what each event or violation
//! leads to (the Pong for a Ping, the Close that answers a Close, the Close that fails the
//! connection, §5.5, §7), and when the I/O layer should close TCP (§7.1.1).
//! Must not: touch sockets, threads or clocks, or know about other sessions.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::close::{close_payload, CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::extensions::Extensions;
use crate::frame::{ControlOpcode, DataOpcode, EncodedHeader, Opcode, Role};
use crate::mask::MaskKeys;

use super::closing::{Closing, State};
use super::limits::SessionLimits;
use super::message::{Event, Message};
use super::read::Reader;
use super::recycle::Recycle;
use super::send_error::SendError;
use super::write::{Masking, Writer};

/// One WebSocket connection's protocol state.
///
/// Build one with [`Session::server`] or [`Session::client`] (which takes the source of its
/// masking keys), or, with `std`, `Session::new`. A `no_std` build has no `new`: there is no
/// operating system to take a client's keys from, and masking with a predictable key would
/// break §10.3, so a client session cannot be built without a key source.
pub struct Session {
    reader: Reader,
    writer: Writer,
    /// permessage-deflate, when negotiated (RFC 7692); nothing otherwise.
    extensions: Extensions,
    events: VecDeque<Event>,
    closing: Closing<CloseFrame>,
    /// The TCP stream has ended (in any state of the closing handshake).
    eof: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role())
            .field("state", &self.state())
            .field("pending_output", &self.writer.output().len())
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `role`; a client session made this way masks with keys from the
    /// operating system ([`crate::mask::KeyGenerator`]). Only with `std`: without it, use
    /// [`Session::server`] or [`Session::client`].
    #[cfg(feature = "std")]
    pub fn new(role: Role, limits: SessionLimits) -> Session {
        match role {
            Role::Server => Session::server(limits),
            Role::Client => Session::client(limits, crate::mask::KeyGenerator::new()),
        }
    }

    /// A server session: it sends unmasked frames and requires masked ones (§5.1).
    pub fn server(limits: SessionLimits) -> Session {
        Session::with_masking(Masking::Server, limits)
    }

    /// A client session that masks each frame with the next key of `keys` (§5.3), which must
    /// be unpredictable (§10.3): `mask::KeyGenerator` with `std`, or any
    /// `FnMut() -> [u8; 4]`, e.g. one reading an RNG peripheral.
    ///
    /// The source must be `Send` because a session is: an I/O layer may move it to another
    /// thread (the server's workers do). It is boxed inside the session.
    pub fn client(limits: SessionLimits, keys: impl MaskKeys + Send + 'static) -> Session {
        Session::with_masking(Masking::Client(Box::new(keys)), limits)
    }

    fn with_masking(masking: Masking, limits: SessionLimits) -> Session {
        let writer = Writer::new(masking);
        Session {
            reader: Reader::new(writer.role(), limits),
            writer,
            extensions: Extensions::none(),
            events: VecDeque::new(),
            closing: Closing::Open,
            eof: false,
        }
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.reader.role()
    }

    /// The limits in force.
    pub fn config(&self) -> &SessionLimits {
        self.reader.limits()
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
        self.receive_pooled(input, &mut ())
    }

    /// [`Session::receive`], assembling data messages in buffers lent by `pool`.
    ///
    /// When a data frame starts and the message buffer has no room for it, the session asks
    /// `pool` for a buffer that has (and gives the smaller one back). An event loop lends the
    /// buffers of payloads it has finished writing this way, so that a message lands in
    /// memory that is already mapped: filling fresh pages (page faults and zeroing) cost more
    /// than half the time of a 16 MiB echo and a fifth of a 64 KiB one (`benches/e2e`, rows 3
    /// and 2b).
    pub(crate) fn receive_pooled<P: Recycle>(
        &mut self,
        input: &[u8],
        pool: &mut P,
    ) -> Result<(), ProtocolError> {
        if input.is_empty() || !self.reading() {
            return Ok(());
        }
        match self
            .reader
            .read(input, pool, &mut self.extensions, &mut self.events)
        {
            Ok(closed) => {
                if closed {
                    if let Some(Event::Close(close)) = self.events.back() {
                        self.closing.record_received(close.clone());
                    }
                }
                Ok(())
            }
            Err(error) => {
                self.fail_with(error);
                Err(error)
            }
        }
    }

    /// Bytes of the incoming data message held so far (its payload as received, or inflated);
    /// 0 between messages. What an I/O layer charges this session against a memory budget.
    pub fn buffered_bytes(&self) -> usize {
        self.reader.held()
    }

    /// The most the incoming message may hold from now on, for an I/O layer that shares a
    /// memory budget among sessions (the server's `ServerConfig::memory_budget`); default
    /// unlimited (only [`SessionLimits`] apply). A data frame whose payload would take the
    /// message past it is refused from its header, before any of its payload is buffered, and
    /// an inflated message is stopped as it inflates past it: the connection fails with 1013
    /// Try Again Later ([`ProtocolError::Overloaded`]). Lowering it below what the message
    /// already holds fails the message at its next frame.
    pub fn set_receive_allowance(&mut self, bytes: usize) {
        self.reader.set_allowance(bytes);
    }

    /// The peer closed its side of the TCP stream. Without a prior Close frame this is an
    /// abnormal closure (1006, §7.1.5), which the caller reads from
    /// [`Session::close_received`] being `None`.
    pub fn receive_eof(&mut self) {
        if self.reading() {
            log::debug!("{:?}: TCP closed without a Close frame (1006)", self.role());
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
            if let Some(close) = self.closing.take_failing_close() {
                if self.closing.sent().is_none() {
                    self.write_close(close);
                }
            }
            return None;
        };
        match &event {
            // RFC 6455 §5.5.2: a Ping is answered with a Pong carrying the same payload,
            // unless we already sent a Close (§5.5.1: it is our last frame).
            Event::Ping(payload) if self.may_send() => {
                self.writer
                    .write_frame(Opcode::Control(ControlOpcode::Pong), true, 0, payload);
            }
            // RFC 6455 §5.5.1: if we have not sent a Close, we MUST answer with one,
            // typically echoing the status code received (an empty Close for none).
            Event::Close(close) if self.may_send() => {
                self.write_close(CloseFrame::new(close.code, ""));
            }
            _ => {}
        }
        Some(event)
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
        if self.events.is_empty() {
            self.fail_for(error.close_code(), error.reason(), Some(error));
        } else {
            // Stop reading now; send the Close once the earlier events are taken.
            let close = CloseFrame::new(error.close_code(), error.reason());
            self.closing.fail_after_events(error, close);
            self.reader.abandon(&mut self.extensions);
        }
    }

    // ----- Output ------------------------------------------------------------------------

    /// Bytes waiting to be written to the peer, oldest first.
    pub fn output(&self) -> &[u8] {
        self.writer.output()
    }

    /// Forget the first `n` bytes of [`Session::output`] (they were written).
    pub fn consume_output(&mut self, n: usize) {
        self.writer.consume_output(n);
    }

    /// Take all waiting output, leaving none.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.writer.take_output()
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
        self.check_may_send()?;
        self.writer
            .send_message(kind, data, frame_size, &mut self.extensions)
    }

    /// A whole data message as a header and the payload to send after it, for a server
    /// that queues payloads without copying them: the bytes of `message` themselves, or,
    /// when permessage-deflate is on, their compressed form with RSV1 set. Servers only. The
    /// I/O layer's hook, hidden from the docs.
    #[doc(hidden)]
    pub fn frame_message(
        &mut self,
        message: Message,
    ) -> Result<(EncodedHeader, Vec<u8>), SendError> {
        self.check_may_frame()?;
        self.writer.frame_message(message, &mut self.extensions)
    }

    /// The header for a data frame whose payload the caller sends itself, so that a payload
    /// (or one shared by many connections) is never copied to be framed. Servers only: a
    /// client's payload must be masked. Frames with `fin == false` start or continue a
    /// fragmented message; the one with `fin == true` ends it. The I/O layer's hook, hidden
    /// from the docs.
    #[doc(hidden)]
    pub fn data_frame_header(
        &mut self,
        kind: DataOpcode,
        fin: bool,
        payload_len: usize,
    ) -> Result<EncodedHeader, SendError> {
        self.check_may_frame()?;
        self.writer.data_frame_header(kind, fin, payload_len)
    }

    /// The checks before a frame whose payload is not masked here: a server's only, and free
    /// to send.
    fn check_may_frame(&self) -> Result<(), SendError> {
        if self.role() == Role::Client {
            return Err(SendError::MaskingRequired);
        }
        self.check_may_send()
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

    /// Whether a whole data message may be sent now: no Close sent, TCP open, and no
    /// fragmented message of ours in progress.
    pub fn can_send(&self) -> bool {
        self.may_send() && !self.writer.sending_fragments()
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
        self.check_may_send()?;
        // RFC 6455 §5.5: control frames carry at most 125 bytes.
        if payload.len() > 125 {
            return Err(SendError::ControlFrameTooLong);
        }
        self.writer
            .write_frame(Opcode::Control(op), true, 0, payload);
        Ok(())
    }

    /// Start the closing handshake (§7.1.2). `code` must be sendable (§7.4.1), or
    /// [`CloseCode::NoStatusReceived`] for a Close without a body; a reason longer than 123
    /// bytes is cut at a character boundary.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_may_send()?;
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
        self.fail_for(code, reason, None);
    }

    /// [`Session::fail`], recording the peer's `error` if it broke a rule.
    fn fail_for(&mut self, code: CloseCode, reason: &str, error: Option<ProtocolError>) {
        if self.may_send() {
            let code = if code.is_sendable() {
                code
            } else {
                CloseCode::InternalError
            };
            self.write_close(CloseFrame::new(code, reason));
        }
        self.closing.fail(error);
        self.reader.abandon(&mut self.extensions);
    }

    fn write_close(&mut self, close: CloseFrame) {
        let payload = close_payload(close.code, &close.reason).unwrap_or_default();
        self.writer
            .write_frame(Opcode::Control(ControlOpcode::Close), true, 0, &payload);
        self.closing.record_sent(close);
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

    /// The Close we sent, if any.
    pub fn close_sent(&self) -> Option<&CloseFrame> {
        self.closing.sent()
    }

    /// The Close the peer sent, if any.
    pub fn close_received(&self) -> Option<&CloseFrame> {
        self.closing.received()
    }

    /// The protocol error that failed the connection, if the peer broke a rule.
    pub fn failure(&self) -> Option<ProtocolError> {
        self.closing.failure()
    }

    /// True while the peer is in the middle of something: a frame header or payload only
    /// partly received, or a fragmented message not yet finished. The I/O layer bounds how
    /// long this may last, so that a peer cannot hold a half-sent message (and its buffer)
    /// open for ever while keeping the connection alive with Pings.
    pub fn is_mid_message(&self) -> bool {
        self.reading() && self.reader.is_mid_message()
    }

    /// True from our Close until the TCP stream ends: the I/O layer arms the close-handshake
    /// timeout and closes the socket when it fires (§7.1.1).
    pub fn awaiting_close(&self) -> bool {
        self.closing.sent().is_some() && !self.eof
    }

    /// Whether the I/O layer should close the TCP connection once the output is flushed:
    /// the server after both Close frames (RFC 6455 §7.1.1), either end at once after a
    /// failure (§7.1.7) or the peer's end of TCP.
    pub fn should_close_tcp(&self) -> bool {
        self.closing.should_close_tcp(self.role(), self.eof)
    }

    /// The capacity of the buffer of the message being read, for tests of what is held.
    #[cfg(test)]
    pub(super) fn message_buf_capacity(&self) -> usize {
        self.reader.message_buf_capacity()
    }

    /// Whether both Close frames have passed: ours was sent and the peer's received (§7.1.1:
    /// the closing handshake is complete).
    pub fn close_handshake_done(&self) -> bool {
        self.closing.sent().is_some() && self.closing.received().is_some()
    }
}

/// permessage-deflate: the session's one switch on the `deflate` feature.
#[cfg(feature = "deflate")]
impl Session {
    /// Turn on permessage-deflate (RFC 7692) with the parameters the handshake agreed on
    /// (see [`crate::deflate::negotiate`]), before any frame is exchanged. From then on
    /// messages we send are compressed (those of at least `config.threshold` bytes), and
    /// messages the peer marks with RSV1 are inflated, the size limits applying to the
    /// inflated size.
    pub fn set_deflate(
        &mut self,
        negotiated: crate::deflate::Negotiated,
        config: &crate::deflate::DeflateConfig,
    ) {
        self.extensions = Extensions::deflate(self.role(), negotiated, config);
    }

    /// The permessage-deflate parameters in force, if the extension was negotiated.
    pub fn deflate(&self) -> Option<&crate::deflate::Negotiated> {
        self.extensions.negotiated()
    }
}
