//! A chat with rooms: the application API of `wsloop` in one small program.
//!
//! ```sh
//! cargo run --release --example chat                      # then open http://127.0.0.1:8090
//! cargo run --release --example chat -- --bind 127.0.0.1:9000
//! ```
//!
//! The page (served at `GET /`) asks for a room and a name and opens
//! `ws://HOST/chat/{room}/{user}`. What each part of the API does here:
//! - the route `/chat/{room}/{user}` has no `{sid}`, so every connection gets a fresh sid:
//!   two tabs with the same name are two members, never one replacing the other;
//! - `on_upgrade` reads both path parameters (percent-decoded with
//!   [`percent_decode`]), checks them and the `Origin`, and either refuses with the HTTP
//!   answer (400 for a bad room or name, 403 for a page on another site, RFC 6455 §10.2) or
//!   accepts with a [`Member`] as the session's data;
//! - `on_open` subscribes the session to its room's topic (`room/{room}`) and publishes a
//!   join message to it; `on_message` reads the sender's name and room back with `ctx.data`
//!   and publishes the text to the room (encoded once for all its members); `on_close`
//!   publishes the leave. There is no map of members anywhere in this file.
//!
//! Messages to the page are JSON: `{"type":"join"|"leave","room":R,"user":U,"members":N}`
//! and `{"type":"message","room":R,"user":U,"text":T}`. A room is 1 to 32 letters, digits,
//! `-` or `_`; a name 1 to 32 characters, letters, digits, spaces and `-_.'` (not only
//! spaces); a message at most 4 KiB of text (larger: Close 1009, binary: Close 1003).
//! Whatever a client chose appears in the log only as a short escaped preview.
//!
//! SIGTERM and SIGINT shut it down gracefully (Close 1001 to every member).

use wsloop::server::{
    percent_decode, CloseReason, Context, Handler, HttpRequest, HttpResponse, Server, Upgrade,
    UpgradeRequest,
};
use wsloop::{CloseCode, Message};

const PAGE: &str = include_str!("page.html");

/// Longest room name and user name, in characters.
const MAX_NAME: usize = 32;

/// Largest message a member may send, in bytes: a chat line, not a file.
const MAX_MESSAGE: usize = 4 << 10;

/// Longest preview, in bytes, of a text a client chose in a log line.
const PREVIEW: usize = 64;

/// A session's data, given at the upgrade: who it is and where.
struct Member {
    room: String,
    user: String,
}

/// The topic of a room's members.
fn topic(room: &str) -> String {
    format!("room/{room}")
}

fn valid_room(room: &str) -> bool {
    (1..=MAX_NAME).contains(&room.chars().count())
        && room
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

fn valid_user(user: &str) -> bool {
    (1..=MAX_NAME).contains(&user.chars().count())
        && user.chars().any(|c| c != ' ')
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || " -_.'".contains(c))
}

/// `text` as a JSON string literal (RFC 8259 §7: `"` and `\` escaped, control characters
/// as `\uXXXX`).
fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` for a log line: escaped (no raw newline, quote or control character) and cut to
/// at most `max` bytes plus `…`.
fn preview(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let escaped: String = c.escape_debug().collect();
        if out.len() + escaped.len() > max {
            out.push('…');
            break;
        }
        out.push_str(&escaped);
    }
    out
}

/// Whether `origin` is `http(s)://` + `host`, the page's own origin (RFC 6454 §7).
fn same_origin(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

fn bad_request(what: &str) -> Upgrade {
    Upgrade::reject(HttpResponse::json(
        400,
        &format!(r#"{{"error":{}}}"#, json(what)),
    ))
}

struct Chat;

impl Chat {
    /// The member's room and name, from the session's data.
    fn member(ctx: &mut Context<'_>, sid: &str) -> Option<(String, String)> {
        ctx.data::<Member>(sid)
            .map(|m| (m.room.clone(), m.user.clone()))
    }

    /// A join or leave message to the room.
    fn announce(ctx: &mut Context<'_>, kind: &str, room: &str, user: &str) {
        let members = ctx.subscribers(&topic(room));
        let message = format!(
            r#"{{"type":"{kind}","room":{},"user":{},"members":{members}}}"#,
            json(room),
            json(user)
        );
        ctx.publish(&topic(room), message);
    }
}

impl Handler for Chat {
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, req: &UpgradeRequest<'_>) -> Upgrade {
        let path = preview(req.path(), PREVIEW);
        // RFC 6455 §10.2: a browser names the page that opens the socket; a page on another
        // site gets 403. Scripts send no Origin.
        if let Some(origin) = req.origin() {
            if !same_origin(origin, req.header("host").unwrap_or_default()) {
                log::warn!(
                    "upgrade to {path} refused: 403, Origin \"{}\"",
                    preview(origin, PREVIEW)
                );
                return Upgrade::reject(HttpResponse::json(
                    403,
                    r#"{"error":"cross-site request refused"}"#,
                ));
            }
        }
        // The route matched, so both parameters are there; decoded, each must be valid.
        let decoded = |name| req.param(name).and_then(percent_decode);
        let (Some(room), Some(user)) = (decoded("room"), decoded("user")) else {
            log::warn!("upgrade to {path} refused: 400, bad percent-encoding");
            return bad_request("bad percent-encoding in the path");
        };
        if !valid_room(&room) {
            log::warn!("upgrade to {path} refused: 400, bad room name");
            return bad_request("a room is 1 to 32 letters, digits, - or _");
        }
        if !valid_user(&user) {
            log::warn!("upgrade to {path} refused: 400, bad user name");
            return bad_request("a name is 1 to 32 letters, digits, spaces or -_.'");
        }
        Upgrade::accept().with_data(Member {
            room: room.into_owned(),
            user: user.into_owned(),
        })
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let Some((room, user)) = Chat::member(ctx, sid) else {
            return;
        };
        ctx.subscribe(sid, &topic(&room));
        log::info!("{} joined {room} as {sid}", preview(&user, PREVIEW));
        Chat::announce(ctx, "join", &room, &user);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        let Some((room, user)) = Chat::member(ctx, sid) else {
            return;
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(bytes) => {
                log::info!("{sid} sent {} binary bytes: closing with 1003", bytes.len());
                // RFC 6455 §7.4.1: 1003, a type of data the endpoint cannot accept.
                let _ = ctx.close(sid, CloseCode::UnsupportedData, "text only");
                return;
            }
        };
        log::info!(
            "{} in {room}: {} bytes \"{}\"",
            preview(&user, PREVIEW),
            text.len(),
            preview(&text, PREVIEW)
        );
        let message = format!(
            r#"{{"type":"message","room":{},"user":{},"text":{}}}"#,
            json(&room),
            json(&user),
            json(&text)
        );
        ctx.publish(&topic(&room), message);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        let Some((room, user)) = Chat::member(ctx, sid) else {
            return;
        };
        log::info!("{} left {room}: {reason}", preview(&user, PREVIEW));
        Chat::announce(ctx, "leave", &room, &user);
    }

    fn on_request(&mut self, _ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/" | "/index.html") => HttpResponse::html(200, PAGE),
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

/// `[ADDR] [--bind ADDR]`.
fn parse_args() -> Result<String, String> {
    let mut addr = "127.0.0.1:8090".to_string();
    let mut rest = std::env::args().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--bind" => addr = rest.next().ok_or("--bind needs a value")?,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            other => addr = other.to_string(),
        }
    }
    Ok(addr)
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = parse_args().unwrap_or_else(|e| {
        eprintln!("chat: {e}\nusage: chat [ADDR] [--bind ADDR]");
        std::process::exit(2);
    });
    let server = Server::builder()
        .bind(addr)
        .route("/chat/{room}/{user}")
        .configure(|c| {
            c.session.max_message_size = MAX_MESSAGE;
        })
        .build()?;
    // SIGTERM/SIGINT: graceful shutdown (Close 1001, on_close for each member).
    #[path = "../common/shutdown.rs"]
    mod shutdown;
    shutdown::on_signals(server.handle())?;
    println!("chat on http://{}/", server.local_addr()?);
    server.run(Chat)
}
