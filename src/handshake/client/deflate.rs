//! permessage-deflate in the client's handshake (RFC 7692 §5; feature `deflate`): offering it
//! and reading the server's answer.
//!
//! Owns: [`ClientHandshake::with_deflate`] and [`Response::deflate`]. Must not: decide what
//! the offer says or whether an answer fits it: that is `deflate::negotiate`'s
//! ([`negotiate::offer`], [`negotiate::check_answer`]).

use alloc::vec::Vec;

use super::{ClientHandshake, ExtensionOffer, Response};
use crate::deflate::{negotiate, DeflateConfig, Negotiated};
use crate::handshake::client_error::ClientHandshakeError;
use crate::handshake::url::Url;

impl ClientHandshake {
    /// Like [`ClientHandshake::new`], and also offer permessage-deflate with `config`
    /// (RFC 7692 §5; feature `deflate`). The response may accept the offer, checked by
    /// `deflate::negotiate::check_response` (see [`Response::deflate`]), or decline it.
    pub fn with_deflate(
        url: &Url,
        nonce: [u8; 16],
        protocols: &[&str],
        config: &DeflateConfig,
    ) -> (ClientHandshake, Vec<u8>) {
        let offer = ExtensionOffer {
            header: negotiate::offer(config),
            check,
        };
        Self::build(url, nonce, protocols, Some(offer))
    }
}

impl Response {
    /// The permessage-deflate parameters the server accepted (feature `deflate`): `None` when
    /// we offered none or the server declined the offer (no `Sec-WebSocket-Extensions`);
    /// the connection is then not compressed.
    pub fn deflate(&self) -> Option<Negotiated> {
        let offer = self.offer.as_ref()?;
        // The handshake passed `check`, so the answer is one the offer allows.
        negotiate::check_answer(&offer.header, &self.extensions()?).ok()
    }
}

/// RFC 7692 §7.1: the server's answer to our offer must be one we can accept, or the
/// connection fails.
fn check(offer: &str, answer: &str) -> Result<(), ClientHandshakeError> {
    negotiate::check_answer(offer, answer)
        .map(drop)
        .map_err(ClientHandshakeError::Deflate)
}

#[cfg(test)]
mod tests {
    use alloc::string::{String, ToString};

    use super::*;
    use crate::deflate::negotiate::NegotiationError;
    use crate::handshake::http::Limits;
    use crate::handshake::server::{accept, Request, RequestParser};

    fn parse(bytes: &[u8]) -> Request {
        let mut parser = RequestParser::new(Limits::default());
        parser.push(bytes).unwrap().expect("complete").0
    }

    fn client(config: &DeflateConfig) -> (ClientHandshake, String) {
        let url = Url::parse("ws://localhost/").unwrap();
        let (client, request) = ClientHandshake::with_deflate(&url, [5; 16], &[], config);
        (client, String::from_utf8(request).unwrap())
    }

    /// The server's 101 for `request`, answering its offer with `server` when given.
    fn answer(request: &str, server: Option<&DeflateConfig>) -> String {
        let accepted = accept(&parse(request.as_bytes())).unwrap();
        let header = server.and_then(|config| {
            let offers = accepted.offered_extensions().iter().map(String::as_str);
            negotiate::answer(offers, config).map(|(_, header)| header)
        });
        String::from_utf8(accepted.response_with(None, header.as_deref())).unwrap()
    }

    #[test]
    fn offer_accepted_by_our_server() {
        let (client, request) = client(&DeflateConfig::default());
        assert!(request.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ));
        let server = DeflateConfig {
            server_max_window_bits: 9,
            client_max_window_bits: 9,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let answer = answer(&request, Some(&server));
        let (response, _) = client.clone().push(answer.as_bytes()).unwrap().unwrap();
        assert_eq!(
            response.deflate(),
            Some(Negotiated {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 9,
                client_max_window_bits: 9,
            })
        );
    }

    #[test]
    fn offer_declined_means_no_compression() {
        let (client, request) = client(&DeflateConfig::default());
        let answer = answer(&request, None);
        let (response, _) = client.clone().push(answer.as_bytes()).unwrap().unwrap();
        assert_eq!(response.deflate(), None);
    }

    #[test]
    fn without_an_offer_there_is_no_deflate() {
        let url = Url::parse("ws://localhost/").unwrap();
        let (client, request) = ClientHandshake::new(&url, [5; 16], &[]);
        let request = String::from_utf8(request).unwrap();
        assert!(!request.contains("Sec-WebSocket-Extensions"));
        let (response, _) = client
            .clone()
            .push(answer(&request, None).as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(response.deflate(), None);
    }

    #[test]
    fn bad_answers_fail_the_handshake() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let (client, request) = client(&config);
        let good = answer(&request, Some(&DeflateConfig::default()));
        assert!(good.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        ));
        let check = |answer: &str| {
            client
                .clone()
                .push(answer.as_bytes())
                .map(|r| r.unwrap().0.deflate())
        };
        assert!(matches!(check(&good), Ok(Some(n)) if n.server_no_context_takeover));
        let replace = |by: &str| good.replace("permessage-deflate; server_no_context_takeover", by);
        assert_eq!(
            check(&replace("permessage-deflate")),
            Err(ClientHandshakeError::Deflate(
                NegotiationError::MissingServerNoContextTakeover
            ))
        );
        assert_eq!(
            check(&replace("x-webkit-deflate-frame")),
            Err(ClientHandshakeError::Deflate(
                NegotiationError::UnrequestedExtension("x-webkit-deflate-frame".into())
            ))
        );
        assert!(matches!(
            check(&replace(
                "permessage-deflate; server_no_context_takeover; bogus"
            )),
            Err(ClientHandshakeError::Deflate(
                NegotiationError::UnknownParameter(_)
            ))
        ));
        // Two headers are one list: two extensions where we offered one.
        assert_eq!(
            check(&replace(
                "permessage-deflate; server_no_context_takeover\r\nSec-WebSocket-Extensions: permessage-deflate"
            )),
            Err(ClientHandshakeError::Deflate(
                NegotiationError::ExpectedOneExtension(2)
            ))
        );
        let error = check(&replace("permessage-deflate")).unwrap_err();
        assert!(error.to_string().contains("permessage-deflate"), "{error}");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn an_answer_split_over_two_headers_is_one_list() {
        let (client, request) = client(&DeflateConfig::default());
        let good = answer(&request, None);
        let split = good.replacen(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate;\r\n\
             Sec-WebSocket-Extensions: \r\n\r\n",
            1,
        );
        // "permessage-deflate;" alone is malformed; an empty second header does not fix it.
        assert!(matches!(
            client.clone().push(split.as_bytes()),
            Err(ClientHandshakeError::Deflate(NegotiationError::Malformed(
                _
            )))
        ));
    }
}
