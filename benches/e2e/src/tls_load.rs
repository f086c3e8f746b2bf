//! Row 10: the load generator over TLS (rustls 0.23 on `ring`, as the servers), included by
//! `loadgen.rs` as its module `tls_load`:
//!
//! ```text
//! loadgen tls-echo       --addr A --conns N --size BYTES --inflight F
//! loadgen tls-handshakes --addr A --conc C     (full TLS 1.3 handshakes, no resumption)
//! loadgen tls-idle       --addr A --conns N    (prints "ready", holds until stdin ends)
//! ```
//!
//! The same rings as the plain rows: the plaintext a connection sends is the ring of masked
//! frames, and the plaintext it gets back is checked byte for byte against the ring of the
//! server's frames; TLS only sits between. Setup (TCP connect, TLS handshake, upgrade) is
//! blocking, one connection after the other; the timed part is one `mio::Poll` as in `echo`.
//!
//! Each server makes its own self-signed certificate at start, so the client checks the
//! handshake's signatures (the server holds the key of the certificate it sent) but not the
//! certificate's chain ([`NoChain`]); SNI is `localhost`. Session resumption is off: every
//! handshake of `tls-handshakes` is a full one.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::{addr, poll_events, rings, Meter, Result, Ring, READ_BUF};
use wsloop_e2e::{
    check_upgrade_response, client_frame, head_end, mask_key, upgrade_request, Args, CLOSE_FIN,
};

/// Accepts any certificate chain, checks every handshake signature.
#[derive(Debug)]
struct NoChain(Arc<CryptoProvider>);

impl ServerCertVerifier for NoChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring's default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoChain(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

fn io_err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A blocking connection: TCP, the TLS handshake, the upgrade to `path`.
fn open(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    path: &str,
) -> Result<(std::net::TcpStream, ClientConnection)> {
    let mut tcp = std::net::TcpStream::connect(addr).map_err(io_err("connect"))?;
    tcp.set_nodelay(true).map_err(io_err("nodelay"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io_err("timeout"))?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut tls = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    tls.writer()
        .write_all(&upgrade_request(&addr.to_string(), path))
        .map_err(io_err("request"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tls.complete_io(&mut tcp).map_err(io_err("TLS"))?;
        match tls.reader().read(&mut buf) {
            Ok(0) => return Err("closed during the upgrade".into()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(format!("upgrade: {e}")),
        }
        if let Some(end) = head_end(&head) {
            check_upgrade_response(&head[..end])?;
            if end != head.len() {
                return Err("data after the upgrade response".into());
            }
            return Ok((tcp, tls));
        }
    }
}

/// One connection of the timed rows: its socket, its TLS state and its streams' positions.
struct Conn {
    socket: TcpStream,
    tls: ClientConnection,
    first: usize,
    sent: u64,
    allowed: u64,
    recvd: u64,
    done: u64,
}

impl Conn {
    /// Hand what is allowed to rustls and write its records, until done or the socket is
    /// full.
    fn write_allowed(&mut self, ring: &Ring) -> Result<()> {
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.socket) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            if self.sent >= self.allowed {
                return Ok(());
            }
            let (a, b) = ring.slices(self.first, self.sent, self.allowed - self.sent);
            let n = self
                .tls
                .writer()
                .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
                .map_err(io_err("encrypt"))?;
            if n == 0 {
                return Ok(());
            }
            self.sent += n as u64;
        }
    }

    /// Read and decrypt what the socket has, checking the plaintext against `ring`.
    fn read_check(&mut self, ring: &Ring, buf: &mut [u8]) -> Result<u64> {
        let mut total = 0;
        loop {
            match self.tls.read_tls(&mut self.socket) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            }
            self.tls.process_new_packets().map_err(|e| e.to_string())?;
            loop {
                match self.tls.reader().read(buf) {
                    Ok(0) => return Err("the server ended TLS".into()),
                    Ok(n) => {
                        ring.check(self.first, self.recvd, &buf[..n])?;
                        self.recvd += n as u64;
                        total += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("decrypt: {e}")),
                }
            }
        }
    }
}

/// Rows 10a, 10b: each connection keeps `inflight` messages outstanding.
pub fn echo(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 100);
    let size: usize = args.num("size", 64);
    let inflight: u64 = args.num("inflight", 16);
    let (send, reply) = rings(size, false);
    let k = send.total() / send.frame_len;
    let config = client_config();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        let (tcp, tls) = open(addr, &config, &format!("/echo/{i}"))?;
        tcp.set_nonblocking(true).map_err(io_err("nonblocking"))?;
        let mut socket = TcpStream::from_std(tcp);
        poll.registry()
            .register(
                &mut socket,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        streams.push(Conn {
            socket,
            tls,
            first: i % k,
            sent: 0,
            allowed: inflight * send.frame_len as u64,
            recvd: 0,
            done: 0,
        });
    }
    for s in &mut streams {
        s.write_allowed(&send)?;
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    let mut meter = Meter::new(args);
    let (mut messages, mut bytes) = (0u64, 0u64);
    loop {
        poll_events(&mut poll, &mut events, Duration::from_millis(5))?;
        for event in events.iter() {
            let s = &mut streams[event.token().0];
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
    Ok(format!(
        "{{\"conns\":{conns},\"size\":{size},\"inflight\":{inflight},\"secs\":{secs:.3},\
         \"messages\":{messages},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},{}}}",
        messages as f64 / secs,
        payload_bytes / secs / 1e6,
        measured.cpu_fields(),
    ))
}

/// Row 10c: `conc` threads, each in a loop of connect, full TLS handshake, upgrade, Close
/// handshake, TCP close.
pub fn handshakes(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conc: usize = args.num("conc", 32);
    let config = client_config();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failure: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let threads: Vec<_> = (0..conc)
        .map(|t| {
            let (config, count, stop, failure) =
                (config.clone(), count.clone(), stop.clone(), failure.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = cycle(addr, &config, t, n) {
                        *failure.lock().unwrap() = Some(e);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    n += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut meter = Meter::new(args);
    while !meter.tick(Instant::now(), count.load(Ordering::Relaxed), 0) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(e) = failure.lock().unwrap().take() {
        return Err(e);
    }
    let measured = meter.result();
    Ok(format!(
        "{{\"conc\":{conc},\"secs\":{:.3},\"handshakes\":{},\"per_s\":{:.1},{}}}",
        measured.secs,
        measured.a,
        measured.a as f64 / measured.secs,
        measured.cpu_fields(),
    ))
}

/// One handshake cycle; the server's Close must come back, then the TCP end.
fn cycle(addr: SocketAddr, config: &Arc<ClientConfig>, t: usize, n: u64) -> Result<()> {
    let (mut tcp, mut tls) = open(addr, config, &format!("/hs/{t}/{n}"))?;
    let close = client_frame(CLOSE_FIN, &1000u16.to_be_bytes(), mask_key(n));
    tls.writer().write_all(&close).map_err(io_err("close"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 4 {
        tls.complete_io(&mut tcp).map_err(io_err("close"))?;
        match tls.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("close: {e}")),
        }
    }
    if got.len() < 2 || got[0] != CLOSE_FIN {
        return Err(format!("no Close back: {got:?}"));
    }
    Ok(())
}

/// Row 10d: `conns` upgraded TLS connections, held idle while the driver reads the server's
/// memory.
pub fn idle(args: &Args) -> Result<String> {
    let addr = addr(args)?;
    let conns: usize = args.num("conns", 2000);
    let config = client_config();
    let started = Instant::now();
    let mut open_ones = Vec::with_capacity(conns);
    for i in 0..conns {
        open_ones.push(open(addr, &config, &format!("/idle/{i}"))?);
    }
    let secs = started.elapsed().as_secs_f64();
    println!("ready");
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    // Every connection must still be open: a server that dropped one does not score.
    let mut probe = [0u8; 1];
    for (i, (tcp, _)) in open_ones.iter_mut().enumerate() {
        tcp.set_nonblocking(true).map_err(io_err("nonblocking"))?;
        match tcp.read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(0) => return Err(format!("connection {i} was closed by the server")),
            Ok(_) => {} // a TLS 1.3 session ticket is fine
            Err(e) => return Err(format!("connection {i}: {e}")),
        }
    }
    Ok(format!("{{\"conns\":{conns},\"connect_secs\":{secs:.3}}}"))
}
