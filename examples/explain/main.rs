//! `explain`: WebSocket bytes annotated field by field, with the RFC 6455 rule behind each.
//!
//! ```sh
//! cargo run --example explain -- 81 85 37 fa 21 3d 7f 9f 4d 51 58
//! cargo run --example explain -- --from client 81 05 48 65 6c 6c 6f    # breaks §5.1
//! printf 'GET /chat HTTP/1.1\r\nHost: x\r\n\r\n' | cargo run --example explain
//! cargo run --example explain -- --example fragmented-hello
//! cargo run --example explain -- --list
//! ```
//!
//! Input: hex on the command line (`81 05`, `0x81,0x05`, `\x81\x05` and `8105` all work), or
//! on stdin either hex or raw bytes, told apart by whether it is all hex (`--hex` and `--raw`
//! force one). An HTTP request or response is read as the opening handshake, and what
//! follows it as frames. Malformed input is explained, not refused: the annotation says
//! which rule it breaks and what the receiver answers (a close code, or an HTTP status).
//!
//! Options:
//! - `--from client|server`: who sent the bytes, which decides the masking rule (§5.1); by
//!   default taken from the input (a request is the client's, a response the server's, and a
//!   first frame with MASK set the client's).
//! - `--key KEY` (and `--protocol P` for each subprotocol the client offered): the client's
//!   `Sec-WebSocket-Key`, to check a response's `Sec-WebSocket-Accept`.
//!
//! The annotation itself lives in `annotate.rs`, shared with the `tap` example, the tests
//! (tests/learners.rs) and the byte dumps of docs/PROTOCOL.md.

mod annotate;

use std::io::Read as _;
use std::process::ExitCode;

use annotate::{Annotator, Sender};

const USAGE: &str = "usage: explain [--from client|server] [--key KEY [--protocol P]...] \
                     [--hex | --raw] [HEX...]\n       explain --example NAME\n       \
                     explain --list";

enum Input {
    Auto,
    Hex,
    Raw,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("explain: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut from = None;
    let mut key = None;
    let mut protocols = Vec::new();
    let mut input = Input::Auto;
    let mut hex = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--list" => {
                for example in annotate::examples() {
                    println!("{:<26} {}", example.name, example.about);
                }
                return ExitCode::SUCCESS;
            }
            "--example" => {
                let Some(name) = args.next() else {
                    return fail("--example needs a name (--list shows them)");
                };
                return match annotate::example(&name) {
                    Some(example) => {
                        print!("{}", example.explain());
                        ExitCode::SUCCESS
                    }
                    None => fail(&format!("no example called {name:?} (--list shows them)")),
                };
            }
            "--from" => match args.next().as_deref() {
                Some("client") => from = Some(Sender::Client),
                Some("server") => from = Some(Sender::Server),
                _ => return fail("--from takes client or server"),
            },
            "--key" => match args.next() {
                Some(k) => key = Some(k),
                None => return fail("--key needs the client's Sec-WebSocket-Key"),
            },
            "--protocol" => match args.next() {
                Some(p) => protocols.push(p),
                None => return fail("--protocol needs a subprotocol name"),
            },
            "--hex" => input = Input::Hex,
            "--raw" => input = Input::Raw,
            other if other.starts_with("--") => return fail(&format!("unknown option {other}")),
            _ => hex.push(arg),
        }
    }

    let bytes = if !hex.is_empty() {
        match annotate::parse_hex(&hex.join(" ")) {
            Ok(bytes) => bytes,
            Err(e) => return fail(&format!("bad hex: {e}")),
        }
    } else {
        let mut stdin = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
            return fail(&format!("cannot read stdin: {e}"));
        }
        let as_hex = match input {
            Input::Hex => true,
            Input::Raw => false,
            Input::Auto => annotate::looks_like_hex(&stdin),
        };
        if as_hex {
            match annotate::parse_hex(&String::from_utf8_lossy(&stdin)) {
                Ok(bytes) => bytes,
                Err(e) => return fail(&format!("bad hex on stdin: {e}")),
            }
        } else {
            stdin
        }
    };
    if bytes.is_empty() {
        return fail("no bytes to explain");
    }

    let mut annotator = Annotator::new(from);
    if let Some(key) = key {
        annotator.expect_key(&key, &protocols);
    }
    print!("{}", annotator.push(&bytes));
    print!("{}", annotator.finish());
    ExitCode::SUCCESS
}
