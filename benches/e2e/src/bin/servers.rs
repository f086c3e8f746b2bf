//! The echo servers under test, one subcommand each:
//!
//! ```text
//! servers wsloop|tungstenite|tokio-tungstenite|fastwebsockets|tokio-websockets|raw-tcp \
//!         --addr 127.0.0.1:PORT
//! servers wsloop-deflate|wsloop-deflate-low --addr 127.0.0.1:PORT
//! ```
//!
//! Each echoes every data message back on the connection it came from, accepts an upgrade on
//! any path, and prints `ready ADDR` once it listens. The async peers run on tokio's
//! current-thread runtime and tungstenite on one thread per connection; for rows 1 to 8 the
//! driver pins the whole process to one core, so every figure is per-core efficiency.
//!
//! The wsloop server also broadcasts: a message from a session whose path starts with `/ctl`
//! is sent to every open session (that one included) instead of being echoed. And it
//! publishes (row 7c): a session whose path starts with `/topic` subscribes to topic "t", and
//! a message from one whose path starts with `/pub` is published to "t".
//! `raw-tcp-fanout` is row 7a's ceiling: the same broadcast over plain TCP, no WebSocket
//! (see its module).
//! `wsloop-deflate` is the same server with permessage-deflate (`DeflateConfig::default()`)
//! and `wsloop-deflate-low` with `DeflateConfig::low_memory()`: row 8.
//!
//! Row 9 (several threads per server; the driver pins these to both cores):
//!
//! ```text
//! servers wsloop-wN --addr ...             wsloop with `workers(N)`, run with `run_each`
//! servers tokio-tungstenite-mtN --addr ... tokio-tungstenite on a multi-thread runtime with
//!                                          `worker_threads(N)`
//! servers raw-tcp-wN --addr ...            N raw TCP echo loops, one thread each, each on its
//!                                          own `SO_REUSEPORT` listener
//! ```
//!
//! `wsloop-wN` prints `opened A B ...` to stderr after each upgrade: how many sessions each
//! loop has opened so far, which the driver reads back from the log to show the spread.
//!
//! Row 10 (TLS, feature `tls`): `wsloop-tls` (the wsloop server with `ServerBuilder::tls`)
//! and `tokio-tungstenite-tls` (tokio-rustls' acceptor in front of the tokio-tungstenite
//! server). Each makes a self-signed ECDSA P-256 certificate for `localhost` at start
//! (`tls_keys`); both serve it with rustls 0.23 over `ring`, its default versions and suites,
//! ALPN `http/1.1`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wsloop::deflate::DeflateConfig;
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
        "wsloop" => wsloop_server::run(addr, None),
        "wsloop-deflate" => wsloop_server::run(addr, Some(DeflateConfig::default())),
        "wsloop-deflate-low" => wsloop_server::run(addr, Some(DeflateConfig::low_memory())),
        "tungstenite" => tungstenite_server::run(addr),
        "tokio-tungstenite" => tokio_tungstenite_server::run(addr),
        "fastwebsockets" => fastwebsockets_server::run(addr),
        "tokio-websockets" => tokio_websockets_server::run(addr),
        "raw-tcp" => raw_tcp::run(addr),
        "raw-tcp-fanout" => raw_fanout::run(addr),
        "wsloop-tls" => wsloop_server::run_tls(addr),
        "tokio-tungstenite-tls" => tokio_tungstenite_server::run_tls(addr),
        other => match threads_of(other) {
            Some(("wsloop-w", n)) => wsloop_server::run_workers(addr, n),
            Some(("tokio-tungstenite-mt", n)) => tokio_tungstenite_server::run_multi(addr, n),
            Some(("raw-tcp-w", n)) => raw_tcp::run_threads(addr, n),
            _ => {
                eprintln!(
                    "usage: servers wsloop|wsloop-deflate|wsloop-deflate-low|tungstenite|\
                     tokio-tungstenite|fastwebsockets|tokio-websockets|raw-tcp|raw-tcp-fanout|wsloop-wN|tokio-tungstenite-mtN|\
                     raw-tcp-wN|wsloop-tls|tokio-tungstenite-tls --addr HOST:PORT"
                );
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = result {
        eprintln!("{which}: {e}");
        std::process::exit(1);
    }
}

/// `wsloop-w2` -> `("wsloop-w", 2)`: a row-9 server name and its thread count.
fn threads_of(name: &str) -> Option<(&str, usize)> {
    let digits = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let n: usize = name[digits.len()..].parse().ok()?;
    (n >= 1).then_some((digits, n))
}

/// Row 10: a fresh self-signed certificate for `localhost` (ECDSA P-256) and its key.
fn tls_keys() -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().expect("key pair");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (vec![cert.der().clone()], der.into())
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
    use std::sync::Arc;
    use wsloop::server::{Context, Handler, Server, ServerBuilder};
    use wsloop::Message;

    struct Bench;

    impl Handler for Bench {
        /// Row 7c: a session opened on `/topic/...` (sid `t...`) subscribes to topic "t".
        fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
            if sid.starts_with('t') {
                ctx.subscribe(sid, "t");
            }
        }

        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            if sid.starts_with("ctl") {
                ctx.broadcast(message);
            } else if sid.starts_with("pub") {
                ctx.publish("t", message);
            } else {
                ctx.send(sid, message);
            }
        }
    }

    pub fn run(addr: SocketAddr, deflate: Option<DeflateConfig>) -> io::Result<()> {
        let mut builder = Server::builder();
        if let Some(config) = deflate {
            builder = builder.deflate(config);
        }
        let server = build(builder, addr)?;
        ready(server.local_addr()?);
        server.run(Bench)
    }

    /// Row 10: the same server over TLS.
    pub fn run_tls(addr: SocketAddr) -> io::Result<()> {
        let (chain, key) = tls_keys();
        let tls = wsloop::server::TlsConfig::from_der(chain, key)?;
        let server = build(Server::builder().tls(tls), addr)?;
        ready(server.local_addr()?);
        server.run(Bench)
    }

    /// Row 9: the same server with `workers(n)`, one handler per loop (`run_each`); each
    /// handler counts the sessions its loop opened and logs every loop's count to stderr.
    pub fn run_workers(addr: SocketAddr, n: usize) -> io::Result<()> {
        let server = build(Server::builder().workers(n), addr)?;
        ready(server.local_addr()?);
        let opened: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        server.run_each(move |index| Counted {
            index,
            opened: opened.clone(),
        })
    }

    /// [`Bench`], counting the sessions opened on its loop.
    struct Counted {
        index: usize,
        opened: Arc<Vec<AtomicU64>>,
    }

    impl Handler for Counted {
        fn on_open(&mut self, _ctx: &mut Context<'_>, _sid: &str) {
            self.opened[self.index].fetch_add(1, Ordering::Relaxed);
            let counts: Vec<String> = self
                .opened
                .iter()
                .map(|c| c.load(Ordering::Relaxed).to_string())
                .collect();
            eprintln!("opened {}", counts.join(" "));
        }

        fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
            Bench.on_message(ctx, sid, message);
        }
    }

    fn build(builder: ServerBuilder, addr: SocketAddr) -> io::Result<Server> {
        let next = AtomicU64::new(0);
        builder
            .bind(addr.to_string())
            // The library's defaults, except room for the 10,000-connection rows, and the
            // limits the `echo` example keeps (64 MiB messages, a 4 MiB queue mark) for the
            // 16 MiB row (the library's defaults are 1 MiB).
            .configure(|c| {
                c.max_connections = 20_000;
                c.session.max_message_size = 64 << 20;
                c.session.max_frame_size = 64 << 20;
                c.max_queued_bytes = 4 << 20;
            })
            .route_fn(move |request| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if request.path().starts_with("/ctl") {
                    Ok(format!("ctl{n}"))
                } else if request.path().starts_with("/pub") {
                    Ok(format!("pub{n}"))
                } else if request.path().starts_with("/topic") {
                    Ok(format!("t{n}"))
                } else {
                    Ok(format!("c{n}"))
                }
            })
            .build()
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
        current_thread_runtime()?.block_on(accept_loop(addr))
    }

    /// Row 9: the same server on a multi-thread runtime with `threads` workers. The accept
    /// loop runs in `block_on` on the main thread; every connection's task is spawned onto
    /// the workers (work-stealing).
    pub fn run_multi(addr: SocketAddr, threads: usize) -> io::Result<()> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
            .block_on(accept_loop(addr))
    }

    /// Row 10: the same server behind tokio-rustls, on the current-thread runtime.
    pub fn run_tls(addr: SocketAddr) -> io::Result<()> {
        let (chain, key) = tls_keys();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        current_thread_runtime()?.block_on(async move {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let _ = stream.set_nodelay(true);
                            if let Ok(tls) = acceptor.accept(stream).await {
                                serve_any(tls).await;
                            }
                        });
                    }
                    Err(_) => tokio::time::sleep(accept_pause()).await,
                }
            }
        })
    }

    async fn accept_loop(addr: SocketAddr) -> io::Result<()> {
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
    }

    async fn serve(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        serve_any(stream).await;
    }

    /// The echo over any byte stream: plain TCP, or TLS (row 10).
    async fn serve_any<S>(stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
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

mod tokio_websockets_server {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_websockets::{Config, Limits, ServerBuilder};

    /// The bench's limits, the wsloop server's: messages and frames up to 64 MiB (row 3
    /// sends 16 MiB). `frame_size` is also the size outgoing messages are split at: above
    /// the largest message, every echo is one frame, as the load generator expects.
    const MAX_MESSAGE: usize = 64 << 20;

    /// The crate's own `examples/echo_server.rs`, its fastest single-thread configuration:
    /// a current-thread runtime, one `unconstrained` task per connection that `send`s each
    /// data message back (`send` flushes). Ping and Close are answered by the crate.
    pub fn run(addr: SocketAddr) -> io::Result<()> {
        current_thread_runtime()?.block_on(async {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(tokio::task::unconstrained(serve(stream)));
                    }
                    Err(_) => tokio::time::sleep(accept_pause()).await,
                }
            }
        })
    }

    async fn serve(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let accepted = ServerBuilder::new()
            .config(Config::default().frame_size(MAX_MESSAGE))
            .limits(Limits::default().max_payload_len(Some(MAX_MESSAGE)))
            .accept(stream)
            .await;
        let Ok((_request, mut ws)) = accepted else {
            return;
        };
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                return;
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
        let listener = TcpListener::bind(addr)?;
        ready(listener.local_addr()?);
        serve_listener(listener)
    }

    /// Row 9: `n` loops, one thread each, each accepting on its own `SO_REUSEPORT`
    /// listener on the same address; the kernel spreads connections by a hash of their
    /// addresses, so the spread is close to even but not exact.
    pub fn run_threads(addr: SocketAddr, n: usize) -> io::Result<()> {
        let listeners = (0..n)
            .map(|_| reuseport_listener(addr))
            .collect::<io::Result<Vec<_>>>()?;
        ready(listeners[0].local_addr()?);
        let threads = listeners
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                std::thread::Builder::new()
                    .name(format!("raw-tcp-{i}"))
                    .spawn(move || serve_listener(TcpListener::from_std(l)))
            })
            .collect::<io::Result<Vec<_>>>()?;
        for thread in threads {
            thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a loop panicked")))?;
        }
        Ok(())
    }

    /// A listening socket with `SO_REUSEPORT` set before `bind`, non-blocking.
    fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
        use std::os::fd::FromRawFd;
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::other("raw-tcp-wN: IPv4 only"));
        };
        let check = |r: libc::c_int| {
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r)
            }
        };
        // SAFETY: plain socket calls on a descriptor we own, with a correctly sized sockaddr;
        // the descriptor is handed to `TcpListener`, which closes it (or closed on error).
        unsafe {
            let fd = check(libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            ))?;
            let listener = std::net::TcpListener::from_raw_fd(fd);
            let one: libc::c_int = 1;
            for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
                check(libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    option,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                ))?;
            }
            let mut sin: libc::sockaddr_in = std::mem::zeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            check(libc::bind(
                fd,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ))?;
            check(libc::listen(fd, 1024))?;
            Ok(listener)
        }
    }

    fn serve_listener(mut listener: TcpListener) -> io::Result<()> {
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
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

/// Row 7a's ceiling: the broadcast without WebSocket. One mio loop on one thread; each
/// connection's first byte is echoed (the load generator's probe that says it is open), and
/// every byte after it, from any connection, is written as read to every connection, the
/// sender included. The load generator's connection 0 sends 64 bytes a round, so a round is
/// one read and 10,000 `write`s of the same 64 bytes to nonblocking sockets: no framing,
/// no masking, no per-connection state beyond what a short write leaves behind.
mod raw_fanout {
    use super::*;
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};

    const LISTENER: Token = Token(usize::MAX);

    /// Unwritten bytes a connection may hold before it is dropped (a client that stopped
    /// reading); a fan-out round leaves none behind unless a socket buffer is full.
    const MAX_PENDING: usize = 1 << 20;

    struct Conn {
        socket: TcpStream,
        /// Whether its first byte (the probe) has been echoed.
        probed: bool,
        /// What a short write left, written on the next WRITABLE.
        pending: Vec<u8>,
    }

    impl Conn {
        /// Write `bytes` after whatever is pending; keep what the socket does not take.
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            if !self.pending.is_empty() {
                self.pending.extend_from_slice(bytes);
                return self.flush();
            }
            let mut written = 0;
            while written < bytes.len() {
                match self.socket.write(&bytes[written..]) {
                    Ok(w) => written += w,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.pending.extend_from_slice(&bytes[written..]);
            self.check_pending()
        }

        fn flush(&mut self) -> io::Result<()> {
            let mut written = 0;
            while written < self.pending.len() {
                match self.socket.write(&self.pending[written..]) {
                    Ok(w) => written += w,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.pending.drain(..written);
            self.check_pending()
        }

        fn check_pending(&self) -> io::Result<()> {
            if self.pending.len() > MAX_PENDING {
                return Err(io::Error::other("the client stopped reading"));
            }
            Ok(())
        }
    }

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let mut listener = TcpListener::bind(addr)?;
        ready(listener.local_addr()?);
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut events = Events::with_capacity(1024);
        let mut dead: Vec<usize> = Vec::new();
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
                                    probed: false,
                                    pending: Vec::new(),
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
                if event.is_writable() && conn.flush().is_err() {
                    dead.push(key);
                    continue;
                }
                // Read until the socket is empty (edge-triggered); fan out what came.
                while let Some(conn) = conns[key].as_mut() {
                    let n = match conn.socket.read(&mut buf) {
                        Ok(0) => {
                            dead.push(key);
                            break;
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => {
                            dead.push(key);
                            break;
                        }
                    };
                    let mut data = &buf[..n];
                    if !conn.probed {
                        conn.probed = true;
                        if conn.send(&data[..1]).is_err() {
                            dead.push(key);
                            break;
                        }
                        data = &data[1..];
                    }
                    if !data.is_empty() {
                        for (i, c) in conns.iter_mut().enumerate() {
                            if let Some(c) = c {
                                if c.send(data).is_err() {
                                    dead.push(i);
                                }
                            }
                        }
                    }
                }
            }
            for key in dead.drain(..) {
                if let Some(mut conn) = conns[key].take() {
                    let _ = poll.registry().deregister(&mut conn.socket);
                    free.push(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::threads_of;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::Duration;

    /// A client of a server started on `addr` in a thread of this test: it retries for up
    /// to 2 s while the server starts listening.
    fn connect(addr: SocketAddr) -> TcpStream {
        for _ in 0..200 {
            if let Ok(stream) = TcpStream::connect(addr) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                return stream;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the server did not listen on {addr}");
    }

    #[test]
    fn raw_fanout_echoes_the_probe_then_writes_what_any_sends_to_all() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The server runs until the test process exits.
        std::thread::spawn(move || super::raw_fanout::run(addr));
        let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
        for client in &mut clients {
            client.write_all(b"\n").unwrap();
            let mut probe = [0u8; 1];
            client.read_exact(&mut probe).unwrap();
            assert_eq!(&probe, b"\n");
        }
        let message: Vec<u8> = (0..64u8).collect();
        for sender in [0, 2] {
            clients[sender].write_all(&message).unwrap();
            for client in &mut clients {
                let mut got = [0u8; 64];
                client.read_exact(&mut got).unwrap();
                assert_eq!(got[..], message[..]);
            }
        }
    }

    #[test]
    fn row_9_names() {
        assert_eq!(threads_of("wsloop-w2"), Some(("wsloop-w", 2)));
        assert_eq!(
            threads_of("tokio-tungstenite-mt1"),
            Some(("tokio-tungstenite-mt", 1))
        );
        assert_eq!(threads_of("raw-tcp-w12"), Some(("raw-tcp-w", 12)));
        assert_eq!(threads_of("wsloop-w0"), None);
        assert_eq!(threads_of("wsloop"), None);
    }
}
