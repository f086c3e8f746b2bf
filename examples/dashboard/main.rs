//! The back-office dashboard: the scenario wsloop was built for.
//!
//! An admin page (served at `/`) keeps a WebSocket open at `/ws/<random id>`. When a customer
//! places an order or asks about one, business code broadcasts an alert and every open page
//! pops it up at once, without a refresh.
//!
//! ```sh
//! cargo run --release --example dashboard                 # then open http://127.0.0.1:8080
//! curl -X POST http://127.0.0.1:8080/orders/42/remind     # every page pops up order 42
//! curl -X POST http://127.0.0.1:8080/orders/43/placed     # a new-order alert
//! curl -X POST -d 'hello' http://127.0.0.1:8080/send/<sid>
//! cargo run --release --example dashboard -- 127.0.0.1:8080 --simulate
//! ```
//!
//! Two ways to push, both shown here:
//! - from inside the loop: the HTTP endpoints run in `on_request` and use the [`Context`],
//!   which answers at once how many sessions the alert was queued for;
//! - from another thread: `--simulate` starts a thread that places an order every few seconds
//!   through a [`Handle`], as business code elsewhere in a program would. A `Handle` never
//!   blocks on the loop (it queues and wakes it), and the loop never waits for that thread, so
//!   neither can deadlock the other.

use std::time::Duration;

use wsloop::server::{
    CloseReason, Context, Handle, Handler, HttpRequest, HttpResponse, SendStatus, Server,
};
use wsloop::Message;

const PAGE: &str = include_str!("page.html");

/// Alert types, as in the original back office: 1 = new order, 2 = customer reminder.
fn alert(kind: u8, order_id: u64) -> String {
    format!(r#"{{"type":{kind},"orderId":{order_id},"content":"订单号：{order_id}"}}"#)
}

struct Dashboard;

impl Handler for Dashboard {
    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        log::info!("dashboard {sid} connected ({} open)", ctx.session_count());
    }

    fn on_message(&mut self, _ctx: &mut Context<'_>, sid: &str, message: Message) {
        // Messages from the page are logged, not echoed.
        match message {
            Message::Text(text) => log::info!("from {sid}: {text}"),
            Message::Binary(bytes) => log::info!("from {sid}: {} binary bytes", bytes.len()),
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        log::info!("dashboard {sid} disconnected: {reason}");
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        let segments: Vec<&str> = request.path().split('/').skip(1).collect();
        match (request.method(), segments.as_slice()) {
            ("GET", [""]) | ("GET", ["index.html"]) => HttpResponse::html(200, PAGE),
            ("POST", ["orders", id, action @ ("placed" | "remind")]) => {
                let Ok(id) = id.parse::<u64>() else {
                    return HttpResponse::json(400, r#"{"error":"order id must be a number"}"#);
                };
                let kind = if *action == "placed" { 1 } else { 2 };
                let delivered = ctx.broadcast(alert(kind, id));
                HttpResponse::json(200, &format!(r#"{{"delivered":{delivered}}}"#))
            }
            ("POST", ["send", sid]) => {
                let text = String::from_utf8_lossy(request.body()).into_owned();
                match ctx.send(sid, text) {
                    SendStatus::Queued => HttpResponse::json(200, r#"{"delivered":1}"#),
                    SendStatus::NoSuchSession => {
                        HttpResponse::json(404, r#"{"error":"no such session"}"#)
                    }
                    other => HttpResponse::json(409, &format!(r#"{{"error":"{other:?}"}}"#)),
                }
            }
            (_, ["orders", ..]) | (_, ["send", ..]) => {
                HttpResponse::json(405, r#"{"error":"use POST"}"#).with_header("Allow", "POST")
            }
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

/// Business code on another thread: an order every few seconds, through the handle.
fn simulate_orders(handle: Handle) {
    std::thread::spawn(move || {
        let mut order_id = 1000;
        while !handle.is_stopped() {
            std::thread::sleep(Duration::from_secs(5));
            order_id += 1;
            let kind = if order_id % 3 == 0 { 2 } else { 1 };
            if handle.broadcast(alert(kind, order_id)).is_err() {
                break;
            }
            log::info!(
                "simulated order {order_id} sent to {} sessions",
                handle.session_count()
            );
        }
    });
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let server = Server::builder().bind(addr).build()?;
    let local = server.local_addr()?;
    println!("dashboard on http://{local}/  (try: curl -X POST http://{local}/orders/42/remind)");
    if args.iter().any(|a| a == "--simulate") {
        simulate_orders(server.handle());
    }
    server.run(Dashboard)
}
