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
        if self.len == 0 {
            return match FrameHeader::decode(input)? {
                Decoded::Header(header, len) => Ok(Some((header, len))),
                Decoded::NeedMore(_) => {
                    // A header is at most 14 bytes, so a short input fits.
                    self.buf[..input.len()].copy_from_slice(input);
                    self.len = input.len() as u8;
                    Ok(None)
                }
            };
        }
        // Complete the saved header one missing piece at a time (the length form and the
        // mask bit, once known, say how many more bytes it takes).
        let mut used = 0;
        loop {
            let have = self.len as usize;
            match FrameHeader::decode(&self.buf[..have])? {
                Decoded::NeedMore(n) => {
                    let take = n.min(input.len() - used);
                    if take == 0 {
                        return Ok(None);
                    }
                    self.buf[have..have + take].copy_from_slice(&input[used..used + take]);
                    self.len += take as u8;
                    used += take;
                }
                Decoded::Header(header, _) => {
                    self.len = 0;
                    return Ok(Some((header, used)));
                }
            }
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
