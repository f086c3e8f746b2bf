//! Server behaviour over real loopback sockets: handshake, echo, fragmentation, ping/pong,
//! closing from either side, timeouts, duplicate sids, send/broadcast, the cross-thread
//! handle, backpressure and shutdown. Every test is bounded in time and waits for conditions
//! (channels with timeouts), not fixed sleeps.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::*;
use wsloop::client::{Client, ClientError};
use wsloop::server::CloseReason;
use wsloop::{CloseCode, CloseFrame, Message};

#[test]
fn handshake_succeeds_and_each_bad_request_gets_its_status() {
    let server = TestServer::start(|_| {});
    let (_alice, head) = raw_session_head(&server, "alice");
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));

    let cases = [
        (
            upgrade_request("/ws/a", "").replace("GET", "POST"),
            "405",
            Some("Allow: GET"),
        ),
        (
            upgrade_request("/ws/a", "").replace("HTTP/1.1", "HTTP/1.0"),
            "400",
            None,
        ),
        (
            upgrade_request("/ws/a", "")
                .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
            None,
        ),
        (
            upgrade_request("/ws/a", "").replace("Host: localhost\r\n", ""),
            "400",
            None,
        ),
        (
            upgrade_request("/ws/a", "").replace("Version: 13", "Version: 8"),
            "426",
            Some("Sec-WebSocket-Version: 13"),
        ),
        (
            upgrade_request("/ws/a", "").replace("Connection: Upgrade", "Connection: close"),
            "400",
            None,
        ),
        (
            upgrade_request("/ws/a", &format!("X-Pad: {}\r\n", "a".repeat(16 * 1024))),
            "431",
            None,
        ),
        (upgrade_request("/elsewhere/a", ""), "404", None),
        (upgrade_request("/ws/", ""), "404", None),
    ];
    for (request, status, header) in cases {
        let answer = http(server.addr, &request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?} -> {answer}"
        );
        if let Some(header) = header {
            assert!(answer.contains(&format!("{header}\r\n")), "{answer}");
        }
    }
    // Plain HTTP goes to on_request.
    let answer = http(server.addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "));
    assert!(
        server.seen.try_recv().is_err(),
        "no refused request opened a session"
    );
    server.stop();
}

#[test]
fn echoes_text_and_binary_at_the_length_form_edges() {
    let server = TestServer::start(|_| {});
    let mut client = server.connect("echo");
    for size in [0usize, 125, 126, 65535, 65536, 1 << 20] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        client.send_text(&text).unwrap();
        assert_eq!(client.recv().unwrap(), Message::Text(text), "text {size}");
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        client.send_binary(&bytes).unwrap();
        assert_eq!(
            client.recv().unwrap(),
            Message::Binary(bytes),
            "binary {size}"
        );
    }
    client.close(CloseCode::NormalClosure, "done").unwrap();
    let closed = server.wait_for(|s| matches!(s, Seen::Close(..)));
    assert_eq!(
        closed,
        Seen::Close(
            "echo".into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, "done"))
        )
    );
    server.stop();
}

#[test]
fn fragmented_input_with_a_ping_in_the_middle() {
    let server = TestServer::start(|_| {});
    let mut s = raw_session(&server, "frag");
    let mut bytes = masked(0x01, "κό".as_bytes()); // Text, FIN clear
    bytes.extend(masked(0x89, b"mid")); // Ping
    bytes.extend(masked(0x00, "σ".as_bytes())); // Continuation
    bytes.extend(masked(0x80, "με".as_bytes())); // Continuation, FIN
                                                 // Byte by byte, to cross every boundary.
    for b in &bytes {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(
        read_frame(&mut s),
        (0x8a, b"mid".to_vec()),
        "the pong first"
    );
    assert_eq!(read_frame(&mut s), (0x81, "κόσμε".as_bytes().to_vec()));
    server.stop();
}

#[test]
fn a_request_and_its_first_frame_in_one_write() {
    let server = TestServer::start(|_| {});
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = upgrade_request("/ws/eager", "").into_bytes();
    bytes.extend(masked(0x81, b"early"));
    s.write_all(&bytes).unwrap();
    assert!(read_head(&mut s).starts_with(b"HTTP/1.1 101 "));
    assert_eq!(read_frame(&mut s), (0x81, b"early".to_vec()));
    assert_eq!(server.next(), Seen::Open("eager".into()));
    assert_eq!(
        server.next(),
        Seen::Message("eager".into(), Message::Text("early".into()))
    );
    server.stop();
}

#[test]
fn ping_gets_pong() {
    let server = TestServer::start(|_| {});
    let mut client = server.connect("pinger");
    client.ping(b"are you there").unwrap();
    assert_eq!(
        client.recv_event().unwrap(),
        wsloop::Event::Pong(b"are you there".to_vec())
    );
    server.stop();
}

#[test]
fn server_initiated_close_is_answered_and_reported() {
    let server = TestServer::start(|_| {});
    let mut client = server.connect("bob");
    server
        .handle
        .close("bob", CloseCode::PolicyViolation, "go away")
        .unwrap();
    match client.recv() {
        Err(ClientError::Closed(frame)) => {
            assert_eq!(
                frame,
                CloseFrame::new(CloseCode::PolicyViolation, "go away")
            )
        }
        other => panic!("expected the server's Close, got {other:?}"),
    }
    assert_eq!(
        server.next(),
        Seen::Close(
            "bob".into(),
            CloseReason::ByServer {
                close: CloseFrame::new(CloseCode::PolicyViolation, "go away"),
                answered: true
            }
        )
    );
    server.stop();
}

#[test]
fn close_timeout_drops_a_peer_that_never_answers() {
    let server = TestServer::start(|c| c.close_timeout = Duration::from_millis(300));
    let mut s = raw_session(&server, "mute");
    let started = Instant::now();
    server
        .handle
        .close("mute", CloseCode::NormalClosure, "")
        .unwrap();
    assert_eq!(read_frame(&mut s).0, 0x88);
    // We never answer; the server gives up after the close timeout and closes TCP.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(
        server.next(),
        Seen::Close(
            _,
            CloseReason::ByServer {
                answered: false,
                ..
            }
        )
    ));
    server.stop();
}

#[test]
fn a_client_that_closes_and_keeps_the_socket_open_is_dropped_after_the_close_timeout() {
    let server = TestServer::start(|c| c.close_timeout = Duration::from_millis(300));
    let mut s = raw_session(&server, "lingerer");
    s.write_all(&masked(0x88, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(read_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    // The server shuts its side after the handshake; we keep ours open.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        server.next(),
        Seen::Close(
            "lingerer".into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, ""))
        )
    );
    server.stop();
}

#[test]
fn idle_connections_are_pinged_then_dropped_without_a_pong() {
    let server = TestServer::start(|c| {
        c.idle_timeout = Duration::from_millis(200);
        c.pong_timeout = Duration::from_millis(200);
    });
    // A client that answers pings (the blocking client does while reading) stays.
    let mut alive = server.connect("alive");
    let alive = std::thread::spawn(move || {
        let message = alive.recv();
        (alive, message)
    });
    let mut mute = raw_session(&server, "mute");
    assert_eq!(read_frame(&mut mute), (0x89, vec![]), "a keepalive Ping");
    // Never answer: dropped after the pong timeout.
    let dropped = server.wait_for(|s| matches!(s, Seen::Close(..)));
    assert_eq!(
        dropped,
        Seen::Close("mute".into(), CloseReason::IdleTimeout)
    );
    // Meanwhile the live one went through the same ping rounds, answered, and is still open.
    server.handle.send("alive", "still here").unwrap();
    let (mut alive, message) = alive.join().unwrap();
    assert_eq!(message.unwrap(), Message::Text("still here".into()));
    alive.send_text("echo").unwrap();
    assert_eq!(alive.recv().unwrap(), Message::Text("echo".into()));
    assert!(server.handle.session_count() == 1);
    server.stop();
}

#[test]
fn a_stalled_handshake_is_dropped_after_the_handshake_timeout() {
    let server = TestServer::start(|c| c.handshake_timeout = Duration::from_millis(200));
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /ws/slow HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let started = Instant::now();
    let _ = s.read_to_end(&mut rest);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(rest.is_empty());
    // And the server still serves others.
    let mut client = server.connect("fresh");
    client.send_text("hi").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("hi".into()));
    server.stop();
}

#[test]
fn a_duplicate_sid_replaces_the_old_connection() {
    let server = TestServer::start(|_| {});
    let mut old = server.connect("tab");
    let mut new = Client::builder()
        .read_timeout(Some(WAIT))
        .connect(&server.url("tab"))
        .unwrap();
    // The old session ends for the application before the new one begins.
    assert_eq!(
        server.next(),
        Seen::Close("tab".into(), CloseReason::Replaced)
    );
    assert_eq!(server.next(), Seen::Open("tab".into()));
    match old.recv() {
        Err(ClientError::Closed(frame)) => {
            assert_eq!(frame, CloseFrame::new(CloseCode::Private(4000), "replaced"))
        }
        other => panic!("expected 4000, got {other:?}"),
    }
    // Messages for the sid go to the new connection only.
    server.handle.send("tab", "to the new one").unwrap();
    assert_eq!(new.recv().unwrap(), Message::Text("to the new one".into()));
    // on_close is not called a second time when the old TCP connection ends.
    new.close(CloseCode::NormalClosure, "").unwrap();
    let closes: Vec<Seen> =
        std::iter::from_fn(|| server.seen.recv_timeout(Duration::from_millis(500)).ok())
            .filter(|s| matches!(s, Seen::Close(..)))
            .collect();
    assert_eq!(
        closes,
        [Seen::Close(
            "tab".into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, ""))
        )]
    );
    server.stop();
}

#[test]
fn send_to_a_sid_and_broadcast_to_500_connections() {
    let server = TestServer::start_with(false, |_| {});
    let mut clients: Vec<Client> = (0..500).map(|i| server.connect(&format!("c{i}"))).collect();
    // From another thread, through the handle.
    let handle = server.handle.clone();
    std::thread::spawn(move || {
        handle.send("c7", "just for you").unwrap();
        handle.broadcast("order 42").unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(
        clients[7].recv().unwrap(),
        Message::Text("just for you".into())
    );
    for client in &mut clients {
        assert_eq!(client.recv().unwrap(), Message::Text("order 42".into()));
    }
    // From inside the loop, the count is exact: the sessions of the handler's own loop, the
    // others' share being passed to their loops (connections are spread evenly).
    let answer = http(
        server.addr,
        "POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    let here = 500 / common::workers();
    assert!(answer.ends_with(&format!("\r\n\r\n{here}")), "{answer}");
    for client in &mut clients {
        assert_eq!(client.recv().unwrap(), Message::Text("hello".into()));
    }
    assert_eq!(server.handle.session_count(), 500);
    server.stop();
}

#[test]
fn a_client_that_never_reads_is_closed_and_the_others_get_everything_in_order() {
    let server = TestServer::start_with(false, |c| c.max_queued_bytes = 256 << 10);
    let mut readers: Vec<Client> = (0..3).map(|i| server.connect(&format!("r{i}"))).collect();
    let _stuck = raw_session(&server, "stuck");
    let handle = server.handle.clone();
    // The producer stays at most 8 messages ahead of the healthy readers.
    let (acks, acked) = channel::<u32>();
    let sender = std::thread::spawn(move || {
        for i in 0..200u32 {
            if i >= 8 {
                acked.recv_timeout(WAIT).unwrap();
            }
            let mut payload = vec![0u8; 64 << 10];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            handle.broadcast(payload).unwrap();
        }
    });
    for i in 0..200u32 {
        for reader in &mut readers {
            match reader.recv().unwrap() {
                Message::Binary(b) => assert_eq!(&b[..4], &i.to_be_bytes(), "message {i}"),
                other => panic!("{other:?}"),
            }
        }
        let _ = acks.send(i);
    }
    sender.join().unwrap();
    let closed = server.wait_for(|s| matches!(s, Seen::Close(..)));
    assert_eq!(
        closed,
        Seen::Close("stuck".into(), CloseReason::WriteQueueFull)
    );
    server.stop();
}

#[test]
fn graceful_shutdown_closes_every_session_with_1001() {
    let mut server = TestServer::start(|_| {});
    let mut a = server.connect("a");
    let mut b = server.connect("b");
    let handle = server.handle.clone();
    let shutdown = std::thread::spawn(move || handle.shutdown());
    for client in [&mut a, &mut b] {
        match client.recv() {
            Err(ClientError::Closed(frame)) => {
                assert_eq!(
                    frame,
                    CloseFrame::new(CloseCode::GoingAway, "server shutdown")
                )
            }
            other => panic!("expected 1001, got {other:?}"),
        }
    }
    // `shutdown` returns once the loop has stopped.
    shutdown.join().unwrap();
    assert!(server.handle.is_stopped());
    server.thread.take().unwrap().join().unwrap().unwrap();
    let mut closes: Vec<Seen> = server.seen.try_iter().collect();
    closes.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        closes,
        [
            Seen::Close("a".into(), CloseReason::Shutdown),
            Seen::Close("b".into(), CloseReason::Shutdown)
        ]
    );
    assert_eq!(
        server.handle.send("a", "late"),
        Err(wsloop::server::HandleError::Stopped)
    );
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "the listener is closed"
    );
}

#[test]
fn shutdown_from_a_handler_does_not_deadlock() {
    let mut server = TestServer::start(|_| {});
    let _client = server.connect("x");
    let answer = http(
        server.addr,
        "POST /shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // The client above never reads: the loop gives up on it after the close timeout.
    server.thread.take().unwrap().join().unwrap().unwrap();
    assert!(server.handle.is_stopped());
}

#[test]
fn refused_connections_hold_no_slot_while_they_stay_open() {
    let server = TestServer::start(|c| c.max_connections = 2);
    let mut a = server.connect("a");
    let _b = server.connect("b");
    // Three refused clients that keep their sockets open: the server holds each until it
    // closes (or a timeout), but they are not among the `max_connections` admitted.
    let refused: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(upgrade_request(&format!("/ws/r{i}"), "").as_bytes())
                .unwrap();
            let head = String::from_utf8(read_head(&mut s)).unwrap();
            assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
            s
        })
        .collect();
    a.close(CloseCode::NormalClosure, "").unwrap();
    server.wait_for(|s| matches!(s, Seen::Close(..)));
    // One admitted connection is left, so the next one is admitted too.
    let mut c = server.connect("c");
    c.send_text("in").unwrap();
    assert_eq!(c.recv().unwrap(), Message::Text("in".into()));
    drop(refused);
    server.stop();
}

#[test]
fn connections_over_the_maximum_get_503_and_the_others_carry_on() {
    let server = TestServer::start(|c| c.max_connections = 2);
    let mut a = server.connect("a");
    let _b = server.connect("b");
    let answer = http(server.addr, &upgrade_request("/ws/c", ""));
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    a.send_text("fine").unwrap();
    assert_eq!(a.recv().unwrap(), Message::Text("fine".into()));
    // A slot frees up when a session ends.
    a.close(CloseCode::NormalClosure, "").unwrap();
    server.wait_for(|s| matches!(s, Seen::Close(..)));
    let _c = server.connect("c");
    server.stop();
}

/// The log lines kept by [`MarkedLines`].
static MARKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A logger that keeps the server's lines containing "forged" (the other tests of this
/// binary log too, and are not kept).
struct MarkedLines;

impl log::Log for MarkedLines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = record.args().to_string();
        if record.target().starts_with("wsloop::server") && line.contains("forged") {
            MARKED.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_sid_with_a_line_break_cannot_forge_log_lines() {
    static LOGGER: MarkedLines = MarkedLines;
    log::set_logger(&LOGGER).expect("no other test of this binary sets a logger");
    log::set_max_level(log::LevelFilter::Debug);
    // A custom route that percent-decodes the sid, as an application may: `%0A` becomes a
    // line break in the sid, which the server logs on open, on messages and on close.
    let server = TestServer::start(|c| {
        c.route = wsloop::server::Route::custom(|request| {
            let sid = request.path().strip_prefix("/ws/").ok_or(404u16)?;
            Ok(sid.replace("%0A", "\n").replace("%20", " "))
        })
    });
    let sid = "a\nINFO forged line";
    let mut client = Client::builder()
        .read_timeout(Some(WAIT))
        .connect(&server.url("a%0AINFO%20forged%20line"))
        .unwrap();
    assert_eq!(server.next(), Seen::Open(sid.into()));
    client.send_text("hi").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("hi".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    assert!(
        matches!(server.wait_for(|s| matches!(s, Seen::Close(..))), Seen::Close(s, _) if s == sid)
    );
    server.stop();
    let lines = MARKED.lock().unwrap().clone();
    // Open, message, close from the client, and the close report, at least.
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\n'), "a raw line break in {line:?}");
        assert!(line.contains("a\\nINFO forged line"), "{line:?}");
    }
}
