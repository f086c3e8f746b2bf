//! What the cluster tests share: a real `redis-server` on a free port (killed by PID when
//! dropped), server instances joined through a bridge, a TCP proxy that can cut one
//! instance off from Redis, and small client helpers.
#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wsloop::client::{Client, ClientError};
use wsloop::server::{
    CloseReason, Context, Handle, Handler, HttpRequest, HttpResponse, Server, Upgrade,
    UpgradeRequest,
};
use wsloop::{CloseFrame, Message};
use wsloop_redis::{Bridge, Config};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}

// ----- redis-server ----------------------------------------------------------------------

/// A `redis-server` of our own: 127.0.0.1 only, no persistence, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Self::try_start_on(port) {
                return server;
            }
        }
        panic!("redis-server did not start (is it installed? `apt-get install redis-server`)");
    }

    fn try_start_on(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (`apt-get install redis-server`)");
        let mut server = RedisServer {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.as_mut().unwrap().try_wait() {
                server.child = None; // exited: the port was taken
                return None;
            }
            if let Ok(mut conn) = server.try_conn() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return Some(server);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))
    }

    /// A plain client connection, as business code would have.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to the test redis-server")
    }

    /// Kill the process (by its PID) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill it and start a new, empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(server) = Self::try_start_on(self.port) {
                *self = server;
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `PUBLISH channel payload`; returns how many subscribers got it.
pub fn publish(conn: &mut redis::Connection, channel: &str, payload: &str) -> i64 {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query(conn)
        .expect("PUBLISH")
}

/// The directory entry of `sid`.
pub fn entry(conn: &mut redis::Connection, sid: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("wsloop:sid:{sid}"))
        .query(conn)
        .expect("GET")
}

/// Poll the directory until `sid`'s entry satisfies `pred`; returns the time it took.
pub fn wait_entry(
    redis: &RedisServer,
    sid: &str,
    within: Duration,
    pred: impl Fn(Option<&str>) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut conn = redis.conn();
    loop {
        let value = entry(&mut conn, sid);
        if pred(value.as_deref()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "entry of {sid} is still {value:?} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the directory has an entry for `sid` on `instance`.
pub fn wait_held_by(redis: &RedisServer, sid: &str, instance: &str) {
    let prefix = format!("{instance}#");
    wait_entry(redis, sid, WAIT, |v| {
        v.is_some_and(|v| v.starts_with(&prefix))
    });
}

// ----- Server instances ------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Open(String),
    Close(String, CloseReason),
}

/// The application's handler on each instance: reports opens and closes, broadcasts and
/// publishes through the bridge from inside the loop, as the dashboard does, and lets a
/// page join and leave topics (`join {topic}`, `leave {topic}`, answered `joined {topic}`,
/// `left {topic}` once done).
#[derive(Clone)]
struct App {
    bridge: Bridge,
    seen: Sender<Seen>,
}

impl Handler for App {
    /// The sid `forbidden` is refused with 403: the decision must pass through the bridge.
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, request: &UpgradeRequest<'_>) -> Upgrade {
        if request.sid() == Some("forbidden") {
            return Upgrade::reject(HttpResponse::text(403, "no\n"));
        }
        Upgrade::accept()
    }

    fn on_open(&mut self, _ctx: &mut Context<'_>, sid: &str) {
        let _ = self.seen.send(Seen::Open(sid.into()));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        if let Some(topic) = text.strip_prefix("join ") {
            ctx.subscribe(sid, topic);
            ctx.send(sid, format!("joined {topic}"));
        } else if let Some(topic) = text.strip_prefix("leave ") {
            ctx.unsubscribe(sid, topic);
            ctx.send(sid, format!("left {topic}"));
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let _ = self.seen.send(Seen::Close(sid.into(), reason.clone()));
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        match (request.method(), request.path()) {
            ("POST", "/broadcast") => {
                let text = String::from_utf8_lossy(request.body()).into_owned();
                match self.bridge.broadcast(text) {
                    Ok(()) => HttpResponse::text(200, "queued"),
                    Err(e) => HttpResponse::text(503, &e.to_string()),
                }
            }
            ("POST", path) if path.starts_with("/publish/") => {
                // Every instance's subscribers, through the bridge.
                let topic = &path["/publish/".len()..];
                let text = String::from_utf8_lossy(request.body()).into_owned();
                match self.bridge.publish(topic, text) {
                    Ok(()) => HttpResponse::text(200, "queued"),
                    Err(e) => HttpResponse::text(503, &e.to_string()),
                }
            }
            ("POST", path) if path.starts_with("/publish-here/") => {
                // This instance's subscribers, counted, then the others' through Redis.
                let topic = &path["/publish-here/".len()..];
                let text = String::from_utf8_lossy(request.body()).into_owned();
                let here = ctx.publish(topic, text.as_str());
                match self.bridge.publish_remote(topic, text) {
                    Ok(()) => HttpResponse::json(200, &format!(r#"{{"delivered":{here}}}"#)),
                    Err(e) => HttpResponse::text(503, &e.to_string()),
                }
            }
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

/// One server with its bridge, on a free port.
pub struct Instance {
    pub id: String,
    pub addr: SocketAddr,
    pub handle: Handle,
    pub bridge: Bridge,
    pub seen: Receiver<Seen>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// The test configuration: quick reconnection, a given instance id.
pub fn config(redis_url: &str, id: &str) -> Config {
    let mut config = Config::new(redis_url);
    config.instance_id = id.to_string();
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(400);
    config.io_timeout = Duration::from_secs(2);
    config
}

impl Instance {
    /// An instance with one event loop.
    pub fn start(config: Config) -> Instance {
        Self::start_loops(config, 1)
    }

    /// An instance with `loops` event loops (`ServerConfig::workers`), each with its own
    /// wrapped handler.
    pub fn start_loops(config: Config, loops: usize) -> Instance {
        let server = Server::builder()
            .bind("127.0.0.1:0")
            .configure(|c| {
                c.close_timeout = Duration::from_secs(1);
                c.workers = loops;
            })
            .build()
            .expect("bind");
        let addr = server.local_addr().unwrap();
        let id = config.instance_id.clone();
        let bridge = Bridge::start(config, server.handle()).expect("bridge");
        let (tx, seen) = channel();
        let app = App {
            bridge: bridge.clone(),
            seen: tx,
        };
        let (handle, thread) = if loops == 1 {
            server.spawn(bridge.wrap(app)).unwrap()
        } else {
            let wrapper = bridge.clone();
            server
                .spawn_each(move |_| wrapper.wrap(app.clone()))
                .unwrap()
        };
        assert!(bridge.wait_connected(WAIT), "{id} did not reach Redis");
        Instance {
            id,
            addr,
            handle,
            bridge,
            seen,
            thread: Some(thread),
        }
    }

    pub fn connect(&self, sid: &str) -> Client {
        let client = Client::builder()
            .read_timeout(Some(WAIT))
            .connect(&format!("ws://{}/ws/{sid}", self.addr))
            .expect("connect");
        self.wait_for(|seen| *seen == Seen::Open(sid.into()));
        client
    }

    /// Skip what the handler saw until `pred` matches.
    pub fn wait_for(&self, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let seen = self.seen.recv_timeout(left).expect("never seen");
            if pred(&seen) {
                return seen;
            }
        }
    }

    /// Shut the server down gracefully, then the bridge.
    pub fn stop(mut self) {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap().unwrap();
        self.bridge.stop();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
            self.bridge.stop();
        }
    }
}

/// Ask the page to join `topic`; returns once its loop has subscribed it.
pub fn join(page: &mut Client, topic: &str) {
    page.send_text(&format!("join {topic}")).expect("send join");
    assert_eq!(text(page), format!("joined {topic}"));
}

/// Ask the page to leave `topic`; returns once its loop has unsubscribed it.
pub fn leave(page: &mut Client, topic: &str) {
    page.send_text(&format!("leave {topic}"))
        .expect("send leave");
    assert_eq!(text(page), format!("left {topic}"));
}

/// `POST {path}` with `body` to `addr`; returns the whole answer.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Raw HTTP: send `request`, read the whole answer.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

pub fn text(client: &mut Client) -> String {
    match client.recv().expect("a message") {
        Message::Text(text) => text,
        other => panic!("expected text, got {other:?}"),
    }
}

/// The server's Close, which must come next.
pub fn close_frame(client: &mut Client) -> CloseFrame {
    match client.recv() {
        Err(ClientError::Closed(frame)) => frame,
        other => panic!("expected a Close, got {other:?}"),
    }
}

// ----- A proxy that can cut an instance off from Redis -----------------------------------

/// Forwards TCP to `target` until [`Proxy::cut`]: then every connection is shut and new
/// ones are dropped at once, as if the instance's machine had gone.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (cut2, streams2) = (cut.clone(), streams.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: the peer sees the connection close
                }
                let Ok(outbound) = TcpStream::connect(target) else {
                    continue;
                };
                let mut all = streams2.lock().unwrap();
                all.push(inbound.try_clone().unwrap());
                all.push(outbound.try_clone().unwrap());
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        Proxy { addr, cut, streams }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}
