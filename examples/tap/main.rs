//! `tap`: a proxy that shows a WebSocket conversation as it happens.
//!
//! ```sh
//! cargo run --example dashboard -- 127.0.0.1:8080 &
//! cargo run --example tap -- 127.0.0.1:9000 127.0.0.1:8080
//! # then open http://127.0.0.1:9000/ (or point any client at ws://127.0.0.1:9000/...)
//! ```
//!
//! Every connection made to the first address is forwarded to the second, and everything that
//! passes in either direction is printed, annotated the way `explain` does it: the handshake
//! header by header (with the `Sec-WebSocket-Accept` checked against the client's key), then
//! each frame field by field, with the RFC 6455 rule behind it. Output lines start with the
//! connection's number (`#1`), so several connections can be told apart.
//!
//! Std only: a thread per direction of each connection. The proxy itself is in `proxy.rs`,
//! and the annotator in `../explain/annotate.rs`; tests/learners.rs runs both in-process.

#[path = "../explain/annotate.rs"]
mod annotate;
mod proxy;

use std::net::{TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!(
            "usage: tap LISTEN_ADDR UPSTREAM_ADDR   (e.g. tap 127.0.0.1:9000 127.0.0.1:8080)"
        );
        return ExitCode::from(2);
    };
    let upstream = match upstream.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            eprintln!("tap: cannot resolve {upstream}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tap: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let local = listener
        .local_addr()
        .map_or(listen.clone(), |a| a.to_string());
    println!("tap: listening on {local}, forwarding to {upstream}\n");
    let sink: proxy::Sink = Arc::new(Mutex::new(std::io::stdout()));
    match proxy::serve(listener, proxy::TapConfig::new(upstream), sink) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap: {e}");
            ExitCode::from(1)
        }
    }
}
