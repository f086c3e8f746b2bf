use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::frame::DataOpcode;
use crate::handshake::{accept, accept_key, ClientHandshakeError, Limits, Request, RequestParser};
use crate::session::{Event, Message, Role, SendError, Session, SessionLimits};

/// The bound on every blocking step of a test, so that a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 that accepts one connection and runs `script` on it.
fn serve<T: Send + 'static>(
    script: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (String, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws/alice", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_write_timeout(Some(LIMIT)).unwrap();
        script(stream)
    });
    (url, server)
}

fn config() -> ClientConfig {
    ClientConfig {
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        ..ClientConfig::default()
    }
}

fn connect(url: &str) -> Client {
    Client::connect_with(url, &config()).unwrap()
}

/// Read an upgrade request; returns it and the bytes that followed it.
fn read_request(stream: &mut TcpStream) -> (Request, Vec<u8>) {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = vec![0; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "EOF during the request");
        if let Some((request, used)) = parser.push(&buf[..n]).unwrap() {
            return (request, buf[used..n].to_vec());
        }
    }
}

/// The server's end of a WebSocket connection, driven by hand.
struct Peer {
    stream: TcpStream,
    session: Session,
    buf: Vec<u8>,
}

impl Peer {
    /// Accept the upgrade; `first` is written in the same `write` as the 101 response.
    fn accept_with(mut stream: TcpStream, protocols: &[&str], first: &[u8]) -> Peer {
        let (request, rest) = read_request(&mut stream);
        assert_eq!(request.path(), "/ws/alice");
        let accepted = accept(&request).unwrap();
        let protocol = accepted.select_protocol(protocols).map(String::from);
        let mut response = accepted.response(protocol.as_deref());
        response.extend_from_slice(first);
        stream.write_all(&response).unwrap();
        let mut session = Session::new(Role::Server, SessionLimits::default());
        session.receive(&rest).unwrap();
        Peer {
            stream,
            session,
            buf: vec![0; 64 * 1024],
        }
    }

    fn accept(stream: TcpStream) -> Peer {
        Peer::accept_with(stream, &[], &[])
    }

    fn flush(&mut self) {
        let out = self.session.take_output();
        self.stream.write_all(&out).unwrap();
    }

    /// The next event (its replies written); `None` when the client closed TCP.
    fn event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.session.next_event() {
                self.flush();
                return Some(event);
            }
            let n = self.stream.read(&mut self.buf).unwrap();
            if n == 0 {
                return None;
            }
            self.session.receive(&self.buf[..n]).unwrap();
        }
    }

    /// Echo every message until the client's Close, which the session answers; then close
    /// TCP (by dropping the stream). Returns the client's Close.
    fn echo(mut self) -> CloseFrame {
        loop {
            match self.event() {
                Some(Event::Message(Message::Text(text))) => self.session.send_text(&text).unwrap(),
                Some(Event::Message(Message::Binary(data))) => {
                    self.session.send_binary(&data).unwrap()
                }
                Some(Event::Close(frame)) => return frame,
                Some(_) => {}
                None => panic!("the client closed TCP without a Close"),
            }
            self.flush();
        }
    }

    /// Read and ignore everything, without answering, until the client closes TCP.
    fn drain_until_eof(mut self) {
        while self.stream.read(&mut self.buf).unwrap() > 0 {}
    }
}

fn normal(reason: &str) -> CloseFrame {
    CloseFrame::new(CloseCode::NormalClosure, reason)
}

fn text_of_len(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

#[test]
fn echoes_text_and_binary_in_every_length_form() {
    let (url, server) = serve(|stream| Peer::accept(stream).echo());
    let mut client = connect(&url);
    assert!(client.is_open());
    assert_eq!(client.protocol(), None);
    for len in [0, 125, 126, 65535, 65536, 1 << 20] {
        let text = text_of_len(len);
        client.send_text(&text).unwrap();
        assert_eq!(client.recv().unwrap(), Message::Text(text), "text of {len}");
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        client.send(Message::Binary(data.clone())).unwrap();
        assert_eq!(
            client.recv().unwrap(),
            Message::Binary(data),
            "binary of {len}"
        );
    }
    client.close(CloseCode::NormalClosure, "bye").unwrap();
    assert_eq!(server.join().unwrap(), normal("bye"));
    assert!(!client.is_open());
    assert!(client.peer_addr().is_none());
    // The server's answer echoed the code (the session answers with an empty reason).
    assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
    assert!(matches!(
        client.send_text("late"),
        Err(ClientError::Closed(_))
    ));
    assert!(client.close(CloseCode::NormalClosure, "again").is_ok());
}

#[test]
fn a_server_ping_is_answered_with_a_pong_before_the_next_message_is_returned() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.ping(b"are you there?").unwrap();
        peer.session.send_text("after the ping").unwrap();
        peer.flush();
        let pong = peer.event();
        (pong, peer.echo())
    });
    let mut client = connect(&url);
    assert_eq!(
        client.recv().unwrap(),
        Message::Text("after the ping".into())
    );
    client.close(CloseCode::NormalClosure, "").unwrap();
    let (pong, close) = server.join().unwrap();
    assert_eq!(pong, Some(Event::Pong(b"are you there?".to_vec())));
    assert_eq!(close, normal(""));
}

#[test]
fn recv_event_shows_control_frames_and_our_own_pings_get_pongs() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.ping(b"p").unwrap();
        peer.flush();
        // The Pong must arrive while the client is not inside a call: it went out before
        // recv_event returned the Ping.
        let pong = peer.event();
        peer.session.pong(b"heartbeat").unwrap();
        peer.session.send_binary(b"data").unwrap();
        peer.flush();
        // The client's Ping, which our session answers.
        let events = [pong, peer.event()];
        (events, peer.echo())
    });
    let mut client = connect(&url);
    assert_eq!(client.recv_event().unwrap(), Event::Ping(b"p".to_vec()));
    assert_eq!(
        client.recv_event().unwrap(),
        Event::Pong(b"heartbeat".to_vec())
    );
    assert_eq!(
        client.recv_event().unwrap(),
        Event::Message(Message::Binary(b"data".to_vec()))
    );
    client.ping(b"mine").unwrap();
    assert_eq!(client.recv_event().unwrap(), Event::Pong(b"mine".to_vec()));
    assert!(matches!(
        client.ping(&[0; 126]),
        Err(ClientError::Send(SendError::ControlFrameTooLong))
    ));
    client.close(CloseCode::GoingAway, "done").unwrap();
    let (events, close) = server.join().unwrap();
    assert_eq!(
        events,
        [
            Some(Event::Pong(b"p".to_vec())),
            Some(Event::Ping(b"mine".to_vec()))
        ]
    );
    assert_eq!(close, CloseFrame::new(CloseCode::GoingAway, "done"));
}

#[test]
fn a_server_close_is_answered_and_reported_as_closed() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session
            .close(CloseCode::GoingAway, "restarting")
            .unwrap();
        peer.flush();
        // The answer; then the server closes TCP (§7.1.1) by dropping the stream.
        peer.event()
    });
    let mut client = connect(&url);
    match client.recv() {
        Err(ClientError::Closed(frame)) => {
            assert_eq!(frame, CloseFrame::new(CloseCode::GoingAway, "restarting"))
        }
        other => panic!("{other:?}"),
    }
    let answer = server.join().unwrap();
    // §5.5.1: the answer echoes the status code.
    assert_eq!(
        answer,
        Some(Event::Close(CloseFrame::new(CloseCode::GoingAway, "")))
    );
    assert!(!client.is_open());
    assert!(matches!(client.recv_event(), Err(ClientError::Closed(_))));
    assert!(matches!(
        client.send_binary(b"x"),
        Err(ClientError::Closed(_))
    ));
    assert!(client.close(CloseCode::NormalClosure, "").is_ok());
}

#[test]
fn recv_event_returns_the_server_close_once_then_closed() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.close(CloseCode::NoStatusReceived, "").unwrap();
        peer.flush();
        peer.event()
    });
    let mut client = connect(&url);
    let empty = CloseFrame::new(CloseCode::NoStatusReceived, "");
    assert_eq!(client.recv_event().unwrap(), Event::Close(empty.clone()));
    assert!(matches!(client.recv_event(), Err(ClientError::Closed(f)) if f == empty));
    // An empty Close is answered with an empty Close.
    assert_eq!(server.join().unwrap(), Some(Event::Close(empty)));
}

#[test]
fn close_returns_once_the_server_has_closed_tcp() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (url, server) = serve(move |stream| {
        let mut peer = Peer::accept(stream);
        // The client's Close; the session writes and `event` sends the answer.
        let close = peer.event();
        // Hold the TCP connection open until the test says so.
        release_rx.recv_timeout(LIMIT).unwrap();
        drop(peer);
        close
    });
    let mut client = connect(&url);
    let (done_tx, done_rx) = mpsc::channel();
    let closer = thread::spawn(move || {
        let result = client.close(CloseCode::NormalClosure, "bye");
        done_tx.send(result.map_err(|e| e.to_string())).unwrap();
        client
    });
    // The answer has arrived, but the server still holds TCP: close() keeps waiting.
    assert!(matches!(
        done_rx.recv_timeout(Duration::from_millis(150)),
        Err(mpsc::RecvTimeoutError::Timeout)
    ));
    release_tx.send(()).unwrap();
    assert_eq!(done_rx.recv_timeout(LIMIT).unwrap(), Ok(()));
    let mut client = closer.join().unwrap();
    assert_eq!(server.join().unwrap(), Some(Event::Close(normal("bye"))));
    assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
}

fn short_close_timeout() -> ClientConfig {
    ClientConfig {
        close_timeout: Duration::from_millis(200),
        ..config()
    }
}

#[test]
fn close_gives_up_after_the_close_timeout_when_the_server_never_answers() {
    let (url, server) = serve(|stream| Peer::accept(stream).drain_until_eof());
    let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
    let start = Instant::now();
    let result = client.close(CloseCode::NormalClosure, "");
    let elapsed = start.elapsed();
    match result {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < LIMIT / 2, "{elapsed:?}");
    // The client dropped the socket: the server saw EOF.
    server.join().unwrap();
    assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
}

#[test]
fn close_is_ok_after_the_close_timeout_when_the_server_answers_but_keeps_tcp_open() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        let close = peer.event();
        peer.drain_until_eof();
        close
    });
    let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
    let start = Instant::now();
    client.close(CloseCode::NormalClosure, "").unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(server.join().unwrap(), Some(Event::Close(normal(""))));
}

#[test]
fn after_a_server_close_the_client_waits_for_eof_only_until_the_close_timeout() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.close(CloseCode::NormalClosure, "").unwrap();
        peer.flush();
        let answer = peer.event();
        peer.drain_until_eof();
        answer
    });
    let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
    let start = Instant::now();
    assert!(matches!(client.recv(), Err(ClientError::Closed(_))));
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < LIMIT / 2, "{elapsed:?}");
    assert_eq!(server.join().unwrap(), Some(Event::Close(normal(""))));
}

#[test]
fn a_message_in_the_same_packet_as_the_close_can_still_be_echoed() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.send_text("last words").unwrap();
        peer.session.close(CloseCode::NormalClosure, "").unwrap();
        peer.flush();
        [peer.event(), peer.event()]
    });
    let mut client = connect(&url);
    let message = client.recv().unwrap();
    assert_eq!(message, Message::Text("last words".into()));
    client.send(message).unwrap();
    assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
    assert_eq!(
        server.join().unwrap(),
        [
            Some(Event::Message(Message::Text("last words".into()))),
            Some(Event::Close(normal("")))
        ]
    );
}

/// A frame from the server that the client must refuse: a masked one (§5.1).
const MASKED_FRAME: [u8; 8] = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];

#[test]
fn a_protocol_error_fails_the_connection_after_delivering_what_came_before() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        peer.session.send_text("fine").unwrap();
        let mut bytes = peer.session.take_output();
        bytes.extend_from_slice(&MASKED_FRAME);
        peer.stream.write_all(&bytes).unwrap();
        // The echo, then the Close that fails the connection, which the session answers;
        // then the server closes TCP.
        [peer.event(), peer.event()]
    });
    let mut client = connect(&url);
    let message = client.recv().unwrap();
    client.send(message).unwrap();
    assert!(matches!(
        client.recv(),
        Err(ClientError::Protocol(ProtocolError::MaskedFrameFromServer))
    ));
    let error = ProtocolError::MaskedFrameFromServer;
    assert_eq!(
        server.join().unwrap(),
        [
            Some(Event::Message(Message::Text("fine".into()))),
            Some(Event::Close(CloseFrame::new(
                error.close_code(),
                error.reason()
            )))
        ]
    );
    assert!(!client.is_open());
    assert!(matches!(
        client.recv(),
        Err(ClientError::Protocol(ProtocolError::MaskedFrameFromServer))
    ));
    assert!(matches!(
        client.close(CloseCode::NormalClosure, ""),
        Err(ClientError::Protocol(_))
    ));
}

#[test]
fn frames_in_the_same_packet_as_the_101_response_are_delivered() {
    let mut first = Session::new(Role::Server, SessionLimits::default());
    first.ping(b"early").unwrap();
    first.send_text("welcome").unwrap();
    let first = first.take_output();
    let (url, server) = serve(move |stream| {
        let mut peer = Peer::accept_with(stream, &[], &first);
        (peer.event(), peer.echo())
    });
    let mut client = connect(&url);
    assert_eq!(client.recv().unwrap(), Message::Text("welcome".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    let (pong, _) = server.join().unwrap();
    assert_eq!(pong, Some(Event::Pong(b"early".to_vec())));
}

#[test]
fn a_fragmented_message_with_a_ping_between_fragments_is_delivered_whole() {
    let (url, server) = serve(|stream| {
        let mut peer = Peer::accept(stream);
        let text = "héllo wörld".as_bytes();
        let (a, b) = text.split_at(2); // inside the 'é'
        let s = &mut peer.session;
        let mut bytes = s
            .data_frame_header(DataOpcode::Text, false, a.len())
            .unwrap();
        let mut wire = bytes.as_bytes().to_vec();
        wire.extend_from_slice(a);
        s.ping(b"mid").unwrap();
        wire.extend_from_slice(&s.take_output());
        bytes = s
            .data_frame_header(DataOpcode::Continuation, true, b.len())
            .unwrap();
        wire.extend_from_slice(bytes.as_bytes());
        wire.extend_from_slice(b);
        peer.stream.write_all(&wire).unwrap();
        (peer.event(), peer.echo())
    });
    let mut client = connect(&url);
    assert_eq!(client.recv().unwrap(), Message::Text("héllo wörld".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    let (pong, _) = server.join().unwrap();
    assert_eq!(pong, Some(Event::Pong(b"mid".to_vec())));
}

#[test]
fn tcp_closed_without_a_close_is_connection_lost() {
    let (url, server) = serve(|stream| drop(Peer::accept(stream)));
    let mut client = connect(&url);
    server.join().unwrap();
    assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
    assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
    assert!(matches!(
        client.send_text("anyone?"),
        Err(ClientError::ConnectionLost)
    ));
}

#[test]
fn a_read_timeout_leaves_the_connection_usable() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (url, server) = serve(move |stream| {
        let mut peer = Peer::accept(stream);
        go_rx.recv_timeout(LIMIT).unwrap();
        peer.session.send_text("now").unwrap();
        peer.flush();
        peer.echo()
    });
    let mut client = connect(&url);
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let error = client.recv().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(client.is_open());
    go_tx.send(()).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(client.config().read_timeout, Some(LIMIT));
    assert_eq!(client.recv().unwrap(), Message::Text("now".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    server.join().unwrap();
}

#[test]
fn negotiates_a_subprotocol() {
    let (url, server) = serve(|stream| {
        let peer = Peer::accept_with(stream, &["superchat"], &[]);
        peer.echo()
    });
    let mut client = Client::builder()
        .protocol("chat")
        .protocol("superchat")
        .read_timeout(Some(LIMIT))
        .connect(&url)
        .unwrap();
    assert_eq!(client.protocol(), Some("superchat"));
    client.close(CloseCode::NormalClosure, "").unwrap();
    server.join().unwrap();
}

fn refused_handshake(answer: impl FnOnce(&Request) -> Vec<u8> + Send + 'static) -> ClientError {
    let (url, server) = serve(move |mut stream| {
        let (request, _) = read_request(&mut stream);
        stream.write_all(&answer(&request)).unwrap();
    });
    let error = Client::connect_with(&url, &config()).unwrap_err();
    server.join().unwrap();
    error
}

#[test]
fn a_404_answer_is_a_handshake_error() {
    let error = refused_handshake(|_| {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
    });
    assert!(
        matches!(
            error,
            ClientError::Handshake(ClientHandshakeError::UnexpectedStatus(404))
        ),
        "{error:?}"
    );
}

#[test]
fn a_wrong_accept_value_is_a_handshake_error() {
    let error = refused_handshake(|request| {
        let right = accept(request).unwrap();
        let response = String::from_utf8(right.response(None)).unwrap();
        response
            .replace(right.accept_value(), &accept_key(b"some other key"))
            .into_bytes()
    });
    assert!(
        matches!(
            error,
            ClientError::Handshake(ClientHandshakeError::InvalidAccept)
        ),
        "{error:?}"
    );
}

#[test]
fn eof_during_the_handshake_is_an_io_error() {
    let error = refused_handshake(|_| Vec::new());
    assert!(
        matches!(&error, ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
        "{error:?}"
    );
}

#[test]
fn a_silent_server_makes_connect_time_out() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (url, server) = serve(move |mut stream| {
        read_request(&mut stream);
        release_rx.recv_timeout(LIMIT).unwrap();
    });
    let config = ClientConfig {
        connect_timeout: Some(Duration::from_millis(100)),
        ..config()
    };
    let error = Client::connect_with(&url, &config).unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    release_tx.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn bad_urls_and_refused_connections() {
    assert!(matches!(
        Client::connect("http://127.0.0.1/"),
        Err(ClientError::Handshake(ClientHandshakeError::InvalidUrl(_)))
    ));
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = Client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error:?}");
}

#[test]
fn errors_display_and_chain() {
    use std::error::Error as _;
    let closed = ClientError::Closed(CloseFrame::new(CloseCode::GoingAway, "bye"));
    assert_eq!(closed.to_string(), "the connection is closed (1001: bye)");
    let protocol = ClientError::from(ProtocolError::InvalidUtf8);
    assert!(protocol.source().is_some());
    assert!(!protocol.is_timeout());
    assert!(ClientError::from(io::Error::from(io::ErrorKind::WouldBlock)).is_timeout());
}
