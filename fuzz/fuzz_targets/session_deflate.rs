//! A server session with permessage-deflate (RFC 7692), fed arbitrary bytes in arbitrary
//! pieces, with small limits and every negotiable parameter. It never panics, never holds an
//! inflated message over its limit (however small the compressed input), fails at most once
//! with the matching Close, and what it sends (echoes compressed with its own parameters)
//! inflates back to exactly the messages it echoed in a client session that agreed to the
//! same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::deflate::{DeflateConfig, Negotiated};
use wsloop::frame::{DataOpcode, Decoded, FrameHeader, Opcode};
use wsloop::session::{Event, Message, Role, Session, SessionLimits};

/// RSV1 appears only on the first frame of a data message; nothing else is reserved.
fn check_rsv(mut out: &[u8]) {
    while !out.is_empty() {
        let (h, len) = match FrameHeader::decode(out) {
            Ok(Decoded::Header(h, len)) => (h, len),
            other => panic!("output is not a whole frame: {other:?}"),
        };
        let first_data = matches!(
            h.opcode,
            Opcode::Data(DataOpcode::Text | DataOpcode::Binary)
        );
        assert!(
            h.rsv == 0 || (h.rsv == 0b100 && first_data),
            "rsv {:03b}",
            h.rsv
        );
        let end = len + usize::try_from(h.payload_len).unwrap();
        assert!(end <= out.len(), "a frame cut off");
        out = &out[end..];
    }
}

fuzz_target!(|input: &[u8]| {
    let (ctrl, data) = wsloop_fuzz::control::<8>(input);
    let max_message_size = usize::from(u16::from_le_bytes([ctrl[0], ctrl[1]]));
    let negotiated = Negotiated {
        server_no_context_takeover: ctrl[2] & 1 != 0,
        client_no_context_takeover: ctrl[2] & 2 != 0,
        server_max_window_bits: 8 + (ctrl[2] >> 2) % 8,
        client_max_window_bits: 8 + (ctrl[2] >> 5) % 8,
    };
    let deflate = DeflateConfig {
        level: ctrl[3] % 10,
        threshold: usize::from(ctrl[3] >> 4) * 4,
        ..DeflateConfig::default()
    };
    let drain_each_piece = ctrl[3] & 0x08 != 0;
    let config = SessionLimits {
        max_frame_size: max_message_size,
        max_message_size,
    };
    let mut session = Session::new(Role::Server, config);
    session.set_deflate(negotiated, &deflate);

    let mut output = Vec::new();
    let mut echoed = Vec::new();
    let mut error = None;
    let take = |session: &mut Session, output: &mut Vec<u8>, echoed: &mut Vec<Message>| {
        while let Some(event) = session.next_event() {
            if let Event::Message(message) = event {
                assert!(message.len() <= max_message_size);
                if session.can_send() {
                    let sent = match &message {
                        Message::Text(text) => session.send_text(text),
                        Message::Binary(bytes) => session.send_binary(bytes),
                    };
                    assert!(sent.is_ok());
                    echoed.push(message);
                }
            }
        }
        output.extend(session.take_output());
    };
    for piece in wsloop_fuzz::pieces(data, &ctrl[4..]) {
        if let Err(e) = session.receive(piece) {
            assert!(error.is_none(), "the error is returned once");
            error = Some(e);
        }
        if drain_each_piece {
            take(&mut session, &mut output, &mut echoed);
        }
    }
    take(&mut session, &mut output, &mut echoed);
    check_rsv(&output);

    // A client with the same parameters reads back exactly what was echoed, then the Close
    // that failed the connection, if one did.
    let unlimited = SessionLimits {
        max_frame_size: usize::MAX,
        max_message_size: usize::MAX,
    };
    let mut client = Session::client(unlimited, || [1, 2, 3, 4]);
    client.set_deflate(negotiated, &DeflateConfig::default());
    client.receive(&output).expect("our own output is valid");
    let mut got = Vec::new();
    let mut close = None;
    while let Some(event) = client.next_event() {
        match event {
            Event::Message(m) => got.push(m),
            Event::Close(c) => close = Some(c.code),
            Event::Ping(_) | Event::Pong(_) => {}
        }
    }
    assert_eq!(got, echoed);
    match error {
        Some(e) => {
            assert_eq!(close, Some(e.close_code()));
            assert_eq!(session.failure(), Some(e));
        }
        None => assert_eq!(session.failure(), None),
    }
});
