//! A server session fed arbitrary bytes in arbitrary pieces, with small limits. It never
//! panics, returns an error at most once, never holds a message over its limit, and everything
//! it writes is a sequence of valid server frames, not much longer than what it was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::close::{CloseCode, CloseFrame};
use wsloop::frame::{ControlOpcode, DataOpcode, Decoded, FrameHeader, Opcode};
use wsloop::session::{Event, Message, Role, Session, SessionLimits};

/// Parse what the server wrote: whole, unmasked frames with RSV 0 (§5.1, §5.2), control
/// frames short and unfragmented (§5.5), a valid Close last of all (§5.5.1). Returns the close
/// code of the Close, if one was sent.
fn check_output(mut out: &[u8]) -> Option<CloseCode> {
    let mut close = None;
    while !out.is_empty() {
        assert!(close.is_none(), "a frame after our Close");
        let (h, len) = match FrameHeader::decode(out) {
            Ok(Decoded::Header(h, len)) => (h, len),
            other => panic!("output is not a whole frame: {other:?}"),
        };
        assert_eq!(h.rsv, 0);
        assert_eq!(h.mask, None, "a server never masks");
        let end = len + usize::try_from(h.payload_len).unwrap();
        assert!(end <= out.len(), "a frame cut off");
        let payload = &out[len..end];
        match h.opcode {
            Opcode::Control(op) => {
                assert!(h.fin && payload.len() <= 125);
                if op == ControlOpcode::Close {
                    let frame = CloseFrame::parse(payload).expect("a valid Close payload");
                    close = Some(frame.code);
                }
            }
            Opcode::Data(DataOpcode::Continuation) => panic!("we never fragment here"),
            Opcode::Data(kind) => {
                assert!(h.fin);
                if kind == DataOpcode::Text {
                    assert!(core::str::from_utf8(payload).is_ok());
                }
            }
        }
        out = &out[end..];
    }
    close
}

fuzz_target!(|input: &[u8]| {
    // Control: the limits, what the "application" does, and the piece sizes.
    let (ctrl, data) = wsloop_fuzz::control::<8>(input);
    let max_message_size = usize::from(u16::from_le_bytes([ctrl[0], ctrl[1]]));
    let max_frame_size = if ctrl[2] >= 0x80 {
        max_message_size
    } else {
        usize::from(ctrl[2]) * 64
    };
    let drain_each_piece = ctrl[3] & 1 != 0;
    let echo = ctrl[3] & 2 != 0;
    let eof_at_end = ctrl[3] & 4 != 0;
    let config = SessionLimits {
        max_frame_size,
        max_message_size,
    };
    let mut session = Session::new(Role::Server, config);

    let mut output = Vec::new();
    let mut error = None;
    let take = |session: &mut Session, output: &mut Vec<u8>| {
        while let Some(event) = session.next_event() {
            match event {
                Event::Message(message) => {
                    assert!(message.len() <= max_message_size);
                    if echo {
                        let sent = match &message {
                            Message::Text(text) => session.send_text(text),
                            Message::Binary(bytes) => session.send_binary(bytes),
                        };
                        assert_eq!(sent.is_ok(), session.can_send());
                    }
                }
                Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
                Event::Close(close) => {
                    assert!(close.code.is_sendable() || close.code == CloseCode::NoStatusReceived);
                    assert!(close.reason.len() <= 123);
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
            take(&mut session, &mut output);
        }
    }
    if eof_at_end {
        session.receive_eof();
    }
    take(&mut session, &mut output);

    let close = check_output(&output);
    if let Some(e) = error {
        // §7.1.7: failing the connection sends a Close with the error's code, then nothing.
        assert_eq!(close, Some(e.close_code()));
        assert_eq!(session.failure(), Some(e));
        assert!(session.should_close_tcp());
    } else {
        assert_eq!(session.failure(), None);
    }
    // Memory and bandwidth stay bounded by what the peer sent: replies and echoes are never
    // longer than the frames that caused them, plus one failing Close.
    assert!(
        output.len() <= data.len() + 256,
        "{} bytes out for {} in",
        output.len(),
        data.len()
    );
});
