//! The blocking client: a [`Session`] in [`Role::Client`] driven over a
//! `std::net::TcpStream` (feature `client`).
//!
//! Owns: connecting (name resolution, TCP connect with a timeout, `TCP_NODELAY`), the opening
//! handshake on the wire (§4.1, with [`ClientHandshake`] and a fresh nonce), moving bytes
//! between the socket and the session, and the timers the session asks for: the read, write
//! and connect timeouts, and the close timeout of §7.1.1.
//! Must not: make protocol rules of its own. Masking, fragmentation, control frames, UTF-8,
//! limits, close codes, which Close answers which and when the connection fails all live in
//! the [`Session`]; the client only writes what the session outputs and reports what the
//! session says.
//!
//! **The closing handshake (§7.1.1, §7.1.2).** The server closes the TCP connection first, so
//! that it, not the client, holds `TIME_WAIT`: after both Close frames the client waits for the
//! server to close TCP, up to [`ClientConfig::close_timeout`], and only then drops its socket.
//! [`Client::close`] does the whole handshake; when the server starts it, [`Client::recv`]
//! answers (the session writes the answer), waits the same way, and reports
//! [`ClientError::Closed`]. A failed connection (§7.1.7) sends its Close and waits the same way,
//! so that the server reads the Close before the connection goes.
//!
//! **Replies in order.** The session writes a Pong or an answering Close when the caller takes
//! the Ping or Close event, and the client sends it before returning the event; so an echo of
//! a message that came just before the server's Close still goes out before our Close. The
//! session likewise holds back the Close that *fails* the connection until the events decoded
//! before the bad frame have been taken: [`Client::recv_event`] hands those out first, then
//! reports the error, so a message that arrived in the same packet as a bad frame is still
//! delivered, and can be answered.
//!
//! **Timeouts** surface as [`ClientError::Io`] with kind `WouldBlock` or `TimedOut`
//! ([`ClientError::is_timeout`]); they leave the connection usable, and a message cut by one
//! is continued by the next [`Client::recv`]. Every other I/O error ends the connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::close::{CloseCode, CloseFrame};
#[cfg(feature = "deflate")]
use crate::deflate::{DeflateConfig, Negotiated};
use crate::error::ProtocolError;
use crate::handshake::{ClientHandshake, ClientHandshakeError, Url};
use crate::mask::KeyGenerator;
use crate::session::{Event, Message, Role, SendError, Session, SessionLimits};

/// The size of the client's one read buffer.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Everything a [`Client`] can be configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The subprotocols to offer in `Sec-WebSocket-Protocol`, most preferred first (§4.1).
    /// Default: none.
    pub protocols: Vec<String>,
    /// The limits on what the server may send (message and frame sizes).
    pub session: SessionLimits,
    /// How long [`Client::connect`] may take for the TCP connection and the opening handshake
    /// together; `None` waits forever. Name resolution is not covered: the standard library
    /// cannot bound it. Default 10 s.
    pub connect_timeout: Option<Duration>,
    /// The socket's read timeout after the handshake: how long one read in [`Client::recv`]
    /// may block; `None` blocks forever. Default `None`.
    pub read_timeout: Option<Duration>,
    /// The socket's write timeout after the handshake; `None` blocks forever. Default `None`.
    pub write_timeout: Option<Duration>,
    /// §7.1.1: how long to wait, after a Close was sent, for the server's Close and for the
    /// server to close TCP. Default 5 s.
    pub close_timeout: Duration,
    /// permessage-deflate (RFC 7692), feature `deflate`: `Some` offers it with these
    /// parameters ([`crate::deflate::negotiate::offer`]). A server may decline (the
    /// connection is then not compressed, see [`Client::deflate`]); an answer outside the
    /// offer fails the handshake with [`ClientHandshakeError::Deflate`]. Default `None`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocols: Vec::new(),
            session: SessionLimits::default(),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: None,
            write_timeout: None,
            close_timeout: Duration::from_secs(5),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// Builds a [`ClientConfig`] and connects with it; from [`Client::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// let client = wsloop::client::Client::builder()
///     .protocol("chat")
///     .read_timeout(Some(Duration::from_secs(30)))
///     .connect("ws://127.0.0.1:8080/ws/alice")?;
/// # Ok::<(), wsloop::client::ClientError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    config: ClientConfig,
}

impl ClientBuilder {
    /// A builder with the default configuration.
    pub fn new() -> Self {
        ClientBuilder::default()
    }

    /// Offer one more subprotocol, after those already added.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.config.protocols.push(String::from(protocol));
        self
    }

    /// The limits on what the server may send.
    pub fn session_config(mut self, config: SessionLimits) -> Self {
        self.config.session = config;
        self
    }

    /// See [`ClientConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// See [`ClientConfig::read_timeout`].
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// See [`ClientConfig::write_timeout`].
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// See [`ClientConfig::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Offer permessage-deflate with `config` (feature `deflate`); see
    /// [`ClientConfig::deflate`].
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.config.deflate = Some(config);
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connect to a `ws://` URL with this configuration.
    pub fn connect(&self, url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, &self.config)
    }
}

impl From<ClientConfig> for ClientBuilder {
    fn from(config: ClientConfig) -> Self {
        ClientBuilder { config }
    }
}

/// Why an operation of the [`Client`] did not succeed.
#[derive(Debug)]
pub enum ClientError {
    /// A socket error. Kinds `WouldBlock` and `TimedOut` are timeouts, which leave the
    /// connection usable; any other error ended it.
    Io(io::Error),
    /// The URL is not a valid `ws://` URL, or the server's handshake response was refused
    /// (§4.1).
    Handshake(ClientHandshakeError),
    /// The server broke the protocol; the connection was failed with the Close that answers
    /// the error (§7.1.7).
    Protocol(ProtocolError),
    /// The connection is closed after a closing handshake: the normal end. The frame is the
    /// server's Close.
    Closed(CloseFrame),
    /// The TCP connection ended without a closing handshake (1006, §7.1.5), or an earlier
    /// I/O error ended it.
    ConnectionLost,
    /// The session refused to send this (e.g. a control payload over 125 bytes, a close code
    /// that may not be sent, or data after our Close).
    Send(SendError),
}

impl ClientError {
    /// Whether this is a read or write timeout, after which the connection is still usable.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Io(e) if is_timeout(e))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            ClientError::Protocol(e) => write!(f, "the server broke the protocol: {e}"),
            ClientError::Closed(frame) if frame.reason.is_empty() => {
                write!(f, "the connection is closed ({})", frame.code)
            }
            ClientError::Closed(frame) => {
                write!(
                    f,
                    "the connection is closed ({}: {})",
                    frame.code, frame.reason
                )
            }
            ClientError::ConnectionLost => {
                f.write_str("the connection ended without a closing handshake")
            }
            ClientError::Send(e) => write!(f, "cannot send: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Handshake(e) => Some(e),
            ClientError::Protocol(e) => Some(e),
            ClientError::Send(e) => Some(e),
            ClientError::Closed(_) | ClientError::ConnectionLost => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        ClientError::Io(error)
    }
}

impl From<ClientHandshakeError> for ClientError {
    fn from(error: ClientHandshakeError) -> Self {
        ClientError::Handshake(error)
    }
}

impl From<ProtocolError> for ClientError {
    fn from(error: ProtocolError) -> Self {
        ClientError::Protocol(error)
    }
}

impl From<SendError> for ClientError {
    fn from(error: SendError) -> Self {
        ClientError::Send(error)
    }
}

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
    stream: Option<TcpStream>,
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
    /// Connect to a `ws://host[:port][/path]` URL with the default [`ClientConfig`] and do
    /// the opening handshake (§4.1).
    pub fn connect(url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, &ClientConfig::default())
    }

    /// A builder for a client with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Connect to a `ws://` URL with `config` and do the opening handshake (§4.1).
    pub fn connect_with(url: &str, config: &ClientConfig) -> Result<Client, ClientError> {
        let url = Url::parse(url)?;
        let deadline = config.connect_timeout.map(|t| Instant::now() + t);
        let mut stream = open_tcp(&url, deadline)?;
        stream.set_nodelay(true)?;

        // §4.1: a fresh random nonce for each handshake.
        let nonce = KeyGenerator::new().nonce();
        let protocols: Vec<&str> = config.protocols.iter().map(String::as_str).collect();
        #[cfg(feature = "deflate")]
        let (mut handshake, request) = match &config.deflate {
            Some(deflate) => ClientHandshake::with_deflate(&url, nonce, &protocols, deflate),
            None => ClientHandshake::new(&url, nonce, &protocols),
        };
        #[cfg(not(feature = "deflate"))]
        let (mut handshake, request) = ClientHandshake::new(&url, nonce, &protocols);
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
            url.port,
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
    pub fn deflate(&self) -> Option<Negotiated> {
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

    /// One read from the socket into the buffer, after the unfed bytes (at most the start of
    /// a frame header).
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
                break Ok(());
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
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if self.ended.is_none() {
            self.ended = Some(ended);
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time left before `deadline` (`None`: no deadline), or a `TimedOut` error once it has
/// passed.
fn time_left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connect timeout passed before the handshake completed",
        ))
    } else {
        Ok(Some(left))
    }
}

/// Resolve the URL's host and connect to the first address that answers.
fn open_tcp(url: &Url, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DataOpcode;
    use crate::handshake::{accept, accept_key, Limits, Request, RequestParser};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    /// The bound on every blocking step of a test, so that a bug fails instead of hanging.
    const LIMIT: Duration = Duration::from_secs(10);

    /// A server on 127.0.0.1 that accepts one connection and runs `script` on it.
    fn serve<T: Send + 'static>(
        script: impl FnOnce(TcpStream) -> T + Send + 'static,
    ) -> (String, thread::JoinHandle<T>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws/alice", listener.local_addr().unwrap());
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(LIMIT)).unwrap();
            stream.set_write_timeout(Some(LIMIT)).unwrap();
            script(stream)
        });
        (url, server)
    }

    fn config() -> ClientConfig {
        ClientConfig {
            read_timeout: Some(LIMIT),
            write_timeout: Some(LIMIT),
            ..ClientConfig::default()
        }
    }

    fn connect(url: &str) -> Client {
        Client::connect_with(url, &config()).unwrap()
    }

    /// Read an upgrade request; returns it and the bytes that followed it.
    fn read_request(stream: &mut TcpStream) -> (Request, Vec<u8>) {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = vec![0; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "EOF during the request");
            if let Some((request, used)) = parser.push(&buf[..n]).unwrap() {
                return (request, buf[used..n].to_vec());
            }
        }
    }

    /// The server's end of a WebSocket connection, driven by hand.
    struct Peer {
        stream: TcpStream,
        session: Session,
        buf: Vec<u8>,
    }

    impl Peer {
        /// Accept the upgrade; `first` is written in the same `write` as the 101 response.
        fn accept_with(mut stream: TcpStream, protocols: &[&str], first: &[u8]) -> Peer {
            let (request, rest) = read_request(&mut stream);
            assert_eq!(request.path(), "/ws/alice");
            let accepted = accept(&request).unwrap();
            let protocol = accepted.select_protocol(protocols).map(String::from);
            let mut response = accepted.response(protocol.as_deref());
            response.extend_from_slice(first);
            stream.write_all(&response).unwrap();
            let mut session = Session::new(Role::Server, SessionLimits::default());
            session.receive(&rest).unwrap();
            Peer {
                stream,
                session,
                buf: vec![0; 64 * 1024],
            }
        }

        fn accept(stream: TcpStream) -> Peer {
            Peer::accept_with(stream, &[], &[])
        }

        fn flush(&mut self) {
            let out = self.session.take_output();
            self.stream.write_all(&out).unwrap();
        }

        /// The next event (its replies written); `None` when the client closed TCP.
        fn event(&mut self) -> Option<Event> {
            loop {
                if let Some(event) = self.session.next_event() {
                    self.flush();
                    return Some(event);
                }
                let n = self.stream.read(&mut self.buf).unwrap();
                if n == 0 {
                    return None;
                }
                self.session.receive(&self.buf[..n]).unwrap();
            }
        }

        /// Echo every message until the client's Close, which the session answers; then close
        /// TCP (by dropping the stream). Returns the client's Close.
        fn echo(mut self) -> CloseFrame {
            loop {
                match self.event() {
                    Some(Event::Message(Message::Text(text))) => {
                        self.session.send_text(&text).unwrap()
                    }
                    Some(Event::Message(Message::Binary(data))) => {
                        self.session.send_binary(&data).unwrap()
                    }
                    Some(Event::Close(frame)) => return frame,
                    Some(_) => {}
                    None => panic!("the client closed TCP without a Close"),
                }
                self.flush();
            }
        }

        /// Read and ignore everything, without answering, until the client closes TCP.
        fn drain_until_eof(mut self) {
            while self.stream.read(&mut self.buf).unwrap() > 0 {}
        }
    }

    fn normal(reason: &str) -> CloseFrame {
        CloseFrame::new(CloseCode::NormalClosure, reason)
    }

    fn text_of_len(len: usize) -> String {
        (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect()
    }

    #[test]
    fn echoes_text_and_binary_in_every_length_form() {
        let (url, server) = serve(|stream| Peer::accept(stream).echo());
        let mut client = connect(&url);
        assert!(client.is_open());
        assert_eq!(client.protocol(), None);
        for len in [0, 125, 126, 65535, 65536, 1 << 20] {
            let text = text_of_len(len);
            client.send_text(&text).unwrap();
            assert_eq!(client.recv().unwrap(), Message::Text(text), "text of {len}");
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            client.send(Message::Binary(data.clone())).unwrap();
            assert_eq!(
                client.recv().unwrap(),
                Message::Binary(data),
                "binary of {len}"
            );
        }
        client.close(CloseCode::NormalClosure, "bye").unwrap();
        assert_eq!(server.join().unwrap(), normal("bye"));
        assert!(!client.is_open());
        assert!(client.peer_addr().is_none());
        // The server's answer echoed the code (the session answers with an empty reason).
        assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
        assert!(matches!(
            client.send_text("late"),
            Err(ClientError::Closed(_))
        ));
        assert!(client.close(CloseCode::NormalClosure, "again").is_ok());
    }

    #[test]
    fn a_server_ping_is_answered_with_a_pong_before_the_next_message_is_returned() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.ping(b"are you there?").unwrap();
            peer.session.send_text("after the ping").unwrap();
            peer.flush();
            let pong = peer.event();
            (pong, peer.echo())
        });
        let mut client = connect(&url);
        assert_eq!(
            client.recv().unwrap(),
            Message::Text("after the ping".into())
        );
        client.close(CloseCode::NormalClosure, "").unwrap();
        let (pong, close) = server.join().unwrap();
        assert_eq!(pong, Some(Event::Pong(b"are you there?".to_vec())));
        assert_eq!(close, normal(""));
    }

    #[test]
    fn recv_event_shows_control_frames_and_our_own_pings_get_pongs() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.ping(b"p").unwrap();
            peer.flush();
            // The Pong must arrive while the client is not inside a call: it went out before
            // recv_event returned the Ping.
            let pong = peer.event();
            peer.session.pong(b"heartbeat").unwrap();
            peer.session.send_binary(b"data").unwrap();
            peer.flush();
            // The client's Ping, which our session answers.
            let events = [pong, peer.event()];
            (events, peer.echo())
        });
        let mut client = connect(&url);
        assert_eq!(client.recv_event().unwrap(), Event::Ping(b"p".to_vec()));
        assert_eq!(
            client.recv_event().unwrap(),
            Event::Pong(b"heartbeat".to_vec())
        );
        assert_eq!(
            client.recv_event().unwrap(),
            Event::Message(Message::Binary(b"data".to_vec()))
        );
        client.ping(b"mine").unwrap();
        assert_eq!(client.recv_event().unwrap(), Event::Pong(b"mine".to_vec()));
        assert!(matches!(
            client.ping(&[0; 126]),
            Err(ClientError::Send(SendError::ControlFrameTooLong))
        ));
        client.close(CloseCode::GoingAway, "done").unwrap();
        let (events, close) = server.join().unwrap();
        assert_eq!(
            events,
            [
                Some(Event::Pong(b"p".to_vec())),
                Some(Event::Ping(b"mine".to_vec()))
            ]
        );
        assert_eq!(close, CloseFrame::new(CloseCode::GoingAway, "done"));
    }

    #[test]
    fn a_server_close_is_answered_and_reported_as_closed() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session
                .close(CloseCode::GoingAway, "restarting")
                .unwrap();
            peer.flush();
            // The answer; then the server closes TCP (§7.1.1) by dropping the stream.
            peer.event()
        });
        let mut client = connect(&url);
        match client.recv() {
            Err(ClientError::Closed(frame)) => {
                assert_eq!(frame, CloseFrame::new(CloseCode::GoingAway, "restarting"))
            }
            other => panic!("{other:?}"),
        }
        let answer = server.join().unwrap();
        // §5.5.1: the answer echoes the status code.
        assert_eq!(
            answer,
            Some(Event::Close(CloseFrame::new(CloseCode::GoingAway, "")))
        );
        assert!(!client.is_open());
        assert!(matches!(client.recv_event(), Err(ClientError::Closed(_))));
        assert!(matches!(
            client.send_binary(b"x"),
            Err(ClientError::Closed(_))
        ));
        assert!(client.close(CloseCode::NormalClosure, "").is_ok());
    }

    #[test]
    fn recv_event_returns_the_server_close_once_then_closed() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.close(CloseCode::NoStatusReceived, "").unwrap();
            peer.flush();
            peer.event()
        });
        let mut client = connect(&url);
        let empty = CloseFrame::new(CloseCode::NoStatusReceived, "");
        assert_eq!(client.recv_event().unwrap(), Event::Close(empty.clone()));
        assert!(matches!(client.recv_event(), Err(ClientError::Closed(f)) if f == empty));
        // An empty Close is answered with an empty Close.
        assert_eq!(server.join().unwrap(), Some(Event::Close(empty)));
    }

    #[test]
    fn close_returns_once_the_server_has_closed_tcp() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (url, server) = serve(move |stream| {
            let mut peer = Peer::accept(stream);
            // The client's Close; the session writes and `event` sends the answer.
            let close = peer.event();
            // Hold the TCP connection open until the test says so.
            release_rx.recv_timeout(LIMIT).unwrap();
            drop(peer);
            close
        });
        let mut client = connect(&url);
        let (done_tx, done_rx) = mpsc::channel();
        let closer = thread::spawn(move || {
            let result = client.close(CloseCode::NormalClosure, "bye");
            done_tx.send(result.map_err(|e| e.to_string())).unwrap();
            client
        });
        // The answer has arrived, but the server still holds TCP: close() keeps waiting.
        assert!(matches!(
            done_rx.recv_timeout(Duration::from_millis(150)),
            Err(mpsc::RecvTimeoutError::Timeout)
        ));
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv_timeout(LIMIT).unwrap(), Ok(()));
        let mut client = closer.join().unwrap();
        assert_eq!(server.join().unwrap(), Some(Event::Close(normal("bye"))));
        assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
    }

    fn short_close_timeout() -> ClientConfig {
        ClientConfig {
            close_timeout: Duration::from_millis(200),
            ..config()
        }
    }

    #[test]
    fn close_gives_up_after_the_close_timeout_when_the_server_never_answers() {
        let (url, server) = serve(|stream| Peer::accept(stream).drain_until_eof());
        let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
        let start = Instant::now();
        let result = client.close(CloseCode::NormalClosure, "");
        let elapsed = start.elapsed();
        match result {
            Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < LIMIT / 2, "{elapsed:?}");
        // The client dropped the socket: the server saw EOF.
        server.join().unwrap();
        assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
    }

    #[test]
    fn close_is_ok_after_the_close_timeout_when_the_server_answers_but_keeps_tcp_open() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            let close = peer.event();
            peer.drain_until_eof();
            close
        });
        let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
        let start = Instant::now();
        client.close(CloseCode::NormalClosure, "").unwrap();
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(server.join().unwrap(), Some(Event::Close(normal(""))));
    }

    #[test]
    fn after_a_server_close_the_client_waits_for_eof_only_until_the_close_timeout() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.close(CloseCode::NormalClosure, "").unwrap();
            peer.flush();
            let answer = peer.event();
            peer.drain_until_eof();
            answer
        });
        let mut client = Client::connect_with(&url, &short_close_timeout()).unwrap();
        let start = Instant::now();
        assert!(matches!(client.recv(), Err(ClientError::Closed(_))));
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < LIMIT / 2, "{elapsed:?}");
        assert_eq!(server.join().unwrap(), Some(Event::Close(normal(""))));
    }

    #[test]
    fn a_message_in_the_same_packet_as_the_close_can_still_be_echoed() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.send_text("last words").unwrap();
            peer.session.close(CloseCode::NormalClosure, "").unwrap();
            peer.flush();
            [peer.event(), peer.event()]
        });
        let mut client = connect(&url);
        let message = client.recv().unwrap();
        assert_eq!(message, Message::Text("last words".into()));
        client.send(message).unwrap();
        assert!(matches!(client.recv(), Err(ClientError::Closed(f)) if f == normal("")));
        assert_eq!(
            server.join().unwrap(),
            [
                Some(Event::Message(Message::Text("last words".into()))),
                Some(Event::Close(normal("")))
            ]
        );
    }

    /// A frame from the server that the client must refuse: a masked one (§5.1).
    const MASKED_FRAME: [u8; 8] = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];

    #[test]
    fn a_protocol_error_fails_the_connection_after_delivering_what_came_before() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            peer.session.send_text("fine").unwrap();
            let mut bytes = peer.session.take_output();
            bytes.extend_from_slice(&MASKED_FRAME);
            peer.stream.write_all(&bytes).unwrap();
            // The echo, then the Close that fails the connection, which the session answers;
            // then the server closes TCP.
            [peer.event(), peer.event()]
        });
        let mut client = connect(&url);
        let message = client.recv().unwrap();
        client.send(message).unwrap();
        assert!(matches!(
            client.recv(),
            Err(ClientError::Protocol(ProtocolError::MaskedFrameFromServer))
        ));
        let error = ProtocolError::MaskedFrameFromServer;
        assert_eq!(
            server.join().unwrap(),
            [
                Some(Event::Message(Message::Text("fine".into()))),
                Some(Event::Close(CloseFrame::new(
                    error.close_code(),
                    error.reason()
                )))
            ]
        );
        assert!(!client.is_open());
        assert!(matches!(
            client.recv(),
            Err(ClientError::Protocol(ProtocolError::MaskedFrameFromServer))
        ));
        assert!(matches!(
            client.close(CloseCode::NormalClosure, ""),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn frames_in_the_same_packet_as_the_101_response_are_delivered() {
        let mut first = Session::new(Role::Server, SessionLimits::default());
        first.ping(b"early").unwrap();
        first.send_text("welcome").unwrap();
        let first = first.take_output();
        let (url, server) = serve(move |stream| {
            let mut peer = Peer::accept_with(stream, &[], &first);
            (peer.event(), peer.echo())
        });
        let mut client = connect(&url);
        assert_eq!(client.recv().unwrap(), Message::Text("welcome".into()));
        client.close(CloseCode::NormalClosure, "").unwrap();
        let (pong, _) = server.join().unwrap();
        assert_eq!(pong, Some(Event::Pong(b"early".to_vec())));
    }

    #[test]
    fn a_fragmented_message_with_a_ping_between_fragments_is_delivered_whole() {
        let (url, server) = serve(|stream| {
            let mut peer = Peer::accept(stream);
            let text = "héllo wörld".as_bytes();
            let (a, b) = text.split_at(2); // inside the 'é'
            let s = &mut peer.session;
            let mut bytes = s
                .data_frame_header(DataOpcode::Text, false, a.len())
                .unwrap();
            let mut wire = bytes.as_bytes().to_vec();
            wire.extend_from_slice(a);
            s.ping(b"mid").unwrap();
            wire.extend_from_slice(&s.take_output());
            bytes = s
                .data_frame_header(DataOpcode::Continuation, true, b.len())
                .unwrap();
            wire.extend_from_slice(bytes.as_bytes());
            wire.extend_from_slice(b);
            peer.stream.write_all(&wire).unwrap();
            (peer.event(), peer.echo())
        });
        let mut client = connect(&url);
        assert_eq!(client.recv().unwrap(), Message::Text("héllo wörld".into()));
        client.close(CloseCode::NormalClosure, "").unwrap();
        let (pong, _) = server.join().unwrap();
        assert_eq!(pong, Some(Event::Pong(b"mid".to_vec())));
    }

    #[test]
    fn tcp_closed_without_a_close_is_connection_lost() {
        let (url, server) = serve(|stream| drop(Peer::accept(stream)));
        let mut client = connect(&url);
        server.join().unwrap();
        assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
        assert!(matches!(client.recv(), Err(ClientError::ConnectionLost)));
        assert!(matches!(
            client.send_text("anyone?"),
            Err(ClientError::ConnectionLost)
        ));
    }

    #[test]
    fn a_read_timeout_leaves_the_connection_usable() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (url, server) = serve(move |stream| {
            let mut peer = Peer::accept(stream);
            go_rx.recv_timeout(LIMIT).unwrap();
            peer.session.send_text("now").unwrap();
            peer.flush();
            peer.echo()
        });
        let mut client = connect(&url);
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let error = client.recv().unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(client.is_open());
        go_tx.send(()).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        assert_eq!(client.config().read_timeout, Some(LIMIT));
        assert_eq!(client.recv().unwrap(), Message::Text("now".into()));
        client.close(CloseCode::NormalClosure, "").unwrap();
        server.join().unwrap();
    }

    #[test]
    fn negotiates_a_subprotocol() {
        let (url, server) = serve(|stream| {
            let peer = Peer::accept_with(stream, &["superchat"], &[]);
            peer.echo()
        });
        let mut client = Client::builder()
            .protocol("chat")
            .protocol("superchat")
            .read_timeout(Some(LIMIT))
            .connect(&url)
            .unwrap();
        assert_eq!(client.protocol(), Some("superchat"));
        client.close(CloseCode::NormalClosure, "").unwrap();
        server.join().unwrap();
    }

    fn refused_handshake(answer: impl FnOnce(&Request) -> Vec<u8> + Send + 'static) -> ClientError {
        let (url, server) = serve(move |mut stream| {
            let (request, _) = read_request(&mut stream);
            stream.write_all(&answer(&request)).unwrap();
        });
        let error = Client::connect_with(&url, &config()).unwrap_err();
        server.join().unwrap();
        error
    }

    #[test]
    fn a_404_answer_is_a_handshake_error() {
        let error = refused_handshake(|_| {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        });
        assert!(
            matches!(
                error,
                ClientError::Handshake(ClientHandshakeError::UnexpectedStatus(404))
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_wrong_accept_value_is_a_handshake_error() {
        let error = refused_handshake(|request| {
            let right = accept(request).unwrap();
            let response = String::from_utf8(right.response(None)).unwrap();
            response
                .replace(right.accept_value(), &accept_key(b"some other key"))
                .into_bytes()
        });
        assert!(
            matches!(
                error,
                ClientError::Handshake(ClientHandshakeError::InvalidAccept)
            ),
            "{error:?}"
        );
    }

    #[test]
    fn eof_during_the_handshake_is_an_io_error() {
        let error = refused_handshake(|_| Vec::new());
        assert!(
            matches!(&error, ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{error:?}"
        );
    }

    #[test]
    fn a_silent_server_makes_connect_time_out() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (url, server) = serve(move |mut stream| {
            read_request(&mut stream);
            release_rx.recv_timeout(LIMIT).unwrap();
        });
        let config = ClientConfig {
            connect_timeout: Some(Duration::from_millis(100)),
            ..config()
        };
        let error = Client::connect_with(&url, &config).unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        release_tx.send(()).unwrap();
        server.join().unwrap();
    }

    #[test]
    fn bad_urls_and_refused_connections() {
        assert!(matches!(
            Client::connect("http://127.0.0.1/"),
            Err(ClientError::Handshake(ClientHandshakeError::InvalidUrl(_)))
        ));
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = Client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap_err();
        assert!(matches!(error, ClientError::Io(_)), "{error:?}");
    }

    #[test]
    fn errors_display_and_chain() {
        use std::error::Error as _;
        let closed = ClientError::Closed(CloseFrame::new(CloseCode::GoingAway, "bye"));
        assert_eq!(closed.to_string(), "the connection is closed (1001: bye)");
        let protocol = ClientError::from(ProtocolError::InvalidUtf8);
        assert!(protocol.source().is_some());
        assert!(!protocol.is_timeout());
        assert!(ClientError::from(io::Error::from(io::ErrorKind::WouldBlock)).is_timeout());
    }
}
