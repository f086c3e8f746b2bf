//! The load generator's own permessage-deflate (RFC 7692), for row 8: written apart from
//! wsloop's codec (it only shares the DEFLATE engine, `flate2` over `zlib-rs`), so that a
//! server bug cannot hide behind the same bug in the client.
//!
//! - [`OFFER`]: what every row-8 client offers: it will reset its own compressor after every
//!   message (so each of its messages is compressed once, before the run, and sent as the
//!   same masked frame every time) and lets the server limit its window.
//! - [`agreed`]: the server's `Sec-WebSocket-Extensions` answer, checked.
//! - [`compress_message`]: one message as a client sends it (§7.2.1).
//! - [`Replies`]: one connection's incoming byte stream, parsed frame by frame, every
//!   compressed message inflated (§7.2.2) and compared with the payload that was sent.
//! - [`json_text`]: the payloads: JSON-like order notifications, as compressible as real
//!   JSON is.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The client's offer: RFC 7692 §7.1.1.2 (we reset our context after each message) and
/// §7.1.2.2 (the server may limit our window).
pub const OFFER: &str = "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// §7.2.1: a sync flush ends with these four bytes; the sender drops them, the receiver
/// appends them before inflating.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The "per-message compressed" bit of the first frame of a message (§6).
pub const RSV1: u8 = 0x40;

/// Opcode of a text frame with FIN set.
pub const TEXT_FIN: u8 = 0x81;

/// The parameters the server answered (absent window bits: 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// The `Sec-WebSocket-Extensions` values of a response head, joined with `,` (RFC 7230
/// §3.2.2), or `None` when the header is absent.
pub fn extensions_header(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let values: Vec<&str> = text
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, value)| value.trim())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The server's answer to [`OFFER`] in a `101` head: `None` if it declined (no header),
/// the agreed parameters, or why the answer breaks RFC 7692 §7.1 (then the client must fail
/// the connection).
pub fn agreed(head: &[u8]) -> Result<Option<Agreed>, String> {
    let Some(value) = extensions_header(head) else {
        return Ok(None);
    };
    let extensions: Vec<&str> = value.split(',').map(str::trim).collect();
    let [one] = extensions.as_slice() else {
        return Err(format!("answer {value:?}: we offered one extension"));
    };
    let mut parts = one.split(';').map(str::trim);
    let name = parts.next().unwrap_or_default();
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!("answer {value:?}: an extension we did not offer"));
    }
    let mut agreed = Agreed {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        let (key, val) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(format!("answer {value:?}: {key} twice"));
        }
        seen.push(key.clone());
        let bits = |v: Option<&str>| -> Result<u8, String> {
            match v.map(|v| (v, v.parse::<u8>())) {
                Some((v, Ok(b @ 8..=15))) if !v.starts_with('0') => Ok(b),
                _ => Err(format!("answer {value:?}: bad {key}")),
            }
        };
        match (key.as_str(), val) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            // §7.1.2.1: the server may announce a smaller window even when not asked.
            ("server_max_window_bits", v) => agreed.server_max_window_bits = bits(v)?,
            // §7.1.2.2: in an answer it has a value, at most what we offered (bare: 15).
            ("client_max_window_bits", v) => agreed.client_max_window_bits = bits(v)?,
            _ => return Err(format!("answer {value:?}: unexpected parameter {param:?}")),
        }
    }
    Ok(Some(agreed))
}

/// zlib cannot open a raw stream with a 2^8 window; 2^9 still never emits a distance over
/// 2^8 (its distances stop 262 bytes short of the window), and inflating with a larger
/// window than the sender's is always safe.
pub fn zlib_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

/// One message compressed as a client sends it with no context takeover (§7.2.1): raw
/// DEFLATE with a fresh compressor of 2^`bits` window, a sync flush, the four-byte tail
/// removed.
pub fn compress_message(payload: &[u8], level: u32, bits: u8) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, zlib_bits(bits));
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    loop {
        let done = c.total_in() as usize;
        c.compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&TAIL), "a sync flush ends with 00 00 ff ff");
    out.truncate(out.len() - TAIL.len());
    out
}

/// One connection's incoming stream: server frames parsed as they come (in any chunking),
/// every message inflated if compressed, and checked against the payload expected.
///
/// Message `m` of a connection whose first message was `first` must be
/// `payloads[(first + m) % payloads.len()]`, as a text message; anything else (another
/// opcode, a control frame, a masked frame, RSV1 without the extension, a payload that
/// inflates to other bytes or fails to inflate) is an error.
pub struct Replies {
    first: usize,
    /// Whole messages received and checked.
    pub done: u64,
    /// The connection's inflater (context kept between messages unless the server answered
    /// `server_no_context_takeover`); `None` without the extension.
    inflater: Option<Decompress>,
    reset_each_message: bool,
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes left in the current frame, when `in_payload`.
    remaining: u64,
    in_payload: bool,
    fin: bool,
    in_message: bool,
    compressed: bool,
    /// Bytes of the current message's (inflated) payload checked so far.
    checked: usize,
    /// The inflater met a final block (BFINAL) in this message.
    ended: bool,
}

/// How many bytes a frame header has, once its first two bytes are known.
fn header_len(second: u8) -> usize {
    match second & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    }
}

impl Replies {
    pub fn new(first: usize, agreed: Option<Agreed>) -> Replies {
        Replies {
            first,
            done: 0,
            inflater: agreed.map(|a| {
                Decompress::new_with_window_bits(false, zlib_bits(a.server_max_window_bits))
            }),
            reset_each_message: agreed.is_some_and(|a| a.server_no_context_takeover),
            header: [0; 14],
            header_len: 0,
            remaining: 0,
            in_payload: false,
            fin: false,
            in_message: false,
            compressed: false,
            checked: 0,
            ended: false,
        }
    }

    /// Take in `data`, the next bytes of the stream; `scratch` is room for inflated bytes.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        payloads: &[Vec<u8>],
        scratch: &mut [u8],
    ) -> Result<(), String> {
        while !data.is_empty() {
            if !self.in_payload {
                let need = if self.header_len < 2 {
                    2
                } else {
                    header_len(self.header[1])
                };
                let n = (need - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len == 2 && header_len(self.header[1]) > 2 {
                    continue;
                }
                if self.header_len == need {
                    self.start_frame()?;
                    if self.remaining == 0 {
                        self.end_frame(payloads, scratch)?;
                    }
                }
                continue;
            }
            let n = (self.remaining.min(data.len() as u64)) as usize;
            self.payload(&data[..n], payloads, scratch)?;
            data = &data[n..];
            self.remaining -= n as u64;
            if self.remaining == 0 {
                self.end_frame(payloads, scratch)?;
            }
        }
        Ok(())
    }

    fn expected<'p>(&self, payloads: &'p [Vec<u8>]) -> &'p [u8] {
        &payloads[(self.first + self.done as usize) % payloads.len()]
    }

    fn start_frame(&mut self) -> Result<(), String> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let m = self.done;
        if b1 & 0x80 != 0 {
            return Err(format!("message {m}: a masked frame from the server"));
        }
        if b0 & 0x30 != 0 {
            return Err(format!("message {m}: RSV2/RSV3 set"));
        }
        let opcode = b0 & 0x0f;
        let rsv1 = b0 & RSV1 != 0;
        if opcode >= 8 {
            return Err(format!(
                "message {m}: unexpected control frame (opcode {opcode})"
            ));
        }
        if self.in_message {
            if opcode != 0 || rsv1 {
                return Err(format!(
                    "message {m}: expected a continuation frame, got {b0:#04x}"
                ));
            }
        } else {
            if opcode != 1 {
                return Err(format!("message {m}: expected text, got opcode {opcode}"));
            }
            if rsv1 && self.inflater.is_none() {
                return Err(format!(
                    "message {m}: RSV1 set, but no extension was agreed"
                ));
            }
            self.in_message = true;
            self.compressed = rsv1;
            self.checked = 0;
            self.ended = false;
        }
        self.fin = b0 & 0x80 != 0;
        self.remaining = match b1 & 0x7f {
            126 => u16::from_be_bytes([self.header[2], self.header[3]]) as u64,
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            n => n as u64,
        };
        self.header_len = 0;
        self.in_payload = true;
        Ok(())
    }

    fn payload(
        &mut self,
        chunk: &[u8],
        payloads: &[Vec<u8>],
        scratch: &mut [u8],
    ) -> Result<(), String> {
        let expected = self.expected(payloads);
        if !self.compressed {
            return check(expected, &mut self.checked, chunk, self.done);
        }
        if self.ended {
            return Err(format!(
                "message {}: data after the final DEFLATE block",
                self.done
            ));
        }
        let inflater = self.inflater.as_mut().expect("compressed means agreed");
        self.ended = inflate(
            inflater,
            chunk,
            FlushDecompress::None,
            expected,
            &mut self.checked,
            scratch,
            self.done,
        )?;
        Ok(())
    }

    fn end_frame(&mut self, payloads: &[Vec<u8>], scratch: &mut [u8]) -> Result<(), String> {
        self.in_payload = false;
        if !self.fin {
            return Ok(());
        }
        let expected = self.expected(payloads);
        if self.compressed {
            let inflater = self.inflater.as_mut().expect("compressed means agreed");
            if !self.ended {
                // §7.2.2: append 00 00 ff ff and inflate.
                inflate(
                    inflater,
                    &TAIL,
                    FlushDecompress::Sync,
                    expected,
                    &mut self.checked,
                    scratch,
                    self.done,
                )?;
            }
            if self.reset_each_message || self.ended {
                inflater.reset(false);
            }
        }
        if self.checked != expected.len() {
            return Err(format!(
                "message {}: {} bytes, expected {}",
                self.done,
                self.checked,
                expected.len()
            ));
        }
        self.in_message = false;
        self.done += 1;
        Ok(())
    }
}

/// Check that `got` is `expected[*at..]`'s next bytes.
fn check(expected: &[u8], at: &mut usize, got: &[u8], m: u64) -> Result<(), String> {
    let end = *at + got.len();
    if end > expected.len() {
        return Err(format!(
            "message {m}: longer than the {} bytes sent",
            expected.len()
        ));
    }
    if expected[*at..end] != *got {
        let i = got
            .iter()
            .zip(&expected[*at..end])
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "message {m}: byte {} is {:#04x}, expected {:#04x}",
            *at + i,
            got[i],
            expected[*at + i]
        ));
    }
    *at = end;
    Ok(())
}

/// Inflate `input` and check the output against `expected` from `*at`; true if the
/// stream ended (a final block).
fn inflate(
    inflater: &mut Decompress,
    mut input: &[u8],
    flush: FlushDecompress,
    expected: &[u8],
    at: &mut usize,
    scratch: &mut [u8],
    m: u64,
) -> Result<bool, String> {
    loop {
        let (in0, out0) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(input, scratch, flush)
            .map_err(|e| format!("message {m}: does not inflate: {e}"))?;
        let used = (inflater.total_in() - in0) as usize;
        let made = (inflater.total_out() - out0) as usize;
        input = &input[used..];
        check(expected, at, &scratch[..made], m)?;
        if status == Status::StreamEnd {
            if !input.is_empty() {
                return Err(format!("message {m}: data after the final DEFLATE block"));
            }
            return Ok(true);
        }
        if made < scratch.len() && (input.is_empty() || (used == 0 && made == 0)) {
            if !input.is_empty() {
                return Err(format!("message {m}: the inflater stopped"));
            }
            return Ok(false);
        }
    }
}

// ----- The payloads ------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
}

const FIRST: [&str; 24] = [
    "Maria", "James", "Aiko", "Lukas", "Fatima", "Chen", "Olivia", "Mateo", "Priya", "Noah",
    "Sofia", "Jonas", "Amara", "Liam", "Elena", "Kenji", "Zoe", "Omar", "Ingrid", "Diego",
    "Hannah", "Ravi", "Chloe", "Mikhail",
];
const LAST: [&str; 24] = [
    "Schmidt",
    "Okafor",
    "Tanaka",
    "Novak",
    "Haddad",
    "Wang",
    "Brown",
    "Garcia",
    "Sharma",
    "Müller",
    "Rossi",
    "Jensen",
    "Mensah",
    "Murphy",
    "Petrova",
    "Sato",
    "Dubois",
    "Khan",
    "Larsen",
    "Fernández",
    "Weber",
    "Iyer",
    "Martin",
    "Volkov",
];
const STREETS: [&str; 16] = [
    "Oak Avenue",
    "Hauptstraße",
    "Rue de la Paix",
    "Maple Street",
    "Calle Mayor",
    "King's Road",
    "Via Roma",
    "Elm Drive",
    "Sakura-dori",
    "Church Lane",
    "Bahnhofstraße",
    "Harbour View",
    "Mill Road",
    "Avenida Paulista",
    "Nørregade",
    "Station Road",
];
const CITIES: [(&str, &str); 16] = [
    ("Springfield", "US"),
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("Toronto", "CA"),
    ("Madrid", "ES"),
    ("London", "GB"),
    ("Milan", "IT"),
    ("Austin", "US"),
    ("Osaka", "JP"),
    ("Dublin", "IE"),
    ("Zürich", "CH"),
    ("Sydney", "AU"),
    ("Leeds", "GB"),
    ("São Paulo", "BR"),
    ("Copenhagen", "DK"),
    ("Bristol", "GB"),
];
const STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "refunded",
];
const PRODUCTS: [&str; 12] = [
    "Wireless Mouse",
    "USB-C Cable 2m",
    "Mechanical Keyboard",
    "27\\\" Monitor",
    "Laptop Stand",
    "Noise-Cancelling Headphones",
    "Webcam 1080p",
    "Desk Lamp",
    "Phone Case",
    "Portable SSD 1TB",
    "Ergonomic Chair",
    "HDMI Adapter",
];
const CARRIERS: [&str; 5] = ["DHL", "UPS", "FedEx", "Royal Mail", "PostNord"];

fn order(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write as _;
    let first = rng.pick(&FIRST);
    let last = rng.pick(&LAST);
    let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
    let status = rng.pick(&STATUSES);
    let items = 1 + rng.below(2);
    let _ = write!(
        out,
        "{{\"id\":\"ord_{:08x}\",\"customer\":{{\"id\":{},\"name\":\"{first} {last}\",\
         \"email\":\"{}.{}{}@example.com\"}},\"status\":\"{status}\",\
         \"created_at\":\"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"currency\":\"{}\",\"items\":[",
        rng.next() as u32,
        10_000 + rng.below(90_000),
        first.to_lowercase(),
        last.to_lowercase(),
        rng.below(100),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        if country == "US" { "USD" } else { "EUR" },
    );
    let mut total = 0u64;
    for i in 0..items {
        let cents = 199 + rng.below(30_000);
        let qty = 1 + rng.below(4);
        total += cents * qty;
        let _ = write!(
            out,
            "{}{{\"sku\":\"SKU-{:05}-{}\",\"name\":\"{}\",\"qty\":{qty},\"price\":\"{}.{:02}\"}}",
            if i > 0 { "," } else { "" },
            rng.below(100_000),
            (b'A' + rng.below(26) as u8) as char,
            rng.pick(&PRODUCTS),
            cents / 100,
            cents % 100
        );
    }
    let _ = write!(
        out,
        "],\"total\":\"{}.{:02}\",\"shipping\":{{\"street\":\"{} {}\",\"city\":\"{city}\",\
         \"postcode\":\"{:05}\",\"country\":\"{country}\",\"carrier\":\"{}\",\
         \"tracking\":\"{:016X}\"}}}}",
        total / 100,
        total % 100,
        1 + rng.below(400),
        rng.pick(&STREETS),
        rng.below(100_000),
        rng.pick(&CARRIERS),
        rng.next()
    );
}

/// A status change, as an order's event log carries them (about 60 to 90 bytes).
fn event(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{{\"at\":\"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"order\":\"ord_{:08x}\",\"status\":\"{}\"}}",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.next() as u32,
        rng.pick(&STATUSES),
    );
}

/// A JSON order notification of exactly `len` bytes (at least ~100), different for every
/// `seed`: `{"type":"orders.updated","seq":…,"orders":[…],"events":[…],"cursor":"…"}`. The
/// orders carry ids, names, e-mail addresses, timestamps, items, prices, shipping addresses
/// and tracking numbers drawn from small vocabularies and random numbers; the events (status
/// changes) fill the room the orders leave, and the cursor (an opaque base64url token, as
/// APIs hand out; at most ~100 bytes) pads the text to its exact length.
pub fn json_text(seed: u64, len: usize) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const CURSOR: usize = 12;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out = format!("{{\"type\":\"orders.updated\",\"seq\":{seed},\"orders\":[");
    let close = "],\"cursor\":\"\"}";
    // Fill a JSON array with `item` until the next one would leave no room for the rest.
    let fill = |out: &mut String, rng: &mut Rng, rest: usize, item: fn(&mut Rng, &mut String)| {
        let mut first = true;
        loop {
            let mut next = String::new();
            item(rng, &mut next);
            let sep = usize::from(!first);
            if out.len() + sep + next.len() + rest > len {
                break;
            }
            if !first {
                out.push(',');
            }
            out.push_str(&next);
            first = false;
        }
    };
    let events_open = "],\"events\":[";
    fill(
        &mut out,
        &mut rng,
        events_open.len() + close.len() + CURSOR + 100,
        order,
    );
    out.push_str(events_open);
    fill(&mut out, &mut rng, close.len() + CURSOR, event);
    out.push_str("],\"cursor\":\"");
    let pad = len.saturating_sub(out.len() + 2);
    let mut out = out.into_bytes();
    out.extend((0..pad).map(|_| B64[rng.below(64) as usize]));
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client_frame, mask_key, server_frame};

    fn agreed_of(answer: &str) -> Result<Option<Agreed>, String> {
        agreed(format!("HTTP/1.1 101 Switching Protocols\r\n{answer}\r\n\r\n").as_bytes())
    }

    #[test]
    fn answers() {
        assert_eq!(agreed_of("Upgrade: websocket"), Ok(None));
        let a =
            agreed_of("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover")
                .unwrap()
                .unwrap();
        assert!(a.client_no_context_takeover && !a.server_no_context_takeover);
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (15, 15)
        );
        let a = agreed_of(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9",
        )
        .unwrap()
        .unwrap();
        assert!(a.server_no_context_takeover);
        assert_eq!((a.server_max_window_bits, a.client_max_window_bits), (9, 9));
        for bad in [
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame",
            "Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16",
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=09",
            "Sec-WebSocket-Extensions: permessage-deflate; foo",
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ] {
            assert!(agreed_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_payloads() {
        for len in [1024, 16384] {
            let a = json_text(1, len);
            let b = json_text(2, len);
            assert_eq!(a.len(), len);
            assert_ne!(a, b);
            let text = std::str::from_utf8(&a).unwrap();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(!v["orders"].as_array().unwrap().is_empty());
            assert!(!v["events"].as_array().unwrap().is_empty());
            assert!(v["cursor"].as_str().unwrap().len() < 120);
            // Compressible like JSON, not like a repeated byte.
            let z = compress_message(&a, 6, 15).len();
            assert!(z * 5 > len && z * 4 < len * 3, "{len} -> {z}");
        }
    }

    /// The reference: wsloop's own session, as a client and a server, against ours.
    #[test]
    fn interoperates_with_wsloop() {
        use wsloop::deflate::{negotiate, DeflateConfig};
        use wsloop::session::{Event, Message, Role, Session, SessionLimits};
        let payloads: Vec<Vec<u8>> = (0..4).map(|j| json_text(j + 1, 2000)).collect();
        for config in [DeflateConfig::default(), DeflateConfig::low_memory()] {
            let (negotiated, header) = negotiate::answer([OFFER], &config).unwrap();
            let ours = agreed_of(&format!("Sec-WebSocket-Extensions: {header}"))
                .unwrap()
                .unwrap();
            let mut server = Session::new(Role::Server, SessionLimits::default());
            server.set_deflate(negotiated, &config);
            let mut replies = Replies::new(1, Some(ours));
            let mut scratch = vec![0u8; 300];
            for m in 0..10usize {
                let p = &payloads[(1 + m) % 4];
                let z = compress_message(p, 6, ours.client_max_window_bits);
                let frame = client_frame(TEXT_FIN | RSV1, &z, mask_key(m as u64));
                server.receive(&frame).unwrap();
                let text = String::from_utf8(p.clone()).unwrap();
                assert_eq!(
                    server.next_event(),
                    Some(Event::Message(Message::Text(text.clone())))
                );
                server.send_text(&text).unwrap();
                let out = server.take_output();
                assert_ne!(out[0] & RSV1, 0);
                // Any chunking.
                for chunk in out.chunks(7) {
                    replies.feed(chunk, &payloads, &mut scratch).unwrap();
                }
                assert_eq!(replies.done, m as u64 + 1);
            }
        }
    }

    #[test]
    fn wrong_replies_fail() {
        let payloads: Vec<Vec<u8>> = (0..2).map(|j| json_text(j + 1, 500)).collect();
        let good_plain = server_frame(TEXT_FIN, &payloads[0]);
        let mut r = Replies::new(0, None);
        let mut scratch = vec![0u8; 64];
        r.feed(&good_plain, &payloads, &mut scratch).unwrap();
        assert_eq!(r.done, 1);
        // The next one must be payload 1, not 0 again.
        assert!(r.feed(&good_plain, &payloads, &mut scratch).is_err());
        // Compressed without the extension.
        let z = compress_message(&payloads[0], 6, 15);
        let mut r = Replies::new(0, None);
        assert!(r
            .feed(&server_frame(TEXT_FIN | RSV1, &z), &payloads, &mut scratch)
            .is_err());
        // Compressed, one bit flipped.
        let agreed = Some(Agreed {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        });
        let mut r = Replies::new(0, agreed);
        r.feed(&server_frame(TEXT_FIN | RSV1, &z), &payloads, &mut scratch)
            .unwrap();
        assert_eq!(r.done, 1);
        let z1 = compress_message(&payloads[1], 6, 15);
        let mut bad = z1.clone();
        bad[z1.len() / 2] ^= 0x10;
        let mut r2 = Replies::new(1, agreed);
        assert!(r2
            .feed(
                &server_frame(TEXT_FIN | RSV1, &bad),
                &payloads,
                &mut scratch
            )
            .is_err());
        // Binary instead of text.
        let mut r = Replies::new(0, None);
        assert!(r
            .feed(&server_frame(0x82, &payloads[0]), &payloads, &mut scratch)
            .is_err());
    }
}
