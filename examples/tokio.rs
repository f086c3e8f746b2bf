//! The server beside a tokio application: the event loop on its own thread, async tasks
//! reaching the sessions through a `Handle`, and the handler passing messages to async code
//! through a bounded `tokio::sync::mpsc` channel.
//!
//! ```sh
//! cargo run --example tokio                  # ws://127.0.0.1:8080/ws/{sid}
//! cargo run --example tokio -- 127.0.0.1:9000
//! ```
//!
//! Each text message a session sends goes to an async task, which "looks it up" (an awaited
//! step standing for a database or an HTTP call) and answers that session with
//! `Handle::send`; every session is subscribed to the topic `ticks`, which another task
//! publishes to every five seconds with `Handle::publish`. Ctrl-C shuts the server down.
//!
//! Why this never blocks a runtime thread: a `Handle` call encodes the message on the calling
//! thread, pushes the command on the loop's queue under a mutex held only for a length check
//! and the push, and wakes the loop (one non-blocking write to the loop's waker: an `eventfd`
//! on Linux). It waits neither for the loop nor for any client, and does no socket I/O; when
//! the loop is too far behind it fails at once with `HandleError::QueueFull`. The one
//! exception is `Handle::shutdown`, which waits for the loops to stop (up to the close
//! timeout): call it from `spawn_blocking`, as `main` does. In the other direction the
//! handler runs on the loop's thread and must not wait either, so it uses `try_send` and
//! answers "busy" when the async side is behind, rather than `blocking_send`, which would
//! stall every session of the loop.
//!
//! `tests/tokio.rs` runs this file's `start`, `answer` and `ticker` end to end.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use wsloop::server::{Context, Handle, Handler, Server};
use wsloop::{CloseCode, Message};

/// The topic every session is subscribed to, and `ticker` publishes to.
pub const TICKS: &str = "ticks";

/// The answer a session gets when the async side is `capacity` messages behind.
pub const BUSY: &str = "busy, try again";

/// A message from a session, for the async side.
#[derive(Debug)]
pub struct Request {
    /// Who sent it (and gets the answer).
    pub sid: String,
    /// What it sent.
    pub text: String,
}

/// The handler: on the loop's thread, it never awaits and never blocks; it hands each text
/// message to the async side and answers only what it can answer at once.
pub struct Relay {
    requests: mpsc::Sender<Request>,
}

impl Handler for Relay {
    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        ctx.subscribe(sid, TICKS);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let Message::Text(text) = message else {
            return;
        };
        let request = Request {
            sid: sid.to_string(),
            text,
        };
        match self.requests.try_send(request) {
            Ok(()) => {}
            // The async side is behind: say so now rather than wait, or queue without bound.
            Err(TrySendError::Full(_)) => {
                ctx.send(sid, BUSY);
            }
            // The async side has stopped (the application is shutting down).
            Err(TrySendError::Closed(_)) => {
                let _ = ctx.close(sid, CloseCode::GoingAway, "going away");
            }
        }
    }
}

/// A server started by [`start`].
pub struct Started {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its handle, for async tasks (and any thread).
    pub handle: Handle,
    /// The thread its loop runs on; it ends after `handle.shutdown()`.
    pub thread: JoinHandle<io::Result<()>>,
    /// The receiving end of the channel its handler fills.
    pub requests: mpsc::Receiver<Request>,
}

/// The server on its own thread (`Server::spawn`), listening on `addr` with the default
/// route `/ws/{sid}`; its handler lets at most `capacity` messages wait for the async side.
pub fn start(addr: &str, capacity: usize) -> io::Result<Started> {
    let (requests, received) = mpsc::channel(capacity);
    let server = Server::builder().bind(addr).build()?;
    let addr = server.local_addr()?;
    let (handle, thread) = server.spawn(Relay { requests })?;
    Ok(Started {
        addr,
        handle,
        thread,
        requests: received,
    })
}

/// The async side: answers each request from a task of its own, after an awaited step, through
/// the `Handle`. Returns when the server's handler is gone (the server stopped).
pub async fn answer(handle: Handle, mut requests: mpsc::Receiver<Request>) {
    while let Some(Request { sid, text }) = requests.recv().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            let reply = look_up(&text).await;
            // Queued for the loop at once; the session may have closed meanwhile, which the
            // loop logs (a `Handle` reports only whether the command was queued).
            if let Err(e) = handle.send(&sid, reply) {
                log::warn!("answer for {sid} not queued: {e}");
            }
        });
    }
}

/// An awaited step standing for real async work (a database query, an HTTP call).
async fn look_up(text: &str) -> String {
    tokio::time::sleep(Duration::from_millis(10)).await;
    format!("looked up: {text}")
}

/// Publishes `tick N` to the topic [`TICKS`] every `period`, until the server stops.
pub async fn ticker(handle: Handle, period: Duration) {
    let mut interval = tokio::time::interval(period);
    for n in 1u64.. {
        interval.tick().await;
        if let Err(e) = handle.publish(TICKS, format!("tick {n}")) {
            log::info!("ticker stops: {e}");
            return;
        }
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let Started {
        addr,
        handle,
        thread,
        requests,
    } = start(&addr, 1024)?;
    log::info!("listening on ws://{addr}/ws/{{sid}}");
    tokio::spawn(answer(handle.clone(), requests));
    tokio::spawn(ticker(handle.clone(), Duration::from_secs(5)));

    tokio::signal::ctrl_c().await?;
    // `shutdown` waits for the loop to stop (up to the close timeout): not on a runtime thread.
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .map_err(io::Error::other)?;
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the server's thread panicked")))
}
