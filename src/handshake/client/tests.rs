use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::handshake::http::Limits;
use crate::handshake::server::{accept, Request, RequestParser};
use crate::handshake::HandshakeError;

fn parse(bytes: &[u8]) -> Result<Request, HandshakeError> {
    let mut parser = RequestParser::new(Limits::default());
    parser.push(bytes).map(|r| r.expect("complete").0)
}

fn server_answer(request: &[u8]) -> Vec<u8> {
    let req = parse(request).unwrap();
    let accepted = accept(&req).unwrap();
    let proto = accepted.select_protocol(&["chat"]).map(String::from);
    accepted.response(proto.as_deref())
}

#[test]
fn client_request_is_accepted_by_the_server_side_and_validates_the_answer() {
    let url = Url::parse("ws://localhost:9001/ws/bob").unwrap();
    let (mut client, request) = ClientHandshake::new(&url, [7; 16], &["chat"]);
    let text = core::str::from_utf8(&request).unwrap();
    assert!(text.starts_with("GET /ws/bob HTTP/1.1\r\nHost: localhost:9001\r\n"));
    let mut answer = server_answer(&request);
    answer.extend_from_slice(b"\x81\x00");
    let (response, used) = client.push(&answer).unwrap().unwrap();
    assert_eq!(response.protocol(), Some("chat"));
    assert_eq!(&answer[used..], b"\x81\x00");
}

#[test]
fn client_rejects_bad_answers() {
    let url = Url::parse("ws://localhost/").unwrap();
    let (client, request) = ClientHandshake::new(&url, [9; 16], &[]);
    let good = String::from_utf8(server_answer(&request)).unwrap();
    let check = |answer: &str| client.clone().push(answer.as_bytes()).map(|r| r.is_some());
    assert_eq!(check(&good), Ok(true));
    assert_eq!(
        check("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        Err(ClientHandshakeError::UnexpectedStatus(404))
    );
    assert_eq!(
        check(&good.replace("Upgrade: websocket", "Upgrade: h2c")),
        Err(ClientHandshakeError::MissingUpgrade)
    );
    assert_eq!(
        check(&good.replace("Connection: Upgrade", "Connection: close")),
        Err(ClientHandshakeError::MissingConnectionUpgrade)
    );
    let accept_at = good.find("Accept: ").unwrap() + 8;
    let mut wrong = good.clone();
    wrong.replace_range(accept_at..accept_at + 1, "A");
    if wrong == good {
        wrong.replace_range(accept_at..accept_at + 1, "B");
    }
    assert_eq!(check(&wrong), Err(ClientHandshakeError::InvalidAccept));
    let with = |h: &str| good.replacen("\r\n\r\n", &alloc::format!("\r\n{h}\r\n\r\n"), 1);
    assert_eq!(
        check(&with("Sec-WebSocket-Protocol: chat")),
        Err(ClientHandshakeError::UnrequestedProtocol)
    );
    assert_eq!(
        check(&with("Sec-WebSocket-Extensions: permessage-deflate")),
        Err(ClientHandshakeError::UnrequestedExtension)
    );
    // An empty header selects nothing.
    assert_eq!(check(&with("Sec-WebSocket-Extensions: ")), Ok(true));
}
