//! Issue 20's differential check: the fixed-buffer session (`FixedSession`, no allocator,
//! payloads in chunks) answers every input exactly as `Session` does: the same messages and
//! control frames seen, the same bytes written, the same error, the same final state. The
//! driver is `tests/common/differential.rs`, shared with the property tests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::frame::Role;
use wsloop::session::{SessionLimits, MIN_CHUNK};

#[path = "../../tests/common/differential.rs"]
mod differential;

fuzz_target!(|input: &[u8]| {
    // Control: role, limits, chunk size, when the application closes, EOF, piece sizes.
    let (ctrl, data) = wsloop_fuzz::control::<10>(input);
    let role = if ctrl[0] & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let eof = ctrl[0] & 2 != 0;
    let close_after = (ctrl[0] & 4 != 0).then_some(usize::from(ctrl[0] >> 4));
    let max_message_size = match u16::from_le_bytes([ctrl[1], ctrl[2]]) {
        0xffff => 64 << 20,
        n => usize::from(n),
    };
    let max_frame_size = if ctrl[3] >= 0x80 {
        max_message_size
    } else {
        usize::from(ctrl[3]) * 16
    };
    let scenario = differential::Scenario {
        role,
        limits: SessionLimits {
            max_frame_size,
            max_message_size,
        },
        pieces: wsloop_fuzz::pieces(data, &ctrl[5..]),
        chunk: MIN_CHUNK + usize::from(ctrl[4]),
        close_after,
        eof,
    };
    let fixed = differential::run_fixed(&scenario);
    let session = differential::run_session(&scenario);
    assert_eq!(fixed, session);
});
