//! TLS for the server (feature `tls`): https and wss on one port, with rustls.
//!
//! Owns: [`TlsConfig`] (a certificate chain and key, from PEM or DER, made into a rustls
//! server configuration with ALPN `http/1.1`), the slot that holds the configuration new
//! connections get (replaced by `Handle::reload_tls`), and [`TlsStream`]: one accepted TCP
//! socket behind a rustls `ServerConnection`, as a non-blocking `Read + Write` stream of
//! plaintext. Must not: know about HTTP, WebSocket or the loop. The protocol core never sees
//! TLS: it gets the same plaintext bytes it would get from a plain socket.
//!
//! # Design
//!
//! rustls is sans-I/O like our core: ciphertext goes in with `read_tls` and
//! `process_new_packets`, plaintext comes out of `reader()`; plaintext goes in with
//! `writer()`, ciphertext comes out with `write_tls`. A [`TlsStream`] puts that between the
//! socket and the loop, so that the loop's read and write paths run unchanged:
//!
//! - **Reading** fills the caller's buffer with plaintext, taking records from the socket
//!   until the buffer is full or the socket would block. A short read therefore still means
//!   "the socket is empty", which the loop's edge-triggered reads rely on. Handshake
//!   messages rustls answers while reading (the server's flight) are written at once.
//! - **Writing** hands plaintext to rustls, which encrypts it into records it buffers, then
//!   writes the records. rustls buffers at most [`TLS_BUFFER_LIMIT`] bytes of records: past
//!   that, a write takes nothing and reports `WouldBlock`, so the loop's write queue, not
//!   rustls, holds what a slow reader has not taken, and the high-water mark
//!   (`max_queued_bytes`) and the read pause work through TLS as they do without it.
//! - **Flushing** (`Write::flush`) writes the records rustls still holds and reports
//!   `WouldBlock` while some remain, so that the loop keeps WRITABLE interest until they are
//!   out even when its own queue is empty.
//!
//! The TLS handshake happens while the connection is in its HTTP handshake phase, so it
//! counts against `handshake_timeout` and `max_connections` like a slow request head; a
//! client that stalls in it is dropped at the handshake timeout. Anything that is not TLS
//! (a plain HTTP request, garbage) fails `process_new_packets`: the connection gets rustls'
//! alert, a log line, and is dropped; there is no plaintext fallback on a TLS port.
//!
//! Memory: a connection holds rustls' state (its buffers grow to a record, 16 KiB, while
//! records pass, and received plaintext is bounded at 16 KiB by rustls) plus at most
//! [`TLS_BUFFER_LIMIT`] of encrypted output.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::{Arc, RwLock};

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

/// How many bytes of encrypted records rustls may hold for one connection before a write
/// takes nothing more (`set_buffer_limit`). Four full records: one `write_tls` moves plenty
/// per system call, and what a slow reader leaves waits in the loop's queue, where it is
/// charged against `max_queued_bytes`.
pub(crate) const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// A server's certificate chain and private key, ready for [`ServerBuilder::tls`] or
/// [`Handle::reload_tls`] (feature `tls`).
///
/// Connections negotiate TLS 1.2 or 1.3 with rustls' safe defaults over the `ring`
/// provider, and ALPN `http/1.1` (the only protocol this server speaks, for https and wss
/// alike; RFC 7301 §3.2: a client that offers ALPN without it is refused).
///
/// ```no_run
/// use wsloop::server::{Server, TlsConfig};
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let server = Server::builder().bind("0.0.0.0:8443").tls(tls).build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`ServerBuilder::tls`]: super::ServerBuilder::tls
/// [`Handle::reload_tls`]: super::Handle::reload_tls
#[derive(Clone, Debug)]
pub struct TlsConfig {
    config: Arc<rustls::ServerConfig>,
}

impl TlsConfig {
    /// From PEM files: `cert_chain` holds the server's certificate first, then any
    /// intermediates; `key` holds its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        TlsConfig::from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// From PEM text in memory, as [`TlsConfig::from_pem_files`] reads it.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Self> {
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(invalid(
                "certificate chain: no CERTIFICATE in the PEM".into(),
            ));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("private key: {e}")))?;
        TlsConfig::from_der(chain, key)
    }

    /// From DER: the chain (the server's certificate first) and its private key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS versions: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| invalid(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }

    /// A rustls configuration of your own (client certificates, other versions, a
    /// certificate resolver), used as it is: set its `alpn_protocols` to `http/1.1` (or leave
    /// them empty).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig { config }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The configuration that newly accepted connections get, shared by the loops and the
/// handles; empty for a plain server. Connections keep the configuration they started
/// with, so a reload affects new connections only.
#[derive(Debug, Default)]
pub(crate) struct TlsSlot(RwLock<Option<Arc<rustls::ServerConfig>>>);

impl TlsSlot {
    /// Whether this server speaks TLS.
    pub(crate) fn is_on(&self) -> bool {
        self.read().is_some()
    }

    /// Set the configuration; `replace` false makes it fail (returning false) on a plain
    /// server, so that a reload never turns TLS on for a port that was plain.
    pub(crate) fn set(&self, tls: TlsConfig, replace: bool) -> bool {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        if replace && slot.is_none() {
            return false;
        }
        *slot = Some(tls.config);
        true
    }

    fn read(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A TLS stream over a newly accepted socket, with the current configuration.
    pub(crate) fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let config = self
            .read()
            .ok_or_else(|| io::Error::other("not a TLS server"))?;
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(TlsStream {
            tcp,
            tls,
            early: false,
        })
    }
}

/// An accepted socket behind rustls: reads and writes plaintext, non-blocking.
#[derive(Debug)]
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// Plaintext was written during the TLS handshake (an answer to a connection refused
    /// at once, such as the 503 of a full server): rustls holds it until the handshake is
    /// done, and the stream is not flushed before then.
    early: bool,
}

impl TlsStream {
    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Whether rustls holds records not yet written to the socket.
    pub(crate) fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    /// Write the records rustls holds, until done or the socket would block.
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Our TLS `close_notify` (RFC 8446 §6.1), then our TCP FIN.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        self.tls.send_close_notify();
        // Best effort: the WebSocket Close (or the HTTP answer) is out already.
        let _ = self.push();
        self.tcp.shutdown(Shutdown::Write)
    }

    /// Records were read: decrypt them, and answer what the handshake needs answered. A
    /// TLS error (garbage instead of a ClientHello, a bad record) ends the connection, with
    /// rustls' alert sent when the socket takes it.
    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.tls.process_new_packets() {
            let peer = self.tcp.peer_addr().map(|a| a.to_string());
            let peer = peer.as_deref().unwrap_or("a client");
            if self.tls.is_handshaking() {
                log::info!("TLS handshake with {peer} failed: {e}");
            } else {
                log::info!("TLS error from {peer}: {e}");
            }
            let _ = self.push();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // A write error shows on the next write; reading goes on until then.
        let _ = self.push();
        Ok(())
    }
}

impl Read for TlsStream {
    /// Plaintext, until `buf` is full or the socket would block: a short read means the
    /// socket was empty. `Ok(0)` at the end of the stream, with or without the client's
    /// `close_notify` (a WebSocket ends with its own Close; many clients omit the alert).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            match self.tls.reader().read(&mut buf[filled..]) {
                Ok(n) => {
                    filled += n;
                    if n == 0 || filled == buf.len() {
                        return Ok(filled);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) if filled > 0 => {
                    log::debug!("TLS read: {e}; delivering what came before");
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                // The end: the reader reports it on the next turn.
                Ok(0) => {}
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypt what rustls' buffer takes, and write it; `WouldBlock` when it takes nothing.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.push()?;
        self.early |= self.tls.is_handshaking();
        let n = self.tls.writer().write_vectored(bufs)?;
        self.push()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Write the records rustls holds; `WouldBlock` while some remain, or while plaintext
    /// written early waits for the handshake (which the client's next records complete).
    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        if self.tls.wants_write() || (self.early && self.tls.is_handshaking()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}
