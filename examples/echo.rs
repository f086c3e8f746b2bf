//! Echo server: accepts an upgrade on any path and echoes every message back.
//! It is the Autobahn TestSuite's testee.
//!
//!     cargo run --release --example echo -- 127.0.0.1:9001
//!     cargo run --release --features deflate --example echo -- 127.0.0.1:9001 --deflate
//!
//! Options, in any order around the address:
//! - `--deflate`: accept permessage-deflate (RFC 7692) with `DeflateConfig::default()`,
//!   which compresses every message (threshold 0). Needs `--features deflate`.
//! - `--idle-timeout SECS`: silence before the server pings a client (default 30 s).
//! - `--max-per-ip N`: most connections from one client address (default 0, no limit: the
//!   Autobahn fuzzing client opens every case's connection from 127.0.0.1).
//! - `--memory-budget BYTES`: the most all connections together may hold in messages and
//!   write queues (`ServerConfig::memory_budget`, default 1 GiB); beyond it frames and sends
//!   are refused with 1013.
//!
//! Limits: 64 MiB per message and frame and a 4 MiB write-queue mark, set here rather than
//! taken from the library (whose defaults are 1 MiB): Autobahn sends 16 MiB messages, and
//! these are the limits this testee has always had.
//! - `--tls-cert FILE --tls-key FILE`: serve wss:// only, with this PEM certificate chain and
//!   key. Needs `--features tls` (`cargo run --example gen_cert` writes a self-signed pair).
//!
//! Pings and Autobahn: the server pings a client only after `idle_timeout` without a byte
//! from it. During a case the fuzzing client is never silent that long (it sends the next
//! message as soon as the echo of the last arrives, and ends a case within seconds of its
//! last message), so the default never pings mid-case, which the compression cases (12.*,
//! 13.*) would count as an unexpected frame. `--idle-timeout` raises it for a much slower
//! run, e.g. a debug build under a profiler.
//!
//! Stopping: SIGTERM or SIGINT (Ctrl-C) shuts the server down gracefully (every session gets a
//! Close 1001, the process exits with 0 within the 5 s close timeout); a second signal exits at
//! once (143 / 130). See `common/shutdown.rs`.

#[path = "common/shutdown.rs"]
mod shutdown;
#[path = "common/tls.rs"]
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wsloop::server::{Context, Handler, Server, ServerBuilder};
use wsloop::Message;

struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        ctx.send(sid, message);
    }
}

/// The command line.
struct Args {
    addr: String,
    deflate: bool,
    idle_timeout: Option<Duration>,
    max_per_ip: usize,
    memory_budget: Option<usize>,
    tls: tls::TlsFlags,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".into(),
        deflate: false,
        idle_timeout: None,
        max_per_ip: 0,
        memory_budget: None,
        tls: tls::TlsFlags::default(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--deflate" => args.deflate = true,
            "--idle-timeout" => {
                let secs = words
                    .next()
                    .ok_or("--idle-timeout needs a number of seconds")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("--idle-timeout {secs:?}: not a number of seconds"))?;
                args.idle_timeout = Some(Duration::from_secs(secs));
            }
            "--max-per-ip" => {
                let n = words.next().ok_or("--max-per-ip needs a number")?;
                args.max_per_ip = n
                    .parse()
                    .map_err(|_| format!("--max-per-ip {n:?}: not a number (0 = no limit)"))?;
            }
            "--memory-budget" => {
                let n = words
                    .next()
                    .ok_or("--memory-budget needs a number of bytes")?;
                args.memory_budget = Some(
                    n.parse()
                        .map_err(|_| format!("--memory-budget {n:?}: not a number of bytes"))?,
                );
            }
            flag if args.tls.parse(flag, &mut || words.next())? => {}
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            addr => args.addr = addr.into(),
        }
    }
    Ok(args)
}

/// `--deflate`: accept permessage-deflate, compressing every message.
#[cfg(feature = "deflate")]
fn with_deflate(builder: ServerBuilder) -> Result<ServerBuilder, String> {
    Ok(builder.deflate(wsloop::deflate::DeflateConfig::default()))
}

#[cfg(not(feature = "deflate"))]
fn with_deflate(_builder: ServerBuilder) -> Result<ServerBuilder, String> {
    Err("--deflate needs permessage-deflate: build with `--features deflate`".into())
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let fail = |message: String| -> ! {
        eprintln!("echo: {message}");
        std::process::exit(2)
    };
    let args = parse_args().unwrap_or_else(|e| fail(e));
    let next = AtomicU64::new(0);
    let mut builder = Server::builder()
        .bind(args.addr)
        // Every path is an endpoint; each connection gets its own sid.
        .route_fn(move |_request| Ok(format!("c{}", next.fetch_add(1, Ordering::Relaxed))))
        // Autobahn's 16 MiB messages are under the 64 MiB limit, and echoing one is accepted
        // because the write queue is empty when the echo is queued.
        .configure(|c| {
            c.session.max_message_size = 64 << 20;
            c.session.max_frame_size = 64 << 20;
            c.max_queued_bytes = 4 << 20;
        });
    if let Some(budget) = args.memory_budget {
        builder = builder.configure(|c| c.memory_budget = budget);
    }
    if let Some(idle) = args.idle_timeout {
        builder = builder.configure(|c| c.idle_timeout = idle);
    }
    if args.max_per_ip > 0 {
        builder = builder.configure(|c| c.max_connections_per_ip = args.max_per_ip);
    }
    if args.deflate {
        builder = with_deflate(builder).unwrap_or_else(|e| fail(e));
    }
    builder = args.tls.apply(builder).unwrap_or_else(|e| fail(e));
    let server = builder.build()?;
    shutdown::on_signals(server.handle())?;
    let scheme = if args.tls.on() { "wss" } else { "ws" };
    println!("echo server on {scheme}://{}", server.local_addr()?);
    server.run(Echo)
}
