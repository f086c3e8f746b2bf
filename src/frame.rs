//! The frame header codec (RFC 6455 §5.2).
//!
//! Owns: the bit layout of a frame header, decoding it incrementally from a slice and encoding
//! it into a fixed 14-byte buffer, so that a payload never has to be copied to be framed.
//! Also owns [`Role`], which end of a connection an endpoint is: it decides which frames are
//! masked (§5.1).
//! Must not: look at payloads, buffer anything, or judge whether a header is allowed in the
//! current state (masking direction, RSV bits, fragmentation): that is the session's job.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use crate::error::ProtocolError;

/// Which end of the connection an endpoint is. It decides the masking rules (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// Opcodes of data frames (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataOpcode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
}

/// Opcodes of control frames (§5.5). Control frames have the high bit of the opcode set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlOpcode {
    /// 0x8: starts or answers the closing handshake.
    Close,
    /// 0x9: asks for a Pong.
    Ping,
    /// 0xA: answers a Ping, or is an unsolicited heartbeat.
    Pong,
}

/// A frame's opcode, split by kind so that the rules for control frames are checked through
/// the type (a "fragmented control frame" is a `Control` opcode with FIN clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// Text, Binary or Continuation.
    Data(DataOpcode),
    /// Close, Ping or Pong.
    Control(ControlOpcode),
}

impl Opcode {
    /// The 4-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Data(DataOpcode::Continuation) => 0x0,
            Opcode::Data(DataOpcode::Text) => 0x1,
            Opcode::Data(DataOpcode::Binary) => 0x2,
            Opcode::Control(ControlOpcode::Close) => 0x8,
            Opcode::Control(ControlOpcode::Ping) => 0x9,
            Opcode::Control(ControlOpcode::Pong) => 0xA,
        }
    }

    /// The opcode for a 4-bit value.
    ///
    /// RFC 6455 §5.2: 0x3-0x7 are reserved for further non-control frames and 0xB-0xF for
    /// further control frames; receiving one fails the connection.
    pub fn from_bits(bits: u8) -> Result<Opcode, ProtocolError> {
        Ok(match bits {
            0x0 => Opcode::Data(DataOpcode::Continuation),
            0x1 => Opcode::Data(DataOpcode::Text),
            0x2 => Opcode::Data(DataOpcode::Binary),
            0x8 => Opcode::Control(ControlOpcode::Close),
            0x9 => Opcode::Control(ControlOpcode::Ping),
            0xA => Opcode::Control(ControlOpcode::Pong),
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The name the RFC uses.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Data(DataOpcode::Continuation) => "continuation",
            Opcode::Data(DataOpcode::Text) => "text",
            Opcode::Data(DataOpcode::Binary) => "binary",
            Opcode::Control(ControlOpcode::Close) => "close",
            Opcode::Control(ControlOpcode::Ping) => "ping",
            Opcode::Control(ControlOpcode::Pong) => "pong",
        }
    }

    /// True for Close, Ping and Pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Control(_))
    }

    /// True for Text, Binary and Continuation.
    pub fn is_data(self) -> bool {
        matches!(self, Opcode::Data(_))
    }
}

/// RSV1 in [`FrameHeader::rsv`]: reserved (§5.2) unless an extension defines it, as
/// permessage-deflate does for "this message is compressed" (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// The largest header: 2 bytes, 8 bytes of extended length and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded (or to be encoded) frame header.
///
/// ```
/// use wsloop::frame::{DataOpcode, Decoded, FrameHeader, Opcode};
/// // RFC 6455 §5.7: a masked "Hello" from a client.
/// let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let Ok(Decoded::Header(header, len)) = FrameHeader::decode(&bytes) else { panic!() };
/// assert_eq!(len, 6);
/// assert!(header.fin);
/// assert_eq!(header.opcode, Opcode::Data(DataOpcode::Text));
/// assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(header.payload_len, 5);
/// // Encoding gives the same 6 bytes back.
/// assert_eq!(header.encode().as_bytes(), &bytes[..6]);
/// // Two bytes are not enough to know a masked header's length: ask for the rest.
/// assert_eq!(FrameHeader::decode(&bytes[..2]), Ok(Decoded::NeedMore(4)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 is 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, present exactly when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// The result of decoding from a slice that may hold only part of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The slice holds this many bytes too few; call again with at least that many more.
    NeedMore(usize),
    /// A whole header, which took this many bytes of the slice.
    Header(FrameHeader, usize),
}

/// Which of the three length forms a header uses (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthForm {
    /// 0-125, in the 7-bit field.
    Short,
    /// 126 in the 7-bit field, then a 16-bit length.
    Extended16,
    /// 127 in the 7-bit field, then a 64-bit length.
    Extended64,
}

impl LengthForm {
    /// The minimal form for a length (§5.2: "the minimal number of bytes MUST be used").
    pub fn for_len(len: u64) -> LengthForm {
        if len <= 125 {
            LengthForm::Short
        } else if len <= u16::MAX as u64 {
            LengthForm::Extended16
        } else {
            LengthForm::Extended64
        }
    }

    /// Bytes of extended length after the first two header bytes.
    pub fn extra_bytes(self) -> usize {
        match self {
            LengthForm::Short => 0,
            LengthForm::Extended16 => 2,
            LengthForm::Extended64 => 8,
        }
    }
}

impl FrameHeader {
    /// A header for a frame sent by a server (unmasked).
    pub fn new(fin: bool, opcode: Opcode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decode a header from the start of `buf`.
    ///
    /// Fails only on what no state can make valid: a reserved opcode and a 64-bit length
    /// with its most significant bit set. Non-minimal length encodings are accepted: §5.2
    /// obliges the sender to be minimal, and rejecting them protects nothing.
    pub fn decode(buf: &[u8]) -> Result<Decoded, ProtocolError> {
        if buf.len() < 2 {
            return Ok(Decoded::NeedMore(2 - buf.len()));
        }
        let (b0, b1) = (buf[0], buf[1]);
        let opcode = Opcode::from_bits(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let form = match b1 & 0x7f {
            126 => LengthForm::Extended16,
            127 => LengthForm::Extended64,
            _ => LengthForm::Short,
        };
        let len = 2 + form.extra_bytes() + if masked { 4 } else { 0 };
        if buf.len() < len {
            return Ok(Decoded::NeedMore(len - buf.len()));
        }
        let payload_len = match form {
            LengthForm::Short => u64::from(b1 & 0x7f),
            LengthForm::Extended16 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            LengthForm::Extended64 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(bytes);
                // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
                if n >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                n
            }
        };
        let mask = masked.then(|| {
            let at = 2 + form.extra_bytes();
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Decoded::Header(
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0x07,
                opcode,
                mask,
                payload_len,
            },
            len,
        ))
    }

    /// The length form this header is encoded with.
    pub fn length_form(&self) -> LengthForm {
        LengthForm::for_len(self.payload_len)
    }

    /// Encode into a fixed buffer, always in the minimal length form.
    pub fn encode(&self) -> EncodedHeader {
        let mut buf = [0u8; MAX_HEADER_LEN];
        buf[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        match self.length_form() {
            LengthForm::Short => buf[1] = mask_bit | self.payload_len as u8,
            LengthForm::Extended16 => {
                buf[1] = mask_bit | 126;
                buf[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
                len = 4;
            }
            LengthForm::Extended64 => {
                buf[1] = mask_bit | 127;
                buf[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
                len = 10;
            }
        }
        if let Some(key) = self.mask {
            buf[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        EncodedHeader {
            buf,
            len: len as u8,
        }
    }
}

/// An encoded header: up to 14 bytes on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHeader {
    buf: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHeader {
    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl AsRef<[u8]> for EncodedHeader {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::decode(bytes).unwrap() {
            Decoded::Header(h, n) => (h, n),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn rfc_5_7_single_frame_unmasked_text() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = decode_all(&bytes);
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, Opcode::Data(DataOpcode::Text));
        assert_eq!(h.mask, None);
        assert_eq!(h.payload_len, 5);
        assert_eq!(&bytes[n..], b"Hello");
        assert_eq!(h.encode().as_bytes(), &bytes[..2]);
    }

    #[test]
    fn rfc_5_7_single_frame_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = decode_all(&bytes);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = bytes[n..].to_vec();
        crate::mask::apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        assert_eq!(h.encode().as_bytes(), &bytes[..6]);
    }

    #[test]
    fn rfc_5_7_fragmented_text() {
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        let (h1, _) = decode_all(&first);
        let (h2, _) = decode_all(&second);
        assert!(!h1.fin);
        assert_eq!(h1.opcode, Opcode::Data(DataOpcode::Text));
        assert!(h2.fin);
        assert_eq!(h2.opcode, Opcode::Data(DataOpcode::Continuation));
    }

    #[test]
    fn rfc_5_7_ping_and_masked_pong() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, _) = decode_all(&ping);
        assert_eq!(h.opcode, Opcode::Control(ControlOpcode::Ping));
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, _) = decode_all(&pong);
        assert_eq!(h.opcode, Opcode::Control(ControlOpcode::Pong));
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn rfc_5_7_256_byte_and_64_kib_binary_headers() {
        let h256 = FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 256);
        assert_eq!(h256.encode().as_bytes(), &[0x82, 0x7e, 0x01, 0x00]);
        let h64k = FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 65536);
        assert_eq!(
            h64k.encode().as_bytes(),
            &[0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(decode_all(h256.encode().as_bytes()).0, h256);
        assert_eq!(decode_all(h64k.encode().as_bytes()).0, h64k);
    }

    #[test]
    fn minimal_length_form_at_the_edges() {
        for (len, header_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            let h = FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), len);
            assert_eq!(h.encode().as_bytes().len(), header_len, "len {len}");
            assert_eq!(decode_all(h.encode().as_bytes()).0.payload_len, len);
        }
    }

    #[test]
    fn asks_for_exactly_the_missing_bytes() {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Data(DataOpcode::Binary),
            mask: Some([1, 2, 3, 4]),
            payload_len: 70000,
        };
        let bytes = h.encode();
        let bytes = bytes.as_bytes();
        assert_eq!(bytes.len(), 14);
        for cut in 0..bytes.len() {
            let want = if cut < 2 { 2 - cut } else { 14 - cut };
            assert_eq!(
                FrameHeader::decode(&bytes[..cut]),
                Ok(Decoded::NeedMore(want))
            );
        }
        assert_eq!(decode_all(bytes), (h, 14));
    }

    #[test]
    fn top_bit_of_64_bit_length_is_a_protocol_error() {
        let mut bytes = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err(ProtocolError::InvalidPayloadLength)
        );
        bytes[2] = 0x7f;
        assert!(matches!(
            FrameHeader::decode(&bytes),
            Ok(Decoded::Header(_, 10))
        ));
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for bits in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | bits, 0]),
                Err(ProtocolError::ReservedOpcode(bits))
            );
        }
    }

    #[test]
    fn rsv_bits_are_decoded_and_encoded() {
        let (h, _) = decode_all(&[0xf2, 0x00]);
        assert_eq!(h.rsv, 0b111);
        assert_eq!(h.encode().as_bytes(), &[0xf2, 0x00]);
        let (h, _) = decode_all(&[0x42, 0x00]);
        assert_eq!(h.rsv, 0b100);
        assert!(!h.fin);
    }
}
