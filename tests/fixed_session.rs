//! `FixedSession` (no allocator, payloads in chunks) against `Session`: the same answers to
//! every input (property tests over generated frame sequences cut into random pieces, with
//! the driver shared with the `differential` fuzz target), and the behaviours issue 20 names.

use proptest::prelude::*;
use wsloop::close::CloseCode;
use wsloop::frame::{ControlOpcode, DataOpcode, FrameHeader, Opcode, Role};
use wsloop::session::{FixedEvent, FixedSession, SendError, SessionLimits, MIN_CHUNK};
use wsloop::ProtocolError;

#[path = "common/differential.rs"]
mod differential;

use differential::{run_fixed, run_session, Scenario};

/// One frame as a peer of `role` would send it, or breaking a rule now and then.
fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8], out: &mut Vec<u8>) {
    let opcode = Opcode::from_bits(opcode).unwrap_or(Opcode::Data(DataOpcode::Binary));
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    out.extend_from_slice(header.encode().as_bytes());
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        wsloop::mask::apply_mask(&mut out[start..], key, 0);
    }
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Text, often multi-byte, so that chunks and fragments cut characters.
        "[a-zé€𝄞 ]{0,120}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..300),
        // A Close body: a code and a reason.
        (1000u16..1016, "[a-z]{0,10}").prop_map(|(c, r)| {
            let mut b = c.to_be_bytes().to_vec();
            b.extend_from_slice(r.as_bytes());
            b
        }),
    ]
}

/// A frame spec: fin, rsv, opcode, whether it is masked the right way for the role, payload.
type Spec = (bool, u8, u8, bool, Vec<u8>);

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::bool::weighted(0.7),
        prop_oneof![9 => Just(0u8), 1 => 0u8..8],
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            0u8..16
        ],
        prop::bool::weighted(0.95),
        payload(),
    )
}

fn encode(role: Role, specs: &[Spec]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, (fin, rsv, opcode, right_mask, payload)) in specs.iter().enumerate() {
        // A server receives masked frames, a client unmasked ones (§5.1).
        let masked = (role == Role::Server) == *right_mask;
        let key = [i as u8, 0x5a, 0xa5, 0x3c];
        frame(
            *fin,
            *rsv,
            *opcode,
            masked.then_some(key),
            payload,
            &mut bytes,
        );
    }
    bytes
}

fn cut<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (piece, after) = rest.split_at(n.clamp(1, rest.len()));
        pieces.push(piece);
        rest = after;
        i += 1;
    }
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fixed_session_answers_every_input_as_session_does(
        client in any::<bool>(),
        specs in proptest::collection::vec(spec(), 0..12),
        garbage in proptest::collection::vec(any::<u8>(), 0..8),
        sizes in proptest::collection::vec(1usize..400, 1..6),
        max_message_size in prop_oneof![Just(64usize << 20), 0usize..1500],
        frame_limit in prop_oneof![Just(None), (0usize..600).prop_map(Some)],
        chunk in MIN_CHUNK..400,
        close_after in proptest::option::of(0usize..8),
        eof in any::<bool>(),
    ) {
        let role = if client { Role::Client } else { Role::Server };
        let mut bytes = encode(role, &specs);
        bytes.extend_from_slice(&garbage);
        let limits = SessionLimits {
            max_frame_size: frame_limit.unwrap_or(max_message_size),
            max_message_size,
        };
        let scenario = Scenario {
            role,
            limits,
            pieces: cut(&bytes, &sizes),
            chunk,
            close_after,
            eof,
        };
        prop_assert_eq!(run_fixed(&scenario), run_session(&scenario));
    }
}

fn server() -> FixedSession {
    FixedSession::server(SessionLimits::default())
}

/// Feed `input` whole, collecting every event and the output.
fn feed(s: &mut FixedSession, mut input: &[u8], chunk: &mut [u8]) -> Vec<(FixedEvent, Vec<u8>)> {
    let mut events = Vec::new();
    while !input.is_empty() {
        let read = s.read(input, chunk).expect("valid input");
        input = &input[read.used..];
        if let Some(event) = read.event {
            let len = match event {
                FixedEvent::Data { len, .. }
                | FixedEvent::Ping { len }
                | FixedEvent::Pong { len }
                | FixedEvent::Close { len, .. } => len,
            };
            events.push((event, chunk[..len].to_vec()));
        }
        s.consume_output(usize::MAX);
    }
    events
}

#[test]
fn a_message_larger_than_the_chunk_arrives_in_chunks_with_a_ping_between_fragments() {
    let text = "é".repeat(150); // 300 bytes: a chunk of 125 ends inside a character
    let mut bytes = Vec::new();
    frame(
        false,
        0,
        1,
        Some([1, 2, 3, 4]),
        &text.as_bytes()[..200],
        &mut bytes,
    );
    frame(true, 0, 9, Some([5, 6, 7, 8]), b"hi", &mut bytes);
    frame(
        true,
        0,
        0,
        Some([9, 9, 9, 9]),
        &text.as_bytes()[200..],
        &mut bytes,
    );
    let mut s = server();
    let mut chunk = [0u8; MIN_CHUNK];
    let events = feed(&mut s, &bytes, &mut chunk);
    let data = |len, last| FixedEvent::Data {
        kind: DataOpcode::Text,
        len,
        last,
    };
    let kinds: Vec<FixedEvent> = events.iter().map(|(e, _)| *e).collect();
    assert_eq!(
        kinds,
        [
            data(125, false),
            data(75, false),
            FixedEvent::Ping { len: 2 },
            data(100, true)
        ]
    );
    let joined: Vec<u8> = events
        .iter()
        .filter(|(e, _)| matches!(e, FixedEvent::Data { .. }))
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(joined, text.as_bytes());
}

#[test]
fn invalid_utf8_fails_at_its_byte_before_the_message_ends() {
    // A fragmented text message whose first fragment ends in a surrogate's first two bytes
    // (ED A0): invalid at once, though the message goes on.
    let mut bytes = Vec::new();
    frame(false, 0, 1, Some([1, 2, 3, 4]), b"ok\xed\xa0", &mut bytes);
    let mut s = server();
    let mut chunk = [0u8; MIN_CHUNK];
    assert_eq!(s.read(&bytes, &mut chunk), Err(ProtocolError::InvalidUtf8));
    // §7.1.7: the Close with 1007 is in the output, and nothing more is read.
    assert_eq!(s.output(), b"\x88\x0f\x03\xefinvalid UTF-8");
    assert_eq!(s.failure(), Some(ProtocolError::InvalidUtf8));
    assert!(s.should_close_tcp());
    let read = s.read(b"\x81\x80\0\0\0\0", &mut chunk).unwrap();
    assert_eq!(read.event, None);
}

#[test]
fn a_message_over_the_limit_is_1009_from_its_header() {
    let limits = SessionLimits {
        max_frame_size: 1000,
        max_message_size: 1000,
    };
    let mut s = FixedSession::server(limits);
    let mut chunk = [0u8; MIN_CHUNK];
    // The second fragment's header announces 600 bytes after 500: refused before its payload.
    let mut bytes = Vec::new();
    frame(false, 0, 2, Some([1, 2, 3, 4]), &[7; 500], &mut bytes);
    let events = feed(&mut s, &bytes, &mut chunk);
    assert_eq!(events.len(), 4);
    let header = FrameHeader {
        mask: Some([0; 4]),
        ..FrameHeader::new(true, Opcode::Data(DataOpcode::Continuation), 600)
    };
    assert_eq!(
        s.read(header.encode().as_bytes(), &mut chunk),
        Err(ProtocolError::MessageTooLarge)
    );
    assert_eq!(&s.output()[..4], b"\x88\x13\x03\xf1");
}

#[test]
fn a_close_is_answered_and_the_handshake_completes() {
    let mut s = server();
    let mut chunk = [0u8; MIN_CHUNK];
    let mut bytes = Vec::new();
    frame(true, 0, 8, Some([1, 2, 3, 4]), b"\x03\xe9gone", &mut bytes);
    let read = s.read(&bytes, &mut chunk).unwrap();
    assert_eq!(
        read.event,
        Some(FixedEvent::Close {
            code: CloseCode::GoingAway,
            len: 4
        })
    );
    assert_eq!(&chunk[..4], b"gone");
    // §5.5.1: the answer echoes the code.
    assert_eq!(s.output(), b"\x88\x02\x03\xe9");
    // While the answer waits, nothing is read; after it, input is discarded.
    assert_eq!(s.read(b"xyz", &mut chunk).unwrap().used, 3);
    assert!(s.should_close_tcp());
    assert_eq!(s.close_sent(), Some(CloseCode::GoingAway));
}

#[test]
fn replies_keep_their_order_before_frames_the_caller_sends() {
    let mut s = server();
    let mut chunk = [0u8; MIN_CHUNK];
    let mut bytes = Vec::new();
    frame(true, 0, 9, Some([1, 2, 3, 4]), b"p", &mut bytes);
    s.read(&bytes, &mut chunk).unwrap();
    // The Pong waits; `read` takes nothing until it is written...
    assert_eq!(s.read(&bytes, &mut chunk).unwrap().used, 0);
    // ...and `send` writes it first.
    let mut out = [0u8; 16];
    let n = s.send(DataOpcode::Binary, true, b"d", &mut out).unwrap();
    assert_eq!(&out[..n], b"\x8a\x01p\x82\x01d");
    assert!(s.output().is_empty());
    assert_eq!(
        s.send(DataOpcode::Binary, true, &[0; 20], &mut out),
        Err(SendError::BufferTooSmall)
    );
    assert_eq!(
        s.send(DataOpcode::Continuation, true, b"", &mut out),
        Err(SendError::FragmentationOrder)
    );
    assert_eq!(s.read(&[0x81, 0x80], &mut [0u8; 124]).unwrap().used, 0);
}

#[test]
fn the_failing_close_always_finds_room_in_the_output() {
    let mut s = server();
    s.ping(&[1; 125]).unwrap();
    s.ping(&[2; 125]).unwrap();
    // A third would leave no room for the Close that fails the connection.
    assert_eq!(s.ping(b""), Err(SendError::BufferTooSmall));
    s.fail(CloseCode::PolicyViolation, "policy");
    let out = s.output();
    assert_eq!(out.len(), 2 * 127 + 10);
    assert_eq!(&out[254..], b"\x88\x08\x03\xf0policy");
    assert!(s.should_close_tcp());
}

#[test]
fn a_client_masks_with_keys_from_a_borrowed_rng_without_send_or_static() {
    // An RNG that lives on the stack and is only borrowed: no Box, no Send, no 'static.
    let mut state = 0x1234_5678u32;
    let rng = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let count = rng.clone();
    let keys = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        count.set(count.get() + 1);
        state.to_le_bytes()
    };
    let mut c = FixedSession::client(SessionLimits::default(), keys);
    let mut out = [0u8; 32];
    let n = c.send(DataOpcode::Text, true, b"Hello", &mut out).unwrap();
    assert_eq!(out[1], 0x85, "masked, 5 bytes");
    let mut payload = out[6..n].to_vec();
    let key = [out[2], out[3], out[4], out[5]];
    wsloop::mask::apply_mask(&mut payload, key, 0);
    assert_eq!(payload, b"Hello");
    c.ping(b"").unwrap();
    assert_eq!(
        c.output()[0],
        0x80 | Opcode::Control(ControlOpcode::Ping).bits()
    );
    assert_eq!(rng.get(), 2, "one fresh key per frame");
}
