//! The server-wide memory budget over real sockets: the `echo` example runs as a child
//! process with `--memory-budget`, clients that each try to make it hold a large message
//! (and never read) connect over 127.0.0.1, and the test reads the child's memory from
//! `/proc/PID/status` (Linux). What the budget does is `ServerConfig::memory_budget`
//! (`src/server/budget.rs`).
//!
//! Bounded: one child, killed in every failure path (the guard's `Drop`); every socket has
//! read and write timeouts; 8 + 2 connections.

#![cfg(target_os = "linux")]

#[path = "support/example_binary.rs"]
mod example_binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use example_binary::example_binary;
use wsloop::client::Client;
use wsloop::Message;

const MIB: usize = 1 << 20;
const BUDGET: usize = 128 * MIB;
const HOLDERS: usize = 8;
/// Each holder's message: under echo's 64 MiB limit, so only the budget stops it.
const MESSAGE: usize = 60 * MIB;
const WAIT: Duration = Duration::from_secs(10);

/// The child, killed when the test ends however it ends.
struct Echo {
    child: Child,
    addr: String,
}

impl Echo {
    fn start(budget: usize) -> Echo {
        let mut child = Command::new(example_binary(
            "echo",
            &["examples/echo.rs", "examples/common"],
        ))
        .args(["127.0.0.1:0", "--memory-budget", &budget.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start echo");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("echo's first line");
        let addr = line
            .trim()
            .strip_prefix("echo server on ws://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Echo { child, addr }
    }

    /// A field of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
    fn memory(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the child's status");
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"));
        let kib: usize = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap();
        kib * 1024
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw WebSocket connection, upgraded, with timeouts.
fn upgrade(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(
        b"GET /hold HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    s
}

/// The header of a masked binary frame of `len` bytes (key 0: the payload goes as it is).
fn binary_header(len: usize) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&(len as u64).to_be_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

#[test]
fn clients_holding_large_messages_stay_within_the_budget_and_others_are_served() {
    let echo = Echo::start(BUDGET);
    let baseline = echo.memory("VmRSS");

    // Each holder announces a 60 MiB message and sends it as fast as the server reads it,
    // never reading anything back, until a write blocks for 2 s (the server stopped reading).
    let holders: Vec<std::thread::JoinHandle<(TcpStream, usize)>> = (0..HOLDERS)
        .map(|_| {
            let addr = echo.addr.clone();
            std::thread::spawn(move || {
                let mut s = upgrade(&addr);
                s.write_all(&binary_header(MESSAGE)).unwrap();
                let chunk = vec![0u8; MIB];
                let mut sent = 0;
                while sent < MESSAGE {
                    match s.write(&chunk[..(MESSAGE - sent).min(MIB)]) {
                        Ok(n) => sent += n,
                        Err(_) => break, // timed out: the server holds the rest back
                    }
                }
                (s, sent)
            })
        })
        .collect();
    let holders: Vec<(TcpStream, usize)> = holders.into_iter().map(|h| h.join().unwrap()).collect();
    let sent: usize = holders.iter().map(|(_, n)| n).sum();
    assert!(
        sent < HOLDERS * MESSAGE,
        "every message went through ({sent} bytes): nothing held the holders back"
    );

    // A normal client is still served.
    let mut client = Client::connect(&format!("ws://{}/normal", echo.addr)).unwrap();
    for i in 0..20 {
        let text = format!("message {i} {}", "x".repeat(1000));
        client.send(Message::Text(text.clone())).unwrap();
        assert_eq!(client.recv().unwrap(), Message::Text(text));
    }

    // A frame that does not fit in what is left is refused from its header: 1013.
    let mut late = upgrade(&echo.addr);
    late.write_all(&binary_header(MESSAGE)).unwrap();
    let mut close = [0u8; 4];
    late.read_exact(&mut close).unwrap();
    assert_eq!(close[0], 0x88, "a Close, got {close:?}");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1013);

    // The peak stayed within the budget above the idle process: the budget counts what the
    // connections hold, the rest is the documented slack (a few MiB here).
    let peak = echo.memory("VmHWM");
    assert!(
        peak.saturating_sub(baseline) <= BUDGET,
        "peak {} MiB over a baseline of {} MiB, budget {} MiB ({} MiB sent by the holders)",
        peak / MIB,
        baseline / MIB,
        BUDGET / MIB,
        sent / MIB
    );
    eprintln!(
        "baseline {} MiB, peak {} MiB, budget {} MiB, the holders sent {} MiB of {} MiB",
        baseline / MIB,
        peak / MIB,
        BUDGET / MIB,
        sent / MIB,
        HOLDERS * MESSAGE / MIB
    );
    drop(holders);
}
