//! The client's side of the opening handshake (RFC 6455 §4.1): the request to send, and the
//! checks on the server's response.
//!
//! Owns: [`ClientHandshake`] (building the request for a [`Url`] with a nonce, the
//! subprotocols and an extension offer, then reading the response head with
//! [`http`](super::http)) and the accepted [`Response`].
//! Must not: do I/O or choose the nonce (the caller does, fresh and random), or decide what an
//! extension's answer means: an offer carries its own check (permessage-deflate's is in
//! `deflate::negotiate`, feature `deflate`).

use alloc::string::String;
use alloc::vec::Vec;

use super::client_error::ClientHandshakeError;
use super::fields::trim_ascii;
use super::http::{Head, HeadError, HeadReader, Limits, StatusLine};
use super::key::accept_key;
use super::url::Url;

#[cfg(feature = "deflate")]
mod deflate;

/// An extension offered in `Sec-WebSocket-Extensions` (§4.1, §9.1), and the check that the
/// server's answer to it must pass.
#[derive(Debug, Clone)]
struct ExtensionOffer {
    /// The header value sent.
    header: String,
    /// §4.1 item 5: checks the server's answer (every value of its header, joined with `,`)
    /// against `header`; an error fails the handshake.
    check: fn(&str, &str) -> Result<(), ClientHandshakeError>,
}

/// The server's accepted response to our handshake.
#[derive(Debug, Clone)]
pub struct Response {
    head: Head,
    status: u16,
    /// The extension offer this response answers, if we made one.
    offer: Option<ExtensionOffer>,
}

impl Response {
    /// The status code (always 101 once returned by [`ClientHandshake::push`]).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The subprotocol the server selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.head.tokens("sec-websocket-protocol").next()
    }

    /// The extensions the server selected: every `Sec-WebSocket-Extensions` value as one list
    /// (RFC 9110 §5.3), or `None` when it selected none (no header, or only empty ones).
    fn extensions(&self) -> Option<String> {
        self.head.tokens("sec-websocket-extensions").next()?;
        Some(self.head.values_lossy("sec-websocket-extensions").join(","))
    }
}

/// The client's side of the handshake: the request to send, then the response to check.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: String,
    offered: Vec<String>,
    head: HeadReader,
    /// The extension we offered, if any.
    extension: Option<ExtensionOffer>,
}

impl ClientHandshake {
    /// Build the request for `url` with the 16-byte `nonce` (which must be fresh and random,
    /// §4.1) and the subprotocols to offer. Returns the handshake state and the bytes to send.
    /// No extension is offered, so a response that selects one is refused (§4.1).
    pub fn new(url: &Url, nonce: [u8; 16], protocols: &[&str]) -> (ClientHandshake, Vec<u8>) {
        Self::build(url, nonce, protocols, None)
    }

    fn build(
        url: &Url,
        nonce: [u8; 16],
        protocols: &[&str],
        extension: Option<ExtensionOffer>,
    ) -> (ClientHandshake, Vec<u8>) {
        use core::fmt::Write as _;
        let key = super::key::encode_nonce(&nonce);
        let key = core::str::from_utf8(&key).unwrap_or("");
        let mut request = String::with_capacity(256);
        let _ = write!(
            request,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            url.path,
            url.host_header(),
            key
        );
        if !protocols.is_empty() {
            let _ = write!(
                request,
                "Sec-WebSocket-Protocol: {}\r\n",
                protocols.join(", ")
            );
        }
        if let Some(offer) = &extension {
            let _ = write!(request, "Sec-WebSocket-Extensions: {}\r\n", offer.header);
        }
        request.push_str("\r\n");
        (
            ClientHandshake {
                expected_accept: accept_key(key.as_bytes()),
                offered: protocols.iter().map(|p| String::from(*p)).collect(),
                head: HeadReader::new(Limits::default()),
                extension,
            },
            request.into_bytes(),
        )
    }

    /// Feed response bytes. `Ok(Some((response, used)))` once the head is complete and valid;
    /// the bytes of `data` after `used` already belong to the WebSocket stream.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(Response, usize)>, ClientHandshakeError> {
        let parsed = self.head.push::<StatusLine>(data).map_err(|e| match e {
            HeadError::TooLarge => ClientHandshakeError::HeadersTooLarge,
            HeadError::TooManyHeaders | HeadError::Version | HeadError::Malformed => {
                ClientHandshakeError::Malformed
            }
        })?;
        let Some((head, line, used)) = parsed else {
            return Ok(None);
        };
        let response = Response {
            head,
            status: line.code,
            offer: self.extension.clone(),
        };
        self.validate(&response)?;
        Ok(Some((response, used)))
    }

    /// §4.1: the checks a client makes on the server's response.
    fn validate(&self, response: &Response) -> Result<(), ClientHandshakeError> {
        // §4.1 item 1: a status other than 101 is handled per HTTP; the handshake failed.
        if response.status != 101 {
            return Err(ClientHandshakeError::UnexpectedStatus(response.status));
        }
        // §4.1 item 2: |Upgrade| must be "websocket", case-insensitive.
        if !response.head.has_token("upgrade", "websocket") {
            return Err(ClientHandshakeError::MissingUpgrade);
        }
        // §4.1 item 3: |Connection| must be "Upgrade", case-insensitive.
        if !response.head.has_token("connection", "upgrade") {
            return Err(ClientHandshakeError::MissingConnectionUpgrade);
        }
        // §4.1 item 4: |Sec-WebSocket-Accept| must be base64(SHA-1(key + GUID)), exactly.
        match response.header("sec-websocket-accept").map(trim_ascii) {
            Some(value) if value == self.expected_accept.as_bytes() => {}
            _ => return Err(ClientHandshakeError::InvalidAccept),
        }
        // §4.1 item 5: no extension when we asked for none.
        let selected = response.extensions();
        if response.offer.is_none() && selected.is_some() {
            return Err(ClientHandshakeError::UnrequestedExtension);
        }
        // §4.1 item 6: no subprotocol we did not offer.
        if let Some(p) = response.protocol() {
            if !self.offered.iter().any(|o| o == p) {
                return Err(ClientHandshakeError::UnrequestedProtocol);
            }
        }
        // §4.1 item 5 for an offer we made: no header means the server declined it; an answer
        // must be one the offer allows.
        if let (Some(offer), Some(answer)) = (&response.offer, selected) {
            (offer.check)(&offer.header, &answer)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
