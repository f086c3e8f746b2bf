//! Hostile clients over loopback: half-open handshakes, stalled messages, oversized frames
//! and heads, abrupt resets, ping floods, invalid closes, bytes after a close. After each,
//! a fresh client still gets normal service and `on_close` came exactly once per opened
//! session, with the right reason. Bounded in count and time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use socket2::SockRef;
use wsloop::client::Client;
use wsloop::server::CloseReason;
use wsloop::{CloseCode, CloseFrame, Message, ProtocolError};

/// A fresh client gets normal service.
fn assert_serves(server: &TestServer, sid: &str) {
    let mut client = server.connect(sid);
    client.send_text("are you ok?").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("are you ok?".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    assert_eq!(
        server.wait_for(|s| matches!(s, Seen::Close(..))),
        Seen::Close(
            sid.into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, ""))
        )
    );
}

/// No more handler events arrive (in particular, no second `on_close`).
fn assert_quiet(server: &TestServer) {
    if let Ok(seen) = server.seen.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected handler event: {seen:?}");
    }
}

/// Read until EOF; true if the peer closed (EOF or reset) within the wait.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// The status code of a Close frame's payload.
fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

#[test]
fn slowloris_handshakes_are_dropped_and_others_are_served_meanwhile() {
    let server = TestServer::start(|c| c.handshake_timeout = Duration::from_millis(500));
    let mut stalled: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let half = format!("GET /ws/stall{i} HTTP/1.1\r\nHost: x\r\nUpgrade: webs");
            s.write_all(half.as_bytes()).unwrap();
            s
        })
        .collect();
    // While they hang, a real client is served.
    let mut client = server.connect("fresh");
    client.send_text("hello").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("hello".into()));
    // Then every stalled one is dropped without an answer.
    for s in &mut stalled {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        assert!(sink.is_empty());
    }
    client.send_text("still").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("still".into()));
    drop(client);
    assert_eq!(
        server.wait_for(|s| matches!(s, Seen::Close(..))),
        Seen::Close("fresh".into(), CloseReason::ConnectionLost)
    );
    assert_serves(&server, "after");
    server.stop();
}

#[test]
fn a_message_never_finished_is_cut_off_even_with_pings_in_between() {
    let server = TestServer::start(|c| c.message_timeout = Duration::from_millis(400));
    let mut s = raw_session(&server, "trickle");
    s.write_all(&masked(0x01, b"the start of something"))
        .unwrap();
    // Keep the connection "alive" with pings: they do not extend the message deadline.
    let mut close = None;
    for _ in 0..40 {
        s.write_all(&masked(0x89, b"")).unwrap();
        let (op, payload) = read_frame(&mut s);
        if op == 0x88 {
            close = Some(payload);
            break;
        }
        assert_eq!(op, 0x8a);
        std::thread::sleep(Duration::from_millis(50));
    }
    let close = close.expect("the server closed the stalled message");
    assert_eq!(close_code(&close), 1008);
    assert!(closed_by_server(&mut s));
    assert_eq!(
        server.next(),
        Seen::Close("trickle".into(), CloseReason::MessageTimeout)
    );
    assert_serves(&server, "after");
    server.stop();
}

#[test]
fn oversized_frames_messages_and_heads_get_the_rfc_answer() {
    let server = TestServer::start(|_| {});
    // A header announcing 2^63 - 1 bytes: 1009 from the header alone.
    let mut s = raw_session(&server, "huge");
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&header).unwrap();
    let (op, payload) = read_frame(&mut s);
    assert_eq!((op, close_code(&payload)), (0x88, 1009));
    assert!(closed_by_server(&mut s));
    assert_eq!(
        server.next(),
        Seen::Close(
            "huge".into(),
            CloseReason::ProtocolError(ProtocolError::FrameTooLarge)
        )
    );

    // A message of the default limit + 1 in two fragments: 1009 at the second header.
    let limit = wsloop::session::SessionLimits::default().max_message_size;
    let mut s = raw_session(&server, "big");
    let first = vec![0u8; limit / 2];
    s.write_all(&masked(0x02, &first)).unwrap();
    let mut second = vec![0x80, 0x80 | 127];
    second.extend_from_slice(&((limit - limit / 2) as u64 + 1).to_be_bytes());
    second.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&second).unwrap();
    let (op, payload) = read_frame(&mut s);
    assert_eq!((op, close_code(&payload)), (0x88, 1009));
    assert_eq!(
        server.next(),
        Seen::Close(
            "big".into(),
            CloseReason::ProtocolError(ProtocolError::MessageTooLarge)
        )
    );

    // A 16 KiB header block: 431, and no session.
    let answer = http(
        server.addr,
        &upgrade_request("/ws/heads", &format!("X-Pad: {}\r\n", "a".repeat(16 << 10))),
    );
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

/// Close the socket with SO_LINGER 0: the kernel sends a reset, not a FIN.
fn reset(s: TcpStream) {
    SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

#[test]
fn abrupt_resets_mid_frame_and_mid_handshake() {
    let server = TestServer::start(|_| {});
    // In the middle of a frame.
    let mut s = raw_session(&server, "reset-frame");
    let frame = masked(0x82, &[7u8; 1000]);
    s.write_all(&frame[..500]).unwrap();
    reset(s);
    match server.next() {
        Seen::Close(sid, reason) => {
            assert_eq!(sid, "reset-frame");
            assert!(
                matches!(
                    reason,
                    CloseReason::ConnectionLost
                        | CloseReason::Io(std::io::ErrorKind::ConnectionReset)
                ),
                "{reason:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // In the middle of the handshake: no session was opened, so no on_close.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /ws/reset-hs HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    reset(s);
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

#[test]
fn a_ping_flood_from_a_client_that_never_reads_is_held_back() {
    let server = TestServer::start(|c| {
        c.max_queued_bytes = 64 << 10;
        c.idle_timeout = Duration::from_millis(300);
        c.pong_timeout = Duration::from_millis(300);
    });
    let s = raw_session(&server, "flood");
    // 125-byte pings, never reading the pongs. The server stops reading from this client
    // once its queue is over the mark, so our writes block (TCP backpressure) instead of the
    // server's memory growing.
    let ping = masked(0x89, &[0u8; 125]);
    let mut writer = s.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut sent = 0usize;
    for _ in 0..200_000 {
        match writer.write_all(&ping) {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    assert!(sent < 200_000, "the flood was never held back");
    // A client that neither reads nor answers is dropped, with the reason that it was stuck.
    assert_eq!(
        server.wait_for(|s| matches!(s, Seen::Close(..))),
        Seen::Close("flood".into(), CloseReason::WriteQueueFull)
    );
    drop(s);
    assert_serves(&server, "after");
    server.stop();
}

#[test]
fn every_invalid_close_code_is_a_protocol_error() {
    let server = TestServer::start(|_| {});
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let sid = format!("bad{code}");
        let mut s = raw_session(&server, &sid);
        s.write_all(&masked(0x88, &code.to_be_bytes())).unwrap();
        let (op, payload) = read_frame(&mut s);
        assert_eq!((op, close_code(&payload)), (0x88, 1002), "code {code}");
        assert!(closed_by_server(&mut s));
        assert_eq!(
            server.next(),
            Seen::Close(
                sid,
                CloseReason::ProtocolError(ProtocolError::InvalidCloseCode(code))
            )
        );
    }
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

#[test]
fn bytes_after_a_close_are_ignored() {
    let server = TestServer::start(|_| {});
    let mut s = raw_session(&server, "chatty");
    let mut bytes = masked(0x88, &1000u16.to_be_bytes());
    bytes.extend(masked(0x81, b"after the close"));
    bytes.extend(b"\xff\xff\xff garbage");
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    assert!(closed_by_server(&mut s));
    assert_eq!(
        server.next(),
        Seen::Close(
            "chatty".into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, ""))
        )
    );
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

#[test]
fn a_flood_of_connections_to_the_maximum_leaves_existing_sessions_alone() {
    let server = TestServer::start(|c| c.max_connections = 50);
    let mut existing = server.connect("existing");
    let flood: Vec<Client> = (0..49)
        .map(|i| server.connect(&format!("flood{i}")))
        .collect();
    // The 51st and later get 503 while the 50 stay open.
    for _ in 0..20 {
        let answer = http(server.addr, &upgrade_request("/ws/one-too-many", ""));
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    }
    existing.send_text("unaffected").unwrap();
    assert_eq!(existing.recv().unwrap(), Message::Text("unaffected".into()));
    drop(flood);
    for _ in 0..49 {
        assert!(matches!(
            server.wait_for(|s| matches!(s, Seen::Close(..))),
            Seen::Close(_, CloseReason::ConnectionLost)
        ));
    }
    assert_serves(&server, "after");
    server.stop();
}

/// `POST /broadcast` with `headers`, and the body `hello`: the status line of the answer.
fn post_status(server: &TestServer, headers: &str) -> String {
    let answer = http(
        server.addr,
        &format!("POST /broadcast HTTP/1.1\r\nHost: x\r\n{headers}\r\nhello"),
    );
    answer.lines().next().unwrap_or("").to_string()
}

#[test]
fn content_length_must_be_one_plain_number() {
    let server = TestServer::start(|_| {});
    // RFC 9110 §8.6, RFC 9112 §6.3 item 5: a valid one, and the same one twice, still work.
    assert_eq!(
        post_status(&server, "Content-Length: 5\r\n"),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        post_status(&server, "Content-Length: 5\r\nContent-Length: 5\r\n"),
        "HTTP/1.1 200 OK"
    );
    // Differing duplicates, a sign, leading zeros, a list that disagrees, an overflow: 400.
    for bad in [
        "Content-Length: 5\r\nContent-Length: 3\r\n",
        "Content-Length: 3\r\nContent-Length: 5\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 005\r\n",
        "Content-Length: 5, 3\r\n",
        "Content-Length: 99999999999999999999999\r\n",
    ] {
        assert_eq!(
            post_status(&server, bad),
            "HTTP/1.1 400 Bad Request",
            "{bad:?}"
        );
    }
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

/// Answers every request with a header whose value tries to add a second header.
struct Splitter;

impl wsloop::server::Handler for Splitter {
    fn on_request(
        &mut self,
        _ctx: &mut wsloop::server::Context<'_>,
        request: &wsloop::server::HttpRequest,
    ) -> wsloop::server::HttpResponse {
        let response = wsloop::server::HttpResponse::text(200, "fine\n");
        match request.path() {
            "/split" => response.with_header("X-Note", "a\r\nSet-Cookie: sid=evil"),
            "/nul" => response.with_header("X-Note", "a\0b"),
            "/name" => response.with_header("X Note", "a"),
            _ => response.with_header("X-Note", "plain"),
        }
    }
}

#[test]
fn a_response_header_with_a_line_break_becomes_a_500() {
    let server = wsloop::server::Server::builder()
        .bind("127.0.0.1:0")
        .build()
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (handle, thread) = server.spawn(Splitter).unwrap();
    let good = http(addr, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(good.starts_with("HTTP/1.1 200 OK\r\n"), "{good}");
    assert!(good.contains("\r\nX-Note: plain\r\n"), "{good}");
    for path in ["/split", "/nul", "/name"] {
        let answer = http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(
            answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{path}: {answer}"
        );
        assert!(
            !answer.contains("evil") && !answer.contains("X-Note"),
            "{answer}"
        );
    }
    handle.shutdown();
    thread.join().unwrap().unwrap();
}

#[test]
fn a_failed_connection_lets_the_client_read_the_close_and_answer_it() {
    // Issue 19 point 9: after failing a connection the server must not reset it while the
    // client's bytes are still unread, or the client loses our Close (aiohttp saw 1006).
    let server = TestServer::start(|c| c.session.max_frame_size = 64 << 10);
    for round in 0..5 {
        let sid = format!("toolarge{round}");
        let mut s = raw_session(&server, &sid);
        // A frame announcing 1 MiB, over the 64 KiB frame limit, and its payload keeps
        // coming from another thread while the server fails the connection.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 20).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        s.write_all(&header).unwrap();
        let mut writer = s.try_clone().unwrap();
        let feeder = std::thread::spawn(move || {
            let chunk = [0x55u8; 16 << 10];
            for _ in 0..64 {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        // The whole Close frame, with 1009 (RFC 6455 §7.4.1).
        let (op, payload) = read_frame(&mut s);
        assert_eq!((op, close_code(&payload)), (0x88, 1009), "round {round}");
        feeder.join().unwrap();
        // Our answer goes through: the server has not reset the connection.
        s.write_all(&masked(0x88, &1009u16.to_be_bytes()))
            .expect("the server reset the connection before we could answer its Close");
        s.shutdown(std::net::Shutdown::Write).unwrap();
        // Then a clean end: EOF, not ECONNRESET, and nothing after the Close.
        let mut rest = Vec::new();
        let end = s.read_to_end(&mut rest);
        assert!(end.is_ok(), "round {round}: {end:?}");
        assert!(
            rest.is_empty(),
            "round {round}: {} bytes after the Close",
            rest.len()
        );
        assert_eq!(
            server.next(),
            Seen::Close(
                sid,
                CloseReason::ProtocolError(ProtocolError::FrameTooLarge)
            )
        );
    }
    assert_serves(&server, "after");
    assert_quiet(&server);
    server.stop();
}

/// Whether the server left `s` open: nothing to read and no EOF within a short wait.
fn still_open(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        // EOF, or a byte: the server answered or closed it.
        Ok(0 | 1..) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn one_address_over_its_connection_limit_gets_429_and_its_others_carry_on() {
    const LIMIT: usize = 4;
    let server = TestServer::start(|c| c.max_connections_per_ip = LIMIT);
    let mut clients: Vec<Client> = (0..LIMIT)
        .map(|i| server.connect(&format!("c{i}")))
        .collect();
    // RFC 6585 §4: the next ones from 127.0.0.1 get 429 with Retry-After, counted over
    // every loop of the server (`WSLOOP_TEST_WORKERS`), and hold no slot.
    for _ in 0..3 {
        let answer = http(server.addr, &upgrade_request("/ws/extra", ""));
        assert!(
            answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nRetry-After: 5\r\n"), "{answer}");
    }
    // A connection that has sent nothing counts too: an idle one also holds a slot.
    let answer = http(server.addr, "");
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    for (i, client) in clients.iter_mut().enumerate() {
        client.send_text(&format!("still here {i}")).unwrap();
        assert_eq!(
            client.recv().unwrap(),
            Message::Text(format!("still here {i}"))
        );
    }
    // One closes: its slot comes back, and the next connection is admitted.
    clients
        .pop()
        .unwrap()
        .close(CloseCode::NormalClosure, "")
        .unwrap();
    server.wait_for(|s| matches!(s, Seen::Close(..)));
    let mut again = server.connect("again");
    again.send_text("in").unwrap();
    assert_eq!(again.recv().unwrap(), Message::Text("in".into()));
    server.stop();
}

#[test]
fn a_full_server_drops_its_oldest_half_sent_head_for_a_newcomer() {
    const MAX: usize = 4;
    let server = TestServer::start(|c| c.max_connections = MAX);
    // Every slot taken by a head that never ends (each renewed before the handshake timeout
    // would hold the slot for good).
    let mut heads: Vec<TcpStream> = (0..MAX)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(format!("GET /ws/h{i} HTTP/1.1\r\nHost: x\r\n").as_bytes())
                .unwrap();
            s
        })
        .collect();
    // The newcomer completes its upgrade and is served. (With several loops, loop 0 accepts
    // and drops the oldest head it holds: the first one, as it kept the first connection.)
    let mut newcomer = server.connect("newcomer");
    newcomer.send_text("served").unwrap();
    assert_eq!(newcomer.recv().unwrap(), Message::Text("served".into()));
    heads[0].set_read_timeout(Some(WAIT)).unwrap();
    assert!(
        closed_by_server(&mut heads[0]),
        "the oldest head is dropped"
    );
    for (i, head) in heads.iter_mut().enumerate().skip(1) {
        assert!(still_open(head), "head {i} was dropped too");
    }
    drop(heads);
    server.stop();
}

#[test]
fn a_server_full_of_sessions_still_refuses_a_newcomer_with_503() {
    const MAX: usize = 3;
    let server = TestServer::start(|c| c.max_connections = MAX);
    let mut sessions: Vec<Client> = (0..MAX).map(|i| server.connect(&format!("s{i}"))).collect();
    for _ in 0..3 {
        let answer = http(server.addr, &upgrade_request("/ws/late", ""));
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    }
    // No session was dropped for the newcomers.
    for (i, session) in sessions.iter_mut().enumerate() {
        session.send_text(&format!("kept {i}")).unwrap();
        assert_eq!(session.recv().unwrap(), Message::Text(format!("kept {i}")));
    }
    let closes: Vec<Seen> = server
        .seen
        .try_iter()
        .filter(|s| matches!(s, Seen::Close(..)))
        .collect();
    assert!(closes.is_empty(), "{closes:?}");
    server.stop();
}

#[test]
fn tiny_broadcasts_to_a_client_that_never_reads_are_charged_their_real_size() {
    // Issue 19, point 4: a queued 2-byte broadcast frame (4 bytes on the wire) holds a
    // queue slot (32 bytes) and an Arc allocation (16 + 4): 52 bytes. Charged its 4 bytes,
    // a client that never reads was sent MARK / 4 frames into the queue before being
    // closed, holding 13 times the mark; charged its memory, MARK / 52.
    const MARK: usize = 2 << 20;
    const BROADCASTS: u32 = 300_000;
    let server = TestServer::start_with(false, |c| {
        c.max_queued_bytes = MARK;
        // Long enough for the stuck client to read its Close after the broadcasts.
        c.close_timeout = WAIT;
    });
    // The stuck client. What the kernel buffers for it (our receive buffer, the server's
    // send buffer, which Linux sizes from the MSS and the congestion window: about 2.6 MB
    // at loopback's 64 KiB MSS) is sent before the server's queue grows at all; a small
    // receive buffer and MSS keep that to 50-400 KB (12,000-94,000 frames measured), well
    // under the gap between the two accountings at this mark.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_mss(88).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stuck: TcpStream = socket.into();
    stuck
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stuck
        .write_all(upgrade_request("/ws/stuck", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut stuck).starts_with(b"HTTP/1.1 101 "));
    assert_eq!(server.next(), Seen::Open("stuck".into()));

    // Healthy clients read everything, in order, and report their progress. Three, so that
    // with two loops one of them shares the stuck client's loop (connections go to the least
    // loaded): pacing on the slowest reader then paces every loop, and once all have read
    // everything, every loop has queued every broadcast.
    let seq = |i: u32| ((i % 65_536) as u16).to_be_bytes();
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let mut reader = server.connect(&format!("reader{r}"));
            let received = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let progress = received.clone();
            let reading = std::thread::spawn(move || {
                for i in 0..BROADCASTS {
                    match reader.recv().unwrap() {
                        Message::Binary(b) => assert_eq!(b, seq(i), "reader{r}: broadcast {i}"),
                        other => panic!("reader{r}: broadcast {i}: {other:?}"),
                    }
                    progress.store(i + 1, std::sync::atomic::Ordering::Relaxed);
                }
                reader
            });
            (received, reading)
        })
        .collect();
    let slowest = || {
        let counts = readers
            .iter()
            .map(|(received, _)| received.load(std::sync::atomic::Ordering::Relaxed));
        counts.min().unwrap()
    };
    // 2-byte broadcasts, at most 512 ahead of the slowest reader (22 KiB of its queue at
    // most, well under the mark; far under the loops' command queue limit).
    let deadline = std::time::Instant::now() + 3 * WAIT;
    for i in 0..BROADCASTS {
        while i >= slowest() + 512 {
            assert!(std::time::Instant::now() < deadline, "the readers stalled");
            std::thread::sleep(Duration::from_micros(200));
        }
        server.handle.broadcast(seq(i).to_vec()).unwrap();
    }
    let mut readers: Vec<Client> = readers
        .into_iter()
        .map(|(_, reading)| reading.join().unwrap())
        .collect();

    // Now the stuck client reads what it was sent: the frames it got before its Close.
    let mut stuck_in = std::io::BufReader::new(&stuck);
    let mut delivered = 0u32;
    let close = loop {
        match try_read_frame(&mut stuck_in) {
            Some((0x82, payload)) => {
                assert_eq!(payload, seq(delivered));
                delivered += 1;
            }
            Some((0x88, payload)) => break payload,
            Some((first, _)) => panic!("unexpected frame {first:#x}"),
            None => panic!("no Close after {delivered} of {BROADCASTS} broadcasts"),
        }
    };
    assert_eq!(close_code(&close), 1008);
    // Charged their memory, the frames in the queue (MARK / 52 = 40,330) plus those in
    // the kernel stay far under MARK / 8 (262,144); charged their length, the queue alone
    // would take MARK / 4 (524,288, more than were sent: no Close at all).
    eprintln!("the stuck client got {delivered} frames before its Close");
    assert!(
        (delivered as usize) < MARK / 8,
        "{delivered} broadcasts sent to a client that never read"
    );
    drop(stuck_in);
    drop(stuck);
    assert_eq!(
        server.wait_for(|s| matches!(s, Seen::Close(..))),
        Seen::Close("stuck".into(), CloseReason::WriteQueueFull)
    );
    // The healthy clients were never held back, and are still served.
    for (r, reader) in readers.iter_mut().enumerate() {
        reader.send_text("still here").unwrap();
        assert_eq!(
            server.wait_for(|s| matches!(s, Seen::Message(..))),
            Seen::Message(format!("reader{r}"), Message::Text("still here".into()))
        );
        reader.close(CloseCode::NormalClosure, "").unwrap();
        assert_eq!(
            server.wait_for(|s| matches!(s, Seen::Close(..))),
            Seen::Close(
                format!("reader{r}"),
                CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, ""))
            )
        );
    }
    server.stop();
}
