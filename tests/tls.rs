//! The server and the client over TLS (feature `tls`), on loopback, with certificates made
//! here by `rcgen`: what the plain tests check, through TLS (sizes, fragmentation, the
//! request and its first frame together, HTTP, backpressure), and what TLS adds (a stalled
//! or garbage handshake, a bad or misnamed certificate, a certificate reload).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, RootCertStore, StreamOwned};

use common::{masked, try_read_frame, upgrade_request, workers, Recorder, Seen, WAIT};
use wsloop::client::{Client, ClientError, ClientTls};
use wsloop::server::{CloseReason, Handle, Server, ServerConfig, TlsConfig};
use wsloop::{CloseCode, CloseFrame, Message};

/// A CA, and a server certificate it signed for `localhost`.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wsloop test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn server(&self) -> TlsConfig {
        TlsConfig::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    fn client(&self) -> ClientTls {
        ClientTls::with_ca_pem(self.ca_pem.as_bytes()).unwrap()
    }

    /// A raw rustls client configuration trusting this CA, for hand-made frames.
    fn raw(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

struct TlsServer {
    pki: Pki,
    port: u16,
    handle: Handle,
    seen: std::sync::mpsc::Receiver<Seen>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

type Raw = StreamOwned<ClientConnection, TcpStream>;

impl TlsServer {
    fn start(configure: impl FnOnce(&mut ServerConfig)) -> TlsServer {
        let pki = Pki::new();
        let (tx, rx) = channel();
        let server = Server::builder()
            .bind("127.0.0.1:0")
            .tls(pki.server())
            .configure(|c| {
                c.close_timeout = Duration::from_secs(1);
                // The plain tests' sizes go up to 16 MiB (the default limit is 1 MiB).
                c.session = LIMITS;
            })
            .workers(workers())
            .configure(configure)
            .build()
            .expect("bind");
        let port = server.local_addr().unwrap().port();
        let make = move |_| Recorder {
            seen: tx.clone(),
            echo: true,
        };
        let (handle, thread) = server.spawn_each(make).unwrap();
        TlsServer {
            pki,
            port,
            handle,
            seen: rx,
            thread: Some(thread),
        }
    }

    fn url(&self, sid: &str) -> String {
        format!("wss://localhost:{}/ws/{sid}", self.port)
    }

    fn connect_with(&self, tls: ClientTls, sid: &str) -> Result<Client, ClientError> {
        Client::builder()
            .read_timeout(Some(WAIT))
            .session_config(LIMITS)
            .tls(tls)
            .connect(&self.url(sid))
    }

    fn connect(&self, sid: &str) -> Client {
        let client = self.connect_with(self.pki.client(), sid).expect("connect");
        assert_eq!(self.next(), Seen::Open(sid.into()));
        client
    }

    /// A TLS stream, handshake done, nothing sent over it yet.
    fn raw(&self) -> Raw {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(self.pki.raw(), name).unwrap();
        let mut raw = StreamOwned::new(conn, tcp);
        while raw.conn.is_handshaking() {
            raw.conn.complete_io(&mut raw.sock).unwrap();
        }
        assert_eq!(raw.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        raw
    }

    /// A raw TLS stream with its upgrade to `sid` done.
    fn raw_session(&self, sid: &str) -> Raw {
        let mut raw = self.raw();
        raw.write_all(upgrade_request(&format!("/ws/{sid}"), "").as_bytes())
            .unwrap();
        assert!(read_head(&mut raw).starts_with("HTTP/1.1 101 "));
        assert_eq!(self.next(), Seen::Open(sid.into()));
        raw
    }

    fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the handler saw nothing")
    }

    fn wait_for(&self, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let seen = self.seen.recv_timeout(left).expect("condition never seen");
            if pred(&seen) {
                return seen;
            }
        }
    }

    fn stop(mut self) {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

/// Messages up to 64 MiB both ways (the library's default is 1 MiB).
const LIMITS: wsloop::session::SessionLimits = wsloop::session::SessionLimits {
    max_frame_size: 64 << 20,
    max_message_size: 64 << 20,
};

fn read_head(r: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        r.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Read until the server closes; what came, and how long it took.
fn read_until_closed(s: &mut impl Read) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (out, started.elapsed())
}

#[test]
fn echoes_text_and_binary_at_the_length_form_edges_over_tls() {
    let server = TlsServer::start(|_| {});
    let mut client = server.connect("echo");
    for size in [0usize, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        client.send_text(&text).unwrap();
        assert_eq!(client.recv().unwrap(), Message::Text(text), "text {size}");
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        client.send_binary(&bytes).unwrap();
        assert_eq!(
            client.recv().unwrap(),
            Message::Binary(bytes),
            "binary {size}"
        );
    }
    client.close(CloseCode::NormalClosure, "done").unwrap();
    let closed = server.wait_for(|s| matches!(s, Seen::Close(..)));
    assert_eq!(
        closed,
        Seen::Close(
            "echo".into(),
            CloseReason::ByClient(CloseFrame::new(CloseCode::NormalClosure, "done"))
        )
    );
    server.stop();
}

#[test]
fn fragmented_input_a_byte_per_record_with_a_ping_in_the_middle() {
    let server = TlsServer::start(|_| {});
    let mut s = server.raw_session("frag");
    let mut bytes = masked(0x01, "κό".as_bytes()); // Text, FIN clear
    bytes.extend(masked(0x89, b"mid")); // Ping
    bytes.extend(masked(0x00, "σ".as_bytes())); // Continuation
    bytes.extend(masked(0x80, "με".as_bytes())); // Continuation, FIN
    for b in &bytes {
        // One TLS record per byte, to cross every boundary.
        s.write_all(std::slice::from_ref(b)).unwrap();
        s.flush().unwrap();
    }
    assert_eq!(try_read_frame(&mut s), Some((0x8a, b"mid".to_vec())));
    assert_eq!(
        try_read_frame(&mut s),
        Some((0x81, "κόσμε".as_bytes().to_vec()))
    );
    server.stop();
}

#[test]
fn a_request_and_its_first_frame_in_one_record() {
    let server = TlsServer::start(|_| {});
    let mut s = server.raw();
    let mut bytes = upgrade_request("/ws/eager", "").into_bytes();
    bytes.extend(masked(0x81, b"early"));
    s.write_all(&bytes).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    assert_eq!(try_read_frame(&mut s), Some((0x81, b"early".to_vec())));
    assert_eq!(server.next(), Seen::Open("eager".into()));
    server.stop();
}

#[test]
fn plain_http_requests_are_served_over_tls_and_a_plaintext_request_gets_no_answer() {
    let server = TlsServer::start(|_| {});
    let mut s = server.raw();
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut s);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    // The same request in plaintext: no HTTP answer (no plaintext fallback), only a TLS
    // alert, and the connection is closed.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain
        .write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(&mut plain);
    assert!(took < WAIT, "closed, not timed out");
    assert!(!answer.starts_with(b"HTTP"), "{answer:?}");
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    server.stop();
}

#[test]
fn garbage_instead_of_a_client_hello_drops_only_that_connection() {
    let server = TlsServer::start(|_| {});
    let mut before = server.connect("before");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    // Noise; a handshake record whose ClientHello claims 16 MiB; a plaintext request.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0xff, 0xff, 0xff];
    hello.extend_from_slice(&noise[..60]);
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    for garbage in [noise, hello, request] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(&garbage);
        let (answer, took) = read_until_closed(&mut s);
        assert!(took < WAIT, "the garbage connection is closed");
        assert!(!answer.starts_with(b"HTTP"), "{answer:?}");
    }
    // The session opened before and a new one both carry on.
    before.send_text("still here").unwrap();
    assert_eq!(before.recv().unwrap(), Message::Text("still here".into()));
    assert_eq!(
        server.next(),
        Seen::Message("before".into(), Message::Text("still here".into()))
    );
    let mut after = server.connect("after");
    after.send_text("hi").unwrap();
    assert_eq!(after.recv().unwrap(), Message::Text("hi".into()));
    server.stop();
}

#[test]
fn a_stalled_tls_handshake_is_dropped_at_the_handshake_timeout() {
    let server = TlsServer::start(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    // The first bytes of a ClientHello record, and then nothing.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .unwrap();
    let (answer, took) = read_until_closed(&mut stalled);
    assert!(answer.is_empty(), "{answer:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < WAIT, "{took:?}");
    let mut client = server.connect("fresh");
    client.send_text("hi").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("hi".into()));
    server.stop();
}

#[test]
fn a_full_server_drops_a_stalled_tls_handshake_for_a_newcomer() {
    // One loop: a full loop drops its own oldest handshake.
    let server = TlsServer::start(|c| {
        c.max_connections = 2;
        c.workers = 1;
    });
    let _session = server.connect("session");
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Full: the newcomer takes the slot of the connection still in its TLS handshake.
    let mut newcomer = server.connect("newcomer");
    let (answer, took) = read_until_closed(&mut stalled);
    assert!(answer.is_empty() && took < WAIT);
    newcomer.send_text("in").unwrap();
    assert_eq!(newcomer.recv().unwrap(), Message::Text("in".into()));
    server.stop();
}

#[test]
fn a_connection_refused_while_its_tls_handshake_runs_gets_its_503_through_tls() {
    let server = TlsServer::start(|c| c.max_connections = 1);
    let _session = server.connect("session");
    let error = server
        .connect_with(server.pki.client(), "refused")
        .expect_err("full");
    assert!(error.to_string().contains("503"), "{error:?}");
    server.stop();
}

#[test]
fn an_untrusted_certificate_is_a_clear_client_error() {
    let server = TlsServer::start(|_| {});
    // The public roots do not know the test CA.
    let error = server
        .connect_with(ClientTls::platform(), "x")
        .expect_err("untrusted");
    assert!(
        matches!(
            error,
            ClientError::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("TLS handshake failed"),
        "{error}"
    );
    // A CA that is not the server's.
    let other = Pki::new();
    let error = server
        .connect_with(other.client(), "x")
        .expect_err("wrong CA");
    assert!(matches!(error, ClientError::Tls(_)), "{error:?}");
    server.stop();
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let server = TlsServer::start(|_| {});
    // The certificate is for `localhost`, not for the address.
    let url = format!("wss://127.0.0.1:{}/ws/x", server.port);
    let error = Client::builder()
        .tls(server.pki.client())
        .connect(&url)
        .expect_err("wrong name");
    assert!(
        matches!(
            error,
            ClientError::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{error:?}"
    );
    server.stop();
}

#[test]
fn a_reloaded_certificate_serves_new_connections_and_open_ones_carry_on() {
    let server = TlsServer::start(|_| {});
    let mut old = server.connect("old");
    let renewed = Pki::new();
    server.handle.reload_tls(renewed.server()).unwrap();
    // New connections get the new certificate: the old CA no longer verifies it.
    let error = server
        .connect_with(server.pki.client(), "x")
        .expect_err("old CA");
    assert!(matches!(error, ClientError::Tls(_)), "{error:?}");
    let mut new = server
        .connect_with(renewed.client(), "new")
        .expect("new CA");
    assert_eq!(server.next(), Seen::Open("new".into()));
    new.send_text("new").unwrap();
    assert_eq!(new.recv().unwrap(), Message::Text("new".into()));
    old.send_text("old").unwrap();
    assert_eq!(old.recv().unwrap(), Message::Text("old".into()));
    server.stop();
}

#[test]
fn a_plain_server_refuses_a_certificate_reload() {
    let server = Server::builder().bind("127.0.0.1:0").build().unwrap();
    let error = server.handle().reload_tls(Pki::new().server()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn bad_pem_is_an_error_not_a_panic() {
    let pki = Pki::new();
    assert!(TlsConfig::from_pem(b"not pem", pki.key_pem.as_bytes()).is_err());
    assert!(TlsConfig::from_pem(pki.cert_pem.as_bytes(), b"").is_err());
    // A key that is not the certificate's.
    let other = Pki::new();
    assert!(TlsConfig::from_pem(pki.cert_pem.as_bytes(), other.key_pem.as_bytes()).is_err());
    assert!(TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").is_err());
    assert!(ClientTls::with_ca_pem(b"").is_err());
}

#[test]
fn a_client_that_never_reads_through_tls_is_closed_and_the_others_get_everything() {
    let server = TlsServer::start(|c| c.max_queued_bytes = 256 << 10);
    let mut reader = server.connect("reader");
    let _stuck = server.raw_session("stuck");
    for i in 0..300u32 {
        let mut payload = vec![0u8; 64 << 10];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        server.handle.broadcast(payload).unwrap();
        match reader.recv().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..4], &i.to_be_bytes(), "message {i}"),
            other => panic!("{other:?}"),
        }
    }
    let closed = server.wait_for(|s| matches!(s, Seen::Close(..)));
    assert_eq!(
        closed,
        Seen::Close("stuck".into(), CloseReason::WriteQueueFull)
    );
    server.stop();
}

#[test]
fn a_tls_connection_handed_to_another_loop_with_bytes_pipelined_keeps_them() {
    // Two loops: the second connection for a sid lands on the loop that does not hold it and
    // is handed over, TLS state and all, with more pipelined frames than one read takes.
    let server = TlsServer::start(|c| {
        c.workers = 2;
        c.read_buffer_size = 4096;
    });
    let _first = server.connect("dup");
    let mut second = server.raw();
    let mut bytes = upgrade_request("/ws/dup", "").into_bytes();
    let payloads: Vec<Vec<u8>> = (1..4u8).map(|i| vec![i; 4_000]).collect();
    for p in &payloads {
        bytes.extend(masked(0x82, p));
    }
    second.write_all(&bytes).unwrap();
    assert!(read_head(&mut second).starts_with("HTTP/1.1 101 "));
    for p in &payloads {
        assert_eq!(try_read_frame(&mut second), Some((0x82, p.clone())));
    }
    server.stop();
}

#[test]
fn a_ping_flood_through_tls_from_a_client_that_never_reads_is_held_back() {
    let server = TlsServer::start(|c| {
        c.max_queued_bytes = 64 << 10;
        c.idle_timeout = Duration::from_millis(300);
        c.pong_timeout = Duration::from_millis(300);
    });
    let mut s = server.raw_session("flood");
    // Pings, never reading the pongs: once the queue is over the mark the server stops
    // reading (rustls included), so our writes block instead of the server's memory growing.
    s.sock
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ping = masked(0x89, &[0u8; 125]);
    let mut sent = 0usize;
    for _ in 0..200_000 {
        match s.write_all(&ping) {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    assert!(sent < 200_000, "the flood was never held back");
    assert_eq!(
        server.wait_for(|s| matches!(s, Seen::Close(..))),
        Seen::Close("flood".into(), CloseReason::WriteQueueFull)
    );
    drop(s);
    let mut after = server.connect("after");
    after.send_text("hi").unwrap();
    assert_eq!(after.recv().unwrap(), Message::Text("hi".into()));
    server.stop();
}
