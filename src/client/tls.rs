//! `wss://` for the client (feature `tls`): the roots a server's certificate is verified
//! against, and the TLS handshake over a connected socket.
//!
//! Owns: [`ClientTls`] (a rustls client configuration: a root store, ALPN `http/1.1`) and
//! [`connect`], which runs the TLS handshake with SNI within the connect deadline. Must not:
//! parse URLs or know about WebSocket (the connection does; the session never sees TLS).
//!
//! Roots: "the platform's" are Mozilla's, from the `webpki-roots` crate (the same on every
//! operating system, no files or system calls; a program that must trust an enterprise CA
//! gives its own [`rustls::RootCertStore`] with [`ClientTls::with_roots`]). The crypto
//! provider is `ring`, as for the server.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, RootCertStore, StreamOwned};

use super::error::{is_timeout, time_left, ClientError};

/// How a `wss://` client verifies servers (feature `tls`): the roots it trusts.
///
/// ```no_run
/// use wsloop::client::{Client, ClientTls};
/// let ca = std::fs::read("ca.pem")?;
/// let client = Client::builder()
///     .tls(ClientTls::with_ca_pem(&ca)?)
///     .connect("wss://localhost:8443/ws/alice")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

/// Two `ClientTls` are equal when they are the same configuration (clones of one another).
impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for ClientTls {}

impl ClientTls {
    /// Trust the usual public roots (Mozilla's, from `webpki-roots`): what a `wss://` client
    /// uses when its configuration names none.
    pub fn platform() -> ClientTls {
        static PLATFORM: OnceLock<ClientTls> = OnceLock::new();
        PLATFORM
            .get_or_init(|| {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                ClientTls::with_roots(roots)
            })
            .clone()
    }

    /// Trust exactly these roots.
    pub fn with_roots(roots: RootCertStore) -> ClientTls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls' safe default versions");
        let mut config = builder.with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ClientTls::from_rustls(Arc::new(config))
    }

    /// Trust the CA certificates in this PEM text (a test CA, a self-signed server).
    pub fn with_ca_pem(pem: &[u8]) -> io::Result<ClientTls> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| invalid(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("no CERTIFICATE in the CA PEM".into()));
        }
        Ok(ClientTls::with_roots(roots))
    }

    /// A rustls configuration of your own (client certificates, another verifier), used as
    /// it is.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> ClientTls {
        ClientTls { config }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A TLS client stream over TCP, blocking.
pub(super) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// The TLS handshake with `host` (its name for SNI and the certificate check, or an IP
/// address, checked against the certificate's IP addresses) over `tcp`, before `deadline`.
/// A certificate that does not verify is [`ClientError::Tls`], with rustls' reason.
pub(super) fn connect(
    tls: &ClientTls,
    host: &str,
    mut tcp: TcpStream,
    deadline: Option<Instant>,
) -> Result<TlsStream, ClientError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| invalid(format!("{host:?} is not a valid TLS server name")))?;
    let mut conn = ClientConnection::new(tls.config.clone(), name)?;
    while conn.is_handshaking() {
        let left = time_left(deadline)?;
        tcp.set_read_timeout(left)?;
        tcp.set_write_timeout(left)?;
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            // A timeout comes back round to `time_left`, which reports it.
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
            Err(e) => {
                let tls_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                return Err(match tls_error {
                    Some(tls_error) => ClientError::Tls(tls_error.clone()),
                    None => ClientError::Io(e),
                });
            }
        }
    }
    Ok(StreamOwned::new(conn, tcp))
}
