//! `--tls-cert FILE --tls-key FILE`, shared by the examples that run a server (`echo`,
//! `dashboard`), which include it with `#[path = "common/tls.rs"] mod tls;`.
//!
//! Owns: turning the two flags into [`ServerBuilder::tls`] (feature `tls`): the port then
//! serves https and wss only. Without the feature the flags are a clear error, not ignored.
//! Must not: touch the server otherwise.

use wsloop::server::ServerBuilder;

/// The two flags, as given.
#[derive(Default)]
pub struct TlsFlags {
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl TlsFlags {
    /// Take `--tls-cert` or `--tls-key` and its value; false for any other word.
    pub fn parse(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        let slot = match flag {
            "--tls-cert" => &mut self.cert,
            "--tls-key" => &mut self.key,
            _ => return Ok(false),
        };
        *slot = Some(value().ok_or(format!("{flag} needs a PEM file"))?);
        Ok(true)
    }

    /// Whether the server is to speak TLS.
    pub fn on(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }

    /// The builder, with TLS when both flags were given.
    pub fn apply(&self, builder: ServerBuilder) -> Result<ServerBuilder, String> {
        match (&self.cert, &self.key) {
            (None, None) => Ok(builder),
            (Some(cert), Some(key)) => with_tls(builder, cert, key),
            _ => Err("--tls-cert and --tls-key go together".into()),
        }
    }
}

#[cfg(feature = "tls")]
fn with_tls(builder: ServerBuilder, cert: &str, key: &str) -> Result<ServerBuilder, String> {
    let tls = wsloop::server::TlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
    Ok(builder.tls(tls))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_builder: ServerBuilder, _cert: &str, _key: &str) -> Result<ServerBuilder, String> {
    Err("--tls-cert/--tls-key need TLS: build with `--features tls`".into())
}
