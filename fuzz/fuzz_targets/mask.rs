//! Masking: the word-at-a-time `apply_mask`, applied piece by piece, equals the byte loop of
//! RFC 6455 §5.3 applied at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::mask::{apply_mask, apply_mask_naive};

fuzz_target!(|input: &[u8]| {
    // Control: the key, the starting offset, then the piece sizes.
    let (ctrl, data) = wsloop_fuzz::control::<9>(input);
    let key = [ctrl[0], ctrl[1], ctrl[2], ctrl[3]];
    let offset = usize::from(ctrl[4]);

    let mut expected = data.to_vec();
    let expected_next = apply_mask_naive(&mut expected, key, offset);
    assert_eq!(expected_next, (offset + data.len()) % 4);

    let mut fast = data.to_vec();
    let mut next = offset;
    let mut start = 0;
    for piece in wsloop_fuzz::pieces(data, &ctrl[5..]) {
        let end = start + piece.len();
        next = apply_mask(&mut fast[start..end], key, next);
        assert!(next < 4, "the returned offset is reduced");
        start = end;
    }
    // (With no data there are no pieces, and `next` is still the unreduced `offset`.)
    assert_eq!(next % 4, expected_next);
    assert_eq!(fast, expected);

    // Masking is an involution.
    apply_mask(&mut fast, key, offset);
    assert_eq!(fast, data);
});
