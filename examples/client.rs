//! Line client: sends each line typed on stdin as a text message and prints each message
//! that arrives.
//!
//!     cargo run --example client -- ws://127.0.0.1:8080/ws/alice
//!     cargo run --example client -- --help
//!
//! The `Client` is blocking and is not split into a reading and a writing half, so one thread
//! owns it. A second thread reads stdin and hands each line over a channel. The client reads
//! with a 100 ms timeout; when a read times out (or a message has been printed) the main
//! thread sends the lines that have arrived, so a typed line goes out within about 100 ms.
//! A read timeout does not lose anything: a message cut by it is continued by the next read.
//!
//! End of input (Ctrl-D) does the closing handshake with 1000. Set `RUST_LOG=debug` to see
//! the connection's log.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

use wsloop::client::{Client, ClientError};
use wsloop::{CloseCode, Message};

const USAGE: &str = "usage: client [URL]

Sends each line typed on stdin as a text message and prints each message that arrives.
URL defaults to ws://127.0.0.1:8080/ws/alice. End of input (Ctrl-D) closes with 1000.
Set RUST_LOG=debug to see the connection's log.";

fn main() -> ExitCode {
    env_logger::init();
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let url = arg.unwrap_or_else(|| "ws://127.0.0.1:8080/ws/alice".into());
    match run(&url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{url}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(url: &str) -> Result<(), ClientError> {
    let mut client = Client::builder()
        .read_timeout(Some(Duration::from_millis(100)))
        .connect(url)?;
    eprintln!("connected to {url}; type lines to send them, Ctrl-D to close");

    let (line_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
        // Dropping the sender tells the main thread that input has ended.
    });

    loop {
        // Send what was typed since the last read.
        loop {
            match lines.try_recv() {
                Ok(line) => client.send_text(&line)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    client.close(CloseCode::NormalClosure, "bye")?;
                    eprintln!("closed");
                    return Ok(());
                }
            }
        }
        match client.recv() {
            Ok(Message::Text(text)) => println!("{text}"),
            Ok(Message::Binary(data)) => println!("<{} bytes of binary>", data.len()),
            Err(error) if error.is_timeout() => {}
            Err(ClientError::Closed(frame)) => {
                eprintln!(
                    "the server closed the connection: {} {}",
                    frame.code, frame.reason
                );
                return Ok(());
            }
            Err(error) => return Err(error),
        }
    }
}
