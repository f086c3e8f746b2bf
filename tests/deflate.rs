//! permessage-deflate (RFC 7692) over real loopback sockets: our client and our server with
//! compression on (text, binary, large, many messages, no context takeover, different window
//! sizes), the wire seen from raw sockets on either side (the negotiated header, RSV1, a
//! payload shorter than the text, fragments), and each end declining or refusing.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use wsloop::client::{Client, ClientError};
use wsloop::deflate::negotiate::NegotiationError;
use wsloop::deflate::{DeflateConfig, Negotiated};
use wsloop::handshake::ClientHandshakeError;
use wsloop::{CloseCode, Message};

/// RFC 7692 §7.2.1: the end of a sync flush, removed by the sender, added by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Messages up to 64 MiB both ways: these tests send up to 8 MiB (the default is 1 MiB).
const LIMITS: wsloop::session::SessionLimits = wsloop::session::SessionLimits {
    max_frame_size: 64 << 20,
    max_message_size: 64 << 20,
};

/// A test server that accepts permessage-deflate with `config`.
fn deflate_server(config: DeflateConfig) -> TestServer {
    TestServer::start(move |c| {
        c.deflate = Some(config);
        c.session = LIMITS;
    })
}

/// Our client, offering permessage-deflate with `config`; waits for the server's on_open.
fn deflate_client(server: &TestServer, sid: &str, config: DeflateConfig) -> Client {
    let client = Client::builder()
        .read_timeout(Some(WAIT))
        .session_config(LIMITS)
        .deflate(config)
        .connect(&server.url(sid))
        .expect("connect");
    assert_eq!(server.next(), Seen::Open(sid.into()));
    client
}

/// Text that compresses well: the same few words over and over.
fn repetitive_text(len: usize) -> String {
    let words = [
        "order ",
        "42 ",
        "placed ",
        "customer ",
        "reminder ",
        "订单 ",
    ];
    let mut text = String::with_capacity(len + 16);
    let mut i = 0;
    while text.len() < len {
        text.push_str(words[i % words.len()]);
        i += 1;
    }
    while text.len() > len {
        text.pop();
    }
    text
}

/// Bytes that do not compress (a linear congruential generator).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// Send `message` and expect it back, the handler having seen it too.
fn echo(server: &TestServer, client: &mut Client, sid: &str, message: Message) {
    client.send(message.clone()).unwrap();
    let echoed = client.recv().unwrap();
    assert!(echoed == message, "echo of {} bytes differs", message.len());
    expect_message(server, sid, &message);
}

/// The handler's next event is `message` on `sid` (reported briefly: messages are large).
fn expect_message(server: &TestServer, sid: &str, message: &Message) {
    match server.next() {
        Seen::Message(s, m) if s == sid && m == *message => {}
        Seen::Message(s, m) => panic!("{s} sent {} bytes, not {}", m.len(), message.len()),
        other => panic!("expected a message, saw {other:?}"),
    }
}

/// DEFLATE `data` as one message (§7.2.1): sync flush, tail removed.
fn compress(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1024);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
    out
}

/// Inflate one compressed message of at most `max` bytes (§7.2.2: the tail added back).
fn inflate(inflater: &mut Decompress, payload: &[u8], max: usize) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(max + 64);
    inflater
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// A raw socket after a handshake that offered `offer`; the 101's head.
fn raw_deflate_session(server: &TestServer, sid: &str, offer: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let extra = format!("Sec-WebSocket-Extensions: {offer}\r\n");
    s.write_all(upgrade_request(&format!("/ws/{sid}"), &extra).as_bytes())
        .unwrap();
    let head = String::from_utf8(read_head(&mut s)).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(server.next(), Seen::Open(sid.into()));
    (s, head)
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

// ----- Our client and our server ---------------------------------------------------------

#[test]
fn text_and_binary_round_trip_compressed() {
    let server = deflate_server(DeflateConfig::default());
    let mut client = deflate_client(&server, "alice", DeflateConfig::default());
    assert_eq!(client.deflate(), Some(Negotiated::default()));
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        echo(
            &server,
            &mut client,
            "alice",
            Message::Text(repetitive_text(size)),
        );
        echo(&server, &mut client, "alice", Message::Binary(noise(size)));
    }
    client.close(CloseCode::NormalClosure, "done").unwrap();
    server.wait_for(|s| matches!(s, Seen::Close(..)));
    server.stop();
}

#[test]
fn large_messages_both_ways() {
    let server = deflate_server(DeflateConfig::default());
    let mut client = deflate_client(&server, "big", DeflateConfig::default());
    // 8 MiB of text shrinks a lot; 2 MiB of noise grows a little; both must come back whole.
    echo(
        &server,
        &mut client,
        "big",
        Message::Text(repetitive_text(8 << 20)),
    );
    echo(&server, &mut client, "big", Message::Binary(noise(2 << 20)));
    server.stop();
}

#[test]
fn many_messages_with_context_takeover() {
    let server = deflate_server(DeflateConfig::default());
    let mut client = deflate_client(&server, "stream", DeflateConfig::default());
    let negotiated = client.deflate().unwrap();
    assert!(!negotiated.server_no_context_takeover && !negotiated.client_no_context_takeover);
    // Similar messages, so that each one refers back into the ones before.
    for i in 0..300 {
        let text = format!(r#"{{"type":2,"orderId":{i},"content":"order {i} was placed"}}"#);
        echo(&server, &mut client, "stream", Message::Text(text));
    }
    server.stop();
}

#[test]
fn no_context_takeover_either_way() {
    let no_takeover = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    // Configured on the server: it announces both.
    let server = deflate_server(no_takeover);
    let mut client = deflate_client(&server, "a", DeflateConfig::default());
    let negotiated = client.deflate().unwrap();
    assert!(negotiated.server_no_context_takeover && negotiated.client_no_context_takeover);
    for i in 0..100 {
        let text = format!("message {i}: {}", repetitive_text(300 + i));
        echo(&server, &mut client, "a", Message::Text(text));
    }
    echo(&server, &mut client, "a", Message::Binary(noise(100_000)));
    server.stop();

    // Asked for by the client: the server agrees to both.
    let server = deflate_server(DeflateConfig::default());
    let mut client = deflate_client(&server, "b", no_takeover);
    let negotiated = client.deflate().unwrap();
    assert!(negotiated.server_no_context_takeover && negotiated.client_no_context_takeover);
    for i in 0..100 {
        echo(
            &server,
            &mut client,
            "b",
            Message::Text(repetitive_text(i * 37)),
        );
    }
    server.stop();
}

#[test]
fn mismatched_window_bits_settle_on_the_smaller() {
    let server = deflate_server(DeflateConfig {
        server_max_window_bits: 10,
        client_max_window_bits: 9,
        ..DeflateConfig::default()
    });
    let mut client = deflate_client(
        &server,
        "w",
        DeflateConfig {
            server_max_window_bits: 12,
            client_max_window_bits: 11,
            ..DeflateConfig::default()
        },
    );
    assert_eq!(
        client.deflate(),
        Some(Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 10,
            client_max_window_bits: 9,
        })
    );
    // Repeats farther apart than either window, and close ones.
    let far = format!(
        "{}{}",
        noise(5000)
            .iter()
            .map(|b| (b'a' + b % 26) as char)
            .collect::<String>(),
        "x"
    );
    let text = far.repeat(20) + &repetitive_text(50_000);
    for _ in 0..3 {
        echo(&server, &mut client, "w", Message::Text(text.clone()));
    }
    server.stop();

    // The smallest window, asked for by the client.
    let server = deflate_server(DeflateConfig::default());
    let smallest = DeflateConfig {
        server_max_window_bits: 8,
        client_max_window_bits: 8,
        ..DeflateConfig::default()
    };
    let mut client = deflate_client(&server, "eight", smallest);
    let negotiated = client.deflate().unwrap();
    assert_eq!(
        (
            negotiated.server_max_window_bits,
            negotiated.client_max_window_bits
        ),
        (8, 8)
    );
    for _ in 0..3 {
        echo(&server, &mut client, "eight", Message::Text(text.clone()));
    }
    server.stop();
}

#[test]
fn either_side_without_deflate_means_no_compression() {
    // A server without the setting answers no extension; our client goes on uncompressed.
    let server = TestServer::start(|_| {});
    let mut client = deflate_client(&server, "plain-server", DeflateConfig::default());
    assert_eq!(client.deflate(), None);
    echo(
        &server,
        &mut client,
        "plain-server",
        Message::Text(repetitive_text(10_000)),
    );
    server.stop();

    // A client that offers nothing gets nothing from a server that would compress.
    let server = deflate_server(DeflateConfig::default());
    let mut client = server.connect("plain-client");
    assert_eq!(client.deflate(), None);
    echo(
        &server,
        &mut client,
        "plain-client",
        Message::Text(repetitive_text(10_000)),
    );
    server.stop();
}

// ----- The wire, from a raw client -------------------------------------------------------

#[test]
fn the_101_names_the_extension_and_replies_are_compressed_with_rsv1() {
    let server = deflate_server(DeflateConfig::default());
    let (mut s, head) =
        raw_deflate_session(&server, "raw", "permessage-deflate; client_max_window_bits");
    assert!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{head}"
    );

    // §6: an uncompressed message (RSV1 clear) is fine on a compressed connection.
    let text = repetitive_text(4000);
    s.write_all(&masked(FIN | TEXT, text.as_bytes())).unwrap();
    let mut inflater = Decompress::new(false);
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, FIN | RSV1 | TEXT, "a compressed text frame");
    assert!(
        payload.len() < text.len() / 2,
        "{} bytes for {} of text",
        payload.len(),
        text.len()
    );
    assert_eq!(
        inflate(&mut inflater, &payload, text.len()),
        text.as_bytes()
    );
    expect_message(&server, "raw", &Message::Text(text.clone()));

    // Context takeover: the same message again is mostly a reference to the last one.
    s.write_all(&masked(FIN | TEXT, text.as_bytes())).unwrap();
    let (first, again) = read_frame(&mut s);
    assert_eq!(first, FIN | RSV1 | TEXT);
    assert!(
        again.len() < payload.len(),
        "{} vs {}",
        again.len(),
        payload.len()
    );
    assert_eq!(inflate(&mut inflater, &again, text.len()), text.as_bytes());
    expect_message(&server, "raw", &Message::Text(text.clone()));

    // A compressed message from the client, in three fragments: RSV1 on the first only.
    let mut compressor = Compress::new(Compression::default(), false);
    let data = noise(3000)
        .into_iter()
        .chain(repetitive_text(3000).into_bytes())
        .collect::<Vec<u8>>();
    let compressed = compress(&mut compressor, &data);
    let third = compressed.len() / 3;
    let mut bytes = masked(RSV1 | BINARY, &compressed[..third]);
    bytes.extend(masked(0x89, b"mid")); // a Ping between fragments
    bytes.extend(masked(0x00, &compressed[third..2 * third]));
    bytes.extend(masked(FIN, &compressed[2 * third..]));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), (0x8a, b"mid".to_vec()), "the Pong");
    let (first, echoed) = read_frame(&mut s);
    assert_eq!(first, FIN | RSV1 | BINARY);
    assert_eq!(inflate(&mut inflater, &echoed, data.len()), data);
    expect_message(&server, "raw", &Message::Binary(data.clone()));

    // The second compressed message uses the context of the first (our compressor kept it).
    let compressed = compress(&mut compressor, &data);
    s.write_all(&masked(FIN | RSV1 | BINARY, &compressed))
        .unwrap();
    let (_, echoed) = read_frame(&mut s);
    assert_eq!(inflate(&mut inflater, &echoed, data.len()), data);
    server.stop();
}

#[test]
fn server_no_context_takeover_compresses_each_message_alone() {
    let server = deflate_server(DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    });
    let (mut s, head) = raw_deflate_session(&server, "alone", "permessage-deflate");
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        ),
        "{head}"
    );
    let text = repetitive_text(2000);
    let mut lengths = Vec::new();
    for _ in 0..3 {
        s.write_all(&masked(FIN | TEXT, text.as_bytes())).unwrap();
        let (first, payload) = read_frame(&mut s);
        assert_eq!(first, FIN | RSV1 | TEXT);
        // A fresh inflater for each message: nothing refers to an earlier one.
        assert_eq!(
            inflate(&mut Decompress::new(false), &payload, text.len()),
            text.as_bytes()
        );
        lengths.push(payload.len());
    }
    assert!(lengths.iter().all(|&n| n == lengths[0]), "{lengths:?}");
    server.stop();
}

#[test]
fn the_first_acceptable_offer_is_answered() {
    let server = deflate_server(DeflateConfig::default());
    let (_s, head) = raw_deflate_session(
        &server,
        "offers",
        "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=16, \
         permessage-deflate; server_no_context_takeover; server_max_window_bits=9, \
         permessage-deflate",
    );
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             server_max_window_bits=9\r\n"
        ),
        "{head}"
    );
    server.stop();
}

#[test]
fn declined_offers_leave_the_header_out() {
    // A server without deflate configured.
    let server = TestServer::start(|_| {});
    let (mut s, head) = raw_deflate_session(&server, "none", "permessage-deflate");
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    // Without the extension RSV1 is a protocol error again (RFC 6455 §5.2).
    s.write_all(&masked(FIN | RSV1 | TEXT, b"x")).unwrap();
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x88, "a Close");
    assert_eq!(&payload[..2], &1002u16.to_be_bytes());
    server.stop();

    // A server with deflate, and offers it cannot accept or cannot parse.
    let server = deflate_server(DeflateConfig::default());
    let mut sockets = Vec::new(); // kept open, so that no close comes between the events
    for (i, offer) in [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; unknown_param",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate;;, \"garbage",
    ]
    .into_iter()
    .enumerate()
    {
        let (mut s, head) = raw_deflate_session(&server, &format!("bad{i}"), offer);
        assert!(
            !head.contains("Sec-WebSocket-Extensions"),
            "{offer}: {head}"
        );
        s.write_all(&masked(FIN | TEXT, b"plain")).unwrap();
        assert_eq!(read_frame(&mut s), (FIN | TEXT, b"plain".to_vec()));
        expect_message(&server, &format!("bad{i}"), &Message::Text("plain".into()));
        sockets.push(s);
    }
    server.stop();
}

#[test]
fn broadcasts_go_uncompressed_to_compressed_sessions() {
    let server = deflate_server(DeflateConfig::default());
    let (mut s, head) = raw_deflate_session(&server, "raw", "permessage-deflate");
    assert!(head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"));
    let mut client = deflate_client(&server, "client", DeflateConfig::default());
    assert!(client.deflate().is_some());

    let text = repetitive_text(1000);
    let answer = http(
        server.addr,
        &format!(
            "POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        ),
    );
    assert!(answer.ends_with("\r\n\r\n2"), "{answer}");
    // RFC 7692 §6: RSV1 clear, the plain bytes.
    assert_eq!(read_frame(&mut s), (FIN | TEXT, text.clone().into_bytes()));
    assert_eq!(client.recv().unwrap(), Message::Text(text.clone()));
    // A message to one session is still compressed after that.
    server.handle.send("raw", text.clone()).unwrap();
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, FIN | RSV1 | TEXT);
    assert!(payload.len() < text.len());
    server.stop();
}

// ----- The wire, from a raw server -------------------------------------------------------

/// A frame as read: its first byte (FIN, RSV, opcode) and its payload.
type Frame = (u8, Vec<u8>);

/// A one-connection server: answers the upgrade with `extensions` in its 101, sends
/// `frames`, then reads one masked frame from the client. Returns the client's request head
/// and that frame (first byte, unmasked payload), if any came.
fn raw_server(
    extensions: Option<&'static str>,
    frames: Vec<u8>,
) -> (String, JoinHandle<(String, Option<Frame>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws/x", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let request = String::from_utf8(read_head(&mut s)).unwrap();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim();
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            wsloop::handshake::accept_key(key.as_bytes())
        );
        if let Some(extensions) = extensions {
            response.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        response.push_str("\r\n");
        let _ = s.write_all(response.as_bytes());
        let _ = s.write_all(&frames);
        (request, read_masked_frame(&mut s))
    });
    (url, thread)
}

/// Read one masked client frame, if the client sends one: (first byte, unmasked payload).
fn read_masked_frame(s: &mut TcpStream) -> Option<Frame> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    assert_eq!(h[1] & 0x80, 0x80, "client frames are masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut key = [0u8; 4];
    s.read_exact(&mut key).ok()?;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    Some((h[0], payload))
}

/// An unmasked server frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

#[test]
fn client_inflates_fragments_and_compresses_its_reply() {
    let text = repetitive_text(20_000);
    let mut compressor = Compress::new(Compression::best(), false);
    let compressed = compress(&mut compressor, text.as_bytes());
    let half = compressed.len() / 2;
    let mut frames = frame(RSV1 | TEXT, &compressed[..half]);
    frames.extend(frame(FIN, &compressed[half..]));
    let (url, thread) = raw_server(
        Some("permessage-deflate; client_no_context_takeover; client_max_window_bits=9"),
        frames,
    );
    let mut client = Client::builder()
        .read_timeout(Some(WAIT))
        .deflate(DeflateConfig::default())
        .connect(&url)
        .unwrap();
    assert_eq!(
        client.deflate(),
        Some(Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 9,
        })
    );
    let message = client.recv().unwrap();
    assert_eq!(message, Message::Text(text.clone()));
    client.send(message).unwrap();
    let (request, reply) = thread.join().unwrap();
    assert!(
        request.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ),
        "{request}"
    );
    let (first, payload) = reply.expect("the client's echo");
    assert_eq!(first, FIN | RSV1 | TEXT);
    assert!(
        payload.len() < text.len() / 2,
        "{} bytes for {} of text",
        payload.len(),
        text.len()
    );
    // A 2^9-byte window is enough to inflate it: the client kept to the answer.
    let mut inflater = Decompress::new_with_window_bits(false, 9);
    assert_eq!(
        inflate(&mut inflater, &payload, text.len()),
        text.as_bytes()
    );
}

#[test]
fn client_fails_the_handshake_on_a_bad_answer() {
    type Expected = fn(&NegotiationError) -> bool;
    let cases: [(&str, Expected); 4] = [
        ("permessage-deflate; server_max_window_bits=7", |e| {
            matches!(e, NegotiationError::InvalidWindowBits { .. })
        }),
        ("permessage-deflate; client_max_window_bits", |e| {
            matches!(e, NegotiationError::MissingValue(_))
        }),
        ("x-webkit-deflate-frame", |e| {
            matches!(e, NegotiationError::UnrequestedExtension(_))
        }),
        ("permessage-deflate, permessage-deflate", |e| {
            matches!(e, NegotiationError::ExpectedOneExtension(2))
        }),
    ];
    for (answer, expected) in cases {
        let (url, thread) = raw_server(Some(answer), Vec::new());
        let error = Client::builder()
            .read_timeout(Some(WAIT))
            .deflate(DeflateConfig::default())
            .connect(&url)
            .unwrap_err();
        match &error {
            ClientError::Handshake(ClientHandshakeError::Deflate(e)) if expected(e) => {}
            other => panic!("{answer}: {other:?}"),
        }
        assert!(error.to_string().contains("permessage-deflate"), "{error}");
        // The connection is dropped without a frame.
        assert_eq!(thread.join().unwrap().1, None);
    }

    // Not offered, yet answered: refused as before (RFC 6455 §4.1).
    let (url, thread) = raw_server(Some("permessage-deflate"), Vec::new());
    let error = Client::builder()
        .read_timeout(Some(WAIT))
        .connect(&url)
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Handshake(ClientHandshakeError::UnrequestedExtension)
        ),
        "{error:?}"
    );
    let (request, _) = thread.join().unwrap();
    assert!(!request.contains("Sec-WebSocket-Extensions"), "{request}");
}
