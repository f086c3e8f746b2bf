//! The output path: encoding what we send.
//!
//! Owns: the output buffer, masking every frame a client sends with a fresh key from its key
//! source (§5.3, §10.3), fragmenting a message (§5.4) and compressing it first when an
//! extension says so (RFC 7692 §6.1), and the order of our own fragments (by the rule in
//! `rules.rs`).
//! Must not: decide whether sending is allowed in the closing handshake (the session checks
//! that before calling here), or read input.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::send_error::SendError;

use crate::extensions::Extensions;
use crate::frame::{DataOpcode, EncodedHeader, FrameHeader, Opcode, Role, RSV1};
use crate::mask::{apply_mask, MaskKeys};

use super::message::Message;
use super::rules::next_fragment;

/// How our frames are masked, which is what our role decides (§5.1).
pub(super) enum Masking {
    /// A server sends unmasked frames.
    Server,
    /// A client masks each frame with the next key of its source.
    Client(Box<dyn MaskKeys + Send>),
}

/// The sending half of a session.
pub(super) struct Writer {
    masking: Masking,
    out: Vec<u8>,
    /// We are in the middle of sending a fragmented message.
    sending_fragments: bool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("role", &self.role())
            .field("pending_output", &self.out.len())
            .field("sending_fragments", &self.sending_fragments)
            .finish()
    }
}

impl Writer {
    pub(super) fn new(masking: Masking) -> Writer {
        Writer {
            masking,
            out: Vec::new(),
            sending_fragments: false,
        }
    }

    /// The role our masking belongs to.
    pub(super) fn role(&self) -> Role {
        match self.masking {
            Masking::Server => Role::Server,
            Masking::Client(_) => Role::Client,
        }
    }

    pub(super) fn output(&self) -> &[u8] {
        &self.out
    }

    pub(super) fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    pub(super) fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Whether a fragmented message of ours is in progress.
    pub(super) fn sending_fragments(&self) -> bool {
        self.sending_fragments
    }

    /// A whole message, compressed first if the extensions say so, in frames of at most
    /// `frame_size` bytes.
    pub(super) fn send_message(
        &mut self,
        kind: DataOpcode,
        data: &[u8],
        frame_size: usize,
        extensions: &mut Extensions,
    ) -> Result<(), SendError> {
        if kind == DataOpcode::Continuation || self.sending_fragments {
            return Err(SendError::FragmentationOrder);
        }
        match extensions.compress(data) {
            // RFC 7692 §6.1: the message is compressed as a whole, then fragmented; RSV1
            // marks its first frame only.
            Some(compressed) => self.write_fragments(kind, RSV1, &compressed, frame_size),
            None => self.write_fragments(kind, 0, data, frame_size),
        }
        Ok(())
    }

    fn write_fragments(&mut self, kind: DataOpcode, rsv: u8, data: &[u8], frame_size: usize) {
        let mut chunks = data.chunks(frame_size);
        let first = chunks.next().unwrap_or(&[]);
        let mut opcode = Opcode::Data(kind);
        let mut current = first;
        let mut rsv = rsv;
        for next in chunks {
            self.write_frame(opcode, false, rsv, current);
            opcode = Opcode::Data(DataOpcode::Continuation);
            current = next;
            rsv = 0;
        }
        self.write_frame(opcode, true, rsv, current);
    }

    /// Check that a data frame whose payload the caller sends itself may start: a server's
    /// (a client's payload must be masked), in fragment order (§5.4). Then it counts as sent.
    fn start_data_frame(&mut self, kind: DataOpcode, fin: bool) -> Result<(), SendError> {
        self.sending_fragments = next_fragment(kind, fin, self.sending_fragments)?;
        Ok(())
    }

    /// A server's data frame header for a payload the caller sends itself.
    pub(super) fn data_frame_header(
        &mut self,
        kind: DataOpcode,
        fin: bool,
        payload_len: usize,
    ) -> Result<EncodedHeader, SendError> {
        self.start_data_frame(kind, fin)?;
        let header = FrameHeader::new(fin, Opcode::Data(kind), payload_len as u64);
        self.trace_sent(&header, None);
        Ok(header.encode())
    }

    /// A whole message as one server frame: its header, and the payload to send after it
    /// (the message's bytes, or their compressed form with RSV1 set).
    pub(super) fn frame_message(
        &mut self,
        message: Message,
        extensions: &mut Extensions,
    ) -> Result<(EncodedHeader, Vec<u8>), SendError> {
        self.start_data_frame(message.opcode(), true)?;
        let opcode = Opcode::Data(message.opcode());
        let (header, payload) = match extensions.compress(message.as_bytes()) {
            Some(compressed) => {
                let mut header = FrameHeader::new(true, opcode, compressed.len() as u64);
                // RFC 7692 §6: RSV1 marks a compressed message.
                header.rsv = RSV1;
                self.trace_sent(&header, Some(message.len()));
                (header, compressed)
            }
            None => {
                let header = FrameHeader::new(true, opcode, message.len() as u64);
                self.trace_sent(&header, None);
                (header, message.into_bytes())
            }
        };
        Ok((header.encode(), payload))
    }

    /// Encode one frame into the output, masking it for a client (§5.3).
    pub(super) fn write_frame(&mut self, opcode: Opcode, fin: bool, rsv: u8, payload: &[u8]) {
        let mask = match &mut self.masking {
            // RFC 6455 §5.3: a fresh, unpredictable key for every frame a client sends.
            Masking::Client(keys) => Some(keys.next_key()),
            Masking::Server => None,
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        self.trace_sent(&header, None);
        self.out.extend_from_slice(header.encode().as_bytes());
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key, 0);
        }
    }

    /// Log a frame as it goes on the wire; `inflated`: the message's size before compression.
    fn trace_sent(&self, h: &FrameHeader, inflated: Option<usize>) {
        // Checked first: the fields below would be gathered for every frame sent otherwise.
        if !log::log_enabled!(log::Level::Trace) {
            return;
        }
        let (role, name, masked) = (self.role(), h.opcode.name(), h.mask.is_some());
        let (fin, rsv, len) = (h.fin, h.rsv, h.payload_len);
        match inflated {
            Some(before) => log::trace!(
                "{role:?} -> frame {name} fin={fin} rsv={rsv:03b} masked={masked} len={len} \
                 (compressed from {before} bytes)"
            ),
            None => {
                log::trace!(
                    "{role:?} -> frame {name} fin={fin} rsv={rsv:03b} masked={masked} len={len}"
                )
            }
        }
    }
}
