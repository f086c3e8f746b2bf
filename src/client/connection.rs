//! A client connection: the socket, the session, and the I/O between them.
//!
//! Owns: [`Client`]: connecting and the opening handshake on the wire, sending, receiving,
//! the closing handshake and the timers of each (see the [module doc](super) for the rules
//! it follows). Must not: make protocol rules of its own (the [`Session`] does).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::config::ClientConfig;
use super::error::{is_timeout, time_left, ClientError};
use super::stream::{Stream, Target};
use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::handshake::ClientHandshake;
use crate::mask::KeyGenerator;
use crate::session::{Event, Message, Role, Session};

/// The size of the client's one read buffer.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// How the connection ended; every later operation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// After a closing handshake; the server's Close.
    Closed(CloseFrame),
    /// We failed the connection because the server broke the protocol.
    Failed(ProtocolError),
    /// TCP ended without a closing handshake, or an I/O error ended it.
    Lost,
}

impl Ended {
    fn error(&self) -> ClientError {
        match self {
            Ended::Closed(frame) => ClientError::Closed(frame.clone()),
            Ended::Failed(error) => ClientError::Protocol(*error),
            Ended::Lost => ClientError::ConnectionLost,
        }
    }
}

/// How a wait for the server to close TCP ended.
#[derive(Debug)]
enum Wait {
    Eof,
    TimedOut,
    Failed(io::Error),
}

/// A blocking WebSocket client connection.
///
/// Not split into halves: one thread owns it, and it reads only inside [`Client::recv`],
/// [`Client::recv_event`] and [`Client::close`]. A program that must send while waiting for
/// messages gives it a read timeout and sends between reads (see `examples/client.rs`).
/// Dropping a client without [`Client::close`] ends the TCP connection without a closing
/// handshake (the server sees 1006).
///
/// ```no_run
/// use wsloop::client::Client;
/// use wsloop::{CloseCode, Message};
///
/// let mut client = Client::connect("ws://127.0.0.1:8080/ws/alice")?;
/// client.send_text("hello")?;
/// match client.recv()? {
///     Message::Text(text) => println!("{text}"),
///     Message::Binary(bytes) => println!("{} bytes", bytes.len()),
/// }
/// client.close(CloseCode::NormalClosure, "bye")?;
/// # Ok::<(), wsloop::client::ClientError>(())
/// ```
pub struct Client {
    /// `None` once the connection has ended.
    stream: Option<Stream>,
    session: Session,
    /// The one read buffer; `buf[pos..filled]` was read but not yet fed to the session.
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// A protocol error from the last input, reported once the events before it are taken.
    failing: Option<ProtocolError>,
    protocol: Option<String>,
    config: ClientConfig,
    ended: Option<Ended>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer_addr())
            .field("protocol", &self.protocol)
            .field("session", &self.session)
            .field("buffered", &(self.filled - self.pos))
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to a `ws://host[:port][/path]` URL (or, feature `tls`, `wss://`, verified
    /// against the usual public roots) with the default [`ClientConfig`] and do the opening
    /// handshake (§4.1).
    pub fn connect(url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, &ClientConfig::default())
    }

    /// Connect to a `ws://` URL (or `wss://`, feature `tls`: TLS with SNI, verified
    /// against `ClientConfig::tls`) with `config` and do the opening handshake (§4.1).
    pub fn connect_with(url: &str, config: &ClientConfig) -> Result<Client, ClientError> {
        let target = Target::parse(url)?;
        let url = &target.url;
        let deadline = config.connect_timeout.map(|t| Instant::now() + t);
        let tcp = open_tcp(&url.host, target.port, deadline)?;
        tcp.set_nodelay(true)?;
        let mut stream = if target.secure {
            secure(tcp, &url.host, config, deadline)?
        } else {
            Stream::Plain(tcp)
        };

        // §4.1: a fresh random nonce for each handshake.
        let nonce = KeyGenerator::new().nonce();
        let protocols: Vec<&str> = config.protocols.iter().map(String::as_str).collect();
        #[cfg(feature = "deflate")]
        let (mut handshake, request) = match &config.deflate {
            Some(deflate) => ClientHandshake::with_deflate(url, nonce, &protocols, deflate),
            None => ClientHandshake::new(url, nonce, &protocols),
        };
        #[cfg(not(feature = "deflate"))]
        let (mut handshake, request) = ClientHandshake::new(url, nonce, &protocols);
        stream.set_write_timeout(time_left(deadline)?)?;
        stream.write_all(&request)?;

        let mut buf = vec![0; READ_BUFFER_SIZE];
        let (response, used, filled) = loop {
            stream.set_read_timeout(time_left(deadline)?)?;
            let n = match stream.read(&mut buf) {
                Ok(0) => {
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the opening handshake",
                    )))
                }
                Ok(n) => n,
                // A timeout comes back round to `time_left`, which reports it.
                Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some((response, used)) = handshake.push(&buf[..n])? {
                break (response, used, n);
            }
        };
        stream.set_read_timeout(config.read_timeout)?;
        stream.set_write_timeout(config.write_timeout)?;
        let protocol = response.protocol().map(String::from);
        log::debug!(
            "connected to {}:{}{} (subprotocol {:?})",
            url.host,
            target.port,
            url.path,
            protocol
        );
        #[allow(unused_mut)] // changed only with the `deflate` feature
        let mut session = Session::new(Role::Client, config.session);
        // RFC 7692: the server accepted our offer (the handshake checked its answer).
        #[cfg(feature = "deflate")]
        if let (Some(negotiated), Some(deflate)) = (response.deflate(), &config.deflate) {
            log::debug!("permessage-deflate: {negotiated:?}");
            session.set_deflate(negotiated, deflate);
        }
        Ok(Client {
            stream: Some(stream),
            session,
            buf,
            // The server may send its first frames in the same packet as its response: they
            // stay in the buffer and are the first bytes fed to the session.
            pos: used,
            filled,
            failing: None,
            protocol,
            config: config.clone(),
            ended: None,
        })
    }

    /// The subprotocol the server selected, if any (§4.1).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters agreed with the server (feature `deflate`); `None`
    /// when not offered or declined, and the connection is then not compressed.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<crate::deflate::Negotiated> {
        self.session.deflate().copied()
    }

    /// The configuration the client was made with (with the timeouts as set since).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The protocol state, to inspect (e.g. [`Session::state`], [`Session::close_sent`]).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether the connection is still open: no closing handshake has completed and nothing
    /// has ended it.
    pub fn is_open(&self) -> bool {
        self.ended.is_none()
    }

    /// The server's address, while connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.as_ref().and_then(|s| s.peer_addr().ok())
    }

    /// Set the socket's read timeout (see [`ClientConfig::read_timeout`]). The close timeout
    /// is separate and not affected.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(stream) = &self.stream {
            stream.set_read_timeout(timeout)?;
        }
        self.config.read_timeout = timeout;
        Ok(())
    }

    /// Set the socket's write timeout (see [`ClientConfig::write_timeout`]). After a timeout
    /// the rest of what was being sent stays queued and goes out with the next operation.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(stream) = &self.stream {
            stream.set_write_timeout(timeout)?;
        }
        self.config.write_timeout = timeout;
        Ok(())
    }

    // ----- Sending -----------------------------------------------------------------------

    /// Send a text message (in one frame).
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.check_open()?;
        self.session.send_text(text)?;
        self.flush()
    }

    /// Send a binary message (in one frame).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.check_open()?;
        self.session.send_binary(data)?;
        self.flush()
    }

    /// Send a message (in one frame).
    pub fn send(&mut self, message: Message) -> Result<(), ClientError> {
        match &message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
        }
    }

    /// Send a Ping with at most 125 bytes of payload (§5.5.2). Its Pong shows up in
    /// [`Client::recv_event`]; [`Client::recv`] passes over it.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.check_open()?;
        self.session.ping(payload)?;
        self.flush()
    }

    // ----- Receiving ---------------------------------------------------------------------

    /// The next data message. Pings are answered and control frames passed over on the way.
    ///
    /// When the server closes the connection, the answering Close is sent, the client waits
    /// for the server to close TCP (up to the close timeout, §7.1.1), drops the socket and
    /// returns [`ClientError::Closed`] with the server's Close; so do all later calls.
    pub fn recv(&mut self) -> Result<Message, ClientError> {
        loop {
            match self.recv_event()? {
                Event::Message(message) => return Ok(message),
                Event::Close(frame) => return Err(ClientError::Closed(frame)),
                Event::Ping(_) | Event::Pong(_) => {}
            }
        }
    }

    /// The next event, control frames included: a [`Event::Ping`] has already been answered,
    /// and an [`Event::Close`] is returned once the closing handshake has ended as
    /// [`Client::recv`] describes (later calls return [`ClientError::Closed`]).
    ///
    /// If the server breaks the protocol, the Close that fails the connection is sent, the
    /// client waits for the server to close TCP (up to the close timeout), and the error is
    /// returned as [`ClientError::Protocol`], by this call and all later ones.
    pub fn recv_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(event) = self.session.next_event() {
                match &event {
                    // Taking the Close wrote the answering Close (if one was due).
                    Event::Close(frame) => self.finish_closed_by_server(frame.clone()),
                    // Taking the Ping wrote its Pong.
                    Event::Ping(_) => self.flush_reply(),
                    Event::Pong(_) | Event::Message(_) => {}
                }
                return Ok(event);
            }
            // No event left: a protocol error found in the input is due now (the session has
            // just written its failing Close).
            if let Some(error) = self.failing.take() {
                return Err(self.fail(error));
            }
            if let Some(ended) = &self.ended {
                return Err(ended.error());
            }
            if !self.session.output().is_empty() {
                // Left over from a write timeout.
                self.flush()?;
            }
            self.fill()?;
        }
    }

    // ----- Closing -----------------------------------------------------------------------

    /// Do the closing handshake (§7.1.2): send a Close with `code` and `reason` (cut to 123
    /// bytes), read and discard until the server's Close arrives and the server closes TCP or
    /// the close timeout passes, then drop the socket.
    ///
    /// `Ok` once the server's Close has arrived (it is then in later calls'
    /// [`ClientError::Closed`]). Without it: an `Io` error of kind `TimedOut` if the close
    /// timeout passed, [`ClientError::ConnectionLost`] if TCP ended first, and
    /// [`ClientError::Protocol`] if the server broke the protocol meanwhile. `code` must be
    /// one that may be sent (§7.4.1), or [`CloseCode::NoStatusReceived`] for a Close without a
    /// body. On a connection that already ended with a closing handshake this does nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), ClientError> {
        match &self.ended {
            Some(Ended::Closed(_)) => return Ok(()),
            Some(ended) => return Err(ended.error()),
            None => {}
        }
        // After a write timeout, a second call finishes sending the Close already queued.
        if self.session.close_sent().is_none() {
            self.session.close(code, reason)?;
        }
        self.flush()?;
        let wait = self.wait_for_eof(Instant::now() + self.config.close_timeout);
        if let Some(error) = self.session.failure() {
            self.finish(Ended::Failed(error));
            return Err(ClientError::Protocol(error));
        }
        if let Some(frame) = self.session.close_received().cloned() {
            if !matches!(wait, Wait::Eof) {
                log::debug!("the server did not close TCP after the closing handshake: {wait:?}");
            }
            self.finish(Ended::Closed(frame));
            return Ok(());
        }
        self.finish(Ended::Lost);
        Err(match wait {
            Wait::Eof => ClientError::ConnectionLost,
            Wait::TimedOut => ClientError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the server did not answer the Close within the close timeout",
            )),
            Wait::Failed(e) => ClientError::Io(e),
        })
    }

    // ----- Internals ---------------------------------------------------------------------

    fn check_open(&self) -> Result<(), ClientError> {
        match &self.ended {
            Some(ended) => Err(ended.error()),
            None => Ok(()),
        }
    }

    /// Feed the session what was read; read from the socket when nothing is buffered.
    fn fill(&mut self) -> Result<(), ClientError> {
        if self.pos == self.filled {
            return self.read_more();
        }
        let result = self.session.receive(&self.buf[self.pos..self.filled]);
        self.pos = self.filled;
        if let Err(error) = result {
            // The session holds its failing Close back until the events decoded before the
            // violation are taken; `recv_event` hands those out first.
            self.failing = Some(error);
        }
        Ok(())
    }

    /// One read from the socket into the start of the buffer. Called only once every byte
    /// read before has been fed to the session (which keeps a partial frame itself), so the
    /// whole buffer is free. At end of stream, tells the session (§7.1.5) and ends the
    /// connection; an interrupted read reads nothing; a timeout leaves the connection usable
    /// and any other error ends it (`io_error`). Once the connection has ended (no socket),
    /// [`ClientError::ConnectionLost`].
    fn read_more(&mut self) -> Result<(), ClientError> {
        // Everything read so far has been fed to the session.
        self.pos = 0;
        self.filled = 0;
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::ConnectionLost);
        };
        match stream.read(&mut self.buf[self.filled..]) {
            Ok(0) => {
                // §7.1.5: TCP closed without a closing handshake.
                self.session.receive_eof();
                self.finish(Ended::Lost);
                Err(ClientError::ConnectionLost)
            }
            Ok(n) => {
                self.filled += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Write all of the session's output. What was written is consumed even when an error
    /// stops the writing, so that after a timeout the next flush continues where this one
    /// stopped.
    fn flush(&mut self) -> Result<(), ClientError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let output = self.session.output();
        let mut written = 0;
        let result = loop {
            if written == output.len() {
                // Over TLS, records rustls holds after a write timeout.
                break stream.flush();
            }
            match stream.write(&output[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.session.consume_output(written);
        result.map_err(|e| self.io_error(e))
    }

    /// Send a reply the session wrote when an event was taken. The event is returned
    /// whatever happens: after a timeout the reply stays queued for the next operation, and
    /// an error that ends the connection is reported by the next call.
    fn flush_reply(&mut self) {
        if let Err(error) = self.flush() {
            log::debug!("sending a reply: {error}");
        }
    }

    /// A timeout leaves the connection usable; any other I/O error ends it.
    fn io_error(&mut self, error: io::Error) -> ClientError {
        if !is_timeout(&error) {
            log::debug!("connection lost: {error}");
            self.finish(Ended::Lost);
        }
        ClientError::Io(error)
    }

    /// §7.1.7: the session has written the Close that fails the connection. Send it, give the
    /// server the close timeout to read it and close TCP, then drop the socket.
    fn fail(&mut self, error: ProtocolError) -> ClientError {
        log::debug!("failing the connection: {error}");
        if self.flush().is_ok() {
            let wait = self.wait_for_eof(Instant::now() + self.config.close_timeout);
            log::trace!("after failing the connection: {wait:?}");
        }
        self.finish(Ended::Failed(error));
        ClientError::Protocol(error)
    }

    /// §7.1.1: the server sent a Close and the session wrote the answer. Send it, wait for the
    /// server to close TCP (up to the close timeout), then drop the socket.
    fn finish_closed_by_server(&mut self, frame: CloseFrame) {
        log::debug!(
            "the server closed the connection: {} {:?}",
            frame.code,
            frame.reason
        );
        if self.flush().is_ok() {
            let wait = self.wait_for_eof(Instant::now() + self.config.close_timeout);
            if !matches!(wait, Wait::Eof) {
                log::debug!("the server did not close TCP after the closing handshake: {wait:?}");
            }
        }
        self.finish(Ended::Closed(frame));
    }

    /// Read until the server closes TCP or `deadline` passes. What arrives goes to the
    /// session, which after a Close (sent or received) or a failure keeps only what the
    /// closing handshake needs; events are dropped.
    fn wait_for_eof(&mut self, deadline: Instant) -> Wait {
        if self.pos < self.filled {
            // Bytes already read but not yet fed come first.
            let _ = self.session.receive(&self.buf[self.pos..self.filled]);
        }
        self.pos = 0;
        self.filled = 0;
        loop {
            while self.session.next_event().is_some() {}
            let Some(stream) = self.stream.as_mut() else {
                return Wait::Eof;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wait::TimedOut;
            }
            if let Err(e) = stream.set_read_timeout(Some(left)) {
                return Wait::Failed(e);
            }
            match stream.read(&mut self.buf) {
                Ok(0) => {
                    self.session.receive_eof();
                    return Wait::Eof;
                }
                Ok(n) => {
                    // A protocol error is kept by the session (`Session::failure`).
                    let _ = self.session.receive(&self.buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
                Err(e) => return Wait::Failed(e),
            }
        }
    }

    /// The connection is over: drop the socket and remember why (the first reason wins).
    fn finish(&mut self, ended: Ended) {
        if let Some(mut stream) = self.stream.take() {
            stream.shutdown();
        }
        if self.ended.is_none() {
            self.ended = Some(ended);
        }
    }
}

/// The TLS handshake for a `wss://` URL (feature `tls`).
#[cfg(feature = "tls")]
fn secure(
    tcp: TcpStream,
    host: &str,
    config: &ClientConfig,
    deadline: Option<Instant>,
) -> Result<Stream, ClientError> {
    let platform;
    let tls = match &config.tls {
        Some(tls) => tls,
        None => {
            platform = super::tls::ClientTls::platform();
            &platform
        }
    };
    let stream = super::tls::connect(tls, host, tcp, deadline)?;
    Ok(Stream::Tls(Box::new(stream)))
}

/// Without the `tls` feature, `Target::parse` refuses `wss://` (the core's "wss:// needs
/// TLS"), so this is never reached with a secure target.
#[cfg(not(feature = "tls"))]
fn secure(
    _tcp: TcpStream,
    _host: &str,
    _config: &ClientConfig,
    _deadline: Option<Instant>,
) -> Result<Stream, ClientError> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "wss:// needs the `tls` feature").into())
}

/// Resolve the host and connect to the first address that answers.
fn open_tcp(host: &str, port: u16, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs()? {
        let attempt = match time_left(deadline)? {
            Some(left) => TcpStream::connect_timeout(&addr, left),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                log::debug!("connecting to {addr}: {e}");
                last_error = Some(e);
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host has no address")))
}
