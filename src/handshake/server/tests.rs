use alloc::string::String;
use alloc::vec::Vec;

use super::*;

const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn parse(bytes: &[u8]) -> Result<Request, HandshakeError> {
    let mut parser = RequestParser::new(Limits::default());
    parser.push(bytes).map(|r| r.expect("complete").0)
}

fn with_header(replace: &str, by: &str) -> Vec<u8> {
    let text = core::str::from_utf8(RFC_REQUEST).unwrap();
    assert!(text.contains(replace), "{replace}");
    text.replacen(replace, by, 1).into_bytes()
}

#[test]
fn parses_the_rfc_request_and_answers_101() {
    let request = parse(RFC_REQUEST).unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.header_str("origin"), Some("http://example.com"));
    assert_eq!(
        request.subprotocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    let accepted = accept(&request).unwrap();
    assert_eq!(
        accepted.select_protocol(&["superchat", "chat"]),
        Some("chat")
    );
    let response = String::from_utf8(accepted.response(Some("chat"))).unwrap();
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(response.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
    assert!(response.ends_with("\r\n\r\n"));
}

#[test]
fn never_selects_a_protocol_the_client_did_not_offer() {
    let accepted = accept(&parse(RFC_REQUEST).unwrap()).unwrap();
    let response = String::from_utf8(accepted.response(Some("mqtt"))).unwrap();
    assert!(!response.contains("Sec-WebSocket-Protocol"));
    assert_eq!(accepted.select_protocol(&["mqtt"]), None);
}

#[test]
fn needs_more_until_the_empty_line_and_returns_what_follows() {
    let mut bytes = RFC_REQUEST.to_vec();
    bytes.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
    let mut parser = RequestParser::new(Limits::default());
    for (i, byte) in bytes.iter().enumerate() {
        match parser.push(core::slice::from_ref(byte)).unwrap() {
            None => assert!(i + 1 < RFC_REQUEST.len(), "byte {i}"),
            Some((request, used)) => {
                assert_eq!(i + 1, RFC_REQUEST.len());
                assert_eq!(used, 1);
                assert_eq!(request.path(), "/chat");
                return;
            }
        }
    }
    panic!("never completed");
}

#[test]
fn leftover_bytes_in_the_same_push_are_untouched() {
    let mut bytes = RFC_REQUEST.to_vec();
    bytes.extend_from_slice(b"\x81\x85frame");
    let mut parser = RequestParser::new(Limits::default());
    parser.push(&bytes[..10]).unwrap();
    let (_, used) = parser.push(&bytes[10..]).unwrap().unwrap();
    assert_eq!(&bytes[10 + used..], b"\x81\x85frame");
}

#[test]
fn connection_and_upgrade_are_token_lists_case_insensitive() {
    let bytes = with_header("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
    let bytes = String::from_utf8(bytes)
        .unwrap()
        .replace("Upgrade: websocket", "upgrade: WebSocket");
    assert!(accept(&parse(bytes.as_bytes()).unwrap()).is_ok());
}

#[test]
fn each_violation_has_its_status() {
    let cases: [(Vec<u8>, HandshakeError, u16); 10] = [
        (
            with_header("GET /chat", "POST /chat"),
            HandshakeError::MethodNotAllowed,
            405,
        ),
        (
            with_header("HTTP/1.1", "HTTP/1.0"),
            HandshakeError::UnsupportedHttpVersion,
            400,
        ),
        (
            with_header("Host: server.example.com\r\n", ""),
            HandshakeError::MissingHost,
            400,
        ),
        (
            with_header("Upgrade: websocket", "Upgrade: h2c"),
            HandshakeError::NotWebSocketUpgrade,
            400,
        ),
        (
            with_header("Connection: Upgrade", "Connection: keep-alive"),
            HandshakeError::MissingConnectionUpgrade,
            400,
        ),
        (
            with_header("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            HandshakeError::MissingKey,
            400,
        ),
        (
            with_header("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            with_header("dGhlIHNhbXBsZSBub25jZQ==", "not base64!!!!!!!!!!!!=="),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            with_header("Sec-WebSocket-Version: 13\r\n", ""),
            HandshakeError::MissingVersion,
            400,
        ),
        (
            with_header("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
    ];
    for (bytes, error, status) in cases {
        let result = parse(&bytes).and_then(|r| accept(&r));
        assert_eq!(result, Err(error));
        assert_eq!(error.status(), status);
    }
}

#[test]
fn error_responses_carry_the_required_headers() {
    let r = String::from_utf8(HandshakeError::MethodNotAllowed.response()).unwrap();
    assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert!(r.contains("\r\nAllow: GET\r\n"));
    let r = String::from_utf8(HandshakeError::UnsupportedVersion.response()).unwrap();
    assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    let r = String::from_utf8(HandshakeError::MissingVersion.response()).unwrap();
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    let r = String::from_utf8(HandshakeError::HeadersTooLarge.response()).unwrap();
    assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert!(r.contains("Connection: close\r\n"));
}

#[test]
fn a_head_over_the_byte_limit_is_431() {
    let limits = Limits {
        max_head_bytes: 256,
        max_headers: 64,
    };
    let mut parser = RequestParser::new(limits);
    let mut bytes = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    bytes.resize(255, b'a');
    assert!(parser.push(&bytes).unwrap().is_none());
    assert_eq!(
        parser.push(b"aaaa").unwrap_err(),
        HandshakeError::HeadersTooLarge
    );
    // A head that fits exactly is fine.
    let mut exact = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    exact.resize(252, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exact.len(), 256);
    let mut parser = RequestParser::new(limits);
    assert!(parser.push(&exact).unwrap().is_some());
}

#[test]
fn too_many_headers_is_431() {
    let limits = Limits {
        max_head_bytes: 8192,
        max_headers: 4,
    };
    let mut parser = RequestParser::new(limits);
    let err = parser.push(RFC_REQUEST).unwrap_err();
    assert_eq!(err, HandshakeError::TooManyHeaders);
    assert_eq!(err.status(), 431);
}

#[test]
fn garbage_is_400() {
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(
        parser.push(b"\x16\x03\x01 hello\r\n\r\n").unwrap_err(),
        HandshakeError::Malformed
    );
}

#[test]
fn accept_keeps_every_extension_header_in_order() {
    let request = parse(RFC_REQUEST).unwrap();
    assert!(accept(&request).unwrap().offered_extensions().is_empty());
    let bytes = with_header(
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Sec-WebSocket-Version: 13\r\nsec-websocket-extensions: x-foo, x-bar\r\n",
    );
    let accepted = accept(&parse(&bytes).unwrap()).unwrap();
    assert_eq!(
        accepted.offered_extensions(),
        ["permessage-deflate; client_max_window_bits", "x-foo, x-bar"]
    );
}

#[test]
fn response_with_carries_the_extension_header() {
    let accepted = accept(&parse(RFC_REQUEST).unwrap()).unwrap();
    let plain = String::from_utf8(accepted.response(Some("chat"))).unwrap();
    assert!(!plain.contains("Sec-WebSocket-Extensions"));
    assert_eq!(accepted.response_with(Some("chat"), None), plain.as_bytes());
    assert_eq!(
        accepted.response_with(Some("chat"), Some("")),
        plain.as_bytes()
    );
    let with = accepted.response_with(
        Some("chat"),
        Some("permessage-deflate; server_no_context_takeover"),
    );
    let with = String::from_utf8(with).unwrap();
    assert!(with.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(with.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
    assert!(with.contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
    ));
    assert!(with.ends_with("\r\n\r\n") && !with.ends_with("\r\n\r\n\r\n"));
}

#[test]
fn content_length_is_none_when_absent_or_invalid() {
    let post = |headers: &str| {
        let text = alloc::format!("POST /orders HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        parse(text.as_bytes()).unwrap()
    };
    assert_eq!(post("").content_length(), None);
    assert_eq!(post("Content-Length: 12\r\n").content_length(), Some(12));
    assert_eq!(
        post("Content-Length: 12\r\nContent-Length: 12\r\n").content_length(),
        Some(12)
    );
    // RFC 9112 §6.3 item 5: invalid, so None, though the header is there (the server
    // answers 400).
    for bad in ["+12", "012", "12, 13", "1 2", "-1"] {
        let request = post(&alloc::format!("Content-Length: {bad}\r\n"));
        assert!(request.header("content-length").is_some());
        assert_eq!(request.content_length(), None, "{bad:?}");
    }
    let differing = post("Content-Length: 12\r\nContent-Length: 13\r\n");
    assert_eq!(differing.content_length(), None);
}
