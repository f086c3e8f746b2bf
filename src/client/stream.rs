//! The client's byte stream: plain TCP for `ws://`, TLS over TCP for `wss://` (feature
//! `tls`), and which of the two a URL asks for.
//!
//! Owns: [`Stream`] (reads, writes, timeouts and shutdown on either kind) and [`Target`]
//! (a URL split into what to connect to and what the handshake sends). Must not: do the
//! WebSocket handshake or touch the session (the connection does).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use super::error::ClientError;
use crate::handshake::Url;

/// What a URL asks for: where to connect, whether over TLS, and the [`Url`] the opening
/// handshake is built from.
pub(super) struct Target {
    /// For the handshake's request line and `Host` header.
    pub(super) url: Url,
    /// The port to connect to.
    pub(super) port: u16,
    /// `wss://`.
    pub(super) secure: bool,
}

impl Target {
    /// `ws://` as the core parses it; `wss://` (feature `tls`) the same with port 443 by
    /// default. The core's [`Url::host_header`] leaves out only port 80, `ws://`'s default;
    /// RFC 6455 §4.1 wants the port in `Host` only when it is not the scheme's default, so a
    /// `wss://` URL on 443 gets a handshake `Url` with port 80 (never used to connect), which
    /// leaves it out. (Hence `wss://host:80/` sends `Host: host`, without its port.)
    pub(super) fn parse(url: &str) -> Result<Target, ClientError> {
        #[cfg(feature = "tls")]
        if let Some(rest) = url
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("wss://"))
            .map(|_| &url[6..])
        {
            let mut parsed = Url::parse(&format!("ws://{rest}"))?;
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let explicit_port = match authority.rsplit_once(':') {
                Some((host, _)) => !authority.starts_with('[') || host.ends_with(']'),
                None => false,
            };
            let port = if explicit_port { parsed.port } else { 443 };
            if port == 443 {
                parsed.port = 80;
            }
            return Ok(Target {
                url: parsed,
                port,
                secure: true,
            });
        }
        let url = Url::parse(url)?;
        Ok(Target {
            port: url.port,
            url,
            secure: false,
        })
    }
}

/// A connected stream, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::TlsStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => &tls.sock,
        }
    }

    pub(super) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    pub(super) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    pub(super) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// End the connection: over TLS our `close_notify` first (RFC 8446 §6.1), best effort.
    pub(super) fn shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Stream::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.conn.write_tls(&mut tls.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            // The end of the stream with or without the server's close_notify: the WebSocket
            // closing handshake, not TLS, says whether the end was clean.
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => match tls.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    /// Over TLS, the records rustls still holds (after a write timeout) go out.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn wss_defaults_to_443_and_leaves_the_default_port_out_of_host() {
        let target = Target::parse("WSS://example.com/ws/a?x=1").ok().unwrap();
        assert!(target.secure);
        assert_eq!(target.port, 443);
        assert_eq!(target.url.host_header(), "example.com");
        assert_eq!(target.url.path, "/ws/a?x=1");

        let target = Target::parse("wss://example.com:8443").ok().unwrap();
        assert_eq!((target.port, target.secure), (8443, true));
        assert_eq!(target.url.host_header(), "example.com:8443");

        let target = Target::parse("wss://[::1]:443/").ok().unwrap();
        assert_eq!(target.port, 443);
        assert_eq!(target.url.host_header(), "[::1]");
        let target = Target::parse("wss://[::1]/").ok().unwrap();
        assert_eq!((target.url.host.as_str(), target.port), ("::1", 443));

        let target = Target::parse("ws://example.com/").ok().unwrap();
        assert_eq!((target.port, target.secure), (80, false));
        assert!(Target::parse("wss://").is_err());
        assert!(Target::parse("https://example.com/").is_err());
    }
}
