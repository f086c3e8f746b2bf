//! [`WebSocket`]: a [`FixedSession`] over a blocking `embedded_io` stream.
//!
//! Owns: its I/O calls only: reading and writing the stream when the shared `Pump` says
//! (what to write, when to read, what to return, and the handshake's answer). Must not: have
//! protocol rules or connection state of its own.

use embedded_io::{Read, Write};

use super::{Error, HeadAnswer, Pump, Step, ANSWER_LEN};
use crate::close::CloseCode;
use crate::frame::DataOpcode;
use crate::mask::MaskKeys;
use crate::session::{FixedEvent, FixedSession, ServerOnly};

/// One WebSocket connection over a blocking byte stream `T`, with the caller's receive buffer.
///
/// ```
/// # fn serve<T: embedded_io::Read + embedded_io::Write>(stream: T) -> Result<(), wsloop::embedded::Error<T::Error>> {
/// use wsloop::embedded::blocking::WebSocket;
/// use wsloop::frame::DataOpcode;
/// use wsloop::session::{FixedEvent, FixedSession, SessionLimits};
/// let (mut rx, mut chunk, mut tx) = ([0u8; 1024], [0u8; 256], [0u8; 600]);
/// let session = FixedSession::server(SessionLimits::default());
/// let mut ws = WebSocket::accept(stream, session, &mut rx)?;
/// let mut echoing = false;
/// while let Some(event) = ws.next_event(&mut chunk)? {
///     if let FixedEvent::Data { kind, len, last } = event {
///         let kind = if echoing { DataOpcode::Continuation } else { kind };
///         ws.send(kind, last, &chunk[..len], &mut tx)?;
///         echoing = !last;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct WebSocket<'b, T, K = ServerOnly> {
    io: T,
    pump: Pump<'b, K>,
}

impl<'b, T: Read + Write> WebSocket<'b, T, ServerOnly> {
    /// Read the client's upgrade request from `io` into `rx` and answer it (RFC 6455 §4.2):
    /// `101 Switching Protocols` and a connection, or the refusal's status and
    /// [`Error::Handshake`]. `rx` is the limit on the head's size, and keeps the frames that
    /// follow it.
    pub fn accept(
        mut io: T,
        session: FixedSession<ServerOnly>,
        rx: &'b mut [u8],
    ) -> Result<Self, Error<T::Error>> {
        let mut pump = Pump::new(session, rx);
        let mut answer = [0u8; ANSWER_LEN];
        loop {
            let n = io.read(pump.head_space()).map_err(Error::Io)?;
            let Some(HeadAnswer { len, outcome }) = pump.head_read(n, &mut answer) else {
                continue;
            };
            if len > 0 {
                io.write_all(&answer[..len]).map_err(Error::Io)?;
                io.flush().map_err(Error::Io)?;
            }
            return outcome
                .map(|()| WebSocket { io, pump })
                .map_err(Error::Handshake);
        }
    }
}

impl<'b, T: Read + Write, K: MaskKeys> WebSocket<'b, T, K> {
    /// A connection whose opening handshake is done (a client's, or a server's answered
    /// elsewhere); `rx` is the receive buffer.
    pub fn new(io: T, session: FixedSession<K>, rx: &'b mut [u8]) -> Self {
        WebSocket {
            io,
            pump: Pump::new(session, rx),
        }
    }

    /// The next event, its payload in `chunk` (at least 125 bytes). Replies (Pong, Close) are
    /// written on the way. `Ok(None)`: the connection is over (the closing handshake is done,
    /// or the stream ended); close the stream.
    pub fn next_event(&mut self, chunk: &mut [u8]) -> Result<Option<FixedEvent>, Error<T::Error>> {
        loop {
            match self.pump.step(chunk) {
                Step::Write => self.flush()?,
                Step::Read => {
                    let n = self.io.read(self.pump.space()).map_err(Error::Io)?;
                    self.pump.filled(n);
                }
                Step::Return(result) => return result.map_err(Error::Protocol),
            }
        }
    }

    /// Send a data frame ([`FixedSession::send`]) using `tx` as the buffer to frame it in.
    pub fn send(
        &mut self,
        kind: DataOpcode,
        fin: bool,
        payload: &[u8],
        tx: &mut [u8],
    ) -> Result<(), Error<T::Error>> {
        let n = self
            .pump
            .session
            .send(kind, fin, payload, tx)
            .map_err(Error::Send)?;
        self.io.write_all(&tx[..n]).map_err(Error::Io)?;
        self.io.flush().map_err(Error::Io)
    }

    /// Start the closing handshake (§7.1.2); then read on with [`WebSocket::next_event`]
    /// until it returns `Ok(None)`.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error<T::Error>> {
        self.pump.session.close(code, reason).map_err(Error::Send)?;
        self.flush()
    }

    /// The session, for its state.
    pub fn session(&self) -> &FixedSession<K> {
        &self.pump.session
    }

    /// The stream, to close it.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Write the session's output.
    fn flush(&mut self) -> Result<(), Error<T::Error>> {
        self.io
            .write_all(self.pump.session.output())
            .map_err(Error::Io)?;
        self.pump.session.consume_output(usize::MAX);
        self.io.flush().map_err(Error::Io)
    }
}
