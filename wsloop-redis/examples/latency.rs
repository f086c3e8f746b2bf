//! Broadcast latency across two instances through Redis, against a broadcast within one.
//!
//! ```sh
//! cargo run --release -p wsloop-redis --example latency              # starts its own redis-server
//! cargo run --release -p wsloop-redis --example latency -- --redis redis://127.0.0.1:6379 --n 1000
//! ```
//!
//! Two servers, A and B, each with a bridge, in this process; one client connected to A. Each
//! sample is one message, timed from the call that sends it to the client's `recv` returning
//! it (the next is sent only then), so a figure is the whole path: queue, loop wake-up,
//! Redis round trip where there is one, frame, loopback TCP, client parse. Prints a markdown
//! table of percentiles.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{config, publish, Instance, RedisServer};
use wsloop::client::Client;
use wsloop::Message;

const PAYLOAD: &str = r#"{"type":2,"orderId":42,"content":"订单号：42"}"#;

fn main() {
    let mut redis_url = None;
    let mut samples = 500usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => redis_url = args.next(),
            "--n" => samples = args.next().and_then(|n| n.parse().ok()).expect("--n COUNT"),
            other => panic!("unknown argument {other} (use --redis URL, --n COUNT)"),
        }
    }
    // Our own redis-server unless one is given; killed when `_own` drops.
    let _own;
    let url = match redis_url {
        Some(url) => url,
        None => {
            let server = RedisServer::start();
            let url = server.url();
            _own = server;
            url
        }
    };

    let a = Instance::start(config(&url, "bench-a"));
    let b = Instance::start(config(&url, "bench-b"));
    let mut client = a.connect("probe");
    let mut business = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("Redis");
    let version: String = redis::cmd("INFO")
        .arg("server")
        .query::<String>(&mut business)
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
        })
        .unwrap_or_default();
    wait_held_by_url(&url, "probe", "bench-a");

    let rows: [(&str, &mut dyn FnMut()); 4] = [
        ("within one instance: `Handle::broadcast` on A", &mut || {
            a.handle.broadcast(PAYLOAD).unwrap()
        }),
        (
            "across instances: `Bridge::broadcast` on B, through Redis",
            &mut || b.bridge.broadcast(PAYLOAD).unwrap(),
        ),
        (
            "any Redis client: `PUBLISH wsloop:events` (envelope)",
            &mut || {
                let envelope = wsloop_redis::Envelope::broadcast(PAYLOAD).to_json();
                publish(&mut business, "wsloop:events", &envelope);
            },
        ),
        (
            "across instances: `Bridge::send` to the sid on B (directory `GET` + `PUBLISH`)",
            &mut || b.bridge.send("probe", PAYLOAD).unwrap(),
        ),
    ];

    println!(
        "{samples} messages per row ({}-byte text), after 50 for warm-up; one client on A; \
         Redis {version} on the same machine; {} CPUs\n",
        PAYLOAD.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("| path | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, send) in rows {
        for _ in 0..50 {
            time_one(send, &mut client);
        }
        let mut times: Vec<Duration> = (0..samples).map(|_| time_one(send, &mut client)).collect();
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "| {name} | {} | {} | {} | {} |",
            micros(at(0.50)),
            micros(at(0.90)),
            micros(at(0.99)),
            micros(*times.last().unwrap()),
        );
    }
}

fn time_one(send: &mut dyn FnMut(), client: &mut Client) -> Duration {
    let start = Instant::now();
    send();
    match client.recv() {
        Ok(Message::Text(text)) if text == PAYLOAD => start.elapsed(),
        other => panic!("unexpected {other:?}"),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn wait_held_by_url(url: &str, sid: &str, instance: &str) {
    // `common::wait_held_by` needs a server of our own; this works with any URL.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("Redis");
    loop {
        let value: Option<String> = redis::cmd("GET")
            .arg(format!("wsloop:sid:{sid}"))
            .query(&mut conn)
            .unwrap();
        if value.is_some_and(|v| v.starts_with(&format!("{instance}#"))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sid} never reached the directory"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
