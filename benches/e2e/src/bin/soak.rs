//! The soak benchmark (issue 19): minutes of connection churn ending in every way, plus a
//! broadcast storm with slow readers, against the release `servers wsloop`; the server's
//! memory and descriptors are read at the start, during, and at the end, and must come back
//! to their baseline.
//!
//! ```text
//! soak [--secs 600] [--rounds 10] [--churn-threads 8] [--healthy 20] [--slow 40]
//!      [--storm-interval-ms 5] [--server wsloop] [--out target/e2e/SOAK.md]
//!      [--rss-slack-mib 16] [--heap-growth-kib 3072] [--idle-wait 35] [--no-storm]
//!      [--attach PID --addr HOST:PORT --server-log PATH]
//! ```
//!
//! `bash benches/e2e/soak.sh` builds this package in release and runs it. The server is
//! started like the other rows (`taskset -c 0 servers wsloop --addr 127.0.0.1:0`); its
//! `VmRSS`, `VmHWM`, `RssAnon` (`/proc/PID/status`) and open descriptors (`/proc/PID/fd`) are
//! read once idle after startup (the baseline), every second while loaded, and after every
//! round once all clients are gone and the server has closed its side (the settle).
//!
//! The load time (`--secs`) is split into `--rounds` rounds. In each, at once:
//! - **churn**: `--churn-threads` blocking clients, each opening session after session:
//!   handshake, one to three messages (0 B to 1 MiB, text and binary, some fragmented with
//!   a Ping between fragments) whose echoes are checked byte for byte, and then one of the
//!   [`Ending`]s in turn: a clean Close with four codes (the echoed code and the server's TCP
//!   close are checked), a Close without waiting, a TCP FIN or RST without Close (sometimes
//!   with an echo still unread), a half-sent handshake or frame then FIN or RST, and three
//!   violations that must be answered with their RFC code: an unmasked frame (1002),
//!   invalid UTF-8 (1007), a frame over the 64 MiB message limit (1009).
//! - **the storm**: a control session (path `/ctl`: the server broadcasts its messages)
//!   sends a numbered message (64 B, 1 KiB every third, 16 KiB every tenth) every
//!   `--storm-interval-ms`; `--healthy` sessions read everything and must see every number
//!   from their first to the last one sent, with no gap; `--slow` sessions never read, or
//!   read 4 KiB every 250 ms, live 10 to 40 s and end in turn with RST, FIN, or by draining
//!   what the server sent (which tells whether the server closed them, 1008, for exceeding
//!   its per-client write queue mark).
//!
//! After each round every client is gone; the settle waits until the server's descriptors
//! are back to the baseline, then a second, and reads again; after the first and the last
//! round it then waits `--idle-wait` seconds more (35: longer than any deadline the server
//! keeps for a closed connection, 30 s at most, so anything freed late is freed) and reads
//! again. With `gdb` on the machine, each reading also gets the server's heap: glibc's
//! `malloc_stats()` (bytes taken from the system, bytes "in use") and, with glibc's debugging
//! symbols, a walk of the heap (`benches/e2e/heapwalk.py`): the chunks the server holds, by
//! size, without the small freed chunks malloc caches (which `malloc_stats` counts as in
//! use, so that its figure creeps up as those caches fill). At the very end the server is
//! made to call `malloc_trim(0)` and read once more: how much of its RSS was free memory the
//! allocator kept.
//!
//! Out: one JSON line on stdout and a markdown section written to `--out`. The verdict,
//! "back to baseline", needs all of:
//! - open descriptors at the end equal to the baseline, exactly;
//! - VmRSS at the end at most the baseline plus `--rss-slack-mib` (16): the allocator keeps
//!   freed memory it cannot return (fragmentation; glibc's dynamic mmap threshold puts
//!   freed large buffers back on the heap), and the server keeps capacities sized by its
//!   peak; bounded by what was held at once, not by the number of sessions;
//! - the heap the server holds at the end (the walk's total; without it, `malloc_stats`'
//!   "in use") at most what it held after the first round (both after the idle wait) plus
//!   `--heap-growth-kib` (3072): what the server keeps by design is there after the first
//!   round already (the capacity of its connection slab, sid map and timer heap) except its
//!   one spare message buffer, which comes and goes (2 MiB here: the largest message, 1 MiB,
//!   in a buffer grown by doubling), so 2 MiB for it and 1 MiB more; a leak grows with every
//!   round's sessions. The report lists the chunks held at the end and not at the start, and
//!   not after round 1. Not checked without `gdb`;
//! - no client-side check failed.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use wsloop_e2e::{
    check_upgrade_response, client_frame, frame_header, head_end, mask_key, payload,
    raise_fd_limit, upgrade_request, Args, BINARY_FIN, CLOSE_FIN,
};

/// The server's message limit (`SessionLimits::default().max_message_size`, 64 MiB): a
/// frame announcing one byte more must get Close 1009 from its header.
const MAX_MESSAGE: usize = 64 << 20;
/// Message sizes of the churn sessions, chosen in turn: the frame length forms' edges
/// (125/126, 65535/65536) and sizes up to 1 MiB.
const SIZES: [usize; 11] = [
    0,
    1,
    125,
    126,
    1000,
    4096,
    65_535,
    65_536,
    100_000,
    300_000,
    1 << 20,
];
/// How long a client waits for one read or write before it counts a failure.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a settle waits for the server's descriptors to come back to the baseline:
/// more than the server's 5 s close timeout (a slow reader it closed and that never answers).
const SETTLE_MAX: Duration = Duration::from_secs(20);

const TEXT_FIN: u8 = 0x81;
const TEXT: u8 = 0x01;
const BINARY: u8 = 0x02;
const CONTINUATION: u8 = 0x00;
const CONTINUATION_FIN: u8 = 0x80;
const PING_FIN: u8 = 0x89;
const PONG_FIN: u8 = 0x8a;

/// How a churn session ends; the sessions take them in turn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// Close with this code, wait for the echoed Close and the server's TCP close.
    Close(u16),
    /// Close 1000 and drop the socket at once.
    CloseNoWait,
    /// TCP close (FIN) without a Close frame.
    Fin,
    /// TCP reset (`SO_LINGER` 0) without a Close frame.
    Rst,
    /// Part of the upgrade request, then FIN (`false`) or RST (`true`).
    HalfHandshake(bool),
    /// A frame header and part of its payload, then FIN or RST.
    HalfFrame(bool),
    /// An unmasked client frame: Close 1002 expected (RFC 6455 §5.1).
    Unmasked,
    /// Text that is not UTF-8: Close 1007 expected (RFC 6455 §8.1).
    BadUtf8,
    /// A frame over the message limit: Close 1009 expected (RFC 6455 §7.4.1).
    Oversized,
}

const ENDINGS: [Ending; 14] = [
    Ending::Close(1000),
    Ending::Close(1001),
    Ending::Close(3000),
    Ending::Close(4999),
    Ending::CloseNoWait,
    Ending::Fin,
    Ending::Rst,
    Ending::HalfHandshake(false),
    Ending::HalfHandshake(true),
    Ending::HalfFrame(false),
    Ending::HalfFrame(true),
    Ending::Unmasked,
    Ending::BadUtf8,
    Ending::Oversized,
];

impl Ending {
    fn name(self) -> String {
        match self {
            Ending::Close(code) => format!("close {code}"),
            Ending::CloseNoWait => "close, no wait".into(),
            Ending::Fin => "TCP FIN, no Close".into(),
            Ending::Rst => "TCP RST, no Close".into(),
            Ending::HalfHandshake(rst) => format!("half handshake, {}", fin_or_rst(rst)),
            Ending::HalfFrame(rst) => format!("half frame, {}", fin_or_rst(rst)),
            Ending::Unmasked => "unmasked frame -> 1002".into(),
            Ending::BadUtf8 => "invalid UTF-8 -> 1007".into(),
            Ending::Oversized => "64 MiB + 1 frame -> 1009".into(),
        }
    }
}

fn fin_or_rst(rst: bool) -> &'static str {
    if rst {
        "RST"
    } else {
        "FIN"
    }
}

/// What the clients did and saw, over the whole run.
#[derive(Default)]
struct Counters {
    sessions: AtomicU64,
    messages: AtomicU64,
    message_bytes: AtomicU64,
    endings: [AtomicU64; ENDINGS.len()],
    ending_failures: [AtomicU64; ENDINGS.len()],
    broadcasts_sent: AtomicU64,
    broadcasts_received: AtomicU64,
    /// Broadcasts the churn sessions received (and passed over).
    broadcasts_to_churn: AtomicU64,
    healthy_sessions: AtomicU64,
    storm_failures: AtomicU64,
    slow_sessions: AtomicU64,
    /// How the slow sessions that drained at the end found the server: closed with 1008,
    /// closed otherwise, TCP ended (or reset) without a Close, or still open.
    slow_closed_1008: AtomicU64,
    slow_closed_other: AtomicU64,
    slow_eof: AtomicU64,
    slow_still_open: AtomicU64,
    /// The first failures, for the report.
    examples: Mutex<Vec<String>>,
}

impl Counters {
    fn fail(&self, what: String) {
        let mut examples = self.examples.lock().unwrap();
        if examples.len() < 20 {
            eprintln!("failure: {what}");
            examples.push(what);
        }
    }
}

/// The server's memory and descriptors at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    fds: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:")?,
        fds,
    })
}

/// The server's heap, read by attaching `gdb` for a moment: glibc's `malloc_stats()`
/// (printed to the server's stderr, its log file: "Total (incl. mmap)") and, where glibc's
/// debugging symbols are there, a walk of its heap (`heapwalk.py`).
#[derive(Clone, Copy, Debug)]
struct Heap {
    /// What malloc holds from the system; minus `in_use`, what it keeps unused.
    system: u64,
    /// `malloc_stats`' "in use": chunks not in the arena's bins, which includes the small
    /// freed chunks malloc caches (tcache, fastbins): it creeps up as those fill.
    in_use: u64,
    /// The heap walk's total: the chunks the program holds (caches excluded), mmapped ones
    /// included. What a leak grows.
    allocated: Option<u64>,
    /// How many chunks that is.
    chunks: Option<u64>,
}

/// The heap walk, run inside gdb (see the script's header).
const HEAPWALK: &str = include_str!("../../heapwalk.py");

/// Chunk size -> count of chunks the program holds (from the heap walk).
type Chunks = BTreeMap<u64, u64>;

/// Evaluate `call` (a libc function call, cast to its return type) in process `pid`
/// through gdb; whether gdb ran it.
fn gdb_call(pid: u32, call: &str) -> bool {
    Command::new("timeout")
        .args(["30", "gdb", "-p", &pid.to_string(), "-batch", "-nx", "-ex"])
        .arg(format!("call {call}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `malloc_stats()` and the heap walk (`script`, a copy of [`HEAPWALK`]) in one attach.
fn heap(pid: u32, log: &Path, script: &Path) -> Option<(Heap, Option<Chunks>)> {
    let logged = std::fs::metadata(log).map_or(0, |m| m.len() as usize);
    let output = Command::new("timeout")
        .args(["60", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "call (void)malloc_stats()", "-x"])
        .arg(script)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = std::fs::read_to_string(log).ok()?;
    let text = text.get(logged..)?;
    let total = &text[text.rfind("Total (incl. mmap):")?..];
    let field = |name: &str| -> Option<u64> {
        let line = total.lines().find(|l| l.starts_with(name))?;
        line.split('=').nth(1)?.trim().parse().ok()
    };
    let walk = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("HEAPWALK "))
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok());
    let chunks: Option<Chunks> = walk.as_ref().and_then(|w| {
        w["sizes"]
            .as_object()?
            .iter()
            .map(|(size, n)| Some((size.parse().ok()?, n.as_u64()?)))
            .collect()
    });
    let mmapped = walk
        .as_ref()
        .and_then(|w| Some((w["mmapped_bytes"].as_u64()?, w["mmapped_chunks"].as_u64()?)));
    let (allocated, count) = match (&chunks, mmapped) {
        (Some(c), Some((bytes, n))) => (
            Some(c.iter().map(|(size, n)| size * n).sum::<u64>() + bytes),
            Some(c.values().sum::<u64>() + n),
        ),
        _ => (None, None),
    };
    let heap = Heap {
        system: field("system bytes")?,
        in_use: field("in use bytes")?,
        allocated,
        chunks: count,
    };
    Some((heap, chunks))
}

/// What `after` holds that `before` did not, and the reverse: "N x SIZE B" by size.
fn chunk_changes(before: &Chunks, after: &Chunks) -> (Vec<String>, Vec<String>) {
    let mut more = Vec::new();
    let mut fewer = Vec::new();
    for size in before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (b, a) = (
            before.get(size).copied().unwrap_or(0),
            after.get(size).copied().unwrap_or(0),
        );
        if a > b {
            more.push(format!("{} x {size} B", a - b));
        } else if b > a {
            fewer.push(format!("{} x {size} B", b - a));
        }
    }
    (more, fewer)
}

// ----- A blocking WebSocket client, just enough to check the server -------------------------

/// One frame from the server.
struct Frame {
    first: u8,
    payload: Vec<u8>,
}

/// What [`Ws::message`] returns: a whole data message, or the server's Close code.
#[derive(Debug, PartialEq)]
enum Incoming {
    Data { text: bool, data: Vec<u8> },
    Close(Option<u16>),
}

struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the unparsed bytes of `buf` start.
    start: usize,
    keys: u64,
    /// Pong payloads received, oldest first.
    pongs: Vec<Vec<u8>>,
    /// Whether [`Ws::message`] passes over the storm's broadcasts (which reach every
    /// session, churn ones too), counting them here.
    skip_storm: Option<u64>,
}

fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Make the socket's close send RST instead of FIN (`SO_LINGER` with a zero timeout).
fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a correctly sized `linger` on a descriptor `stream` owns.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

impl Ws {
    fn connect(addr: SocketAddr, path: &str, seed: u64) -> Result<Ws, String> {
        let mut stream = open(addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(&upgrade_request("127.0.0.1", path))
            .map_err(|e| format!("write upgrade: {e}"))?;
        let mut ws = Ws {
            stream,
            buf: Vec::new(),
            start: 0,
            keys: seed.wrapping_mul(1 << 20),
            pongs: Vec::new(),
            skip_storm: None,
        };
        let end = loop {
            if let Some(end) = head_end(&ws.buf) {
                break end;
            }
            if ws.buf.len() > 16 << 10 {
                return Err("response head over 16 KiB".into());
            }
            ws.fill()
                .map_err(|e| format!("read upgrade response: {e}"))?;
        };
        check_upgrade_response(&ws.buf[..end])?;
        ws.start = end;
        Ok(ws)
    }

    fn send(&mut self, first: u8, payload: &[u8]) -> Result<(), String> {
        self.keys += 1;
        self.stream
            .write_all(&client_frame(first, payload, mask_key(self.keys)))
            .map_err(|e| format!("write: {e}"))
    }

    fn send_close(&mut self, code: u16) -> Result<(), String> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(b"soak");
        self.send(CLOSE_FIN, &body)
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + (64 << 10), 0);
        let n = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        match n? {
            0 => Err(ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }

    fn frame(&mut self) -> Result<Frame, String> {
        self.frame_io().map_err(|e| format!("read: {e}"))
    }

    fn frame_io(&mut self) -> io::Result<Frame> {
        loop {
            let b = &self.buf[self.start..];
            if b.len() >= 2 {
                if b[1] & 0x80 != 0 {
                    return Err(io::Error::other("masked server frame"));
                }
                let (len, header) = match b[1] & 0x7f {
                    126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                    127 if b.len() >= 10 => {
                        let mut n = [0u8; 8];
                        n.copy_from_slice(&b[2..10]);
                        (u64::from_be_bytes(n) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if header > 0 && len > 2 * MAX_MESSAGE {
                    return Err(io::Error::other(format!("server frame of {len} bytes")));
                }
                if header > 0 && b.len() >= header + len {
                    let frame = Frame {
                        first: b[0],
                        payload: b[header..header + len].to_vec(),
                    };
                    self.start += header + len;
                    return Ok(frame);
                }
            }
            self.fill()?;
        }
    }

    /// The next data message or Close; Pings are answered, Pongs kept in `pongs`, and
    /// broadcasts passed over if `skip_storm` says so.
    fn message(&mut self) -> Result<Incoming, String> {
        loop {
            let incoming = self.message_or_broadcast()?;
            match (&mut self.skip_storm, &incoming) {
                (Some(skipped), Incoming::Data { text, data }) if is_broadcast(*text, data) => {
                    *skipped += 1;
                }
                _ => return Ok(incoming),
            }
        }
    }

    fn message_or_broadcast(&mut self) -> Result<Incoming, String> {
        let mut partial: Option<(bool, Vec<u8>)> = None;
        loop {
            let frame = self.frame()?;
            let fin = frame.first & 0x80 != 0;
            match frame.first & 0x0f {
                0x8 => {
                    let code = (frame.payload.len() >= 2)
                        .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                    return Ok(Incoming::Close(code));
                }
                0x9 => self.send(PONG_FIN, &frame.payload)?,
                0xa => self.pongs.push(frame.payload),
                op @ (0x1 | 0x2) if partial.is_none() => {
                    if fin {
                        return Ok(Incoming::Data {
                            text: op == 0x1,
                            data: frame.payload,
                        });
                    }
                    partial = Some((op == 0x1, frame.payload));
                }
                0x0 if partial.is_some() => {
                    let (text, mut data) = partial.take().unwrap_or_default();
                    data.extend_from_slice(&frame.payload);
                    if fin {
                        return Ok(Incoming::Data { text, data });
                    }
                    partial = Some((text, data));
                }
                _ => return Err(format!("unexpected server frame {:#04x}", frame.first)),
            }
        }
    }

    /// Read until the server closes TCP; nothing may come first.
    fn expect_eof(&mut self) -> Result<(), String> {
        if self.start < self.buf.len() {
            return Err("bytes after the Close".into());
        }
        match self.fill() {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(format!("waiting for the server's TCP close: {e}")),
            Ok(()) => Err("bytes after the Close".into()),
        }
    }

    /// The server's Close must come next, with `code`; then, if `answer`, answer it and
    /// wait for the TCP close.
    fn expect_close(&mut self, code: u16, answer: bool) -> Result<(), String> {
        match self.message()? {
            Incoming::Close(Some(got)) if got == code => {}
            other => return Err(format!("expected Close {code}, got {other:?}")),
        }
        if answer {
            self.send_close(code)?;
            self.expect_eof()?;
        }
        Ok(())
    }
}

/// Valid UTF-8 of exactly `len` bytes (1-, 2-, 3- and 4-byte characters, differing by `seed`).
fn text(seed: u64, len: usize) -> Vec<u8> {
    const CHARS: [&str; 6] = ["a", "é", "✓", "𝄞", " ", "z"];
    let mut out = Vec::with_capacity(len);
    let mut i = seed as usize;
    while out.len() < len {
        let c = CHARS[i % CHARS.len()].as_bytes();
        i = i.wrapping_mul(31).wrapping_add(7) >> 1;
        if out.len() + c.len() <= len {
            out.extend_from_slice(c);
        } else {
            out.push(b'a');
        }
    }
    out
}

// ----- Churn ----------------------------------------------------------------------------------

/// One churn session: session number `i` picks its messages and its ending.
fn churn_one(addr: SocketAddr, i: u64, c: &Counters) -> Result<(), String> {
    let ending = ENDINGS[(i % ENDINGS.len() as u64) as usize];
    if let Ending::HalfHandshake(rst) = ending {
        let request = upgrade_request("127.0.0.1", "/churn");
        let stream = open(addr).map_err(|e| format!("connect: {e}"))?;
        let cut = 10 + (i as usize / ENDINGS.len()) % (request.len() - 20);
        (&stream)
            .write_all(&request[..cut])
            .map_err(|e| format!("write: {e}"))?;
        if rst {
            set_linger_zero(&stream);
        }
        c.sessions.fetch_add(1, Relaxed);
        return Ok(());
    }
    let mut ws = Ws::connect(addr, "/churn", i)?;
    ws.skip_storm = Some(0);
    c.sessions.fetch_add(1, Relaxed);
    let result = churn_session(&mut ws, i, ending, c);
    c.broadcasts_to_churn
        .fetch_add(ws.skip_storm.unwrap_or(0), Relaxed);
    result
}

/// The messages and the ending of churn session `i`, once upgraded.
fn churn_session(ws: &mut Ws, i: u64, ending: Ending, c: &Counters) -> Result<(), String> {
    let alt = (i / ENDINGS.len() as u64).is_multiple_of(2);
    let messages = 1 + (i / ENDINGS.len() as u64) % 3;
    for j in 0..messages {
        exchange(ws, i * 8 + j, c)?;
    }
    match ending {
        Ending::Close(code) => {
            ws.send_close(code)?;
            ws.expect_close(code, false)?;
            ws.expect_eof()
        }
        Ending::CloseNoWait => ws.send_close(1000),
        Ending::Fin | Ending::Rst => {
            if alt {
                // One more message whose echo is never read.
                ws.send(BINARY_FIN, &payload(i, 70_000))?;
            }
            if ending == Ending::Rst {
                set_linger_zero(&ws.stream);
            } else {
                let _ = ws.stream.shutdown(Shutdown::Write);
            }
            Ok(())
        }
        Ending::HalfFrame(rst) => {
            let mut frame = frame_header(BINARY_FIN, 1000, Some(mask_key(i)));
            frame.extend_from_slice(&payload(i, 100));
            ws.stream
                .write_all(&frame)
                .map_err(|e| format!("write: {e}"))?;
            if rst {
                set_linger_zero(&ws.stream);
            }
            Ok(())
        }
        Ending::Unmasked => {
            let mut frame = frame_header(BINARY_FIN, 5, None);
            frame.extend_from_slice(b"hello");
            ws.stream
                .write_all(&frame)
                .map_err(|e| format!("write: {e}"))?;
            ws.expect_close(1002, alt)
        }
        Ending::BadUtf8 => {
            if alt {
                ws.send(TEXT_FIN, &[0x41, 0xff, 0xfe])?;
            } else {
                // The invalid sequence spans two fragments: "A" + E2 82 | "A".
                ws.send(TEXT, &[0x41, 0xe2, 0x82])?;
                ws.send(CONTINUATION_FIN, b"A")?;
            }
            ws.expect_close(1007, alt)
        }
        Ending::Oversized => {
            let mut frame = frame_header(BINARY_FIN, MAX_MESSAGE + 1, Some(mask_key(i)));
            frame.extend_from_slice(&payload(i, 1024));
            ws.stream
                .write_all(&frame)
                .map_err(|e| format!("write: {e}"))?;
            ws.expect_close(1009, alt)
        }
        Ending::HalfHandshake(_) => unreachable!("handled above"),
    }
}

/// Send message `seed` (size, kind and fragments chosen by it), read its echo and compare.
fn exchange(ws: &mut Ws, seed: u64, c: &Counters) -> Result<(), String> {
    let len = SIZES[(seed.wrapping_mul(7) % SIZES.len() as u64) as usize];
    let is_text = seed.is_multiple_of(2);
    let data = if is_text {
        text(seed, len)
    } else {
        payload(seed, len)
    };
    let fragments = 1 + (seed / 2) % 4;
    let ping = fragments > 1 && seed.is_multiple_of(3);
    let mut pings = Vec::new();
    let step = len.div_ceil(fragments as usize).max(1);
    let mut at = 0;
    for f in 0..fragments {
        let end = (at + step).min(len);
        let last = f + 1 == fragments;
        let first = match (f == 0, last, is_text) {
            (true, true, true) => TEXT_FIN,
            (true, true, false) => BINARY_FIN,
            (true, false, true) => TEXT,
            (true, false, false) => BINARY,
            (false, true, _) => CONTINUATION_FIN,
            (false, false, _) => CONTINUATION,
        };
        ws.send(first, &data[at..end])?;
        at = end;
        if ping && f == 0 {
            // RFC 6455 §5.4: a control frame may come between the fragments of a message.
            let body = format!("ping {seed}").into_bytes();
            ws.send(PING_FIN, &body)?;
            pings.push(body);
        }
    }
    match ws.message()? {
        Incoming::Data {
            text: t,
            data: echo,
        } if t == is_text && echo == data => {}
        Incoming::Data {
            text: t,
            data: echo,
        } => {
            return Err(format!(
                "echo differs: sent {} {len} B, got {} {} B",
                if is_text { "text" } else { "binary" },
                if t { "text" } else { "binary" },
                echo.len()
            ))
        }
        Incoming::Close(code) => return Err(format!("Close {code:?} instead of the echo")),
    }
    if ws.pongs != pings {
        return Err(format!("pongs {:?}, pings {pings:?}", ws.pongs.len()));
    }
    ws.pongs.clear();
    c.messages.fetch_add(1, Relaxed);
    c.message_bytes.fetch_add(len as u64, Relaxed);
    Ok(())
}

fn churn_thread(addr: SocketAddr, deadline: Instant, next: &AtomicU64, c: &Counters) {
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Relaxed);
        let k = (i % ENDINGS.len() as u64) as usize;
        match churn_one(addr, i, c) {
            Ok(()) => c.endings[k].fetch_add(1, Relaxed),
            Err(e) => {
                c.fail(format!("session {i} ({}): {e}", ENDINGS[k].name()));
                c.ending_failures[k].fetch_add(1, Relaxed)
            }
        };
    }
}

// ----- The broadcast storm --------------------------------------------------------------------

/// The storm's shared state for one round.
struct Storm {
    addr: SocketAddr,
    stop: AtomicBool,
}

fn storm_message(seq: u64) -> Vec<u8> {
    let len = if seq.is_multiple_of(10) {
        16 << 10
    } else if seq.is_multiple_of(3) {
        1024
    } else {
        64
    };
    let mut m = payload(seq, len);
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

/// The control session's last broadcast, after `count` numbered ones: a text message.
fn storm_end(count: u64) -> Vec<u8> {
    format!("end {count}").into_bytes()
}

/// Whether a message is one of the storm's broadcasts (which reach every session).
fn is_broadcast(text: bool, data: &[u8]) -> bool {
    if text {
        let count = data
            .strip_prefix(b"end ")
            .and_then(|n| std::str::from_utf8(n).ok());
        count.is_some_and(|n| n.parse::<u64>().is_ok())
    } else {
        data.len() >= 8 && {
            let seq = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
            data == storm_message(seq)
        }
    }
}

/// Read broadcasts on `ws` until the end message; every number from the first one seen to
/// the last one sent must arrive, once and in order, with the payload it was sent with.
fn read_broadcasts(ws: &mut Ws, c: &Counters) -> Result<(), String> {
    let mut expected: Option<u64> = None;
    loop {
        match ws.message()? {
            Incoming::Data { text: false, data } if data.len() >= 8 => {
                let seq = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
                if expected.is_some_and(|e| e != seq) {
                    return Err(format!("broadcast {seq} where {expected:?} was due"));
                }
                if data != storm_message(seq) {
                    return Err(format!("broadcast {seq}: payload differs"));
                }
                expected = Some(seq + 1);
                c.broadcasts_received.fetch_add(1, Relaxed);
            }
            Incoming::Data { text: true, data } => {
                let count = String::from_utf8_lossy(&data)
                    .strip_prefix("end ")
                    .and_then(|n| n.parse::<u64>().ok());
                return match (count, expected) {
                    (Some(n), Some(e)) if n == e => Ok(()),
                    (Some(_), None) => Ok(()),
                    _ => Err(format!(
                        "end message {:?} after broadcast {expected:?}",
                        String::from_utf8_lossy(&data)
                    )),
                };
            }
            other => return Err(format!("unexpected {other:?} during the storm")),
        }
    }
}

fn healthy_thread(storm: &Storm, n: u64, c: &Counters) -> Result<(), String> {
    let mut ws = Ws::connect(storm.addr, "/healthy", 1_000_000 + n)?;
    c.healthy_sessions.fetch_add(1, Relaxed);
    read_broadcasts(&mut ws, c)?;
    ws.send_close(1000)?;
    ws.expect_close(1000, false)?;
    ws.expect_eof()
}

fn control_thread(storm: &Storm, interval: Duration, c: &Counters) -> Result<(), String> {
    let mut ws = Ws::connect(storm.addr, "/ctl", 2_000_000)?;
    c.healthy_sessions.fetch_add(1, Relaxed);
    let writer = ws.stream.try_clone().map_err(|e| e.to_string())?;
    // The control session gets its own broadcasts too: a reader on its own thread. (It is
    // never silent long enough for the server to ping it, so only the writer writes.)
    thread::scope(|s| {
        let reader = s.spawn(|| read_broadcasts(&mut ws, c));
        let mut writer = Ws {
            stream: writer,
            buf: Vec::new(),
            start: 0,
            keys: 3_000_000,
            pongs: Vec::new(),
            skip_storm: None,
        };
        let mut seq = 0u64;
        let mut next = Instant::now();
        let sent = loop {
            if storm.stop.load(Relaxed) {
                break writer.send(TEXT_FIN, &storm_end(seq));
            }
            if let Err(e) = writer.send(BINARY_FIN, &storm_message(seq)) {
                break Err(e);
            }
            c.broadcasts_sent.fetch_add(1, Relaxed);
            seq += 1;
            next += interval;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        };
        let read = reader
            .join()
            .unwrap_or_else(|_| Err("reader panicked".into()));
        sent.and(read)?;
        writer.send_close(1000)
    })?;
    ws.expect_close(1000, false)?;
    ws.expect_eof()
}

/// A session that never reads (or reads 4 KiB every 250 ms) for `life`, then ends in turn
/// with RST, FIN, or by reading all the server sent to learn whether it was closed.
fn slow_one(storm: &Storm, n: u64, life: Duration, c: &Counters) -> Result<(), String> {
    let mut ws = Ws::connect(storm.addr, "/slow", 4_000_000 + n)?;
    c.slow_sessions.fetch_add(1, Relaxed);
    let trickle = n % 3 == 1;
    let until = Instant::now() + life;
    let mut chunk = vec![0u8; 4096];
    while Instant::now() < until && !storm.stop.load(Relaxed) {
        thread::sleep(Duration::from_millis(250));
        if trickle {
            // Any outcome will do: the server may have closed us.
            let _ = ws.stream.read(&mut chunk);
        }
    }
    match n % 3 {
        0 => set_linger_zero(&ws.stream),
        1 => {}
        _ => {
            let _ = ws.stream.set_read_timeout(Some(Duration::from_secs(2)));
            let outcome = loop {
                match ws.frame_io() {
                    Ok(f) if f.first & 0x0f == 0x8 => {
                        let code = (f.payload.len() >= 2)
                            .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                        break if code == Some(1008) {
                            &c.slow_closed_1008
                        } else {
                            &c.slow_closed_other
                        };
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break &c.slow_still_open
                    }
                    Err(_) => break &c.slow_eof,
                }
            };
            outcome.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

fn slow_thread(storm: &Storm, n: u64, c: &Counters) {
    let mut k = 0;
    while !storm.stop.load(Relaxed) {
        let id = n * 1000 + k;
        let life = Duration::from_secs(10 + (id * 7) % 31);
        if let Err(e) = slow_one(storm, id, life, c) {
            c.storm_failures.fetch_add(1, Relaxed);
            c.fail(format!("slow reader {id}: {e}"));
            thread::sleep(Duration::from_millis(500));
        }
        k += 1;
    }
}

// ----- The run --------------------------------------------------------------------------------

struct Options {
    secs: f64,
    /// `false` with `--no-storm` (churn only, to tell which part holds memory).
    storm: bool,
    rounds: u64,
    churn_threads: u64,
    healthy: u64,
    slow: u64,
    interval: Duration,
    rss_slack_mib: u64,
    heap_growth_kib: u64,
    idle_wait: u64,
}

fn round(addr: SocketAddr, o: &Options, secs: f64, next: &AtomicU64, c: &Counters) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let storm = Storm {
        addr,
        stop: AtomicBool::new(false),
    };
    thread::scope(|s| {
        let storm = &storm;
        for _ in 0..o.churn_threads {
            s.spawn(move || churn_thread(addr, deadline, next, c));
        }
        let healthy: Vec<_> = (0..o.healthy)
            .map(|n| s.spawn(move || healthy_thread(storm, n, c)))
            .collect();
        for n in 0..o.slow {
            s.spawn(move || slow_thread(storm, n, c));
        }
        // Healthy readers connect first, so that they see the whole storm.
        thread::sleep(Duration::from_millis(200));
        let control = o
            .storm
            .then(|| s.spawn(move || control_thread(storm, o.interval, c)));
        thread::sleep(deadline.saturating_duration_since(Instant::now()));
        storm.stop.store(true, Relaxed);
        let results = healthy
            .into_iter()
            .map(|h| ("healthy", h))
            .chain(control.map(|h| ("control", h)));
        for (who, handle) in results {
            if let Err(e) = handle.join().unwrap_or_else(|_| Err("panicked".into())) {
                c.storm_failures.fetch_add(1, Relaxed);
                c.fail(format!("{who} session: {e}"));
            }
        }
    });
}

/// The server after a round, once idle again.
struct Settled {
    sample: Sample,
    /// Seconds until its descriptors were back to the baseline.
    waited: f64,
    heap: Option<Heap>,
    /// `--idle-wait` seconds later (after the first and the last round).
    idle: Option<(Sample, Option<Heap>)>,
}

/// Wait until the server's descriptors are back to `fds` (or [`SETTLE_MAX`]), then one more
/// second for anything freed late; the sample after that.
fn settle(pid: u32, fds: u64) -> Option<(Sample, f64)> {
    let start = Instant::now();
    while start.elapsed() < SETTLE_MAX && sample(pid)?.fds != fds {
        thread::sleep(Duration::from_millis(100));
    }
    let waited = start.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(1));
    Some((sample(pid)?, waited))
}

fn start_server(bin_dir: &Path, which: &str, log: &Path) -> Result<(Child, SocketAddr), String> {
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin_dir.join("servers"))
        .args([which, "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .map_err(|e| format!("start the server: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let read = BufReader::new(stdout).read_line(&mut line);
    match line.trim().strip_prefix("ready ").map(str::parse) {
        Some(Ok(addr)) if read.is_ok() => Ok((child, addr)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("the server did not start: {line:?}"))
        }
    }
}

fn main() {
    let args = Args::parse(std::env::args().skip(1));
    let storm = !args.flag("no-storm");
    let o = Options {
        secs: args.num("secs", 600.0),
        storm,
        rounds: args.num("rounds", 10u64).max(1),
        churn_threads: args.num("churn-threads", 8),
        healthy: if storm { args.num("healthy", 20) } else { 0 },
        slow: if storm { args.num("slow", 40) } else { 0 },
        interval: Duration::from_millis(args.num("storm-interval-ms", 5)),
        rss_slack_mib: args.num("rss-slack-mib", 16),
        heap_growth_kib: args.num("heap-growth-kib", 3072),
        idle_wait: args.num("idle-wait", 35),
    };
    let which = args.get("server").unwrap_or("wsloop").to_string();
    let out = PathBuf::from(args.get("out").unwrap_or("target/e2e/SOAK.md"));
    if let Err(e) = raise_fd_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    // `--attach PID --addr ADDR`: soak a `servers wsloop` started by hand (to look at it
    // between runs); its stderr must go to `--server-log` for the heap readings.
    if let (Some(pid), Some(addr)) = (args.get("attach"), args.get("addr")) {
        let (Ok(pid), Ok(addr)) = (pid.parse::<u32>(), addr.parse::<SocketAddr>()) else {
            eprintln!("--attach PID --addr HOST:PORT");
            std::process::exit(2)
        };
        let log = PathBuf::from(args.get("server-log").unwrap_or("/dev/null"));
        let code = match run(pid, addr, &o, &which, &out, &log) {
            Ok(pass) => i32::from(!pass),
            Err(e) => {
                eprintln!("soak: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let log = out.with_extension("server.log");
    let (mut child, addr) = start_server(&bin_dir, &which, &log).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let pid = child.id();
    let code = match run(pid, addr, &o, &which, &out, &log) {
        Ok(pass) => i32::from(!pass),
        Err(e) => {
            eprintln!("soak: {e}");
            1
        }
    };
    let crashed = !matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    if crashed {
        eprintln!("the server exited during the run");
        std::process::exit(1);
    }
    std::process::exit(code);
}

fn run(
    pid: u32,
    addr: SocketAddr,
    o: &Options,
    which: &str,
    out: &Path,
    log: &Path,
) -> Result<bool, String> {
    let gone = || format!("cannot read /proc/{pid}: the server is gone");
    // Baseline: idle, a second after startup.
    thread::sleep(Duration::from_secs(1));
    let base = sample(pid).ok_or_else(gone)?;
    let script = out.with_extension("heapwalk.py");
    std::fs::write(&script, HEAPWALK).map_err(|e| format!("write {}: {e}", script.display()))?;
    let read_heap = || heap(pid, log, &script);
    let (base_heap, base_chunks) = read_heap().unzip();
    eprintln!("baseline: {base:?} {base_heap:?}");
    let mut first_chunks = None;
    let mut end_chunks = None;
    let c = Counters::default();
    let next = AtomicU64::new(0);
    let peak = Mutex::new(base);
    let during = AtomicBool::new(true);
    let mut settles: Vec<Settled> = Vec::new();
    let cpu0 = wsloop_e2e::proc_cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    thread::scope(|s| -> Result<(), String> {
        // The sampler: every second while the run lasts, the peak of each reading.
        s.spawn(|| {
            while during.load(Relaxed) {
                if let Some(now) = sample(pid) {
                    let mut p = peak.lock().unwrap();
                    p.rss_kib = p.rss_kib.max(now.rss_kib);
                    p.hwm_kib = p.hwm_kib.max(now.hwm_kib);
                    p.anon_kib = p.anon_kib.max(now.anon_kib);
                    p.fds = p.fds.max(now.fds);
                }
                thread::sleep(Duration::from_secs(1));
            }
        });
        let per_round = o.secs / o.rounds as f64;
        for r in 0..o.rounds {
            round(addr, o, per_round, &next, &c);
            let settled = settle(pid, base.fds);
            let Some((after, waited)) = settled else {
                during.store(false, Relaxed);
                return Err(gone());
            };
            let held = read_heap().map(|(h, _)| h);
            eprintln!(
                "round {}/{}: {} sessions so far; settled in {waited:.1} s: {after:?} {held:?}",
                r + 1,
                o.rounds,
                c.sessions.load(Relaxed)
            );
            // After the first and the last round, wait until every timer the closed
            // connections left behind has come due, and read again.
            let idle = if r == 0 || r + 1 == o.rounds {
                thread::sleep(Duration::from_secs(o.idle_wait));
                let now = sample(pid).ok_or_else(gone)?;
                let (held, chunks) = read_heap().unzip();
                eprintln!("  and {} s later: {now:?} {held:?}", o.idle_wait);
                if r == 0 {
                    first_chunks = chunks.clone().flatten();
                }
                end_chunks = chunks.flatten();
                Some((now, held))
            } else {
                None
            };
            settles.push(Settled {
                sample: after,
                waited,
                heap: held,
                idle,
            });
        }
        during.store(false, Relaxed);
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = wsloop_e2e::proc_cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let peak = *peak.lock().unwrap();
    let last = settles.last().ok_or("no round ran")?;
    let (end, end_heap) = last.idle.unwrap_or((last.sample, last.heap));
    // What the allocator keeps: give it back (malloc_trim) and read RSS once more.
    let trimmed = gdb_call(pid, "(int)malloc_trim(0)")
        .then(|| sample(pid))
        .flatten();
    let failures: u64 = c
        .ending_failures
        .iter()
        .map(|a| a.load(Relaxed))
        .sum::<u64>()
        + c.storm_failures.load(Relaxed);
    let fds_ok = end.fds == base.fds;
    let rss_ok = end.rss_kib <= base.rss_kib + o.rss_slack_mib * 1024;
    let first_heap = settles[0].idle.and_then(|x| x.1);
    let heap_ok = match (first_heap, end_heap) {
        (Some(first), Some(end)) if settles.len() > 1 => {
            let (first, end) = match (first.allocated, end.allocated) {
                (Some(f), Some(e)) => (f, e),
                _ => (first.in_use, end.in_use),
            };
            Some(end <= first + o.heap_growth_kib * 1024)
        }
        _ => None,
    };
    let chunks = ChunkReport {
        base: base_chunks.flatten(),
        first: first_chunks,
        end: end_chunks,
    };
    let pass = fds_ok && rss_ok && heap_ok != Some(false) && failures == 0;
    let report = Report {
        which,
        o,
        elapsed,
        cpu,
        base,
        base_heap,
        peak,
        end,
        end_heap,
        first_heap,
        chunks,
        trimmed,
        settles: &settles,
        c: &c,
        failures,
        fds_ok,
        rss_ok,
        heap_ok,
        pass,
    };
    println!("{}", report.json());
    let md = report.markdown();
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(out, md).map_err(|e| format!("write {}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(pass)
}

/// The heap walks at the start, after round 1 (idle) and at the end.
struct ChunkReport {
    base: Option<Chunks>,
    first: Option<Chunks>,
    end: Option<Chunks>,
}

struct Report<'a> {
    which: &'a str,
    o: &'a Options,
    elapsed: f64,
    cpu: f64,
    base: Sample,
    base_heap: Option<Heap>,
    peak: Sample,
    end: Sample,
    end_heap: Option<Heap>,
    /// The heap after the first round and the idle wait.
    first_heap: Option<Heap>,
    chunks: ChunkReport,
    /// The server after `malloc_trim(0)`, at the very end.
    trimmed: Option<Sample>,
    settles: &'a [Settled],
    c: &'a Counters,
    failures: u64,
    fds_ok: bool,
    rss_ok: bool,
    /// `None` without gdb.
    heap_ok: Option<bool>,
    pass: bool,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn pass_fail(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

impl Report<'_> {
    fn endings(&self) -> BTreeMap<String, (u64, u64)> {
        ENDINGS
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let ok = self.c.endings[k].load(Relaxed);
                (e.name(), (ok, self.c.ending_failures[k].load(Relaxed)))
            })
            .collect()
    }

    fn json(&self) -> serde_json::Value {
        let s = |x: &Sample| json!({"rss_kib": x.rss_kib, "hwm_kib": x.hwm_kib, "anon_kib": x.anon_kib, "fds": x.fds});
        let h = |x: Option<Heap>| {
            x.map(|x| {
                json!({"system": x.system, "in_use": x.in_use, "allocated": x.allocated,
                       "chunks": x.chunks})
            })
        };
        let c = self.c;
        json!({
            "server": self.which,
            "load_secs": self.o.secs,
            "secs": self.elapsed,
            "rounds": self.o.rounds,
            "server_cpu_secs": self.cpu,
            "sessions": c.sessions.load(Relaxed),
            "messages": c.messages.load(Relaxed),
            "message_bytes": c.message_bytes.load(Relaxed),
            "endings": self.endings(),
            "broadcasts_sent": c.broadcasts_sent.load(Relaxed),
            "broadcasts_received": c.broadcasts_received.load(Relaxed),
            "broadcasts_to_churn": c.broadcasts_to_churn.load(Relaxed),
            "healthy_sessions": c.healthy_sessions.load(Relaxed),
            "slow_sessions": c.slow_sessions.load(Relaxed),
            "slow_drained": {
                "closed_1008": c.slow_closed_1008.load(Relaxed),
                "closed_other": c.slow_closed_other.load(Relaxed),
                "eof": c.slow_eof.load(Relaxed),
                "still_open": c.slow_still_open.load(Relaxed),
            },
            "failures": self.failures,
            "start": s(&self.base),
            "start_heap": h(self.base_heap),
            "heap_after_round_1_idle": h(self.first_heap),
            "end_heap": h(self.end_heap),
            "peak": s(&self.peak),
            "end": s(&self.end),
            "end_after_malloc_trim": self.trimmed.as_ref().map(s),
            "after_each_round": self.settles.iter().map(|x| s(&x.sample)).collect::<Vec<_>>(),
            "heap_after_each_round": self.settles.iter().map(|x| h(x.heap)).collect::<Vec<_>>(),
            "fds_back": self.fds_ok,
            "rss_within_slack": self.rss_ok,
            "heap_not_growing": self.heap_ok,
            "pass": self.pass,
        })
    }

    fn markdown(&self) -> String {
        let c = self.c;
        let o = self.o;
        let command = std::env::var("SOAK_COMMAND")
            .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
        let mut md = format!(
            "## Soak: churn and a broadcast storm, back to baseline ({})\n\n\
             `{command}` ({} run, {:.0} s of load in {} rounds, {:.0} s with the settles, \
             `servers {}` pinned to core 0; its CPU over the run: {:.1} s). Verdict: **{}**.\n\n",
            pass_fail(self.pass),
            command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            o.secs,
            o.rounds,
            self.elapsed,
            self.which,
            self.cpu,
            pass_fail(self.pass),
        );
        md.push_str(
            "| server | VmRSS MiB | VmHWM MiB | RssAnon MiB | open fds | heap held, bytes \
             (chunks) | malloc \"in use\" MiB | malloc from the system MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let row = |md: &mut String, label: &str, x: &Sample, heap: Option<Heap>| {
            let (held, in_use, system) = heap.map_or(("-".into(), "-".into(), "-".into()), |h| {
                let held = match (h.allocated, h.chunks) {
                    (Some(bytes), Some(n)) => format!("{bytes} ({n})"),
                    _ => "-".into(),
                };
                (
                    held,
                    format!("{:.2}", mib(h.in_use / 1024)),
                    format!("{:.2}", mib(h.system / 1024)),
                )
            });
            md.push_str(&format!(
                "| {label} | {:.2} | {:.2} | {:.2} | {} | {held} | {in_use} | {system} |\n",
                mib(x.rss_kib),
                mib(x.hwm_kib),
                mib(x.anon_kib),
                x.fds
            ));
        };
        row(
            &mut md,
            "start (idle, after startup)",
            &self.base,
            self.base_heap,
        );
        row(&mut md, "peak (sampled every second)", &self.peak, None);
        for (r, x) in self.settles.iter().enumerate() {
            let label = format!("after round {} (settled in {:.1} s)", r + 1, x.waited);
            row(&mut md, &label, &x.sample, x.heap);
            if let Some((idle, heap)) = &x.idle {
                let label = format!("after round {}, {} s idle", r + 1, o.idle_wait);
                row(&mut md, &label, idle, *heap);
            }
        }
        row(&mut md, "**end**", &self.end, self.end_heap);
        if let Some(trimmed) = &self.trimmed {
            row(&mut md, "end, after `malloc_trim(0)`", trimmed, None);
        }
        let heap = match (self.heap_ok, self.first_heap, self.end_heap) {
            (Some(ok), Some(first), Some(end)) => {
                let (what, first, end) = match (first.allocated, end.allocated) {
                    (Some(f), Some(e)) => ("heap held (walk)", f, e),
                    _ => ("malloc \"in use\" (no heap walk)", first.in_use, end.in_use),
                };
                format!(
                    "{what} at the end <= after round 1 (both {} s idle) + {} KiB \
                     ({end} <= {} bytes): {}",
                    o.idle_wait,
                    o.heap_growth_kib,
                    first + o.heap_growth_kib * 1024,
                    pass_fail(ok)
                )
            }
            _ => "heap: not compared (needs `gdb` and two rounds)".into(),
        };
        md.push_str(&format!(
            "\nBack to baseline: open descriptors end = start ({} = {}): {}; VmRSS end <= start + \
             {} MiB ({:.2} <= {:.2}): {}; {heap}; client-side checks failed: {}.\n\n",
            self.end.fds,
            self.base.fds,
            pass_fail(self.fds_ok),
            o.rss_slack_mib,
            mib(self.end.rss_kib),
            mib(self.base.rss_kib) + o.rss_slack_mib as f64,
            pass_fail(self.rss_ok),
            self.failures,
        ));
        let changes = |from: &Option<Chunks>, label: &str, md: &mut String| {
            if let (Some(from), Some(end)) = (from, &self.chunks.end) {
                let (more, fewer) = chunk_changes(from, end);
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                md.push_str(&format!(
                    "Chunks the server holds at the end and did not {label}: {}; held then and \
                     not at the end: {}.\n\n",
                    list(&more),
                    list(&fewer)
                ));
            }
        };
        changes(&self.chunks.base, "at the start", &mut md);
        changes(&self.chunks.first, "after round 1", &mut md);
        md.push_str(&format!(
            "Churn ({} threads): {} sessions, {} messages echoed and checked ({:.1} MiB).\n\n\
             | ending | sessions | failed |\n|---|---:|---:|\n",
            o.churn_threads,
            c.sessions.load(Relaxed),
            c.messages.load(Relaxed),
            mib(c.message_bytes.load(Relaxed) / 1024),
        ));
        for (k, e) in ENDINGS.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                e.name(),
                c.endings[k].load(Relaxed),
                c.ending_failures[k].load(Relaxed)
            ));
        }
        md.push_str(&format!(
            "\nStorm: a `/ctl` session broadcast {} messages (one every {} ms: 64 B, 1 KiB every \
             third, 16 KiB every tenth); {} healthy sessions (the control one included) \
             received {} in all, every one checked in order and without gap (churn sessions, \
             which get them too, passed over {}); {} slow sessions \
             ({} at a time, never reading or reading 4 KiB every 250 ms, 10 to 40 s each). \
             Of those that drained what was sent at the end: closed by the server with 1008 \
             (write queue over its mark): {}; other Close: {}; TCP ended without Close: {}; \
             still open: {}. Storm failures: {}.\n",
            c.broadcasts_sent.load(Relaxed),
            o.interval.as_millis(),
            c.healthy_sessions.load(Relaxed),
            c.broadcasts_received.load(Relaxed),
            c.broadcasts_to_churn.load(Relaxed),
            c.slow_sessions.load(Relaxed),
            o.slow,
            c.slow_closed_1008.load(Relaxed),
            c.slow_closed_other.load(Relaxed),
            c.slow_eof.load(Relaxed),
            c.slow_still_open.load(Relaxed),
            c.storm_failures.load(Relaxed),
        ));
        let examples = c.examples.lock().unwrap();
        if !examples.is_empty() {
            md.push_str("\nFirst failures:\n\n");
            for e in examples.iter() {
                md.push_str(&format!("- {e}\n"));
            }
        }
        md
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use wsloop_e2e::server_frame;

    #[test]
    fn text_is_utf8_of_the_exact_length() {
        for seed in 0..50 {
            for len in [0, 1, 2, 3, 4, 5, 125, 126, 1000, 65_536] {
                let t = text(seed, len);
                assert_eq!(t.len(), len);
                assert!(std::str::from_utf8(&t).is_ok(), "seed {seed} len {len}");
            }
        }
        // Multi-byte characters are really there (the fragments split some).
        assert!(text(3, 1000).iter().any(|b| *b >= 0x80));
    }

    #[test]
    fn broadcasts_are_told_from_echoes() {
        for seq in [0, 1, 3, 10, 12_345] {
            assert!(is_broadcast(false, &storm_message(seq)));
        }
        assert!(is_broadcast(true, &storm_end(42)));
        assert!(!is_broadcast(false, &payload(7, 64)));
        assert!(!is_broadcast(false, &payload(7, 4)));
        assert!(!is_broadcast(true, &text(7, 64)));
        assert!(!is_broadcast(true, b"end of it"));
        // A storm message with one byte changed is not one.
        let mut m = storm_message(9);
        m[20] ^= 1;
        assert!(!is_broadcast(false, &m));
    }

    #[test]
    fn every_ending_has_its_own_name() {
        let names: std::collections::BTreeSet<String> = ENDINGS.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), ENDINGS.len());
    }

    /// A `Ws` over a real loopback connection whose other end is returned raw.
    fn pair() -> (Ws, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = open(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let ws = Ws {
            stream: client,
            buf: Vec::new(),
            start: 0,
            keys: 1,
            pongs: Vec::new(),
            skip_storm: Some(0),
        };
        (ws, server)
    }

    #[test]
    fn messages_are_reassembled_pings_answered_and_broadcasts_passed_over() {
        let (mut ws, mut server) = pair();
        let mut wire = server_frame(BINARY_FIN, &storm_message(5));
        wire.extend(server_frame(TEXT, "h\u{e9}".as_bytes()));
        wire.extend(server_frame(PING_FIN, b"hi"));
        wire.extend(server_frame(PONG_FIN, b"p"));
        wire.extend(server_frame(CONTINUATION_FIN, b"llo"));
        wire.extend(server_frame(CLOSE_FIN, &1002u16.to_be_bytes()));
        server.write_all(&wire).unwrap();
        assert_eq!(
            ws.message().unwrap(),
            Incoming::Data {
                text: true,
                data: "h\u{e9}llo".as_bytes().to_vec()
            }
        );
        assert_eq!(ws.skip_storm, Some(1));
        assert_eq!(ws.pongs, vec![b"p".to_vec()]);
        // The Ping was answered with a masked Pong carrying its payload.
        let mut pong = [0u8; 8];
        server.read_exact(&mut pong).unwrap();
        assert_eq!(pong[..2], [PONG_FIN, 0x82]);
        let key = [pong[2], pong[3], pong[4], pong[5]];
        assert_eq!([pong[6] ^ key[0], pong[7] ^ key[1]], *b"hi");
        assert_eq!(ws.message().unwrap(), Incoming::Close(Some(1002)));
        drop(server);
        assert!(ws.expect_eof().is_ok());
    }

    #[test]
    fn masked_server_frames_and_bytes_after_close_are_errors() {
        let (mut ws, mut server) = pair();
        server
            .write_all(&client_frame(BINARY_FIN, b"x", [1, 2, 3, 4]))
            .unwrap();
        assert!(ws.message().unwrap_err().contains("masked"));

        let (mut ws, mut server) = pair();
        let mut wire = server_frame(CLOSE_FIN, &1000u16.to_be_bytes());
        wire.extend(server_frame(BINARY_FIN, b"late"));
        server.write_all(&wire).unwrap();
        drop(server);
        assert!(ws.expect_close(1000, false).is_ok());
        assert!(ws.expect_eof().is_err());
    }
}
