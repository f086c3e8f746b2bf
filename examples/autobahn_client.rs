//! The Autobahn TestSuite's client driver: runs every case of a fuzzing server against our
//! blocking client, echoing every message.
//!
//!     kosoku -m fuzzingserver -o target/autobahn/client 127.0.0.1:9002 &
//!     cargo run --release --example autobahn_client -- ws://127.0.0.1:9002

use std::time::Duration;

use wsloop::client::{Client, ClientError};
use wsloop::{CloseCode, Message};

const AGENT: &str = "wsloop";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002".into());
    let base = base.trim_end_matches('/');

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
        if let Err(e) = run_case(&url) {
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
fn run_case(url: &str) -> Result<(), ClientError> {
    let mut client = Client::builder()
        // Some cases send 16 MiB; none takes a minute.
        .read_timeout(Some(Duration::from_secs(60)))
        .connect(url)?;
    loop {
        match client.recv() {
            Ok(message) => client.send(message)?,
            Err(ClientError::Closed(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
