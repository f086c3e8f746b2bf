//! Incremental UTF-8 validation, differential against `core::str::from_utf8`: the same verdict
//! over any split, and an invalid byte reported in the piece that brings it (fail fast).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::utf8::Utf8Validator;

fuzz_target!(|input: &[u8]| {
    let (ctrl, data) = wsloop_fuzz::control::<4>(input);
    let mut validator = Utf8Validator::new();
    // The piece (start, end) whose `feed` failed.
    let mut failed = None;
    let mut start = 0;
    for piece in wsloop_fuzz::pieces(data, &ctrl) {
        let end = start + piece.len();
        if validator.feed(piece).is_err() {
            failed = Some((start, end));
            break;
        }
        start = end;
    }
    let valid = failed.is_none() && validator.finish().is_ok();

    match core::str::from_utf8(data) {
        Ok(_) => {
            assert!(valid);
            assert!(!validator.is_incomplete());
        }
        Err(e) => {
            assert!(!valid);
            match e.error_len() {
                // Cut off at the end: no piece can be blamed, only `finish`.
                None => {
                    assert_eq!(failed, None);
                    assert!(validator.is_incomplete());
                }
                Some(len) => {
                    let (start, end) = failed.expect("invalid UTF-8 that feed accepted");
                    // Not before an invalid byte was fed, and no later than the byte that
                    // decides it: the last of the `error_len` bytes, or the one after them.
                    assert!(end > e.valid_up_to());
                    let decisive = (e.valid_up_to() + len).min(data.len() - 1);
                    assert!(start <= decisive, "{start}..{end}, decisive {decisive}");
                }
            }
        }
    }
});
