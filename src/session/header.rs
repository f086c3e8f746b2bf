//! A frame header that arrives in pieces (RFC 6455 §5.2): both sessions read input in any
//! chunking, so a header may be cut anywhere by the end of a read.
//!
//! Owns: [`HeaderBuf`], the at most 14 bytes of a header not yet complete. Must not: judge
//! the header (that is [`check_header`](super::check_header)) or read payloads.

use crate::error::ProtocolError;
use crate::frame::{Decoded, FrameHeader, MAX_HEADER_LEN};

/// The start of a frame header cut off by the end of an input.
#[derive(Debug, Clone, Default)]
pub(super) struct HeaderBuf {
    buf: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBuf {
    /// Whether part of a header is held.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Read (part of) a header from `input`: `Some((header, used))` once it is whole, having
    /// taken `used` bytes of `input`; `None` when all of `input` was taken and more is needed.
    /// Fails on what [`FrameHeader::decode`] refuses (reserved opcodes, a length's top bit).
    pub(super) fn push(
        &mut self,
        input: &[u8],
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        // Usually the whole header is in the input, decoded where it lies. Else the saved
        // start of one is completed: what fits is appended (a header is at most 14 bytes, so
        // 14 held bytes always decode), and of the input the header took the bytes past
        // those already held.
        let held = self.len as usize;
        let bytes = if held == 0 {
            input
        } else {
            self.hold(&input[..input.len().min(MAX_HEADER_LEN - held)]);
            &self.buf[..self.len as usize]
        };
        match FrameHeader::decode(bytes)? {
            Decoded::Header(header, len) => {
                self.len = 0;
                Ok(Some((header, len - held)))
            }
            Decoded::NeedMore(_) => {
                if held == 0 {
                    // A header is at most 14 bytes, so a short input fits.
                    self.hold(input);
                }
                Ok(None)
            }
        }
    }

    /// Append `bytes` (which fit) to the held start of a header.
    fn hold(&mut self, bytes: &[u8]) {
        let held = self.len as usize;
        if let Some(dest) = self.buf.get_mut(held..held + bytes.len()) {
            dest.copy_from_slice(bytes);
            self.len += bytes.len() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_split_at_every_point_decodes_the_same() {
        // A masked frame with a 16-bit length: 8 header bytes.
        let bytes = [0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4];
        let Ok(Decoded::Header(whole, 8)) = FrameHeader::decode(&bytes) else {
            panic!("a whole header")
        };
        for cut in 1..bytes.len() {
            let mut buf = HeaderBuf::default();
            assert_eq!(buf.push(&bytes[..cut]), Ok(None));
            assert!(!buf.is_empty());
            assert_eq!(
                buf.push(&bytes[cut..]),
                Ok(Some((whole, bytes.len() - cut)))
            );
            assert!(buf.is_empty());
        }
    }
}
