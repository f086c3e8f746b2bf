//! The chat example (`examples/chat`) over real sockets: rooms are topics (a message reaches
//! its room and no other), names come from the path (percent-decoded), join and leave come
//! from the session's data, bad input gets its HTTP status or close code and an escaped log
//! line, `GET /` and `HEAD /` serve the page, and SIGTERM closes every member with 1001.
//!
//! Each test starts `target/<profile>/examples/chat` on a free port of 127.0.0.1 (`cargo test`
//! builds it; alone, `cargo build --example chat` first), reads the address it prints,
//! captures its log, and kills it by its PID when the test ends. Every wait is bounded.

#[path = "support/example_binary.rs"]
mod example_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use example_binary::example_binary;
use wsloop::client::{Client, ClientError};
use wsloop::{CloseCode, Message};

const WAIT: Duration = Duration::from_secs(10);

/// A running chat process; killed by its PID and reaped when dropped.
struct Chat {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Chat {
    fn start() -> Chat {
        let mut child = Command::new(example_binary(
            "chat",
            &["examples/chat", "examples/common/shutdown.rs"],
        ))
        .args(["--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the chat example");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("chat on http://") {
                    let _ = tx.send(rest.trim_end_matches('/').to_string());
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut chat = Chat {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
        };
        let addr = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "the chat printed no address; its log:\n{}",
                chat.log.lock().unwrap().join("\n")
            )
        });
        chat.addr = addr.parse().expect("an address");
        chat
    }

    fn join(&self, room: &str, user: &str) -> Client {
        Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&format!("ws://{}/chat/{room}/{user}", self.addr))
            .unwrap_or_else(|e| panic!("join {room} as {user}: {e:?}"))
    }

    /// Whether the log gets a line with `needle` within a few seconds.
    fn log_gets(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Raw HTTP: the whole answer to `METHOD path` with these extra header lines.
    fn http(&self, method: &str, path: &str, headers: &str) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}\r\n",
            self.addr
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The status of an upgrade request for `path` with these extra header lines.
    fn upgrade_status(&self, path: &str, headers: &str) -> String {
        let upgrade = format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \
             dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}"
        );
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{upgrade}\r\n",
            self.addr
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head[9..12]).into_owned()
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next text message, as a string.
fn next(client: &mut Client) -> String {
    match client.recv() {
        Ok(Message::Text(text)) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Nothing arrives within a short while.
fn quiet(client: &mut Client) {
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    match client.recv() {
        Err(e) if e.is_timeout() => {}
        other => panic!("expected nothing, got {other:?}"),
    }
    client.set_read_timeout(Some(WAIT)).unwrap();
}

#[test]
fn a_message_reaches_its_room_and_no_other() {
    let chat = Chat::start();
    let mut ann = chat.join("lobby", "Ann");
    assert_eq!(
        next(&mut ann),
        r#"{"type":"join","room":"lobby","user":"Ann","members":1}"#
    );
    // A name with a space and a ü, percent-encoded as a browser's encodeURIComponent does.
    let mut jurgen = chat.join("lobby", "J%C3%BCrgen%20B");
    let joined = r#"{"type":"join","room":"lobby","user":"Jürgen B","members":2}"#;
    assert_eq!(next(&mut ann), joined);
    assert_eq!(next(&mut jurgen), joined);
    let mut carl = chat.join("kitchen", "Carl");
    assert_eq!(
        next(&mut carl),
        r#"{"type":"join","room":"kitchen","user":"Carl","members":1}"#
    );

    jurgen.send_text("hello \"lobby\"").unwrap();
    let said = r#"{"type":"message","room":"lobby","user":"Jürgen B","text":"hello \"lobby\""}"#;
    assert_eq!(next(&mut ann), said);
    assert_eq!(next(&mut jurgen), said, "the sender gets its own line too");
    quiet(&mut carl);
    assert!(chat.log_gets(r#"Jürgen B in lobby: 13 bytes "hello \"lobby\"""#));

    // Two tabs with one name are two members (fresh sids), not a replacement.
    let mut ann2 = chat.join("lobby", "Ann");
    let again = r#"{"type":"join","room":"lobby","user":"Ann","members":3}"#;
    for client in [&mut ann, &mut jurgen, &mut ann2] {
        assert_eq!(next(client), again);
    }

    jurgen.close(CloseCode::NormalClosure, "").unwrap();
    let left = r#"{"type":"leave","room":"lobby","user":"Jürgen B","members":2}"#;
    assert_eq!(next(&mut ann), left);
    assert_eq!(next(&mut ann2), left);
    quiet(&mut carl);
    assert!(chat.log_gets("Jürgen B left lobby: closed by client (1000"));
}

#[test]
fn bad_rooms_names_and_origins_get_their_status_and_an_escaped_log_line() {
    let chat = Chat::start();
    let long = "r".repeat(33);
    for (path, headers, status) in [
        (format!("/chat/{long}/Ann"), String::new(), "400"),
        ("/chat/a%2Fb/Ann".to_string(), String::new(), "400"),
        ("/chat/lobby/%3Cscript%3E".to_string(), String::new(), "400"),
        ("/chat/lobby/%20%20".to_string(), String::new(), "400"),
        ("/chat/lobby/%ZZ".to_string(), String::new(), "400"),
        ("/chat/lobby/%FF".to_string(), String::new(), "400"),
        ("/chat/lobby".to_string(), String::new(), "404"),
        (
            "/chat/lobby/Ann".to_string(),
            "Origin: https://evil.example\r\n".to_string(),
            "403",
        ),
    ] {
        assert_eq!(
            chat.upgrade_status(&path, &headers),
            status,
            "{path} {headers}"
        );
    }
    // The chat's own page is welcome.
    let own = format!("Origin: http://{}\r\n", chat.addr);
    assert_eq!(chat.upgrade_status("/chat/lobby/Ann", &own), "101");
    assert!(chat.log_gets(&format!(
        "upgrade to /chat/{long}/Ann refused: 400, bad room name"
    )));
    assert!(chat.log_gets("upgrade to /chat/lobby/%ZZ refused: 400, bad percent-encoding"));
    assert!(chat.log_gets(r#"refused: 403, Origin "https://evil.example""#));
    // A path too long for a log line is cut, with a mark.
    let huge = "x".repeat(500);
    assert_eq!(chat.upgrade_status(&format!("/chat/{huge}/Ann"), ""), "400");
    assert!(chat.log_gets(&format!("upgrade to /chat/{}…", &huge[..58])));
}

#[test]
fn binary_and_oversized_messages_close_with_1003_and_1009() {
    let chat = Chat::start();
    let mut ann = chat.join("lobby", "Ann");
    next(&mut ann);
    ann.send_binary(b"\x00\x01").unwrap();
    match ann.recv() {
        Err(ClientError::Closed(frame)) => {
            assert_eq!(frame.code, CloseCode::UnsupportedData);
            assert_eq!(frame.reason, "text only");
        }
        other => panic!("{other:?}"),
    }
    let mut bob = chat.join("lobby", "Bob");
    next(&mut bob);
    bob.send_text(&"x".repeat(5000)).unwrap();
    match bob.recv() {
        Err(ClientError::Closed(frame)) => assert_eq!(frame.code, CloseCode::MessageTooBig),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_page_is_served_for_get_and_head() {
    let chat = Chat::start();
    let get = chat.http("GET", "/", "");
    assert!(get.starts_with("HTTP/1.1 200 "), "{get}");
    let (get_head, body) = get.split_once("\r\n\r\n").unwrap();
    assert!(
        body.contains("/chat/\" + encodeURIComponent(room)"),
        "{body}"
    );
    let head = chat.http("HEAD", "/", "");
    assert_eq!(
        head,
        format!("{get_head}\r\n\r\n"),
        "HEAD: GET's head, no body"
    );
    assert!(get_head.contains(&format!("Content-Length: {}\r\n", body.len())));
    let missing = chat.http("GET", "/nothing", "");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
}

#[test]
fn sigterm_closes_every_member_with_1001_and_exits_with_success() {
    let mut chat = Chat::start();
    let mut ann = chat.join("lobby", "Ann");
    next(&mut ann);
    let status = Command::new("kill")
        .args(["-TERM", &chat.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match ann.recv() {
        Err(ClientError::Closed(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
        other => panic!("{other:?}"),
    }
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = chat.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the chat did not exit");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}
