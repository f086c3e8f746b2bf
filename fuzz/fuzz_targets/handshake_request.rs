//! The server's side of the opening handshake: arbitrary bytes, in arbitrary pieces, through
//! `RequestParser` and `accept`. Never panics; the outcome does not depend on the pieces;
//! every refusal is a well-formed HTTP response with its status; every acceptance is a 101.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::handshake::{accept, accept_key, HandshakeError, Limits, RequestParser};

/// How feeding a parser ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// No whole head yet.
    Pending,
    /// A head, with the number of input bytes it took.
    Head(Vec<u8>, usize),
    Refused(HandshakeError),
}

fn feed(limits: Limits, pieces: &[&[u8]]) -> (Outcome, Option<wsloop::handshake::Request>) {
    let mut parser = RequestParser::new(limits);
    let mut taken = 0;
    for piece in pieces {
        match parser.push(piece) {
            Ok(None) => taken += piece.len(),
            Ok(Some((request, used))) => {
                assert!(used <= piece.len());
                let raw = request.raw().to_vec();
                return (Outcome::Head(raw, taken + used), Some(request));
            }
            Err(error) => return (Outcome::Refused(error), None),
        }
    }
    (Outcome::Pending, None)
}

/// A refusal is a complete HTTP/1.1 response carrying the error's status.
fn check_refusal(error: HandshakeError) {
    let status = error.status();
    assert!(
        matches!(status, 400 | 405 | 426 | 431),
        "{error:?}: {status}"
    );
    let response = error.response();
    let text = core::str::from_utf8(&response).expect("responses are ASCII");
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text:?}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    assert_eq!(length.parse::<usize>().unwrap(), body.len());
    assert!(head.contains("\r\nConnection: close"));
}

fuzz_target!(|input: &[u8]| {
    let (ctrl, data) = wsloop_fuzz::control::<6>(input);
    let limits = if ctrl[0] < 0x80 {
        Limits::default()
    } else {
        Limits {
            max_head_bytes: 16 + usize::from(ctrl[0] & 0x7f) * 8,
            max_headers: usize::from(ctrl[1] % 80),
        }
    };

    let (outcome, request) = feed(limits, &wsloop_fuzz::pieces(data, &ctrl[2..]));
    // The pieces change nothing: the same bytes at once give the same outcome.
    assert_eq!(feed(limits, &[data]).0, outcome);

    match outcome {
        Outcome::Pending => assert!(data.len() < limits.max_head_bytes),
        Outcome::Refused(error) => check_refusal(error),
        Outcome::Head(raw, taken) => {
            // The head is exactly the first bytes of the input, ending in an empty line.
            assert_eq!(&raw[..], &data[..taken]);
            assert!(raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n"));
            assert!(raw.len() <= limits.max_head_bytes);
            let request = request.unwrap();
            assert!(request.headers().count() <= limits.max_headers);
            let _ = (request.path(), request.content_length());
            let offered: Vec<String> = request.subprotocols().map(String::from).collect();
            match accept(&request) {
                Ok(accepted) => {
                    assert_eq!(request.method(), "GET");
                    assert!(request.version() >= 1);
                    assert!(request.is_websocket_upgrade());
                    let key = request.header("sec-websocket-key").unwrap();
                    assert_eq!(accepted.accept_value(), accept_key(key.trim_ascii()));
                    assert_eq!(accepted.offered_protocols(), &offered[..]);
                    let chosen = offered.first().map(String::as_str);
                    let supported: Vec<&str> = chosen.into_iter().collect();
                    assert_eq!(accepted.select_protocol(&supported), chosen);
                    let response = accepted.response(chosen);
                    let text = core::str::from_utf8(&response).expect("ASCII and the protocol");
                    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
                    assert!(text.ends_with("\r\n\r\n"));
                    let line = format!("\r\nSec-WebSocket-Accept: {}\r\n", accepted.accept_value());
                    assert!(text.contains(&line));
                    if let Some(p) = chosen {
                        assert!(text.contains(&format!("\r\nSec-WebSocket-Protocol: {p}\r\n")));
                    }
                    // A protocol the client did not offer is never selected.
                    let never = accepted.response(Some("\u{1}not-offered"));
                    assert!(!never.windows(11).any(|w| w == b"not-offered"));
                }
                Err(error) => check_refusal(error),
            }
        }
    }
});
