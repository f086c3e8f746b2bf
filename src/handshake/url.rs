//! `ws://` URLs (RFC 6455 §3): what a client needs from one to open a connection.
//!
//! Owns: splitting `ws://host[:port][/path][?query]` into host, port and request target, and
//! the `Host` header value. Must not: resolve names or connect (the client does), or accept
//! `wss://` (TLS is not part of this crate).

use alloc::string::String;

use super::client_error::ClientHandshakeError;

/// A `ws://` URL, split into what the handshake needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port, 80 when absent.
    pub port: u16,
    /// The path and query, `/` when absent.
    pub path: String,
}

impl Url {
    /// Parse `ws://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Url, ClientHandshakeError> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("wss") => {
                return Err(ClientHandshakeError::InvalidUrl("wss:// needs TLS"))
            }
            _ => return Err(ClientHandshakeError::InvalidUrl("scheme must be ws://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => {
                (&rest[..i], alloc::format!("/{}", &rest[i..]))
            }
            Some(i) => (&rest[..i], String::from(&rest[i..])),
            None => (rest, String::from("/")),
        };
        // Fragments are never sent (§3: "Fragment identifiers ... MUST NOT be used").
        if path.contains('#') {
            return Err(ClientHandshakeError::InvalidUrl("fragment in URL"));
        }
        if authority.contains('@') {
            return Err(ClientHandshakeError::InvalidUrl(
                "userinfo is not supported",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or(ClientHandshakeError::InvalidUrl("unclosed IPv6 bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(ClientHandshakeError::InvalidUrl("junk after IPv6 host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(ClientHandshakeError::InvalidUrl("empty host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .map_err(|_| ClientHandshakeError::InvalidUrl("invalid port"))?,
        };
        Ok(Url {
            host: String::from(host),
            port,
            path,
        })
    }

    /// The `Host` header value: the host, with the port unless it is the default 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            alloc::format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            alloc::format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let url = Url::parse("ws://127.0.0.1:8080/ws/alice?x=1").unwrap();
        assert_eq!(
            url,
            Url {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/ws/alice?x=1".into()
            }
        );
        assert_eq!(url.host_header(), "127.0.0.1:8080");
        let url = Url::parse("ws://example.com").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert_eq!(url.host_header(), "example.com");
        let url = Url::parse("ws://[::1]:9001?case=3").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(url.path, "/?case=3");
        assert_eq!(url.host_header(), "[::1]:9001");
        assert!(Url::parse("wss://example.com/").is_err());
        assert!(Url::parse("http://example.com/").is_err());
        assert!(Url::parse("ws://:80/").is_err());
        assert!(Url::parse("ws://host:99999/").is_err());
        assert!(Url::parse("ws://host/a#frag").is_err());
    }
}
