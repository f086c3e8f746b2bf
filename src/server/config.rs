//! The server's configuration: [`ServerConfig`], every default and why it was chosen.
//!
//! Owns: the knobs and their defaults. Must not: act on them; the loop's core and the
//! deadline policy read them.

use std::time::Duration;

use crate::handshake::Limits;

use super::route::Route;

/// Everything the server can be told. Every default is chosen for a back office with a
/// few thousand browser tabs on one small machine; each field says why.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Which upgrade requests become sessions. Default `/ws/{sid}`.
    pub route: Route,
    /// Subprotocols we speak, in our order of preference: the first of these that the client
    /// offered is selected (§4.2.2; the client's own order does not count), unless
    /// `Handler::on_upgrade` chooses another it offered. Default none.
    pub protocols: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed by
    /// [`UpgradeRequest::client_addr`](struct.UpgradeRequest.html#method.client_addr).
    /// Default none: the header is ignored, since any client can send it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Most simultaneous connections (handshaking and open); the next one gets 503.
    /// Default 10,000: an idle session costs about 1 KiB of our memory plus the kernel's
    /// socket buffers, and the default file-descriptor limit of many systems is near this.
    /// When the server is full, a connection still in its handshake (no session yet) is
    /// dropped to admit the newcomer: the accepting loop's oldest, or, when it has none (loop
    /// 0 with several), the oldest of the loop holding the most, to which the newcomer is
    /// handed; only when no loop has one, the newcomer gets the 503. So idle or half-sent
    /// handshakes cannot keep sessions out; a session is never dropped for a newcomer.
    pub max_connections: usize,
    /// Most simultaneous connections (handshaking and open) from one client address, over
    /// all loops; 0 = no limit. An IPv4 address counts by itself, an IPv6 address by its /64
    /// prefix (a host usually owns a whole /64); an IPv4-mapped IPv6 address counts as IPv4.
    /// Over it, the new connection gets `429 Too Many Requests` with `Retry-After`
    /// (RFC 6585 §4) and a warning in the log; the address's open connections carry on.
    ///
    /// Default 0, off: behind a reverse proxy every connection comes from the proxy's
    /// address, and behind a NAT (an office, a mobile carrier) many users share one, so a
    /// limit that suits one client would refuse them all. Turn it on when clients connect
    /// directly. It costs one lock and one map entry per address with connections open,
    /// taken on every accept.
    pub max_connections_per_ip: usize,
    /// Bounds on the handshake request head (431 beyond). Default 8 KiB and 64 headers.
    pub handshake_limits: Limits,
    /// Limits on incoming frames and messages (1009 beyond). Default 1 MiB for both, as
    /// Python websockets (`max_size`); raise it for file transfers (the `echo` example, the
    /// conformance testee, keeps 64 MiB for Autobahn's 16 MiB cases).
    pub session: crate::session::SessionLimits,
    /// High-water mark of the memory queued for one client. A send that would take the queue
    /// over it is refused and closes that connection with 1008 (a client that far behind is
    /// not reading); only a message sent to an empty queue may be larger than the mark, so
    /// one message of any allowed size still goes out on an idle connection.
    /// Each queued entry is charged the memory it holds, not the bytes it will write: a
    /// coalesced buffer or an owned payload its capacity, a shared broadcast frame its whole
    /// allocation (its length plus the `Arc` counts, charged to every queue holding it), and
    /// each entry its queue slot besides; so a 2-byte broadcast frame costs 52 bytes on 64-bit targets.
    /// While a client's queue is over the mark, the loop also stops reading from it, so a
    /// client that floods Pings (or echo requests) without reading the answers is held back
    /// by TCP instead of growing our memory.
    /// Default 1 MiB, one message of the default size: a client may fall one whole message
    /// behind. Python websockets pauses the sender at 32 KiB and uWebSockets at 64 KiB of
    /// backpressure; closing is harsher than pausing, so the mark here is larger.
    pub max_queued_bytes: usize,
    /// The most memory all connections together may hold in incoming messages (as they
    /// arrive, or as they inflate), write queues (each broadcast frame counted once) and
    /// plain HTTP bodies, plus the buffers each loop keeps to lend to the next messages (at
    /// most 4 MiB, or one message's worth alone; emptied under pressure), split evenly
    /// between the loops (`workers`). Enforced before memory is taken:
    /// - from half of it on, a connection holding more than a 64th of it is no longer read
    ///   (TCP holds its data back), except one at a time, which may go on to three quarters
    ///   so that large messages still complete; its `message_timeout` still runs;
    /// - a frame that would take the total over it is refused from its header with **1013
    ///   Try Again Later** (the message is within the limits and may succeed later, so not
    ///   1009), and an inflating message is stopped at it the same way;
    /// - a send that would take the total over it closes that connection with 1013
    ///   ([`SendStatus::Overloaded`](enum.SendStatus.html#variant.Overloaded)), and a broadcast that
    ///   would is not queued (logged).
    ///
    /// So the last quarter stays for connections holding little: a normal client is still
    /// served while large holders wait. Not counted (the documented slack over it): per
    /// connection, the session and socket state (about 1 KiB), a handshake head being read
    /// (at most `handshake_limits`), a deflate context; per loop, the read buffer, the
    /// `Handle` command queue
    /// ([`COMMAND_QUEUE_BYTES`](constant.COMMAND_QUEUE_BYTES.html)), the messages of one
    /// read being handed to the handler, and the unused room of a message buffer lent from
    /// the pool (within the pool's bound); and the allocator's own rounding.
    ///
    /// Default 1 GiB: a fixed value rather than one derived from the machine, so that a
    /// server behaves the same on a laptop and in production; set it to what the machine
    /// can spare. `usize::MAX` turns it off.
    pub memory_budget: usize,
    /// Largest body of a plain HTTP request (413 beyond). Default 64 KiB.
    pub max_http_body: usize,
    /// Time from accept to a complete handshake (or HTTP request). Default 10 s: generous
    /// for a slow mobile link, short enough that half-open handshakes do not pile up.
    pub handshake_timeout: Duration,
    /// Silence after which we send a Ping. Default 30 s: under the 60 s idle timeout of
    /// common proxies and NATs, so the heartbeat also keeps the path open.
    pub idle_timeout: Duration,
    /// Time to wait for any sign of life after that Ping before dropping the connection.
    /// Default 30 s.
    pub pong_timeout: Duration,
    /// Longest time a client may take to send one message, from its first byte to its last
    /// (pings in between do not extend it); beyond it, Close 1008. Default 60 s: a 64 MiB
    /// message needs about 1 MB/s, and a client that trickles a message to hold its buffer
    /// open (slowloris) is cut off.
    pub message_timeout: Duration,
    /// Time to wait for the client's Close after ours, and for the TCP close after that.
    /// Default 5 s: a live client answers in one round trip.
    pub close_timeout: Duration,
    /// Size of the one read buffer the loop shares among all connections. Default 64 KiB.
    /// (The loop also keeps the buffer of the last large payload it wrote, at most one
    /// message's worth, so that the next large message reuses memory already mapped.)
    pub read_buffer_size: usize,
    /// How many event loops, each on its own thread with its own poll, slab, read buffer
    /// and timers. Default 1: one loop on one core serves tens of thousands of sessions and
    /// keeps the handler on one thread. With more, loop 0 accepts and hands each connection
    /// to the loop with the fewest; sends, broadcasts, closes, duplicate sids and shutdown
    /// work across loops as on one (see
    /// [`Server::run_each`](struct.Server.html#method.run_each)).
    pub workers: usize,
    /// permessage-deflate (RFC 7692), feature `deflate`: `Some` accepts the first offer of a
    /// client that this configuration can honour ([`crate::deflate::negotiate::answer`]);
    /// such a session then compresses what [`Context::send`](struct.Context.html#method.send)
    /// and [`Handle::send`](struct.Handle.html#method.send) send to it, and inflates what it
    /// receives. Default `None`, not offered: compression costs CPU on every message and
    /// memory on every connection that uses it (hundreds of KiB with context takeover, none
    /// between messages without; see [`crate::deflate`]), and pays off only for large or
    /// repetitive text.
    ///
    /// Broadcasts are not compressed: one frame is built once and shared by every session,
    /// which compression per connection would undo. RFC 7692 §6 allows uncompressed messages
    /// (RSV1 clear) on a connection that negotiated the extension, so receivers take them.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            route: Route::default(),
            protocols: Vec::new(),
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            max_connections_per_ip: 0,
            handshake_limits: Limits::default(),
            session: crate::session::SessionLimits::default(),
            max_queued_bytes: 1 << 20,
            memory_budget: 1 << 30,
            max_http_body: 64 << 10,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            message_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            read_buffer_size: 64 << 10,
            workers: 1,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}
