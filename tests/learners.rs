//! The learners' tools: the `explain` annotator, the `tap` proxy, and docs/PROTOCOL.md.
//!
//! The examples' logic is included here by path, so these tests call the very functions the
//! `explain` and `tap` binaries run:
//! - the annotator on the RFC 6455 §5.7 examples, on malformed input (checked against what
//!   wsloop's own `Session` and `handshake::accept` decide for the same bytes), and in any
//!   chunking;
//! - the tap in front of a real server, with `wsloop::client::Client` talking through it;
//! - every byte dump in docs/PROTOCOL.md, regenerated and compared (`UPDATE_PROTOCOL_MD=1`
//!   rewrites them).

#[path = "../examples/explain/annotate.rs"]
mod annotate;
#[path = "../examples/tap/proxy.rs"]
mod proxy;

use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use annotate::{explain, parse_hex, Annotator, Sender};
use wsloop::client::Client;
use wsloop::frame::{DataOpcode, FrameHeader, Opcode};
use wsloop::handshake::{accept, Limits, RequestParser};
use wsloop::server::{Context, Handler, Server};
use wsloop::session::{Event, Role, Session, SessionLimits};
use wsloop::{CloseCode, Message};

/// The annotation with every run of spaces squeezed to one, so that assertions name the
/// fields of a row without counting columns.
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The annotation as one line: what prose wrapping split is whole again (the tap's `#1 `
/// line prefixes are dropped first).
fn flattened(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix("#1").unwrap_or(l))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each wanted piece is in a row of the annotation, or in its prose once unwrapped.
#[track_caller]
fn assert_has(annotation: &str, wanted: &[&str]) {
    let (rows, prose) = (squeezed(annotation), flattened(annotation));
    for w in wanted {
        assert!(
            rows.contains(w) || prose.contains(w),
            "missing {w:?} in the annotation:\n{annotation}"
        );
    }
}

#[track_caller]
fn assert_valid(annotation: &str) {
    assert!(
        !annotation.contains('✗') && !annotation.contains('…'),
        "expected no violation and nothing left over:\n{annotation}"
    );
}

fn example(name: &str) -> annotate::Example {
    annotate::example(name).unwrap_or_else(|| panic!("no example {name}"))
}

// ----- RFC 6455 §5.7 --------------------------------------------------------------------------

#[test]
fn rfc_5_7_single_frame_unmasked_text() {
    let out = explain(
        &parse_hex("81 05 48 65 6c 6c 6f").unwrap(),
        Some(Sender::Server),
    );
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "frame 1 (server → client, 7 bytes)",
            "81 1... .... FIN 1 final fragment",
            ".000 .... RSV1-3 000 no extension negotiated",
            ".... 0001 opcode 0x1 text:",
            "05 0... .... MASK 0 not masked, as a server's frames must not be (§5.1)",
            ".000 0101 length 5 7-bit form",
            "48 65 6c 6c 6f payload 5 bytes",
            "text \"Hello\" valid UTF-8",
            "✓ a complete text message of 5 bytes in 1 frame: \"Hello\"",
        ],
    );
}

#[test]
fn rfc_5_7_single_frame_masked_text() {
    let out = example("masked-hello").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "frame 1 (client → server, 11 bytes)",
            "85 1... .... MASK 1 masked, as every client frame must be (§5.1)",
            ".000 0101 length 5",
            "37 fa 21 3d key masking key",
            "7f 9f 4d 51 58 payload 5 bytes as sent: masked",
            "48 65 6c 6c 6f unmasked each byte XOR the key (§5.3)",
            "✓ a complete text message of 5 bytes in 1 frame: \"Hello\"",
        ],
    );
}

#[test]
fn rfc_5_7_fragmented_text() {
    let out = example("fragmented-hello").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "frame 1 (server → client, 5 bytes)",
            "01 0... .... FIN 0 not final",
            "48 65 6c payload 3 bytes",
            "✓ fragment 1 of a text message (3 bytes so far); continuation frames follow (§5.4)",
            "frame 2 (server → client, 4 bytes)",
            "80 1... .... FIN 1",
            ".... 0000 opcode 0x0 continuation:",
            "✓ a complete text message of 5 bytes in 2 frames: \"Hello\"",
        ],
    );
    // A control frame may come between the fragments.
    let out = example("ping-between-fragments").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "control frames may come between the fragments of a message (§5.4)",
            "✓ a complete text message of 5 bytes in 2 frames: \"Hello\"",
        ],
    );
}

#[test]
fn rfc_5_7_ping_and_masked_pong() {
    let out = example("ping").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "89 1... .... FIN 1 final, as a control frame must be",
            ".... 1001 opcode 0x9 ping:",
            "data \"Hello\"",
            "✓ a Ping: the client answers with a Pong carrying the same 5 bytes (§5.5.2)",
        ],
    );
    let out = example("masked-pong").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            ".... 1010 opcode 0xa pong:",
            "85 1... .... MASK 1",
            "48 65 6c 6c 6f unmasked",
            "✓ a Pong",
        ],
    );
}

#[test]
fn rfc_5_7_256_byte_and_64_kib_binary_frames() {
    let ex = example("binary-256");
    // The example's header is the one the crate itself encodes for 256 bytes.
    let header = FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 256).encode();
    assert_eq!(&ex.bytes[..4], header.as_bytes());
    let out = ex.explain();
    assert!(!out.contains('✗'), "{out}");
    assert_has(
        &out,
        &[
            "frame 1 (server → client, 260 bytes)",
            "7e 0... .... MASK 0",
            ".111 1110 length 126 126: the length follows in the next 2 bytes",
            "01 00 length 256 16-bit form, for payloads of 126-65535 bytes (§5.2)",
            "00 01 02 03 04 05 06 07 payload 256 bytes",
            "… 240 more",
            "✓ a complete binary message of 256 bytes in 1 frame",
        ],
    );

    let ex = example("binary-64k");
    let header = FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 65536).encode();
    assert_eq!(&ex.bytes[..10], header.as_bytes());
    let out = ex.explain();
    assert_has(
        &out,
        &[
            ".111 1111 length 127 127: the length follows in the next 8 bytes",
            "00 00 00 00 00 01 00 00 length 65536 64-bit form",
            "✓ a complete binary message of 65536 bytes in 1 frame",
        ],
    );

    // The RFC shows only the headers: explained as frames waiting for their payload.
    let out = explain(&[0x82, 0x7e, 0x01, 0x00], None);
    assert_has(
        &out,
        &[
            "frame 1 (server → client, incomplete: 0 of 256 payload bytes)",
            "01 00 length 256",
            "… the input ends here: the receiver waits for 256 more bytes",
        ],
    );
    let out = explain(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0], None);
    assert_has(&out, &["the receiver waits for 65536 more bytes"]);
}

#[test]
fn the_examples_are_the_bytes_wsloop_itself_sends() {
    // A server session: unmasked frames.
    let mut server = Session::new(Role::Server, SessionLimits::default());
    let mut sent = |f: &dyn Fn(&mut Session)| {
        f(&mut server);
        server.take_output()
    };
    assert_eq!(
        sent(&|s| s.send_text("Hello").unwrap()),
        example("unmasked-hello").bytes
    );
    assert_eq!(
        sent(&|s| s.send_fragmented(DataOpcode::Text, b"Hello", 3).unwrap()),
        example("fragmented-hello").bytes
    );
    assert_eq!(sent(&|s| s.ping(b"Hello").unwrap()), example("ping").bytes);
    let payload: Vec<u8> = (0..65536).map(|i| i as u8).collect();
    assert_eq!(
        sent(&|s| s.send_binary(&payload[..256]).unwrap()),
        example("binary-256").bytes
    );
    assert_eq!(
        sent(&|s| s.send_binary(&payload).unwrap()),
        example("binary-64k").bytes
    );

    // A client session masking with the RFC's key.
    let mut client = Session::client(SessionLimits::default(), || [0x37, 0xfa, 0x21, 0x3d]);
    client.send_text("Hello").unwrap();
    assert_eq!(client.take_output(), example("masked-hello").bytes);
    client.pong(b"Hello").unwrap();
    assert_eq!(client.take_output(), example("masked-pong").bytes);
    client.close(CloseCode::NormalClosure, "bye").unwrap();
    assert_eq!(client.take_output(), example("close-normal").bytes);

    // The server's answer to that Close.
    let mut server = Session::new(Role::Server, SessionLimits::default());
    server.receive(&example("close-normal").bytes).unwrap();
    assert!(matches!(server.next_event(), Some(Event::Close(_))));
    assert_eq!(server.take_output(), example("close-echo").bytes);

    // The server's answer to the RFC's request, selecting "chat".
    let (request, _) = RequestParser::new(Limits::default())
        .push(&example("rfc-request").bytes)
        .unwrap()
        .unwrap();
    let accepted = accept(&request).unwrap();
    assert_eq!(
        accepted.response(accepted.select_protocol(&["chat"])),
        example("rfc-response").bytes
    );
}

// ----- Malformed input: explained, and judged as wsloop judges it --------------------------

/// What wsloop's own `Session` says about these bytes, received by the other end.
fn session_verdict(bytes: &[u8], from: Sender) -> Result<(), wsloop::ProtocolError> {
    let role = match from {
        Sender::Client => Role::Server,
        Sender::Server => Role::Client,
    };
    let mut session = Session::new(role, SessionLimits::default());
    let result = session.receive(bytes);
    while let Some(event) = session.next_event() {
        if let Event::Close(_) = event {
            break;
        }
    }
    result
}

#[test]
fn malformed_frames_name_the_rule_and_the_close_code_the_session_sends() {
    let cases = [
        (
            "bad-unmasked-from-client",
            "§5.1",
            1002,
            "MASK 0 ✗ not masked",
        ),
        ("bad-masked-from-server", "§5.1", 1002, "MASK 1 ✗ masked"),
        ("bad-rsv1", "§5.2", 1002, "RSV1-3 100 ✗ set"),
        (
            "bad-opcode",
            "§5.2",
            1002,
            "opcode 0x3 ✗ reserved for future data frames",
        ),
        (
            "bad-length-top-bit",
            "§5.2",
            1002,
            "✗ the most significant bit",
        ),
        ("bad-long-ping", "§5.5", 1002, "length 126 ✗ 126"),
        ("bad-fragmented-ping", "§5.5", 1002, "FIN 0 ✗ not final"),
        ("bad-continuation", "§5.4", 1002, "opcode 0x0 continuation"),
        (
            "bad-interleaved",
            "§5.4",
            1002,
            "✓ fragment 1 of a text message",
        ),
        (
            "bad-utf8",
            "§5.6, §8.1",
            1007,
            "text \"�(\" ✗ not valid UTF-8",
        ),
        ("bad-close-one-byte", "§5.5.1", 1002, "code ✗ one byte"),
        (
            "bad-close-code",
            "§7.4.1",
            1002,
            "code 1005 ✗ not a code that may be sent",
        ),
    ];
    for (name, section, code, row) in cases {
        let ex = example(name);
        let out = ex.explain();
        let error = session_verdict(&ex.bytes, ex.from)
            .expect_err(&format!("wsloop's session accepts {name}"));
        assert_eq!(u16::from(error.close_code()), code, "{name}");
        assert_has(
            &out,
            &[
                &format!("✗ breaks RFC 6455 {section}"),
                &format!("Close {code} ("),
                &format!("with reason {:?}", error.reason()),
                &format!("(wsloop: ProtocolError::{error:?}, raised in"),
                row,
            ],
        );
        let fails = match ex.from {
            Sender::Client => "→ the server fails the connection (§7.1.7)",
            Sender::Server => "→ the client fails the connection (§7.1.7)",
        };
        assert_has(&out, &[fails]);
    }
}

#[test]
fn valid_examples_are_valid_for_the_session_too() {
    for ex in annotate::examples() {
        if ex.name.starts_with("bad-") || ex.bytes.starts_with(b"GET") {
            continue;
        }
        if ex.bytes.starts_with(b"HTTP/") {
            continue;
        }
        assert_eq!(session_verdict(&ex.bytes, ex.from), Ok(()), "{}", ex.name);
        assert!(
            !ex.explain().contains('✗'),
            "{}:\n{}",
            ex.name,
            ex.explain()
        );
    }
}

#[test]
fn an_oversized_frame_is_judged_from_its_header_alone() {
    // 65 MiB announced, nothing of it sent: over the default 64 MiB limit, answered with 1009.
    let len: u64 = 65 << 20;
    let mut bytes = vec![0x82, 0x7f];
    bytes.extend_from_slice(&len.to_be_bytes());
    let out = explain(&bytes, Some(Sender::Server));
    assert_has(
        &out,
        &[
            "frame 1 (server → client, header of a 68157440-byte payload)",
            "Close 1009 (message too big)",
            "ProtocolError::FrameTooLarge",
        ],
    );
    assert_eq!(
        session_verdict(&bytes, Sender::Server),
        Err(wsloop::ProtocolError::FrameTooLarge)
    );
}

#[test]
fn a_non_minimal_length_is_a_warning_not_an_error() {
    // "Hi" with its length in the 16-bit form: §5.2 says senders MUST be minimal; wsloop reads it.
    let out = explain(&[0x81, 0x7e, 0x00, 0x02, b'H', b'i'], Some(Sender::Server));
    assert_has(
        &out,
        &[
            "00 02 length 2 ⚠ not minimal",
            "✓ a complete text message of 2 bytes in 1 frame: \"Hi\"",
        ],
    );
}

#[test]
fn bytes_after_a_violation_or_a_close_are_counted_not_read() {
    let mut bytes = example("bad-opcode").bytes;
    bytes.extend_from_slice(&[0x81, 0x00, 0x81, 0x00]);
    assert_has(
        &explain(&bytes, Some(Sender::Server)),
        &["… 4 bytes more, after the violation"],
    );
    let mut bytes = example("close-echo").bytes;
    bytes.extend_from_slice(&[0x81, 0x00]);
    assert_has(
        &explain(&bytes, Some(Sender::Server)),
        &["… 2 bytes more, after the sender's Close"],
    );
}

#[test]
fn an_unfinished_message_and_an_unfinished_head_are_said_to_be_so() {
    let out = explain(&[0x01, 0x03, 0x48, 0x65, 0x6c], Some(Sender::Server));
    assert_has(
        &out,
        &["unfinished text message: 1 frame(s), 3 bytes so far, and no frame with FIN = 1 yet"],
    );
    let out = explain(b"GET /chat HTTP/1.1\r\nHost: x\r\n", None);
    assert_has(
        &out,
        &[
            "incomplete HTTP head (29 bytes): no empty line ends it yet",
            "GET /chat HTTP/1.1",
        ],
    );
}

#[test]
fn the_sender_is_taken_from_the_mask_bit_when_not_given() {
    let out = explain(&example("masked-hello").bytes, None);
    assert_has(
        &out,
        &[
            "the first frame is masked, so these bytes are read as sent by the client",
            "frame 1 (client → server, 11 bytes)",
        ],
    );
}

// ----- The opening handshake -------------------------------------------------------------------

#[test]
fn the_rfc_handshake_is_explained_with_the_computed_accept() {
    let out = example("rfc-request").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "HTTP request (client → server, 230 bytes)",
            "GET /chat HTTP/1.1",
            "request line: a GET over HTTP/1.1, as the handshake must be (§4.2.1 item 1)",
            "Host: server.example.com",
            "required (§4.2.1 item 2)",
            "Upgrade: websocket",
            "required (§4.2.1 item 3)",
            "Connection: Upgrade",
            "required (§4.2.1 item 4)",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "base64(SHA-1(key + \"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\")) = s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "Origin: http://example.com",
            "optional (§4.2.1 item 7)",
            "Sec-WebSocket-Protocol: chat, superchat",
            "optional (§4.2.1 item 8)",
            "Sec-WebSocket-Version: 13",
            "required (§4.2.1 item 6)",
            "✓ a valid opening handshake",
            "HTTP/1.1 101 Switching Protocols",
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ],
    );
    let out = example("rfc-response").explain();
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "HTTP response (server → client, 159 bytes)",
            "status 101: the server switches to WebSocket",
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=: it matches (§4.1 item 4)",
            "one the client offered (chat, superchat)",
            "✓ the client accepts it",
        ],
    );
}

#[test]
fn frames_after_the_request_are_read_as_the_clients() {
    let mut bytes = annotate::RFC_REQUEST.as_bytes().to_vec();
    bytes.extend_from_slice(&example("masked-hello").bytes);
    let out = explain(&bytes, None);
    assert_valid(&out);
    assert_has(
        &out,
        &[
            "✓ a valid opening handshake",
            "frame 1 (client → server, 11 bytes)",
            "\"Hello\"",
        ],
    );
}

#[test]
fn refused_handshakes_give_the_status_that_wsloop_sends() {
    let cases = [
        (
            "bad-request-version",
            426,
            "§4.2.1 item 6, §4.4",
            "Sec-WebSocket-Version: 13",
        ),
        ("bad-request-post", 405, "§4.2.1 item 1", "Allow: GET"),
        ("bad-request-key", 400, "§4.2.1 item 5", "Connection: close"),
    ];
    for (name, status, section, header) in cases {
        let ex = example(name);
        let (request, _) = RequestParser::new(Limits::default())
            .push(&ex.bytes)
            .unwrap()
            .unwrap();
        let error = accept(&request).expect_err(name);
        assert_eq!(error.status(), status, "{name}");
        let out = ex.explain();
        assert_has(
            &out,
            &[
                &format!("✗ breaks RFC 6455 {section}"),
                &format!("→ the server refuses with HTTP {status} "),
                &format!("(wsloop: HandshakeError::{error:?}"),
                header,
            ],
        );
    }
    let out = example("bad-response-accept").explain();
    assert_has(
        &out,
        &[
            "✗ base64(SHA-1(key + GUID)) of the client's key is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, not this",
            "✗ breaks RFC 6455 §4.1 item 4",
            "→ the client MUST fail the WebSocket connection (§4.1)",
            "ClientHandshakeError::InvalidAccept",
        ],
    );
}

#[test]
fn plain_http_is_shown_not_judged() {
    let out = explain(
        b"POST /orders/42/remind HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
        None,
    );
    assert!(!out.contains('✗'), "{out}");
    assert_has(
        &out,
        &[
            "· no `Upgrade: websocket`: a plain HTTP request",
            "… 2 bytes more, not WebSocket",
        ],
    );
}

// ----- Streaming and input ---------------------------------------------------------------------

#[test]
fn the_annotation_is_the_same_in_any_chunking() {
    for ex in annotate::examples() {
        let whole = ex.explain();
        for chunk in [1, 2, 3, 7, 64] {
            let mut annotator = Annotator::new(Some(ex.from));
            if let Some((key, offered)) = ex.key {
                let offered: Vec<String> = offered.iter().map(|s| s.to_string()).collect();
                annotator.expect_key(key, &offered);
            }
            let mut pieces = String::new();
            for piece in ex.bytes.chunks(chunk) {
                pieces.push_str(&annotator.push(piece));
            }
            pieces.push_str(&annotator.finish());
            assert_eq!(pieces, whole, "{} in chunks of {chunk}", ex.name);
        }
    }
}

#[test]
fn hex_input_in_its_usual_spellings() {
    let want = vec![0x81, 0x05, 0x48];
    for text in [
        "81 05 48",
        "810548",
        "0x81, 0x05, 0x48",
        "\\x81\\x05\\x48",
        "81:05:48\n",
    ] {
        assert_eq!(parse_hex(text), Ok(want.clone()), "{text:?}");
    }
    assert!(parse_hex("8 1").is_err());
    assert!(parse_hex("810").is_err());
    assert!(parse_hex("zz").is_err());
    assert!(annotate::looks_like_hex(b"81 05 48 65\n"));
    assert!(!annotate::looks_like_hex(b"GET / HTTP/1.1\r\n"));
    assert!(!annotate::looks_like_hex(&[0x81, 0x05]));
}

// ----- tap: a real session through the proxy ---------------------------------------------------

struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        ctx.send(sid, message);
    }
}

/// Wait for a thread, at most `limit`.
fn join_within<T: Send + 'static>(thread: thread::JoinHandle<T>, limit: Duration, what: &str) -> T {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(thread.join());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .unwrap_or_else(|_| panic!("{what} panicked"))
}

#[test]
fn tap_forwards_a_real_session_and_shows_both_directions() {
    // The echo example's server, in-process: any path is an endpoint, every message echoed.
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .route_fn(|_| Ok("learner".to_string()))
        .build()
        .unwrap();
    let upstream = server.local_addr().unwrap();
    let handle = server.handle();
    let server_thread = thread::spawn(move || server.run(Echo));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tap_addr = listener.local_addr().unwrap();
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink: proxy::Sink = buffer.clone();
    let config = proxy::TapConfig {
        idle_timeout: Some(Duration::from_secs(10)),
        max_connections: Some(1),
        ..proxy::TapConfig::new(upstream)
    };
    let tap_thread = thread::spawn(move || proxy::serve(listener, config, sink));

    let mut client = Client::builder()
        .connect_timeout(Some(Duration::from_secs(5)))
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)))
        .protocol("chat")
        .connect(&format!("ws://{tap_addr}/echo"))
        .unwrap();
    let text = "hello through the tap 你好";
    client.send_text(text).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text(text.into()));
    client.send_binary(&[1, 2, 3]).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Binary(vec![1, 2, 3]));
    client.close(CloseCode::NormalClosure, "bye").unwrap();

    join_within(tap_thread, Duration::from_secs(15), "the tap").unwrap();
    handle.shutdown();
    join_within(server_thread, Duration::from_secs(10), "the server").unwrap();

    let out = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    assert!(!out.contains('✗'), "{out}");
    assert_has(
        &out,
        &[
            "connected; forwarding to",
            // The handshake, both ways, the answer checked against the client's key.
            "#1 HTTP request (client → server,",
            "#1 GET /echo HTTP/1.1",
            "#1 Sec-WebSocket-Protocol: chat",
            "#1 ✓ a valid opening handshake",
            "#1 HTTP response (server → client,",
            "it matches (§4.1 item 4)",
            "#1 ✓ the client accepts it",
            // The text, masked on the way up and not on the way down.
            &format!("#1 frame 1 (client → server, {} bytes)", 2 + 4 + text.len()),
            &format!("#1 frame 1 (server → client, {} bytes)", 2 + text.len()),
            &format!("text {text:?} valid UTF-8"),
            // The binary echo.
            "#1 frame 2 (client → server, 9 bytes)",
            "#1 frame 2 (server → client, 5 bytes)",
            "#1 01 02 03 payload 3 bytes",
            "✓ a complete binary message of 3 bytes in 1 frame",
            // The closing handshake: the client's Close and the server's answer.
            "#1 frame 3 (client → server, 11 bytes)",
            "reason \"bye\"",
            "#1 frame 3 (server → client, 4 bytes)",
            "#1 03 e8 code 1000 normal closure",
            "#1 server → client: end of stream after",
            "#1 client → server: end of stream after",
            "#1 connection closed",
        ],
    );
    // Each frame is annotated before it is forwarded: the client's text comes before its echo.
    let up = out.find("frame 1 (client → server").unwrap();
    let down = out.find("frame 1 (server → client").unwrap();
    assert!(up < down, "{out}");
    let masked = squeezed(&out);
    let up_block = &masked[masked.find("frame 1 (client → server").unwrap()..];
    assert!(up_block.contains("MASK 1 masked, as every client frame must be"));
    let down_block = &masked[masked.find("frame 1 (server → client").unwrap()..];
    assert!(down_block.contains("MASK 0 not masked, as a server's frames must not be"));
}

// ----- docs/PROTOCOL.md ------------------------------------------------------------------------

const DOC: &str = "docs/PROTOCOL.md";
const OPEN: &str = "<!-- dump: ";
const CLOSE: &str = "<!-- /dump -->";

/// The document with every dump block recomputed from the example it names, and the names.
fn regenerate(doc: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(doc.len());
    let mut names = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(OPEN) {
        let header_end = start + rest[start..].find("-->").expect("an unclosed dump marker") + 3;
        let name = rest[start + OPEN.len()..header_end - 3].trim().to_string();
        let end = rest[header_end..]
            .find(CLOSE)
            .unwrap_or_else(|| panic!("dump {name} has no {CLOSE}"))
            + header_end;
        let ex = annotate::example(&name)
            .unwrap_or_else(|| panic!("{DOC} names a dump {name:?} that is no example"));
        out.push_str(&rest[..header_end]);
        out.push_str("\n```text\n");
        out.push_str(ex.explain().trim_end());
        out.push_str("\n```\n");
        out.push_str(CLOSE);
        rest = &rest[end + CLOSE.len()..];
        names.push(name);
    }
    out.push_str(rest);
    (out, names)
}

#[test]
fn protocol_md_dumps_are_what_the_annotator_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(DOC);
    let doc = std::fs::read_to_string(&path).unwrap();
    let (fresh, names) = regenerate(&doc);
    assert!(names.len() >= 10, "only {} dumps in {DOC}", names.len());
    if std::env::var_os("UPDATE_PROTOCOL_MD").is_some() {
        if fresh != doc {
            std::fs::write(&path, &fresh).unwrap();
        }
        return;
    }
    if fresh != doc {
        let line = doc
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or(doc.lines().count().min(fresh.lines().count()), |i| i);
        panic!(
            "{DOC} is out of date from line {} on: the annotator now prints\n{}\n\
             Run `UPDATE_PROTOCOL_MD=1 cargo test --test learners protocol_md` to rewrite it.",
            line + 1,
            fresh
                .lines()
                .skip(line)
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn protocol_md_links_point_at_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join(DOC)).unwrap();
    let mut checked = 0;
    for (i, _) in doc.match_indices("](") {
        let target = &doc[i + 2..];
        let target = &target[..target.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap();
        assert!(
            root.join("docs").join(file).exists(),
            "{DOC} links to {target}, which does not exist"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} links to the source in {DOC}");
}
