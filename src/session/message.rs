//! What a session hands to its caller: whole data messages and the other [`Event`]s.
//!
//! Owns: [`Message`] and [`Event`], and the one-frame encoding of a message that a server
//! can share between connections ([`Message::to_server_frame`]). Must not: hold session
//! state.

use alloc::string::String;
use alloc::vec::Vec;

use crate::close::CloseFrame;
use crate::frame::{DataOpcode, FrameHeader, Opcode};

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
