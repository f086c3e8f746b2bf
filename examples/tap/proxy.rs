//! The proxy of the `tap` example: forwards each accepted TCP connection to an upstream server,
//! one thread per direction, and writes every byte that passes, annotated by the `explain`
//! annotator (`crate::annotate`), to a shared sink.
//!
//! Std only. Bytes are annotated before they are forwarded, so the client's request (and its
//! `Sec-WebSocket-Key`) is always annotated before the server can answer it, and the answer's
//! `Sec-WebSocket-Accept` is checked against that key.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::annotate::{Annotator, Sender};

/// Where the annotations go: stdout in the example, a buffer in the tests. Each block of
/// lines is written under the lock, so the two directions never interleave within a block.
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// The client's `Sec-WebSocket-Key` and offered subprotocols, handed from the upstream
/// direction's annotator to the downstream one's.
type SharedKey = Mutex<Option<(String, Vec<String>)>>;

/// How the tap runs.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The server to forward to.
    pub upstream: SocketAddr,
    /// The longest wait for the upstream connection.
    pub connect_timeout: Duration,
    /// Close both sides after this long without a byte in one direction (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Stop accepting after this many connections (`None`: serve forever).
    pub max_connections: Option<usize>,
}

impl TapConfig {
    /// Forward to `upstream`, with a 5 s connect timeout and no idle timeout, forever.
    pub fn new(upstream: SocketAddr) -> TapConfig {
        TapConfig {
            upstream,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: None,
            max_connections: None,
        }
    }
}

/// Write `text` to the sink, each line prefixed with the connection's number.
pub fn say(sink: &Sink, id: usize, text: &str) {
    if text.is_empty() {
        return;
    }
    let mut block = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
            block.push_str(&format!("#{id}\n"));
        } else {
            block.push_str(&format!("#{id} {line}\n"));
        }
    }
    let mut out = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = out.write_all(block.as_bytes());
    let _ = out.flush();
}

/// Accept connections on `listener` and relay each on its own threads. Returns after
/// `max_connections` connections have been accepted and relayed to the end.
pub fn serve(listener: TcpListener, config: TapConfig, sink: Sink) -> io::Result<()> {
    let mut relays = Vec::new();
    let mut accepted = 0;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                say(&sink, 0, &format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        accepted += 1;
        let (id, relay_config, relay_sink) = (accepted, config.clone(), sink.clone());
        relays.push(thread::spawn(move || {
            if let Err(e) = relay(id, stream, &relay_config, &relay_sink) {
                say(&relay_sink, id, &format!("relay ended with an error: {e}"));
            }
        }));
        relays.retain(|r| !r.is_finished());
        if config.max_connections.is_some_and(|max| accepted >= max) {
            break;
        }
    }
    for r in relays {
        let _ = r.join();
    }
    Ok(())
}

/// Relay one client connection to the upstream server until both directions have ended.
pub fn relay(id: usize, client: TcpStream, config: &TapConfig, sink: &Sink) -> io::Result<()> {
    let peer = client.peer_addr()?;
    let server = match TcpStream::connect_timeout(&config.upstream, config.connect_timeout) {
        Ok(server) => server,
        Err(e) => {
            say(
                sink,
                id,
                &format!("{peer} connected, but {} refused: {e}", config.upstream),
            );
            return Ok(());
        }
    };
    say(
        sink,
        id,
        &format!("{peer} connected; forwarding to {}\n", config.upstream),
    );
    for stream in [&client, &server] {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(config.idle_timeout)?;
    }
    let key: Arc<SharedKey> = Arc::default();
    let up = {
        let (from, to) = (client.try_clone()?, server.try_clone()?);
        let (sink, key) = (sink.clone(), key.clone());
        thread::spawn(move || pump(id, Sender::Client, from, to, &sink, &key))
    };
    let down = pump(id, Sender::Server, server, client, sink, &key);
    let up = up
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    say(sink, id, "connection closed\n");
    down.and(up)
}

/// Copy `from` to `to`, annotating as `sender`, until `from` ends; then pass the end on.
fn pump(
    id: usize,
    sender: Sender,
    mut from: TcpStream,
    mut to: TcpStream,
    sink: &Sink,
    key: &SharedKey,
) -> io::Result<()> {
    let mut annotator = Annotator::new(Some(sender));
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    let result = loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        total += n as u64;
        if sender == Sender::Server && annotator.client_key().is_none() {
            if let Some((k, offered)) = key.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                annotator.expect_key(k, offered);
            }
        }
        let text = annotator.push(&buf[..n]);
        if sender == Sender::Client {
            if let Some((k, offered)) = annotator.client_key() {
                let mut shared = key.lock().unwrap_or_else(|p| p.into_inner());
                if shared.is_none() {
                    *shared = Some((k.to_string(), offered.to_vec()));
                }
            }
        }
        say(sink, id, &text);
        if let Err(e) = to.write_all(&buf[..n]) {
            break Err(e);
        }
    };
    say(sink, id, &annotator.finish());
    match &result {
        Ok(()) => {
            say(
                sink,
                id,
                &format!("{}: end of stream after {total} bytes\n", sender.arrow()),
            );
            // Pass the half-close on: the other side reads its end of stream.
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(e) => {
            say(
                sink,
                id,
                &format!(
                    "{}: {e} after {total} bytes; closing both sides\n",
                    sender.arrow()
                ),
            );
            // Unblock the other direction too.
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    }
    result
}
