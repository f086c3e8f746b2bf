//! permessage-deflate in the session (RFC 7692 §6, §7.2), with the RFC's own examples.

use super::*;
use crate::deflate::{DeflateConfig, Negotiated};

const RSV1: u8 = 0b100;

fn with_deflate(role: Role, negotiated: Negotiated, config: DeflateConfig) -> Session {
    let mut s = Session::new(role, SessionLimits::default());
    s.set_deflate(negotiated, &config);
    s
}

/// zlib's default level, the one the RFC's examples were made with; best for the bombs.
fn level(level: u8) -> DeflateConfig {
    DeflateConfig {
        level,
        ..DeflateConfig::default()
    }
}

fn deflate_client() -> Session {
    with_deflate(
        Role::Client,
        Negotiated::default(),
        DeflateConfig::default(),
    )
}

fn deflate_server() -> Session {
    with_deflate(
        Role::Server,
        Negotiated::default(),
        DeflateConfig::default(),
    )
}

/// Everything a `from` session sent, fed to `to`; the events `to` got.
fn pass(from: &mut Session, to: &mut Session) -> Vec<Event> {
    let bytes = from.take_output();
    to.receive(&bytes).unwrap();
    events(to)
}

#[test]
fn rfc7692_7_2_3_1_hello_inflates() {
    // RFC 7692 §7.2.3.1: "Hello" compressed, unmasked from a server.
    let mut c = deflate_client();
    c.receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_1_fragmented_hello_inflates() {
    // The same message in two frames: RSV1 on the first only.
    let mut c = deflate_client();
    c.receive(&[0x41, 0x03, 0xf2, 0x48, 0xcd]).unwrap();
    c.receive(&[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00]).unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_2_context_takeover_in_both_directions() {
    // §7.2.3.2: the second "Hello" refers back into the first message.
    let mut c = deflate_client();
    c.receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    c.receive(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello"), text("Hello")]);

    // And our compressor at zlib's default level produces exactly those bytes.
    let mut s = with_deflate(Role::Server, Negotiated::default(), level(6));
    s.send_text("Hello").unwrap();
    assert_eq!(
        s.take_output(),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    s.send_text("Hello").unwrap();
    assert_eq!(s.take_output(), [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
}

#[test]
fn rfc7692_7_2_3_3_stored_block_inflates() {
    // §7.2.3.3: DEFLATE with no compression (a stored block).
    let mut c = deflate_client();
    c.receive(&[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ])
    .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_4_final_block_inflates_and_the_next_message_starts_afresh() {
    // §7.2.3.4: a block with BFINAL set; the sender then starts a new stream.
    let mut c = deflate_client();
    c.receive(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])
        .unwrap();
    c.receive(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    assert_eq!(events(&mut c), vec![text("Hello"), text("Hello")]);
}

#[test]
fn masked_compressed_frames_inflate_at_any_chunking() {
    let mut client = deflate_client();
    let body = "order 42: customer is asking, order 42: customer is asking".repeat(20);
    client
        .send_fragmented(DataOpcode::Text, body.as_bytes(), 7)
        .unwrap();
    let bytes = client.take_output();
    for size in [1, 2, 3, 5, 13, 64, 1000] {
        let mut s = deflate_server();
        for chunk in bytes.chunks(size) {
            s.receive(chunk).unwrap();
        }
        assert_eq!(events(&mut s), vec![text(&body)], "chunks of {size}");
    }
}

#[test]
fn compressed_messages_are_smaller_and_marked_with_rsv1_on_the_first_frame_only() {
    let mut s = deflate_server();
    let body = "abcdefgh".repeat(1000);
    s.send_fragmented(DataOpcode::Binary, body.as_bytes(), 10)
        .unwrap();
    let out = s.take_output();
    assert!(out.len() < 200, "{} bytes", out.len());
    assert_eq!(out[0], 0x42, "RSV1 and opcode binary, not final");
    // Every later frame is a continuation without RSV1.
    let mut rest = &out[2 + 10..];
    while !rest.is_empty() {
        assert_eq!(rest[0] & 0x7f, 0x00, "continuation, RSV clear");
        let len = rest[1] as usize;
        rest = &rest[2 + len..];
    }
}

#[test]
fn round_trips_under_every_window_and_context_setting() {
    let messages: Vec<Message> = vec![
        Message::Text(String::new()),
        Message::Text("Hello".into()),
        Message::Binary(vec![0; 100_000]),
        Message::Text("é ∑ 🎉 ".repeat(3000)),
        Message::Binary((0..70_000u32).map(|i| (i * 7919 % 251) as u8).collect()),
        Message::Text("Hello".into()),
    ];
    for bits in [8, 9, 12, 15] {
        for no_takeover in [false, true] {
            let negotiated = Negotiated {
                server_no_context_takeover: no_takeover,
                client_no_context_takeover: no_takeover,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            let config = DeflateConfig::default();
            let mut client = with_deflate(Role::Client, negotiated, config);
            let mut server = with_deflate(Role::Server, negotiated, config);
            for m in &messages {
                match m {
                    Message::Text(t) => client.send_text(t).unwrap(),
                    Message::Binary(b) => client.send_binary(b).unwrap(),
                }
                assert_eq!(
                    pass(&mut client, &mut server),
                    vec![Event::Message(m.clone())]
                );
                let (header, payload) = server.frame_message(m.clone()).unwrap();
                let mut bytes = header.as_bytes().to_vec();
                bytes.extend_from_slice(&payload);
                client.receive(&bytes).unwrap();
                assert_eq!(
                    events(&mut client),
                    vec![Event::Message(m.clone())],
                    "bits {bits}, no takeover {no_takeover}"
                );
            }
        }
    }
}

#[test]
fn without_context_takeover_a_message_never_refers_to_an_earlier_one() {
    let negotiated = Negotiated {
        server_no_context_takeover: true,
        ..Negotiated::default()
    };
    let mut s = with_deflate(Role::Server, negotiated, DeflateConfig::default());
    s.send_text("Hello").unwrap();
    let first = s.take_output();
    s.send_text("Hello").unwrap();
    // The same bytes again: the second message was compressed from a fresh window.
    assert_eq!(s.take_output(), first);
    // And a client that resets its inflater after each message reads both.
    let mut c = with_deflate(Role::Client, negotiated, DeflateConfig::default());
    c.receive(&first).unwrap();
    c.receive(&first).unwrap();
    assert_eq!(events(&mut c), vec![text("Hello"), text("Hello")]);
}

#[test]
fn threshold_sends_short_messages_uncompressed() {
    let config = DeflateConfig {
        threshold: 10,
        ..DeflateConfig::default()
    };
    let mut s = with_deflate(Role::Server, Negotiated::default(), config);
    s.send_text("short").unwrap();
    assert_eq!(s.take_output(), b"\x81\x05short");
    let (header, payload) = s.frame_message(Message::Text("short".into())).unwrap();
    assert_eq!(header.as_bytes(), b"\x81\x05");
    assert_eq!(payload, b"short");
    // At the threshold exactly, a message is compressed.
    s.send_text("ten bytes!").unwrap();
    assert_eq!(s.take_output()[0], 0xc1);
    let (header, _) = s.frame_message(Message::Text("ten bytes!".into())).unwrap();
    assert_eq!(header.as_bytes()[0], 0xc1);
}

#[test]
fn an_uncompressed_message_on_a_compressed_connection_is_read_as_is() {
    // RFC 7692 §6: RSV1 clear means not compressed.
    let mut s = deflate_server();
    s.receive(&client_frame(0x1, true, b"plain")).unwrap();
    assert_eq!(events(&mut s), vec![text("plain")]);
}

#[test]
fn rsv1_without_the_extension_is_a_protocol_error() {
    assert_fails(
        &raw_frame(
            0x1,
            true,
            RSV1,
            Some(KEY),
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ),
        ProtocolError::ReservedBitsSet,
    );
}

fn assert_deflate_server_fails(bytes: &[u8], error: ProtocolError) {
    let mut s = deflate_server();
    assert_eq!(s.receive(bytes), Err(error));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.take_output(), failing_close(error));
}

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_error() {
    // RFC 7692 §6.1: RSV1 is set on the first frame of a message only.
    let mut bytes = raw_frame(0x1, false, RSV1, Some(KEY), &[0xf2, 0x48, 0xcd]);
    bytes.extend(raw_frame(
        0x0,
        true,
        RSV1,
        Some(KEY),
        &[0xc9, 0xc9, 0x07, 0x00],
    ));
    assert_deflate_server_fails(&bytes, ProtocolError::ReservedBitsSet);
}

#[test]
fn rsv1_on_a_control_frame_is_a_protocol_error() {
    // RFC 7692 §6.1: control frames are never compressed.
    assert_deflate_server_fails(
        &raw_frame(0x9, true, RSV1, Some(KEY), b"ping"),
        ProtocolError::ReservedBitsSet,
    );
}

#[test]
fn rsv2_and_rsv3_stay_reserved() {
    assert_deflate_server_fails(
        &raw_frame(0x1, true, 0b010, Some(KEY), b"x"),
        ProtocolError::ReservedBitsSet,
    );
    assert_deflate_server_fails(
        &raw_frame(0x1, true, 0b101, Some(KEY), b"x"),
        ProtocolError::ReservedBitsSet,
    );
}

#[test]
fn data_that_does_not_inflate_gets_1007() {
    // 0xff starts a block of the reserved type 3.
    assert_deflate_server_fails(
        &raw_frame(0x2, true, RSV1, Some(KEY), &[0xff, 0xff, 0xff]),
        ProtocolError::InvalidCompressedData,
    );
    assert_eq!(
        ProtocolError::InvalidCompressedData.close_code(),
        CloseCode::InvalidFramePayloadData
    );
}

#[test]
fn an_empty_compressed_payload_gets_1007_and_leaves_no_message() {
    // RFC 7692 §7.2.3.6: even an empty message is sent as a DEFLATE block (`0x00`); with the
    // tail alone (§7.2.2) the stream would stop mid-block and corrupt what follows.
    assert_deflate_server_fails(
        &raw_frame(0x1, true, RSV1, Some(KEY), &[]),
        ProtocolError::InvalidCompressedData,
    );
    // The same with the empty payload spread over two frames.
    let mut bytes = raw_frame(0x2, false, RSV1, Some(KEY), &[]);
    bytes.extend(raw_frame(0x0, true, 0, Some(KEY), &[]));
    assert_deflate_server_fails(&bytes, ProtocolError::InvalidCompressedData);
}

#[test]
fn an_empty_message_between_others_keeps_the_shared_context_intact() {
    let mut client = deflate_client();
    let mut server = deflate_server();
    for text in ["order 42 is ready", "", "order 42 is ready", ""] {
        client.send_text(text).unwrap();
        assert_eq!(
            pass(&mut client, &mut server),
            [Event::Message(Message::Text(text.into()))]
        );
    }
}

#[test]
fn compressed_text_that_is_not_utf8_gets_1007() {
    let mut client = with_deflate(
        Role::Client,
        Negotiated::default(),
        DeflateConfig::default(),
    );
    // Compress invalid UTF-8 as a binary message, then relabel its opcode as text.
    client.send_binary(&[b'a', 0xff, 0xfe, b'b']).unwrap();
    let mut bytes = client.take_output();
    bytes[0] = (bytes[0] & 0xf0) | 0x1;
    assert_deflate_server_fails(&bytes, ProtocolError::InvalidUtf8);
}

#[test]
fn a_decompression_bomb_stops_at_the_limit_without_expanding() {
    // 64 MiB of zeros compresses to about 64 KiB; the limit is 1 MiB.
    let limit = 1 << 20;
    let mut client = with_deflate(Role::Client, Negotiated::default(), level(9));
    client.send_binary(&vec![0u8; 64 << 20]).unwrap();
    let bytes = client.take_output();
    assert!(bytes.len() < 200_000, "{}", bytes.len());
    let config = SessionLimits {
        max_message_size: limit,
        max_frame_size: limit,
    };
    let mut s = Session::new(Role::Server, config);
    s.set_deflate(Negotiated::default(), &DeflateConfig::default());
    assert_eq!(s.receive(&bytes), Err(ProtocolError::MessageTooLarge));
    assert_eq!(
        s.take_output(),
        failing_close(ProtocolError::MessageTooLarge)
    );
    // Nothing of the message is kept, and it never grew far past the limit.
    assert_eq!(s.message_buf_capacity(), 0);
}

#[test]
fn the_inflated_size_is_held_to_the_limit_while_inflating() {
    let limit = 100_000;
    let mut client = with_deflate(Role::Client, Negotiated::default(), level(9));
    client.send_binary(&vec![7u8; 10 << 20]).unwrap();
    let bytes = client.take_output();
    let config = SessionLimits {
        max_message_size: limit,
        max_frame_size: limit,
    };
    let mut s = Session::new(Role::Server, config);
    s.set_deflate(Negotiated::default(), &DeflateConfig::default());
    // Feed the frame a little at a time and watch the buffer.
    let mut peak = 0;
    for chunk in bytes.chunks(512) {
        let result = s.receive(chunk);
        peak = peak.max(s.message_buf_capacity());
        if result.is_err() {
            assert_eq!(result, Err(ProtocolError::MessageTooLarge));
            break;
        }
    }
    // Room for one byte over the limit, to see it passed; never more.
    assert!(peak <= limit + 1, "buffer grew to {peak}");
    assert_eq!(s.failure(), Some(ProtocolError::MessageTooLarge));
}

#[test]
fn a_message_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not() {
    let limit = 50_000;
    let mut client = with_deflate(
        Role::Client,
        Negotiated::default(),
        DeflateConfig::default(),
    );
    client.send_binary(&vec![1u8; limit]).unwrap();
    let config = SessionLimits {
        max_message_size: limit,
        max_frame_size: limit,
    };
    let mut s = Session::new(Role::Server, config);
    s.set_deflate(Negotiated::default(), &DeflateConfig::default());
    s.receive(&client.take_output()).unwrap();
    assert_eq!(events(&mut s), vec![binary(&vec![1u8; limit])]);

    // One byte more inflates past the limit: 1009. (A fresh client: the new server session
    // has none of the first message in its window.)
    let mut client = with_deflate(
        Role::Client,
        Negotiated::default(),
        DeflateConfig::default(),
    );
    client.send_binary(&vec![1u8; limit + 1]).unwrap();
    let mut s = Session::new(Role::Server, config);
    s.set_deflate(Negotiated::default(), &DeflateConfig::default());
    assert_eq!(
        s.receive(&client.take_output()),
        Err(ProtocolError::MessageTooLarge)
    );
}

#[test]
fn control_frames_interleaved_with_a_compressed_message_are_not_compressed() {
    let mut client = deflate_client();
    client
        .send_fragmented(DataOpcode::Text, b"Hello Hello Hello", 4)
        .unwrap();
    let data = client.take_output();
    client.ping(b"hb").unwrap();
    let ping = client.take_output();
    assert_eq!(ping[0], 0x89, "a Ping never has RSV1");
    // Put the ping between the first and second frames.
    let first_len = 2 + 4 + (data[1] & 0x7f) as usize;
    let mut bytes = data[..first_len].to_vec();
    bytes.extend_from_slice(&ping);
    bytes.extend_from_slice(&data[first_len..]);
    let mut s = deflate_server();
    s.receive(&bytes).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Ping(b"hb".to_vec()), text("Hello Hello Hello")]
    );
    assert_eq!(s.take_output(), b"\x8a\x02hb");
}

#[test]
fn a_close_in_the_middle_of_a_compressed_message_drops_it() {
    let mut client = deflate_client();
    client
        .send_fragmented(DataOpcode::Binary, &[5; 1000], 3)
        .unwrap();
    let data = client.take_output();
    let mut s = deflate_server();
    s.receive(&data[..18]).unwrap(); // two whole frames of 2 + 4 + 3 bytes
    s.receive(&client_frame(0x8, true, &[0x03, 0xe8])).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Close(CloseFrame::new(CloseCode::NormalClosure, ""))]
    );
}

/// The I/O layer's allowance (a server's memory budget) holds an inflating message too: it
/// stops at the allowance, well under the limit, with 1013 rather than the limit's 1009.
#[test]
fn an_inflating_message_stops_at_the_receive_allowance_with_1013() {
    let allowance = 100_000;
    let mut client = with_deflate(Role::Client, Negotiated::default(), level(9));
    client.send_binary(&vec![7u8; 10 << 20]).unwrap();
    let bytes = client.take_output();
    let config = SessionLimits {
        max_message_size: 64 << 20,
        max_frame_size: 64 << 20,
    };
    let mut s = Session::new(Role::Server, config);
    s.set_deflate(Negotiated::default(), &DeflateConfig::default());
    s.set_receive_allowance(allowance);
    let mut peak = 0;
    for chunk in bytes.chunks(512) {
        let result = s.receive(chunk);
        peak = peak.max(s.message_buf_capacity());
        if result.is_err() {
            assert_eq!(result, Err(ProtocolError::Overloaded));
            break;
        }
    }
    assert!(peak <= allowance + 1, "buffer grew to {peak}");
    assert_eq!(s.failure(), Some(ProtocolError::Overloaded));
    assert_eq!(
        s.take_output(),
        close_frame_bytes(1013, ProtocolError::Overloaded.reason())
    );
}
