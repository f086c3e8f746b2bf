//! The driver: runs every row against every server and writes `BENCHMARKS.md`.
//!
//! ```text
//! driver [--reps 5] [--secs 1.5] [--only 1,4,7a] [--out PATH]
//! ```
//!
//! Normally started by `benches/e2e/run.sh`, which builds the package first. For each row,
//! each repetition and each server (servers interleaved, so that a burst of noise on this
//! shared machine hits them alike) it starts the server pinned to core 0 with
//! `taskset -c 0`, waits for its `ready` line, runs the load generator pinned to core 1, and
//! kills the server. Each figure is the median of the repetitions. `--only 8` picks every
//! row whose id is 8 and a letter (8a, 8b, 8c).
//!
//! Row 7a (wsloop's broadcast to 10,000 sessions) also runs its ceiling, `servers
//! raw-tcp-fanout` (the same fan-out over plain TCP, `loadgen fanout --raw`), and reports
//! the ratio of the two times.
//!
//! Row 8 (permessage-deflate) compares wsloop with itself (without deflate, with
//! `DeflateConfig::default()`, with `DeflateConfig::low_memory()`) and has its own table.
//!
//! Row 9 (event loops / worker threads per server) is pinned differently: server and load
//! generator both on cores 0 and 1 (`taskset -c 0,1` each), sharing the machine. It runs row
//! 1's load against wsloop with 1 and 2 loops, tokio-tungstenite on a multi-thread runtime
//! with 1 and 2 workers and a raw TCP echo with 1 and 2 threads, and has its own section,
//! with a "what this shows" paragraph written from the measured figures. Row 9b runs row
//! 7a's broadcast to 10,000 sessions against wsloop with 1 and 2 loops, pinned the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wsloop::deflate::DeflateConfig;
use wsloop_e2e::{proc_rss_kib, Args};

/// The peers a Rust user would otherwise pick; ratios are to the best of them.
const PEERS: [&str; 4] = [
    "tungstenite",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];
/// Every column of the table, in order.
const SERVERS: [&str; 6] = [
    "wsloop",
    "tungstenite",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "raw-tcp",
];
/// Row 7a's ceiling: the same 10,000 sockets, the same 64 bytes written to each by one
/// thread, no WebSocket. Shown in the raw TCP column of row 7a.
const RAW_FANOUT: &str = "raw-tcp-fanout";
/// Row 8's columns: wsloop without permessage-deflate (the `wsloop` server of every other
/// row), with `DeflateConfig::default()`, with `DeflateConfig::low_memory()`.
const DEFLATE_SERVERS: [&str; 3] = ["wsloop", "wsloop-deflate", "wsloop-deflate-low"];
const DEFLATE_LABELS: [&str; 3] = [
    "wsloop, no deflate",
    "wsloop, deflate default",
    "wsloop, deflate low_memory",
];
/// Row 9's servers: (subcommand, what it is, threads), in the order of its table.
const WORKER_SERVERS: [(&str, &str, usize); 6] = [
    ("wsloop-w1", "wsloop, `workers(1)`", 1),
    ("wsloop-w2", "wsloop, `workers(2)`", 2),
    (
        "tokio-tungstenite-mt1",
        "tokio-tungstenite, multi-thread runtime, `worker_threads(1)`",
        1,
    ),
    (
        "tokio-tungstenite-mt2",
        "tokio-tungstenite, multi-thread runtime, `worker_threads(2)`",
        2,
    ),
    ("raw-tcp-w1", "raw TCP echo, 1 thread (reference)", 1),
    (
        "raw-tcp-w2",
        "raw TCP echo, 2 threads, `SO_REUSEPORT` (reference)",
        2,
    ),
];
/// Row 10's servers (TLS): wsloop and tokio-tungstenite behind tokio-rustls.
const TLS_SERVERS: [&str; 2] = ["wsloop-tls", "tokio-tungstenite-tls"];
const WEBSOCKET: [&str; 5] = [
    "wsloop",
    "tungstenite",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

#[derive(Clone, Copy)]
enum Unit {
    /// Per second, shown with k/M.
    Rate,
    MegabytesPerSecond,
    Micros,
    Millis,
    Kib,
    Bytes,
    /// CPU time per second of wall time: 1.00 is one whole core.
    Cores,
}

struct Metric {
    key: &'static str,
    label: &'static str,
    unit: Unit,
    higher_is_better: bool,
}

/// One run's figures (the load generator's JSON object), or why it failed.
type Run = Result<Map<String, Value>, String>;
/// Every run, by (row, server).
type Results = BTreeMap<(String, String), Vec<Run>>;

struct Bench {
    id: &'static str,
    title: String,
    /// The load generator's subcommand.
    sub: &'static str,
    args: Vec<String>,
    servers: Vec<&'static str>,
    metrics: Vec<Metric>,
    /// At most this many runs (the 10,000-connection rows are slow to set up, and memory
    /// does not depend on the noise).
    max_reps: usize,
}

const PER_CORE_MESSAGES: &str = "messages per server CPU-second";

fn metric(key: &'static str, label: &'static str, unit: Unit, higher: bool) -> Metric {
    Metric {
        key,
        label,
        unit,
        higher_is_better: higher,
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn benches() -> Vec<Bench> {
    use Unit::*;
    vec![
        Bench {
            id: "1",
            title: "echo, 100 connections × 64 B, 16 in flight per connection".into(),
            sub: "echo",
            args: strings(&["--conns", "100", "--size", "64", "--inflight", "16"]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("msgs_per_s", "messages/s", Rate, true),
                metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "2",
            title: "echo, 500 connections × 16 KiB, 1 in flight per connection".into(),
            sub: "echo",
            args: strings(&["--conns", "500", "--size", "16384", "--inflight", "1"]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("msgs_per_s", "messages/s", Rate, true),
                metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "2b",
            title: "echo, 10 connections × 64 KiB, 4 in flight per connection".into(),
            sub: "echo",
            args: strings(&["--conns", "10", "--size", "65536", "--inflight", "4"]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("mb_per_s", "MB/s echoed", MegabytesPerSecond, true),
                metric(
                    "mb_per_s_per_core",
                    "MB echoed per server CPU-second",
                    MegabytesPerSecond,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "2c",
            title: "echo, 100 connections × 4 KiB, 16 in flight per connection".into(),
            sub: "echo",
            args: strings(&["--conns", "100", "--size", "4096", "--inflight", "16"]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("msgs_per_s", "messages/s", Rate, true),
                metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "3",
            title: "echo, 1 connection × 16 MiB, 1 in flight".into(),
            sub: "echo",
            args: strings(&["--conns", "1", "--size", "16777216", "--inflight", "1"]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("mb_per_s", "MB/s echoed", MegabytesPerSecond, true),
                metric(
                    "mb_per_s_per_core",
                    "MB echoed per server CPU-second",
                    MegabytesPerSecond,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "4",
            title: "latency, 50 connections, 1 × 128 B in flight each".into(),
            sub: "echo",
            args: strings(&[
                "--conns",
                "50",
                "--size",
                "128",
                "--inflight",
                "1",
                "--latency",
            ]),
            servers: SERVERS.to_vec(),
            metrics: vec![
                metric("p50_us", "p50 µs", Micros, false),
                metric("p99_us", "p99 µs", Micros, false),
                metric("p999_us", "p99.9 µs", Micros, false),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "5",
            title: "handshakes (connect, upgrade, Close handshake, TCP close), 32 at a time".into(),
            sub: "handshakes",
            args: strings(&["--conc", "32"]),
            servers: WEBSOCKET.to_vec(),
            metrics: vec![
                metric("per_s", "handshakes/s", Rate, true),
                metric(
                    "per_s_per_core",
                    "handshakes per server CPU-second",
                    Rate,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "6",
            title: "idle memory: server RSS growth per connection, 10,000 idle connections".into(),
            sub: "idle",
            args: strings(&["--conns", "10000"]),
            servers: SERVERS.to_vec(),
            metrics: vec![metric("kib_per_conn", "KiB per connection", Kib, false)],
            max_reps: 3,
        },
        Bench {
            id: "7a",
            title:
                "broadcast fan-out: one 64 B message to 10,000 sessions, until every client has it"
                    .into(),
            sub: "fanout",
            args: strings(&["--conns", "10000", "--rounds", "10"]),
            servers: vec!["wsloop", RAW_FANOUT],
            metrics: vec![metric("p50_ms", "ms (median of 10 rounds)", Millis, false)],
            max_reps: 3,
        },
        Bench {
            id: "7c",
            title: "topic fan-out: one 64 B message published to a topic of 1,000 among 10,000 \
                    sessions, until every member has it"
                .into(),
            sub: "topic",
            args: strings(&["--conns", "10000", "--members", "1000", "--rounds", "10"]),
            servers: vec!["wsloop"],
            metrics: vec![metric("p50_ms", "ms (median of 10 rounds)", Millis, false)],
            max_reps: 3,
        },
        Bench {
            id: "7b",
            title: "broadcast sustained to 1,000 sessions (64 B, 16 broadcasts outstanding)".into(),
            sub: "broadcast",
            args: strings(&["--conns", "1000", "--window", "16"]),
            servers: vec!["wsloop"],
            metrics: vec![
                metric("msgs_per_s", "broadcasts/s", Rate, true),
                metric("deliveries_per_s", "deliveries/s", Rate, true),
                metric(
                    "deliveries_per_s_per_core",
                    "deliveries per server CPU-second",
                    Rate,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "8a",
            title: "compressed echo: 100 connections × 1 KiB JSON text, 16 in flight each".into(),
            sub: "zecho",
            args: strings(&["--conns", "100", "--size", "1024", "--inflight", "16"]),
            servers: DEFLATE_SERVERS.to_vec(),
            metrics: deflate_echo_metrics(),
            max_reps: usize::MAX,
        },
        Bench {
            id: "8b",
            title: "compressed echo: 100 connections × 16 KiB JSON text, 16 in flight each".into(),
            sub: "zecho",
            args: strings(&["--conns", "100", "--size", "16384", "--inflight", "16"]),
            servers: DEFLATE_SERVERS.to_vec(),
            metrics: deflate_echo_metrics(),
            max_reps: usize::MAX,
        },
        Bench {
            id: "8c",
            title: "memory: server RSS growth per connection, 2,000 connections, one 1 KiB JSON \
                    message each"
                .into(),
            sub: "zmem",
            args: strings(&["--conns", "2000", "--size", "1024"]),
            servers: DEFLATE_SERVERS.to_vec(),
            metrics: vec![
                metric(
                    "kib_per_conn_idle",
                    "KiB per connection, upgraded, before any message",
                    Kib,
                    false,
                ),
                metric(
                    "kib_per_conn",
                    "KiB per connection, after one message each way",
                    Kib,
                    false,
                ),
            ],
            max_reps: 3,
        },
        Bench {
            id: "9",
            title: "echo, 100 connections × 64 B, 16 in flight per connection, server and \
                    load generator sharing cores 0 and 1"
                .into(),
            sub: "echo",
            args: strings(&[
                "--conns",
                "100",
                "--size",
                "64",
                "--inflight",
                "16",
                "--thread-cpu",
            ]),
            servers: WORKER_SERVERS.iter().map(|(s, ..)| *s).collect(),
            metrics: vec![
                metric("msgs_per_s", "messages/s", Rate, true),
                metric("server_cpu", "server CPU (cores)", Cores, false),
                metric("loadgen_cpu", "load generator CPU (cores)", Cores, false),
                metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "9b",
            title: "broadcast fan-out: one 64 B message to 10,000 sessions, until every client \
                    has it, server and load generator sharing cores 0 and 1"
                .into(),
            sub: "fanout",
            args: strings(&["--conns", "10000", "--rounds", "10"]),
            servers: vec!["wsloop-w1", "wsloop-w2"],
            metrics: vec![metric("p50_ms", "ms (median of 10 rounds)", Millis, false)],
            max_reps: 3,
        },
        Bench {
            id: "10a",
            title: "TLS echo, 100 connections × 64 B, 16 in flight per connection".into(),
            sub: "tls-echo",
            args: strings(&["--conns", "100", "--size", "64", "--inflight", "16"]),
            servers: TLS_SERVERS.to_vec(),
            metrics: vec![
                metric("msgs_per_s", "messages/s", Rate, true),
                metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "10b",
            title: "TLS echo, 1 connection × 16 MiB, 1 in flight".into(),
            sub: "tls-echo",
            args: strings(&["--conns", "1", "--size", "16777216", "--inflight", "1"]),
            servers: TLS_SERVERS.to_vec(),
            metrics: vec![
                metric("mb_per_s", "MB/s echoed", MegabytesPerSecond, true),
                metric(
                    "mb_per_s_per_core",
                    "MB echoed per server CPU-second",
                    MegabytesPerSecond,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "10c",
            title: "TLS handshakes (connect, full TLS 1.3 handshake, upgrade, Close handshake, \
                    TCP close), 32 at a time"
                .into(),
            sub: "tls-handshakes",
            args: strings(&["--conc", "32"]),
            servers: TLS_SERVERS.to_vec(),
            metrics: vec![
                metric("per_s", "handshakes/s", Rate, true),
                metric(
                    "per_s_per_core",
                    "handshakes per server CPU-second",
                    Rate,
                    true,
                ),
            ],
            max_reps: usize::MAX,
        },
        Bench {
            id: "10d",
            title: "idle memory over TLS: server RSS growth per connection, 2,000 idle \
                    connections"
                .into(),
            sub: "tls-idle",
            args: strings(&["--conns", "2000"]),
            servers: TLS_SERVERS.to_vec(),
            metrics: vec![metric("kib_per_conn", "KiB per connection", Kib, false)],
            max_reps: 3,
        },
    ]
}

fn deflate_echo_metrics() -> Vec<Metric> {
    use Unit::*;
    vec![
        metric("msgs_per_s", "messages/s", Rate, true),
        metric("msgs_per_s_per_core", PER_CORE_MESSAGES, Rate, true),
        metric(
            "c2s_bytes_per_msg",
            "bytes on the wire per message, client → server",
            Bytes,
            false,
        ),
        metric(
            "s2c_bytes_per_msg",
            "bytes on the wire per message, server → client",
            Bytes,
            false,
        ),
    ]
}

/// Row 8 (permessage-deflate): wsloop against itself, reported in its own table.
fn is_deflate(bench: &Bench) -> bool {
    bench.sub == "zecho" || bench.sub == "zmem"
}

/// Row 9 (threads per server: 9 echo, 9b broadcast): server and load generator share cores
/// 0 and 1, own section.
fn is_workers(bench: &Bench) -> bool {
    bench.id.starts_with('9')
}

/// Row 10 (TLS): wsloop against tokio-tungstenite with tokio-rustls, own section.
fn is_tls(bench: &Bench) -> bool {
    bench.sub.starts_with("tls-")
}

/// Rows reported in a section of their own rather than the main table.
fn own_section(bench: &Bench) -> bool {
    is_deflate(bench) || is_workers(bench) || is_tls(bench)
}

/// `--only` names rows: `7a` that row, `7` (a number alone) every row `7a`, `7b`, ...
fn selected(id: &str, only: &[String]) -> bool {
    only.iter().any(|x| {
        id == x
            || id.strip_prefix(x.as_str()).is_some_and(|rest| {
                x.bytes().all(|b| b.is_ascii_digit())
                    && rest.bytes().all(|b| b.is_ascii_lowercase())
            })
    })
}

struct Env {
    bin_dir: PathBuf,
    log_dir: PathBuf,
    next_port: u16,
    warmup_ms: u64,
    duration_ms: u64,
}

impl Env {
    fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn port(&mut self) -> u16 {
        loop {
            let port = self.next_port;
            self.next_port = if port >= 30_000 { 21_000 } else { port + 1 };
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
}

fn main() {
    let args = Args::parse(std::env::args().skip(1));
    let reps: usize = args.num("reps", 5);
    let secs: f64 = args.num("secs", 1.5);
    let only: Option<Vec<String>> = args
        .get("only")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let out = args
        .get("out")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("BENCHMARKS.md"));
    let command = std::env::var("E2E_COMMAND").unwrap_or_else(|_| {
        std::iter::once("driver".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ")
    });

    let bin_dir = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let log_dir = bin_dir.join("e2e-logs");
    let _ = std::fs::create_dir_all(&log_dir);
    preflight(&bin_dir);

    let mut env = Env {
        bin_dir,
        log_dir,
        next_port: 21_000 + (std::process::id() % 4000) as u16,
        warmup_ms: 500,
        duration_ms: (secs * 1000.0) as u64,
    };
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let benches: Vec<Bench> = benches()
        .into_iter()
        .filter(|b| only.as_ref().is_none_or(|o| selected(b.id, o)))
        .collect();
    preflight_servers(&mut env, &benches);
    let mut results = Results::new();
    for bench in &benches {
        let reps = reps.min(bench.max_reps);
        for rep in 0..reps {
            for server in &bench.servers {
                let result = run_one(&mut env, bench, server);
                let shown = match &result {
                    Ok(v) => bench
                        .metrics
                        .iter()
                        .map(|m| format!("{}={}", m.key, v.get(m.key).unwrap_or(&Value::Null)))
                        .collect::<Vec<_>>()
                        .join(" "),
                    Err(e) => format!("FAILED: {e}"),
                };
                eprintln!(
                    "[{:>5.0}s] row {} run {}/{} {server}: {shown}",
                    started.elapsed().as_secs_f64(),
                    bench.id,
                    rep + 1,
                    reps
                );
                results
                    .entry((bench.id.to_string(), server.to_string()))
                    .or_default()
                    .push(result);
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    let report = Report {
        benches: &benches,
        results: &results,
        reps,
        secs,
        warmup_ms: env.warmup_ms,
        took,
        command: &command,
        root: &root,
        manifest,
        loadavg: loadavg.trim(),
    };
    let markdown = report.markdown();
    std::fs::write(&out, markdown).expect("write BENCHMARKS.md");
    let json: Value = results
        .iter()
        .map(|((bench, server), runs)| {
            let runs: Vec<Value> = runs
                .iter()
                .map(|r| match r {
                    Ok(m) => Value::Object(m.clone()),
                    Err(e) => serde_json::json!({ "error": e }),
                })
                .collect();
            (format!("{bench}/{server}"), Value::Array(runs))
        })
        .collect::<Map<String, Value>>()
        .into();
    let json_path = env.bin_dir.join("e2e-results.json");
    let _ = std::fs::write(&json_path, serde_json::to_string_pretty(&json).unwrap());
    eprintln!(
        "wrote {} (raw results: {}) in {took:.0} s",
        out.display(),
        json_path.display()
    );
}

fn preflight(bin_dir: &Path) {
    let ok = Command::new("taskset")
        .args(["-c", "1", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("needs `taskset` (util-linux) and at least two CPUs (cores 0 and 1)");
        std::process::exit(1);
    }
    for name in ["servers", "loadgen"] {
        if !bin_dir.join(name).exists() {
            eprintln!(
                "{} is missing: build with benches/e2e/run.sh",
                bin_dir.join(name).display()
            );
            std::process::exit(1);
        }
    }
}

/// Lines of a child's stdout, through a channel (so that waiting for one can time out).
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn log_file(env: &Env, name: &str) -> Stdio {
    std::fs::File::create(env.log_dir.join(name))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Start `servers SERVER` on `addr` pinned to `cpus`, stderr to `log`; returns it once it
/// has printed its `ready` line.
fn start_server(
    env: &Env,
    server: &str,
    addr: &str,
    cpus: &str,
    log: &str,
) -> Result<Child, String> {
    let mut srv = Command::new("taskset")
        .args(["-c", cpus])
        .arg(env.bin("servers"))
        .args([server, "--addr", addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(env, log))
        .spawn()
        .map_err(|e| format!("start server: {e}"))?;
    let ready = lines_of(&mut srv).recv_timeout(Duration::from_secs(10));
    if !ready.is_ok_and(|l| l.starts_with("ready")) {
        stop(srv);
        return Err(format!(
            "{server} did not start (see {log} in the log folder)"
        ));
    }
    Ok(srv)
}

/// Every server the selected rows use must start, before any row runs: a peer that fails
/// to build its listener (or a server name the `servers` binary does not know) stops the
/// run at once instead of leaving a column of failures.
fn preflight_servers(env: &mut Env, benches: &[Bench]) {
    let mut names: Vec<&str> = benches.iter().flat_map(|b| b.servers.clone()).collect();
    names.sort_unstable();
    names.dedup();
    for server in names {
        let addr = format!("127.0.0.1:{}", env.port());
        match start_server(env, server, &addr, "0", &format!("preflight-{server}.log")) {
            Ok(srv) => stop(srv),
            Err(e) => {
                eprintln!("preflight: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn run_one(env: &mut Env, bench: &Bench, server: &str) -> Run {
    let addr = format!("127.0.0.1:{}", env.port());
    let tag = format!("{}-{server}", bench.id);
    let cpus = if is_workers(bench) { "0,1" } else { "0" };
    let mut srv = start_server(env, server, &addr, cpus, &format!("{tag}-server.log"))?;
    let pid = srv.id();
    let result = if bench.sub == "idle" || bench.sub == "tls-idle" {
        run_idle(env, bench, server, &addr, pid)
    } else if bench.sub == "zmem" {
        run_mem(env, bench, server, &addr, pid)
    } else {
        run_loadgen(env, bench, server, &addr, pid)
    };
    let crashed = !matches!(srv.try_wait(), Ok(None));
    stop(srv);
    // Let the kernel finish with the old sockets before the next server starts.
    std::thread::sleep(Duration::from_millis(300));
    if crashed {
        return Err("the server exited during the run".into());
    }
    if server.starts_with("wsloop-w") {
        // The bench handler logs `opened A B ...` (sessions each loop opened) per upgrade.
        let log = std::fs::read_to_string(env.log_dir.join(format!("{tag}-server.log")));
        let spread = log.ok().and_then(|log| {
            let line = log.lines().rev().find_map(|l| l.strip_prefix("opened "))?;
            line.split_whitespace()
                .map(|n| n.parse::<u64>().ok().map(Value::from))
                .collect::<Option<Vec<Value>>>()
        });
        return result.map(|mut map| {
            if let Some(spread) = spread {
                map.insert("sessions_per_loop".into(), Value::Array(spread));
            }
            map
        });
    }
    result
}

fn loadgen_command(env: &Env, bench: &Bench, server: &str, addr: &str, pid: u32) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", if is_workers(bench) { "0,1" } else { "1" }])
        .arg(env.bin("loadgen"))
        .arg(bench.sub)
        .args(["--addr", addr, "--server-pid", &pid.to_string()])
        .args(["--warmup-ms", &env.warmup_ms.to_string()])
        .args(["--duration-ms", &env.duration_ms.to_string()])
        .args(&bench.args)
        .stdout(Stdio::piped())
        .stderr(log_file(env, &format!("{}-{server}-loadgen.log", bench.id)));
    if server.starts_with("raw-tcp") {
        cmd.arg("--raw");
    }
    if is_deflate(bench) {
        // The load generator fails the run if the server's answer is not the one expected.
        let expect = if server.starts_with("wsloop-deflate") {
            "deflate"
        } else {
            "plain"
        };
        cmd.args(["--expect", expect]);
    }
    cmd
}

/// The load generator's JSON line, or its error.
fn parse_result(line: &str) -> Run {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("bad loadgen output {line:?}: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!("bad loadgen output {line:?}"));
    };
    match map.get("error") {
        Some(e) => Err(e.as_str().unwrap_or("error").to_string()),
        None => Ok(map),
    }
}

fn run_loadgen(env: &Env, bench: &Bench, server: &str, addr: &str, pid: u32) -> Run {
    let mut child = loadgen_command(env, bench, server, addr, pid)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("start loadgen: {e}"))?;
    let limit = Duration::from_millis(env.warmup_ms + env.duration_ms) + Duration::from_secs(150);
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > limit => {
                stop(child);
                return Err("the load generator timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait for loadgen: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let mut map = parse_result(out.lines().last().unwrap_or(""))?;
    // Rates per second of the server's CPU time: the per-core figure that survives a server
    // not getting its whole core (a load-generator-bound row, or other processes).
    let cpu = map.get("server_cpu").and_then(Value::as_f64).unwrap_or(0.0);
    if cpu > 0.05 {
        for key in ["msgs_per_s", "mb_per_s", "per_s", "deliveries_per_s"] {
            if let Some(v) = map.get(key).and_then(Value::as_f64) {
                map.insert(format!("{key}_per_core"), (v / cpu).into());
            }
        }
    }
    Ok(map)
}

/// Row 6: RSS before, open the connections, settle, RSS after.
fn run_idle(env: &Env, bench: &Bench, server: &str, addr: &str, pid: u32) -> Run {
    std::thread::sleep(Duration::from_millis(200));
    let before = proc_rss_kib(pid).ok_or("cannot read the server's VmRSS")?;
    let mut child = loadgen_command(env, bench, server, addr, pid)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start loadgen: {e}"))?;
    let lines = lines_of(&mut child);
    let first = lines.recv_timeout(Duration::from_secs(150));
    let result = match first {
        Ok(line) if line == "ready" => {
            // Let the server finish whatever it does after a handshake.
            std::thread::sleep(Duration::from_secs(1));
            let after = proc_rss_kib(pid).ok_or("cannot read the server's VmRSS")?;
            drop(child.stdin.take()); // the load generator checks its connections and exits
            let last = lines
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| "no result from the load generator".to_string())?;
            parse_result(&last).map(|mut map| {
                let conns = map.get("conns").and_then(Value::as_f64).unwrap_or(1.0);
                map.insert("rss_before_kib".into(), before.into());
                map.insert("rss_after_kib".into(), after.into());
                map.insert(
                    "kib_per_conn".into(),
                    ((after as f64 - before as f64) / conns).into(),
                );
                map
            })
        }
        Ok(line) => parse_result(&line).and(Err(format!("unexpected output {line:?}"))),
        Err(_) => Err("the load generator did not get its connections open".into()),
    };
    stop(child);
    result
}

/// Row 8c: RSS with no connection; with the connections upgraded and idle; after one
/// message each way on every connection.
fn run_mem(env: &Env, bench: &Bench, server: &str, addr: &str, pid: u32) -> Run {
    use std::io::Write as _;
    std::thread::sleep(Duration::from_millis(200));
    let before = proc_rss_kib(pid).ok_or("cannot read the server's VmRSS")?;
    let mut child = loadgen_command(env, bench, server, addr, pid)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start loadgen: {e}"))?;
    let lines = lines_of(&mut child);
    let result = (|| {
        let rss = || proc_rss_kib(pid).ok_or("cannot read the server's VmRSS".to_string());
        let expect = |want: &str, timeout: u64| -> Result<(), String> {
            match lines.recv_timeout(Duration::from_secs(timeout)) {
                Ok(line) if line == want => Ok(()),
                Ok(line) => parse_result(&line).and(Err(format!("unexpected output {line:?}"))),
                Err(_) => Err(format!("the load generator did not say {want:?}")),
            }
        };
        expect("idle", 150)?;
        std::thread::sleep(Duration::from_secs(1));
        let idle = rss()?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        writeln!(stdin, "go").map_err(|e| format!("write to the load generator: {e}"))?;
        expect("ready", 90)?;
        std::thread::sleep(Duration::from_secs(1));
        let after = rss()?;
        drop(stdin); // the load generator checks its connections and exits
        let last = lines
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "no result from the load generator".to_string())?;
        parse_result(&last).map(|mut map| {
            let conns = map.get("conns").and_then(Value::as_f64).unwrap_or(1.0);
            let per = |kib: u64| (kib as f64 - before as f64) / conns;
            map.insert("rss_before_kib".into(), before.into());
            map.insert("rss_idle_kib".into(), idle.into());
            map.insert("rss_after_kib".into(), after.into());
            map.insert("kib_per_conn_idle".into(), per(idle).into());
            map.insert("kib_per_conn".into(), per(after).into());
            map
        })
    })();
    stop(child);
    result
}

// ----- The report --------------------------------------------------------------------------

/// Closer than this (as a fraction of the best peer's figure) is called a tie.
const TIE: f64 = 0.03;

/// Issue 17's target for row 7a: wsloop's broadcast at least this fraction of the raw TCP
/// fan-out's speed (raw ms ÷ wsloop ms).
const FANOUT_TARGET: f64 = 0.8;

/// The server in the "raw TCP (ceiling)" column of `bench`: row 7a's fan-out, else the echo.
fn ceiling_of(bench: &Bench) -> &'static str {
    if bench.servers.contains(&RAW_FANOUT) {
        RAW_FANOUT
    } else {
        "raw-tcp"
    }
}

enum Standing {
    Leads,
    Tie,
    Behind,
}

/// How wsloop's figure `w` stands against the best peer's `b`.
fn standing(w: f64, b: f64, higher_is_better: bool) -> Standing {
    if (w / b - 1.0).abs() <= TIE {
        Standing::Tie
    } else if (w > b) == higher_is_better {
        Standing::Leads
    } else {
        Standing::Behind
    }
}

struct Report<'a> {
    benches: &'a [Bench],
    results: &'a Results,
    reps: usize,
    secs: f64,
    warmup_ms: u64,
    took: f64,
    command: &'a str,
    root: &'a Path,
    manifest: &'a Path,
    loadavg: &'a str,
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Rate if value >= 1e6 => format!("{:.2} M", value / 1e6),
        Unit::Rate if value >= 1e4 => format!("{:.0} k", value / 1e3),
        Unit::Rate if value >= 1e3 => format!("{:.1} k", value / 1e3),
        Unit::Rate => format!("{value:.0}"),
        Unit::MegabytesPerSecond => format!("{value:.0}"),
        Unit::Micros => format!("{value:.0}"),
        Unit::Millis => format!("{value:.1}"),
        Unit::Kib => format!("{value:.2}"),
        Unit::Bytes => format!("{value:.0}"),
        Unit::Cores => format!("{value:.2}"),
    }
}

impl Report<'_> {
    /// "Who was the bottleneck" for one row and server: the server's and the load
    /// generator's CPU, then what everything else took of core 0 / core 1.
    fn bottleneck(&self, bench: &str, server: &str) -> Option<String> {
        let get = |k| self.median(bench, server, k);
        let (a, b) = (get("server_cpu")?, get("loadgen_cpu")?);
        let (c0, c1) = (get("core0_busy")?, get("core1_busy")?);
        Some(format!(
            "{a:.2} / {b:.2} · {:.2} / {:.2}",
            (c0 - a).max(0.0),
            (c1 - b).max(0.0)
        ))
    }

    fn runs(&self, bench: &str, server: &str) -> &[Run] {
        self.results
            .get(&(bench.to_string(), server.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn values(&self, bench: &str, server: &str, key: &str) -> Vec<f64> {
        self.runs(bench, server)
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter_map(|m| m.get(key).and_then(Value::as_f64))
            .collect()
    }

    fn median(&self, bench: &str, server: &str, key: &str) -> Option<f64> {
        median(&mut self.values(bench, server, key))
    }

    fn failures(&self, bench: &str, server: &str) -> Vec<&str> {
        self.runs(bench, server)
            .iter()
            .filter_map(|r| r.as_ref().err().map(String::as_str))
            .collect()
    }

    fn best_peer(&self, bench: &Bench, m: &Metric) -> Option<(f64, &'static str)> {
        PEERS
            .iter()
            .filter_map(|p| self.median(bench.id, p, m.key).map(|v| (v, *p)))
            .reduce(|a, b| {
                let b_better = if m.higher_is_better {
                    b.0 > a.0
                } else {
                    b.0 < a.0
                };
                if b_better {
                    b
                } else {
                    a
                }
            })
    }

    /// Row 7a against its ceiling: wsloop's median time, the raw TCP fan-out's, and the
    /// second divided by the first (1.0: wsloop as fast as the kernel allows here).
    fn fanout_ceiling(&self, bench: &Bench) -> Option<(f64, f64, f64)> {
        if !bench.servers.contains(&RAW_FANOUT) {
            return None;
        }
        let m = bench.metrics.first()?;
        let w = self.median(bench.id, "wsloop", m.key)?;
        let raw = self.median(bench.id, RAW_FANOUT, m.key)?;
        (w > 0.0).then_some((w, raw, raw / w))
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        let rustc = command_output("rustc", &["-V"]);
        let commit = command_output(
            "git",
            &[
                "-C",
                &self.root.to_string_lossy(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
        );
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let (cpu, cpus) = cpu_model();
        let _ = writeln!(md, "# wsloop end-to-end benchmarks\n");
        let _ = writeln!(
            md,
            "<!-- Generated by benches/e2e (the driver binary); do not edit by hand. -->\n"
        );
        let _ = writeln!(
            md,
            "Generated {date} by `{}` (the whole run took {:.0} s), from the commit `{commit}` \
             plus whatever the working tree held then.\n",
            self.command, self.took
        );
        let _ = writeln!(
            md,
            "Machine: {cpu}, {cpus} logical CPUs; Linux {}; {rustc}; load average at the start: {}.\n",
            kernel.trim(),
            self.loadavg
        );
        let split = self.benches.iter().any(|b| !is_workers(b));
        let shared = self.benches.iter().any(is_workers);
        if !split {
            let _ = writeln!(
                md,
                "Row 9 only: server and load generator share cores 0 and 1 (see its section). \
                 Each figure is the median of {} runs (servers interleaved run by run); each \
                 run starts a fresh server, warms up {:.1} s, then measures {:.1} s.\n",
                self.reps,
                self.warmup_ms as f64 / 1e3,
                self.secs
            );
        }
        if split {
            let _ = writeln!(
            md,
            "Every server runs pinned to core 0 (`taskset -c 0`: one core for the whole process, \
             threads and runtime included) and the load generator to core 1, so the figures \
             are per-core efficiency. Each figure is the median of {} runs (at most 3 for rows 6, 7a, 7c and 8c; \
             servers interleaved run by run); each run starts a fresh server, warms up {:.1} s, then \
             measures {:.1} s. In each cell, the number in brackets is the figure divided by \
             the best peer's (peers: tungstenite, tokio-tungstenite, fastwebsockets, \
             tokio-websockets); for µs, \
             ms and KiB lower is better, for the rest higher is better. ✔ marks a row wsloop \
             leads, ≈ a tie (within 3%), ✘ one where a peer is better. The raw TCP echo is the ceiling (no \
             WebSocket at all), not a peer; in row 7a that column is the raw TCP fan-out, the \
             broadcast's ceiling (see \"What each row does\"). The lines \"per server CPU-second\" divide each \
             run's rate by the share of its core the server actually used over the window \
             (from `/proc/PID/stat`): the per-core figure that still holds when a server did \
             not get its whole core, because the load generator was the limit (row 5) or \
             because other processes on this shared machine took part of core 0 (see \
             \"Who was the bottleneck\").{}\n",
            self.reps,
            self.warmup_ms as f64 / 1e3,
            self.secs,
            if shared {
                " Row 9 is the exception: there the server and the load generator both run \
                 on cores 0 and 1 (`taskset -c 0,1` each), sharing the machine; see its section."
            } else {
                ""
            }
        );
        }
        if self.benches.iter().any(|b| !own_section(b)) {
            self.table(&mut md);
            self.verdict(&mut md);
            self.versions(&mut md);
            self.checks(&mut md);
        }
        self.deflate(&mut md);
        self.workers(&mut md);
        self.tls(&mut md);
        if split {
            self.method(&mut md);
        }
        self.every_run(&mut md);
        md
    }

    fn table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "| # | benchmark | unit | wsloop | tungstenite | tokio-tungstenite | fastwebsockets | tokio-websockets | raw TCP (ceiling) | wsloop vs best peer |"
        );
        let _ = writeln!(md, "|---|---|---|--:|--:|--:|--:|--:|--:|---|");
        for bench in self.benches.iter().filter(|b| !own_section(b)) {
            for (i, m) in bench.metrics.iter().enumerate() {
                let title = if i == 0 { bench.title.as_str() } else { "″" };
                let best = self.best_peer(bench, m);
                let mut cells = Vec::new();
                for server in SERVERS {
                    let server = if server == "raw-tcp" {
                        ceiling_of(bench)
                    } else {
                        server
                    };
                    if !bench.servers.contains(&server) {
                        cells.push("n/a".to_string());
                        continue;
                    }
                    let failed = self.failures(bench.id, server);
                    let cell = match self.median(bench.id, server, m.key) {
                        None if !failed.is_empty() => "FAILED".to_string(),
                        None => "–".to_string(),
                        Some(v) => {
                            let mut cell = format_value(v, m.unit);
                            if let Some((b, _)) = best.filter(|(b, _)| *b > 0.0) {
                                let _ = write!(cell, " ({:.2}×)", v / b);
                            }
                            if !failed.is_empty() {
                                let runs = self.runs(bench.id, server).len();
                                let _ = write!(cell, " ({} of {runs} failed)", failed.len());
                            }
                            cell
                        }
                    };
                    cells.push(cell);
                }
                let verdict = match (self.median(bench.id, "wsloop", m.key), best) {
                    (Some(w), Some((b, peer))) if b > 0.0 => {
                        let mark = match standing(w, b, m.higher_is_better) {
                            Standing::Leads => "✔",
                            Standing::Tie => "≈",
                            Standing::Behind => "✘",
                        };
                        format!("{mark} {:.2}× {peer}", w / b)
                    }
                    (Some(_), None) if bench.sub == "topic" => "no peer has topics".to_string(),
                    (Some(_), None) => match self.fanout_ceiling(bench) {
                        Some((_, _, ratio)) => format!(
                            "no peer has broadcast; {} raw fan-out ÷ wsloop time {ratio:.2}× \
                             (target ≥ {FANOUT_TARGET:.1})",
                            if ratio >= FANOUT_TARGET { "✔" } else { "✘" }
                        ),
                        None => "no peer has broadcast".to_string(),
                    },
                    _ => "–".to_string(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {title} | {} | {} | {verdict} |",
                    if i == 0 { bench.id } else { "" },
                    m.label,
                    cells.join(" | ")
                );
            }
        }
        md.push('\n');
    }

    fn verdict(&self, md: &mut String) {
        let mut leads = Vec::new();
        let mut ties = Vec::new();
        let mut behind = Vec::new();
        for bench in self.benches.iter().filter(|b| !own_section(b)) {
            for m in &bench.metrics {
                let (Some(w), Some((b, peer))) = (
                    self.median(bench.id, "wsloop", m.key),
                    self.best_peer(bench, m),
                ) else {
                    continue;
                };
                let name = format!("{} {} ({:.2}× {peer})", bench.id, m.label, w / b);
                match standing(w, b, m.higher_is_better) {
                    Standing::Leads => leads.push(name),
                    Standing::Tie => ties.push(name),
                    Standing::Behind => behind.push(name),
                }
            }
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join("; ")
            }
        };
        let _ = writeln!(
            md,
            "**wsloop leads** (by more than {:.0}% over the best peer): {}.\n\n\
             **Ties** (within {:.0}%, under this machine's run-to-run noise): {}.\n\n\
             **wsloop is behind**: {}.\n",
            TIE * 100.0,
            list(&leads),
            TIE * 100.0,
            list(&ties),
            list(&behind)
        );
        for bench in self.benches.iter().filter(|b| !own_section(b)) {
            if let Some((w, raw, ratio)) = self.fanout_ceiling(bench) {
                let _ = writeln!(
                    md,
                    "**Broadcast against its ceiling** (row {}): wsloop {} ms, the raw TCP \
                     fan-out (same sockets, same 64 bytes, no WebSocket) {} ms: wsloop runs at \
                     {ratio:.2}× the ceiling's speed ({}; target ≥ {FANOUT_TARGET:.1}).\n",
                    bench.id,
                    format_value(w, Unit::Millis),
                    format_value(raw, Unit::Millis),
                    if ratio >= FANOUT_TARGET {
                        "✔ met"
                    } else {
                        "✘ missed"
                    }
                );
            }
        }
    }

    fn versions(&self, md: &mut String) {
        let lock = std::fs::read_to_string(self.manifest.join("Cargo.lock")).unwrap_or_default();
        let versions = locked_versions(&lock);
        let _ = writeln!(md, "## Versions\n");
        let _ = writeln!(md, "| crate | version | role |");
        let _ = writeln!(md, "|---|---|---|");
        for (name, role) in [
            ("wsloop", "this repository (path dependency)"),
            ("tungstenite", "peer: one thread per connection, blocking"),
            ("tokio-tungstenite", "peer: tokio, current-thread runtime"),
            (
                "fastwebsockets",
                "peer: tokio current-thread + hyper upgrade",
            ),
            (
                "tokio-websockets",
                "peer: tokio current-thread, the crate's echo example",
            ),
            ("tokio", "runtime of the async peers"),
            ("hyper", "HTTP upgrade for fastwebsockets"),
            ("hyper-util", ""),
            (
                "futures-util",
                "tokio-tungstenite's and tokio-websockets' Stream/Sink",
            ),
            ("mio", "wsloop, the raw TCP echo and the load generator"),
        ] {
            let version = versions.get(name).map(String::as_str).unwrap_or("?");
            let _ = writeln!(md, "| {name} | {version} | {role} |");
        }
        md.push('\n');
    }

    fn checks(&self, md: &mut String) {
        let _ = writeln!(md, "## Who was the bottleneck\n");
        let _ = writeln!(
            md,
            "Medians over the measured windows, as shares of one core: the server's own CPU \
             time (from `/proc/PID/stat`, all threads) / the load generator's (`getrusage`), \
             then, after the `·`, what everything else took of core 0 / core 1 (the core's \
             busy time in `/proc/stat`, softirq included, less our process's share; on this \
             shared machine other people's builds and fuzzers run there too, and loopback \
             softirq work not charged to our processes lands here as well). A server near \
             1.00 was the limit; a load generator near 1.00 with the server well below means \
             the figure is the load generator's ceiling; large `others` mean the run competed \
             for its core, which the interleaving and the ratios only partly cancel.\n"
        );
        let _ = writeln!(
            md,
            "| # | wsloop | tungstenite | tokio-tungstenite | fastwebsockets | tokio-websockets | raw TCP |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|");
        for bench in self.benches {
            if bench.sub == "idle"
                || bench.sub == "fanout"
                || bench.sub == "topic"
                || own_section(bench)
            {
                continue;
            }
            let cells: Vec<String> = SERVERS
                .iter()
                .map(|s| {
                    self.bottleneck(bench.id, s)
                        .unwrap_or_else(|| "–".to_string())
                })
                .collect();
            let _ = writeln!(md, "| {} | {} |", bench.id, cells.join(" | "));
        }
        md.push('\n');
        let _ = writeln!(
            md,
            "Load generator check: on every throughput row the raw TCP echo (same load \
             generator, no WebSocket) must beat every WebSocket server, or the load generator \
             would be the limit.\n"
        );
        for bench in self.benches.iter().filter(|b| !own_section(b)) {
            let Some(m) = bench.metrics.first() else {
                continue;
            };
            if !m.higher_is_better || !bench.servers.contains(&"raw-tcp") {
                continue;
            }
            let Some(raw) = self.median(bench.id, "raw-tcp", m.key) else {
                continue;
            };
            let best_ws = WEBSOCKET
                .iter()
                .filter_map(|s| self.median(bench.id, s, m.key).map(|v| (v, *s)))
                .reduce(|a, b| if b.0 > a.0 { b } else { a });
            if let Some((ws, who)) = best_ws {
                let _ = writeln!(
                    md,
                    "- row {}: raw TCP {} vs the best WebSocket server ({who}) {}: {:.2}× {}",
                    bench.id,
                    format_value(raw, m.unit),
                    format_value(ws, m.unit),
                    raw / ws,
                    if raw > ws * 1.1 {
                        "✔"
                    } else {
                        "⚠ within 10%: the load generator is at or near its own limit here \
                         (on loopback the sender's kernel also does the receiver's TCP work), \
                         so the per-core line is the one that ranks the servers"
                    }
                );
            }
        }
        md.push('\n');
    }

    fn method(&self, md: &mut String) {
        let _ = writeln!(md, "## What each row does\n");
        let _ = writeln!(
            md,
            "The load generator (`benches/e2e/src/bin/loadgen.rs`) is one thread on one \
             `mio::Poll`. Every frame it sends is encoded and masked before the run: a ring of \
             distinct binary frames (payloads differ in every byte), written in batches \
             straight from that memory. It checks each reply byte for byte against the frame \
             a correct server sends back (unmasked, same payload, in order), so a server that \
             drops, reorders or corrupts a message fails the run instead of scoring. Servers: \
             `benches/e2e/src/bin/servers.rs`; each echoes any data message on any path.\n"
        );
        let _ = writeln!(
            md,
            "- **1, 2, 2b, 2c**: each connection keeps N messages outstanding (a reply lets the \
             next one go); messages/s = replies received in the window / its length (2b: MB/s, \
             payload bytes echoed per second, 10^6 bytes). With 16 KiB messages the load \
             generator, whose kernel also runs the receiving side of every byte it sends over \
             loopback, tops out close to the raw echo. 2b (64 KiB × 10 × 4) and 2c (4 KiB × \
             100 × 16) are the mid-size pipelined loads of issue 17.\n\
             - **3**: one connection, one 16 MiB binary message at a time; MB/s = payload \
             bytes echoed back per second (10^6 bytes).\n\
             - **4**: 50 connections, each with one 128 B message outstanding; the round-trip \
             time of every reply in the window, from the write of the message to the last \
             byte of its echo. With 50 in flight this is a closed loop: the figure includes \
             queueing behind the other 49.\n\
             - **5**: 32 clients, each repeating: TCP connect, upgrade, send Close 1000, read \
             the server's Close and wait for the server to close TCP, close. On loopback the \
             kernel runs the TCP handshake in the connecting process, so the load generator \
             saturates first here: handshakes per server CPU-second (handshakes/s ÷ the \
             server's core share) is the per-core figure that still separates the servers.\n\
             - **6**: the server's `VmRSS` (from `/proc/PID/status`) with no connection, then \
             with 10,000 upgraded idle connections (one second after the last opened); the \
             difference ÷ 10,000. Kernel socket buffers are not in RSS. The load generator \
             then checks that every connection is still open.\n\
             - **7a**: 10,000 sessions; one of them (path `/ctl`) sends a 64 B message, which \
             the wsloop bench server broadcasts to every session (itself included) with \
             `Context::broadcast`; time from that write until the last of the 10,000 has the \
             whole message. One warm-up round, then the median of 10. Its ceiling, in the \
             same run and with the same client code (`loadgen fanout --raw`), is `servers \
             raw-tcp-fanout`: a mio loop on one thread with the same 10,000 TCP sockets and no \
             WebSocket; each connection's first byte is echoed (the load generator's \
             \"open\" probe), and every byte after it is written, as read, to every \
             connection; the load generator's connection 0 sends 64 bytes. Its time is what \
             the kernel and the client need to move 64 bytes to 10,000 sockets here; the \
             verdict column gives raw fan-out ms ÷ wsloop ms (1.00: as fast as the ceiling; \
             issue 17's target ≥ {FANOUT_TARGET:.1}).\n\
             - **7b**: the same with 1,000 sessions, continuously: the control session keeps \
             16 broadcasts outstanding (a broadcast is done when all 1,000 have it); \
             deliveries/s = broadcasts/s × 1,000.\n\
             - **7c**: 10,000 sessions, 1,000 of them subscribed to one topic \
             (`Context::subscribe` in `on_open`); a session outside it (path `/pub`) sends a \
             64 B message, which the server publishes to the topic (`Context::publish`); time \
             from that write until the last of the 1,000 members has it, the other 9,000 \
             getting nothing (checked). One warm-up round, then the median of 10.\n"
        );
        let _ = writeln!(
            md,
            "Reproduce with `bash benches/e2e/run.sh` from the repository root (options: \
             `--reps N`, `--secs S`, `--only 1,4,7a`). It builds `benches/e2e` (a package \
             with its own workspace, so the main crate's `cargo test` never compiles the \
             peers) into `target/e2e`, and leaves each run's raw figures in \
             `target/e2e/release/e2e-results.json` and the servers' and load generator's \
             stderr in `target/e2e/release/e2e-logs/`.\n"
        );
    }

    /// Row 8: wsloop with permessage-deflate against wsloop without it, in its own table.
    /// Row 10: wsloop's `tls` feature against tokio-tungstenite behind tokio-rustls.
    fn tls(&self, md: &mut String) {
        let rows: Vec<&Bench> = self.benches.iter().filter(|b| is_tls(b)).collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(md, "## TLS (row 10)\n");
        let _ = writeln!(
            md,
            "wsloop with its `tls` feature (`servers wsloop-tls`: `ServerBuilder::tls`) against \
             tokio-tungstenite behind tokio-rustls' `TlsAcceptor` on the current-thread \
             runtime (`servers tokio-tungstenite-tls`), pinned as rows 1-8. Both use rustls \
             over `ring` with its default versions and suites (TLS 1.3 here), ALPN \
             `http/1.1`, and a self-signed ECDSA P-256 certificate each makes at start. The \
             load generator (`src/tls_load.rs`) speaks rustls too and checks the decrypted \
             replies byte for byte as in rows 1-3; it checks the handshake signatures, not \
             the chain, and never resumes a session, so every handshake of 10c is a full \
             one. The last column is wsloop's figure divided by tokio-tungstenite's (✔ \
             wsloop ahead, ≈ within 3%, ✘ behind; for KiB lower is better). Row 10d's \
             memory includes rustls' state per connection (wsloop caps the encrypted output \
             rustls may buffer per connection at 64 KiB).\n"
        );
        let _ = writeln!(
            md,
            "| # | benchmark | figure | wsloop-tls | tokio-tungstenite-tls | wsloop vs peer |"
        );
        let _ = writeln!(md, "|---|---|---|--:|--:|---|");
        for bench in &rows {
            for (i, m) in bench.metrics.iter().enumerate() {
                let title = if i == 0 { bench.title.as_str() } else { "″" };
                let cell = |server: &str| {
                    let failed = self.failures(bench.id, server);
                    match self.median(bench.id, server, m.key) {
                        None if !failed.is_empty() => "FAILED".to_string(),
                        None => "–".to_string(),
                        Some(v) => format_value(v, m.unit),
                    }
                };
                let w = self.median(bench.id, TLS_SERVERS[0], m.key);
                let p = self.median(bench.id, TLS_SERVERS[1], m.key);
                let versus = match (w, p) {
                    (Some(w), Some(p)) if p > 0.0 => {
                        let mark = match standing(w, p, m.higher_is_better) {
                            Standing::Leads => "✔",
                            Standing::Tie => "≈",
                            Standing::Behind => "✘",
                        };
                        format!("{mark} {:.2}×", w / p)
                    }
                    _ => "–".to_string(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {title} | {} | {} | {} | {versus} |",
                    if i == 0 { bench.id } else { "" },
                    m.label,
                    cell(TLS_SERVERS[0]),
                    cell(TLS_SERVERS[1]),
                );
            }
        }
        md.push('\n');
    }

    fn deflate(&self, md: &mut String) {
        let rows: Vec<&Bench> = self.benches.iter().filter(|b| is_deflate(b)).collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(md, "## permessage-deflate (row 8)\n");
        let _ = writeln!(
            md,
            "wsloop with permessage-deflate (RFC 7692, cargo feature `deflate`) against wsloop \
             without it, same load, same run: `servers wsloop` (no `deflate` in its config, so \
             it declines the offer), `servers wsloop-deflate` (`ServerConfig.deflate = \
             Some(DeflateConfig::default())`, which is `{:?}`) and `servers \
             wsloop-deflate-low` (`DeflateConfig::low_memory()`, which is `{:?}`). The \
             payloads are JSON order notifications (ids, names, e-mail and postal addresses, \
             timestamps, items, prices, tracking numbers, status events, an opaque cursor; 64 \
             distinct messages per size, so a 32 KiB window never holds a copy of the message \
             being compressed, only earlier messages like it), sent as text. In brackets: the \
             figure divided by wsloop's without deflate in the same run. Bytes on the wire \
             are the frame bytes the load generator wrote and read over the measured window \
             (headers and masking keys included, TCP/IP not), divided by the messages \
             echoed.\n",
            DeflateConfig::default(),
            DeflateConfig::low_memory()
        );
        let _ = writeln!(
            md,
            "| # | benchmark | figure | {} |",
            DEFLATE_LABELS.join(" | ")
        );
        let _ = writeln!(md, "|---|---|---|--:|--:|--:|");
        for bench in &rows {
            for (i, m) in bench.metrics.iter().enumerate() {
                let title = if i == 0 { bench.title.as_str() } else { "″" };
                let base = self.median(bench.id, "wsloop", m.key);
                let cells: Vec<String> = DEFLATE_SERVERS
                    .iter()
                    .map(|server| {
                        let failed = self.failures(bench.id, server);
                        match self.median(bench.id, server, m.key) {
                            None if !failed.is_empty() => "FAILED".to_string(),
                            None => "–".to_string(),
                            Some(v) => {
                                let mut cell = format_value(v, m.unit);
                                if let Some(b) = base.filter(|b| *b > 0.0 && *server != "wsloop") {
                                    let _ = write!(cell, " ({:.2}×)", v / b);
                                }
                                if !failed.is_empty() {
                                    let runs = self.runs(bench.id, server).len();
                                    let _ = write!(cell, " ({} of {runs} failed)", failed.len());
                                }
                                cell
                            }
                        }
                    })
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {title} | {} | {} |",
                    if i == 0 { bench.id } else { "" },
                    m.label,
                    cells.join(" | ")
                );
            }
        }
        md.push('\n');

        let _ = writeln!(
            md,
            "What each server answered to the load generator's offer \
            `Sec-WebSocket-Extensions: {}`:\n",
            wsloop_e2e::pmd::OFFER
        );
        for (server, label) in DEFLATE_SERVERS.iter().zip(DEFLATE_LABELS) {
            let answer = rows
                .iter()
                .flat_map(|b| self.runs(b.id, server))
                .filter_map(|r| r.as_ref().ok())
                .find_map(|m| m.get("extension"))
                .map(|v| match v.as_str() {
                    Some(a) => format!("`{a}`"),
                    None => "no extension header (declined)".to_string(),
                })
                .unwrap_or_else(|| "–".to_string());
            let _ = writeln!(md, "- {label}: {answer}");
        }
        md.push('\n');

        let echo_rows: Vec<&&Bench> = rows.iter().filter(|b| b.sub == "zecho").collect();
        if !echo_rows.is_empty() {
            let _ = writeln!(
                md,
                "Who was the bottleneck (medians, as shares of one core, read as in \
                 \"Who was the bottleneck\" of the full report: server CPU / load generator \
                 CPU · what everything else took of core 0 / core 1), and the mean size of the \
                 frames the load generator sends (compressed once before the run).{}\n",
                if echo_rows.iter().any(|b| {
                    self.median(b.id, "wsloop", "server_cpu")
                        .is_some_and(|c| c < 0.9)
                }) {
                    " Where a server used well under its whole core (the load generator, the \
                     loopback's kernel work or other processes were the limit), compare the \
                     per-CPU-second line rather than messages/s."
                } else {
                    ""
                }
            );
            let _ = writeln!(md, "| # | {} |", DEFLATE_LABELS.join(" | "));
            let _ = writeln!(md, "|---|--:|--:|--:|");
            for bench in &echo_rows {
                let cells: Vec<String> = DEFLATE_SERVERS
                    .iter()
                    .map(|s| {
                        let frames = self.median(bench.id, s, "c2s_frame_mean");
                        match (self.bottleneck(bench.id, s), frames) {
                            (Some(cell), Some(f)) => format!("{cell}; frames of {f:.0} B"),
                            _ => "–".to_string(),
                        }
                    })
                    .collect();
                let _ = writeln!(md, "| {} | {} |", bench.id, cells.join(" | "));
            }
            md.push('\n');
        }

        let lock = std::fs::read_to_string(self.manifest.join("Cargo.lock")).unwrap_or_default();
        let versions = locked_versions(&lock);
        let version = |name: &str| versions.get(name).cloned().unwrap_or_else(|| "?".into());
        let _ = writeln!(
            md,
            "DEFLATE on both sides: flate2 {} over zlib-rs {} (the library's codec, and the \
             load generator's own, independent permessage-deflate in \
             `benches/e2e/src/pmd.rs`).\n",
            version("flate2"),
            version("zlib-rs")
        );
        let _ = writeln!(
            md,
            "- **8a, 8b**: as row 1 (100 connections, 16 messages outstanding on each), with \
             JSON text of 1 KiB and 16 KiB. The load generator offers \
             `permessage-deflate; client_no_context_takeover; client_max_window_bits`, checks \
             the `101`'s answer (the run fails if the server with deflate declines or the \
             one without accepts), compresses each of its 64 messages once (raw DEFLATE, \
             level 6, sync flush, the `00 00 ff ff` tail removed, RSV1 set; the window the \
             server allowed) and sends them as masked frames like the other rows. It parses \
             every reply, inflates it with the connection's own inflater (the server's \
             context carried over unless it answered `server_no_context_takeover`) and \
             compares it with the text sent, so a server that breaks a message fails the \
             run. With deflate the server inflates, validates UTF-8, compresses; the load \
             generator only inflates.\n\
             - **8c**: the server's `VmRSS` with no connection; with 2,000 connections \
             upgraded (extension agreed) and idle, one second after the last opened; then \
             after each connection has sent one 1 KiB JSON message and received its \
             compressed echo (checked), one second after the last. Each difference ÷ 2,000. \
             The library keeps a compressor or inflater for the connection's lifetime only \
             where its context is taken over (`src/deflate.rs`); otherwise it borrows one \
             from a small per-thread pool for the one message. With the default config and \
             this offer (which announces `client_no_context_takeover`) that is the server's \
             compressor only; with `low_memory()`, nothing. A browser offer without \
             `client_no_context_takeover` would add a kept inflater per connection. Kernel \
             socket buffers are not in RSS.\n"
        );
    }

    /// Row 9's per-thread CPU shares: for each thread of the first successful run (in
    /// thread-id order, the main thread first), its name and the median share over the runs.
    fn thread_shares(&self, bench: &str, server: &str) -> Vec<(String, f64)> {
        let runs: Vec<&Vec<Value>> = self
            .runs(bench, server)
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter_map(|m| m.get("server_threads").and_then(Value::as_array))
            .collect();
        let Some(first) = runs.first() else {
            return Vec::new();
        };
        (0..first.len())
            .filter_map(|i| {
                let name = first[i].get(0)?.as_str()?.to_string();
                let mut shares: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.get(i)?.get(1)?.as_f64())
                    .collect();
                Some((name, median(&mut shares)?))
            })
            .collect()
    }

    /// Row 9: wsloop's sessions per loop over the runs, e.g. `50 / 50 (3 runs), 37 / 63`.
    fn sessions_per_loop(&self, bench: &str, server: &str) -> Option<String> {
        let mut spreads: Vec<(String, usize)> = Vec::new();
        for m in self
            .runs(bench, server)
            .iter()
            .filter_map(|r| r.as_ref().ok())
        {
            let Some(counts) = m.get("sessions_per_loop").and_then(Value::as_array) else {
                continue;
            };
            let spread = counts
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(" / ");
            match spreads.iter_mut().find(|(s, _)| *s == spread) {
                Some((_, n)) => *n += 1,
                None => spreads.push((spread, 1)),
            }
        }
        spreads.sort_by_key(|s| std::cmp::Reverse(s.1));
        let shown: Vec<String> = spreads
            .into_iter()
            .map(|(s, n)| if n > 1 { format!("{s} ({n} runs)") } else { s })
            .collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    }

    /// Row 9: threads per server, server and load generator sharing cores 0 and 1.
    fn workers(&self, md: &mut String) {
        let echo = self.benches.iter().find(|b| b.id == "9");
        let fanout = self.benches.iter().find(|b| b.id == "9b");
        if echo.is_none() && fanout.is_none() {
            return;
        }
        let _ = writeln!(md, "## Threads per server (row 9)\n");
        if let Some(bench) = echo {
            self.workers_echo(bench, md);
        }
        if let Some(bench) = fanout {
            self.workers_fanout(bench, md);
        }
        let _ = writeln!(
            md,
            "Reproduce with `bash benches/e2e/run.sh --only 9` (options: `--reps N`, \
             `--secs S`, `--out PATH`). Raw figures, per-thread shares included: \
             `target/e2e/release/e2e-results.json`.\n"
        );
    }

    /// Row 9b: the 10,000-session broadcast of row 7a with 1 and 2 loops on shared cores.
    fn workers_fanout(&self, bench: &Bench, md: &mut String) {
        let id = bench.id;
        let get = |server: &str, key: &str| self.median(id, server, key);
        let _ = writeln!(
            md,
            "### Broadcast to 10,000 sessions with 1 and 2 loops (row 9b)\n\n\
             Row 7a's load (10,000 sessions, one 64 B message broadcast to all, the time until \
             the last client has it; median of 10 rounds per run, then the median over runs) \
             against `servers wsloop-w1` and `wsloop-w2`, pinned like row 9: server and load \
             generator both on cores 0 and 1. The control session's loop encodes the frame \
             once and hands it to the other loop, so each loop sends to its own sessions. \
             Server CPU is the server's share over the rounds, in cores (coarse: the kernel \
             counts in 10 ms ticks).\n"
        );
        let _ = writeln!(
            md,
            "| server | loops | ms until every client has it | fastest round (ms) | \
             server CPU (cores) | sessions per loop |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|---|");
        let cell =
            |v: Option<f64>, unit: Unit| v.map_or("–".to_string(), |v| format_value(v, unit));
        for (server, label, loops) in [
            ("wsloop-w1", "wsloop, `workers(1)`", 1),
            ("wsloop-w2", "wsloop, `workers(2)`", 2),
        ] {
            let failed = self.failures(id, server);
            let time = if get(server, "p50_ms").is_none() && !failed.is_empty() {
                "FAILED".to_string()
            } else {
                cell(get(server, "p50_ms"), Unit::Millis)
            };
            let _ = writeln!(
                md,
                "| {label} | {loops} | {time} | {} | {} | {} |",
                cell(get(server, "min_ms"), Unit::Millis),
                cell(get(server, "server_cpu"), Unit::Cores),
                self.sessions_per_loop(id, server)
                    .unwrap_or_else(|| "–".to_string()),
            );
        }
        md.push('\n');
        if let (Some(a), Some(b)) = (get("wsloop-w1", "p50_ms"), get("wsloop-w2", "p50_ms")) {
            let _ = writeln!(
                md,
                "2 loops ÷ 1 loop: {:.2}× the time. The 50 ms target of row 7a is {} with 2 \
                 loops on this machine ({} ms).\n",
                b / a,
                if b <= 50.0 { "met" } else { "missed" },
                format_value(b, Unit::Millis)
            );
        }
    }

    /// Row 9 (echo): threads per server, server and load generator sharing cores 0 and 1.
    fn workers_echo(&self, bench: &Bench, md: &mut String) {
        let id = bench.id;
        let get = |server: &str, key: &str| self.median(id, server, key);
        let lock = std::fs::read_to_string(self.manifest.join("Cargo.lock")).unwrap_or_default();
        let versions = locked_versions(&lock);
        let version = |name: &str| versions.get(name).cloned().unwrap_or_else(|| "?".into());
        let _ = writeln!(
            md,
            "Row 1's load (100 connections, 64 B binary messages, 16 in flight on each, every \
             reply checked byte for byte) against servers with one and with two threads doing \
             the work: `servers wsloop-w1` and `wsloop-w2`, the wsloop bench server built with \
             `ServerBuilder::workers(n)` and run with `Server::run_each` (loop 0 accepts and \
             hands each connection to the loop with the fewest); `servers \
             tokio-tungstenite-mt1` and `-mt2`, the tokio-tungstenite server of the other rows \
             (tokio-tungstenite {}) on tokio {}'s multi-thread runtime with \
             `worker_threads(n)` (the accept loop runs in `block_on` on the main thread, the \
             connections' tasks on the workers); and, for reference, `servers raw-tcp-w1` and \
             `-w2`, the raw TCP echo with one mio loop per thread, each thread on its own \
             `SO_REUSEPORT` listener (the kernel spreads connections by address hash).\n",
            version("tokio-tungstenite"),
            version("tokio")
        );
        let _ = writeln!(
            md,
            "**Pinned unlike every other row:** the server runs on cores 0 and 1 \
             (`taskset -c 0,1`) and so does the load generator (`taskset -c 0,1`, still one \
             thread): they share the two cores, with whatever else runs on this machine. So \
             messages/s here is not per-core efficiency: it is what the two cores do when the \
             server and the load generator split them, and the load generator needs CPU for \
             every message too. Server CPU is in cores (1.00 = one whole core; with two threads \
             it can exceed 1), from `/proc/PID/stat` over the window, all threads; messages \
             per server CPU-second = messages/s ÷ that. \"Everything else\" = the busy time of \
             cores 0 and 1 (`/proc/stat`, softirq included) less the server's and the load \
             generator's: other processes on this shared machine, and loopback softirq work \
             charged to neither. Per thread: each server thread's CPU over the window (threads \
             under 0.01 core left out; `servers` is the main thread: wsloop's loop 0, tokio's \
             `block_on` with the accept loop). Sessions per loop: what wsloop's bench handler \
             counted in `on_open` on each loop.\n"
        );
        let _ = writeln!(
            md,
            "| server | threads | messages/s | server CPU (cores) | load generator CPU (cores) \
             | everything else (cores) | messages per server CPU-second | per thread (cores) |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|---|");
        let cell = |server: &str, value: Option<f64>, unit: Unit| {
            let failed = self.failures(id, server);
            match value {
                None if !failed.is_empty() => "FAILED".to_string(),
                None => "–".to_string(),
                Some(v) => {
                    let mut cell = format_value(v, unit);
                    if !failed.is_empty() {
                        let runs = self.runs(id, server).len();
                        let _ = write!(cell, " ({} of {runs} failed)", failed.len());
                    }
                    cell
                }
            }
        };
        let others = |server: &str| {
            Some(
                (get(server, "core0_busy")? + get(server, "core1_busy")?
                    - get(server, "server_cpu")?
                    - get(server, "loadgen_cpu")?)
                .max(0.0),
            )
        };
        for (server, label, threads) in WORKER_SERVERS {
            let mut per_thread: Vec<String> = self
                .thread_shares(id, server)
                .into_iter()
                .filter(|(_, share)| *share >= 0.01)
                .map(|(name, share)| format!("{name} {share:.2}"))
                .collect();
            if let Some(spread) = self.sessions_per_loop(id, server) {
                per_thread.push(format!("sessions per loop: {spread}"));
            }
            let _ = writeln!(
                md,
                "| {label} | {threads} | {} | {} | {} | {} | {} | {} |",
                cell(server, get(server, "msgs_per_s"), Unit::Rate),
                cell(server, get(server, "server_cpu"), Unit::Cores),
                cell(server, get(server, "loadgen_cpu"), Unit::Cores),
                cell(server, others(server), Unit::Cores),
                cell(server, get(server, "msgs_per_s_per_core"), Unit::Rate),
                if per_thread.is_empty() {
                    "–".to_string()
                } else {
                    per_thread.join("; ")
                }
            );
        }
        md.push('\n');

        let ratio = |a: &str, b: &str, key: &str| -> Option<f64> {
            let (a, b) = (get(a, key)?, get(b, key)?);
            (b > 0.0).then(|| a / b)
        };
        let show = |r: Option<f64>| r.map_or("–".to_string(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            md,
            "| ratio | messages/s | messages per server CPU-second | server CPU |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|");
        for (label, a, b) in [
            ("wsloop: 2 loops ÷ 1 loop", "wsloop-w2", "wsloop-w1"),
            (
                "tokio-tungstenite: 2 workers ÷ 1 worker",
                "tokio-tungstenite-mt2",
                "tokio-tungstenite-mt1",
            ),
            ("raw TCP: 2 threads ÷ 1 thread", "raw-tcp-w2", "raw-tcp-w1"),
            (
                "wsloop ÷ tokio-tungstenite, 1 thread each",
                "wsloop-w1",
                "tokio-tungstenite-mt1",
            ),
            (
                "wsloop ÷ tokio-tungstenite, 2 threads each",
                "wsloop-w2",
                "tokio-tungstenite-mt2",
            ),
        ] {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} |",
                show(ratio(a, b, "msgs_per_s")),
                show(ratio(a, b, "msgs_per_s_per_core")),
                show(ratio(a, b, "server_cpu")),
            );
        }
        md.push('\n');

        let _ = writeln!(md, "### What this shows\n");
        let _ = writeln!(md, "{}", self.workers_findings(id));
    }

    /// Row 9's "what this shows", written from the medians.
    fn workers_findings(&self, id: &str) -> String {
        let get = |server: &str, key: &str| self.median(id, server, key);
        let rate = |v: f64| format_value(v, Unit::Rate);
        // Where the two cores went, for one server: its CPU, the load generator's,
        // everything else's, and the cores' total busy time.
        struct Split {
            msgs: f64,
            server: f64,
            loadgen: f64,
            busy: f64,
            per_cpu: f64,
        }
        let split = |server: &str| -> Option<Split> {
            Some(Split {
                msgs: get(server, "msgs_per_s")?,
                server: get(server, "server_cpu")?,
                loadgen: get(server, "loadgen_cpu")?,
                busy: get(server, "core0_busy")? + get(server, "core1_busy")?,
                per_cpu: get(server, "msgs_per_s_per_core")?,
            })
        };
        let change = |r: f64| {
            if r > 1.0 + TIE {
                format!("rose {r:.2}×")
            } else if r < 1.0 - TIE {
                format!("fell to {r:.2}×")
            } else {
                format!("stayed within {:.0}% ({r:.2}×)", TIE * 100.0)
            }
        };
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (split("wsloop-w1"), split("wsloop-w2")) {
            let others = |s: &Split| (s.busy - s.server - s.loadgen).max(0.0);
            let mut p = format!(
                "**wsloop, 2 loops against 1.** Messages/s {} ({} → {}). With 1 loop the \
                 server used {:.2} cores, the load generator {:.2} and everything else {:.2}: \
                 {:.2} of the 2 cores were busy. With 2 loops: {:.2}, {:.2} and {:.2}, {:.2} \
                 busy.",
                change(b.msgs / a.msgs),
                rate(a.msgs),
                rate(b.msgs),
                a.server,
                a.loadgen,
                others(&a),
                a.busy,
                b.server,
                b.loadgen,
                others(&b),
                b.busy
            );
            if a.server >= 0.95 {
                let _ = write!(
                    p,
                    " With 1 loop the server's one thread was the limit ({:.2} of a core).",
                    a.server
                );
            }
            let taken = others(&a).max(others(&b));
            if taken >= 0.25 {
                let _ = write!(
                    p,
                    " Other processes on this shared machine (and loopback work charged to \
                     neither process) took {:.2} to {:.2} cores of the 2, so the server and the \
                     load generator had only what was left between them.",
                    others(&a).min(others(&b)),
                    taken
                );
            }
            if b.busy >= 1.85 {
                let _ = write!(
                    p,
                    " The two cores were saturated with 2 loops, so whatever CPU the second \
                     loop added ({:+.2} cores for the server) came out of the idle time, the \
                     other processes or the load generator ({:+.2} cores), which has to keep up \
                     with every message itself: on shared cores a second loop helps only as far \
                     as the load generator leaves CPU.",
                    b.server - a.server,
                    b.loadgen - a.loadgen
                );
            } else {
                let busiest = self
                    .thread_shares(id, "wsloop-w2")
                    .iter()
                    .map(|(_, share)| *share)
                    .fold(0.0, f64::max);
                let _ = write!(
                    p,
                    " With 2 loops the cores were not saturated ({:.2} of a core idle)",
                    2.0 - b.busy
                );
                if busiest < 0.9 && b.loadgen < 0.9 {
                    let _ = write!(
                        p,
                        " and no thread used a whole core (the busiest server thread {busiest:.2}, \
                         the load generator {:.2}): the run was not CPU-bound. With three \
                         threads (two loops and the load generator) on two cores, time went \
                         into threads asleep in `epoll_wait` until another's bytes woke them, \
                         and that idle CPU did not turn into messages.",
                        b.loadgen
                    );
                } else {
                    p.push('.');
                }
            }
            let (ls, s1, s2) = (
                b.loadgen / b.msgs * 1e6,
                a.server / a.msgs * 1e6,
                b.server / b.msgs * 1e6,
            );
            let _ = write!(
                p,
                " Per message, the server spent {s1:.2} µs of CPU with 1 loop and {s2:.2} µs \
                 with 2 (messages per server CPU-second {}: {} → {}), the load generator \
                 {ls:.2} µs. With the cores shared, messages/s cannot exceed the CPU left by \
                 everything else divided by the server's and the load generator's CPU per \
                 message: {} for 2 loops (measured {}).",
                change(b.per_cpu / a.per_cpu),
                rate(a.per_cpu),
                rate(b.per_cpu),
                rate((2.0 - others(&b)) / ((s2 + ls) / 1e6)),
                rate(b.msgs)
            );
            out.push(p);
        }
        if let (Some(a), Some(b)) = (
            split("tokio-tungstenite-mt1"),
            split("tokio-tungstenite-mt2"),
        ) {
            out.push(format!(
                "**tokio-tungstenite, 2 workers against 1** (multi-thread runtime): \
                 messages/s {} ({} → {}); server CPU {:.2} → {:.2} cores, load generator \
                 {:.2} → {:.2}; messages per server CPU-second {} ({} → {}).",
                change(b.msgs / a.msgs),
                rate(a.msgs),
                rate(b.msgs),
                a.server,
                b.server,
                a.loadgen,
                b.loadgen,
                change(b.per_cpu / a.per_cpu),
                rate(a.per_cpu),
                rate(b.per_cpu)
            ));
        }
        let mut versus = Vec::new();
        for (n, w, t) in [
            (1, "wsloop-w1", "tokio-tungstenite-mt1"),
            (2, "wsloop-w2", "tokio-tungstenite-mt2"),
        ] {
            if let (Some(w), Some(t)) = (split(w), split(t)) {
                versus.push(format!(
                    "with {n} thread{} wsloop served {:.2}× tokio-tungstenite's messages/s and \
                     {:.2}× its messages per server CPU-second",
                    if n == 1 { "" } else { "s" },
                    w.msgs / t.msgs,
                    w.per_cpu / t.per_cpu
                ));
            }
        }
        if !versus.is_empty() {
            out.push(format!(
                "**wsloop against tokio-tungstenite, same thread count:** {}. Where the load \
                 generator takes part of the same cores, messages per server CPU-second is the \
                 figure that compares the servers' own cost.",
                versus.join("; ")
            ));
        }
        if let (Some(r1), Some(r2)) = (
            get("raw-tcp-w1", "msgs_per_s"),
            get("raw-tcp-w2", "msgs_per_s"),
        ) {
            let best = ["wsloop-w2", "tokio-tungstenite-mt2"]
                .iter()
                .filter_map(|s| get(s, "msgs_per_s").map(|v| (v, *s)))
                .reduce(|a, b| if b.0 > a.0 { b } else { a });
            let mut p = format!(
                "**Raw TCP echo (reference, no WebSocket):** {} messages/s with 1 thread, {} \
                 with 2.",
                rate(r1),
                rate(r2)
            );
            if let Some((ws, who)) = best {
                let q = r2 / ws;
                let _ = write!(
                    p,
                    " With 2 threads it did {q:.2}× the best WebSocket server ({who}, {}){}",
                    rate(ws),
                    if q < 1.1 {
                        ": within 10%, so the load generator, on the same cores, was at or near \
                         its own limit and messages/s barely separates the servers."
                    } else {
                        ": the load generator still had room above the WebSocket servers."
                    }
                );
            }
            out.push(p);
        }
        let threads: Vec<String> = self
            .thread_shares(id, "wsloop-w2")
            .into_iter()
            .filter(|(_, share)| *share >= 0.01)
            .map(|(name, share)| format!("{name} {share:.2}"))
            .collect();
        if let Some(spread) = self.sessions_per_loop(id, "wsloop-w2") {
            out.push(format!(
                "**Balance, wsloop with 2 loops:** sessions opened per loop (loop 0 / loop 1) \
                 over the runs: {spread}; CPU per thread (cores, medians) {}.",
                if threads.is_empty() {
                    "–".to_string()
                } else {
                    threads.join(", ")
                }
            ));
        }
        out.push(
            "What this row cannot show is scaling with cores to spare: for that the load \
             generator needs cores of its own (issue #9's plan: a 16-core machine, servers on \
             cores 0..n−1, load generators on others)."
                .to_string(),
        );
        out.join("\n\n") + "\n"
    }

    fn every_run(&self, md: &mut String) {
        let _ = writeln!(md, "## Every run\n");
        let _ = writeln!(md, "| # | figure | server | runs |");
        let _ = writeln!(md, "|---|---|---|---|");
        for bench in self.benches {
            for m in &bench.metrics {
                for server in &bench.servers {
                    let runs: Vec<String> = self
                        .runs(bench.id, server)
                        .iter()
                        .map(|r| match r {
                            Ok(map) => map
                                .get(m.key)
                                .and_then(Value::as_f64)
                                .map(|v| format_value(v, m.unit))
                                .unwrap_or_else(|| "–".into()),
                            Err(e) => format!("failed: {}", e.replace('|', "/")),
                        })
                        .collect();
                    let _ = writeln!(
                        md,
                        "| {} | {} | {server} | {} |",
                        bench.id,
                        m.label,
                        runs.join(", ")
                    );
                }
            }
        }
        md.push('\n');
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let count = info.lines().filter(|l| l.starts_with("processor")).count();
    (model, count)
}

/// `name -> version` for every package in a Cargo.lock.
fn locked_versions(lock: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if line == "[[package]]" {
            name = None;
        } else if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                versions
                    .entry(n)
                    .or_insert_with(|| v.trim_matches('"').to_string());
            }
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_is_in_every_row_of_the_peers() {
        for bench in benches() {
            if bench.servers.contains(&"tungstenite") {
                for peer in PEERS {
                    assert!(
                        bench.servers.contains(&peer),
                        "row {} lacks {peer}",
                        bench.id
                    );
                }
            }
        }
        assert!(PEERS
            .iter()
            .all(|p| SERVERS.contains(p) && WEBSOCKET.contains(p)));
    }

    #[test]
    fn row_7a_has_its_ceiling_and_echo_rows_the_raw_echo() {
        let rows = benches();
        let row = |id: &str| rows.iter().find(|b| b.id == id).expect("row");
        assert_eq!(ceiling_of(row("7a")), RAW_FANOUT);
        for id in ["1", "2", "2b", "2c", "3"] {
            assert_eq!(ceiling_of(row(id)), "raw-tcp");
            assert!(row(id).servers.contains(&"raw-tcp"));
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn only_selects_rows() {
        let only = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        assert!(selected("8a", &only("8")));
        assert!(selected("8c", &only("1,8")));
        assert!(selected("7a", &only("7a")));
        assert!(!selected("7b", &only("7a")));
        assert!(!selected("1", &only("8")));
        assert!(!selected("8a", &only("88")));
        assert!(selected("3", &only("3")));
    }

    #[test]
    fn lock_parsing() {
        let lock = "[[package]]\nname = \"tokio\"\nversion = \"1.2.3\"\nsource = \"x\"\n\n\
                    [[package]]\nname = \"wsloop\"\nversion = \"0.1.0\"\n";
        let v = locked_versions(lock);
        assert_eq!(v["tokio"], "1.2.3");
        assert_eq!(v["wsloop"], "0.1.0");
    }

    #[test]
    fn standings() {
        assert!(matches!(standing(110.0, 100.0, true), Standing::Leads));
        assert!(matches!(standing(90.0, 100.0, false), Standing::Leads));
        assert!(matches!(standing(98.0, 100.0, true), Standing::Tie));
        assert!(matches!(standing(110.0, 100.0, false), Standing::Behind));
    }

    #[test]
    fn formats() {
        assert_eq!(format_value(2_185_388.0, Unit::Rate), "2.19 M");
        assert_eq!(format_value(125_411.0, Unit::Rate), "125 k");
        assert_eq!(format_value(2_936.0, Unit::Rate), "2.9 k");
        assert_eq!(format_value(0.79, Unit::Kib), "0.79");
    }
}
