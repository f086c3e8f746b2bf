//! Graceful shutdown on signals, end to end: the `echo` example runs as a child process (the
//! binary `cargo test` builds into `target/<profile>/examples/`), sessions connect to it over
//! 127.0.0.1, and the test sends it SIGTERM / SIGINT by PID with `kill`. What the examples do
//! on a signal is `examples/common/shutdown.rs`.
//!
//! Bounded: one child at a time per test, each killed in every failure path (the guard's
//! `Drop`), every read with a timeout, every wait with a deadline.

#![cfg(unix)]

#[path = "support/example_binary.rs"]
mod example_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use example_binary::example_binary;
use wsloop::client::{Client, ClientError};
use wsloop::{CloseCode, Message};

/// The server's default close timeout (`ServerConfig::close_timeout`), which `echo` keeps.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any single step may take before the test gives up.
const WAIT: Duration = Duration::from_secs(10);
const SESSIONS: usize = 100;

/// A running `echo`, killed when dropped if it has not exited, so that no failing assertion
/// leaves a process behind.
struct Echo {
    child: Child,
    addr: String,
    /// Everything the child writes to stderr (its log at INFO), once it has exited.
    log: Option<JoinHandle<String>>,
}

impl Echo {
    /// Start `echo 127.0.0.1:0` with the log at INFO and wait for the address it announces.
    fn start() -> Echo {
        let mut child = Command::new(example_binary(
            "echo",
            &["examples/echo.rs", "examples/common"],
        ))
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the echo example");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut echo = Echo {
            child,
            addr: String::new(),
            log: Some(log),
        };
        let line = rx.recv_timeout(WAIT).expect("echo announces its address");
        echo.addr = line
            .trim()
            .strip_prefix("echo server on ws://")
            .unwrap_or_else(|| panic!("unexpected first line from echo: {line:?}"))
            .to_string();
        echo
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Send `signal` (`TERM`, `INT`) to the child by its PID.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// The exit status if the child exits before `deadline`.
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's log; call only after it has exited (its stderr is then closed).
    fn log(&mut self) -> String {
        self.log
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn sigterm_closes_every_session_with_1001_and_exits_with_success() {
    let mut echo = Echo::start();
    let url = echo.url();
    let mut clients: Vec<Client> = (0..SESSIONS)
        .map(|i| {
            let mut client = Client::builder()
                .read_timeout(Some(WAIT))
                .write_timeout(Some(WAIT))
                .connect(&url)
                .unwrap_or_else(|e| panic!("session {i}: connect: {e}"));
            // One echo each: the session is open on the server, not merely accepted.
            client.send_text(&format!("hello {i}")).unwrap();
            assert_eq!(client.recv().unwrap(), Message::Text(format!("hello {i}")));
            client
        })
        .collect();

    let signalled = Instant::now();
    echo.signal("TERM");
    let mut codes = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        match client.recv() {
            Err(ClientError::Closed(frame)) => codes.push(frame.code),
            other => panic!("session {i}: expected the server's Close, got {other:?}"),
        }
    }
    let going_away = codes.iter().filter(|c| **c == CloseCode::GoingAway).count();
    assert_eq!(going_away, SESSIONS, "close codes: {codes:?}");

    let status = echo
        .wait_until(signalled + WAIT)
        .expect("echo exits after SIGTERM");
    let took = signalled.elapsed();
    assert!(status.success(), "echo exited with {status}");
    // Every session answered, so the shutdown did not wait for the close timeout.
    assert!(
        took < CLOSE_TIMEOUT,
        "echo took {took:?} to exit after SIGTERM"
    );
    let log = echo.log();
    assert!(
        log.contains("SIGTERM: shutting down gracefully"),
        "no INFO line for the signal in:\n{log}"
    );
    // The server's `on_close` path ran for every session (it logs `close SID (peer): reason`).
    let closed = log.lines().filter(|l| l.contains("] close c")).count();
    assert_eq!(closed, SESSIONS, "log:\n{log}");
    eprintln!("SIGTERM to exit with {SESSIONS} sessions: {took:?}");
}

/// Open a session by hand on a raw socket, which will read but never answer.
fn silent_session(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).unwrap();
    // Read the 101 byte by byte, so that nothing after its head is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).expect("the upgrade's response");
        head.push(byte[0]);
        assert!(head.len() < 4096, "response head too long");
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// The first `signal` starts the graceful shutdown (the silent session gets its Close 1001
/// and the server waits for the answer that never comes); the second exits at once with
/// `code`, long before the close timeout would have ended the wait.
fn a_second_signal_exits_at_once(signal: &str, code: i32) {
    let mut echo = Echo::start();
    let mut silent = silent_session(&echo.addr);

    let first = Instant::now();
    echo.signal(signal);
    // RFC 6455 §5.5.1: the server's Close, unmasked (§5.1), code 1001 (§7.4.1) first.
    let mut header = [0u8; 4];
    silent.read_exact(&mut header).expect("the server's Close");
    assert_eq!(header[0], 0x88, "a final Close frame");
    assert_eq!(&header[2..4], &1001u16.to_be_bytes(), "close code 1001");
    // The graceful shutdown waits for the Close we never send.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        echo.child.try_wait().unwrap().is_none(),
        "echo exited after one SIG{signal} although a session had not answered"
    );

    echo.signal(signal);
    let status = echo
        .wait_until(first + WAIT)
        .unwrap_or_else(|| panic!("echo still runs after two SIG{signal}"));
    let took = first.elapsed();
    assert_eq!(status.code(), Some(code), "exit status {status}");
    assert!(
        took < CLOSE_TIMEOUT / 2,
        "echo took {took:?} after the first SIG{signal}: it waited for the close timeout"
    );
    eprintln!("two SIG{signal}: exit {code} after {took:?}");
    drop(silent);
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    a_second_signal_exits_at_once("INT", 130);
}

#[test]
fn a_second_sigterm_exits_at_once_with_143() {
    a_second_signal_exits_at_once("TERM", 143);
}

/// Without a second signal the shutdown still ends: a session that never answers its Close is
/// dropped when the close timeout runs out, and the process exits with success (what a
/// service manager's SIGTERM, then wait, relies on; `.ci/autobahn.sh` stops `echo` that way).
#[test]
fn one_sigterm_exits_with_success_within_the_close_timeout_despite_a_silent_session() {
    let mut echo = Echo::start();
    let mut silent = silent_session(&echo.addr);
    let signalled = Instant::now();
    echo.signal("TERM");
    let mut header = [0u8; 4];
    silent.read_exact(&mut header).expect("the server's Close");
    assert_eq!(&header[2..4], &1001u16.to_be_bytes(), "close code 1001");
    let status = echo
        .wait_until(signalled + CLOSE_TIMEOUT + Duration::from_secs(3))
        .expect("echo exits once the close timeout has run out");
    let took = signalled.elapsed();
    assert!(status.success(), "echo exited with {status}");
    // It did wait for the answer (no second signal came), but not past the timeout's bound.
    assert!(
        took >= CLOSE_TIMEOUT - Duration::from_millis(500),
        "echo exited after {took:?}"
    );
    eprintln!("one SIGTERM, one silent session: exit 0 after {took:?}");
    drop(silent);
}
