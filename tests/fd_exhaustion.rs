//! Running out of file descriptors (EMFILE on accept) is survived without a busy loop.
//!
//! The server runs in a child process (this test binary, re-executed under `prlimit` with a
//! small RLIMIT_NOFILE) so that the limit does not starve the test's own sockets. The parent
//! floods it with connections, measures the child's CPU time while accepts are failing, then
//! frees the descriptors and checks that a fresh client is served.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wsloop::client::Client;
use wsloop::server::{Context, Handler, Server};
use wsloop::{CloseCode, Message};

const CHILD_ENV: &str = "WSLOOP_FD_EXHAUSTION_CHILD";

struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        ctx.send(sid, message);
    }
}

/// The child: a server that prints its port and runs until killed.
#[test]
fn child_server_with_few_file_descriptors() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when re-executed by the test below
    }
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .configure(|c| c.handshake_timeout = Duration::from_secs(30))
        .build()
        .unwrap();
    println!("PORT {}", server.local_addr().unwrap().port());
    server.run(Echo).unwrap();
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn accept_survives_running_out_of_file_descriptors() {
    if std::env::var_os(CHILD_ENV).is_some() || Command::new("prlimit").arg("-V").output().is_err()
    {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("prlimit")
        .arg("--nofile=48:48")
        .arg("--")
        .arg(exe)
        .args(["--exact", "child_server_with_few_file_descriptors"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("the child printed its port").unwrap();
        // libtest prints the test's name on the same line first.
        if let Some((_, port)) = line.split_once("PORT ") {
            break port.trim().parse().unwrap();
        }
    };
    let addr = format!("127.0.0.1:{port}");

    // More connections than the child has descriptors: the kernel completes them (backlog),
    // the child's accept() fails with EMFILE once its table is full.
    let flood: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(child.id());
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(child.id()) - before;
    let elapsed = window.elapsed();
    // A busy loop would burn about 100 ticks a second; pausing accepts costs next to nothing.
    assert!(
        spent < 20,
        "the child spent {spent} ticks of CPU in {elapsed:?} while out of descriptors"
    );

    // Free the descriptors: the server catches up and serves a fresh client.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match Client::builder()
            .read_timeout(Some(Duration::from_secs(5)))
            .connect(&format!("ws://{addr}/ws/fresh"))
        {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("never served again: {e}"),
        }
    };
    client.send_text("back").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("back".into()));
    client.close(CloseCode::NormalClosure, "").unwrap();
    let _ = child.kill();
    let _ = child.wait();
}
