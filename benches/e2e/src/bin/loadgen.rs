//! The load generator: one thread, one `mio::Poll`, many connections.
//!
//! ```text
//! loadgen echo       --addr A --conns N --size BYTES --inflight F [--latency] [--raw]
//! loadgen handshakes --addr A --conc C
//! loadgen idle       --addr A --conns N [--raw]      (prints "ready", holds until stdin ends)
//! loadgen fanout     --addr A --conns N --rounds R [--raw]
//!                    (wsloop's broadcast: one message to all; `--raw`: its ceiling,
//!                    `servers raw-tcp-fanout`, the same bytes unframed)
//! loadgen broadcast  --addr A --conns N --window W   (wsloop's broadcast, sustained)
//! loadgen zecho      --addr A --conns N --size BYTES --inflight F [--expect deflate|plain]
//! loadgen zmem       --addr A --conns N --size BYTES [--expect deflate|plain]
//!                    (prints "idle", waits for a line on stdin, exchanges one message per
//!                    connection, prints "ready", holds until stdin ends)
//! loadgen tls-echo|tls-handshakes|tls-idle ...  (row 10, over TLS: see `src/tls_load.rs`)
//! common:            --warmup-ms 500 --duration-ms 2000
//!                    --thread-cpu (row 9: also each server thread's CPU share, by name)
//! ```
//!
//! It prints one line of JSON with the results (or `{"error": ...}` and exits 1).
//!
//! What keeps it light: every frame it sends is encoded and masked before the run, in a ring
//! of `K` distinct frames laid end to end, and connection `c` sends the ring from frame
//! `c % K` on, over and over; a batch of frames is one `write` (or a two-slice `writev` where
//! the ring wraps) straight from that memory. The replies are checked the same way: the
//! server's answer to the ring is the ring of the matching unmasked frames, so checking a
//! reply is one `memcmp` of the bytes read against that ring (header and payload, in order),
//! with no parsing at all. With `--raw` (the raw TCP echo) the expected bytes are the sent
//! bytes themselves and no handshake is made.
//!
//! Row 8 (`zecho`, `zmem`: permessage-deflate, RFC 7692) cannot compare bytes: with context
//! takeover the server's compressed frames depend on everything it sent before. There every
//! connection offers [`pmd::OFFER`], checks the answer, sends text messages compressed once
//! before the run (we reset our context after each message, so a message's frame never
//! changes), and parses every reply, inflates it with the connection's own inflater and
//! compares it with the JSON text sent (`wsloop_e2e::pmd`).

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use wsloop_e2e::{
    check_upgrade_response, client_frame, cores_busy_seconds, cpu_seconds, head_end, mask_key,
    payload, pmd, proc_cpu_seconds, proc_threads_cpu_seconds, raise_fd_limit, server_frame,
    upgrade_request, upgrade_request_with, Args, BINARY_FIN, CLOSE_FIN,
};

#[path = "../tls_load.rs"]
mod tls_load;

/// Size of the one read buffer.
const READ_BUF: usize = 256 << 10;
/// Most connections in the middle of their handshake at once while connecting.
const CONNECT_WINDOW: usize = 256;
/// What a raw connection sends (and gets back) before it counts as open.
const RAW_PROBE: &[u8] = b"\n";

type Result<T> = std::result::Result<T, String>;

fn main() {
    let mut argv = std::env::args().skip(1);
    let which = argv.next().unwrap_or_default();
    let args = Args::parse(argv);
    if let Err(e) = raise_fd_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    let result = match which.as_str() {
        "echo" => echo(&args),
        "handshakes" => handshakes(&args),
        "idle" => idle(&args),
        "fanout" => fanout(&args),
        "topic" => topic(&args),
        "broadcast" => broadcast(&args),
        "zecho" => zecho(&args),
        "zmem" => zmem(&args),
        "tls-echo" => tls_load::echo(&args),
        "tls-handshakes" => tls_load::handshakes(&args),
        "tls-idle" => tls_load::idle(&args),
        _ => Err(format!(
            "unknown subcommand {which:?}; see the top of loadgen.rs"
        )),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            println!("{{\"error\":{}}}", serde_json::Value::String(e));
            std::process::exit(1);
        }
    }
}

fn addr(args: &Args) -> Result<SocketAddr> {
    args.get("addr")
        .unwrap_or("127.0.0.1:9000")
        .parse()
        .map_err(|e| format!("--addr: {e}"))
}

/// The measurement window: a warm-up, then `duration`.
struct Window {
    warmup: Duration,
    duration: Duration,
}

impl Window {
    fn from(args: &Args) -> Window {
        Window {
            warmup: Duration::from_millis(args.num("warmup-ms", 500)),
            duration: Duration::from_millis(args.num("duration-ms", 2000)),
        }
    }
}

/// Snapshots at the start and end of the window: time, CPU time and counters.
struct Meter {
    window: Window,
    /// The server's pid, to read its CPU time over the window (`--server-pid`).
    server: Option<u32>,
    started: Instant,
    t0: Option<Snapshot>,
    end: Option<Snapshot>,
    /// With `--thread-cpu`: every server thread's CPU seconds at the start and end of the
    /// window.
    thread_cpu: bool,
    threads: [Vec<(u32, String, f64)>; 2],
}

/// Time, our CPU time, the server's CPU time, two counters, busy time of cores 0 and 1.
type Snapshot = (Instant, f64, Option<f64>, u64, u64, [f64; 2]);

/// Figures over the window: seconds, our CPU share, the server's CPU share, two deltas, and
/// how busy cores 0 and 1 were (by anything, the server and us included).
struct Measured {
    secs: f64,
    cpu: f64,
    server_cpu: f64,
    a: u64,
    b: u64,
    cores: [f64; 2],
    /// With `--thread-cpu`: each server thread alive over the whole window, its name and its
    /// CPU share, in thread-id order (the main thread first).
    threads: Vec<(String, f64)>,
}

impl Measured {
    /// The JSON fields every timed row reports about CPU use.
    fn cpu_fields(&self) -> String {
        let mut fields = format!(
            "\"loadgen_cpu\":{:.3},\"server_cpu\":{:.3},\"core0_busy\":{:.3},\"core1_busy\":{:.3}",
            self.cpu, self.server_cpu, self.cores[0], self.cores[1]
        );
        if !self.threads.is_empty() {
            let threads: Vec<String> = self
                .threads
                .iter()
                .map(|(name, share)| {
                    format!("[{},{share:.3}]", serde_json::Value::from(name.as_str()))
                })
                .collect();
            fields.push_str(&format!(",\"server_threads\":[{}]", threads.join(",")));
        }
        fields
    }
}

impl Meter {
    fn new(args: &Args) -> Meter {
        Meter {
            window: Window::from(args),
            server: args.get("server-pid").and_then(|p| p.parse().ok()),
            started: Instant::now(),
            t0: None,
            end: None,
            thread_cpu: args.flag("thread-cpu"),
            threads: [Vec::new(), Vec::new()],
        }
    }

    fn thread_snapshot(&self) -> Vec<(u32, String, f64)> {
        match self.server {
            Some(pid) if self.thread_cpu => proc_threads_cpu_seconds(pid),
            _ => Vec::new(),
        }
    }

    fn measuring(&self) -> bool {
        self.t0.is_some() && self.end.is_none()
    }

    fn snapshot(&self, now: Instant, a: u64, b: u64) -> Snapshot {
        let server = self.server.and_then(proc_cpu_seconds);
        let cores = cores_busy_seconds();
        let core = |i: usize| cores.get(i).copied().unwrap_or(0.0);
        (now, cpu_seconds(), server, a, b, [core(0), core(1)])
    }

    /// Move through warm-up, window, end; true once the window is over.
    fn tick(&mut self, now: Instant, a: u64, b: u64) -> bool {
        match self.t0 {
            None if now >= self.started + self.window.warmup => {
                self.threads[0] = self.thread_snapshot();
                self.t0 = Some(self.snapshot(now, a, b));
            }
            Some((t0, ..)) if now >= t0 + self.window.duration => {
                self.end = Some(self.snapshot(now, a, b));
                self.threads[1] = self.thread_snapshot();
                return true;
            }
            _ => {}
        }
        false
    }

    fn result(&self) -> Measured {
        let (t0, c0, s0, a0, b0, k0) = self.t0.expect("window started");
        let (t1, c1, s1, a1, b1, k1) = self.end.expect("window ended");
        let secs = (t1 - t0).as_secs_f64();
        let server_cpu = match (s0, s1) {
            (Some(s0), Some(s1)) => (s1 - s0) / secs,
            _ => -1.0,
        };
        Measured {
            secs,
            cpu: (c1 - c0) / secs,
            server_cpu,
            a: a1 - a0,
            b: b1 - b0,
            cores: [(k1[0] - k0[0]) / secs, (k1[1] - k0[1]) / secs],
            threads: self.threads[1]
                .iter()
                .filter_map(|(tid, name, end)| {
                    let (_, _, start) = self.threads[0].iter().find(|t| t.0 == *tid)?;
                    Some((name.clone(), (end - start) / secs))
                })
                .collect(),
        }
    }
}

/// `K` frames of equal length laid end to end; a connection's stream repeats them.
struct Ring {
    bytes: Vec<u8>,
    frame_len: usize,
}

impl Ring {
    fn new(frames: Vec<Vec<u8>>) -> Ring {
        let frame_len = frames[0].len();
        assert!(frames.iter().all(|f| f.len() == frame_len));
        Ring {
            bytes: frames.concat(),
            frame_len,
        }
    }

    fn total(&self) -> usize {
        self.bytes.len()
    }

    /// Index in `bytes` of byte `pos` of the stream that starts at frame `first`.
    fn at(&self, first: usize, pos: u64) -> usize {
        ((first * self.frame_len) as u64 + pos).rem_euclid(self.total() as u64) as usize
    }

    /// Checks that `data` is the stream starting at frame `first`, from byte `pos` on.
    fn check(&self, first: usize, mut pos: u64, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let p = self.at(first, pos);
            let n = data.len().min(self.total() - p);
            let expected = &self.bytes[p..p + n];
            if data[..n] != *expected {
                let i = data
                    .iter()
                    .zip(expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                let at = pos + i as u64;
                return Err(format!(
                    "wrong reply: message {} byte {} is {:#04x}, expected {:#04x}",
                    at / self.frame_len as u64,
                    at % self.frame_len as u64,
                    data[i],
                    expected[i]
                ));
            }
            pos += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Bytes `pos..pos + max` of that stream (at most one ring's worth), as two slices.
    fn slices(&self, first: usize, pos: u64, max: u64) -> (&[u8], &[u8]) {
        wrapped(&self.bytes, self.at(first, pos), max)
    }
}

/// The send and reply rings for messages of `size` bytes (`raw`: replies are the sent bytes).
fn rings(size: usize, raw: bool) -> (Ring, Ring) {
    // Enough distinct frames to catch a reordering or a stale buffer; at most ~4 MiB each.
    let k = ((4 << 20) / (size + 14)).clamp(2, 64);
    let payloads: Vec<Vec<u8>> = (0..k).map(|j| payload(j as u64 + 1, size)).collect();
    let sent: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(j, p)| client_frame(BINARY_FIN, p, mask_key(j as u64)))
        .collect();
    let replies: Vec<Vec<u8>> = if raw {
        sent.clone()
    } else {
        payloads
            .iter()
            .map(|p| server_frame(BINARY_FIN, p))
            .collect()
    };
    (Ring::new(sent), Ring::new(replies))
}

/// One connection's two byte streams: what it may send and what it got back.
struct Stream {
    socket: TcpStream,
    /// The ring frame this connection's streams start at.
    first: usize,
    /// Bytes written, and bytes it may write so far.
    sent: u64,
    allowed: u64,
    /// Bytes received and checked.
    recvd: u64,
    /// Whole replies counted so far.
    done: u64,
}

impl Stream {
    fn new(socket: TcpStream, first: usize) -> Stream {
        Stream {
            socket,
            first,
            sent: 0,
            allowed: 0,
            recvd: 0,
            done: 0,
        }
    }

    /// Write until everything allowed is out or the socket is full.
    fn write_allowed(&mut self, ring: &Ring) -> Result<()> {
        write_stream(
            &mut self.socket,
            &mut self.sent,
            self.allowed,
            |pos, max| ring.slices(self.first, pos, max),
        )
        .map(drop)
    }

    /// Read what the socket has and check it against `ring`; returns the bytes read.
    fn read_check(&mut self, ring: &Ring, buf: &mut [u8]) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = match self.socket.read(buf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            self.check(ring, &buf[..n])?;
            total += n as u64;
            if n < buf.len() {
                // A short read emptied the socket; more data raises a new edge.
                return Ok(total);
            }
        }
    }

    fn check(&mut self, ring: &Ring, data: &[u8]) -> Result<()> {
        ring.check(self.first, self.recvd, data)?;
        self.recvd += data.len() as u64;
        Ok(())
    }
}

fn poll_events(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Result<()> {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// Write bytes `*sent..allowed` of a connection's stream (`slices(pos, max)` gives them, as
/// a ring's two pieces) until all are out or the socket is full; returns the bytes written.
fn write_stream<'r>(
    socket: &mut TcpStream,
    sent: &mut u64,
    allowed: u64,
    slices: impl Fn(u64, u64) -> (&'r [u8], &'r [u8]),
) -> Result<u64> {
    let mut total = 0;
    while *sent < allowed {
        let (a, b) = slices(*sent, allowed - *sent);
        let written = if b.is_empty() {
            socket.write(a)
        } else {
            socket.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
        };
        match written {
            Ok(0) => return Err("write returned 0".into()),
            Ok(n) => {
                *sent += n as u64;
                total += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(total)
}

/// Up to `max` bytes (at most one ring's worth) of the ring laid out in `bytes`, from index
/// `p` on: the piece up to the end of `bytes`, then the piece from its start.
fn wrapped(bytes: &[u8], p: usize, max: u64) -> (&[u8], &[u8]) {
    let len = max.min(bytes.len() as u64) as usize;
    let a = &bytes[p..(p + len).min(bytes.len())];
    (a, &bytes[..len - a.len()])
}

/// Open `n` connections (upgraded unless `raw`), at most [`CONNECT_WINDOW`] in progress at
/// once; connection `i` asks for `path(i)`. Returns them registered as `Token(i)`.
///
/// A raw connection counts as open once one probe byte has come back: waiting only for the
/// TCP handshake (which the kernel completes without the server) would overflow the
/// listener's backlog, and dropped SYNs cost a second each.
fn connect_all(
    poll: &mut Poll,
    addr: SocketAddr,
    n: usize,
    raw: bool,
    path: impl Fn(usize) -> String,
) -> Result<Vec<TcpStream>> {
    let opened = connect_with(poll, addr, n, raw, path, "")?;
    Ok(opened.into_iter().map(|(socket, _)| socket).collect())
}

/// [`connect_all`] with `extra` header lines in every upgrade request; returns each
/// connection with its response head.
fn connect_with(
    poll: &mut Poll,
    addr: SocketAddr,
    n: usize,
    raw: bool,
    path: impl Fn(usize) -> String,
    extra: &str,
) -> Result<Vec<(TcpStream, Vec<u8>)>> {
    struct Pending {
        socket: TcpStream,
        request: Option<Vec<u8>>,
        head: Vec<u8>,
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let host = addr.to_string();
    let mut slots: Vec<Option<Pending>> = (0..n).map(|_| None).collect();
    let mut open: Vec<Option<(TcpStream, Vec<u8>)>> = (0..n).map(|_| None).collect();
    let (mut started, mut active, mut finished) = (0, 0, 0);
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    while finished < n {
        while active < CONNECT_WINDOW && started < n {
            let mut socket = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            socket.set_nodelay(true).map_err(|e| e.to_string())?;
            poll.registry()
                .register(
                    &mut socket,
                    Token(started),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| e.to_string())?;
            let request = Some(if raw {
                RAW_PROBE.to_vec()
            } else {
                upgrade_request_with(&host, &path(started), extra)
            });
            slots[started] = Some(Pending {
                socket,
                request,
                head: Vec::new(),
            });
            started += 1;
            active += 1;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {finished} of {n} connections opened in 120 s"
            ));
        }
        poll_events(poll, &mut events, Duration::from_millis(100))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(p) = slots[i].as_mut() else { continue };
            if let Some(e) = p.socket.take_error().map_err(|e| e.to_string())? {
                return Err(format!("connection {i}: {e}"));
            }
            if p.socket.peer_addr().is_err() {
                continue; // not connected yet
            }
            if let Some(request) = &p.request {
                match p.socket.write(request) {
                    Ok(w) if w == request.len() => p.request = None,
                    Ok(_) => return Err("upgrade request written in part".into()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(format!("connection {i}: {e}")),
                }
            }
            loop {
                match p.socket.read(&mut buf) {
                    Ok(0) => return Err(format!("connection {i} closed in the handshake")),
                    Ok(k) => p.head.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("connection {i}: {e}")),
                }
            }
            if raw {
                if p.head.is_empty() {
                    continue;
                }
                if p.head != RAW_PROBE {
                    return Err(format!(
                        "connection {i}: the probe came back as {:?}",
                        p.head
                    ));
                }
            } else {
                let Some(end) = head_end(&p.head) else {
                    continue;
                };
                check_upgrade_response(&p.head[..end])?;
                if end != p.head.len() {
                    return Err("data after the upgrade response".into());
                }
            }
            let done = slots[i].take().expect("pending");
            open[i] = Some((done.socket, done.head));
            active -= 1;
            finished += 1;
        }
    }
    Ok(open.into_iter().map(|s| s.expect("opened")).collect())
}

/// Register every socket as `Token(i)` for reading and writing again (this also re-arms the
/// edge-triggered readiness).
fn reregister<'a>(poll: &Poll, sockets: impl Iterator<Item = &'a mut TcpStream>) -> Result<()> {
    for (i, socket) in sockets.enumerate() {
        poll.registry()
            .reregister(socket, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// Rows 1-4: each connection keeps `inflight` messages outstanding.
fn echo(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 100);
    let size: usize = args.num("size", 64);
    let inflight: u64 = args.num("inflight", 16);
    let latency = args.flag("latency");
    let raw = args.flag("raw");
    if latency && inflight != 1 {
        return Err("--latency needs --inflight 1".into());
    }
    let (send, reply) = rings(size, raw);
    let k = send.total() / send.frame_len;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let sockets = connect_all(&mut poll, addr, conns, raw, |i| format!("/echo/{i}"))?;
    let mut streams: Vec<Stream> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, s)| Stream::new(s, i % k))
        .collect();
    reregister(&poll, streams.iter_mut().map(|s| &mut s.socket))?;
    let mut sent_at = vec![Instant::now(); conns];
    for (i, s) in streams.iter_mut().enumerate() {
        s.allowed = inflight * send.frame_len as u64;
        sent_at[i] = Instant::now();
        s.write_allowed(&send)?;
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    let mut meter = Meter::new(args);
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut samples: Vec<u32> = Vec::new();
    loop {
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let i = event.token().0;
            let s = &mut streams[i];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                bytes += s.read_check(&reply, &mut buf)?;
                let done = s.recvd / reply.frame_len as u64;
                if done > s.done {
                    if done > s.sent / send.frame_len as u64 {
                        return Err("more replies than messages sent".into());
                    }
                    messages += done - s.done;
                    s.done = done;
                    s.allowed = (done + inflight) * send.frame_len as u64;
                    if latency {
                        let now = Instant::now();
                        if meter.measuring() {
                            let ns = (now - sent_at[i]).as_nanos();
                            samples.push(ns.min(u32::MAX as u128) as u32);
                        }
                        sent_at[i] = now;
                    }
                }
            }
            s.write_allowed(&send)?;
        }
        if meter.tick(Instant::now(), messages, bytes) {
            break;
        }
    }
    let measured = meter.result();
    let (secs, messages, bytes) = (measured.secs, measured.a, measured.b);
    let payload_bytes = bytes as f64 * size as f64 / reply.frame_len as f64;
    samples.sort_unstable();
    Ok(format!(
        "{{\"conns\":{conns},\"size\":{size},\"inflight\":{inflight},\"secs\":{secs:.3},\
         \"messages\":{messages},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},{},\
         \"samples\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1}}}",
        messages as f64 / secs,
        payload_bytes / secs / 1e6,
        measured.cpu_fields(),
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
    ))
}

/// Row 5: `conc` clients in a loop of connect, upgrade, Close handshake, TCP close.
///
/// On loopback the kernel runs the TCP handshake in the connecting process, so this row
/// loads the generator's core more than any other; it makes few system calls per cycle: no
/// readiness probes, no deregistration (closing the socket removes it from the epoll set).
/// Nagle stays off: with it on, the Close waits for a delayed ACK.
fn handshakes(args: &Args) -> Result<String> {
    enum Step {
        Connecting,
        Upgrading(Vec<u8>),
        Closing(Vec<u8>),
    }
    struct Slot {
        socket: TcpStream,
        generation: usize,
        step: Step,
    }
    const SLOT_BITS: u32 = 16;
    let addr = addr(args)?;
    let conc: usize = args.num("conc", 32);
    let host = addr.to_string();
    let request = upgrade_request(&host, "/hs");
    // Close 1000, masked.
    let close = client_frame(CLOSE_FIN, &1000u16.to_be_bytes(), mask_key(9));
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let open = |poll: &Poll, slot: usize, generation: usize| -> Result<Slot> {
        let mut socket = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        poll.registry()
            .register(
                &mut socket,
                Token(generation << SLOT_BITS | slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        Ok(Slot {
            socket,
            generation,
            step: Step::Connecting,
        })
    };
    let mut slots: Vec<Slot> = (0..conc)
        .map(|i| open(&poll, i, 0))
        .collect::<Result<_>>()?;
    let mut events = Events::with_capacity(1024);
    let mut meter = Meter::new(args);
    let mut completed = 0u64;
    let mut buf = [0u8; 4096];
    loop {
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let slot = event.token().0 & ((1 << SLOT_BITS) - 1);
            let generation = event.token().0 >> SLOT_BITS;
            let s = &mut slots[slot];
            if s.generation != generation {
                continue; // an event for the slot's previous connection
            }
            match &mut s.step {
                Step::Connecting => {
                    // Writable means connected (or failed: the write says which).
                    match s.socket.write(&request) {
                        Ok(n) if n == request.len() => s.step = Step::Upgrading(Vec::new()),
                        Ok(_) => return Err("upgrade request written in part".into()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock | ErrorKind::NotConnected
                            ) => {}
                        Err(e) => return Err(format!("connect: {e}")),
                    }
                    // The answer raises its own readable edge.
                }
                Step::Upgrading(head) => {
                    loop {
                        match s.socket.read(&mut buf) {
                            Ok(0) => return Err("the server closed TCP in the handshake".into()),
                            Ok(n) => {
                                head.extend_from_slice(&buf[..n]);
                                if n < buf.len() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Err(format!("read: {e}")),
                        }
                    }
                    let Some(end) = head_end(head) else { continue };
                    check_upgrade_response(&head[..end])?;
                    if end != head.len() {
                        return Err("data after the upgrade response".into());
                    }
                    match s.socket.write(&close) {
                        Ok(n) if n == close.len() => s.step = Step::Closing(Vec::new()),
                        Ok(_) => return Err("Close written in part".into()),
                        Err(e) => return Err(format!("write Close: {e}")),
                    }
                }
                Step::Closing(frame) => {
                    // The server's Close, then its FIN: read until the end of the stream.
                    let eof = loop {
                        match s.socket.read(&mut buf) {
                            Ok(0) => break true,
                            Ok(n) => frame.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Err(format!("read: {e}")),
                        }
                    };
                    if !eof {
                        continue;
                    }
                    let ok = frame.len() >= 2
                        && frame[0] == CLOSE_FIN
                        && frame[1] & 0x80 == 0
                        && frame.len() == 2 + (frame[1] & 0x7f) as usize;
                    if !ok {
                        return Err(format!("expected one Close frame, got {frame:?}"));
                    }
                    completed += 1;
                    // Dropping the old socket closes it (our side closes second).
                    *s = open(&poll, slot, generation + 1)?;
                }
            }
        }
        if meter.tick(Instant::now(), completed, 0) {
            break;
        }
    }
    let measured = meter.result();
    let (secs, completed) = (measured.secs, measured.a);
    Ok(format!(
        "{{\"conc\":{conc},\"secs\":{secs:.3},\"handshakes\":{completed},\
         \"per_s\":{:.1},{}}}",
        completed as f64 / secs,
        measured.cpu_fields()
    ))
}

/// Row 6: open `conns` connections, say "ready", hold them until stdin ends.
fn idle(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 10_000);
    let raw = args.flag("raw");
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let sockets = connect_all(&mut poll, addr, conns, raw, |i| format!("/idle/{i}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!("ready");
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    // Every connection must still be open: a server that dropped one does not score.
    let mut probe = [0u8; 1];
    let mut sockets = sockets;
    for (i, s) in sockets.iter_mut().enumerate() {
        match s.read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(0) => return Err(format!("connection {i} was closed by the server")),
            Ok(_) => return Err(format!("connection {i} got unexpected data")),
            Err(e) => return Err(format!("connection {i}: {e}")),
        }
    }
    Ok(format!("{{\"conns\":{conns},\"connect_secs\":{secs:.3}}}"))
}

/// Subscribers for the broadcast rows: connection 0 is the control session (path `/ctl`),
/// whose messages the wsloop bench server broadcasts to every session, itself included.
/// `raw`: plain TCP connections to `servers raw-tcp-fanout`, which writes what any
/// connection sends (after its probe) to every connection.
fn subscribers(poll: &mut Poll, addr: SocketAddr, conns: usize, raw: bool) -> Result<Vec<Stream>> {
    let sockets = connect_all(poll, addr, conns, raw, |i| {
        if i == 0 {
            "/ctl".to_string()
        } else {
            format!("/sub/{i}")
        }
    })?;
    let mut streams: Vec<Stream> = sockets.into_iter().map(|s| Stream::new(s, 0)).collect();
    reregister(poll, streams.iter_mut().map(|s| &mut s.socket))?;
    Ok(streams)
}

/// Row 7a: one 64-byte message to `conns` sessions; the time until the last one has it.
/// With `--raw` (row 7a's ceiling) the same over plain TCP: connection 0 sends 64 bytes,
/// which `servers raw-tcp-fanout` writes as they are to every connection.
fn fanout(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 10_000);
    let raw = args.flag("raw");
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let streams = subscribers(&mut poll, addr, conns, raw)?;
    let (send, reply) = if raw {
        (payload_ring(64), payload_ring(64))
    } else {
        rings(64, false)
    };
    deliver_rounds(args, poll, streams, 0..conns, (&send, &reply))
}

/// Row 7a's ceiling: bare payloads of `size` bytes, no framing; what connection 0 sends is
/// what every connection gets back.
fn payload_ring(size: usize) -> Ring {
    Ring::new((0..64).map(|j| payload(j + 1, size)).collect())
}

/// Row 7c: `conns` sessions, the first `members` of the others subscribed to a topic; one
/// 64-byte message published to it (connection 0, path `/pub`); the time until the last
/// member has it. The sessions outside the topic must get nothing.
fn topic(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 10_000);
    let members: usize = args.num("members", 1000);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let sockets = connect_all(&mut poll, addr, conns, false, |i| match i {
        0 => "/pub".to_string(),
        i if i <= members => format!("/topic/{i}"),
        i => format!("/sub/{i}"),
    })?;
    let mut streams: Vec<Stream> = sockets.into_iter().map(|s| Stream::new(s, 0)).collect();
    reregister(&poll, streams.iter_mut().map(|s| &mut s.socket))?;
    // The publisher is not a member: only connections 1..=members get the message.
    let (send, reply) = rings(64, false);
    deliver_rounds(args, poll, streams, 1..members + 1, (&send, &reply))
}

/// Rounds of: connection 0 sends one 64-byte message (the next of `send`), which the server
/// delivers to the sessions at the indices in `receivers` (as the next of `reply`); the time
/// until the last of them has it. A session that gets more than was sent, or one outside
/// `receivers` that gets anything, fails the run.
fn deliver_rounds(
    args: &Args,
    mut poll: Poll,
    mut streams: Vec<Stream>,
    receivers: std::ops::Range<usize>,
    (send, reply): (&Ring, &Ring),
) -> Result<String> {
    let conns = receivers.len();
    let rounds: usize = args.num("rounds", 10);
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    let mut times_ms: Vec<f64> = Vec::new();
    let server: Option<u32> = args.get("server-pid").and_then(|p| p.parse().ok());
    let mut server_cpu = 0.0;
    // Round 0 warms up and is not counted.
    for round in 0..=rounds as u64 {
        let cpu0 = server.and_then(proc_cpu_seconds);
        let t0 = Instant::now();
        streams[0].allowed += send.frame_len as u64;
        streams[0].write_allowed(send)?;
        let mut waiting = conns;
        while waiting > 0 {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "round {round}: {waiting} sessions still waiting after 10 s"
                ));
            }
            poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
            for event in events.iter() {
                let index = event.token().0;
                let s = &mut streams[index];
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    s.read_check(reply, &mut buf)?;
                    let done = s.recvd / reply.frame_len as u64;
                    if done > round + 1 {
                        return Err("a session got more messages than were broadcast".into());
                    }
                    if done > 0 && !receivers.contains(&index) {
                        return Err(format!("session {index} is not a receiver but got data"));
                    }
                    if done > s.done {
                        s.done = done;
                        waiting -= 1;
                    }
                }
                s.write_allowed(send)?;
            }
        }
        if round > 0 {
            times_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            if let (Some(c0), Some(c1)) = (cpu0, server.and_then(proc_cpu_seconds)) {
                server_cpu += c1 - c0;
            }
        }
    }
    // The server's CPU share over the counted rounds (coarse: the clock ticks are 10 ms).
    let server_cpu = server_cpu / (times_ms.iter().sum::<f64>() / 1e3);
    let mut sorted = times_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(format!(
        "{{\"conns\":{conns},\"rounds\":{rounds},\"p50_ms\":{:.3},\"min_ms\":{:.3},\
         \"max_ms\":{:.3},\"server_cpu\":{server_cpu:.3}}}",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    ))
}

/// Row 7b: broadcast continuously to `conns` sessions, `window` messages outstanding (a
/// message is done when every session has it).
fn broadcast(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 1000);
    let window: u64 = args.num("window", 16);
    let (send, reply) = rings(64, false);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut streams = subscribers(&mut poll, addr, conns, false)?;
    // How many sessions have message m, at m % slots (at most `window` are outstanding).
    let slots = 2 * window as usize;
    let mut have = vec![0usize; slots];
    let mut done_all = 0u64;
    streams[0].allowed = window * send.frame_len as u64;
    streams[0].write_allowed(&send)?;
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    let mut meter = Meter::new(args);
    loop {
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let s = &mut streams[event.token().0];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                s.read_check(&reply, &mut buf)?;
                let done = s.recvd / reply.frame_len as u64;
                if done > done_all + window {
                    return Err("a session got more messages than were broadcast".into());
                }
                for m in s.done..done {
                    have[m as usize % slots] += 1;
                }
                s.done = done;
            }
            s.write_allowed(&send)?;
        }
        while have[done_all as usize % slots] == conns {
            have[done_all as usize % slots] = 0;
            done_all += 1;
        }
        let ctl = &mut streams[0];
        ctl.allowed = (done_all + window) * send.frame_len as u64;
        ctl.write_allowed(&send)?;
        if meter.tick(Instant::now(), done_all, 0) {
            break;
        }
    }
    let measured = meter.result();
    let (secs, messages) = (measured.secs, measured.a);
    let rate = messages as f64 / secs;
    Ok(format!(
        "{{\"conns\":{conns},\"window\":{window},\"secs\":{secs:.3},\"messages\":{messages},\
         \"msgs_per_s\":{rate:.1},\"deliveries_per_s\":{:.1},{}}}",
        rate * conns as f64,
        measured.cpu_fields()
    ))
}

// ----- Row 8: permessage-deflate ----------------------------------------------------------

/// Frames of any lengths laid end to end (compressed frames differ in length); a
/// connection's stream repeats them from its first frame on.
struct VarRing {
    bytes: Vec<u8>,
    /// Where each frame starts, and the total at the end (`K + 1` entries).
    starts: Vec<usize>,
}

impl VarRing {
    fn new(frames: &[Vec<u8>]) -> VarRing {
        let mut starts = vec![0];
        for f in frames {
            starts.push(starts.last().expect("one") + f.len());
        }
        VarRing {
            bytes: frames.concat(),
            starts,
        }
    }

    fn k(&self) -> usize {
        self.starts.len() - 1
    }

    fn total(&self) -> usize {
        self.bytes.len()
    }

    /// Length of the stream that starts at frame `first`, up to the end of its `m`-th frame.
    fn end_of(&self, first: usize, m: u64) -> u64 {
        let g = first as u64 + m;
        let k = self.k() as u64;
        // Add before subtracting: where the stream wrapped, `starts[g % k]` is below
        // `starts[first]`, and a whole ring (`g / k >= 1`) makes up for it.
        (g / k) * self.total() as u64 + self.starts[(g % k) as usize] as u64
            - self.starts[first] as u64
    }

    /// Bytes `pos..pos + max` of that stream (at most one ring's worth), as two slices.
    fn slices(&self, first: usize, pos: u64, max: u64) -> (&[u8], &[u8]) {
        let p = ((self.starts[first] as u64 + pos) % self.total() as u64) as usize;
        wrapped(&self.bytes, p, max)
    }
}

/// The payloads (JSON text of `size` bytes) and the frames that send them: compressed once
/// as the agreed extension says (no context takeover on our side, so each frame stands
/// alone), or plain text frames when the server declined.
fn zrings(size: usize, agreed: Option<pmd::Agreed>) -> (Vec<Vec<u8>>, VarRing) {
    // Enough distinct messages that the server's 32 KiB window never holds an exact copy of
    // the one it compresses (64 × 1 KiB is twice the window): what it finds is the structure
    // JSON messages share, as it would in production.
    let k = ((4 << 20) / (size + 14)).clamp(2, 64);
    let payloads: Vec<Vec<u8>> = (0..k).map(|j| pmd::json_text(j as u64 + 1, size)).collect();
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(j, p)| match agreed {
            Some(a) => client_frame(
                pmd::TEXT_FIN | pmd::RSV1,
                &pmd::compress_message(p, 6, a.client_max_window_bits),
                mask_key(j as u64),
            ),
            None => client_frame(pmd::TEXT_FIN, p, mask_key(j as u64)),
        })
        .collect();
    (payloads, VarRing::new(&frames))
}

/// Every connection's answer must be the same and what `--expect` says (`deflate`: the
/// extension accepted; `plain`: declined). Returns it and the header as answered.
fn agreement(
    opened: &[(TcpStream, Vec<u8>)],
    expect: Option<&str>,
) -> Result<(Option<pmd::Agreed>, Option<String>)> {
    let mut first: Option<Option<pmd::Agreed>> = None;
    for (i, (_, head)) in opened.iter().enumerate() {
        let agreed = pmd::agreed(head).map_err(|e| format!("connection {i}: {e}"))?;
        match first {
            None => first = Some(agreed),
            Some(a) if a != agreed => {
                return Err(format!(
                    "connection {i} agreed {agreed:?}, connection 0 {a:?}"
                ))
            }
            Some(_) => {}
        }
    }
    let agreed = first.flatten();
    let header = opened
        .first()
        .and_then(|(_, head)| pmd::extensions_header(head));
    match (expect, agreed.is_some()) {
        (Some("deflate"), false) => Err("the server declined permessage-deflate".into()),
        (Some("plain"), true) => Err(format!(
            "the server accepted permessage-deflate: {header:?}"
        )),
        (Some("deflate" | "plain") | None, _) => Ok((agreed, header)),
        (Some(other), _) => Err(format!("--expect {other:?}: deflate or plain")),
    }
}

/// One row-8 connection: what it may send from the ring, and its replies being checked.
struct ZConn {
    socket: TcpStream,
    first: usize,
    sent: u64,
    allowed: u64,
    replies: pmd::Replies,
    /// Replies counted so far.
    counted: u64,
}

impl ZConn {
    /// Write until everything allowed is out or the socket is full; returns bytes written.
    fn write_allowed(&mut self, ring: &VarRing) -> Result<u64> {
        write_stream(
            &mut self.socket,
            &mut self.sent,
            self.allowed,
            |pos, max| ring.slices(self.first, pos, max),
        )
    }

    /// Read what the socket has, parse, inflate and check it; returns the bytes read.
    fn read_check(
        &mut self,
        payloads: &[Vec<u8>],
        buf: &mut [u8],
        scratch: &mut [u8],
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = match self.socket.read(buf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            self.replies.feed(&buf[..n], payloads, scratch)?;
            total += n as u64;
            if n < buf.len() {
                return Ok(total);
            }
        }
    }
}

/// Row 8's connections, what they send and what they expect back.
struct ZSet {
    payloads: Vec<Vec<u8>>,
    ring: VarRing,
    streams: Vec<ZConn>,
    /// The server's `Sec-WebSocket-Extensions` answer, as it wrote it.
    header: Option<String>,
}

/// Open `conns` connections offering permessage-deflate and check the answers.
fn zconnect(poll: &mut Poll, args: &Args, conns: usize, size: usize, path: &str) -> Result<ZSet> {
    let addr = addr(args)?;
    let offer = format!("Sec-WebSocket-Extensions: {}\r\n", pmd::OFFER);
    let opened = connect_with(poll, addr, conns, false, |i| format!("/{path}/{i}"), &offer)?;
    let (agreed, header) = agreement(&opened, args.get("expect"))?;
    let (payloads, ring) = zrings(size, agreed);
    let k = ring.k();
    let streams: Vec<ZConn> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (socket, _))| ZConn {
            socket,
            first: i % k,
            sent: 0,
            allowed: 0,
            replies: pmd::Replies::new(i % k, agreed),
            counted: 0,
        })
        .collect();
    Ok(ZSet {
        payloads,
        ring,
        streams,
        header,
    })
}

fn json_string(s: Option<&str>) -> String {
    s.map(|s| serde_json::Value::String(s.into()).to_string())
        .unwrap_or_else(|| "null".into())
}

/// Row 8a/8b: echo of JSON text messages, each connection keeping `inflight` outstanding,
/// with permessage-deflate when the server accepts it; counts the frame bytes each way.
fn zecho(args: &Args) -> Result<String> {
    let conns: usize = args.num("conns", 100);
    let size: usize = args.num("size", 1024);
    let inflight: u64 = args.num("inflight", 16);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let ZSet {
        payloads,
        ring,
        mut streams,
        header,
    } = zconnect(&mut poll, args, conns, size, "echo")?;
    reregister(&poll, streams.iter_mut().map(|s| &mut s.socket))?;
    let mut written = 0u64;
    for s in streams.iter_mut() {
        s.allowed = ring.end_of(s.first, inflight);
        written += s.write_allowed(&ring)?;
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut scratch = vec![0u8; 64 << 10];
    let mut events = Events::with_capacity(1024);
    let mut meter = Meter::new(args);
    let (mut messages, mut bytes_in) = (0u64, 0u64);
    let mut written0 = 0u64;
    let written1 = loop {
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let s = &mut streams[event.token().0];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                bytes_in += s.read_check(&payloads, &mut buf, &mut scratch)?;
                let done = s.replies.done;
                if done > s.counted {
                    if ring.end_of(s.first, done) > s.sent {
                        return Err("more replies than messages sent".into());
                    }
                    messages += done - s.counted;
                    s.counted = done;
                    s.allowed = ring.end_of(s.first, done + inflight);
                }
            }
            written += s.write_allowed(&ring)?;
        }
        let before = meter.t0.is_none();
        let over = meter.tick(Instant::now(), messages, bytes_in);
        if before && meter.t0.is_some() {
            written0 = written;
        }
        if over {
            break written;
        }
    };
    let measured = meter.result();
    let (secs, messages, bytes_in) = (measured.secs, measured.a, measured.b);
    let per = |bytes: u64| bytes as f64 / messages.max(1) as f64;
    Ok(format!(
        "{{\"conns\":{conns},\"size\":{size},\"inflight\":{inflight},\"secs\":{secs:.3},\
         \"messages\":{messages},\"msgs_per_s\":{:.1},\"c2s_bytes_per_msg\":{:.1},\
         \"s2c_bytes_per_msg\":{:.1},\"c2s_frame_mean\":{:.1},\"extension\":{},{}}}",
        messages as f64 / secs,
        per(written1 - written0),
        per(bytes_in),
        ring.total() as f64 / ring.k() as f64,
        json_string(header.as_deref()),
        measured.cpu_fields()
    ))
}

/// Row 8c: open `conns` connections offering permessage-deflate, say "idle" and wait for a
/// line on stdin; then every connection sends one `size`-byte JSON message and gets it back
/// (checked); say "ready" and hold the connections until stdin ends.
fn zmem(args: &Args) -> Result<String> {
    let conns: usize = args.num("conns", 2000);
    let size: usize = args.num("size", 1024);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let ZSet {
        payloads,
        ring,
        mut streams,
        header,
    } = zconnect(&mut poll, args, conns, size, "mem")?;
    let connect_secs = started.elapsed().as_secs_f64();
    reregister(&poll, streams.iter_mut().map(|s| &mut s.socket))?;
    println!("idle");
    let mut line = String::new();
    io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("stdin: {e}"))?;
    let started = Instant::now();
    let (mut written, mut bytes_in) = (0u64, 0u64);
    for s in streams.iter_mut() {
        s.allowed = ring.end_of(s.first, 1);
        written += s.write_allowed(&ring)?;
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut scratch = vec![0u8; 64 << 10];
    let mut events = Events::with_capacity(1024);
    let mut waiting = conns;
    while waiting > 0 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{waiting} replies still missing after 60 s"));
        }
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let s = &mut streams[event.token().0];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                bytes_in += s.read_check(&payloads, &mut buf, &mut scratch)?;
                match s.replies.done {
                    0 => {}
                    1 if s.counted == 0 => {
                        s.counted = 1;
                        waiting -= 1;
                    }
                    1 => {}
                    _ => return Err("more replies than messages sent".into()),
                }
            }
            written += s.write_allowed(&ring)?;
        }
    }
    let exchange_ms = started.elapsed().as_secs_f64() * 1e3;
    println!("ready");
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    // Every connection must still be open, with nothing more to read.
    let mut probe = [0u8; 1];
    for (i, s) in streams.iter_mut().enumerate() {
        match s.socket.read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(0) => return Err(format!("connection {i} was closed by the server")),
            Ok(_) => return Err(format!("connection {i} got unexpected data")),
            Err(e) => return Err(format!("connection {i}: {e}")),
        }
    }
    Ok(format!(
        "{{\"conns\":{conns},\"size\":{size},\"connect_secs\":{connect_secs:.3},\
         \"exchange_ms\":{exchange_ms:.1},\"c2s_bytes_per_msg\":{:.1},\
         \"s2c_bytes_per_msg\":{:.1},\"extension\":{}}}",
        written as f64 / conns as f64,
        bytes_in as f64 / conns as f64,
        json_string(header.as_deref()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_checked_byte_for_byte_in_order() {
        let (send, reply) = rings(100, false);
        let k = reply.total() / reply.frame_len;
        assert!(k >= 2);
        // Frames 1, 2, ... of the stream that starts at frame 1, across the ring's end.
        let mut good = Vec::new();
        for j in 0..k + 2 {
            good.extend_from_slice(&server_frame(
                BINARY_FIN,
                &payload(((1 + j) % k) as u64 + 1, 100),
            ));
        }
        assert!(reply.check(1, 0, &good).is_ok());
        // In any chunking.
        let mut pos = 0;
        for chunk in good.chunks(37) {
            assert!(reply.check(1, pos, chunk).is_ok());
            pos += chunk.len() as u64;
        }
        // One flipped bit anywhere fails.
        let mut bad = good.clone();
        bad[3 * reply.frame_len + 50] ^= 1;
        let err = reply.check(1, 0, &bad).unwrap_err();
        assert!(err.contains("message 3 byte 50"), "{err}");
        // Two replies swapped fail.
        let mut swapped = good[reply.frame_len..2 * reply.frame_len].to_vec();
        swapped.extend_from_slice(&good[..reply.frame_len]);
        assert!(reply.check(1, 0, &swapped).is_err());
        // An echo of the masked frames (no unmasking) fails.
        assert!(reply.check(0, 0, &send.bytes).is_err());
    }

    #[test]
    fn var_ring_positions() {
        let frames: Vec<Vec<u8>> = vec![vec![1; 3], vec![2; 5], vec![3; 2]];
        let ring = VarRing::new(&frames);
        assert_eq!((ring.k(), ring.total()), (3, 10));
        assert_eq!(ring.end_of(0, 0), 0);
        assert_eq!(ring.end_of(0, 2), 8);
        assert_eq!(ring.end_of(1, 1), 5);
        assert_eq!(ring.end_of(1, 2), 7);
        assert_eq!(ring.end_of(1, 3), 10);
        assert_eq!(ring.end_of(2, 4), 2 + 3 + 5 + 2);
        // The stream from frame 2: 3 3 | 1 1 1 | 2 ...
        let (a, b) = ring.slices(2, 0, 6);
        assert_eq!(a, &[3, 3]);
        assert_eq!(b, &[1, 1, 1, 2]);
    }

    #[test]
    fn ring_slices_wrap() {
        let (send, _) = rings(64, false);
        let total = send.total() as u64;
        // From frame 0, 10 bytes before the ring's end: 10 bytes, then the ring's start.
        let (a, b) = send.slices(0, total - 10, 30);
        assert_eq!(a, &send.bytes[send.total() - 10..]);
        assert_eq!(b, &send.bytes[..20]);
        // From frame 1, the same position is 10 bytes before frame 1 ends: no wrap.
        let (a, b) = send.slices(1, total - 10, 30);
        assert_eq!(a, &send.bytes[send.frame_len - 10..send.frame_len + 20]);
        assert!(b.is_empty());
        // Never more than one ring's worth.
        let (a, b) = send.slices(3, 5, u64::MAX);
        assert_eq!(a.len() + b.len(), send.total());
    }
}
