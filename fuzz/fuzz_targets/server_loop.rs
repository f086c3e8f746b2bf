//! The whole server loop, without sockets: a script of connects, byte chunks (raw or valid
//! frames), client reads, FINs, resets, time passing and handle commands (send, broadcast,
//! close, duplicate sids, shutdown) drives `wsloop::server::sim::Sim`, which runs the real
//! loop core over in-memory pipes.
//!
//! Invariants, checked by the simulator after every step: no panic; the sid map and the slab
//! agree; connection counts add up and stay within the maximum; every live connection has a
//! deadline; each connection's write queue stays within the high-water mark plus one
//! message; every `on_open` is followed by exactly one `on_close` (never two, never a
//! message after it), and after shutdown every session has been closed.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsloop::server::sim::Sim;
use wsloop::server::{
    Context, Handler, HttpRequest, HttpResponse, ServerConfig, Upgrade, UpgradeRequest,
};
use wsloop::{CloseCode, Message};

/// Echoes, broadcasts on request, and answers plain HTTP: exercises every Context path.
struct App;

impl Handler for App {
    /// Every session gets data (a message count); the sid "d" is refused with a 401.
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, request: &UpgradeRequest<'_>) -> Upgrade {
        if request.sid() == Some("d") {
            return Upgrade::reject(HttpResponse::text(401, "no\n"));
        }
        Upgrade::accept().with_data(0u64)
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        if let Some(count) = ctx.data::<u64>(sid) {
            *count += 1;
        }
        match message.as_bytes().first() {
            Some(b'!') => {
                ctx.broadcast(message);
            }
            Some(b'#') => {
                let _ = ctx.close(sid, CloseCode::NormalClosure, "asked to");
            }
            Some(b'+') => {
                ctx.subscribe(sid, "t");
            }
            Some(b'-') => {
                ctx.unsubscribe(sid, "t");
            }
            Some(b'*') => {
                ctx.publish("t", message);
            }
            Some(b'&') => {
                ctx.send_many(&[sid, "a", "b", sid], message);
            }
            Some(b'?') => {
                let _ = ctx.ping(sid, &message.as_bytes()[..message.len().min(125)]);
            }
            _ => {
                ctx.send(sid, message);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        let n = ctx.broadcast(request.body().to_vec());
        HttpResponse::text(200, &n.to_string())
    }
}

const SIDS: [&str; 4] = ["a", "b", "c", "d"];

fn upgrade(sid: &str) -> Vec<u8> {
    format!(
        "GET /ws/{sid} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A masked client frame with the given first byte and payload.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads the script one byte at a time; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fuzz_target!(|input: &[u8]| {
    let mut script = Script(input);
    let mut config = ServerConfig::default();
    config.max_connections = 1 + usize::from(script.byte() % 8);
    let queue = script.byte();
    config.max_queued_bytes = 256 << (queue % 9);
    // The same byte's upper part (so that the committed corpus reads as before): a
    // per-address limit of 0 (off) to 3; every simulated client is 127.0.0.1.
    config.max_connections_per_ip = usize::from(queue / 9 % 4);
    let sizes = script.byte();
    config.session.max_message_size = 16 << (sizes % 13);
    // The same byte's upper part: a memory budget from 1 KiB (always under pressure) to
    // 2 MiB, so that pausing, the 1013 refusals and the budget's books get exercised.
    config.memory_budget = 1024 << (sizes / 13 % 12);
    config.session.max_frame_size = config.session.max_message_size;
    config.max_http_body = 64;
    config.read_buffer_size = 1024;
    let mut sim = Sim::new(config, App).expect("a poll for the waker");
    let mut clients: Vec<usize> = Vec::new();

    for _ in 0..256 {
        if script.is_empty() {
            break;
        }
        let op = script.byte();
        let client = clients
            .get(usize::from(script.byte()) % clients.len().max(1))
            .copied();
        match (op % 12, client) {
            (0, _) | (_, None) => {
                if clients.len() < 16 {
                    if let Some(id) = sim.connect() {
                        clients.push(id);
                    }
                }
            }
            (1, Some(c)) => {
                let sid = SIDS[usize::from(script.byte()) % SIDS.len()];
                sim.send(c, &upgrade(sid));
            }
            (2, Some(c)) => {
                let n = usize::from(script.byte() % 64);
                let bytes = script.bytes(n).to_vec();
                sim.send(c, &bytes);
            }
            (3, Some(c)) => {
                // A valid-looking frame: any first byte (FIN, RSV, opcode), a payload.
                let first = script.byte();
                let n = usize::from(script.byte());
                let payload = script.bytes(n).to_vec();
                sim.send(c, &frame(first, &payload));
            }
            (4, Some(c)) => {
                let n = usize::from(script.byte()) * 64;
                sim.receive(c, n);
            }
            (5, Some(c)) => sim.close(c),
            (6, Some(c)) => sim.reset(c),
            (7, _) => sim.advance(Duration::from_millis(u64::from(script.byte()) * 500)),
            (8, _) => {
                let sid = SIDS[usize::from(script.byte()) % SIDS.len()];
                let n = usize::from(script.byte());
                sim.send_to(sid, Message::Binary(vec![b'x'; n]));
            }
            (9, _) => {
                let n = usize::from(script.byte()) * 16;
                sim.broadcast(Message::Text("y".repeat(n)));
            }
            (10, _) => {
                let sid = SIDS[usize::from(script.byte()) % SIDS.len()];
                sim.close_sid(sid, CloseCode::GoingAway);
            }
            (11, _) if script.byte() == 0xff => sim.shutdown(),
            _ => {}
        }
        // Let the clients read most of what they were sent, most of the time.
        if op & 0x80 != 0 {
            for &c in &clients {
                sim.receive(c, 1 << 16);
            }
        }
    }
    sim.finish();
});
