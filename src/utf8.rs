//! Incremental UTF-8 validation for text messages (RFC 6455 §5.6, §8.1).
//!
//! Owns: the state between pieces of one text message (at most three bytes of an unfinished
//! code point). Must not: buffer the message or allocate.
//!
//! §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte
//! stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
//! Connection_." We fail fast: the first byte that makes the stream invalid is reported at
//! once, even when it arrives in the middle of a frame, and a code point may be split anywhere
//! between frames and reads. The work is done by `core::str::from_utf8`, whose
//! `Utf8Error::error_len` tells an invalid sequence (`Some`) from one that is merely cut off at
//! the end of the input (`None`).

/// The input is not UTF-8: a close with 1007 (Invalid frame payload data) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream that arrives in pieces.
///
/// ```
/// use wsloop::utf8::{InvalidUtf8, Utf8Validator};
/// let euro = "€".as_bytes(); // three bytes
/// let mut v = Utf8Validator::new();
/// v.feed(&euro[..1]).unwrap(); // a code point may be split anywhere
/// v.feed(&euro[1..]).unwrap();
/// assert_eq!(v.finish(), Ok(()));
/// // A surrogate fails at its second byte, before the frame is over.
/// let mut v = Utf8Validator::new();
/// v.feed(b"\xed").unwrap();
/// assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The leading bytes of a code point cut off by the end of the last piece.
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Self {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Validate the next piece. Fails as soon as the bytes seen so far cannot be the start of
    /// valid UTF-8, whatever follows.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        // First finish the code point left over from the previous piece, byte by byte.
        while self.partial_len > 0 {
            let Some((&byte, rest)) = input.split_first() else {
                return Ok(());
            };
            input = rest;
            self.partial[self.partial_len as usize] = byte;
            self.partial_len += 1;
            match core::str::from_utf8(&self.partial[..self.partial_len as usize]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {} // still incomplete, and a code point has at most 4 bytes
            }
        }
        match core::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                Some(_) => Err(InvalidUtf8),
                None => {
                    // A valid prefix of a code point at the very end: keep it (1 to 3 bytes).
                    let tail = &input[e.valid_up_to()..];
                    self.partial[..tail.len()].copy_from_slice(tail);
                    self.partial_len = tail.len() as u8;
                    Ok(())
                }
            },
        }
    }

    /// The stream ends here: it is valid only if no code point is left unfinished.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Forget everything and start a new stream.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// True while a code point is cut off at the end of what was fed. For tests and fuzzing
    /// ([`Utf8Validator::finish`] is the check a caller needs).
    #[doc(hidden)]
    pub fn is_incomplete(&self) -> bool {
        self.partial_len > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_split(bytes: &[u8], splits: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &end in splits {
            v.feed(&bytes[start..end])?;
            start = end;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn accepts_a_code_point_split_at_every_position() {
        let text = "aé€𝄞z κόσμε";
        let bytes = text.as_bytes();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                assert_eq!(validate_split(bytes, &[a, b]), Ok(()), "split {a} {b}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time_matches_std() {
        let samples: [&[u8]; 8] = [
            b"hello",
            "κόσμε".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xf0\x9f\x98",
            b"\xef\xbf\xbf",
        ];
        for sample in samples {
            let mut v = Utf8Validator::new();
            let mut ok = true;
            for &byte in sample {
                if v.feed(&[byte]).is_err() {
                    ok = false;
                    break;
                }
            }
            ok = ok && v.finish().is_ok();
            assert_eq!(ok, core::str::from_utf8(sample).is_ok(), "{sample:?}");
        }
    }

    #[test]
    fn fails_at_the_first_invalid_byte_before_the_end() {
        // \xce\xba is κ; then \xed\xa0\x80 is a UTF-16 surrogate, invalid at \xa0.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xce\xba").is_ok());
        assert!(
            v.feed(b"\xed").is_ok(),
            "a lone lead byte may still be valid"
        );
        assert_eq!(
            v.feed(b"\xa0"),
            Err(InvalidUtf8),
            "a surrogate fails at once"
        );
    }

    #[test]
    fn rejects_code_points_above_u10ffff_at_the_second_byte() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xf4").is_ok());
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn an_unfinished_code_point_at_the_end_is_invalid() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ok\xe2\x82").is_ok());
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        v.reset();
        assert_eq!(v.finish(), Ok(()));
    }
}
