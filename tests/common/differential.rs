//! The differential check of issue 20: a `FixedSession` answers every input exactly as a
//! `Session` does. Both are fed the same pieces, and the application does the same things
//! (take every event after each piece, maybe start a close); then what the application saw
//! (messages reassembled from the fixed session's chunks, control frames, the Close), what
//! each wrote to the peer, the error each returned, and their final state must be equal.
//!
//! Included with `#[path]` by `tests/fixed_session.rs` (proptest) and by the `differential`
//! fuzz target, so that both run this one driver.

use wsloop::close::CloseCode;
use wsloop::frame::{DataOpcode, Role};
use wsloop::session::{
    Event, FixedEvent, FixedSession, Message, Session, SessionLimits, State, MIN_CHUNK,
};
use wsloop::ProtocolError;

/// What the application saw: whole messages and control frames, with their payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Message(DataOpcode, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, Vec<u8>),
}

/// Everything observable of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub seen: Vec<Seen>,
    pub output: Vec<u8>,
    pub errors: Vec<ProtocolError>,
    pub failure: Option<ProtocolError>,
    pub close_sent: Option<u16>,
    pub close_received: Option<u16>,
    pub state: State,
    pub mid_message: bool,
    pub awaiting_close: bool,
    pub should_close_tcp: bool,
}

/// One scenario: the role, the limits, the input pieces, the chunk buffer's size, after which
/// piece (if any) the application starts the closing handshake, and whether TCP ends last.
#[derive(Debug, Clone)]
pub struct Scenario<'a> {
    pub role: Role,
    pub limits: SessionLimits,
    pub pieces: Vec<&'a [u8]>,
    pub chunk: usize,
    pub close_after: Option<usize>,
    pub eof: bool,
}

/// The client's key source, the same for both: a counter (predictable: tests only).
fn keys() -> impl FnMut() -> [u8; 4] + Send + 'static {
    let mut n = 0u32;
    move || {
        n = n.wrapping_add(0x9e37_79b9);
        n.to_le_bytes()
    }
}

const APP_CLOSE: &str = "bye";

pub fn run_session(s: &Scenario) -> Outcome {
    let mut session = match s.role {
        Role::Server => Session::server(s.limits),
        Role::Client => Session::client(s.limits, keys()),
    };
    let mut seen = Vec::new();
    let mut output = Vec::new();
    let mut errors = Vec::new();
    for (i, piece) in s.pieces.iter().enumerate() {
        if let Err(e) = session.receive(piece) {
            errors.push(e);
        }
        while let Some(event) = session.next_event() {
            seen.push(match event {
                Event::Message(Message::Text(text)) => {
                    Seen::Message(DataOpcode::Text, text.into_bytes())
                }
                Event::Message(Message::Binary(bytes)) => Seen::Message(DataOpcode::Binary, bytes),
                Event::Ping(p) => Seen::Ping(p),
                Event::Pong(p) => Seen::Pong(p),
                Event::Close(c) => Seen::Close(c.code.into(), c.reason.into_bytes()),
            });
        }
        if s.close_after == Some(i) {
            let _ = session.close(CloseCode::NormalClosure, APP_CLOSE);
        }
        output.extend(session.take_output());
    }
    if s.eof {
        session.receive_eof();
    }
    Outcome {
        seen,
        output,
        errors,
        failure: session.failure(),
        close_sent: session.close_sent().map(|c| c.code.into()),
        close_received: session.close_received().map(|c| c.code.into()),
        state: session.state(),
        mid_message: session.is_mid_message(),
        awaiting_close: session.awaiting_close(),
        should_close_tcp: session.should_close_tcp(),
    }
}

pub fn run_fixed(s: &Scenario) -> Outcome {
    match s.role {
        Role::Server => drive_fixed(FixedSession::server(s.limits), s),
        Role::Client => drive_fixed(FixedSession::client(s.limits, keys()), s),
    }
}

fn drive_fixed<K: wsloop::mask::MaskKeys>(mut fixed: FixedSession<K>, s: &Scenario) -> Outcome {
    let mut chunk = vec![0u8; s.chunk.max(MIN_CHUNK)];
    let mut seen = Vec::new();
    let mut output = Vec::new();
    let mut errors = Vec::new();
    let mut message: Option<(DataOpcode, Vec<u8>)> = None;
    for (i, piece) in s.pieces.iter().enumerate() {
        let mut rest: &[u8] = piece;
        loop {
            let read = match fixed.read(rest, &mut chunk) {
                Ok(read) => read,
                Err(e) => {
                    errors.push(e);
                    break;
                }
            };
            rest = &rest[read.used..];
            match read.event {
                Some(FixedEvent::Data { kind, len, last }) => {
                    let (_, bytes) = message.get_or_insert_with(|| (kind, Vec::new()));
                    bytes.extend_from_slice(&chunk[..len]);
                    // Memory: a chunk never exceeds the limits either.
                    assert!(bytes.len() <= s.limits.max_message_size);
                    if last {
                        let (kind, bytes) = message.take().unwrap();
                        seen.push(Seen::Message(kind, bytes));
                    }
                }
                Some(FixedEvent::Ping { len }) => seen.push(Seen::Ping(chunk[..len].to_vec())),
                Some(FixedEvent::Pong { len }) => seen.push(Seen::Pong(chunk[..len].to_vec())),
                Some(FixedEvent::Close { code, len }) => {
                    seen.push(Seen::Close(code.into(), chunk[..len].to_vec()))
                }
                None => {}
            }
            output.extend_from_slice(fixed.output());
            fixed.consume_output(usize::MAX);
            if rest.is_empty() && read.event.is_none() {
                break;
            }
        }
        if s.close_after == Some(i) {
            let _ = fixed.close(CloseCode::NormalClosure, APP_CLOSE);
        }
        output.extend_from_slice(fixed.output());
        fixed.consume_output(usize::MAX);
    }
    if s.eof {
        fixed.receive_eof();
    }
    Outcome {
        seen,
        output,
        errors,
        failure: fixed.failure(),
        close_sent: fixed.close_sent().map(u16::from),
        close_received: fixed.close_received().map(u16::from),
        state: fixed.state(),
        mid_message: fixed.is_mid_message(),
        awaiting_close: fixed.awaiting_close(),
        should_close_tcp: fixed.should_close_tcp(),
    }
}
