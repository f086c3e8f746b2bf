//! The firmware's code over an in-memory stream: the handshake, echoes of whole and
//! fragmented messages (with a Ping between fragments), the closing handshake, the same bytes
//! out whatever the read sizes, and the refusals.

extern crate std;

use std::vec;
use std::vec::Vec;

use wsloop::frame::{Decoded, FrameHeader, Opcode};
use wsloop::mask::apply_mask;
use wsloop::session::SessionLimits;

use super::{serve, ByteStream};

/// A peer's bytes handed over at most `step` at a time; what the server writes is kept.
struct Memory {
    input: Vec<u8>,
    at: usize,
    step: usize,
    output: Vec<u8>,
}

impl ByteStream for Memory {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.step).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        n
    }

    fn write_all(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }
}

const REQUEST: &[u8] = b"GET /echo HTTP/1.1\r\nHost: device.local\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut header = FrameHeader::new(
        first & 0x80 != 0,
        Opcode::from_bits(first & 0x0f).unwrap(),
        payload.len() as u64,
    );
    header.mask = Some(key);
    let mut bytes = header.encode().as_bytes().to_vec();
    let start = bytes.len();
    bytes.extend_from_slice(payload);
    apply_mask(&mut bytes[start..], key, 0);
    bytes
}

/// The server's frames after the head: (first byte, payload) each.
fn frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let Ok(Decoded::Header(h, len)) = FrameHeader::decode(out) else {
            panic!("not a whole frame: {out:?}")
        };
        assert_eq!(h.mask, None, "a server never masks");
        let end = len + h.payload_len as usize;
        frames.push((out[0], out[len..end].to_vec()));
        out = &out[end..];
    }
    frames
}

fn run(input: Vec<u8>, step: usize) -> Vec<u8> {
    let mut stream = Memory {
        input,
        at: 0,
        step,
        output: Vec::new(),
    };
    serve(&mut stream, SessionLimits::default());
    stream.output
}

#[test]
fn answers_the_handshake_and_echoes_until_the_close() {
    let text = "é€".repeat(100); // 500 bytes: echoed in chunks cut inside characters
    let mut input = REQUEST.to_vec();
    input.extend(client_frame(0x81, b"Hello"));
    input.extend(client_frame(0x01, &text.as_bytes()[..300]));
    input.extend(client_frame(0x89, b"ping"));
    input.extend(client_frame(0x80, &text.as_bytes()[300..]));
    input.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    input.extend(client_frame(0x81, b"after the close: ignored"));
    let out = run(input.clone(), usize::MAX);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = std::str::from_utf8(&out[..head_end]).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    let frames = frames(&out[head_end..]);
    assert_eq!(frames[0], (0x81, b"Hello".to_vec()));
    // The fragmented message comes back fragmented, the Pong between its fragments.
    let pong = frames.iter().position(|f| f.0 == 0x8a).unwrap();
    assert_eq!(frames[pong].1, b"ping");
    let echoed: Vec<u8> = frames[1..frames.len() - 1]
        .iter()
        .filter(|f| f.0 & 0x0f <= 2)
        .flat_map(|f| f.1.clone())
        .collect();
    assert_eq!(echoed, text.as_bytes());
    assert_eq!(frames[1].0, 0x01, "first fragment: text, no FIN");
    assert_eq!(
        frames[frames.len() - 2].0,
        0x80,
        "last fragment: continuation, FIN"
    );
    // §5.5.1: the Close is answered with the same code, and nothing follows it.
    assert_eq!(
        frames.last().unwrap(),
        &(0x88, 1000u16.to_be_bytes().to_vec())
    );
    // Byte by byte: the same head and the same messages back, in smaller fragments.
    let trickled = run(input, 1);
    assert_eq!(trickled[..head_end], out[..head_end]);
    let messages = |frames: &[(u8, Vec<u8>)]| -> Vec<Vec<u8>> {
        let mut messages = vec![Vec::new()];
        for (first, payload) in frames.iter().filter(|f| f.0 & 0x0f <= 2) {
            messages.last_mut().unwrap().extend_from_slice(payload);
            if first & 0x80 != 0 {
                messages.push(Vec::new());
            }
        }
        messages
    };
    let trickled = self::frames(&trickled[head_end..]);
    assert!(trickled.len() > frames.len());
    assert_eq!(messages(&trickled), messages(&frames));
    assert_eq!(trickled.last(), frames.last());
}

#[test]
fn a_protocol_violation_is_answered_with_its_close_code() {
    let mut input = REQUEST.to_vec();
    input.extend(client_frame(0x81, b"\xff"));
    let out = run(input, 7);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames = frames(&out[head_end..]);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].0, &frames[0].1[..2]),
        (0x88, &1007u16.to_be_bytes()[..])
    );
}

#[test]
fn bad_requests_are_refused_with_their_status() {
    let out = run(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 5);
    assert!(out.starts_with(b"HTTP/1.1 400 \r\n"));
    let version = std::str::from_utf8(REQUEST)
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let out = run(version.into_bytes(), 64);
    assert!(out.starts_with(b"HTTP/1.1 426 "));
    assert!(out.windows(25).any(|w| w == b"Sec-WebSocket-Version: 13"));
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(2000, b'a');
    assert!(run(huge, 100).starts_with(b"HTTP/1.1 431 "));
}
