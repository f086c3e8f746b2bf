//! Property tests of the sans-I/O protocol core: the frame codec, masking, UTF-8 validation and
//! the session state machine, each checked against an independent model on generated inputs.
//!
//! Case counts are kept modest so that the whole file runs in a few seconds in debug builds.

use proptest::prelude::*;
use proptest::sample::Index;

use wsloop::close::{CloseCode, CloseFrame};
use wsloop::error::ProtocolError;
use wsloop::frame::{ControlOpcode, DataOpcode, Decoded, FrameHeader, Opcode, MAX_HEADER_LEN};
use wsloop::mask::{apply_mask, apply_mask_naive};
use wsloop::session::{Event, Message, Role, Session, SessionLimits};
use wsloop::utf8::Utf8Validator;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

// ----- Frame header codec -------------------------------------------------------------------

fn opcode() -> impl Strategy<Value = Opcode> {
    prop::sample::select(vec![
        Opcode::Data(DataOpcode::Continuation),
        Opcode::Data(DataOpcode::Text),
        Opcode::Data(DataOpcode::Binary),
        Opcode::Control(ControlOpcode::Close),
        Opcode::Control(ControlOpcode::Ping),
        Opcode::Control(ControlOpcode::Pong),
    ])
}

/// Payload lengths from every length form, with the boundaries between forms well represented.
fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=125,
        126u64..=65_535,
        65_536u64..=(u64::MAX >> 1),
        prop::sample::select(vec![0u64, 125, 126, 65_535, 65_536, u64::MAX >> 1]),
    ]
}

fn frame_header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0u8..8,
        opcode(),
        any::<Option<[u8; 4]>>(),
        payload_len(),
    )
        .prop_map(|(fin, rsv, opcode, mask, payload_len)| FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        })
}

/// The header length RFC 6455 §5.2 prescribes, computed independently of the codec.
fn expected_header_len(h: &FrameHeader) -> usize {
    let extended = if h.payload_len <= 125 {
        0
    } else if h.payload_len <= 0xffff {
        2
    } else {
        8
    };
    2 + extended + if h.mask.is_some() { 4 } else { 0 }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn header_encode_decode_round_trips(h in frame_header(), trailing in prop::collection::vec(any::<u8>(), 0..8)) {
        let encoded = h.encode();
        let bytes = encoded.as_bytes();
        prop_assert_eq!(bytes.len(), expected_header_len(&h));
        prop_assert!(bytes.len() <= MAX_HEADER_LEN);
        prop_assert_eq!(FrameHeader::decode(bytes), Ok(Decoded::Header(h, bytes.len())));
        // Bytes after the header (the payload) are not the decoder's business.
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::decode(&longer), Ok(Decoded::Header(h, bytes.len())));
        // The first byte carries FIN, RSV and the opcode exactly as §5.2 lays them out.
        prop_assert_eq!(bytes[0], (u8::from(h.fin) << 7) | (h.rsv << 4) | h.opcode.bits());
        prop_assert_eq!(bytes[1] & 0x80 != 0, h.mask.is_some());
    }

    #[test]
    fn a_header_prefix_asks_for_exactly_the_missing_bytes(h in frame_header()) {
        let encoded = h.encode();
        let bytes = encoded.as_bytes();
        for cut in 0..bytes.len() {
            let missing = if cut < 2 { 2 - cut } else { bytes.len() - cut };
            prop_assert_eq!(
                FrameHeader::decode(&bytes[..cut]),
                Ok(Decoded::NeedMore(missing)),
                "cut at {}", cut
            );
        }
    }
}

// ----- Masking ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fast_mask_equals_naive_mask_across_any_split(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        offset in 0usize..64,
        cuts in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let mut expected = data.clone();
        let expected_next = apply_mask_naive(&mut expected, key, offset);
        // Independent check of the reference against §5.3's formula.
        for (i, (&plain, &masked)) in data.iter().zip(&expected).enumerate() {
            prop_assert_eq!(masked, plain ^ key[(offset + i) % 4]);
        }
        prop_assert_eq!(expected_next, (offset + data.len()) % 4);

        // The whole buffer at once.
        let mut whole = data.clone();
        prop_assert_eq!(apply_mask(&mut whole, key, offset), expected_next);
        prop_assert_eq!(&whole, &expected);

        // In pieces, each continuing from the offset the previous one returned.
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = data.clone();
        let mut next = offset;
        let mut start = 0;
        for end in points.into_iter().chain([data.len()]) {
            next = apply_mask(&mut pieces[start..end], key, next);
            start = end;
        }
        prop_assert_eq!(next, expected_next);
        prop_assert_eq!(&pieces, &expected);

        // Masking twice restores the data.
        apply_mask(&mut whole, key, offset);
        prop_assert_eq!(whole, data);
    }
}

// ----- UTF-8 validation ---------------------------------------------------------------------

/// Byte strings that are valid, nearly valid, or garbage, built from pieces that exercise the
/// edge cases of UTF-8 (surrogates, overlongs, code points above U+10FFFF, truncations).
fn utf8_candidates() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"\x7f",
        "é".as_bytes(),
        "€".as_bytes(),
        "𝄞".as_bytes(),
        b"\xef\xbf\xbf",     // U+FFFF, valid
        b"\xf4\x8f\xbf\xbf", // U+10FFFF, valid
        b"\xed\x9f\xbf",     // U+D7FF, valid
        b"\xed\xa0\x80",     // a surrogate
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"\xc0\xaf",         // overlong
        b"\xe0\x80\xaf",     // overlong
        b"\xf0\x80\x80\xaf", // overlong
        b"\xe2\x82",         // truncated
        b"\xf0\x9f\x98",     // truncated
        b"\x80",             // lone continuation
        b"\xff",
        b"\xc2",
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        any::<String>().prop_map(String::into_bytes),
        prop::collection::vec(prop::sample::select(pieces), 0..16).prop_map(|parts| parts.concat()),
        (any::<String>(), any::<Index>(), any::<u8>()).prop_map(|(s, at, byte)| {
            let mut bytes = s.into_bytes();
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, byte);
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn utf8_validator_agrees_with_std_and_fails_fast(
        bytes in utf8_candidates(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        points.push(bytes.len());

        let mut validator = Utf8Validator::new();
        // The number of bytes fed when `feed` first failed.
        let mut failed_after = None;
        let mut start = 0;
        for &end in &points {
            if validator.feed(&bytes[start..end]).is_err() {
                failed_after = Some((start, end));
                break;
            }
            start = end;
        }
        let finished = failed_after.is_none() && validator.finish().is_ok();

        match core::str::from_utf8(&bytes) {
            Ok(_) => {
                prop_assert_eq!(failed_after, None);
                prop_assert!(finished);
            }
            Err(e) => {
                prop_assert!(!finished);
                match e.error_len() {
                    // Cut off at the very end: only `finish` can tell.
                    None => prop_assert_eq!(failed_after, None),
                    Some(len) => {
                        let (chunk_start, chunk_end) = failed_after
                            .ok_or_else(|| TestCaseError::fail("feed never failed"))?;
                        // Not before any invalid byte was fed...
                        prop_assert!(chunk_end > e.valid_up_to());
                        // ...and no later than the byte that makes the sequence invalid,
                        // which std reports as ending `valid_up_to + error_len` (it is that
                        // byte itself when the sequence stops there, else the next one).
                        let decisive = (e.valid_up_to() + len).min(bytes.len() - 1);
                        prop_assert!(
                            chunk_start <= decisive,
                            "failed in chunk {}..{}, decisive byte {}", chunk_start, chunk_end, decisive
                        );
                    }
                }
            }
        }
    }
}

// ----- The session: a model of client frames -----------------------------------------------

/// One frame as a client puts it on the wire (before masking).
#[derive(Debug, Clone)]
struct WireFrame {
    bits: u8,
    fin: bool,
    payload: Vec<u8>,
}

/// A control frame a client may send at any time.
#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// What a client sends, at the level of messages.
#[derive(Debug, Clone)]
enum Item {
    Text(String),
    Binary(Vec<u8>),
    Control(Control),
    Fragmented {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<Index>,
        /// Each control frame goes before the fragment its index picks (never before the first).
        controls: Vec<(Index, Control)>,
    },
}

/// The close that may end the stream: none, an empty one, or a code and a reason.
type FinalClose = Option<Option<(u16, String)>>;

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=125)
}

fn control() -> impl Strategy<Value = Control> {
    prop_oneof![
        control_payload().prop_map(Control::Ping),
        control_payload().prop_map(Control::Pong),
    ]
}

/// Binary payloads: mostly short, sometimes long enough for the 16- and 64-bit length forms
/// (generated from a seed so that long ones stay cheap).
fn binary_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (126usize..70_000, any::<u8>()).prop_map(|(len, seed)| {
            (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
        }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        any::<String>().prop_map(Item::Text),
        binary_payload().prop_map(Item::Binary),
        control().prop_map(Item::Control),
        (
            any::<bool>(),
            any::<String>(),
            binary_payload(),
            prop::collection::vec(any::<Index>(), 0..5),
            prop::collection::vec((any::<Index>(), control()), 0..4),
        )
            .prop_map(|(text, s, bin, cuts, controls)| Item::Fragmented {
                text,
                payload: if text { s.into_bytes() } else { bin },
                cuts,
                controls,
            }),
    ]
}

fn sendable_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999]
}

/// A reason of at most 123 bytes (30 characters of at most 4 bytes each).
fn reason() -> impl Strategy<Value = String> {
    "\\PC{0,30}"
}

fn final_close() -> impl Strategy<Value = FinalClose> {
    prop::option::of(prop::option::of((sendable_code(), reason())))
}

fn data_bits(text: bool) -> u8 {
    if text {
        0x1
    } else {
        0x2
    }
}

fn control_frame(c: &Control) -> WireFrame {
    match c {
        Control::Ping(p) => WireFrame {
            bits: 0x9,
            fin: true,
            payload: p.clone(),
        },
        Control::Pong(p) => WireFrame {
            bits: 0xa,
            fin: true,
            payload: p.clone(),
        },
    }
}

/// The frames of a conversation, in order.
fn frames(items: &[Item], close: &FinalClose) -> Vec<WireFrame> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Text(t) => out.push(WireFrame {
                bits: 0x1,
                fin: true,
                payload: t.clone().into_bytes(),
            }),
            Item::Binary(b) => out.push(WireFrame {
                bits: 0x2,
                fin: true,
                payload: b.clone(),
            }),
            Item::Control(c) => out.push(control_frame(c)),
            Item::Fragmented {
                text,
                payload,
                cuts,
                controls,
            } => {
                // Cut points may repeat (empty fragments are legal) and may fall inside a
                // code point (§5.6 applies to the whole message).
                let mut points: Vec<usize> =
                    cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
                points.sort_unstable();
                points.push(payload.len());
                let n = points.len();
                let mut start = 0;
                for (k, &end) in points.iter().enumerate() {
                    if k > 0 {
                        for (at, c) in controls {
                            if n > 1 && 1 + at.index(n - 1) == k {
                                out.push(control_frame(c));
                            }
                        }
                    }
                    out.push(WireFrame {
                        bits: if k == 0 { data_bits(*text) } else { 0x0 },
                        fin: k == n - 1,
                        payload: payload[start..end].to_vec(),
                    });
                    start = end;
                }
            }
        }
    }
    if let Some(close) = close {
        let payload = match close {
            None => Vec::new(),
            Some((code, reason)) => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                p
            }
        };
        out.push(WireFrame {
            bits: 0x8,
            fin: true,
            payload,
        });
    }
    out
}

/// Encode frames by hand (not with the crate's encoder), masked with keys taken in turn.
fn encode(frames: &[WireFrame], keys: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let key = keys.get(i % keys.len().max(1)).copied();
        out.push((u8::from(f.fin) << 7) | f.bits);
        let mask_bit = if key.is_some() { 0x80 } else { 0 };
        let len = f.payload.len();
        if len <= 125 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xffff {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        match key {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(f.payload.iter().enumerate().map(|(j, b)| b ^ key[j % 4]));
            }
            None => out.extend_from_slice(&f.payload),
        }
    }
    out
}

/// What a server must report for these frames, and the bytes it must answer with.
fn expected(frames: &[WireFrame]) -> (Vec<Event>, Vec<u8>) {
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    for f in frames {
        match f.bits {
            0x0..=0x2 => {
                let (text, buf) = message.get_or_insert((f.bits == 0x1, Vec::new()));
                buf.extend_from_slice(&f.payload);
                let text = *text;
                if f.fin {
                    let (_, bytes) = message.take().unwrap();
                    events.push(Event::Message(if text {
                        Message::Text(String::from_utf8(bytes).unwrap())
                    } else {
                        Message::Binary(bytes)
                    }));
                }
            }
            0x9 => {
                events.push(Event::Ping(f.payload.clone()));
                output.extend_from_slice(&[0x8a, f.payload.len() as u8]);
                output.extend_from_slice(&f.payload);
            }
            0xa => events.push(Event::Pong(f.payload.clone())),
            0x8 => {
                let close = if f.payload.is_empty() {
                    CloseFrame::new(CloseCode::NoStatusReceived, "")
                } else {
                    let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                    CloseFrame::new(
                        CloseCode::from(code),
                        core::str::from_utf8(&f.payload[2..]).unwrap(),
                    )
                };
                // The echo carries the code, without a reason; an empty Close gets an empty one.
                output.push(0x88);
                if f.payload.is_empty() {
                    output.push(0);
                } else {
                    output.extend_from_slice(&[2, f.payload[0], f.payload[1]]);
                }
                events.push(Event::Close(close));
            }
            other => unreachable!("no frame with opcode {other}"),
        }
    }
    (events, output)
}

/// Everything a session did with one input: events, output bytes, and the errors returned.
#[derive(Debug, Clone, PartialEq)]
struct Trace {
    events: Vec<Event>,
    output: Vec<u8>,
    errors: Vec<ProtocolError>,
}

/// When the test takes the session's events (and with them, its replies).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drain {
    /// After every piece of input, as an event loop does.
    EachPiece,
    /// Once, after all the input.
    AtEnd,
}

/// Feed `bytes` to a fresh server in pieces of the given sizes (taken in turn; the input in
/// one piece when `sizes` is empty), taking events and output as `drain` says.
///
/// The session writes a Pong or an answering Close when the test takes the Ping or Close
/// event, so the output depends on when events are taken: traces are compared under the
/// same `Drain`.
fn run(bytes: &[u8], config: SessionLimits, sizes: &[usize], drain: Drain) -> Trace {
    let mut session = Session::new(Role::Server, config);
    let mut trace = Trace {
        events: Vec::new(),
        output: Vec::new(),
        errors: Vec::new(),
    };
    let take = |session: &mut Session, trace: &mut Trace| {
        trace
            .events
            .extend(core::iter::from_fn(|| session.next_event()));
        trace.output.extend(session.take_output());
    };
    let mut rest = bytes;
    let mut turn = 0;
    loop {
        let size = if sizes.is_empty() {
            rest.len()
        } else {
            sizes[turn % sizes.len()].max(1)
        };
        turn += 1;
        let (piece, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        if let Err(e) = session.receive(piece) {
            trace.errors.push(e);
        }
        if drain == Drain::EachPiece {
            take(&mut session, &mut trace);
        }
        if rest.is_empty() {
            break;
        }
    }
    take(&mut session, &mut trace);
    trace
}

/// Taking events as they come changes only the replies: a Ping or Close taken before a
/// later frame fails the connection is answered, one still queued then is not (our failing
/// Close is the last frame we send). The events and the error stay the same.
fn same_events_when_drained_each_piece(
    bytes: &[u8],
    config: SessionLimits,
    sizes: &[usize],
    whole: &Trace,
) -> Result<(), TestCaseError> {
    for sizes in [sizes, &[1]] {
        let eager = run(bytes, config, sizes, Drain::EachPiece);
        prop_assert_eq!(&eager.events, &whole.events);
        prop_assert_eq!(&eager.errors, &whole.errors);
        if whole.errors.is_empty() {
            prop_assert_eq!(&eager.output, &whole.output);
        }
    }
    Ok(())
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        prop::collection::vec(1usize..4, 1..8),
        prop::collection::vec(1usize..64, 1..8),
        prop::collection::vec(1usize..4096, 1..8),
    ]
}

fn small_config() -> impl Strategy<Value = SessionLimits> {
    (0usize..4096, 0usize..4096).prop_map(|(frame, message)| SessionLimits {
        max_frame_size: frame,
        max_message_size: message,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_client_frames_give_the_same_events_in_any_chunking(
        items in prop::collection::vec(item(), 0..8),
        close in final_close(),
        keys in prop::collection::vec(any::<[u8; 4]>(), 1..6),
        sizes in chunk_sizes(),
    ) {
        let frames = frames(&items, &close);
        let bytes = encode(&frames, &keys);
        let (events, output) = expected(&frames);

        let whole = run(&bytes, SessionLimits::default(), &[], Drain::AtEnd);
        prop_assert_eq!(&whole.errors, &Vec::<ProtocolError>::new());
        prop_assert_eq!(&whole.events, &events);
        prop_assert_eq!(&whole.output, &output);

        // Nothing fails here, so even the replies do not depend on when events are taken.
        for drain in [Drain::AtEnd, Drain::EachPiece] {
            prop_assert_eq!(&run(&bytes, SessionLimits::default(), &sizes, drain), &whole);
            prop_assert_eq!(&run(&bytes, SessionLimits::default(), &[1], drain), &whole);
        }
    }

    #[test]
    fn arbitrary_bytes_give_the_same_trace_in_any_chunking(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        config in small_config(),
        sizes in chunk_sizes(),
    ) {
        let whole = run(&bytes, config, &[], Drain::AtEnd);
        prop_assert!(whole.errors.len() <= 1);
        let chunked = run(&bytes, config, &sizes, Drain::AtEnd);
        prop_assert!(chunked.errors.len() <= 1, "the error is returned once: {:?}", chunked.errors);
        prop_assert_eq!(&chunked, &whole);
        prop_assert_eq!(&run(&bytes, config, &[1], Drain::AtEnd), &whole);
        same_events_when_drained_each_piece(&bytes, config, &sizes, &whole)?;
    }

    #[test]
    fn damaged_client_streams_give_the_same_trace_in_any_chunking(
        items in prop::collection::vec(item(), 0..6),
        close in final_close(),
        keys in prop::collection::vec(any::<[u8; 4]>(), 1..4),
        damage in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<Index>()),
        config in prop_oneof![Just(SessionLimits::default()), small_config()],
        sizes in chunk_sizes(),
    ) {
        let mut bytes = encode(&frames(&items, &close), &keys);
        if !bytes.is_empty() {
            for (at, value) in &damage {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let whole = run(&bytes, config, &[], Drain::AtEnd);
        prop_assert!(whole.errors.len() <= 1);
        // Whatever went wrong, the session never reports more than it was sent.
        for event in &whole.events {
            if let Event::Message(m) = event {
                prop_assert!(m.len() <= config.max_message_size);
            }
        }
        prop_assert_eq!(&run(&bytes, config, &sizes, Drain::AtEnd), &whole);
        prop_assert_eq!(&run(&bytes, config, &[1], Drain::AtEnd), &whole);
        same_events_when_drained_each_piece(&bytes, config, &sizes, &whole)?;
    }
}

// ----- Server and client sessions talking to each other ---------------------------------------

/// Something one side sends.
#[derive(Debug, Clone)]
enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    Fragmented {
        text: bool,
        payload: Vec<u8>,
        frame_size: usize,
    },
    Ping(Vec<u8>),
    /// Server only: a header from `data_frame_header`, the payload written by the caller.
    ZeroCopy(Vec<u8>),
}

fn outgoing() -> impl Strategy<Value = Outgoing> {
    prop_oneof![
        any::<String>().prop_map(Outgoing::Text),
        binary_payload().prop_map(Outgoing::Binary),
        (any::<bool>(), any::<String>(), binary_payload(), 1usize..64).prop_map(
            |(text, s, bin, frame_size)| Outgoing::Fragmented {
                text,
                payload: if text { s.into_bytes() } else { bin },
                frame_size,
            }
        ),
        control_payload().prop_map(Outgoing::Ping),
        binary_payload().prop_map(Outgoing::ZeroCopy),
    ]
}

/// Keys from a fixed list, in turn (unpredictable enough for a test).
fn key_source(keys: Vec<[u8; 4]>) -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut i = 0;
    move || {
        i += 1;
        keys[(i - 1) % keys.len()]
    }
}

/// Send `items` from `from` and deliver the bytes to `to` in pieces of `sizes`; return the
/// events `from` should have caused at `to`.
fn send_all(from: &mut Session, items: &[Outgoing]) -> (Vec<u8>, Vec<Event>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Outgoing::Text(t) => {
                from.send_text(t).unwrap();
                expected.push(Event::Message(Message::Text(t.clone())));
            }
            Outgoing::Binary(b) => {
                from.send_binary(b).unwrap();
                expected.push(Event::Message(Message::Binary(b.clone())));
            }
            Outgoing::Fragmented {
                text,
                payload,
                frame_size,
            } => {
                let kind = if *text {
                    DataOpcode::Text
                } else {
                    DataOpcode::Binary
                };
                from.send_fragmented(kind, payload, *frame_size).unwrap();
                expected.push(Event::Message(if *text {
                    Message::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::Binary(payload.clone())
                }));
            }
            Outgoing::Ping(p) => {
                from.ping(p).unwrap();
                expected.push(Event::Ping(p.clone()));
            }
            Outgoing::ZeroCopy(b) => {
                if from.role() == Role::Server {
                    // The header is ours to write, after whatever the session queued.
                    let header = from
                        .data_frame_header(DataOpcode::Binary, true, b.len())
                        .unwrap();
                    wire.extend(from.take_output());
                    wire.extend_from_slice(header.as_bytes());
                    wire.extend_from_slice(b);
                } else {
                    assert_masking_required(from, b.len());
                    from.send_binary(b).unwrap();
                }
                expected.push(Event::Message(Message::Binary(b.clone())));
            }
        }
    }
    wire.extend(from.take_output());
    (wire, expected)
}

fn assert_masking_required(client: &mut Session, len: usize) {
    assert_eq!(
        client.data_frame_header(DataOpcode::Binary, true, len),
        Err(wsloop::session::SendError::MaskingRequired)
    );
}

fn deliver(to: &mut Session, bytes: &[u8], sizes: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut turn = 0;
    while !rest.is_empty() {
        let size = sizes[turn % sizes.len()].max(1).min(rest.len());
        turn += 1;
        let (piece, after) = rest.split_at(size);
        rest = after;
        to.receive(piece).unwrap();
        events.extend(core::iter::from_fn(|| to.next_event()));
    }
    events
}

/// `a` sends `items` and then a Close to `b`; `b` answers Pings and the Close; both sides must
/// see exactly what the other sent.
fn converse(
    a: &mut Session,
    b: &mut Session,
    items: &[Outgoing],
    close: (u16, &str),
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let (wire, expected) = send_all(a, items);
    prop_assert_eq!(deliver(b, &wire, sizes), expected);

    // b answered every Ping with a Pong carrying the same payload.
    let pongs: Vec<Event> = items
        .iter()
        .filter_map(|i| match i {
            Outgoing::Ping(p) => Some(Event::Pong(p.clone())),
            _ => None,
        })
        .collect();
    let answer = b.take_output();
    prop_assert_eq!(deliver(a, &answer, sizes), pongs);
    prop_assert!(a.take_output().is_empty(), "a Pong is never answered");

    // The closing handshake: a's Close reaches b, b's echo reaches a.
    a.close(CloseCode::from(close.0), close.1).unwrap();
    prop_assert!(a.awaiting_close());
    let wire = a.take_output();
    prop_assert_eq!(
        deliver(b, &wire, sizes),
        vec![Event::Close(CloseFrame::new(
            CloseCode::from(close.0),
            close.1
        ))]
    );
    let echo = b.take_output();
    prop_assert_eq!(
        deliver(a, &echo, sizes),
        vec![Event::Close(CloseFrame::new(CloseCode::from(close.0), ""))]
    );
    prop_assert!(a.take_output().is_empty());
    prop_assert!(b.take_output().is_empty());
    // §7.1.1: the server closes the TCP connection first.
    for s in [&*a, &*b] {
        prop_assert_eq!(s.should_close_tcp(), s.role() == Role::Server);
        prop_assert!(!s.can_send());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn server_to_client_round_trips_messages(
        items in prop::collection::vec(outgoing(), 0..8),
        keys in prop::collection::vec(any::<[u8; 4]>(), 1..4),
        code in sendable_code(),
        why in reason(),
        sizes in chunk_sizes(),
    ) {
        let mut server = Session::new(Role::Server, SessionLimits::default());
        let mut client = Session::client(SessionLimits::default(), key_source(keys));
        converse(&mut server, &mut client, &items, (code, &why), &sizes)?;
    }

    #[test]
    fn client_to_server_round_trips_messages(
        items in prop::collection::vec(outgoing(), 0..8),
        keys in prop::collection::vec(any::<[u8; 4]>(), 1..4),
        code in sendable_code(),
        why in reason(),
        sizes in chunk_sizes(),
    ) {
        let mut server = Session::new(Role::Server, SessionLimits::default());
        let mut client = Session::client(SessionLimits::default(), key_source(keys));
        converse(&mut client, &mut server, &items, (code, &why), &sizes)?;
    }
}
