//! A server with several event loops (`ServerConfig::workers`) behaves as one: connections
//! spread over the loops, and sends, broadcasts, closes, duplicate sids and shutdown reach
//! across them. Loopback only, a few connections each.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use wsloop::client::{Client, ClientError};
use wsloop::server::{CloseReason, Context, Handle, Handler, SendStatus, Server, ServerConfig};
use wsloop::{CloseCode, Message};

const WAIT: Duration = Duration::from_secs(10);

/// What a loop's handler saw, and on which loop.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Open(String, usize),
    Close(String, CloseReason, usize),
    Sent(String, SendStatus),
}

/// Each loop's handler: records opens and closes with its loop; on a message `shout X` it
/// broadcasts X, on `to:SID X` it sends X to SID and records the status, on `panic` it
/// panics.
struct Loop {
    index: usize,
    seen: Sender<Seen>,
}

impl Handler for Loop {
    fn on_open(&mut self, _ctx: &mut Context<'_>, sid: &str) {
        let _ = self.seen.send(Seen::Open(sid.into(), self.index));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        if let Some(rest) = text.strip_prefix("shout ") {
            ctx.broadcast(format!("{sid}: {rest}"));
        } else if let Some(rest) = text.strip_prefix("to:") {
            let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
            let status = ctx.send(to, format!("{sid} says {body}"));
            let _ = self.seen.send(Seen::Sent(to.into(), status));
        } else if text == "panic" {
            panic!("loop {}'s handler panics on purpose", self.index);
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let _ = self
            .seen
            .send(Seen::Close(sid.into(), reason.clone(), self.index));
    }
}

struct Cluster {
    url: String,
    handle: Handle,
    seen: Receiver<Seen>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Cluster {
    fn start(workers: usize) -> Cluster {
        Cluster::start_with(workers, |_| {})
    }

    fn start_with(workers: usize, configure: impl FnOnce(&mut ServerConfig)) -> Cluster {
        let (tx, rx) = channel();
        let server = Server::builder()
            .bind("127.0.0.1:0")
            .workers(workers)
            .configure(|c| c.close_timeout = Duration::from_secs(1))
            .configure(configure)
            .build()
            .unwrap();
        let url = format!("ws://{}/ws/", server.local_addr().unwrap());
        let (handle, thread) = server
            .spawn_each(move |index| Loop {
                index,
                seen: tx.clone(),
            })
            .unwrap();
        Cluster {
            url,
            handle,
            seen: rx,
            thread,
        }
    }

    fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the handlers saw nothing")
    }

    /// Connect `sid`; returns the client and the loop its session opened on.
    fn connect(&self, sid: &str) -> (Client, usize) {
        let client = Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&format!("{}{sid}", self.url))
            .unwrap();
        match self.next() {
            Seen::Open(s, index) if s == sid => (client, index),
            other => panic!("expected the open of {sid}, saw {other:?}"),
        }
    }

    fn stop(self) {
        self.handle.shutdown();
        self.thread.join().unwrap().unwrap();
    }
}

fn text(t: &str) -> Message {
    Message::Text(t.into())
}

/// A request head that never ends, on a connection that holds a slot.
fn half_sent_head(url: &str, i: usize) -> std::net::TcpStream {
    use std::io::Write;
    let addr = url.trim_start_matches("ws://").trim_end_matches("/ws/");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET /ws/h{i} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // Let loop 0 accept and place it before the next connection arrives.
    std::thread::sleep(Duration::from_millis(100));
    s
}

/// Whether the server closed `s` (end of stream or reset) rather than leaving it open.
fn closed_by_server(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 64];
    !matches!(s.read(&mut buf), Ok(n) if n > 0)
}

/// Full, with the accepting loop holding only sessions: a newcomer goes to the loop that
/// holds a half-sent head, which drops its oldest for it; no session is dropped.
#[test]
fn a_full_server_drops_a_head_on_another_loop_for_a_newcomer() {
    let cluster = Cluster::start_with(2, |c| c.max_connections = 4);
    let (mut a, loop_a) = cluster.connect("a");
    let mut first_head = half_sent_head(&cluster.url, 1);
    let (mut b, loop_b) = cluster.connect("b");
    let mut second_head = half_sent_head(&cluster.url, 3);
    assert_eq!(
        (loop_a, loop_b),
        (0, 0),
        "the balance put the heads on loop 1"
    );

    let (mut newcomer, loop_new) = cluster.connect("new");
    assert_eq!(loop_new, 1, "it took the place of a head on loop 1");
    assert!(
        closed_by_server(&mut first_head),
        "the oldest head is dropped"
    );
    second_head
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1];
    let still_open = matches!(
        std::io::Read::read(&mut second_head, &mut buf),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut
    );
    assert!(still_open, "the newer head is kept");
    // Both sessions on loop 0 are still served.
    newcomer.send(text("shout hello")).unwrap();
    for client in [&mut a, &mut b, &mut newcomer] {
        assert_eq!(client.recv().unwrap(), text("new: hello"));
    }
    cluster.stop();
}

#[test]
fn connections_spread_evenly_over_the_loops() {
    let cluster = Cluster::start(2);
    let clients: Vec<(Client, usize)> =
        (0..10).map(|i| cluster.connect(&format!("c{i}"))).collect();
    let on_first = clients.iter().filter(|(_, index)| *index == 0).count();
    assert_eq!(on_first, 5, "loops of the 10 sessions: {clients:?}");
    assert_eq!(cluster.handle.session_count(), 10);
    cluster.stop();
}

#[test]
fn connections_arriving_at_once_are_balanced_exactly() {
    let cluster = Cluster::start(2);
    let url = cluster.url.clone();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        Client::builder()
                            .read_timeout(Some(WAIT))
                            .connect(&format!("{url}t{t}-{i}"))
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let clients: Vec<Client> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let mut per_loop = [0; 2];
    for _ in 0..clients.len() {
        match cluster.next() {
            Seen::Open(_, index) => per_loop[index] += 1,
            other => panic!("{other:?}"),
        }
    }
    // Loop 0 hands each new connection to the loop with the fewest, counting those on
    // their way: none is closed here, so the counts alternate.
    assert_eq!(per_loop, [20, 20]);
    cluster.stop();
}

#[test]
fn a_broadcast_from_a_handler_on_one_loop_reaches_the_sessions_on_the_other() {
    let cluster = Cluster::start(2);
    let (mut a, loop_a) = cluster.connect("a");
    let (mut b, loop_b) = cluster.connect("b");
    assert_ne!(loop_a, loop_b);
    a.send_text("shout order 42").unwrap();
    assert_eq!(a.recv().unwrap(), text("a: order 42"));
    assert_eq!(b.recv().unwrap(), text("a: order 42"));
    // And the other way, each session exactly once: the next message is the next broadcast.
    b.send_text("shout delivered").unwrap();
    assert_eq!(a.recv().unwrap(), text("b: delivered"));
    assert_eq!(b.recv().unwrap(), text("b: delivered"));
    cluster.stop();
}

#[test]
fn a_send_to_a_sid_on_another_loop_is_forwarded_to_it() {
    let cluster = Cluster::start(2);
    let (mut a, loop_a) = cluster.connect("a");
    let (mut b, loop_b) = cluster.connect("b");
    assert_ne!(loop_a, loop_b);
    a.send_text("to:b hello").unwrap();
    assert_eq!(
        cluster.next(),
        Seen::Sent("b".into(), SendStatus::Forwarded)
    );
    assert_eq!(b.recv().unwrap(), text("a says hello"));
    a.send_text("to:nobody hello").unwrap();
    assert_eq!(
        cluster.next(),
        Seen::Sent("nobody".into(), SendStatus::NoSuchSession)
    );
    cluster.stop();
}

#[test]
fn handle_sends_and_closes_reach_the_loop_holding_the_sid() {
    let cluster = Cluster::start(2);
    let (mut a, _) = cluster.connect("a");
    let (mut b, _) = cluster.connect("b");
    cluster.handle.send("b", "for b").unwrap();
    cluster.handle.send("a", "for a").unwrap();
    assert_eq!(b.recv().unwrap(), text("for b"));
    assert_eq!(a.recv().unwrap(), text("for a"));
    cluster.handle.broadcast("everyone").unwrap();
    assert_eq!(a.recv().unwrap(), text("everyone"));
    assert_eq!(b.recv().unwrap(), text("everyone"));
    cluster
        .handle
        .close("b", CloseCode::NormalClosure, "bye")
        .unwrap();
    match b.recv() {
        Err(ClientError::Closed(frame)) => assert_eq!(frame.code, CloseCode::NormalClosure),
        other => panic!("expected a Close, got {other:?}"),
    }
    match cluster.next() {
        Seen::Close(sid, CloseReason::ByServer { .. }, _) => assert_eq!(sid, "b"),
        other => panic!("{other:?}"),
    }
    cluster.stop();
}

#[test]
fn a_duplicate_sid_arriving_on_another_loop_replaces_the_old_session_in_order() {
    let cluster = Cluster::start(2);
    let (mut old, loop_x) = cluster.connect("x");
    let (_y, loop_y) = cluster.connect("y");
    let (_z, loop_z) = cluster.connect("z");
    assert_ne!(loop_x, loop_y);
    assert_eq!(loop_z, loop_x);
    // The loop of x now has two connections, the other one: the new connection for x is
    // accepted by the other loop, which hands it to the loop holding x.
    let new = Client::builder()
        .read_timeout(Some(WAIT))
        .connect(&format!("{}x", cluster.url))
        .unwrap();
    assert_eq!(
        cluster.next(),
        Seen::Close("x".into(), CloseReason::Replaced, loop_x)
    );
    assert_eq!(cluster.next(), Seen::Open("x".into(), loop_x));
    match old.recv() {
        Err(ClientError::Closed(frame)) => {
            assert_eq!(frame.code, CloseCode::Private(4000));
            assert_eq!(frame.reason, "replaced");
        }
        other => panic!("expected Close 4000, got {other:?}"),
    }
    assert_eq!(cluster.handle.session_count(), 3);
    drop(new);
    cluster.stop();
}

#[test]
fn shutdown_closes_the_sessions_of_every_loop_and_stops_them_all() {
    let cluster = Cluster::start(3);
    let mut clients: Vec<Client> = (0..6)
        .map(|i| cluster.connect(&format!("s{i}")).0)
        .collect();
    let handle = cluster.handle.clone();
    let seen = cluster.seen;
    handle.shutdown();
    assert!(handle.is_stopped());
    cluster.thread.join().unwrap().unwrap();
    for client in &mut clients {
        match client.recv() {
            Err(ClientError::Closed(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
            other => panic!("expected Close 1001, got {other:?}"),
        }
    }
    let mut closed: Vec<usize> = seen
        .try_iter()
        .filter_map(|s| match s {
            Seen::Close(_, CloseReason::Shutdown, index) => Some(index),
            _ => None,
        })
        .collect();
    closed.sort_unstable();
    assert_eq!(closed, [0, 0, 1, 1, 2, 2]);
    assert_eq!(
        handle.broadcast("too late"),
        Err(wsloop::server::HandleError::Stopped)
    );
}

#[test]
fn a_handler_panicking_on_one_loop_stops_every_loop_and_shutdown_returns() {
    let cluster = Cluster::start(2);
    let (a, loop_a) = cluster.connect("a");
    let (b, loop_b) = cluster.connect("b");
    assert_ne!(loop_a, loop_b);
    // Loop 1 runs on a thread of `run_each`'s own; its handler panics.
    let (mut doomed, mut survivor) = if loop_a == 1 { (a, b) } else { (b, a) };
    doomed.send(text("panic")).unwrap();
    // The other loop shuts down in order: its session gets Close 1001.
    match survivor.recv() {
        Err(ClientError::Closed(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    let handle = cluster.handle.clone();
    handle.shutdown();
    assert!(handle.is_stopped());
    assert_eq!(handle.session_count(), 0);
    let outcome = cluster.thread.join().unwrap();
    assert!(outcome.is_err(), "run_each reports the panicked loop");
    assert_eq!(
        handle.send("b", "late"),
        Err(wsloop::server::HandleError::Stopped)
    );
}

#[test]
fn a_refused_run_leaves_no_handle_waiting() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .workers(2)
        .build()
        .unwrap();
    let handle = server.handle();
    struct Nothing;
    impl Handler for Nothing {}
    assert!(server.run(Nothing).is_err());
    // Neither loop will ever run: the handle says so instead of waiting for them.
    handle.shutdown();
    assert!(handle.is_stopped());
}

#[test]
fn run_refuses_a_server_with_several_loops() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .workers(2)
        .build()
        .unwrap();
    struct Nothing;
    impl Handler for Nothing {}
    let error = server.run(Nothing).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
