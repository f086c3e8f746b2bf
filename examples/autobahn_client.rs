//! The Autobahn TestSuite's client driver: runs every case of a fuzzing server against our
//! blocking client, echoing every message.
//!
//!     kosoku -m fuzzingserver -o target/autobahn/client 127.0.0.1:9002 &
//!     cargo run --release --example autobahn_client -- ws://127.0.0.1:9002
//!
//! With `--deflate` (needs `--features deflate`) each case's connection offers
//! permessage-deflate (RFC 7692), so sections 12 and 13 run; accepted, every echo is
//! compressed (threshold 0).

use std::time::Duration;

use wsloop::client::{Client, ClientBuilder, ClientError};
use wsloop::{CloseCode, Message};

const AGENT: &str = "wsloop";

/// The command line: `[URL] [--deflate]`, in any order.
struct Args {
    base: String,
    deflate: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        base: "ws://127.0.0.1:9002".into(),
        deflate: false,
    };
    for word in std::env::args().skip(1) {
        match word.as_str() {
            "--deflate" => args.deflate = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            url => args.base = url.into(),
        }
    }
    Ok(args)
}

/// `--deflate`: offer permessage-deflate on every case.
///
/// The offer carries `client_no_context_takeover` (the defaults otherwise). RFC 7692
/// §7.1.1.2 lets a server ask for it whatever the offer says, but the fuzzing server follows
/// the draft the suite was written against: it asks (cases 13.2, 13.5, 13.6) only when the
/// offer announced it, and counts the case as UNIMPLEMENTED otherwise. Announcing it means
/// our client resets its compressor after every message in every case; context takeover on
/// the client side is covered by `tests/deflate.rs` instead.
#[cfg(feature = "deflate")]
fn with_deflate(builder: ClientBuilder) -> Result<ClientBuilder, String> {
    Ok(builder.deflate(wsloop::deflate::DeflateConfig {
        client_no_context_takeover: true,
        ..wsloop::deflate::DeflateConfig::default()
    }))
}

#[cfg(not(feature = "deflate"))]
fn with_deflate(_builder: ClientBuilder) -> Result<ClientBuilder, String> {
    Err("--deflate needs permessage-deflate: build with `--features deflate`".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = parse_args()?;
    let base = args.base.trim_end_matches('/');
    let mut builder = Client::builder()
        // Some cases send 16 MiB; none takes a minute.
        .read_timeout(Some(Duration::from_secs(60)))
        // The limits this client has always had (the library's default is now 1 MiB).
        .session_config(wsloop::session::SessionLimits {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
        });
    if args.deflate {
        builder = with_deflate(builder)?;
    }

    let count: u32 = {
        let mut client = Client::connect(&format!("{base}/getCaseCount"))?;
        let count = match client.recv()? {
            Message::Text(text) => text.trim().parse()?,
            Message::Binary(_) => return Err("getCaseCount answered in binary".into()),
        };
        // The runner closes after sending the count; answer it.
        let _ = client.recv();
        count
    };
    println!("running {count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = run_case(&builder, &url) {
            log::info!("case {case}: {e}");
        }
    }

    let mut client = Client::connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    // The runner writes its reports and drops the connection; that ends the run.
    let _ = client.close(CloseCode::NormalClosure, "");
    println!("reports updated");
    Ok(())
}

/// Echo every message until the case ends the connection.
fn run_case(builder: &ClientBuilder, url: &str) -> Result<(), ClientError> {
    let mut client = builder.connect(url)?;
    loop {
        match client.recv() {
            Ok(message) => client.send(message)?,
            Err(ClientError::Closed(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
