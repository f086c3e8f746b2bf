//! What a bridge can be told, every name it uses in Redis, and why each default.
//!
//! Owns: [`Config`], the channel and key names derived from its prefix. Must not: talk to
//! Redis.

use std::time::Duration;

/// How a bridge reaches Redis and names things there.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379` or `redis://:password@host:6379/2`.
    pub url: String,
    /// This instance's name: in its directory entries and its channel. Must be unique among
    /// the instances sharing the prefix, and printable ASCII without spaces. Default:
    /// host name, process id and a random number (a restarted instance gets a new one, so
    /// nothing meant for its previous life reaches it).
    pub instance_id: String,
    /// The start of every channel and key name. Default `wsloop`; give each cluster that
    /// shares a Redis its own.
    pub prefix: String,
    /// How long a directory entry lives without a refresh: the bound on how long a crashed
    /// instance's sids stay in the directory (sends routed to them meanwhile are lost).
    /// Default 30 s: a crash is forgotten in half a minute, and a live instance refreshes
    /// three times within it, so one slow Redis round trip does not drop its entries.
    pub directory_ttl: Duration,
    /// How often the entries of this instance's sessions are refreshed. Default
    /// `directory_ttl / 3`.
    pub refresh_interval: Duration,
    /// The first wait between reconnection tries; doubled after each failed try up to
    /// `reconnect_max`. (A connection lost after it had lasted `reconnect_max` is tried again
    /// at once first: Redis may only have closed that one connection.) Default 100 ms.
    pub reconnect_min: Duration,
    /// The longest wait between reconnection tries. Default 5 s: a restarted Redis is found
    /// within 5 s of coming back, and a long outage costs one try every 5 s per connection.
    pub reconnect_max: Duration,
    /// The longest a Redis command may take (connect, read, write) before the connection is
    /// judged dead; also how long a silent subscription waits for its heartbeat's answer.
    /// Default 5 s.
    pub io_timeout: Duration,
    /// How many outgoing messages (broadcasts and sends for other instances) wait while this
    /// instance's Redis connection is down; beyond it the oldest are dropped and counted in
    /// the log. Default 1024: a few seconds of a busy back office, small enough that a
    /// long outage does not replay minutes of stale alerts. While the writer is inside one
    /// connection attempt (up to `io_timeout`) new messages queue ahead of the outbox, up to
    /// [`crate::PENDING_LIMIT`]: the bound on memory during a slow outage.
    pub outbox_limit: usize,
}

impl Config {
    /// A configuration with the defaults, for Redis at `url`.
    pub fn new(url: &str) -> Config {
        let directory_ttl = Duration::from_secs(30);
        Config {
            url: url.to_string(),
            instance_id: default_instance_id(),
            prefix: "wsloop".to_string(),
            directory_ttl,
            refresh_interval: directory_ttl / 3,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            outbox_limit: 1024,
        }
    }

    /// Set the directory TTL, and the refresh interval to a third of it.
    pub fn directory_ttl(mut self, ttl: Duration) -> Config {
        self.directory_ttl = ttl;
        self.refresh_interval = ttl / 3;
        self
    }

    /// The channel every instance subscribes to, and business code publishes on:
    /// `{prefix}:events`.
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The channel only `instance` subscribes to: `{prefix}:instance:{instance}`.
    pub fn instance_channel(&self, instance: &str) -> String {
        format!("{}:instance:{instance}", self.prefix)
    }

    /// The directory key of `sid`: `{prefix}:sid:{sid}`.
    pub fn sid_key(&self, sid: &str) -> String {
        format!("{}:sid:{sid}", self.prefix)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let id = &self.instance_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "instance id {id:?} must be printable ASCII without spaces"
            ));
        }
        if self.directory_ttl < Duration::from_millis(10) {
            return Err("directory_ttl must be at least 10 ms".into());
        }
        if self.refresh_interval.is_zero() || self.refresh_interval >= self.directory_ttl {
            return Err("refresh_interval must be shorter than directory_ttl".into());
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err("reconnect_min must be positive and at most reconnect_max".into());
        }
        if self.io_timeout.is_zero() {
            return Err("io_timeout must be positive".into());
        }
        Ok(())
    }
}

/// `host-pid-random`: readable in `redis-cli KEYS 'wsloop:sid:*'`, unique across restarts.
fn default_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "host".to_string());
    // A randomly keyed hasher is the standard library's only source of randomness.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{host}-{}-{:08x}", std::process::id(), random as u32)
}

/// The waits between reconnection tries of one connection, as [`Config::reconnect_min`] and
/// [`Config::reconnect_max`] describe them.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &Config) -> Backoff {
        Backoff {
            min: config.reconnect_min,
            max: config.reconnect_max,
            next: config.reconnect_min,
        }
    }

    /// The wait before the next try after a failed one; the wait after that doubles, up
    /// to the maximum.
    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(self.max);
        wait
    }

    /// The wait after losing a connection that had been up for `lasted`: none after one
    /// that lasted (Redis may only have closed that one), and the waits start over; after a
    /// short one (Redis accepting and dropping us) the backing off goes on.
    pub(crate) fn lost_after(&mut self, lasted: Duration) -> Duration {
        if lasted >= self.max {
            self.next = self.min;
            Duration::ZERO
        } else {
            self.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let config = Config::new("redis://127.0.0.1/");
        assert_eq!(config.events_channel(), "wsloop:events");
        assert_eq!(config.instance_channel("a-1"), "wsloop:instance:a-1");
        assert_eq!(config.sid_key("7f3a"), "wsloop:sid:7f3a");
        assert_eq!(config.refresh_interval, Duration::from_secs(10));
    }

    #[test]
    fn default_instance_ids_differ_and_are_valid() {
        let (a, b) = (Config::new(""), Config::new(""));
        assert_ne!(a.instance_id, b.instance_id);
        assert_eq!(a.check(), Ok(()));
        let mut bad = a.clone();
        bad.instance_id = "two words".into();
        assert!(bad.check().is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_starts_over_after_a_lasting_connection() {
        let config = Config {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(500),
            ..Config::new("redis://127.0.0.1")
        };
        let mut b = Backoff::new(&config);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            [b.next(), b.next(), b.next(), b.next()].map(ms),
            [100, 200, 400, 500]
        );
        // A short connection does not reset the waits; one that lasted the maximum does.
        assert_eq!(ms(b.lost_after(Duration::from_millis(499))), 500);
        assert_eq!(b.lost_after(Duration::from_millis(500)), Duration::ZERO);
        assert_eq!(ms(b.next()), 100);
    }
}
