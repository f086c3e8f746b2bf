//! Shared pieces of the end-to-end benchmark: the wire bytes the load generator sends and
//! expects, the file-descriptor limit, and small argument helpers.
//!
//! The load generator never runs a WebSocket library: it writes frames encoded (and masked)
//! once before the run, and checks the server's replies by comparing the byte stream with the
//! frames it expects back. A binary message of `n` bytes has exactly one encoding from a
//! server (unmasked, FIN set, the shortest length form: RFC 6455 §5.2), so a byte comparison
//! checks the framing and every payload byte at once.
//!
//! Row 8 (permessage-deflate) is the exception: compressed replies depend on the server's
//! compression context, so [`pmd`] parses and inflates them before comparing.

use std::io;

pub mod pmd;

/// The `Sec-WebSocket-Key` every client sends (the RFC's sample nonce) ...
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// ... and the `Sec-WebSocket-Accept` a correct server answers with (RFC 6455 §1.3).
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcode of a binary frame with FIN set.
pub const BINARY_FIN: u8 = 0x82;
/// Opcode of a Close frame with FIN set.
pub const CLOSE_FIN: u8 = 0x88;

/// Raise the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// CPU time (user + system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) that process `pid` and all its threads have used, in seconds.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_seconds(&stat).map(|(_, secs)| secs)
}

/// The command name and CPU time (user + system, seconds) in a `/proc/.../stat` line.
fn stat_cpu_seconds(stat: &str) -> Option<(String, f64)> {
    // Fields after the command name (which may hold spaces) start at field 3, `state`;
    // utime and stime are fields 14 and 15.
    let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((name.to_string(), (utime + stime) / ticks))
}

/// Every thread of process `pid`: `(thread id, thread name, CPU seconds so far)`, from
/// `/proc/PID/task/TID/stat`.
pub fn proc_threads_cpu_seconds(pid: u32) -> Vec<(u32, String, f64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Vec<(u32, String, f64)> = dir
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, secs) = stat_cpu_seconds(&stat)?;
            Some((tid, name, secs))
        })
        .collect();
    threads.sort_by_key(|t| t.0);
    threads
}

/// Busy time of each CPU so far, in seconds (from `/proc/stat`: user, nice, system, irq,
/// softirq and steal time), indexed by CPU number.
pub fn cores_busy_seconds() -> Vec<f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0.0))
                .collect();
            let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
            // user nice system idle iowait irq softirq steal
            (at(0) + at(1) + at(2) + at(5) + at(6) + at(7)) / ticks
        })
        .collect()
}

/// The resident set size of process `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A frame header: FIN set, `opcode`, `len` in the shortest form, masked with `mask` if given.
pub fn frame_header(first_byte: u8, len: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut header = vec![first_byte];
    if len < 126 {
        header.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        header.push(mask_bit | 126);
        header.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        header.push(mask_bit | 127);
        header.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        header.extend_from_slice(&key);
    }
    header
}

/// A client frame: header, key, payload masked with the key (RFC 6455 §5.3).
pub fn client_frame(first_byte: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut frame = frame_header(first_byte, payload.len(), Some(key));
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    frame
}

/// A server frame: header and the payload as is.
pub fn server_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame_header(first_byte, payload.len(), None);
    frame.extend_from_slice(payload);
    frame
}

/// `len` bytes that differ from one `seed` to the next everywhere, not only in a prefix, so
/// that a server echoing a stale or shared buffer fails the comparison.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    // xorshift64*: cheap and good enough to make every message distinct.
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A masking key for frame `i` (never all zero, so masking is really exercised).
pub fn mask_key(i: u64) -> [u8; 4] {
    let k = (i as u32).wrapping_mul(0x9e37_79b1) ^ 0xa5c3_5a3c;
    k.to_le_bytes()
}

/// The opening handshake request for `path` (RFC 6455 §4.1).
pub fn upgrade_request(host: &str, path: &str) -> Vec<u8> {
    upgrade_request_with(host, path, "")
}

/// The same with `extra` header lines (each ending in `\r\n`) before the blank line.
pub fn upgrade_request_with(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Checks a complete response head: `101` and the right `Sec-WebSocket-Accept`.
pub fn check_upgrade_response(head: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let status_ok = text.starts_with("HTTP/1.1 101");
    let accept_ok = text.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == WS_ACCEPT
        })
    });
    if status_ok && accept_ok {
        Ok(())
    } else {
        Err(format!("bad upgrade response: {text:?}"))
    }
}

/// Where the response head ends (the index after `\r\n\r\n`), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Command-line options as `--name value` pairs and bare `--flag`s.
#[derive(Debug, Default)]
pub struct Args {
    pairs: Vec<(String, Option<String>)>,
}

impl Args {
    /// Parse `args` (without the program and subcommand).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Args {
        let mut pairs: Vec<(String, Option<String>)> = Vec::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                eprintln!("ignoring stray argument {arg:?}");
                continue;
            };
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next(),
                _ => None,
            };
            pairs.push((name.to_string(), value));
        }
        Args { pairs }
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// The value of `--name` parsed, or `default`; exits with a message if it does not parse.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("--{name}: cannot parse {v:?}");
                std::process::exit(2)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        assert_eq!(frame_header(BINARY_FIN, 64, None), [0x82, 64]);
        assert_eq!(frame_header(BINARY_FIN, 16384, None), [0x82, 126, 0x40, 0]);
        assert_eq!(
            frame_header(BINARY_FIN, 16 << 20, None),
            [0x82, 127, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            frame_header(BINARY_FIN, 5, Some([1, 2, 3, 4])),
            [0x82, 0x85, 1, 2, 3, 4]
        );
    }

    #[test]
    fn masked_frame_matches_the_rfc_sample() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let frame = client_frame(0x81, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            frame,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn wsloop_decodes_our_frames() {
        use wsloop::session::{Event, Message, Role, Session, SessionLimits};
        let data = payload(7, 300);
        let mut session = Session::new(Role::Server, SessionLimits::default());
        session
            .receive(&client_frame(BINARY_FIN, &data, mask_key(3)))
            .unwrap();
        assert_eq!(
            session.next_event(),
            Some(Event::Message(Message::Binary(data.clone())))
        );
        session.send_binary(&data).unwrap();
        assert_eq!(session.output(), server_frame(BINARY_FIN, &data));
    }

    #[test]
    fn payloads_differ_everywhere() {
        let a = payload(1, 4096);
        let b = payload(2, 4096);
        assert_eq!(a.len(), 4096);
        assert!(a.chunks(64).zip(b.chunks(64)).all(|(x, y)| x != y));
    }

    #[test]
    fn upgrade_response_check() {
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nsec-websocket-accept: {WS_ACCEPT}\r\n\r\n"
        );
        assert!(check_upgrade_response(good.as_bytes()).is_ok());
        assert!(check_upgrade_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert_eq!(head_end(good.as_bytes()), Some(good.len()));
    }

    #[test]
    fn proc_readings_of_this_process() {
        let pid = std::process::id();
        assert!(proc_rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(proc_cpu_seconds(pid).is_some());
        assert!(!cores_busy_seconds().is_empty());
    }

    #[test]
    fn args() {
        let a = Args::parse(
            ["--conns", "10", "--raw", "--size", "64"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(a.num("conns", 0usize), 10);
        assert!(a.flag("raw"));
        assert_eq!(a.num("size", 0usize), 64);
        assert_eq!(a.num("missing", 5u32), 5);
    }
}
