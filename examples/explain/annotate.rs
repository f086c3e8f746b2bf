//! The annotator shared by the `explain` and `tap` examples, the `learners` tests and the byte
//! dumps of docs/PROTOCOL.md: WebSocket bytes in, an explanation field by field out.
//!
//! It judges nothing itself. Whether bytes are valid is decided by the crate's public API,
//! exactly as a wsloop endpoint decides it: [`FrameHeader::decode`] reads each header,
//! [`apply_mask`] unmasks, [`Utf8Validator`] checks text, [`CloseFrame::parse`] reads Close
//! bodies, and [`RequestParser`], [`accept`] and [`ClientHandshake`] judge the opening
//! handshake. The frame rules that depend on state (masking direction, RSV bits,
//! fragmentation, control frame limits) are checked by [`check_header`], the function
//! `Session` applies to every header, and each [`ProtocolError`] is explained with the RFC section it comes from and the
//! close code that answers it. What this module adds is the words.
//!
//! Use an [`Annotator`] per direction of a connection: [`Annotator::push`] the bytes as they
//! arrive and print what it returns (the frames and handshake heads completed by those bytes);
//! [`Annotator::finish`] explains whatever is left over at the end. [`explain`] does both for
//! one input.
#![allow(dead_code)] // each includer (explain, tap, the tests) uses a different part

use std::fmt::Write as _;

use base64::Engine as _;
use wsloop::close::{CloseCode, CloseFrame, InvalidClosePayload};
use wsloop::error::ProtocolError;
use wsloop::frame::{ControlOpcode, DataOpcode, Decoded, FrameHeader, LengthForm, Opcode};
use wsloop::handshake::{
    accept, accept_key, reason_phrase, ClientHandshake, ClientHandshakeError, HandshakeError,
    Limits, RequestParser, Url, GUID,
};
use wsloop::mask::apply_mask;
use wsloop::session::{check_header, PartialMessage, Receiver, Role, SessionLimits};
use wsloop::utf8::Utf8Validator;

/// Which end sent the bytes. It decides the masking rule (§5.1) and who answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The client: its frames must be masked.
    Client,
    /// The server: its frames must not be masked.
    Server,
}

impl Sender {
    /// `client → server` or `server → client`.
    pub fn arrow(self) -> &'static str {
        match self {
            Sender::Client => "client → server",
            Sender::Server => "server → client",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sender::Client => "client",
            Sender::Server => "server",
        }
    }

    fn receiver(self) -> &'static str {
        match self {
            Sender::Client => "the server",
            Sender::Server => "the client",
        }
    }
}

/// Annotate one input from one end, start to finish.
///
/// `from` is the sender when known; `None` takes it from the input (a request comes from the
/// client, a response from the server, and a first frame with MASK set from the client).
pub fn explain(bytes: &[u8], from: Option<Sender>) -> String {
    let mut annotator = Annotator::new(from);
    let mut out = annotator.push(bytes);
    out.push_str(&annotator.finish());
    out
}

/// Parse hex such as `81 05 48 65`, `0x81,0x05`, `\x81\x05` or `8105`: separators (white
/// space, commas, colons) and `0x` / `\x` prefixes are skipped; every byte needs two digits.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ',' || c == ':' {
            // A separator ends a byte: "8 1" is not 0x81.
            if digits.len() % 2 == 1 {
                return Err(format!("a lone hex digit before position {i}"));
            }
            i += 1;
            continue;
        }
        if (c == '0' || c == '\\') && matches!(chars.get(i + 1), Some('x' | 'X')) {
            if digits.len() % 2 == 1 {
                return Err(format!("a lone hex digit before position {i}"));
            }
            i += 2;
            continue;
        }
        match c.to_digit(16) {
            Some(d) => digits.push(d as u8),
            None => return Err(format!("{c:?} at position {i} is not a hex digit")),
        }
        i += 1;
    }
    if digits.len() % 2 == 1 {
        return Err("an odd number of hex digits".into());
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// True when `bytes` is text made of hex digits and separators only (so stdin can be either
/// hex or raw bytes).
pub fn looks_like_hex(bytes: &[u8]) -> bool {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim(),
        Err(_) => return false,
    };
    !text.is_empty() && parse_hex(text).is_ok()
}

/// A named input of the tour (docs/PROTOCOL.md) and of `explain --example NAME`.
#[derive(Debug, Clone)]
pub struct Example {
    /// The name used by `explain --example` and by `<!-- dump: NAME -->` in the docs.
    pub name: &'static str,
    /// One line on what it shows.
    pub about: &'static str,
    /// Who sends it.
    pub from: Sender,
    /// The client's `Sec-WebSocket-Key` and offered subprotocols, to check a response with.
    pub key: Option<(&'static str, &'static [&'static str])>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Example {
    /// The annotation of this example.
    pub fn explain(&self) -> String {
        let mut annotator = Annotator::new(Some(self.from));
        if let Some((key, offered)) = self.key {
            let offered: Vec<String> = offered.iter().map(|s| s.to_string()).collect();
            annotator.expect_key(key, &offered);
        }
        let mut out = annotator.push(&self.bytes);
        out.push_str(&annotator.finish());
        out
    }
}

/// RFC 6455 §1.2: the client's opening handshake of the RFC's example.
pub const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// RFC 6455 §1.2: the server's answer to [`RFC_REQUEST`].
pub const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

const RFC_KEY: Option<(&str, &[&str])> = Some(("dGhlIHNhbXBsZSBub25jZQ==", &["chat", "superchat"]));

/// Header bytes followed by `len` payload bytes counting up from 0.
fn with_payload(header: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend((0..len).map(|i| i as u8));
    bytes
}

/// A client frame masked with the RFC's key 37 fa 21 3d.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    assert!(payload.len() <= 125);
    let mut bytes = vec![first, 0x80 | payload.len() as u8];
    bytes.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key, 0);
    bytes.extend_from_slice(&body);
    bytes
}

/// Every named input: the RFC 6455 §1.2 handshake and §5.7 frames, more frames, and
/// malformed inputs, each breaking one rule.
pub fn examples() -> Vec<Example> {
    use Sender::{Client, Server};
    let ex = |name, about, from, bytes: Vec<u8>| Example {
        name,
        about,
        from,
        key: None,
        bytes,
    };
    let rfc_request = |from: &str, to: &str| RFC_REQUEST.replacen(from, to, 1).into_bytes();
    vec![
        ex(
            "rfc-request",
            "§1.2: the client's opening handshake",
            Client,
            RFC_REQUEST.into(),
        ),
        Example {
            key: RFC_KEY,
            ..ex(
                "rfc-response",
                "§1.2: the server's answer",
                Server,
                RFC_RESPONSE.into(),
            )
        },
        ex(
            "unmasked-hello",
            "§5.7: a single-frame unmasked text message",
            Server,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        ex(
            "masked-hello",
            "§5.7: a single-frame masked text message",
            Client,
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        ex(
            "fragmented-hello",
            "§5.7: a fragmented unmasked text message",
            Server,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
        ),
        ex(
            "ping",
            "§5.7: an unmasked Ping",
            Server,
            vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        ex(
            "masked-pong",
            "§5.7: the masked Pong that answers it",
            Client,
            vec![
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        ex(
            "binary-256",
            "§5.7: 256 bytes of binary data in a single unmasked frame",
            Server,
            with_payload(&[0x82, 0x7e, 0x01, 0x00], 256),
        ),
        ex(
            "binary-64k",
            "§5.7: 64 KiB of binary data in a single unmasked frame",
            Server,
            with_payload(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0], 65536),
        ),
        ex(
            "ping-between-fragments",
            "§5.4: a control frame in the middle of a fragmented message",
            Server,
            vec![
                0x01, 0x03, 0x48, 0x65, 0x6c, 0x89, 0x00, 0x80, 0x02, 0x6c, 0x6f,
            ],
        ),
        ex(
            "close-normal",
            "§5.5.1: a client's Close with code 1000 and a reason",
            Client,
            masked(0x88, b"\x03\xe8bye"),
        ),
        ex(
            "close-echo",
            "§5.5.1: the server's answering Close, echoing the code",
            Server,
            vec![0x88, 0x02, 0x03, 0xe8],
        ),
        ex(
            "bad-unmasked-from-client",
            "§5.1: a client frame without a mask",
            Client,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        ex(
            "bad-masked-from-server",
            "§5.1: a server frame with a mask",
            Server,
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        ),
        ex(
            "bad-rsv1",
            "§5.2: RSV1 set without an extension",
            Server,
            vec![0xc1, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        ),
        ex(
            "bad-opcode",
            "§5.2: the reserved opcode 0x3",
            Server,
            vec![0x83, 0x00],
        ),
        ex(
            "bad-length-top-bit",
            "§5.2: a 64-bit length with its top bit set",
            Server,
            vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0x01],
        ),
        ex(
            "bad-long-ping",
            "§5.5: a Ping with 126 bytes of payload",
            Server,
            with_payload(&[0x89, 0x7e, 0x00, 0x7e], 126),
        ),
        ex(
            "bad-fragmented-ping",
            "§5.5: a Ping with FIN clear",
            Server,
            vec![0x09, 0x00],
        ),
        ex(
            "bad-continuation",
            "§5.4: a continuation frame with no message in progress",
            Server,
            vec![0x80, 0x02, 0x6c, 0x6f],
        ),
        ex(
            "bad-interleaved",
            "§5.4: a new text message inside a fragmented one",
            Server,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x81, 0x02, 0x6c, 0x6f],
        ),
        ex(
            "bad-utf8",
            "§8.1: a text message that is not UTF-8",
            Server,
            vec![0x81, 0x02, 0xc3, 0x28],
        ),
        ex(
            "bad-close-one-byte",
            "§5.5.1: a Close body of one byte",
            Server,
            vec![0x88, 0x01, 0x03],
        ),
        ex(
            "bad-close-code",
            "§7.4.1: a Close with the never-sent code 1005",
            Server,
            vec![0x88, 0x02, 0x03, 0xed],
        ),
        ex(
            "bad-request-version",
            "§4.2.1: a handshake with Sec-WebSocket-Version 8",
            Client,
            rfc_request("Version: 13", "Version: 8"),
        ),
        ex(
            "bad-request-post",
            "§4.2.1: a handshake with POST",
            Client,
            rfc_request("GET", "POST"),
        ),
        ex(
            "bad-request-key",
            "§4.2.1: a Sec-WebSocket-Key that is not 16 bytes",
            Client,
            rfc_request("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
        ),
        Example {
            key: RFC_KEY,
            ..ex(
                "bad-response-accept",
                "§4.1: a 101 with the wrong Sec-WebSocket-Accept",
                Server,
                RFC_RESPONSE
                    .replacen(
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                        1,
                    )
                    .into_bytes(),
            )
        },
    ]
}

/// The named example, if there is one.
pub fn example(name: &str) -> Option<Example> {
    examples().into_iter().find(|e| e.name == name)
}

/// What the annotator expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing decided yet: an HTTP head or frames.
    Start,
    /// WebSocket frames.
    Frames,
    /// The body of a plain HTTP message, or a refused handshake: not WebSocket.
    Body,
    /// The sender's Close has been seen: nothing may follow (§5.5.1).
    Closed,
    /// The sender broke the protocol: the receiver reads nothing more (§7.1.7).
    Failed,
}

/// The data message being received, for fragmentation (§5.4).
#[derive(Debug, Clone)]
struct Message {
    kind: DataOpcode,
    frames: usize,
    len: u64,
    /// The first bytes, for display.
    preview: Vec<u8>,
}

const PREVIEW_BYTES: usize = 240;

/// Annotates the bytes one end sends, in any chunking.
#[derive(Debug)]
pub struct Annotator {
    from: Option<Sender>,
    phase: Phase,
    buf: Vec<u8>,
    frames: usize,
    message: Option<Message>,
    utf8: Utf8Validator,
    config: SessionLimits,
    /// The client's key and offered subprotocols, for checking the server's response.
    key: Option<(String, Vec<String>)>,
    /// Bytes counted but not shown (a body, bytes after a Close or a failure).
    skipped: u64,
}

impl Annotator {
    /// An annotator for the bytes `from` sends; `None` takes the sender from the input.
    pub fn new(from: Option<Sender>) -> Annotator {
        Annotator {
            from,
            phase: Phase::Start,
            buf: Vec::new(),
            frames: 0,
            message: None,
            utf8: Utf8Validator::new(),
            config: SessionLimits::default(),
            key: None,
            skipped: 0,
        }
    }

    /// Check a server's response against this client key and these offered subprotocols.
    pub fn expect_key(&mut self, key: &str, offered: &[String]) {
        self.key = Some((key.to_string(), offered.to_vec()));
    }

    /// The key and subprotocols of the client request seen by this annotator, if any.
    pub fn client_key(&self) -> Option<(&str, &[String])> {
        self.key.as_ref().map(|(k, p)| (k.as_str(), p.as_slice()))
    }

    /// Feed the next bytes; returns the annotation of everything they complete.
    pub fn push(&mut self, data: &[u8]) -> String {
        let mut out = String::new();
        match self.phase {
            Phase::Body | Phase::Closed | Phase::Failed => {
                // Counted, and told by `finish`: the annotation is the same in any chunking.
                self.skipped += data.len() as u64;
                return out;
            }
            Phase::Start | Phase::Frames => self.buf.extend_from_slice(data),
        }
        loop {
            let progressed = match self.phase {
                Phase::Start => self.start(&mut out),
                Phase::Frames => self.next_frame(&mut out),
                Phase::Body | Phase::Closed | Phase::Failed => {
                    self.skipped += std::mem::take(&mut self.buf).len() as u64;
                    false
                }
            };
            if !progressed {
                return out;
            }
        }
    }

    /// The input has ended: explain what is left (an unfinished head, frame or message).
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        let rest = std::mem::take(&mut self.buf);
        match self.phase {
            Phase::Start if !rest.is_empty() => {
                if looks_like_http(&rest) != Some(false) {
                    para(
                        &mut out,
                        &format!(
                            "incomplete HTTP head ({} bytes): no empty line ends it yet",
                            rest.len()
                        ),
                    );
                    head_lines(&mut out, &rest);
                    para(
                        &mut out,
                        "  … a server keeps reading until the empty line (wsloop: up to 8 KiB, \
                         then 431; and for at most handshake_timeout, 10 s)",
                    );
                } else {
                    // Too short to tell, and not HTTP: a partial frame header.
                    self.phase = Phase::Frames;
                    self.partial_frame(&mut out, &rest);
                }
            }
            Phase::Frames if !rest.is_empty() => self.partial_frame(&mut out, &rest),
            _ => {}
        }
        if self.skipped > 0 {
            self.note_skipped(&mut out, self.skipped);
            self.skipped = 0;
        }
        if let (Phase::Frames, Some(m)) = (self.phase, &self.message) {
            let text = format!(
                "unfinished {} message: {} frame(s), {} so far, and no frame with FIN = 1 yet \
                 (§5.4)",
                data_name(m.kind),
                m.frames,
                bytes_count(m.len as usize)
            );
            para(&mut out, &text);
        }
        out
    }

    fn note_skipped(&self, out: &mut String, n: u64) {
        let why = match self.phase {
            Phase::Body => {
                "not WebSocket: the body of a plain HTTP message, or what follows a \
                            refused handshake"
            }
            Phase::Closed => {
                "after the sender's Close, which must be its last frame (§5.5.1): \
                              the receiver discards them"
            }
            _ => {
                "after the violation: the receiver has failed the connection and reads nothing \
                  more (§7.1.7)"
            }
        };
        let n = bytes_count(n as usize);
        para(out, &format!("… {n} more, {why}"));
        out.push('\n');
    }

    // ----- The start: an HTTP head or frames --------------------------------------------------

    fn start(&mut self, out: &mut String) -> bool {
        match looks_like_http(&self.buf) {
            None => false,
            Some(false) => {
                self.phase = Phase::Frames;
                true
            }
            Some(true) => {
                let Some(end) = head_end(&self.buf) else {
                    if self.buf.len() > Limits::default().max_head_bytes {
                        let head = std::mem::take(&mut self.buf);
                        self.request_or_response(out, &head);
                        return true;
                    }
                    return false;
                };
                let head: Vec<u8> = self.buf.drain(..end).collect();
                self.request_or_response(out, &head);
                true
            }
        }
    }

    fn request_or_response(&mut self, out: &mut String, head: &[u8]) {
        if head.starts_with(b"HTTP/") {
            self.response(out, head);
        } else {
            self.request(out, head);
        }
        out.push('\n');
    }

    fn request(&mut self, out: &mut String, head: &[u8]) {
        let _ = writeln!(
            out,
            "HTTP request ({}, {} bytes)",
            Sender::Client.arrow(),
            head.len()
        );
        let lines = split_head(head);
        // A request that neither asks for an upgrade nor carries a Sec-WebSocket-* header is
        // plain HTTP (wsloop's server hands it to Handler::on_request): shown, not judged.
        let upgrade = lines.iter().skip(1).any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("upgrade") && has_token(v, "websocket")
            })
        });
        let websocket_headers = lines.iter().skip(1).any(|l| {
            l.get(..14)
                .is_some_and(|p| p.eq_ignore_ascii_case("sec-websocket-"))
        });
        if !upgrade && !websocket_headers {
            for line in &lines {
                let _ = writeln!(out, "  {line}");
            }
            para(
                out,
                "  · no `Upgrade: websocket`: a plain HTTP request, not a WebSocket handshake \
                 (wsloop's server hands it to Handler::on_request); what follows is its body",
            );
            self.phase = Phase::Body;
            return;
        }
        if let Some(line) = lines.first() {
            let _ = writeln!(out, "  {line}");
            let text = format!("      {}", request_line_note(line));
            para(out, &text);
        }
        for line in lines.iter().skip(1) {
            let _ = writeln!(out, "  {line}");
            let note = match line.split_once(':') {
                Some((name, value)) => request_header_note(name.trim(), value.trim()),
                None => "✗ not a header line (name: value)".to_string(),
            };
            for (i, part) in note.split('\n').enumerate() {
                let indent = if i == 0 { "      " } else { "        " };
                para(out, &format!("{indent}{part}"));
            }
        }
        out.push_str("  (empty line)\n      ends the head\n");

        let request = match RequestParser::new(Limits::default()).push(head) {
            Ok(Some((request, _))) => request,
            Ok(None) => {
                let e = HandshakeError::HeadersTooLarge;
                self.handshake_refused(out, e);
                return;
            }
            Err(e) => {
                self.handshake_refused(out, e);
                return;
            }
        };
        match accept(&request) {
            Ok(accepted) => {
                para(
                    out,
                    "  ✓ a valid opening handshake (handshake::accept in src/handshake/server.rs)",
                );
                if !accepted.offered_protocols().is_empty() {
                    para(
                        out,
                        &format!(
                            "    the server may select one of the offered subprotocols ({}), \
                         echoing it in Sec-WebSocket-Protocol (§4.2.2)",
                            accepted.offered_protocols().join(", ")
                        ),
                    );
                }
                out.push_str("    → the server answers:\n");
                for line in split_head(&accepted.response(None)) {
                    let _ = writeln!(out, "      {line}");
                }
                out.push_str("    and from then on both ends send frames (§5)\n");
                let key = request
                    .header_str("sec-websocket-key")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                self.key = Some((key, accepted.offered_protocols().to_vec()));
                self.from = Some(Sender::Client);
                self.phase = Phase::Frames;
            }
            Err(e) => self.handshake_refused(out, e),
        }
    }

    fn handshake_refused(&mut self, out: &mut String, e: HandshakeError) {
        let (section, rule) = handshake_rule(e);
        para(out, &format!("  ✗ breaks {section}: {rule}"));
        para(
            out,
            &format!(
                "    → the server refuses with HTTP {} {} and closes the connection; no WebSocket \
             is opened",
                e.status(),
                reason_phrase(e.status())
            ),
        );
        para(
            out,
            &format!(
                "    (wsloop: HandshakeError::{e:?}, \"{}\", in src/handshake/server.rs)",
                e.reason()
            ),
        );
        out.push_str("    the refusal:\n");
        for line in split_head(&e.response()) {
            let _ = writeln!(out, "      {line}");
        }
        self.phase = Phase::Body;
    }

    fn response(&mut self, out: &mut String, head: &[u8]) {
        let _ = writeln!(
            out,
            "HTTP response ({}, {} bytes)",
            Sender::Server.arrow(),
            head.len()
        );
        let lines = split_head(head);
        let status: Option<u16> = lines
            .first()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok());
        if status != Some(101) && self.key.is_none() {
            // An answer to a plain HTTP request: shown, not judged.
            for line in &lines {
                let _ = writeln!(out, "  {line}");
            }
            para(
                out,
                "  · not 101 Switching Protocols: a plain HTTP response; what follows is its \
                 body, not frames",
            );
            self.phase = Phase::Body;
            return;
        }
        if let Some(line) = lines.first() {
            let _ = writeln!(out, "  {line}");
            let note = match status {
                Some(101) => "status 101: the server switches to WebSocket (§4.2.2); any other \
                              status means the handshake failed (§4.1)"
                    .to_string(),
                Some(s) => format!(
                    "status {s}: not 101, so no WebSocket; the response is ordinary HTTP (§4.1)"
                ),
                None => "✗ not an HTTP status line".to_string(),
            };
            para(out, &format!("      {note}"));
        }
        let offered = self.key.as_ref().map(|(_, p)| p.clone());
        let expected = self.key.as_ref().map(|(k, _)| accept_key(k.as_bytes()));
        for line in lines.iter().skip(1) {
            let _ = writeln!(out, "  {line}");
            let note = match line.split_once(':') {
                Some((name, value)) => response_header_note(
                    name.trim(),
                    value.trim(),
                    expected.as_deref(),
                    offered.as_deref(),
                ),
                None => "✗ not a header line (name: value)".to_string(),
            };
            para(out, &format!("      {note}"));
        }
        out.push_str("  (empty line)\n      ends the head\n");
        if status != Some(101) {
            para(
                out,
                "  · the server refused the upgrade (§4.1 item 1: any status but 101 means the \
                 handshake failed, and the response is ordinary HTTP); what follows is its body, \
                 not frames",
            );
            self.phase = Phase::Body;
            return;
        }
        match self.check_response(head) {
            Some(Ok(())) => {
                para(
                    out,
                    "  ✓ the client accepts it (handshake::ClientHandshake in src/handshake/client.rs): \
                     the connection is open, and frames follow",
                );
                self.from = Some(Sender::Server);
                self.phase = Phase::Frames;
            }
            Some(Err(e)) => {
                let (section, rule) = client_handshake_rule(&e);
                para(out, &format!("  ✗ breaks {section}: {rule}"));
                para(
                    out,
                    "    → the client MUST fail the WebSocket connection (§4.1): it closes the \
                     TCP connection; no Close frame is sent, as no WebSocket was ever open \
                     (a browser reports code 1006)",
                );
                para(
                    out,
                    &format!(
                        "    (wsloop: ClientHandshakeError::{e:?}, in src/handshake/client.rs)"
                    ),
                );
                self.phase = Phase::Body;
            }
            None => {
                para(
                    out,
                    "  ? the client's Sec-WebSocket-Key is unknown, so Sec-WebSocket-Accept \
                     cannot be checked (explain: --key KEY); read as accepted",
                );
                self.from = Some(Sender::Server);
                self.phase = Phase::Frames;
            }
        }
    }

    /// The crate's own client check of a response, when the client's key is known.
    fn check_response(&self, head: &[u8]) -> Option<Result<(), ClientHandshakeError>> {
        let (key, offered) = self.key.as_ref()?;
        let nonce = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
        let nonce: [u8; 16] = nonce.try_into().ok()?;
        let url = Url::parse("ws://localhost/").ok()?;
        let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
        let (mut client, _request) = ClientHandshake::new(&url, nonce, &offered);
        Some(match client.push(head) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ClientHandshakeError::HeadersTooLarge),
            Err(e) => Err(e),
        })
    }

    // ----- Frames ----------------------------------------------------------------------------

    /// Annotate the next frame if it is complete (or fails at its header); false when more
    /// bytes are needed.
    fn next_frame(&mut self, out: &mut String) -> bool {
        if self.buf.is_empty() {
            return false;
        }
        let (header, header_len) = match FrameHeader::decode(&self.buf) {
            Ok(Decoded::NeedMore(_)) => return false,
            Ok(Decoded::Header(header, len)) => (header, len),
            Err(e) => {
                // Reserved opcode, or a 64-bit length with its top bit set: no header at all.
                let sender = self.sender_for(self.buf[1] & 0x80 != 0, out);
                let shown = raw_header_len(&self.buf).min(self.buf.len());
                self.frames += 1;
                let _ = writeln!(out, "frame {} ({}, header)", self.frames, sender.arrow());
                let raw: Vec<u8> = self.buf.drain(..shown).collect();
                self.header_rows(out, &raw, sender);
                self.violation(out, sender, e);
                return true;
            }
        };
        let sender = self.sender_for(header.mask.is_some(), out);
        if let Some(e) = self.check_header(&header, sender) {
            // Judged from the header alone, as wsloop does: its payload is never read.
            self.frames += 1;
            let _ = writeln!(
                out,
                "frame {} ({}, header of a {}-byte payload)",
                self.frames,
                sender.arrow(),
                header.payload_len
            );
            let raw: Vec<u8> = self.buf.drain(..header_len).collect();
            self.header_rows(out, &raw, sender);
            self.violation(out, sender, e);
            return true;
        }
        let total = header_len as u64 + header.payload_len;
        if (self.buf.len() as u64) < total {
            return false;
        }
        let raw: Vec<u8> = self.buf.drain(..total as usize).collect();
        self.frame(out, &raw, header, header_len, sender);
        true
    }

    /// The sender, taken from the first frame's MASK bit when it was not given.
    fn sender_for(&mut self, masked: bool, out: &mut String) -> Sender {
        if let Some(sender) = self.from {
            return sender;
        }
        let sender = if masked {
            Sender::Client
        } else {
            Sender::Server
        };
        para(
            out,
            &format!(
                "(sender not given: the first frame is {}, so these bytes are read as sent by the \
             {}; explain --from client|server says otherwise)",
                if masked { "masked" } else { "not masked" },
                sender.name()
            ),
        );
        self.from = Some(sender);
        sender
    }

    /// The rule a header breaks given the sender and the state: wsloop's own check, the one
    /// its `Session` applies (`wsloop::session::check_header`), for the end that receives.
    /// No extension is assumed negotiated, so RSV1 is reserved.
    fn check_header(&self, h: &FrameHeader, sender: Sender) -> Option<ProtocolError> {
        let receiver = Receiver {
            role: match sender {
                Sender::Client => Role::Server,
                Sender::Server => Role::Client,
            },
            limits: self.config,
            rsv1_allowed: false,
            message: self.message.as_ref().map(|m| PartialMessage {
                len: m.len,
                compressed: false,
            }),
        };
        check_header(h, &receiver).err()
    }

    /// One row per field of the header bytes in `raw` (which may be cut short).
    fn header_rows(&self, out: &mut String, raw: &[u8], sender: Sender) {
        let Some(&b0) = raw.first() else { return };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = Opcode::from_bits(b0 & 0x0f);
        let fin_note = match (fin, opcode) {
            (false, Ok(op)) if op.is_control() => {
                "✗ not final: but a control frame cannot be fragmented (§5.5)"
            }
            (true, Ok(op)) if op.is_control() => {
                "final, as a control frame must be: it cannot be fragmented (§5.5)"
            }
            (true, _) => "final fragment: the message ends with this frame (§5.2)",
            (false, _) => "not final: more fragments of this message follow (§5.4)",
        };
        row(
            out,
            &format!("{b0:02x} {}", bits(b0, 0x80)),
            "FIN",
            u8::from(fin),
            fin_note,
        );
        let rsv_note = if rsv == 0 {
            "no extension negotiated, so all three must be 0 (§5.2)"
        } else {
            "✗ set, but no extension that defines them was negotiated (§5.2)"
        };
        row(
            out,
            &format!("   {}", bits(b0, 0x70)),
            "RSV1-3",
            format!("{rsv:03b}"),
            rsv_note,
        );
        let op_note = match opcode {
            Ok(op) => format!("{}: {}", op.name(), opcode_note(op)),
            Err(_) if b0 & 0x08 == 0 => "✗ reserved for future data frames (§5.2)".into(),
            Err(_) => "✗ reserved for future control frames (§5.2)".into(),
        };
        let op_value = match opcode {
            Ok(op) => format!("{:#x}", op.bits()),
            Err(_) => format!("{:#x}", b0 & 0x0f),
        };
        row(
            out,
            &format!("   {}", bits(b0, 0x0f)),
            "opcode",
            op_value,
            &op_note,
        );

        let Some(&b1) = raw.get(1) else { return };
        let masked = b1 & 0x80 != 0;
        let mask_note = match (masked, sender) {
            (true, Sender::Client) => "masked, as every client frame must be (§5.1)",
            (false, Sender::Server) => "not masked, as a server's frames must not be (§5.1)",
            (true, Sender::Server) => "✗ masked, but a server MUST NOT mask its frames (§5.1)",
            (false, Sender::Client) => "✗ not masked, but a client MUST mask every frame (§5.1)",
        };
        row(
            out,
            &format!("{b1:02x} {}", bits(b1, 0x80)),
            "MASK",
            u8::from(masked),
            mask_note,
        );
        let len7 = b1 & 0x7f;
        let len_note = match len7 {
            126 => "126: the length follows in the next 2 bytes (§5.2)".to_string(),
            127 => "127: the length follows in the next 8 bytes (§5.2)".to_string(),
            _ if opcode.is_ok_and(|op| op.is_control()) => {
                "7-bit form, for 0-125 bytes: all a control frame may carry (§5.2, §5.5)".into()
            }
            _ => "7-bit form, for payloads of 0-125 bytes (§5.2)".to_string(),
        };
        let len_note = if len7 >= 126 && opcode.is_ok_and(|op| op.is_control()) {
            format!("✗ {len_note}; a control frame carries at most 125 bytes (§5.5)")
        } else {
            len_note
        };
        row(
            out,
            &format!("   {}", bits(b1, 0x7f)),
            "length",
            len7,
            &len_note,
        );

        let extra = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mut at = 2;
        if extra > 0 {
            let Some(ext) = raw.get(2..2 + extra) else {
                row(out, &hex(&raw[2..]), "length", "…", "cut short");
                return;
            };
            let len = ext.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let form = if extra == 2 {
                LengthForm::Extended16
            } else {
                LengthForm::Extended64
            };
            let note = if extra == 8 && len >> 63 != 0 {
                "✗ the most significant bit of a 64-bit length MUST be 0 (§5.2)".to_string()
            } else if LengthForm::for_len(len) != form {
                format!(
                    "⚠ not minimal: {len} fits a shorter form, and §5.2 says the minimal \
                     number of bytes MUST be used (wsloop accepts it)"
                )
            } else if extra == 2 {
                "16-bit form, for payloads of 126-65535 bytes (§5.2)".to_string()
            } else {
                "64-bit form, for 65536 bytes and more; top bit 0 (§5.2)".to_string()
            };
            row(out, &hex(ext), "length", len, &note);
            at += extra;
        }
        if masked {
            let Some(key) = raw.get(at..at + 4) else {
                row(out, &hex(&raw[at..]), "key", "…", "cut short");
                return;
            };
            row(
                out,
                &hex(key),
                "key",
                "",
                "masking key: payload byte i is XORed with key byte i % 4 (§5.3)",
            );
        }
    }

    /// A complete frame that passed the header checks.
    fn frame(
        &mut self,
        out: &mut String,
        raw: &[u8],
        h: FrameHeader,
        header_len: usize,
        sender: Sender,
    ) {
        self.frames += 1;
        let _ = writeln!(
            out,
            "frame {} ({}, {} bytes)",
            self.frames,
            sender.arrow(),
            raw.len()
        );
        self.header_rows(out, &raw[..header_len], sender);
        let wire = &raw[header_len..];
        let mut payload = wire.to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        if wire.is_empty() {
            row(out, "", "payload", "0 bytes", "empty");
        } else if h.mask.is_some() {
            hex_rows(
                out,
                wire,
                "payload",
                &bytes_count(wire.len()),
                "as sent: masked",
            );
            hex_rows(
                out,
                &payload,
                "unmasked",
                "",
                "each byte XOR the key (§5.3)",
            );
        } else {
            hex_rows(out, wire, "payload", &bytes_count(wire.len()), "");
        }
        match h.opcode {
            Opcode::Data(op) => self.data_frame(out, op, h.fin, &payload, sender),
            Opcode::Control(ControlOpcode::Close) => self.close_frame(out, &payload, sender),
            Opcode::Control(ControlOpcode::Ping) => {
                if let Some(text) = printable(&payload) {
                    row(
                        out,
                        "",
                        "data",
                        text,
                        "application data, returned in the Pong",
                    );
                }
                let between = if self.message.is_some() {
                    "; control frames may come between the fragments of a message (§5.4)"
                } else {
                    ""
                };
                para(
                    out,
                    &format!(
                        "  ✓ a Ping: {} answers with a Pong carrying the same {} (§5.5.2){between}",
                        sender.receiver(),
                        bytes_count(payload.len())
                    ),
                );
                out.push('\n');
            }
            Opcode::Control(ControlOpcode::Pong) => {
                if let Some(text) = printable(&payload) {
                    row(out, "", "data", text, "the data of the Ping it answers");
                }
                para(
                    out,
                    "  ✓ a Pong: answers a Ping with its data, or is an unsolicited heartbeat; \
                     nothing answers it (§5.5.3)",
                );
                out.push('\n');
            }
        }
    }

    fn data_frame(
        &mut self,
        out: &mut String,
        op: DataOpcode,
        fin: bool,
        payload: &[u8],
        sender: Sender,
    ) {
        if op != DataOpcode::Continuation {
            self.message = Some(Message {
                kind: op,
                frames: 0,
                len: 0,
                preview: Vec::new(),
            });
            self.utf8.reset();
        }
        let Some(message) = self.message.as_mut() else {
            unreachable!("check_header refuses a continuation without a message")
        };
        message.frames += 1;
        message.len += payload.len() as u64;
        let room = PREVIEW_BYTES.saturating_sub(message.preview.len());
        message
            .preview
            .extend_from_slice(&payload[..payload.len().min(room)]);
        let (kind, frames, len) = (message.kind, message.frames, message.len);
        let preview = message.preview.clone();

        if kind == DataOpcode::Text {
            // §8.1: text is checked as it arrives, and a message may not end mid-character.
            let valid = self.utf8.feed(payload).is_ok() && (!fin || self.utf8.finish().is_ok());
            if !payload.is_empty() {
                let text = quoted(&String::from_utf8_lossy(payload));
                let note = match (valid, fin && frames == 1) {
                    (false, _) => "✗ not valid UTF-8 (§5.6, §8.1)",
                    (true, true) => "valid UTF-8 (§5.6)",
                    (true, false) => "this fragment's text; a character may span fragments",
                };
                row(out, "", "text", text, note);
            }
            if !valid {
                self.violation(out, sender, ProtocolError::InvalidUtf8);
                return;
            }
        }
        if fin {
            let shown = match kind {
                DataOpcode::Text => format!(": {}", quoted(&String::from_utf8_lossy(&preview))),
                _ => String::new(),
            };
            let frames = if frames == 1 {
                "1 frame".to_string()
            } else {
                format!("{frames} frames")
            };
            para(
                out,
                &format!(
                    "  ✓ a complete {} message of {} in {frames}{shown}",
                    data_name(kind),
                    bytes_count(len as usize),
                ),
            );
            self.message = None;
        } else {
            let text = format!(
                "  ✓ fragment {frames} of a {} message ({} so far); continuation frames follow \
                 (§5.4)",
                data_name(kind),
                bytes_count(len as usize)
            );
            para(out, &text);
        }
        out.push('\n');
    }

    fn close_frame(&mut self, out: &mut String, payload: &[u8], sender: Sender) {
        match CloseFrame::parse(payload) {
            Ok(close) => {
                if payload.is_empty() {
                    row(
                        out,
                        "",
                        "code",
                        "none",
                        "an empty Close: no status code, reported as 1005 (§5.5.1, §7.1.5)",
                    );
                } else {
                    let note = format!("{} (§7.4.1)", close_code_meaning(close.code));
                    row(out, &hex(&payload[..2]), "code", close.code, &note);
                    if payload.len() > 2 {
                        row(
                            out,
                            "",
                            "reason",
                            quoted(&close.reason),
                            "UTF-8, for debugging rather than for users (§5.5.1)",
                        );
                    }
                }
                let answer = match close.code {
                    CloseCode::NoStatusReceived => "an empty Close".to_string(),
                    code => format!("a Close that usually echoes {code}"),
                };
                let text = format!(
                    "  ✓ a Close: {} answers with {answer} unless it has sent its own already; \
                     this is the {}'s last frame, and once both Closes are sent the server \
                     closes the TCP connection (§5.5.1, §7.1.1)",
                    sender.receiver(),
                    sender.name()
                );
                para(out, &text);
                out.push('\n');
                self.phase = Phase::Closed;
            }
            Err(e) => {
                match e {
                    InvalidClosePayload::OneByte => row(
                        out,
                        &hex(payload),
                        "code",
                        "",
                        "✗ one byte: a status code takes two (§5.5.1)",
                    ),
                    InvalidClosePayload::Code(code) => row(
                        out,
                        &hex(&payload[..2]),
                        "code",
                        code,
                        "✗ not a code that may be sent (§7.4.1, §7.4.2)",
                    ),
                    InvalidClosePayload::Utf8 => row(
                        out,
                        "",
                        "reason",
                        quoted(&String::from_utf8_lossy(&payload[2..])),
                        "✗ not valid UTF-8 (§5.5.1, §8.1)",
                    ),
                }
                self.violation(out, sender, e.into());
            }
        }
    }

    fn violation(&mut self, out: &mut String, sender: Sender, e: ProtocolError) {
        let (section, rule) = frame_rule(e);
        let code = e.close_code();
        para(out, &format!("  ✗ breaks RFC 6455 {section}: {rule}"));
        para(
            out,
            &format!(
                "    → {} fails the connection (§7.1.7): it sends Close {} ({}) with reason {:?} \
             and reads nothing more",
                sender.receiver(),
                code,
                close_code_meaning(code),
                e.reason()
            ),
        );
        para(
            out,
            &format!(
                "    (wsloop: ProtocolError::{e:?}, raised in {})",
                error_source(e)
            ),
        );
        out.push('\n');
        self.phase = Phase::Failed;
        self.message = None;
    }

    /// What is there of a frame cut short by the end of the input.
    fn partial_frame(&mut self, out: &mut String, raw: &[u8]) {
        let sender = self.from.unwrap_or(if raw.len() > 1 && raw[1] & 0x80 != 0 {
            Sender::Client
        } else {
            Sender::Server
        });
        self.frames += 1;
        match FrameHeader::decode(raw) {
            Ok(Decoded::Header(h, header_len)) => {
                let present = raw.len() - header_len;
                let _ = writeln!(
                    out,
                    "frame {} ({}, incomplete: {} of {} payload bytes)",
                    self.frames,
                    sender.arrow(),
                    present,
                    h.payload_len
                );
                self.header_rows(out, &raw[..header_len], sender);
                let mut payload = raw[header_len..].to_vec();
                if let Some(key) = h.mask {
                    apply_mask(&mut payload, key, 0);
                }
                if !payload.is_empty() {
                    hex_rows(
                        out,
                        &payload,
                        "payload",
                        &bytes_count(present),
                        "(unmasked)",
                    );
                }
                para(
                    out,
                    &format!(
                        "  … the input ends here: the receiver waits for {} more bytes",
                        h.payload_len - present as u64
                    ),
                );
            }
            Ok(Decoded::NeedMore(n)) => {
                let _ = writeln!(
                    out,
                    "frame {} ({}, incomplete header: {} bytes)",
                    self.frames,
                    sender.arrow(),
                    raw.len()
                );
                self.header_rows(out, raw, sender);
                para(
                    out,
                    &format!("  … the input ends here: the header needs {n} more byte(s)"),
                );
            }
            Err(e) => {
                let _ = writeln!(out, "frame {} ({})", self.frames, sender.arrow());
                self.header_rows(out, raw, sender);
                self.violation(out, sender, e);
            }
        }
    }
}

// ----- The words --------------------------------------------------------------------------------

/// The rule behind each protocol error: the section and what it says.
pub fn frame_rule(e: ProtocolError) -> (&'static str, &'static str) {
    match e {
        ProtocolError::ReservedBitsSet => (
            "§5.2",
            "RSV1, RSV2 and RSV3 MUST be 0 unless an extension defining them was negotiated",
        ),
        ProtocolError::ReservedOpcode(_) => (
            "§5.2",
            "opcodes 0x3-0x7 and 0xB-0xF are reserved; a receiver MUST fail the connection on one",
        ),
        ProtocolError::InvalidPayloadLength => (
            "§5.2",
            "the most significant bit of a 64-bit payload length MUST be 0",
        ),
        ProtocolError::UnmaskedFrameFromClient => (
            "§5.1",
            "a client MUST mask every frame it sends, and a server MUST close the connection \
             on an unmasked one",
        ),
        ProtocolError::MaskedFrameFromServer => (
            "§5.1",
            "a server MUST NOT mask the frames it sends, and a client MUST close the \
             connection on a masked one",
        ),
        ProtocolError::ControlFrameTooLong => (
            "§5.5",
            "a control frame MUST have a payload of 125 bytes or less",
        ),
        ProtocolError::FragmentedControlFrame => (
            "§5.5",
            "a control frame MUST NOT be fragmented: its FIN is 1",
        ),
        ProtocolError::InvalidCompressedData => (
            "RFC 7692 §6.2",
            "a message with RSV1 set (permessage-deflate) must inflate: its payload plus \
             00 00 ff ff is valid DEFLATE data",
        ),
        ProtocolError::UnexpectedContinuation => (
            "§5.4",
            "a continuation frame (opcode 0x0) only continues a fragmented message in progress",
        ),
        ProtocolError::ExpectedContinuation => (
            "§5.4",
            "the fragments of a message MUST NOT be interleaved with another message: only \
             continuation frames (and control frames) may follow a non-final fragment",
        ),
        ProtocolError::InvalidCloseFrame => (
            "§5.5.1",
            "a Close body, if there is one, starts with a 2-byte status code",
        ),
        ProtocolError::InvalidCloseCode(_) => (
            "§7.4.1, §7.4.2",
            "only codes 1000-1003, 1007-1014 and 3000-4999 may be sent; 1005, 1006 and 1015 \
             report what happened and never appear on the wire",
        ),
        ProtocolError::InvalidUtf8 => (
            "§5.6, §8.1",
            "text messages and close reasons MUST be valid UTF-8, and a receiver fails the \
             connection at the first invalid byte",
        ),
        ProtocolError::FrameTooLarge => (
            "§10.4",
            "an endpoint may limit frame sizes; wsloop's session::SessionLimits::max_frame_size \
             (1 MiB by default) is checked from the header alone",
        ),
        ProtocolError::MessageTooLarge => (
            "§10.4",
            "an endpoint may limit message sizes; wsloop's session::SessionLimits::max_message_size \
             (1 MiB by default) is checked from each header",
        ),
        ProtocolError::Overloaded => (
            "§7.4.2 (IANA registry: 1013)",
            "not the peer's fault: the server's memory budget could not take this message now; \
             1013 Try Again Later tells the client it may retry",
        ),
    }
}

/// Where wsloop raises each error.
fn error_source(e: ProtocolError) -> &'static str {
    match e {
        ProtocolError::ReservedOpcode(_) | ProtocolError::InvalidPayloadLength => {
            "src/frame.rs, FrameHeader::decode"
        }
        ProtocolError::InvalidCloseFrame | ProtocolError::InvalidCloseCode(_) => {
            "src/close.rs, CloseFrame::parse"
        }
        ProtocolError::InvalidUtf8 => "src/session/read.rs with src/utf8.rs",
        ProtocolError::InvalidCompressedData => "src/deflate.rs, inflating",
        ProtocolError::Overloaded => "src/session/read.rs, against the server's allowance",
        _ => "src/session/rules.rs, check_header",
    }
}

/// The rule behind each handshake refusal.
pub fn handshake_rule(e: HandshakeError) -> (&'static str, &'static str) {
    match e {
        HandshakeError::Malformed => (
            "RFC 6455 §4.2.1",
            "the opening handshake is a valid HTTP/1.1 request (RFC 9112 syntax)",
        ),
        HandshakeError::HeadersTooLarge => (
            "wsloop's limit (no RFC 6455 rule)",
            "a head is at most handshake::Limits::max_head_bytes, 8 KiB by default, so a peer \
             cannot make the server buffer without end (431: RFC 6585 §5)",
        ),
        HandshakeError::TooManyHeaders => (
            "wsloop's limit (no RFC 6455 rule)",
            "a head has at most handshake::Limits::max_headers, 64 by default (431: RFC 6585 §5)",
        ),
        HandshakeError::MethodNotAllowed => (
            "RFC 6455 §4.2.1 item 1",
            "the opening handshake MUST be a GET request",
        ),
        HandshakeError::UnsupportedHttpVersion => (
            "RFC 6455 §4.2.1 item 1",
            "the opening handshake MUST be HTTP/1.1 or higher",
        ),
        HandshakeError::MissingHost => (
            "RFC 6455 §4.2.1 item 2",
            "the request MUST have a Host header",
        ),
        HandshakeError::NotWebSocketUpgrade => (
            "RFC 6455 §4.2.1 item 3",
            "the Upgrade header MUST include \"websocket\"",
        ),
        HandshakeError::MissingConnectionUpgrade => (
            "RFC 6455 §4.2.1 item 4",
            "the Connection header MUST include the token \"Upgrade\"",
        ),
        HandshakeError::MissingKey => (
            "RFC 6455 §4.2.1 item 5",
            "the request MUST have a Sec-WebSocket-Key header",
        ),
        HandshakeError::InvalidKey => (
            "RFC 6455 §4.2.1 item 5",
            "Sec-WebSocket-Key MUST be base64 that decodes to 16 bytes",
        ),
        HandshakeError::MissingVersion => (
            "RFC 6455 §4.2.1 item 6",
            "the request MUST have Sec-WebSocket-Version: 13",
        ),
        HandshakeError::UnsupportedVersion => (
            "RFC 6455 §4.2.1 item 6, §4.4",
            "Sec-WebSocket-Version MUST be 13; for any other the server answers 426 and lists \
             the versions it speaks in Sec-WebSocket-Version",
        ),
    }
}

/// The rule behind each response a client rejects.
pub fn client_handshake_rule(e: &ClientHandshakeError) -> (&'static str, &'static str) {
    match e {
        ClientHandshakeError::InvalidUrl(_) => ("RFC 6455 §3", "the URL is ws://host[:port]/path"),
        ClientHandshakeError::Malformed => (
            "RFC 6455 §4.1",
            "the response is a valid HTTP/1.1 response (RFC 9112 syntax)",
        ),
        ClientHandshakeError::HeadersTooLarge => (
            "wsloop's limit (no RFC 6455 rule)",
            "a response head is at most 8 KiB",
        ),
        ClientHandshakeError::UnexpectedStatus(_) => (
            "RFC 6455 §4.1 item 1",
            "any status other than 101 means the handshake did not complete",
        ),
        ClientHandshakeError::MissingUpgrade => (
            "RFC 6455 §4.1 item 2",
            "the response MUST have Upgrade: websocket",
        ),
        ClientHandshakeError::MissingConnectionUpgrade => (
            "RFC 6455 §4.1 item 3",
            "the response MUST have Connection: Upgrade",
        ),
        ClientHandshakeError::InvalidAccept => (
            "RFC 6455 §4.1 item 4",
            "Sec-WebSocket-Accept MUST be base64(SHA-1(the client's key + the GUID))",
        ),
        ClientHandshakeError::UnrequestedExtension => (
            "RFC 6455 §4.1 item 5",
            "the server MUST NOT select an extension the client did not offer",
        ),
        ClientHandshakeError::UnrequestedProtocol => (
            "RFC 6455 §4.1 item 6",
            "the server MUST NOT select a subprotocol the client did not offer",
        ),
        #[cfg(feature = "deflate")]
        ClientHandshakeError::Deflate(_) => (
            "RFC 7692 §7.1",
            "a client MUST fail the connection on a permessage-deflate answer with an unknown, \
             repeated or invalid parameter, or one outside what it offered",
        ),
    }
}

/// What a close code means (§7.4.1 and the IANA registry).
pub fn close_code_meaning(code: CloseCode) -> &'static str {
    match code {
        CloseCode::NormalClosure => "normal closure",
        CloseCode::GoingAway => "going away",
        CloseCode::ProtocolError => "protocol error",
        CloseCode::UnsupportedData => "unsupported data",
        CloseCode::NoStatusReceived => "no status received",
        CloseCode::AbnormalClosure => "abnormal closure",
        CloseCode::InvalidFramePayloadData => "invalid frame payload data",
        CloseCode::PolicyViolation => "policy violation",
        CloseCode::MessageTooBig => "message too big",
        CloseCode::MandatoryExtension => "mandatory extension",
        CloseCode::InternalError => "internal error",
        CloseCode::ServiceRestart => "service restart",
        CloseCode::TryAgainLater => "try again later",
        CloseCode::BadGateway => "bad gateway",
        CloseCode::TlsHandshake => "TLS handshake failure",
        CloseCode::Registered(_) => "registered with IANA by a library or application",
        CloseCode::Private(_) => "private use",
        CloseCode::Reserved(_) => "reserved",
    }
}

fn opcode_note(op: Opcode) -> &'static str {
    match op {
        Opcode::Data(DataOpcode::Continuation) => "continues the fragmented message (§5.4)",
        Opcode::Data(DataOpcode::Text) => "a data frame that starts a UTF-8 text message (§5.6)",
        Opcode::Data(DataOpcode::Binary) => "a data frame that starts a binary message (§5.6)",
        Opcode::Control(ControlOpcode::Close) => {
            "a control frame that starts or answers the closing handshake (§5.5.1)"
        }
        Opcode::Control(ControlOpcode::Ping) => "a control frame asking for a Pong (§5.5.2)",
        Opcode::Control(ControlOpcode::Pong) => "a control frame answering a Ping (§5.5.3)",
    }
}

fn data_name(kind: DataOpcode) -> &'static str {
    match kind {
        DataOpcode::Text => "text",
        DataOpcode::Binary => "binary",
        DataOpcode::Continuation => "continuation",
    }
}

fn request_line_note(line: &str) -> String {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [method, target, version] = parts.as_slice() else {
        return "✗ a request line is METHOD TARGET HTTP/VERSION (RFC 9112 §3)".into();
    };
    let verdict = match (*method, *version) {
        ("GET", "HTTP/1.1") => "a GET over HTTP/1.1, as the handshake must be".to_string(),
        ("GET", other) => format!("✗ {other}, but the handshake MUST be HTTP/1.1 or higher"),
        (other, _) => format!("✗ {other}, but the handshake MUST be a GET"),
    };
    format!(
        "request line: {verdict} (§4.2.1 item 1); {target} is the resource name, which the \
         server routes on (wsloop: the sid in /ws/{{sid}})"
    )
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn request_header_note(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "host" => "required (§4.2.1 item 2): the host the client asked for".into(),
        "upgrade" if has_token(value, "websocket") => {
            "required (§4.2.1 item 3): asks to switch this connection to WebSocket".into()
        }
        "upgrade" => "✗ required to include \"websocket\" (§4.2.1 item 3)".into(),
        "connection" if has_token(value, "upgrade") => {
            "required (§4.2.1 item 4): the token \"Upgrade\" marks Upgrade as hop-by-hop".into()
        }
        "connection" => "✗ required to include the token \"Upgrade\" (§4.2.1 item 4)".into(),
        "sec-websocket-key" => {
            let sixteen = base64::engine::general_purpose::STANDARD
                .decode(value)
                .is_ok_and(|nonce| nonce.len() == 16);
            let head = if sixteen {
                "required (§4.2.1 item 5): base64 of 16 random bytes, new for each connection"
            } else {
                "✗ required to be base64 of 16 bytes (§4.2.1 item 5)"
            };
            format!(
                "{head}\nthe server proves it read it with Sec-WebSocket-Accept (§1.3, §4.2.2):\n\
                 base64(SHA-1(key + \"{GUID}\")) = {}",
                accept_key(value.as_bytes())
            )
        }
        "sec-websocket-version" if value == "13" => {
            "required (§4.2.1 item 6): 13, the version RFC 6455 defines".into()
        }
        "sec-websocket-version" => format!(
            "✗ required to be 13 (§4.2.1 item 6); a server answers {value} with 426 and \
             Sec-WebSocket-Version: 13 (§4.4)"
        ),
        "origin" => "optional (§4.2.1 item 7): browsers send the page's origin; a server may \
                     refuse origins it does not trust (§10.2)"
            .into(),
        "sec-websocket-protocol" => "optional (§4.2.1 item 8): the subprotocols the client \
                                     offers, preferred first; the server selects at most one"
            .into(),
        "sec-websocket-extensions" => "optional (§4.2.1 item 9): extensions offered, such as \
                                       permessage-deflate; wsloop negotiates none (§9.1)"
            .into(),
        _ => "another header (§4.2.1 item 10): ordinary HTTP, not part of the handshake".into(),
    }
}

fn response_header_note(
    name: &str,
    value: &str,
    expected_accept: Option<&str>,
    offered: Option<&[String]>,
) -> String {
    match name.to_ascii_lowercase().as_str() {
        "upgrade" if has_token(value, "websocket") => {
            "required (§4.2.2, checked by the client: §4.1 item 2)".into()
        }
        "upgrade" => "✗ required to be \"websocket\" (§4.1 item 2)".into(),
        "connection" if has_token(value, "upgrade") => {
            "required (§4.2.2, checked by the client: §4.1 item 3)".into()
        }
        "connection" => "✗ required to include \"Upgrade\" (§4.1 item 3)".into(),
        "sec-websocket-accept" => match expected_accept {
            Some(expected) if expected == value => format!(
                "required (§4.2.2): base64(SHA-1(key + GUID)) of the client's key is {expected}: \
                 it matches (§4.1 item 4)"
            ),
            Some(expected) => format!(
                "✗ base64(SHA-1(key + GUID)) of the client's key is {expected}, not this \
                 (§4.1 item 4)"
            ),
            None => "required (§4.2.2): base64(SHA-1(key + GUID)) of the client's key".into(),
        },
        "sec-websocket-protocol" => match offered {
            Some(offered) if offered.iter().any(|p| p == value) => format!(
                "the subprotocol the server selected, one the client offered ({}) (§4.1 item 6)",
                offered.join(", ")
            ),
            Some(_) => "✗ a subprotocol the client did not offer (§4.1 item 6)".into(),
            None => "the subprotocol the server selected (§4.2.2)".into(),
        },
        "sec-websocket-extensions" => {
            "extensions the server accepted; only ones the client offered (§4.1 item 5)".into()
        }
        _ => "another header: ordinary HTTP".into(),
    }
}

// ----- Layout -----------------------------------------------------------------------------------

/// Whether `buf` starts an HTTP head: `Some(true)` for "HTTP/" or an upper-case method and a
/// space, `Some(false)` for anything else, `None` when too short to tell. (No valid frame
/// starts with an ASCII capital: its RSV1 bit would be set.)
fn looks_like_http(buf: &[u8]) -> Option<bool> {
    if buf.starts_with(b"HTTP/") {
        return Some(true);
    }
    for (i, b) in buf.iter().enumerate() {
        match b {
            b'A'..=b'Z' if i < 16 => continue,
            b' ' if i > 0 => return Some(true),
            _ => return Some(false),
        }
    }
    // Empty, or capitals so far (a method, or the start of "HTTP/"): wait for more.
    None
}

/// The length of the head in `buf`, through the empty line that ends it.
fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            None
        } else if buf.get(i + 1) == Some(&b'\n') {
            Some(i + 2)
        } else if buf.get(i + 1..i + 3) == Some(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// The lines of a head, without line ends and without the empty last line.
fn split_head(head: &[u8]) -> Vec<String> {
    let end = head_end(head).unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end])
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn head_lines(out: &mut String, head: &[u8]) {
    for line in String::from_utf8_lossy(head).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

/// How many bytes the header in `raw` announces it takes (2, 4, 6, 8, 10, 14).
fn raw_header_len(raw: &[u8]) -> usize {
    let Some(&b1) = raw.get(1) else { return 2 };
    let extra = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extra + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Lines of prose are wrapped at this width; table rows are not.
const WIDTH: usize = 100;

/// Append `text` wrapped at [`WIDTH`], continuation lines indented under the text after its
/// leading spaces and mark (✓, ✗, →, ·, ?, …).
fn para(out: &mut String, text: &str) {
    let body = text.trim_start_matches(' ');
    let lead = text.len() - body.len();
    let mark = ["✓ ", "✗ ", "→ ", "· ", "? ", "… "]
        .iter()
        .find(|m| body.starts_with(*m))
        .map_or(0, |m| m.chars().count());
    let pad = " ".repeat(lead + mark);
    let mut line = " ".repeat(lead);
    let mut width = lead;
    let mut first = true;
    for word in body.split(' ') {
        let w = word.chars().count();
        if !first && width + 1 + w > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clone_from(&pad);
            width = pad.len();
            first = true;
        }
        if !first {
            line.push(' ');
            width += 1;
        }
        line.push_str(word);
        width += w;
        first = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

const BYTES_COLUMN: usize = 23;

fn row(out: &mut String, bytes: &str, field: &str, value: impl std::fmt::Display, note: &str) {
    let value = value.to_string();
    let line = format!("  {bytes:<BYTES_COLUMN$} {field:<8} {value:<8} {note}");
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `bytes` as hex, eight to a row, at most two rows and then how many more.
fn hex_rows(out: &mut String, bytes: &[u8], field: &str, value: &str, note: &str) {
    const PER_ROW: usize = 8;
    const ROWS: usize = 2;
    for (i, chunk) in bytes.chunks(PER_ROW).take(ROWS).enumerate() {
        if i == 0 {
            row(out, &hex(chunk), field, value, note);
        } else {
            row(out, &hex(chunk), "", "", "");
        }
    }
    if bytes.len() > PER_ROW * ROWS {
        let more = bytes.len() - PER_ROW * ROWS;
        row(out, &format!("… {more} more"), "", "", "");
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bits of `byte` under `mask`, the others as dots: `bits(0x81, 0x0f)` is `.... 0001`.
fn bits(byte: u8, mask: u8) -> String {
    let mut s = String::with_capacity(9);
    for i in (0..8).rev() {
        if i == 3 {
            s.push(' ');
        }
        let bit = 1u8 << i;
        s.push(match (mask & bit != 0, byte & bit != 0) {
            (false, _) => '.',
            (true, true) => '1',
            (true, false) => '0',
        });
    }
    s
}

fn bytes_count(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// A string quoted, its control characters escaped, cut at 60 characters.
fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

/// The payload quoted if it is printable UTF-8.
fn printable(payload: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| quoted(text))
}
