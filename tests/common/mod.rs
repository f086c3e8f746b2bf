//! What the loopback integration tests share: a recording handler, a test server on a free
//! port, raw HTTP and raw frames.
#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wsloop::client::Client;
use wsloop::server::{
    CloseReason, Context, Handle, Handler, HttpRequest, HttpResponse, Server, ServerConfig,
};
use wsloop::Message;

pub const WAIT: Duration = Duration::from_secs(10);

/// Event loops per test server: `WSLOOP_TEST_WORKERS`, default 1. CI runs the server's
/// integration tests with 1 and with 2, so that every behaviour also holds across loops.
pub fn workers() -> usize {
    std::env::var("WSLOOP_TEST_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// What the handler saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Open(String),
    Message(String, Message),
    Close(String, CloseReason),
}

/// A handler that reports everything, echoes messages (unless told not to), and serves a
/// couple of HTTP endpoints for the tests.
pub struct Recorder {
    pub seen: Sender<Seen>,
    pub echo: bool,
}

impl Handler for Recorder {
    fn on_open(&mut self, _ctx: &mut Context<'_>, sid: &str) {
        let _ = self.seen.send(Seen::Open(sid.into()));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        if self.echo {
            ctx.send(sid, message.clone());
        }
        let _ = self.seen.send(Seen::Message(sid.into(), message));
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let _ = self.seen.send(Seen::Close(sid.into(), reason.clone()));
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        match (request.method(), request.path()) {
            ("POST", "/broadcast") => {
                let text = String::from_utf8_lossy(request.body()).into_owned();
                let n = ctx.broadcast(text);
                HttpResponse::text(200, &n.to_string())
            }
            ("POST", "/shutdown") => {
                ctx.shutdown();
                HttpResponse::text(200, "bye")
            }
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    pub seen: Receiver<Seen>,
    pub thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::start_with(true, configure)
    }

    pub fn start_with(echo: bool, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let (tx, rx) = channel();
        let server = Server::builder()
            .bind("127.0.0.1:0")
            // Clients left open at the end of a test do not read: don't wait 5 s for them.
            .configure(|c| c.close_timeout = Duration::from_secs(1))
            .workers(workers())
            .configure(configure)
            .build()
            .expect("bind");
        let addr = server.local_addr().unwrap();
        let make = move |_| Recorder {
            seen: tx.clone(),
            echo,
        };
        let (handle, thread) = server.spawn_each(make).unwrap();
        TestServer {
            addr,
            handle,
            seen: rx,
            thread: Some(thread),
        }
    }

    pub fn url(&self, sid: &str) -> String {
        format!("ws://{}/ws/{sid}", self.addr)
    }

    pub fn connect(&self, sid: &str) -> Client {
        let client = Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&self.url(sid))
            .expect("connect");
        assert_eq!(self.next(), Seen::Open(sid.into()));
        client
    }

    /// The next thing the handler saw, within the time limit.
    pub fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the handler saw nothing")
    }

    /// Skip events until `pred` matches one.
    pub fn wait_for(&self, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let seen = self.seen.recv_timeout(left).expect("condition never seen");
            if pred(&seen) {
                return seen;
            }
        }
    }

    pub fn stop(mut self) {
        self.handle.shutdown();
        let thread = self.thread.take().unwrap();
        thread.join().unwrap().unwrap();
    }
}

/// Raw HTTP: send `request`, read the whole answer (the server closes after it).
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client frame, built by hand.
pub fn masked(opcode_byte: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut out = vec![opcode_byte];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A raw socket that has completed the handshake for `sid`.
pub fn raw_session(server: &TestServer, sid: &str) -> TcpStream {
    raw_session_head(server, sid).0
}

/// A raw socket that has completed the handshake for `sid`, and the response head.
pub fn raw_session_head(server: &TestServer, sid: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(upgrade_request(&format!("/ws/{sid}"), "").as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(server.next(), Seen::Open(sid.into()));
    (s, String::from_utf8(head).unwrap())
}

/// Read an HTTP response head, byte by byte so that nothing after it is consumed.
pub fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    head
}

/// Read one unmasked server frame: (first byte, payload).
pub fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    try_read_frame(s).expect("a whole server frame")
}

/// Read one unmasked server frame through `r`: (first byte, payload), or `None` when the
/// read times out or the connection ends first.
pub fn try_read_frame(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).ok()?;
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).ok()?;
    Some((h[0], payload))
}
