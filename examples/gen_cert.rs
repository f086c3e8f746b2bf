//! Writes a self-signed certificate and its key for trying the servers over TLS, without the
//! `openssl` command (which a fresh machine may not have):
//!
//!     cargo run --example gen_cert                      # cert.pem, key.pem for localhost
//!     cargo run --example gen_cert -- DIR NAME...       # into DIR, for these names/addresses
//!     cargo run --release --features tls --example dashboard -- --tls-cert cert.pem --tls-key key.pem
//!
//! The certificate is valid for `localhost`, `127.0.0.1` and `::1` (or the names given) and
//! is its own CA: a browser warns until told to trust it, a client verifies it with
//! `ClientTls::with_ca_pem(cert.pem)`. For trying things only: a real deployment uses a
//! certificate from a CA its users trust.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    }
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wsloop self-signed");
    let cert = params.self_signed(&key)?;
    std::fs::create_dir_all(&dir)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    println!(
        "wrote {} and {} for {}",
        cert_path.display(),
        key_path.display(),
        names.join(", ")
    );
    Ok(())
}
