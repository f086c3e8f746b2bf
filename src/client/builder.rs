//! Building a client's configuration step by step, then connecting with it.
//!
//! Owns: [`ClientBuilder`] and [`Client::builder`]. Must not: connect by itself (it hands
//! the configuration to [`Client::connect_with`]).

use std::time::Duration;

use super::config::ClientConfig;
use super::connection::Client;
use super::error::ClientError;
use crate::session::SessionLimits;

impl Client {
    /// A builder for a client with other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }
}

/// Builds a [`ClientConfig`] and connects with it; from [`Client::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// let client = wsloop::client::Client::builder()
///     .protocol("chat")
///     .read_timeout(Some(Duration::from_secs(30)))
///     .connect("ws://127.0.0.1:8080/ws/alice")?;
/// # Ok::<(), wsloop::client::ClientError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    config: ClientConfig,
}

impl ClientBuilder {
    /// A builder with the default configuration.
    pub fn new() -> Self {
        ClientBuilder::default()
    }

    /// Offer one more subprotocol, after those already added.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.config.protocols.push(String::from(protocol));
        self
    }

    /// The limits on what the server may send.
    pub fn session_config(mut self, config: SessionLimits) -> Self {
        self.config.session = config;
        self
    }

    /// See [`ClientConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// See [`ClientConfig::read_timeout`].
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// See [`ClientConfig::write_timeout`].
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// See [`ClientConfig::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Offer permessage-deflate with `config` (feature `deflate`); see
    /// [`ClientConfig::deflate`].
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, config: crate::deflate::DeflateConfig) -> Self {
        self.config.deflate = Some(config);
        self
    }

    /// Verify `wss://` servers against these roots (feature `tls`); see
    /// [`ClientConfig::tls`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::tls::ClientTls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connect to a `ws://` (or `wss://`, feature `tls`) URL with this configuration.
    pub fn connect(&self, url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, &self.config)
    }
}

impl From<ClientConfig> for ClientBuilder {
    fn from(config: ClientConfig) -> Self {
        ClientBuilder { config }
    }
}
