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
//! curl -X POST http://127.0.0.1:8080/shops/7/orders/44/placed   # only the pages of shop 7
//! cargo run --release --example dashboard -- 127.0.0.1:8080 --simulate
//! cargo run --example gen_cert                            # writes cert.pem and key.pem
//! cargo run --release --features tls --example dashboard -- --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! One instance can run several event loops, one thread each (`--workers 4`): pages spread
//! over them, and alerts, `/send/<sid>` and duplicate sids work across them.
//!
//! Several instances behind a load balancer act as one through Redis (the `wsloop-redis`
//! crate of this workspace): start each with `--redis`, and an alert posted to any of them
//! pops up on the pages of all of them.
//!
//! ```sh
//! cargo run --release --example dashboard -- --bind 127.0.0.1:8081 --redis redis://127.0.0.1:6379
//! cargo run --release --example dashboard -- --bind 127.0.0.1:8082 --redis redis://127.0.0.1:6379
//! curl -X POST http://127.0.0.1:8082/orders/42/remind     # pages on 8081 and 8082 pop it up
//! redis-cli PUBLISH wsloop:events '{"type":"broadcast","text":"{\"type\":1,\"orderId\":7,\"content\":\"7\"}"}'
//! ```
//!
//! Shops: the page at `/?shop=7` opens its socket at `/ws/<sid>?shop=7`, and the upgrade
//! decision (`on_upgrade`) gives the session that shop as its data; `on_open` subscribes it
//! to the topic `shop/7`. `POST /shops/7/orders/<id>/placed` (or `/remind`) publishes the
//! same alert as `/orders/<id>/...` to that topic only and answers `{"delivered":N}`, N the
//! pages it was queued for, counted like the `/orders` routes count theirs (this event
//! loop's pages: with `--workers`, the pages on the other loops get it too but are not
//! counted; with `--redis` it is published to the other instances too, `"published"` says
//! whether that was queued). A shop id is 1 to 64 letters, digits, `-` or `_` (else 400).
//!
//! Two ways to push, both shown here:
//! - from inside the loop: the HTTP endpoints run in `on_request` and use the [`Context`],
//!   which answers at once how many sessions the alert was queued for;
//! - from another thread: `--simulate` starts a thread that places an order every few seconds
//!   through a [`Handle`], as business code elsewhere in a program would. A `Handle` never
//!   blocks on the loop (it queues and wakes it), and the loop never waits for that thread, so
//!   neither can deadlock the other.
//!
//! With `--redis`, the handler is wrapped by the bridge (which puts each page's sid in the
//! directory), an alert goes to this instance's pages through the `Context` and to the other
//! instances' through Redis, and `/send/<sid>` for a page open elsewhere is forwarded to the
//! instance that holds it. None of it waits for Redis on the event loop.
//!
//! Safe to expose (`access.rs` has the rules, `tests/dashboard.rs` tries each attack):
//! - every request, page, POST and upgrade, must name an allowed `Host` (else 421): by
//!   default `localhost`, `127.0.0.1` and `[::1]` (any port, so that a local proxy such as
//!   `tap` works) and the bound address; `--allow-host NAME[:PORT]` (repeatable) adds a name,
//!   e.g. the public one behind a proxy or the machine's name when bound to `0.0.0.0`. A
//!   DNS-rebound name gets nothing.
//! - upgrades and POSTs from another origin are refused with 403 (cross-site WebSocket
//!   hijacking: a page elsewhere using the admin's browser): an `Origin` (`null` too) that is
//!   neither `http(s)://` + the request's own `Host` nor an `--allow-host` name, or
//!   `Sec-Fetch-Site: cross-site`. curl and scripts send no `Origin` and work as above.
//!   `--allow-origin URL` (repeatable, e.g. `https://admin.example.com`) admits a page on
//!   another origin.
//! - with `--token T`, every POST needs `Authorization: Bearer T`, and every upgrade `T` as
//!   `?token=T`, `Authorization: Bearer T` or a `token=T` cookie (else 401 with
//!   `WWW-Authenticate: Bearer`):
//!   `curl -X POST -H 'Authorization: Bearer T' http://127.0.0.1:8080/orders/42/remind`.
//!   The page gets the token from its own URL: open `http://127.0.0.1:8080/?token=T` and it
//!   passes `?token=T` on to its socket (or set the cookie `token=T` for the site).
//! - the page takes its sid from `crypto.randomUUID()` (or `crypto.getRandomValues`), never
//!   `Math.random`, so that another page cannot guess it and take the session over.
//! - one client address holds at most 256 connections (`--max-per-ip N`, 0 = no limit; set
//!   it to 0 behind a reverse proxy, where every client comes from the proxy's address); the
//!   next gets 429 (see `ServerConfig::max_connections_per_ip`).
//! - a page whose sid is opened elsewhere (Close 4000 "replaced") says so and does not
//!   reconnect, so two holders of one sid do not take it from each other forever.
//! - `HEAD /` answers like `GET /` without the page (same headers and Content-Length).
//! - what a page sends is logged as its length and a short escaped preview, never whole.
//! - all connections together hold at most the memory budget in messages and queues
//!   (`--memory-budget BYTES`, default the library's 1 GiB; see
//!   `ServerConfig::memory_budget`); messages up to 64 MiB and a 4 MiB write-queue mark, as
//!   this page always had.

use std::sync::OnceLock;
use std::time::Duration;

use wsloop::server::{
    CloseReason, Context, Handle, Handler, HttpRequest, HttpResponse, SendStatus, Server, Upgrade,
    UpgradeRequest,
};
use wsloop::Message;
use wsloop_redis::{Bridge, Config};

mod access;
use access::{preview, Access, Allowed, AllowedOrigin};

/// Connections one client address may hold by default (`--max-per-ip`): far more than the
/// tabs of one person, far fewer than `max_connections`, so one client cannot take every
/// slot. Behind a proxy (every client has its address) use `--max-per-ip 0`.
const DEFAULT_MAX_PER_IP: usize = 256;

const PAGE: &str = include_str!("page.html");

/// Longest preview, in bytes, of a text a client chose (a message, a sid) in a log line.
const PREVIEW: usize = 64;

/// The access rules, set in `main` once the bound address is known (port 0 picks one) and
/// before the server runs; read by the upgrade decision and `on_request`.
static ACCESS: OnceLock<Access> = OnceLock::new();

/// Longest shop id, in bytes.
const MAX_SHOP: usize = 64;

/// A page's session data, given at the upgrade: the shop whose orders it shows, if any.
struct Page {
    shop: Option<String>,
}

/// Whether `shop` may name a shop: 1 to [`MAX_SHOP`] letters, digits, `-` and `_`, so that a
/// topic name and a log line stay short and plain.
fn valid_shop(shop: &str) -> bool {
    (1..=MAX_SHOP).contains(&shop.len())
        && shop
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The topic of a shop's pages.
fn shop_topic(shop: &str) -> String {
    format!("shop/{shop}")
}

/// The upgrade decision (`/ws/{sid}`, the default route): the access checks of `access.rs`
/// (Host, same origin, the token with `--token`), then the page's shop from `?shop=`.
fn decide_upgrade(req: &UpgradeRequest<'_>) -> Upgrade {
    let Some(access) = ACCESS.get() else {
        return Upgrade::reject(HttpResponse::json(503, r#"{"error":"starting"}"#));
    };
    let bearer = req
        .header("authorization")
        .and_then(|value| value.split_once(' '))
        // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: `Bearer <token>`.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start_matches(' '));
    let query = req.query("token");
    let offered = [query.as_deref(), bearer, req.cookie("token")];
    let checked = access
        .check_upgrade(req.request())
        .and_then(|()| access.check_upgrade_token(offered.into_iter().flatten()));
    if let Err(refusal) = checked {
        log::warn!(
            "upgrade to {} refused: {refusal}",
            preview(req.path(), PREVIEW)
        );
        return Upgrade::reject(refusal.response());
    }
    let shop = match req.query("shop") {
        None => None,
        Some(shop) if valid_shop(&shop) => Some(shop.into_owned()),
        Some(shop) => {
            log::warn!(
                "upgrade to {} refused: 400, bad shop id \"{}\"",
                preview(req.path(), PREVIEW),
                preview(&shop, PREVIEW)
            );
            return Upgrade::reject(HttpResponse::json(
                400,
                r#"{"error":"a shop id is 1 to 64 letters, digits, - or _"}"#,
            ));
        }
    };
    Upgrade::accept().with_data(Page { shop })
}

/// The upgrade decision in front of a handler: [`decide_upgrade`], then every other callback
/// passed on. A wrapper, because the `wsloop-redis` handler (`Bridged`) passes on every
/// callback but `on_upgrade`, so a `Dashboard` inside it would never be asked.
struct Gate<H>(H);

impl<H: Handler> Handler for Gate<H> {
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, request: &UpgradeRequest<'_>) -> Upgrade {
        decide_upgrade(request)
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        self.0.on_open(ctx, sid);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        self.0.on_message(ctx, sid, message);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        self.0.on_close(ctx, sid, reason);
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        self.0.on_request(ctx, request)
    }
}

/// Alert types, as in the original back office: 1 = new order, 2 = customer reminder.
fn alert(kind: u8, order_id: u64) -> String {
    format!(r#"{{"type":{kind},"orderId":{order_id},"content":"订单号：{order_id}"}}"#)
}

struct Dashboard {
    /// The other instances, with `--redis`.
    cluster: Option<Bridge>,
}

impl Handler for Dashboard {
    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let shop = ctx.data::<Page>(sid).and_then(|page| page.shop.clone());
        if let Some(shop) = &shop {
            ctx.subscribe(sid, &shop_topic(shop));
        }
        let open = ctx.session_count();
        let sid = preview(sid, PREVIEW);
        match shop {
            Some(shop) => log::info!("dashboard {sid} connected ({open} open), shop {shop}"),
            None => log::info!("dashboard {sid} connected ({open} open)"),
        }
    }

    fn on_message(&mut self, _ctx: &mut Context<'_>, sid: &str, message: Message) {
        // Messages from the page are logged, not echoed: their length and a short escaped
        // preview, so that a 5 MB message is not a 5 MB log line.
        let sid = preview(sid, PREVIEW);
        match message {
            Message::Text(text) => log::info!(
                "from {sid}: {} bytes of text \"{}\"",
                text.len(),
                preview(&text, PREVIEW)
            ),
            Message::Binary(bytes) => log::info!("from {sid}: {} binary bytes", bytes.len()),
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let sid = preview(sid, PREVIEW);
        log::info!("dashboard {sid} disconnected: {reason}");
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        let Some(access) = ACCESS.get() else {
            return HttpResponse::json(503, r#"{"error":"starting"}"#);
        };
        if let Err(refusal) = access.check_http(request.head()) {
            log::warn!(
                "{} {} refused: {refusal}",
                preview(request.method(), PREVIEW),
                preview(request.path(), PREVIEW)
            );
            return refusal.response();
        }
        let segments: Vec<&str> = request.path().split('/').skip(1).collect();
        match (request.method(), segments.as_slice()) {
            // HEAD: the same answer; the server sends its head only (RFC 9110 §9.3.2).
            ("GET" | "HEAD", [""]) | ("GET" | "HEAD", ["index.html"]) => {
                HttpResponse::html(200, PAGE)
            }
            ("POST", ["orders", id, action @ ("placed" | "remind")]) => {
                let Ok(id) = id.parse::<u64>() else {
                    return HttpResponse::json(400, r#"{"error":"order id must be a number"}"#);
                };
                let kind = if *action == "placed" { 1 } else { 2 };
                let delivered = ctx.broadcast(alert(kind, id));
                match &self.cluster {
                    None => HttpResponse::json(200, &format!(r#"{{"delivered":{delivered}}}"#)),
                    // `delivered` counts this instance's pages; Redis takes it to the others.
                    Some(cluster) => {
                        let published = cluster.broadcast_remote(alert(kind, id)).is_ok();
                        HttpResponse::json(
                            200,
                            &format!(r#"{{"delivered":{delivered},"published":{published}}}"#),
                        )
                    }
                }
            }
            ("POST", ["shops", shop, "orders", id, action @ ("placed" | "remind")]) => {
                if !valid_shop(shop) {
                    log::warn!("POST to bad shop id \"{}\"", preview(shop, PREVIEW));
                    return HttpResponse::json(
                        400,
                        r#"{"error":"a shop id is 1 to 64 letters, digits, - or _"}"#,
                    );
                }
                let Ok(id) = id.parse::<u64>() else {
                    return HttpResponse::json(400, r#"{"error":"order id must be a number"}"#);
                };
                let kind = if *action == "placed" { 1 } else { 2 };
                let topic = shop_topic(shop);
                let delivered = ctx.publish(&topic, alert(kind, id));
                match &self.cluster {
                    None => HttpResponse::json(200, &format!(r#"{{"delivered":{delivered}}}"#)),
                    // As for /orders: `delivered` counts this instance's pages.
                    Some(cluster) => {
                        let published = cluster.publish_remote(&topic, alert(kind, id)).is_ok();
                        HttpResponse::json(
                            200,
                            &format!(r#"{{"delivered":{delivered},"published":{published}}}"#),
                        )
                    }
                }
            }
            ("POST", ["send", sid]) => {
                let text = String::from_utf8_lossy(request.body()).into_owned();
                match ctx.send(sid, text.clone()) {
                    SendStatus::Queued => HttpResponse::json(200, r#"{"delivered":1}"#),
                    // With --workers: the page is on another loop of this server.
                    SendStatus::Forwarded => HttpResponse::json(202, r#"{"forwarded":true}"#),
                    // Not here: the instance that holds it, if any, gets it through Redis.
                    SendStatus::NoSuchSession => match &self.cluster {
                        Some(cluster) if cluster.send(sid, text).is_ok() => {
                            HttpResponse::json(202, r#"{"forwarded":true}"#)
                        }
                        _ => HttpResponse::json(404, r#"{"error":"no such session"}"#),
                    },
                    other => HttpResponse::json(409, &format!(r#"{{"error":"{other:?}"}}"#)),
                }
            }
            (_, ["orders", ..]) | (_, ["send", ..]) | (_, ["shops", ..]) => {
                HttpResponse::json(405, r#"{"error":"use POST"}"#).with_header("Allow", "POST")
            }
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

/// Business code on another thread: an order every few seconds, through the handle (or,
/// with `--redis`, the bridge, to every instance's pages).
fn simulate_orders(handle: Handle, cluster: Option<Bridge>) {
    std::thread::spawn(move || {
        let mut order_id = 1000;
        while !handle.is_stopped() {
            std::thread::sleep(Duration::from_secs(5));
            order_id += 1;
            let kind = if order_id % 3 == 0 { 2 } else { 1 };
            let sent = match &cluster {
                Some(cluster) => cluster.broadcast(alert(kind, order_id)).is_ok(),
                None => handle.broadcast(alert(kind, order_id)).is_ok(),
            };
            if !sent {
                break;
            }
            log::info!(
                "simulated order {order_id} sent to {} sessions",
                handle.session_count()
            );
        }
    });
}

/// `[ADDR] [--bind ADDR] [--workers N] [--redis URL] [--simulate] [--allow-host NAME[:PORT]]...
/// [--allow-origin URL]... [--token T] [--max-per-ip N] [--tls-cert FILE --tls-key FILE]`.
struct Args {
    addr: String,
    workers: usize,
    redis: Option<String>,
    simulate: bool,
    /// `--allow-host`, added to the default allow-list.
    allow_hosts: Vec<Allowed>,
    /// `--allow-origin`: pages on other origins that may upgrade and POST.
    allow_origins: Vec<AllowedOrigin>,
    /// `--token`: every POST must carry `Authorization: Bearer <token>`, every upgrade the
    /// token (query, header or cookie).
    token: Option<String>,
    /// `--max-per-ip`: most connections from one client address (0 = no limit).
    max_per_ip: usize,
    /// `--memory-budget`: `ServerConfig::memory_budget` (the library's default otherwise).
    memory_budget: Option<usize>,
    /// `--tls-cert`, `--tls-key`: https and wss only (feature `tls`).
    tls: tls::TlsFlags,
}

#[path = "../common/tls.rs"]
mod tls;

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".into(),
        workers: 1,
        redis: None,
        simulate: false,
        allow_hosts: Vec::new(),
        allow_origins: Vec::new(),
        token: None,
        max_per_ip: DEFAULT_MAX_PER_IP,
        memory_budget: None,
        tls: tls::TlsFlags::default(),
    };
    let mut rest = std::env::args().skip(1);
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| rest.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--simulate" => args.simulate = true,
            "--bind" => args.addr = value("--bind")?,
            "--workers" => {
                args.workers = value("--workers")?
                    .parse()
                    .map_err(|_| "--workers needs a number".to_string())?
            }
            "--redis" => args.redis = Some(value("--redis")?),
            "--allow-host" => args
                .allow_hosts
                .push(Allowed::parse(&value("--allow-host")?)?),
            "--allow-origin" => args
                .allow_origins
                .push(AllowedOrigin::parse(&value("--allow-origin")?)?),
            "--token" => {
                let token = value("--token")?;
                // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
                // "/" ) *"=", what a client can put after `Bearer `.
                let body = token.trim_end_matches('=');
                let b64 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
                if body.is_empty() || !body.bytes().all(b64) {
                    return Err("--token needs letters, digits and -._~+/ (then any =)".into());
                }
                args.token = Some(token);
            }
            "--max-per-ip" => {
                args.max_per_ip = value("--max-per-ip")?
                    .parse()
                    .map_err(|_| "--max-per-ip needs a number (0 = no limit)".to_string())?
            }
            "--memory-budget" => {
                args.memory_budget = Some(
                    value("--memory-budget")?
                        .parse()
                        .map_err(|_| "--memory-budget needs a number of bytes".to_string())?,
                )
            }
            flag if args.tls.parse(flag, &mut || rest.next())? => {}
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            addr => args.addr = addr.to_string(),
        }
    }
    Ok(args)
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!(
            "dashboard: {e}\nusage: dashboard [ADDR] [--bind ADDR] [--workers N] [--redis URL] \
             [--simulate] [--allow-host NAME[:PORT]]... [--allow-origin URL]... [--token T] [--max-per-ip N] \
             [--memory-budget BYTES] [--tls-cert FILE --tls-key FILE]"
        );
        std::process::exit(2);
    });
    let builder = Server::builder()
        .bind(args.addr)
        .workers(args.workers)
        .configure(|c| {
            c.max_connections_per_ip = args.max_per_ip;
            // The limits this page has always had (the library's defaults are now 1 MiB).
            c.session.max_message_size = 64 << 20;
            c.session.max_frame_size = 64 << 20;
            c.max_queued_bytes = 4 << 20;
            if let Some(budget) = args.memory_budget {
                c.memory_budget = budget;
            }
        });
    let builder = args.tls.apply(builder).unwrap_or_else(|e| {
        eprintln!("dashboard: {e}");
        std::process::exit(2);
    });
    let server = builder.build()?;
    // SIGTERM/SIGINT: graceful shutdown (Close 1001, on_close; with --redis the bridge then
    // stops and removes this instance's entries); a second signal exits at once.
    #[path = "../common/shutdown.rs"]
    mod shutdown;
    shutdown::on_signals(server.handle())?;
    let local = server.local_addr()?;
    let http = if args.tls.on() { "https" } else { "http" };
    println!(
        "dashboard on {http}://{local}/  (try: curl -X POST {http}://{local}/orders/42/remind)"
    );
    let access = ACCESS.get_or_init(|| {
        Access::new(
            local,
            &args.allow_hosts,
            &args.allow_origins,
            args.token.clone(),
        )
    });
    log::info!(
        "allowed hosts: {}; POSTs {}",
        access.hosts(),
        if access.has_token() {
            "need the bearer token"
        } else {
            "need no token"
        }
    );
    if !args.allow_origins.is_empty() {
        log::info!("pages also allowed from: {}", access.origins());
    }
    let cluster = match &args.redis {
        Some(url) => {
            let bridge = Bridge::start(Config::new(url), server.handle())?;
            println!("instance {} of the cluster at {url}", bridge.instance_id());
            Some(bridge)
        }
        None => None,
    };
    if args.simulate {
        simulate_orders(server.handle(), cluster.clone());
    }
    // One handler per event loop (`--workers`); they share only the bridge.
    match cluster {
        None => server.run_each(|_| Gate(Dashboard { cluster: None })),
        Some(bridge) => {
            let shared = bridge.clone();
            let result = server.run_each(move |_| {
                Gate(shared.wrap(Dashboard {
                    cluster: Some(shared.clone()),
                }))
            });
            bridge.stop();
            result
        }
    }
}
