//! Unit tests of the session: one per rule, named after what they check.

use super::*;
use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::frame::{DataOpcode, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use alloc::vec;
use alloc::vec::Vec;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a client sends it (masked with KEY).
fn client_frame(bits: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    raw_frame(bits, fin, 0, Some(KEY), payload)
}

/// Any frame, even an invalid one: opcode bits, FIN, RSV bits, mask.
fn raw_frame(bits: u8, fin: bool, rsv: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | bits];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n <= 125 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    let body = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        let _ = start;
        apply_mask(&mut out[body..], key, 0);
    }
    out
}

fn server() -> Session {
    Session::new(Role::Server, SessionLimits::default())
}

fn events(s: &mut Session) -> Vec<Event> {
    core::iter::from_fn(|| s.next_event()).collect()
}

fn text(t: &str) -> Event {
    Event::Message(Message::Text(t.into()))
}

fn binary(b: &[u8]) -> Event {
    Event::Message(Message::Binary(b.to_vec()))
}

/// Feed `bytes` to a fresh server; return the result, the events and the output.
fn feed(bytes: &[u8]) -> (Result<(), ProtocolError>, Vec<Event>, Vec<u8>) {
    let mut s = server();
    let r = s.receive(bytes);
    let ev = events(&mut s);
    (r, ev, s.take_output())
}

fn close_frame_bytes(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    raw_frame(0x8, true, 0, None, &p)
}

/// The server's failing Close for an error, as bytes.
fn failing_close(error: ProtocolError) -> Vec<u8> {
    close_frame_bytes(u16::from(error.close_code()), error.reason())
}

fn assert_fails(bytes: &[u8], error: ProtocolError) {
    let (r, _, out) = feed(bytes);
    assert_eq!(r, Err(error));
    assert!(out.ends_with(&failing_close(error)), "{out:x?}");
}

#[test]
fn rfc_5_7_masked_hello() {
    let (r, ev, out) = feed(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    assert_eq!(r, Ok(()));
    assert_eq!(ev, [text("Hello")]);
    assert!(out.is_empty());
}

#[test]
fn rfc_5_7_unmasked_hello_reaches_a_client() {
    let mut c = Session::client(SessionLimits::default(), Box::new(|| KEY));
    c.receive(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        .unwrap();
    assert_eq!(events(&mut c), [text("Hello")]);
}

#[test]
fn rfc_5_7_fragmented_hel_lo() {
    let mut bytes = client_frame(0x1, false, b"Hel");
    bytes.extend(client_frame(0x0, true, b"lo"));
    let (r, ev, _) = feed(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(ev, [text("Hello")]);
}

#[test]
fn ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let (r, ev, out) = feed(&client_frame(0x9, true, b"Hello"));
    assert_eq!(r, Ok(()));
    assert_eq!(ev, [Event::Ping(b"Hello".to_vec())]);
    // RFC 6455 §5.7: the unmasked Pong "Hello".
    assert_eq!(out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn pong_is_reported_and_not_answered() {
    let (r, ev, out) = feed(&client_frame(0xa, true, b"hb"));
    assert_eq!(r, Ok(()));
    assert_eq!(ev, [Event::Pong(b"hb".to_vec())]);
    assert!(out.is_empty());
}

#[test]
fn server_sends_the_rfc_256_byte_and_64_kib_headers() {
    let mut s = server();
    s.send_binary(&[0u8; 256]).unwrap();
    assert_eq!(&s.output()[..4], &[0x82, 0x7e, 0x01, 0x00]);
    assert_eq!(s.output().len(), 4 + 256);
    let mut s = server();
    s.send_binary(&vec![0u8; 65536]).unwrap();
    assert_eq!(
        &s.output()[..10],
        &[0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
}

#[test]
fn binary_messages_of_every_length_form() {
    for len in [0usize, 1, 125, 126, 65535, 65536, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let (r, ev, _) = feed(&client_frame(0x2, true, &payload));
        assert_eq!(r, Ok(()), "len {len}");
        assert_eq!(ev, [binary(&payload)], "len {len}");
    }
}

#[test]
fn one_byte_at_a_time_gives_the_same_events() {
    let mut bytes = client_frame(0x1, false, "κό".as_bytes());
    bytes.extend(client_frame(0x9, true, b"mid"));
    bytes.extend(client_frame(0x0, true, "σμε".as_bytes()));
    bytes.extend(client_frame(0x2, true, &[7u8; 300]));
    let (_, whole, whole_out) = feed(&bytes);
    let mut s = server();
    for b in &bytes {
        s.receive(core::slice::from_ref(b)).unwrap();
    }
    assert_eq!(events(&mut s), whole);
    assert_eq!(s.take_output(), whole_out);
    assert_eq!(
        whole,
        [
            Event::Ping(b"mid".to_vec()),
            text("κόσμε"),
            binary(&[7u8; 300])
        ]
    );
}

#[test]
fn server_requires_masked_frames() {
    assert_fails(
        &raw_frame(0x1, true, 0, None, b"hi"),
        ProtocolError::UnmaskedFrameFromClient,
    );
}

#[test]
fn client_rejects_masked_frames() {
    let mut c = Session::client(SessionLimits::default(), Box::new(|| [1, 2, 3, 4]));
    assert_eq!(
        c.receive(&client_frame(0x1, true, b"hi")),
        Err(ProtocolError::MaskedFrameFromServer)
    );
    // The client's failing Close is masked with its key.
    let out = c.take_output();
    let len = 2 + ProtocolError::MaskedFrameFromServer.reason().len() as u8;
    assert_eq!(&out[..2], &[0x88, 0x80 | len]);
    let mut payload = out[6..].to_vec();
    apply_mask(&mut payload, [1, 2, 3, 4], 0);
    assert_eq!(&payload[..2], &1002u16.to_be_bytes());
}

#[test]
fn reserved_bits_are_a_protocol_error() {
    for rsv in 1..8 {
        assert_fails(
            &raw_frame(0x1, true, rsv, Some(KEY), b"x"),
            ProtocolError::ReservedBitsSet,
        );
    }
}

#[test]
fn reserved_opcodes_are_a_protocol_error() {
    for bits in [3u8, 7, 0xb, 0xf] {
        assert_fails(
            &client_frame(bits, true, b""),
            ProtocolError::ReservedOpcode(bits),
        );
    }
}

#[test]
fn control_frames_over_125_bytes_are_a_protocol_error() {
    assert_fails(
        &client_frame(0x9, true, &[0u8; 126]),
        ProtocolError::ControlFrameTooLong,
    );
    let (r, _, _) = feed(&client_frame(0x9, true, &[0u8; 125]));
    assert_eq!(r, Ok(()));
}

#[test]
fn fragmented_control_frames_are_a_protocol_error() {
    assert_fails(
        &client_frame(0x9, false, b"x"),
        ProtocolError::FragmentedControlFrame,
    );
}

#[test]
fn continuation_without_a_message_is_a_protocol_error() {
    assert_fails(
        &client_frame(0x0, true, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
}

#[test]
fn new_message_inside_a_fragmented_one_is_a_protocol_error() {
    let mut bytes = client_frame(0x1, false, b"a");
    bytes.extend(client_frame(0x2, true, b"b"));
    assert_fails(&bytes, ProtocolError::ExpectedContinuation);
}

#[test]
fn control_frames_are_allowed_inside_a_fragmented_message() {
    let mut bytes = client_frame(0x2, false, b"ab");
    bytes.extend(client_frame(0x9, true, b"p"));
    bytes.extend(client_frame(0xa, true, b"q"));
    bytes.extend(client_frame(0x0, false, b"cd"));
    bytes.extend(client_frame(0x0, true, b"ef"));
    let (r, ev, out) = feed(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        ev,
        [
            Event::Ping(b"p".to_vec()),
            Event::Pong(b"q".to_vec()),
            binary(b"abcdef")
        ]
    );
    assert_eq!(out, [0x8a, 0x01, b'p']);
}

#[test]
fn invalid_utf8_fails_fast_inside_a_frame() {
    // A 1000-byte frame whose 4th byte is invalid: only its first 10 bytes have arrived.
    let mut payload = b"abc\xff".to_vec();
    payload.resize(1000, b'a');
    let bytes = client_frame(0x1, true, &payload);
    let mut s = server();
    let header_len = 2 + 2 + 4;
    assert_eq!(
        s.receive(&bytes[..header_len + 10]),
        Err(ProtocolError::InvalidUtf8)
    );
    assert!(s
        .output()
        .ends_with(&failing_close(ProtocolError::InvalidUtf8)));
    // Everything after the failure is discarded.
    assert_eq!(s.receive(&bytes[header_len + 10..]), Ok(()));
    assert_eq!(s.next_event(), None);
}

#[test]
fn invalid_utf8_fails_in_the_first_fragment() {
    let bytes = client_frame(0x1, false, b"\xce\xba\xed\xa0\x80");
    assert_fails(&bytes, ProtocolError::InvalidUtf8);
}

#[test]
fn invalid_utf8_in_a_whole_single_frame_is_1007() {
    assert_fails(
        &client_frame(0x1, true, b"\xc0\xaf"),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn a_code_point_split_between_fragments_is_valid() {
    let euro = "€".as_bytes();
    let mut bytes = client_frame(0x1, false, &euro[..1]);
    bytes.extend(client_frame(0x0, false, &euro[1..2]));
    bytes.extend(client_frame(0x0, true, &euro[2..]));
    let (r, ev, _) = feed(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(ev, [text("€")]);
}

#[test]
fn a_text_message_ending_inside_a_code_point_is_1007() {
    let euro = "€".as_bytes();
    let mut bytes = client_frame(0x1, false, b"ok");
    bytes.extend(client_frame(0x0, true, &euro[..2]));
    assert_fails(&bytes, ProtocolError::InvalidUtf8);
}

#[test]
fn top_bit_of_the_64_bit_length_is_a_protocol_error() {
    let mut bytes = vec![0x82, 0xff];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    assert_fails(&bytes, ProtocolError::InvalidPayloadLength);
}

#[test]
fn close_is_echoed_and_reported() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let mut s = server();
    s.receive(&client_frame(0x8, true, &payload)).unwrap();
    assert_eq!(
        events(&mut s),
        [Event::Close(CloseFrame::new(
            CloseCode::NormalClosure,
            "bye"
        ))]
    );
    assert_eq!(s.take_output(), close_frame_bytes(1000, ""));
    assert_eq!(s.state(), State::Closing);
    assert!(s.should_close_tcp(), "the server closes TCP first (§7.1.1)");
    s.receive_eof();
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let (r, ev, out) = feed(&client_frame(0x8, true, b""));
    assert_eq!(r, Ok(()));
    assert_eq!(
        ev,
        [Event::Close(CloseFrame::new(
            CloseCode::NoStatusReceived,
            ""
        ))]
    );
    assert_eq!(out, [0x88, 0x00]);
}

#[test]
fn one_byte_close_payload_is_a_protocol_error() {
    assert_fails(
        &client_frame(0x8, true, b"\x03"),
        ProtocolError::InvalidCloseFrame,
    );
}

#[test]
fn invalid_close_codes_are_protocol_errors() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        assert_fails(
            &client_frame(0x8, true, &code.to_be_bytes()),
            ProtocolError::InvalidCloseCode(code),
        );
    }
    for code in [1000u16, 1003, 1007, 1014, 3000, 4999] {
        let (r, _, out) = feed(&client_frame(0x8, true, &code.to_be_bytes()));
        assert_eq!(r, Ok(()), "code {code}");
        assert_eq!(out, close_frame_bytes(code, ""));
    }
}

#[test]
fn close_reason_must_be_utf8() {
    assert_fails(
        &client_frame(0x8, true, b"\x03\xe8\xff"),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn input_after_a_close_is_discarded() {
    let mut bytes = client_frame(0x8, true, &1000u16.to_be_bytes());
    bytes.extend(client_frame(0x1, true, b"late"));
    bytes.extend(client_frame(0x9, true, b"late"));
    let (r, ev, out) = feed(&bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        ev,
        [Event::Close(CloseFrame::new(CloseCode::NormalClosure, ""))]
    );
    assert_eq!(out, close_frame_bytes(1000, ""));
}

#[test]
fn our_close_then_theirs_completes_the_handshake() {
    let mut s = server();
    s.close(CloseCode::GoingAway, "restart").unwrap();
    assert_eq!(s.take_output(), close_frame_bytes(1001, "restart"));
    assert!(s.awaiting_close());
    assert!(!s.should_close_tcp());
    assert_eq!(s.send_text("no"), Err(SendError::Closing));
    assert_eq!(s.ping(b""), Err(SendError::Closing));
    assert_eq!(
        s.close(CloseCode::NormalClosure, ""),
        Err(SendError::Closing)
    );
    // Data that was in flight is still delivered; a Ping is not answered any more.
    s.receive(&client_frame(0x1, true, b"in flight")).unwrap();
    s.receive(&client_frame(0x9, true, b"")).unwrap();
    s.receive(&client_frame(0x8, true, &1001u16.to_be_bytes()))
        .unwrap();
    assert!(
        s.output().is_empty(),
        "no second Close, no Pong after our Close"
    );
    assert_eq!(
        events(&mut s),
        [
            text("in flight"),
            Event::Ping(vec![]),
            Event::Close(CloseFrame::new(CloseCode::GoingAway, ""))
        ]
    );
    assert!(s.should_close_tcp());
}

#[test]
fn a_client_waits_for_the_server_to_close_tcp() {
    let mut c = Session::client(SessionLimits::default(), Box::new(|| KEY));
    c.close(CloseCode::NormalClosure, "").unwrap();
    c.receive(&close_frame_bytes(1000, "")).unwrap();
    assert!(!c.should_close_tcp(), "§7.1.1: the server closes first");
    assert!(c.awaiting_close(), "the client arms its close timeout");
    c.receive_eof();
    assert!(c.should_close_tcp());
    assert!(!c.awaiting_close());
}

#[test]
fn close_refuses_codes_that_must_not_be_sent() {
    let mut s = server();
    for code in [1005u16, 1006, 1015, 1004, 2000] {
        let code = CloseCode::from(code);
        if code == CloseCode::NoStatusReceived {
            continue;
        }
        assert_eq!(s.close(code, ""), Err(SendError::InvalidCloseCode));
    }
    s.close(CloseCode::NoStatusReceived, "ignored").unwrap();
    assert_eq!(s.output(), [0x88, 0x00]);
}

#[test]
fn fail_sends_the_code_and_discards_input() {
    let mut s = server();
    s.fail(CloseCode::PolicyViolation, "write queue full");
    assert_eq!(s.take_output(), close_frame_bytes(1008, "write queue full"));
    assert!(s.should_close_tcp());
    s.receive(&client_frame(0x1, true, b"ignored")).unwrap();
    assert_eq!(s.next_event(), None);
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut s = server();
    s.receive(&client_frame(0x1, false, b"half")).unwrap();
    s.receive_eof();
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.close_received(), None);
    assert!(s.should_close_tcp());
    assert_eq!(s.send_text("x"), Err(SendError::Closing));
}

/// A key source that is not a closure, as an RNG peripheral's driver would be.
struct Counter(u8);

impl crate::mask::MaskKeys for Counter {
    fn next_key(&mut self) -> [u8; 4] {
        self.0 += 1;
        [self.0, 0xa0, 0xb0, 0xc0]
    }
}

#[test]
fn a_client_masks_every_frame_data_or_control_with_its_sources_keys() {
    let mut c = Session::client(SessionLimits::default(), Counter(0));
    assert_eq!(c.role(), Role::Client);
    c.send_text("a").unwrap();
    c.ping(b"p").unwrap();
    c.close(CloseCode::NormalClosure, "").unwrap();
    let out = c.take_output();
    assert_eq!(&out[..7], &[0x81, 0x81, 1, 0xa0, 0xb0, 0xc0, b'a' ^ 1]);
    assert_eq!(&out[7..14], &[0x89, 0x81, 2, 0xa0, 0xb0, 0xc0, b'p' ^ 2]);
    assert_eq!(&out[14..20], &[0x88, 0x82, 3, 0xa0, 0xb0, 0xc0]);
    // The server reads them all back.
    let mut s = server();
    s.receive(&out).unwrap();
    assert_eq!(
        events(&mut s),
        [
            text("a"),
            Event::Ping(b"p".to_vec()),
            Event::Close(CloseFrame::new(CloseCode::NormalClosure, ""))
        ]
    );
}

#[test]
fn a_std_client_masks_with_fresh_keys_from_the_os() {
    let mut c = Session::new(Role::Client, SessionLimits::default());
    c.send_binary(b"").unwrap();
    c.send_binary(b"").unwrap();
    let out = c.take_output();
    assert_eq!(out.len(), 12);
    assert_eq!((out[1], out[7]), (0x80, 0x80), "masked");
    assert_ne!(&out[2..6], &out[8..12], "a fresh key per frame");
}

#[test]
fn client_masks_every_frame_with_a_fresh_key() {
    let keys = [[1u8, 2, 3, 4], [5, 6, 7, 8]];
    let mut n = 0;
    let mut c = Session::client(
        SessionLimits::default(),
        Box::new(move || {
            n += 1;
            keys[(n - 1) % 2]
        }),
    );
    c.send_text("Hello").unwrap();
    c.send_text("Hello").unwrap();
    let out = c.take_output();
    let (a, b) = out.split_at(11);
    assert_eq!(&a[..6], &[0x81, 0x85, 1, 2, 3, 4]);
    assert_eq!(&b[..6], &[0x81, 0x85, 5, 6, 7, 8]);
    assert_ne!(&a[6..], &b[6..]);
    // The server side reads them back.
    let mut s = server();
    s.receive(&out).unwrap();
    assert_eq!(events(&mut s), [text("Hello"), text("Hello")]);
}

#[test]
fn send_fragmented_splits_and_the_peer_reassembles() {
    let mut s = server();
    s.send_fragmented(DataOpcode::Text, "κόσμε".as_bytes(), 3)
        .unwrap();
    let out = s.take_output();
    // 10 bytes in frames of 3: 4 frames, the first Text, then Continuations, FIN on the last.
    assert_eq!(out[0], 0x01);
    assert_eq!(out[5], 0x00);
    assert_eq!(out[10], 0x00);
    assert_eq!(out[15], 0x80);
    let mut c = Session::client(SessionLimits::default(), Box::new(|| KEY));
    c.receive(&out).unwrap();
    assert_eq!(events(&mut c), [text("κόσμε")]);
}

#[test]
fn zero_copy_headers_follow_fragmentation_order() {
    let mut s = server();
    let h = s.data_frame_header(DataOpcode::Binary, false, 3).unwrap();
    assert_eq!(h.as_bytes(), &[0x02, 0x03]);
    assert_eq!(
        s.data_frame_header(DataOpcode::Text, true, 1),
        Err(SendError::FragmentationOrder)
    );
    assert_eq!(s.send_text("x"), Err(SendError::FragmentationOrder));
    let h = s
        .data_frame_header(DataOpcode::Continuation, true, 2)
        .unwrap();
    assert_eq!(h.as_bytes(), &[0x80, 0x02]);
    assert_eq!(
        s.data_frame_header(DataOpcode::Continuation, true, 2),
        Err(SendError::FragmentationOrder)
    );
    let mut c = Session::client(SessionLimits::default(), Box::new(|| KEY));
    assert_eq!(
        c.data_frame_header(DataOpcode::Binary, true, 1),
        Err(SendError::MaskingRequired)
    );
}

#[test]
fn control_payload_limits_on_send() {
    let mut s = server();
    assert_eq!(s.ping(&[0; 126]), Err(SendError::ControlFrameTooLong));
    assert_eq!(s.pong(&[0; 125]), Ok(()));
    // A long close reason is cut so the frame stays within 125 bytes.
    s.close(CloseCode::NormalClosure, &"x".repeat(300)).unwrap();
    let out = s.take_output();
    let close = &out[2 + 125..];
    assert_eq!(close[1] as usize, 125);
}

#[test]
fn events_before_a_violation_are_kept() {
    let mut bytes = client_frame(0x1, true, b"first");
    bytes.extend(client_frame(0x3, true, b""));
    bytes.extend(client_frame(0x1, true, b"never"));
    let (r, ev, _) = feed(&bytes);
    assert_eq!(r, Err(ProtocolError::ReservedOpcode(3)));
    assert_eq!(ev, [text("first")]);
}

#[test]
fn a_split_header_is_completed_across_reads() {
    let bytes = client_frame(0x2, true, &[9u8; 70_000]);
    for cut in 1..MAX_HEADER_LEN {
        let mut s = server();
        s.receive(&bytes[..cut]).unwrap();
        s.receive(&bytes[cut..]).unwrap();
        assert_eq!(events(&mut s), [binary(&[9u8; 70_000])], "cut {cut}");
    }
}

#[test]
fn replies_are_written_when_their_event_is_taken() {
    let mut bytes = client_frame(0x1, true, b"echo me");
    bytes.extend(client_frame(0x9, true, b"p"));
    bytes.extend(client_frame(0x8, true, &1000u16.to_be_bytes()));
    let mut s = server();
    s.receive(&bytes).unwrap();
    assert!(
        s.output().is_empty(),
        "nothing is answered before the events are taken"
    );
    assert_eq!(s.next_event(), Some(text("echo me")));
    s.send_text("echo me").unwrap();
    assert_eq!(s.next_event(), Some(Event::Ping(b"p".to_vec())));
    assert_eq!(
        s.next_event(),
        Some(Event::Close(CloseFrame::new(CloseCode::NormalClosure, "")))
    );
    let mut expected = b"\x81\x07echo me".to_vec();
    expected.extend_from_slice(&[0x8a, 0x01, b'p']);
    expected.extend(close_frame_bytes(1000, ""));
    assert_eq!(s.take_output(), expected);
}

#[test]
fn the_failing_close_waits_for_earlier_events_to_be_taken() {
    // Autobahn 3.2: a valid message, then a frame with RSV set, in one read.
    let mut bytes = client_frame(0x1, true, b"first");
    bytes.extend(raw_frame(0x1, true, 0b010, Some(KEY), b"bad"));
    let mut s = server();
    assert_eq!(s.receive(&bytes), Err(ProtocolError::ReservedBitsSet));
    assert!(s.output().is_empty());
    assert!(
        !s.should_close_tcp(),
        "not before the failing Close is written"
    );
    assert_eq!(s.next_event(), Some(text("first")));
    s.send_text("echo")
        .unwrap_or_else(|_| panic!("the answer still goes out"));
    assert_eq!(s.next_event(), None);
    let mut expected = b"\x81\x04echo".to_vec();
    expected.extend(failing_close(ProtocolError::ReservedBitsSet));
    assert_eq!(s.output(), &expected[..]);
    assert!(s.should_close_tcp());
}

#[test]
fn mid_message_covers_partial_headers_payloads_and_fragments() {
    let mut s = server();
    assert!(!s.is_mid_message());
    let frame = client_frame(0x2, true, b"abcdef");
    s.receive(&frame[..1]).unwrap();
    assert!(s.is_mid_message(), "a partial header");
    s.receive(&frame[1..8]).unwrap();
    assert!(s.is_mid_message(), "a partial payload");
    s.receive(&frame[8..]).unwrap();
    assert!(!s.is_mid_message());
    s.receive(&client_frame(0x1, false, b"a")).unwrap();
    s.receive(&client_frame(0x9, true, b"")).unwrap();
    assert!(
        s.is_mid_message(),
        "a fragmented message, even between frames"
    );
    s.receive(&client_frame(0x0, true, b"b")).unwrap();
    assert!(!s.is_mid_message());
}

#[test]
fn the_failing_close_is_written_even_if_tcp_ended_before_the_events_were_taken() {
    // Found by the session_server fuzz target: error, then EOF, then the events are taken.
    let mut bytes = client_frame(0x1, true, b"first");
    bytes.extend(client_frame(0x3, true, b""));
    let mut s = server();
    assert_eq!(s.receive(&bytes), Err(ProtocolError::ReservedOpcode(3)));
    s.receive_eof();
    assert_eq!(s.next_event(), Some(text("first")));
    assert_eq!(s.next_event(), None);
    assert_eq!(
        s.output(),
        &failing_close(ProtocolError::ReservedOpcode(3))[..]
    );
}

#[cfg(feature = "deflate")]
mod deflate;
mod limits;
mod recycle;
