//! The application API over real sockets: the upgrade decision (`Handler::on_upgrade`) with
//! authentication, route parameters and fresh sids, per-session data, the subprotocol in the
//! server's order, and the session controls (ping, queued bytes, protocol, peer, close codes
//! that may not be sent). Loopback only, a few connections each, every wait bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use wsloop::client::{Client, ClientError};
use wsloop::handshake::ClientHandshakeError;
use wsloop::server::{
    CloseError, CloseReason, Context, Handle, HandleError, Handler, HttpResponse, PingError,
    Server, ServerConfig, Upgrade, UpgradeRequest,
};
use wsloop::session::Event;
use wsloop::{CloseCode, Message};

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "s3cret";

/// What the handlers saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Upgrade(String, usize),
    Open(String, Option<String>),
    Close(String, Option<String>),
    Dropped(String),
}

/// A session's data: who it is, and a message count; tells the test when it is dropped.
struct User {
    name: String,
    messages: usize,
    seen: Sender<Seen>,
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = self.seen.send(Seen::Dropped(self.name.clone()));
    }
}

struct App {
    index: usize,
    seen: Sender<Seen>,
}

fn bearer(req: &UpgradeRequest<'_>) -> Option<String> {
    let header = req.header("authorization")?;
    header.strip_prefix("Bearer ").map(str::to_string)
}

impl Handler for App {
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, req: &UpgradeRequest<'_>) -> Upgrade {
        let _ = self
            .seen
            .send(Seen::Upgrade(req.path().to_string(), self.index));
        if req.path().starts_with("/secure/") {
            let token = req
                .query("token")
                .map(|t| t.into_owned())
                .or_else(|| bearer(req))
                .or_else(|| req.cookie("token").map(str::to_string));
            if token.as_deref() != Some(TOKEN) {
                return Upgrade::reject(
                    HttpResponse::text(401, "who are you?\n")
                        .with_header("WWW-Authenticate", "Bearer realm=\"app\""),
                );
            }
        }
        let name = req
            .param("user")
            .or(req.sid())
            .unwrap_or("nobody")
            .to_string();
        let mut upgrade = Upgrade::accept().with_data(User {
            name,
            messages: 0,
            seen: self.seen.clone(),
        });
        if let Some(protocol) = req.query("proto") {
            upgrade = upgrade.with_protocol(protocol.into_owned());
        }
        if let Some(sid) = req.query("as") {
            upgrade = upgrade.with_sid(sid.into_owned());
        }
        upgrade
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let name = ctx.data::<User>(sid).map(|u| u.name.clone());
        let _ = self.seen.send(Seen::Open(sid.to_string(), name));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        let reply = match text.as_str() {
            "whoami" => {
                let user = ctx.data::<User>(sid).expect("every session has a User");
                user.messages += 1;
                format!("{} #{} on {}", user.name, user.messages, self.index)
            }
            "info" => {
                let wrong_type = ctx.data::<String>(sid).is_some();
                format!(
                    "protocol={:?} extensions={:?} peer-is-local={} wrong-type={wrong_type}",
                    ctx.protocol(sid),
                    ctx.extensions(sid),
                    ctx.peer_addr(sid).is_some_and(|a| a.ip().is_loopback()),
                )
            }
            "ping" => format!(
                "{:?} {:?}",
                ctx.ping(sid, b"are you there"),
                ctx.ping(sid, &[0; 126])
            ),
            "queued" => format!("{:?}", ctx.queued_bytes(sid)),
            "close1005" => format!(
                "{:?} {:?}",
                ctx.close(sid, CloseCode::NoStatusReceived, "nope"),
                ctx.close("nobody-has-this", CloseCode::NormalClosure, "")
            ),
            "bye" => format!("{:?}", ctx.close(sid, CloseCode::Private(4321), "bye")),
            other => other.to_string(),
        };
        let _ = ctx.send(sid, reply);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, _reason: &CloseReason) {
        let name = ctx.data::<User>(sid).map(|u| u.name.clone());
        let _ = self.seen.send(Seen::Close(sid.to_string(), name));
    }
}

struct Running {
    addr: String,
    handle: Handle,
    seen: Receiver<Seen>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn start(workers: usize, configure: impl FnOnce(&mut ServerConfig)) -> Running {
        let (tx, rx) = channel();
        let server = Server::builder()
            .bind("127.0.0.1:0")
            .workers(workers)
            .route("/chat/{room}/{user}")
            .configure(|c| c.close_timeout = Duration::from_secs(1))
            .configure(configure)
            .build()
            .unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let (handle, thread) = server
            .spawn_each(move |index| App {
                index,
                seen: tx.clone(),
            })
            .unwrap();
        Running {
            addr,
            handle,
            seen: rx,
            thread,
        }
    }

    fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the handler saw nothing")
    }

    /// The next events that are not upgrades.
    fn next_not_upgrade(&self) -> Seen {
        loop {
            match self.next() {
                Seen::Upgrade(..) => continue,
                other => return other,
            }
        }
    }

    fn client(&self, path: &str) -> Result<Client, ClientError> {
        Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&format!("ws://{}{path}", self.addr))
    }

    fn stop(self) {
        self.handle.shutdown();
        self.thread.join().unwrap().unwrap();
    }
}

/// Raw HTTP: the whole answer to an upgrade request for `path` with extra header lines.
fn raw_upgrade(addr: &str, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.starts_with(b"HTTP/1.1 101") && answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn text(t: &str) -> Message {
    Message::Text(t.to_string())
}

#[test]
fn the_upgrade_decision_authenticates_with_a_query_a_header_or_a_cookie() {
    let app = Running::start(1, |c| {
        c.route = wsloop::server::Route::pattern("/secure/{sid}").unwrap()
    });
    // Refused: the application's whole response, status, header and body.
    let answer = raw_upgrade(&app.addr, "/secure/alice", "");
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(
        answer.contains("WWW-Authenticate: Bearer realm=\"app\"\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("who are you?\n"), "{answer}");
    let answer = raw_upgrade(&app.addr, "/secure/alice?token=wrong", "");
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    // Accepted with the token in any of the three places.
    for (path, headers) in [
        (format!("/secure/q?token={TOKEN}"), String::new()),
        (
            "/secure/h".to_string(),
            format!("Authorization: Bearer {TOKEN}\r\n"),
        ),
        (
            "/secure/c".to_string(),
            format!("Cookie: theme=dark; token={TOKEN}\r\n"),
        ),
    ] {
        let answer = raw_upgrade(&app.addr, &path, &headers);
        assert!(answer.starts_with("HTTP/1.1 101 "), "{path}: {answer}");
    }
    // Our client sees the refusal as the status it is.
    match app.client("/secure/alice") {
        Err(ClientError::Handshake(ClientHandshakeError::UnexpectedStatus(401))) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    app.stop();
}

#[test]
fn route_parameters_reach_the_decision_and_a_pattern_without_sid_gives_fresh_sids() {
    let app = Running::start(1, |_| {});
    // Two tabs of one user in one room: two sessions, neither replaces the other.
    let mut first = app.client("/chat/rust/alice").unwrap();
    let mut second = app.client("/chat/rust/alice").unwrap();
    let mut sids = Vec::new();
    for _ in 0..2 {
        match app.next_not_upgrade() {
            Seen::Open(sid, name) => {
                assert_eq!(name.as_deref(), Some("alice"), "the {{user}} parameter");
                sids.push(sid);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_ne!(sids[0], sids[1], "fresh sids: {sids:?}");
    for client in [&mut first, &mut second] {
        client.send(text("whoami")).unwrap();
        assert_eq!(client.recv().unwrap(), text("alice #1 on 0"));
    }
    // A path the pattern does not match: 404 before the application is asked.
    let answer = raw_upgrade(&app.addr, "/chat/rust", "");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    app.stop();
}

#[test]
fn session_data_lives_from_the_upgrade_to_after_on_close() {
    let app = Running::start(1, |_| {});
    let mut client = app.client("/chat/room/bob").unwrap();
    let sid = match app.next_not_upgrade() {
        Seen::Open(sid, Some(name)) if name == "bob" => sid,
        other => panic!("{other:?}"),
    };
    for n in 1..=3 {
        client.send(text("whoami")).unwrap();
        assert_eq!(client.recv().unwrap(), text(&format!("bob #{n} on 0")));
    }
    client.close(CloseCode::NormalClosure, "").unwrap();
    // on_close still reaches the data; it is dropped right after.
    assert_eq!(app.next(), Seen::Close(sid, Some("bob".into())));
    assert_eq!(app.next(), Seen::Dropped("bob".into()));

    // Replaced by a newer connection with the same sid (`with_sid`): the old session's
    // data goes with its on_close, before the new one opens.
    let _a = app.client("/chat/room/carol?as=same").unwrap();
    assert_eq!(
        app.next_not_upgrade(),
        Seen::Open("same".into(), Some("carol".into()))
    );
    let _b = app.client("/chat/room/dave?as=same").unwrap();
    assert_eq!(
        app.next_not_upgrade(),
        Seen::Close("same".into(), Some("carol".into()))
    );
    assert_eq!(app.next(), Seen::Dropped("carol".into()));
    assert_eq!(app.next(), Seen::Open("same".into(), Some("dave".into())));
    app.stop();
}

#[test]
fn the_subprotocol_follows_the_servers_preference_or_the_applications_choice() {
    let app = Running::start(1, |c| c.protocols = vec!["v2".into(), "v1".into()]);
    let connect = |path: &str| {
        Client::builder()
            .read_timeout(Some(WAIT))
            .protocol("v1")
            .protocol("v2")
            .connect(&format!("ws://{}{path}", app.addr))
    };
    // The client prefers v1; we prefer v2, and both offered it.
    let mut client = connect("/chat/r/u").unwrap();
    assert_eq!(client.protocol(), Some("v2"));
    client.send(text("info")).unwrap();
    let Message::Text(info) = client.recv().unwrap() else {
        panic!("binary");
    };
    assert_eq!(
        info,
        "protocol=Some(\"v2\") extensions=None peer-is-local=true wrong-type=false"
    );
    // The application's choice among the offered ones.
    assert_eq!(
        connect("/chat/r/u?proto=v1").unwrap().protocol(),
        Some("v1")
    );
    // One the client did not offer: a server error, not a broken handshake.
    let answer = raw_upgrade(
        &app.addr,
        "/chat/r/u?proto=zzz",
        "Sec-WebSocket-Protocol: v1\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
    app.stop();
}

#[test]
fn session_controls_ping_queued_bytes_and_close_codes_that_may_not_be_sent() {
    let app = Running::start(1, |_| {});
    let mut client = app.client("/chat/r/erin").unwrap();
    client.send(text("ping")).unwrap();
    // The Ping arrives before the reply that reports it (our client answers it itself).
    match client.recv_event().unwrap() {
        Event::Ping(payload) => assert_eq!(payload, b"are you there"),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.recv().unwrap(), text("Ok(()) Err(TooLong)"));
    client.send(text("queued")).unwrap();
    assert_eq!(client.recv().unwrap(), text("Some(0)"));
    client.send(text("close1005")).unwrap();
    assert_eq!(
        client.recv().unwrap(),
        text(&format!(
            "{:?} {:?}",
            Err::<(), _>(CloseError::NotSendable(CloseCode::NoStatusReceived)),
            Err::<(), _>(CloseError::NoSuchSession)
        ))
    );
    // The session is still open: nothing was sent for the refused close. A sendable code
    // closes it (and the reply sent after it is refused: the Close is our last frame).
    client.send(text("bye")).unwrap();
    match client.recv() {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.code, CloseCode::Private(4321));
            assert_eq!(close.reason, "bye");
        }
        other => panic!("{other:?}"),
    }
    // From another thread too.
    assert_eq!(
        app.handle.close("x", CloseCode::AbnormalClosure, ""),
        Err(HandleError::NotSendable(CloseCode::AbnormalClosure))
    );
    let _ = PingError::NoSuchSession;
    app.stop();
}

/// With two loops, the decision is made once, on the loop that read the request, and the
/// data travels with the connection to the loop that holds its sid.
#[test]
fn with_two_loops_the_decision_and_the_data_travel_with_the_connection() {
    let app = Running::start(2, |_| {});
    // Two sessions with one sid, one after the other: the second connection lands on the
    // other loop (balance), is handed to the loop holding the sid, and replaces the first.
    let _first = app.client("/chat/r/frank?as=shared").unwrap();
    let mut upgrades = Vec::new();
    let opened_on = loop {
        match app.next() {
            Seen::Upgrade(_, index) => upgrades.push(index),
            Seen::Open(sid, Some(name)) if sid == "shared" && name == "frank" => break upgrades[0],
            other => panic!("{other:?}"),
        }
    };
    let mut second = app.client("/chat/r/grace?as=shared").unwrap();
    loop {
        match app.next() {
            Seen::Upgrade(_, index) => upgrades.push(index),
            Seen::Close(sid, Some(name)) if sid == "shared" && name == "frank" => {}
            Seen::Dropped(name) if name == "frank" => {}
            Seen::Open(sid, Some(name)) if sid == "shared" && name == "grace" => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(upgrades.len(), 2, "asked once per upgrade: {upgrades:?}");
    assert_ne!(
        upgrades[1], opened_on,
        "the second was read by the other loop"
    );
    second.send(text("whoami")).unwrap();
    assert_eq!(
        second.recv().unwrap(),
        text(&format!("grace #1 on {opened_on}")),
        "served, with its data, by the loop that holds the sid"
    );
    app.stop();
}

/// A chat with rooms: each session joins the room of its path; a message is published to
/// its room only; `send_many` reaches an explicit list. With `loops` event loops.
fn rooms_with(loops: usize) {
    struct Rooms;
    impl Handler for Rooms {
        fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
            // The sid is "room.user" (see the route below).
            let room = sid.split('.').next().unwrap().to_string();
            assert!(ctx.subscribe(sid, &room));
            assert!(!ctx.subscribe(sid, &room), "already subscribed");
        }
        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            let Message::Text(text) = message else {
                return;
            };
            let room = sid.split('.').next().unwrap().to_string();
            if let Some(list) = text.strip_prefix("dm ") {
                let sids: Vec<&str> = list.split(',').collect();
                ctx.send_many(&sids, format!("dm from {sid}"));
            } else if text == "leave" {
                assert!(ctx.unsubscribe(sid, &room));
                assert!(!ctx.unsubscribe(sid, &room));
                let _ = ctx.send(sid, "left");
            } else {
                ctx.publish(&room, format!("{sid}: {text}"));
            }
        }
    }
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .workers(loops)
        .route_fn(|req| {
            // /rooms/{room}/{user} -> "room.user"
            let mut parts = req.path().trim_start_matches("/rooms/").split('/');
            match (parts.next(), parts.next()) {
                (Some(room), Some(user)) if !room.is_empty() && !user.is_empty() => {
                    Ok(format!("{room}.{user}"))
                }
                _ => Err(404),
            }
        })
        .build()
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (handle, thread) = server.spawn_each(|_| Rooms).unwrap();
    // `on_open` (and its subscription) runs before the 101 is written.
    let connect = |room: &str, user: &str| {
        Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&format!("ws://{addr}/rooms/{room}/{user}"))
            .unwrap()
    };
    let mut ann = connect("red", "ann");
    let mut bob = connect("red", "bob");
    let mut cat = connect("blue", "cat");
    ann.send(text("hello red")).unwrap();
    for c in [&mut ann, &mut bob] {
        assert_eq!(c.recv().unwrap(), text("red.ann: hello red"));
    }
    cat.send(text("hello blue")).unwrap();
    assert_eq!(
        cat.recv().unwrap(),
        text("blue.cat: hello blue"),
        "only its room"
    );
    // From another thread, to a topic.
    handle.publish("blue", "from the handle").unwrap();
    assert_eq!(cat.recv().unwrap(), text("from the handle"));
    // An explicit list, across rooms (and loops), unknown sids skipped.
    bob.send(text("dm red.ann,blue.cat,nobody")).unwrap();
    assert_eq!(ann.recv().unwrap(), text("dm from red.bob"));
    assert_eq!(cat.recv().unwrap(), text("dm from red.bob"));
    // Leaving the room, then a publish that no longer reaches it.
    bob.send(text("leave")).unwrap();
    assert_eq!(bob.recv().unwrap(), text("left"));
    ann.send(text("still here?")).unwrap();
    assert_eq!(ann.recv().unwrap(), text("red.ann: still here?"));
    handle.subscribe("red.bob", "blue").unwrap();
    // The handle's command is executed when the loop next runs: give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    handle.publish("blue", "blue again").unwrap();
    assert_eq!(
        bob.recv().unwrap(),
        text("blue again"),
        "subscribed from a handle"
    );
    assert_eq!(cat.recv().unwrap(), text("blue again"));
    // Subscriptions end with the session: a closed member is simply gone.
    cat.close(CloseCode::NormalClosure, "").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    handle.publish("blue", "after cat").unwrap();
    assert_eq!(bob.recv().unwrap(), text("after cat"));
    handle.shutdown();
    thread.join().unwrap().unwrap();
}

#[test]
fn topics_rooms_and_explicit_lists_on_one_loop() {
    rooms_with(1);
}

#[test]
fn topics_rooms_and_explicit_lists_across_two_loops() {
    rooms_with(2);
}
