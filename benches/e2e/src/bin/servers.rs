//! The echo servers under test, one subcommand each:
//!
//! ```text
//! servers wsloop|tungstenite|tokio-tungstenite|fastwebsockets|raw-tcp --addr 127.0.0.1:PORT
//! ```
//!
//! Each echoes every data message back on the connection it came from, accepts an upgrade on
//! any path, and prints `ready ADDR` once it listens. The async peers run on tokio's
//! current-thread runtime and tungstenite on one thread per connection; the driver pins the
//! whole process to one core, so every figure is per-core efficiency.
//!
//! The wsloop server also broadcasts: a message from a session whose path starts with `/ctl`
//! is sent to every open session (that one included) instead of being echoed.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wsloop_e2e::{raise_fd_limit, Args};

fn main() {
    let mut argv = std::env::args().skip(1);
    let which = argv.next().unwrap_or_default();
    let args = Args::parse(argv);
    let addr: SocketAddr = args
        .get("addr")
        .unwrap_or("127.0.0.1:9000")
        .parse()
        .expect("--addr HOST:PORT");
    if let Err(e) = raise_fd_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    let result = match which.as_str() {
        "wsloop" => wsloop_server::run(addr),
        "tungstenite" => tungstenite_server::run(addr),
        "tokio-tungstenite" => tokio_tungstenite_server::run(addr),
        "fastwebsockets" => fastwebsockets_server::run(addr),
        "raw-tcp" => raw_tcp::run(addr),
        _ => {
            eprintln!(
                "usage: servers wsloop|tungstenite|tokio-tungstenite|fastwebsockets|raw-tcp --addr HOST:PORT"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("{which}: {e}");
        std::process::exit(1);
    }
}

fn ready(addr: SocketAddr) {
    // stdout is line-buffered: the driver sees this line at once.
    println!("ready {addr}");
}

/// A pause after a failed accept (EMFILE...), so a full descriptor table does not spin.
fn accept_pause() -> Duration {
    Duration::from_millis(5)
}

mod wsloop_server {
    use super::*;
    use wsloop::server::{Context, Handler, Server};
    use wsloop::Message;

    struct Bench;

    impl Handler for Bench {
        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            if sid.starts_with("ctl") {
                ctx.broadcast(message);
            } else {
                ctx.send(sid, message);
            }
        }
    }

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let next = AtomicU64::new(0);
        let server = Server::builder()
            .bind(addr.to_string())
            // The library's defaults, except room for the 10,000-connection rows.
            .configure(|c| c.max_connections = 20_000)
            .route_fn(move |request| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if request.path().starts_with("/ctl") {
                    Ok(format!("ctl{n}"))
                } else {
                    Ok(format!("c{n}"))
                }
            })
            .build()?;
        ready(server.local_addr()?);
        server.run(Bench)
    }
}

mod tungstenite_server {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use tungstenite::Error;

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let listener = TcpListener::bind(addr)?;
        ready(listener.local_addr()?);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let spawned = std::thread::Builder::new().spawn(move || serve(stream));
                    if let Err(e) = spawned {
                        eprintln!("tungstenite: cannot start a thread: {e}");
                    }
                }
                Err(_) => std::thread::sleep(accept_pause()),
            }
        }
    }

    fn serve(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(mut ws) = tungstenite::accept(stream) else {
            return;
        };
        loop {
            match ws.read() {
                Ok(message) if message.is_binary() || message.is_text() => {
                    if ws.send(message).is_err() {
                        return;
                    }
                }
                // Ping, Pong and Close are answered by tungstenite itself.
                Ok(_) => {}
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
                Err(_) => return,
            }
        }
    }
}

fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

mod tokio_tungstenite_server {
    use super::*;
    use futures_util::{future, StreamExt, TryStreamExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        current_thread_runtime()?.block_on(async {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve(stream));
                    }
                    Err(_) => tokio::time::sleep(accept_pause()).await,
                }
            }
        })
    }

    async fn serve(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        // Data messages go back out through the sink; `forward` flushes when no more input
        // is ready, so a burst of messages leaves in few writes. Control frames are answered
        // by tungstenite.
        let (outgoing, incoming) = ws.split();
        let _ = incoming
            .try_filter(|message| future::ready(message.is_binary() || message.is_text()))
            .forward(outgoing)
            .await;
    }
}

mod fastwebsockets_server {
    use super::*;
    use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocket, WebSocketError};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::upgrade::Upgraded;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        current_thread_runtime()?.block_on(async {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        tokio::time::sleep(accept_pause()).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(on_request);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        })
    }

    async fn on_request(
        mut request: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, upgraded) = upgrade::upgrade(&mut request)?;
        tokio::spawn(async move {
            if let Ok(ws) = upgraded.await {
                let _ = echo(ws).await;
            }
        });
        Ok(response)
    }

    async fn echo(ws: WebSocket<TokioIo<Upgraded>>) -> Result<(), WebSocketError> {
        // The collector reassembles fragmented messages; Ping and Close are answered by
        // fastwebsockets itself (auto_pong, auto_close are on by default).
        let mut ws = FragmentCollector::new(ws);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
    }
}

/// The ceiling: a mio loop that echoes bytes without looking at them.
mod raw_tcp {
    use super::*;
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};

    const LISTENER: Token = Token(usize::MAX);

    /// Bytes a connection may hold (read, not yet written back) before it stops reading.
    /// Like a WebSocket server holding a whole 16 MiB message, it keeps reading while the
    /// echo waits for the client to read, so neither direction stalls the other.
    const MAX_PENDING: usize = 32 << 20;

    struct Conn {
        socket: TcpStream,
        /// Bytes read and not yet written back, from `sent` on.
        pending: Vec<u8>,
        sent: usize,
    }

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        ready(listener.local_addr()?);
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut events = Events::with_capacity(1024);
        loop {
            match poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                if event.token() == LISTENER {
                    loop {
                        match listener.accept() {
                            Ok((mut socket, _)) => {
                                let _ = socket.set_nodelay(true);
                                let key = free.pop().unwrap_or_else(|| {
                                    conns.push(None);
                                    conns.len() - 1
                                });
                                poll.registry().register(
                                    &mut socket,
                                    Token(key),
                                    Interest::READABLE | Interest::WRITABLE,
                                )?;
                                conns[key] = Some(Conn {
                                    socket,
                                    pending: Vec::new(),
                                    sent: 0,
                                });
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => {
                                std::thread::sleep(accept_pause());
                                break;
                            }
                        }
                    }
                    continue;
                }
                let key = event.token().0;
                let Some(conn) = conns[key].as_mut() else {
                    continue;
                };
                if serve(conn, &mut buf).is_err() {
                    if let Some(mut conn) = conns[key].take() {
                        let _ = poll.registry().deregister(&mut conn.socket);
                    }
                    free.push(key);
                }
            }
        }
    }

    /// Write back what is pending, then read and echo until the socket has no more.
    fn serve(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
        loop {
            write_out(conn)?;
            if conn.pending.len() - conn.sent >= MAX_PENDING {
                return Ok(()); // resume on WRITABLE
            }
            let n = match conn.socket.read(buf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if conn.sent == conn.pending.len() {
                // Nothing waiting: echo straight from the read buffer, keep what is left.
                let mut written = 0;
                while written < n {
                    match conn.socket.write(&buf[written..n]) {
                        Ok(w) => written += w,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                conn.pending.extend_from_slice(&buf[written..n]);
            } else {
                conn.pending.extend_from_slice(&buf[..n]);
            }
            if n < buf.len() {
                // A short read drained the socket; new data raises a new edge.
                return write_out(conn);
            }
        }
    }

    /// Write as much of what is pending as the socket takes.
    fn write_out(conn: &mut Conn) -> io::Result<()> {
        while conn.sent < conn.pending.len() {
            match conn.socket.write(&conn.pending[conn.sent..]) {
                Ok(w) => conn.sent += w,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if conn.sent == conn.pending.len() {
            conn.pending.clear();
            conn.sent = 0;
        } else if conn.sent > conn.pending.len() / 2 {
            conn.pending.drain(..conn.sent);
            conn.sent = 0;
        }
        Ok(())
    }
}
