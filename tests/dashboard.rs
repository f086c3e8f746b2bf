//! The dashboard example, safe to expose (issue 19): every cross-site request of the issue is
//! refused, over real sockets, by the very binary people run. And the application API shown
//! on it (issue 16): shop pages on topics (with two event loops), the token on upgrades in
//! each of its three places, `--allow-origin`, `HEAD /`.
//!
//! Each test starts `target/<profile>/examples/dashboard` on a free port of 127.0.0.1 (`cargo
//! test` builds it; `cargo test --test dashboard` alone does not, so build it first with
//! `cargo build --example dashboard`), reads the address it prints, captures its log
//! (`RUST_LOG=info`), and kills it by its PID when the test ends, passed or failed.
//!
//! The rules themselves (`examples/dashboard/access.rs`) are included by path and checked
//! directly too, on requests parsed by wsloop's own parser.

#[path = "../examples/dashboard/access.rs"]
mod access;

#[path = "support/example_binary.rs"]
mod example_binary;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use access::{preview, Access, Allowed, AllowedOrigin, Refusal};
use example_binary::example_binary;
use wsloop::client::Client;
use wsloop::handshake::{Limits, Request, RequestParser};

/// How long anything may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// A running dashboard process; killed (by its PID) and reaped when dropped.
struct Dashboard {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Dashboard {
    fn start(args: &[&str]) -> Dashboard {
        let mut child = Command::new(example_binary(
            "dashboard",
            &["examples/dashboard", "examples/common"],
        ))
        .arg("127.0.0.1:0")
        .args(args)
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dashboard example");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Both pipes are drained to the end, so the child never blocks on a full pipe.
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("dashboard on http://") {
                    let addr = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let sink = log.clone();
        thread::spawn(move || {
            // Lines as bytes: a test must see an over-long or non-UTF-8 line, not lose it.
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                sink.lock().unwrap().push(text);
                line.clear();
            }
        });
        let mut dashboard = Dashboard {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
        };
        // From here on, a failure drops `dashboard`, which kills the child.
        let addr = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "the dashboard printed no address; its log:\n{}",
                dashboard.log.lock().unwrap().join("\n")
            )
        });
        dashboard.addr = addr.parse().expect("an address");
        dashboard
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The first log line containing `needle`, waiting for it up to `WAIT`.
    fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                start.elapsed() < WAIT,
                "no log line with {needle:?}; the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_has(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Whether the log gets a line with `needle` within a few seconds: the child's stderr is
    /// read by another thread, so a line may arrive after the answer it explains.
    fn log_gets(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log_has(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Raw HTTP: `METHOD path` with these header lines (a `Host` is not added) and body;
    /// the status and the whole answer.
    fn http(&self, method: &str, path: &str, headers: &[String], body: &str) -> (u16, String) {
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        (status_of(&out), out)
    }

    /// A POST as a page on `origin` (or curl, with `None`) would send it, `Host` correct.
    fn post(
        &self,
        path: &str,
        origin: Option<&str>,
        extra: &[String],
        body: &str,
    ) -> (u16, String) {
        let mut headers = vec![self.host()];
        if let Some(origin) = origin {
            headers.push(format!("Origin: {origin}"));
        }
        headers.extend(extra.iter().cloned());
        self.http("POST", path, &headers, body)
    }

    fn host(&self) -> String {
        format!("Host: 127.0.0.1:{}", self.port())
    }

    /// The dashboard's own origin, as its page sends it.
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// A WebSocket upgrade for `/ws/{sid}` with these header lines; the status, and the
    /// socket when it is 101.
    fn upgrade(&self, sid: &str, headers: &[String]) -> (u16, Option<TcpStream>) {
        let (head, socket) = self.upgrade_head(sid, headers);
        (status_of(&head), socket)
    }

    /// A WebSocket upgrade for `/ws/{sid}` (a query may follow the sid) with these header
    /// lines; the answer's head, and the socket when it is 101.
    fn upgrade_head(&self, sid: &str, headers: &[String]) -> (String, Option<TcpStream>) {
        let mut request = format!(
            "GET /ws/{sid} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        // The head byte by byte, so that no frame after it is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).unwrap() {
                0 => break,
                _ => head.push(byte[0]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = status_of(&head);
        (head, (status == 101).then_some(s))
    }

    /// An upgrade as the dashboard's own page sends it.
    fn open_page(&self, sid: &str) -> TcpStream {
        self.open_page_with(sid, "", &[])
    }

    /// An upgrade as the dashboard's own page sends it, with a query (`?shop=..`, empty for
    /// none) and more header lines.
    fn open_page_with(&self, sid: &str, query: &str, extra: &[String]) -> TcpStream {
        let mut headers = vec![self.host(), format!("Origin: {}", self.origin())];
        headers.extend(extra.iter().cloned());
        let (status, socket) = self.upgrade(&format!("{sid}{query}"), &headers);
        assert_eq!(status, 101, "a same-origin upgrade opens");
        self.wait_log(&format!("dashboard {sid} connected"));
        socket.unwrap()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_of(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {response:?}"))
}

/// The next text message on a raw session, skipping control frames; `None` when nothing
/// comes within `within`.
fn next_text(s: &mut TcpStream, within: Duration) -> Option<String> {
    s.set_read_timeout(Some(within)).unwrap();
    loop {
        let mut h = [0u8; 2];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(e) => panic!("session lost: {e}"),
        }
        s.set_read_timeout(Some(WAIT)).unwrap();
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        if h[0] & 0x0f == 0x1 {
            return Some(String::from_utf8(payload).unwrap());
        }
        s.set_read_timeout(Some(within)).unwrap();
    }
}

#[test]
fn upgrades_from_another_origin_are_refused_and_open_no_session() {
    let d = Dashboard::start(&[]);
    let host = d.host();
    for (sid, origin) in [
        ("evil-sid", "https://evil.example"),
        ("null-sid", "null"),
        // Another server on this machine (another port) is another origin.
        ("port-sid", "http://127.0.0.1:1"),
        ("scheme-sid", &format!("ws://127.0.0.1:{}", d.port())),
    ] {
        let (status, _) = d.upgrade(sid, &[host.clone(), format!("Origin: {origin}")]);
        assert_eq!(status, 403, "upgrade with Origin {origin}");
    }
    let (status, _) = d.upgrade(
        "fetch-sid",
        &[host.clone(), "Sec-Fetch-Site: cross-site".into()],
    );
    assert_eq!(status, 403, "upgrade with Sec-Fetch-Site: cross-site");
    // DNS rebinding: evil.example resolves to 127.0.0.1, the page's origin is evil.example.
    let rebound = format!("evil.example:{}", d.port());
    let (status, _) = d.upgrade(
        "rebound-sid",
        &[
            format!("Host: {rebound}"),
            format!("Origin: http://{rebound}"),
        ],
    );
    assert_eq!(status, 421, "upgrade with Host {rebound}");

    // The page's own upgrade opens, from either loopback name; so does one without Origin.
    let mut page = d.open_page("page-sid");
    let (status, _second_page) = d.upgrade(
        "localhost-sid",
        &[
            format!("Host: localhost:{}", d.port()),
            format!("Origin: http://localhost:{}", d.port()),
        ],
    );
    assert_eq!(status, 101);
    d.wait_log("dashboard localhost-sid connected");
    // Through a local proxy (the `tap` example on port 9000), which forwards the head as is.
    let (status, _tapped) = d.upgrade(
        "tapped-sid",
        &[
            "Host: 127.0.0.1:9000".into(),
            "Origin: http://127.0.0.1:9000".into(),
        ],
    );
    assert_eq!(status, 101);
    d.wait_log("dashboard tapped-sid connected");

    // None of the refused upgrades became a session: an alert reaches exactly the three.
    let (status, body) = d.post("/orders/5/remind", None, &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with(r#"{"delivered":3}"#), "{body}");
    assert!(next_text(&mut page, WAIT)
        .unwrap()
        .contains(r#""orderId":5"#));
    for sid in [
        "evil-sid",
        "null-sid",
        "port-sid",
        "scheme-sid",
        "fetch-sid",
        "rebound-sid",
    ] {
        let (status, body) = d.post(&format!("/send/{sid}"), None, &[], "hello");
        assert_eq!(status, 404, "{sid}: {body}");
        assert!(
            !d.log_has(&format!("dashboard {sid} connected")),
            "{sid} connected"
        );
    }
    assert!(d.log_gets(r#"refused: 403, cross-site: Origin "null""#));
}

#[test]
fn cross_site_posts_are_refused_and_deliver_nothing() {
    let d = Dashboard::start(&[]);
    let mut victim = d.open_page("victim");
    let text_plain = vec!["Content-Type: text/plain".to_string()];
    // Simple requests a page on another site can send without a CORS preflight.
    for (path, origin, extra) in [
        (
            "/orders/1/remind",
            Some("https://evil.example"),
            text_plain.clone(),
        ),
        ("/orders/2/placed", Some("null"), text_plain.clone()),
        (
            "/send/victim",
            Some("https://evil.example"),
            text_plain.clone(),
        ),
        (
            "/send/victim",
            Some("http://127.0.0.1:1"),
            text_plain.clone(),
        ),
        // No Origin, but the browser says cross-site (Fetch Metadata).
        (
            "/orders/3/remind",
            None,
            vec!["Sec-Fetch-Site: cross-site".to_string()],
        ),
    ] {
        let (status, body) = d.post(path, origin, &extra, "pwned");
        assert_eq!(status, 403, "POST {path} from {origin:?} {extra:?}: {body}");
        assert!(
            body.ends_with(r#"{"error":"cross-site request refused"}"#),
            "{body}"
        );
    }
    // A POST through a rebound name is refused before its Origin is even read.
    let rebound = format!("evil.example:{}", d.port());
    let (status, _) = d.http(
        "POST",
        "/orders/4/remind",
        &[
            format!("Host: {rebound}"),
            format!("Origin: http://{rebound}"),
        ],
        "",
    );
    assert_eq!(status, 421);

    // curl (no Origin) and the page's own origin still work, and their messages are the first
    // the victim gets: nothing refused above reached it.
    let (status, body) = d.post("/send/victim", None, &text_plain, "from curl");
    assert_eq!(
        (status, body.ends_with(r#"{"delivered":1}"#)),
        (200, true),
        "{body}"
    );
    let same_site = vec!["Sec-Fetch-Site: same-origin".to_string()];
    let (status, body) = d.post("/orders/6/remind", Some(&d.origin()), &same_site, "");
    assert_eq!(
        (status, body.ends_with(r#"{"delivered":1}"#)),
        (200, true),
        "{body}"
    );
    assert_eq!(next_text(&mut victim, WAIT).as_deref(), Some("from curl"));
    let alert = next_text(&mut victim, WAIT).unwrap();
    assert!(alert.contains(r#""type":2,"orderId":6"#), "{alert}");
    // And nothing else follows (bounded wait).
    assert_eq!(next_text(&mut victim, Duration::from_millis(300)), None);
    assert!(
        d.log_gets(r#"POST /send/victim refused: 403, cross-site: Origin "https://evil.example""#)
    );
}

#[test]
fn a_host_that_is_not_allowed_gets_421_even_for_the_page() {
    let d = Dashboard::start(&[
        "--allow-host",
        "dash.example",
        "--allow-host",
        "other.example:81",
    ]);
    let port = d.port();
    let get = |host: Option<&str>| {
        let headers: Vec<String> = host.map(|h| format!("Host: {h}")).into_iter().collect();
        d.http("GET", "/", &headers, "")
    };
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.2:{port}"),
        format!("127.0.0.1:+{port}"),
        format!("evil.example@127.0.0.1:{port}"),
        "other.example:82".to_string(),
        "localhost.evil.example".to_string(),
    ] {
        let (status, body) = get(Some(&host));
        assert_eq!(status, 421, "Host {host}");
        assert!(!body.contains("<html"), "the page went to Host {host}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        // A local proxy (the `tap` example) forwards the Host of its own port.
        "127.0.0.1:9000".to_string(),
        "localhost".to_string(),
        "dash.example".to_string(),
        "dash.example:8443".to_string(),
        "other.example:81".to_string(),
    ] {
        let (status, body) = get(Some(&host));
        assert_eq!(status, 200, "Host {host}");
        assert!(body.contains("<html"), "no page for Host {host}");
    }
    // RFC 9112 §3.2: no Host, or two, is a bad request.
    assert_eq!(get(None).0, 400);
    let two = [d.host(), "Host: evil.example".to_string()];
    assert_eq!(d.http("GET", "/", &two, "").0, 400);
    assert!(d.log_gets(r#"GET / refused: 421, Host "evil.example" is not allowed"#));
}

#[test]
fn with_a_token_every_post_needs_it_and_the_page_still_works() {
    let d = Dashboard::start(&["--token", "s3cret-T0ken"]);
    // The page passes on the token it was loaded with (`/?token=..`).
    let mut page = d.open_page_with("page", "?token=s3cret-T0ken", &[]);
    for auth in [
        None,
        Some("Authorization: Bearer wrong"),
        Some("Authorization: Bearer s3cret-T0ke"),
        Some("Authorization: Basic s3cret-T0ken"),
        Some("Authorization: s3cret-T0ken"),
    ] {
        let extra: Vec<String> = auth.map(str::to_string).into_iter().collect();
        let (status, body) = d.post("/orders/7/remind", None, &extra, "");
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("WWW-Authenticate: Bearer\r\n"), "{body}");
        let (status, _) = d.post("/send/page", None, &extra, "no");
        assert_eq!(status, 401, "{auth:?}");
    }
    let good = vec!["Authorization: bearer s3cret-T0ken".to_string()];
    let (status, body) = d.post("/send/page", None, &good, "with token");
    assert_eq!(
        (status, body.ends_with(r#"{"delivered":1}"#)),
        (200, true),
        "{body}"
    );
    assert_eq!(next_text(&mut page, WAIT).as_deref(), Some("with token"));
    // The token does not excuse a cross-site request.
    let (status, _) = d.post("/send/page", Some("https://evil.example"), &good, "no");
    assert_eq!(status, 403);
    // The page itself needs no token.
    let (status, body) = d.http("GET", "/", &[d.host()], "");
    assert_eq!(status, 200);
    assert!(body.contains("<html"));
    assert_eq!(next_text(&mut page, Duration::from_millis(200)), None);
}

#[test]
fn a_one_megabyte_message_is_logged_as_one_short_escaped_line() {
    let d = Dashboard::start(&[]);
    let url = format!("ws://{}/ws/big", d.addr);
    let mut client = Client::connect(&url).unwrap();
    d.wait_log("dashboard big connected");
    let message = format!(
        "line1\nline2 \"quoted\" \u{1b}[31m{}",
        "x".repeat(1_000_000)
    );
    client.send_text(&message).unwrap();
    let line = d.wait_log(&format!("from big: {} bytes of text", message.len()));
    assert!(
        line.contains(r#""line1\nline2 \"quoted\" \u{1b}[31mxxx"#),
        "{line}"
    );
    assert!(line.ends_with("…\""), "{line}");
    // A long sid, logged by the dashboard, is cut as well.
    let long_sid = "s".repeat(1000);
    let _long = Client::connect(&format!("ws://{}/ws/{long_sid}", d.addr)).unwrap();
    d.wait_log(&format!("dashboard {}… connected", "s".repeat(64)));
    client.close(wsloop::CloseCode::NormalClosure, "").unwrap();
    d.wait_log("dashboard big disconnected");
    let log = d.log.lock().unwrap();
    assert!(
        !log.iter().any(|l| l.starts_with("line2")),
        "a raw newline reached the log"
    );
    let mut dashboard_lines = 0;
    for line in log.iter().filter(|l| l.contains(" dashboard] ")) {
        dashboard_lines += 1;
        assert!(
            line.len() <= 300,
            "a {}-byte log line: {}…",
            line.len(),
            preview(line, 200)
        );
    }
    assert!(dashboard_lines >= 4, "{log:?}");
}

/// The `"delivered"` count of a POST's answer.
fn delivered(body: &str) -> usize {
    let (_, rest) = body
        .split_once(r#"{"delivered":"#)
        .unwrap_or_else(|| panic!("no delivered count: {body}"));
    rest.trim_end_matches('}').parse().unwrap()
}

#[test]
fn shop_pages_get_their_shops_orders_only_across_two_loops() {
    let d = Dashboard::start(&["--workers", "2"]);
    let mut shop_a: Vec<TcpStream> = ["a1", "a2", "a3", "a4"]
        .iter()
        .map(|sid| d.open_page_with(sid, "?shop=A-1", &[]))
        .collect();
    let mut shop_b = d.open_page_with("b1", "?shop=b_2", &[]);
    let mut plain = d.open_page("plain");
    assert!(d.log_has("dashboard a1 connected (") && d.log_has("shop A-1"));

    let (status, body) = d.post("/shops/A-1/orders/9/placed", None, &[], "");
    assert_eq!(status, 200, "{body}");
    // Counted like /orders: the pages of the loop that took the POST. Loop 0 hands each
    // connection to the loop with the fewest, so the four are on both loops; the other
    // loop's get the alert through its queue, uncounted.
    assert!((1..=4).contains(&delivered(&body)), "{body}");
    let alert = r#"{"type":1,"orderId":9,"content":"订单号：9"}"#;
    for page in &mut shop_a {
        assert_eq!(next_text(page, WAIT).as_deref(), Some(alert));
    }
    assert_eq!(next_text(&mut shop_b, Duration::from_millis(300)), None);
    assert_eq!(next_text(&mut plain, Duration::from_millis(100)), None);

    let (status, body) = d.post("/shops/b_2/orders/10/remind", None, &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(delivered(&body) <= 1, "{body}");
    let remind = r#"{"type":2,"orderId":10,"content":"订单号：10"}"#;
    assert_eq!(next_text(&mut shop_b, WAIT).as_deref(), Some(remind));
    for page in &mut shop_a {
        assert_eq!(next_text(page, Duration::from_millis(100)), None);
    }

    // The existing route still reaches every page, shop or not.
    let (status, _) = d.post("/orders/11/remind", None, &[], "");
    assert_eq!(status, 200);
    for page in shop_a.iter_mut().chain([&mut shop_b, &mut plain]) {
        let got = next_text(page, WAIT).unwrap();
        assert!(got.contains(r#""orderId":11"#), "{got}");
    }

    // A shop without pages: delivered to none. Bad shop ids: 400, and no session.
    let (status, body) = d.post("/shops/nobody/orders/12/placed", None, &[], "");
    assert_eq!((status, delivered(&body)), (200, 0), "{body}");
    let long = "s".repeat(65);
    for path in [
        "/shops/a%20b/orders/1/placed".to_string(),
        format!("/shops/{long}/orders/1/placed"),
        "/shops/A-1/orders/x/placed".to_string(),
    ] {
        let (status, body) = d.post(&path, None, &[], "");
        assert_eq!(status, 400, "{path}: {body}");
    }
    let (status, _) = d.http("GET", "/shops/A-1/orders/1/placed", &[d.host()], "");
    assert_eq!(status, 405);
    let (status, _) = d.upgrade(
        "bad-shop?shop=a%0Ab",
        &[d.host(), format!("Origin: {}", d.origin())],
    );
    assert_eq!(status, 400);
    assert!(d.log_gets(r#"upgrade to /ws/bad-shop refused: 400, bad shop id "a\nb""#));
}

#[test]
fn a_shop_post_answers_how_many_of_its_pages_it_reached() {
    let d = Dashboard::start(&[]);
    let mut pages: Vec<TcpStream> = ["x1", "x2"]
        .iter()
        .map(|sid| d.open_page_with(sid, "?shop=7", &[]))
        .collect();
    let _other = d.open_page_with("y1", "?shop=8", &[]);
    let (status, body) = d.post("/shops/7/orders/44/placed", None, &[], "");
    assert_eq!(
        (status, body.ends_with(r#"{"delivered":2}"#)),
        (200, true),
        "{body}"
    );
    for page in &mut pages {
        assert!(next_text(page, WAIT).unwrap().contains(r#""orderId":44"#));
    }
    // A page that leaves leaves its shop's topic.
    drop(pages.pop());
    d.wait_log("dashboard x2 disconnected");
    let (_, body) = d.post("/shops/7/orders/45/placed", None, &[], "");
    assert!(body.ends_with(r#"{"delivered":1}"#), "{body}");
}

#[test]
fn with_a_token_upgrades_need_it_in_the_query_a_header_or_a_cookie() {
    let token = "s3cret+T0ken/=";
    let d = Dashboard::start(&["--token", token]);
    let page = |extra: &[&str]| {
        let mut headers = vec![d.host(), format!("Origin: {}", d.origin())];
        headers.extend(extra.iter().map(|h| h.to_string()));
        headers
    };
    for (sid, extra) in [
        ("none", vec![]),
        ("q-wrong?token=s3cret", vec![]),
        // `+` in a query is a space (form encoding): not the token.
        ("q-plus?token=s3cret+T0ken/=", vec![]),
        ("h-wrong", vec!["Authorization: Bearer s3cret+T0ken"]),
        ("h-basic", vec!["Authorization: Basic s3cret+T0ken/="]),
        ("c-wrong", vec!["Cookie: token=nope; other=s3cret+T0ken/="]),
    ] {
        let (head, socket) = d.upgrade_head(sid, &page(&extra));
        assert_eq!(status_of(&head), 401, "{sid} {extra:?}: {head}");
        assert!(head.contains("WWW-Authenticate: Bearer\r\n"), "{head}");
        assert!(socket.is_none());
    }
    let mut opened = Vec::new();
    for (sid, query, extra) in [
        ("q", "?token=s3cret%2BT0ken%2F%3D", None),
        ("h", "", Some("Authorization: Bearer s3cret+T0ken/=")),
        ("c", "", Some("Cookie: theme=dark; token=s3cret+T0ken/=")),
    ] {
        let extra: Vec<String> = extra.map(str::to_string).into_iter().collect();
        opened.push((sid, d.open_page_with(sid, query, &extra)));
    }
    // Each of the three is a session: a message to each arrives.
    for (sid, socket) in &mut opened {
        let (status, body) = d.post(
            &format!("/send/{sid}"),
            None,
            &[format!("Authorization: Bearer {token}")],
            "hi",
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(next_text(socket, WAIT).as_deref(), Some("hi"));
    }
    // The token does not excuse a page on another origin.
    let (status, _) = d.upgrade(
        "evil?token=s3cret%2BT0ken%2F%3D",
        &[d.host(), "Origin: https://evil.example".into()],
    );
    assert_eq!(status, 403);
    assert!(d.log_gets("upgrade to /ws/none refused: 401, no or wrong bearer token"));
    for sid in [
        "none", "q-wrong", "q-plus", "h-wrong", "h-basic", "c-wrong", "evil",
    ] {
        assert!(!d.log_has(&format!("dashboard {sid} connected")), "{sid}");
    }
}

#[test]
fn a_foreign_origin_is_refused_unless_allowed_with_allow_origin() {
    let d = Dashboard::start(&[
        "--allow-origin",
        "https://Admin.Example.com",
        "--allow-origin",
        "http://127.0.0.1:7000/",
    ]);
    let from = |origin: &str, extra: &[&str]| {
        let mut headers = vec![d.host(), format!("Origin: {origin}")];
        headers.extend(extra.iter().map(|h| h.to_string()));
        headers
    };
    // An allowed page on another site: the browser says cross-site, and that is the point.
    let (status, _admin) = d.upgrade(
        "admin",
        &from("https://admin.example.com", &["Sec-Fetch-Site: cross-site"]),
    );
    assert_eq!(status, 101);
    let (status, _local) = d.upgrade("local", &from("http://127.0.0.1:7000", &[]));
    assert_eq!(status, 101);
    for origin in [
        "https://admin.example.com:444",
        "http://admin.example.com",
        "https://evil.example",
        "http://127.0.0.1:7001",
    ] {
        let (status, _) = d.upgrade("foreign", &from(origin, &[]));
        assert_eq!(status, 403, "{origin}");
    }
    assert!(d.log_gets(
        r#"upgrade to /ws/foreign refused: 403, cross-site: Origin "https://evil.example""#
    ));
    assert!(!d.log_has("dashboard foreign connected"));
    // POSTs from an allowed page pass too.
    let (status, body) = d.post(
        "/orders/3/placed",
        Some("https://admin.example.com"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        d.log_gets("pages also allowed from: https://admin.example.com:443, http://127.0.0.1:7000")
    );

    // A value that is not an origin is refused at startup.
    let out = Command::new(example_binary(
        "dashboard",
        &["examples/dashboard", "examples/common"],
    ))
    .args(["127.0.0.1:0", "--allow-origin", "ftp://files.example"])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--allow-origin needs http(s)://NAME[:PORT]"),
        "{stderr}"
    );
}

#[test]
fn head_answers_like_get_without_the_page() {
    let d = Dashboard::start(&[]);
    for path in ["/", "/index.html"] {
        let (status, get) = d.http("GET", path, &[d.host()], "");
        assert_eq!(status, 200);
        let (get_head, page) = get.split_once("\r\n\r\n").unwrap();
        assert!(page.contains("<html"));
        assert!(get_head.contains(&format!("Content-Length: {}\r\n", page.len())));
        let (status, head) = d.http("HEAD", path, &[d.host()], "");
        assert_eq!(status, 200);
        assert_eq!(head, format!("{get_head}\r\n\r\n"), "HEAD {path}");
    }
    // HEAD goes through the Host check like GET.
    let (status, head) = d.http("HEAD", "/", &["Host: evil.example".into()], "");
    assert_eq!(status, 421);
    assert!(head.ends_with("\r\n\r\n"), "no body: {head}");
}

// --- The rules of access.rs, on requests parsed by wsloop's own parser -------------------------

fn request(method: &str, headers: &[&str]) -> Request {
    let mut text = format!("{method} /orders/1/remind HTTP/1.1\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    RequestParser::new(Limits::default())
        .push(text.as_bytes())
        .unwrap()
        .unwrap()
        .0
}

fn access(bound: &str, extra: &[&str], token: Option<&str>) -> Access {
    let extra: Vec<Allowed> = extra.iter().map(|e| Allowed::parse(e).unwrap()).collect();
    Access::new(
        bound.parse().unwrap(),
        &extra,
        &[],
        token.map(str::to_string),
    )
}

#[test]
fn hosts_match_by_name_and_port() {
    let a = access("192.0.2.7:8080", &["Dash.Example"], None);
    let status = |host: &str| {
        a.check_http(&request("GET", &[&format!("Host: {host}")]))
            .map_err(|r| r.status())
    };
    for ok in [
        "localhost:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
        "192.0.2.7:8080",
        "dash.example",
    ] {
        assert_eq!(status(ok), Ok(()), "{ok}");
    }
    assert_eq!(
        status("DASH.example:1"),
        Ok(()),
        "a name without a port allows any port"
    );
    // Loopback names on any port: a local proxy; no attacker's DNS gives these names.
    assert_eq!(status("localhost:9000"), Ok(()));
    assert_eq!(status("127.0.0.1"), Ok(()));
    for bad in [
        "192.0.2.7:8081",
        "192.0.2.7",
        "evil.example:8080",
        "127.0.0.1:8080:8080",
        "127.0.0.1:",
        "127.0.0.1:99999",
        "[::1",
        "[::1]8080",
        "[evil]:8080",
        "",
        "dash.example.evil.example",
    ] {
        assert_eq!(status(bad), Err(421), "{bad:?}");
    }
    // Bound to every address: 0.0.0.0 is no name to use.
    let any = access("0.0.0.0:8080", &[], None);
    let req = request("GET", &["Host: 0.0.0.0:8080"]);
    assert!(matches!(any.check_http(&req), Err(Refusal::WrongHost(_))));
    assert_eq!(
        a.hosts(),
        "localhost (any port), 127.0.0.1 (any port), [::1] (any port), 192.0.2.7:8080, \
         dash.example (any port)"
    );
    assert!(!a.has_token());
    let local = access("127.0.0.1:8080", &[], Some("t"));
    assert_eq!(
        local.hosts(),
        "localhost (any port), 127.0.0.1 (any port), [::1] (any port)"
    );
    assert!(local.has_token());
    // IPv6 binds are named in brackets.
    let v6 = access("[::1]:9000", &[], None);
    assert_eq!(
        v6.check_http(&request("GET", &["Host: [::1]:9000"])),
        Ok(())
    );
    assert!(Allowed::parse("bad name").is_err());
    assert!(Allowed::parse("name:port").is_err());
}

#[test]
fn origins_must_be_the_requests_own_or_an_allowed_name() {
    let a = access("127.0.0.1:8080", &["dash.example"], Some("tok"));
    let check = |method: &str, extra: &[&str]| {
        let mut headers = vec!["Host: 127.0.0.1:8080", "Authorization: Bearer tok"];
        headers.extend_from_slice(extra);
        a.check_http(&request(method, &headers))
            .map_err(|r| r.status())
    };
    assert_eq!(check("POST", &[]), Ok(()), "curl sends no Origin");
    // The request's own origin, and the --allow-host names (a proxy that rewrites Host).
    for ok in [
        "http://127.0.0.1:8080",
        "HTTPS://127.0.0.1:8080",
        "https://dash.example",
    ] {
        assert_eq!(check("POST", &[&format!("Origin: {ok}")]), Ok(()), "{ok}");
    }
    for bad in [
        "null",
        "https://evil.example",
        // Another server on this machine, or this one under another name: other origins.
        "http://127.0.0.1:3000",
        "http://localhost:8080",
        "http://127.0.0.1",
        "https://127.0.0.1:8080:1",
        "ws://127.0.0.1:8080",
        "file://",
        "http://127.0.0.1:8080/path",
        "http://user@127.0.0.1:8080",
    ] {
        assert_eq!(
            check("POST", &[&format!("Origin: {bad}")]),
            Err(403),
            "{bad}"
        );
        // GET changes nothing: only Host is checked.
        assert_eq!(check("GET", &[&format!("Origin: {bad}")]), Ok(()), "{bad}");
    }
    let two = [
        "Origin: http://127.0.0.1:8080",
        "Origin: http://127.0.0.1:8080",
    ];
    assert_eq!(check("POST", &two), Err(403));
    assert_eq!(check("POST", &["Sec-Fetch-Site: Cross-Site"]), Err(403));
    assert_eq!(check("POST", &["Sec-Fetch-Site: same-origin"]), Ok(()));
    // Upgrades: the same Origin rule, and no token.
    let upgrade = |headers: &[&str]| {
        a.check_upgrade(&request("GET", headers))
            .map_err(|r| r.status())
    };
    assert_eq!(
        upgrade(&["Host: 127.0.0.1:8080", "Origin: http://127.0.0.1:8080"]),
        Ok(())
    );
    assert_eq!(upgrade(&["Host: 127.0.0.1:8080", "Origin: null"]), Err(403));
    assert_eq!(
        upgrade(&["Host: evil.example", "Origin: http://127.0.0.1:8080"]),
        Err(421)
    );
    // Behind the `tap` proxy on port 9000, the page's origin is the proxy's.
    let tapped = ["Host: 127.0.0.1:9000", "Origin: http://127.0.0.1:9000"];
    assert_eq!(upgrade(&tapped), Ok(()));
    let mixed = ["Host: 127.0.0.1:9000", "Origin: http://127.0.0.1:8080"];
    assert_eq!(upgrade(&mixed), Err(403));
    // Without a port, Host and Origin stand for the scheme's default one.
    assert_eq!(
        upgrade(&["Host: localhost", "Origin: http://localhost:80"]),
        Ok(())
    );
    assert_eq!(
        upgrade(&["Host: localhost", "Origin: https://localhost"]),
        Ok(())
    );
    assert_eq!(
        upgrade(&["Host: localhost", "Origin: http://localhost:8080"]),
        Err(403)
    );
}

#[test]
fn allowed_origins_parse_as_origins_and_admit_exactly_themselves() {
    for bad in [
        "ftp://x",
        "null",
        "https://",
        "https://a b",
        "https://x/path",
        "x",
    ] {
        assert!(AllowedOrigin::parse(bad).is_err(), "{bad}");
    }
    let origins: Vec<AllowedOrigin> = ["https://Admin.example", "http://10.0.0.5:8000/"]
        .iter()
        .map(|o| AllowedOrigin::parse(o).unwrap())
        .collect();
    let a = Access::new("127.0.0.1:8080".parse().unwrap(), &[], &origins, None);
    // Kept as origins, the default port filled in, for the startup log line.
    assert_eq!(
        a.origins(),
        "https://admin.example:443, http://10.0.0.5:8000"
    );
    let upgrade = |origin: &str, extra: &[&str]| {
        let origin = format!("Origin: {origin}");
        let mut headers = vec!["Host: 127.0.0.1:8080", origin.as_str()];
        headers.extend(extra);
        a.check_upgrade(&request("GET", &headers))
            .map_err(|r| r.status())
    };
    assert_eq!(upgrade("https://admin.example", &[]), Ok(()));
    assert_eq!(
        upgrade("https://admin.example:443", &["Sec-Fetch-Site: cross-site"]),
        Ok(())
    );
    assert_eq!(upgrade("http://10.0.0.5:8000", &[]), Ok(()));
    for other in [
        "http://admin.example",
        "https://admin.example:8443",
        "http://10.0.0.5",
    ] {
        assert_eq!(upgrade(other, &[]), Err(403), "{other}");
    }
    // Two Origin headers are never one allowed origin.
    assert_eq!(
        upgrade("https://admin.example", &["Origin: https://admin.example"]),
        Err(403)
    );
    // The Host rule still comes first.
    let rebound = ["Host: evil.example", "Origin: https://admin.example"];
    assert_eq!(
        a.check_upgrade(&request("GET", &rebound))
            .map_err(|r| r.status()),
        Err(421)
    );
}

#[test]
fn an_upgrade_token_may_be_any_one_of_the_offered_ones() {
    let a = access("127.0.0.1:8080", &[], Some("tok-1"));
    assert_eq!(a.check_upgrade_token(["tok-1"]), Ok(()));
    assert_eq!(a.check_upgrade_token(["nope", "tok-1"]), Ok(()));
    for bad in [&[][..], &["tok-"][..], &["tok-12", "TOK-1"][..]] {
        assert_eq!(
            a.check_upgrade_token(bad.iter().copied()),
            Err(Refusal::NoToken)
        );
    }
    // Without --token, upgrades need none.
    let open = access("127.0.0.1:8080", &[], None);
    assert_eq!(open.check_upgrade_token([]), Ok(()));
}

#[test]
fn the_token_is_a_bearer_token_compared_whole() {
    let a = access("127.0.0.1:8080", &[], Some("tok-1"));
    let check = |auth: Option<&str>| {
        let auth = auth.map(|v| format!("Authorization: {v}"));
        let mut headers = vec!["Host: 127.0.0.1:8080"];
        headers.extend(auth.as_deref());
        a.check_http(&request("POST", &headers))
    };
    assert_eq!(check(Some("Bearer tok-1")), Ok(()));
    assert_eq!(check(Some("BEARER  tok-1")), Ok(()));
    for bad in [
        None,
        Some("Bearer tok-"),
        Some("Bearer tok-12"),
        Some("Basic tok-1"),
        Some("tok-1"),
    ] {
        let refusal = check(bad).unwrap_err();
        assert_eq!(refusal, Refusal::NoToken, "{bad:?}");
        let response = refusal.response();
        assert_eq!(response.status, 401);
        assert!(response
            .headers
            .iter()
            .any(|(n, v)| n == "WWW-Authenticate" && v == "Bearer"));
    }
    // Without --token, POSTs need none.
    let open = access("127.0.0.1:8080", &[], None);
    assert_eq!(
        open.check_http(&request("POST", &["Host: 127.0.0.1:8080"])),
        Ok(())
    );
}

#[test]
fn previews_are_escaped_and_bounded() {
    assert_eq!(preview("hello 你好", 64), "hello 你好");
    assert_eq!(preview("a\nb\"c\u{1b}", 64), r#"a\nb\"c\u{1b}"#);
    let long = preview(&"\n".repeat(1_000_000), 64);
    assert_eq!(long, format!("{}…", r"\n".repeat(32)));
    // Never more than the bound plus the ellipsis, whatever the characters.
    for text in ["x".repeat(100), "\u{1b}".repeat(100), "你".repeat(100)] {
        let p = preview(&text, 64);
        assert!(p.len() <= 64 + '…'.len_utf8(), "{p}");
        assert!(p.ends_with('…'));
    }
}
