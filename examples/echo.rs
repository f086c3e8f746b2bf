//! Echo server: accepts an upgrade on any path and echoes every message back.
//! It is the Autobahn TestSuite's testee.
//!
//!     cargo run --release --example echo -- 127.0.0.1:9001

use std::sync::atomic::{AtomicU64, Ordering};

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
        // Every path is an endpoint; each connection gets its own sid. The library's
        // defaults need no change for Autobahn sections 1-10: 16 MiB messages are under the
        // 64 MiB limit, and echoing one is accepted because the write queue is below its
        // 4 MiB mark when the echo is queued.
        .route_fn(move |_request| Ok(format!("c{}", next.fetch_add(1, Ordering::Relaxed))))
        .build()?;
    println!("echo server on ws://{}", server.local_addr()?);
    server.run(Echo)
}
