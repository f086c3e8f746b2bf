//! The frame header codec: decoding arbitrary bytes never panics, and whatever decodes
//! re-encodes, in the minimal length form, to a header that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::error::ProtocolError;
use wsloop::frame::{Decoded, FrameHeader, LengthForm, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    match FrameHeader::decode(data) {
        Ok(Decoded::Header(h, used)) => {
            assert!((2..=MAX_HEADER_LEN).contains(&used) && used <= data.len());
            assert!(h.rsv < 8);
            assert!(h.payload_len >> 63 == 0);
            let encoded = h.encode();
            let bytes = encoded.as_bytes();
            assert_eq!(
                FrameHeader::decode(bytes),
                Ok(Decoded::Header(h, bytes.len()))
            );
            // §5.2: "the minimal number of bytes MUST be used to encode the length".
            let minimal = 2
                + LengthForm::for_len(h.payload_len).extra_bytes()
                + if h.mask.is_some() { 4 } else { 0 };
            assert_eq!(bytes.len(), minimal);
            // The decoder accepts non-minimal forms, so the input is never shorter...
            assert!(minimal <= used);
            // ...and when it was minimal, encoding gives back exactly the input's bytes.
            if minimal == used {
                assert_eq!(bytes, &data[..used]);
            }
        }
        Ok(Decoded::NeedMore(missing)) => {
            assert!(missing > 0 && data.len() + missing <= MAX_HEADER_LEN);
            // With exactly the missing bytes the answer is final: a header of that length
            // or an error, never another request for more.
            let mut padded = data.to_vec();
            padded.resize(data.len() + missing, 0);
            match FrameHeader::decode(&padded) {
                Ok(Decoded::Header(_, used)) => assert_eq!(used, padded.len()),
                Ok(Decoded::NeedMore(n)) => panic!("asked for {missing}, then for {n} more"),
                Err(_) => {}
            }
        }
        Err(ProtocolError::ReservedOpcode(bits)) => {
            assert!(data.len() >= 2);
            assert_eq!(bits, data[0] & 0x0f);
            assert!(matches!(bits, 0x3..=0x7 | 0xb..=0xf));
        }
        Err(ProtocolError::InvalidPayloadLength) => {
            assert!(data.len() >= 10);
            assert_eq!(data[1] & 0x7f, 127);
            assert!(data[2] & 0x80 != 0);
        }
        Err(other) => panic!("the codec does not judge {other:?}"),
    }
});
