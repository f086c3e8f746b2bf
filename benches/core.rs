//! Benchmarks of the protocol core: masking, header decoding, the session's receive path,
//! UTF-8 validation and the opening handshake.
//!
//! Run with `cargo bench --bench core`; each benchmark measures for 2 s after 1 s of warm-up,
//! so the whole suite takes a couple of minutes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use wsloop::frame::{DataOpcode, FrameHeader, Opcode};
use wsloop::handshake::{accept, Limits, RequestParser};
use wsloop::mask::{apply_mask, apply_mask_naive};
use wsloop::session::{Event, Role, Session, SessionLimits};
use wsloop::utf8::Utf8Validator;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Bytes that are not all alike, so that nothing can be folded away.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ 0x5a)
        .collect()
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [64usize, 1 << 10, 64 << 10, 1 << 20] {
        let mut buf = pattern(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("apply_mask", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), 0))
        });
        group.bench_function(BenchmarkId::new("apply_mask_naive", size), |b| {
            b.iter(|| apply_mask_naive(black_box(&mut buf), black_box(KEY), 0))
        });
    }
    group.finish();
}

fn header_decode(c: &mut Criterion) {
    let headers: [(&str, FrameHeader); 3] = [
        (
            "2_bytes",
            FrameHeader::new(true, Opcode::Data(DataOpcode::Text), 5),
        ),
        (
            "4_bytes",
            FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 256),
        ),
        (
            "14_bytes",
            FrameHeader {
                mask: Some(KEY),
                ..FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), 1 << 20)
            },
        ),
    ];
    let mut group = c.benchmark_group("frame_header_decode");
    group.throughput(Throughput::Elements(1));
    for (name, header) in headers {
        let encoded = header.encode();
        let bytes = encoded.as_bytes().to_vec();
        assert_eq!(
            bytes.len(),
            name[..name.find('_').unwrap()].parse::<usize>().unwrap()
        );
        group.bench_function(name, |b| b.iter(|| FrameHeader::decode(black_box(&bytes))));
    }
    group.finish();
}

/// `count` masked client frames, each a whole binary message of `size` bytes.
fn client_stream(count: usize, size: usize) -> Vec<u8> {
    let payload = pattern(size);
    let mut out = Vec::with_capacity(count * (size + 14));
    for i in 0..count {
        let key = [i as u8, 0x5a, 0xa5, (i >> 8) as u8];
        let header = FrameHeader {
            mask: Some(key),
            ..FrameHeader::new(true, Opcode::Data(DataOpcode::Binary), size as u64)
        };
        out.extend_from_slice(header.encode().as_bytes());
        let start = out.len();
        out.extend_from_slice(&payload);
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// Feed a fresh server the stream in 64 KiB reads, taking the events after each read as an
/// event loop does; returns the number of messages.
fn receive_all(stream: &[u8]) -> usize {
    let mut session = Session::new(Role::Server, SessionLimits::default());
    let mut messages = 0;
    for read in stream.chunks(64 << 10) {
        session.receive(read).unwrap();
        while let Some(event) = session.next_event() {
            if let Event::Message(message) = event {
                black_box(&message);
                messages += 1;
            }
        }
    }
    messages
}

fn session_receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_receive");

    let count = 10_000;
    let small = client_stream(count, 64);
    assert_eq!(receive_all(&small), count);
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function("64B_messages", |b| b.iter(|| receive_all(&small)));

    let count = 64;
    let large = client_stream(count, 64 << 10);
    assert_eq!(receive_all(&large), count);
    group.throughput(Throughput::Bytes((count * (64 << 10)) as u64));
    group.bench_function("64KiB_messages", |b| b.iter(|| receive_all(&large)));

    group.finish();
}

/// About 1 MiB of text mixing ASCII with 2-, 3- and 4-byte characters.
fn mixed_text() -> String {
    let sample =
        "The quick brown fox — κόσμε, 日本語のテキスト, emoji 🎉🚀 and plain ASCII words. ";
    let mut text = String::with_capacity((1 << 20) + sample.len());
    while text.len() + sample.len() <= 1 << 20 {
        text.push_str(sample);
    }
    text
}

fn utf8(c: &mut Criterion) {
    let text = mixed_text();
    let bytes = text.as_bytes();
    let mut group = c.benchmark_group("utf8_1MiB_mixed");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("Utf8Validator::feed", |b| {
        b.iter(|| {
            let mut v = Utf8Validator::new();
            v.feed(black_box(bytes)).unwrap();
            v.finish().unwrap();
        })
    });
    group.bench_function("Utf8Validator::feed_4KiB_pieces", |b| {
        b.iter(|| {
            let mut v = Utf8Validator::new();
            for piece in black_box(bytes).chunks(4096) {
                v.feed(piece).unwrap();
            }
            v.finish().unwrap();
        })
    });
    group.bench_function("core::str::from_utf8", |b| {
        b.iter(|| core::str::from_utf8(black_box(bytes)).unwrap().len())
    });
    group.finish();
}

/// What Chrome sends to open a WebSocket (with a typical set of headers).
const CHROME_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: localhost:9001\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:9001\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("chrome_request", |b| {
        b.iter(|| {
            let mut parser = RequestParser::new(Limits::default());
            let (request, used) = parser.push(black_box(CHROME_REQUEST)).unwrap().unwrap();
            debug_assert_eq!(used, CHROME_REQUEST.len());
            let accepted = accept(&request).unwrap();
            accepted.response(None)
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = masking, header_decode, session_receive, utf8, handshake
}
criterion_main!(benches);
