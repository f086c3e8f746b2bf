//! The `embedded-io` and `embedded-io-async` adapters over an in-memory stream: the
//! handshake answered, messages echoed chunk by chunk, Pings answered, the closing handshake,
//! refusals, and a protocol violation answered with its Close.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use wsloop::embedded::{asynch, blocking, Error};
use wsloop::frame::{DataOpcode, Decoded, FrameHeader, Opcode};
use wsloop::handshake::HandshakeError;
use wsloop::mask::apply_mask;
use wsloop::session::{FixedEvent, FixedSession, SessionLimits};
use wsloop::ProtocolError;

/// The peer's bytes, handed over at most `step` at a time; what is written is kept.
struct Memory {
    input: Vec<u8>,
    at: usize,
    step: usize,
    output: Vec<u8>,
}

impl embedded_io::ErrorType for Memory {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.step).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl embedded_io::Write for Memory {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io_async::Read for Memory {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        embedded_io::Read::read(self, buf)
    }
}

impl embedded_io_async::Write for Memory {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io::Write::write(self, buf)
    }
}

/// Run a future that never waits (the in-memory stream is always ready).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut header = FrameHeader::new(fin, opcode, payload.len() as u64);
    header.mask = Some(key);
    let mut bytes = header.encode().as_bytes().to_vec();
    let start = bytes.len();
    bytes.extend_from_slice(payload);
    apply_mask(&mut bytes[start..], key, 0);
    bytes
}

/// The server's frames after its head: (first byte, payload).
fn frames(out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = &out[out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    let mut frames = Vec::new();
    while !out.is_empty() {
        let Ok(Decoded::Header(h, len)) = FrameHeader::decode(out) else {
            panic!("not a frame")
        };
        let end = len + h.payload_len as usize;
        frames.push((out[0], out[len..end].to_vec()));
        out = &out[end..];
    }
    frames
}

fn conversation() -> Vec<u8> {
    let mut input = REQUEST.to_vec();
    input.extend(client_frame(
        false,
        Opcode::Data(DataOpcode::Binary),
        &[7; 200],
    ));
    input.extend(client_frame(
        true,
        Opcode::Control(wsloop::frame::ControlOpcode::Ping),
        b"hb",
    ));
    input.extend(client_frame(
        true,
        Opcode::Data(DataOpcode::Continuation),
        &[8; 100],
    ));
    input.extend(client_frame(
        true,
        Opcode::Control(wsloop::frame::ControlOpcode::Close),
        b"\x03\xe8",
    ));
    input
}

fn memory(input: Vec<u8>, step: usize) -> Memory {
    Memory {
        input,
        at: 0,
        step,
        output: Vec::new(),
    }
}

fn check_echo(out: &[u8]) {
    let frames = frames(out);
    let data: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 & 0x0f <= 2)
        .flat_map(|f| f.1.clone())
        .collect();
    let mut expected = vec![7; 200];
    expected.extend([8; 100]);
    assert_eq!(data, expected);
    assert!(frames.contains(&(0x8a, b"hb".to_vec())), "the Pong");
    assert_eq!(
        frames.last().unwrap(),
        &(0x88, b"\x03\xe8".to_vec()),
        "the Close answered"
    );
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
}

#[test]
fn blocking_accepts_echoes_and_closes() {
    for step in [1, 7, usize::MAX] {
        let (mut rx, mut chunk, mut tx) = ([0u8; 512], [0u8; 128], [0u8; 512]);
        let session = FixedSession::server(SessionLimits::default());
        let mut ws = blocking::WebSocket::accept(memory(conversation(), step), session, &mut rx)
            .expect("accepted");
        let mut echoing = false;
        while let Some(event) = ws.next_event(&mut chunk).unwrap() {
            if let FixedEvent::Data { kind, len, last } = event {
                let kind = if echoing {
                    DataOpcode::Continuation
                } else {
                    kind
                };
                ws.send(kind, last, &chunk[..len], &mut tx).unwrap();
                echoing = !last;
            }
        }
        assert!(ws.session().should_close_tcp());
        check_echo(&ws.into_inner().output);
    }
}

#[test]
fn async_accepts_echoes_and_closes() {
    block_on(async {
        let (mut rx, mut chunk, mut tx) = ([0u8; 512], [0u8; 128], [0u8; 512]);
        let session = FixedSession::server(SessionLimits::default());
        let mut ws = asynch::WebSocket::accept(memory(conversation(), 5), session, &mut rx)
            .await
            .expect("accepted");
        let mut echoing = false;
        while let Some(event) = ws.next_event(&mut chunk).await.unwrap() {
            if let FixedEvent::Data { kind, len, last } = event {
                let kind = if echoing {
                    DataOpcode::Continuation
                } else {
                    kind
                };
                ws.send(kind, last, &chunk[..len], &mut tx).await.unwrap();
                echoing = !last;
            }
        }
        check_echo(&ws.into_inner().output);
    });
}

#[test]
fn refusals_and_violations_are_answered() {
    let mut rx = [0u8; 512];
    let session = FixedSession::server(SessionLimits::default());
    let bad = String::from_utf8(REQUEST.to_vec())
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let mut stream = memory(bad.into_bytes(), 9);
    let refused = blocking::WebSocket::accept(&mut stream, session, &mut rx).err();
    assert_eq!(
        refused,
        Some(Error::Handshake(HandshakeError::UnsupportedVersion))
    );
    assert!(stream
        .output
        .starts_with(b"HTTP/1.1 426 \r\nSec-WebSocket-Version: 13\r\n"));

    let mut input = REQUEST.to_vec();
    input.extend(client_frame(true, Opcode::Data(DataOpcode::Text), b"\xc3"));
    let session = FixedSession::server(SessionLimits::default());
    let mut stream = memory(input, usize::MAX);
    let mut ws = blocking::WebSocket::accept(&mut stream, session, &mut rx).unwrap();
    let mut chunk = [0u8; 125];
    assert_eq!(
        ws.next_event(&mut chunk).err(),
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    assert_eq!(frames(&stream.output)[0].1[..2], 1007u16.to_be_bytes());
}

#[test]
fn a_head_too_large_for_the_buffer_or_cut_short_is_refused() {
    // The buffer is the limit on the head: 431 when it fills up without a whole head.
    let mut rx = [0u8; 64];
    let session = FixedSession::server(SessionLimits::default());
    let mut stream = memory(REQUEST.to_vec(), 7);
    let refused = blocking::WebSocket::accept(&mut stream, session, &mut rx).err();
    assert_eq!(
        refused,
        Some(Error::Handshake(HandshakeError::HeadersTooLarge))
    );
    assert!(stream.output.starts_with(b"HTTP/1.1 431 \r\n"));

    // The client leaves in the middle of its request: nothing is written.
    let mut rx = [0u8; 512];
    let session = FixedSession::server(SessionLimits::default());
    let mut stream = memory(REQUEST[..40].to_vec(), 16);
    let refused = block_on(asynch::WebSocket::accept(&mut stream, session, &mut rx)).err();
    assert_eq!(refused, Some(Error::Handshake(HandshakeError::Malformed)));
    assert!(stream.output.is_empty());
}

#[test]
fn after_a_violation_the_connection_is_over() {
    let mut input = REQUEST.to_vec();
    input.extend(client_frame(
        true,
        Opcode::Data(DataOpcode::Continuation),
        b"x",
    ));
    input.extend(client_frame(
        true,
        Opcode::Data(DataOpcode::Text),
        b"ignored",
    ));
    let mut rx = [0u8; 512];
    let session = FixedSession::server(SessionLimits::default());
    let mut stream = memory(input, 5);
    let mut ws = block_on(asynch::WebSocket::accept(&mut stream, session, &mut rx)).unwrap();
    let mut chunk = [0u8; 125];
    assert_eq!(
        block_on(ws.next_event(&mut chunk)).err(),
        Some(Error::Protocol(ProtocolError::UnexpectedContinuation))
    );
    // Reported once; then the connection is over, and only the failing Close went out.
    assert_eq!(block_on(ws.next_event(&mut chunk)), Ok(None));
    let frames = frames(&stream.output);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1[..2], 1002u16.to_be_bytes());
}
