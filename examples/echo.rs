//! Echo server: accepts an upgrade on any path and echoes every message back.
//! It is the Autobahn TestSuite's testee.
//!
//!     cargo run --release --example echo -- 127.0.0.1:9001

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wsloop::server::{Context, Handler, Server};
use wsloop::Message;

struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        ctx.send(sid, message);
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let next = AtomicU64::new(0);
    let server = Server::builder()
        .bind(addr)
        // Every path is an endpoint; each connection gets its own sid.
        .route_fn(move |_request| Ok(format!("c{}", next.fetch_add(1, Ordering::Relaxed))))
        .configure(|c| {
            // Echoing a 16 MiB message (Autobahn 9.1.6) queues 16 MiB for one client, over
            // the 4 MiB high-water mark; that is fine since a message is accepted whenever
            // the queue is below the mark. The idle ping is kept long so that it never lands
            // in the middle of a test case.
            c.idle_timeout = Duration::from_secs(120);
        })
        .build()?;
    println!("echo server on ws://{}", server.local_addr()?);
    server.run(Echo)
}
