//! The subscriber thread: listens on the events channel and on this instance's channel, and
//! applies what arrives through the server's [`wsloop::server::Handle`].
//!
//! Owns: the subscription connection, its heartbeat and its reconnection. Must not: publish
//! or touch the directory (the writer thread's).
//!
//! Redis pub/sub delivers a message only to the connections subscribed when it is
//! published: whatever is published while this subscription is down is lost for this
//! instance, and logged as a window ("subscription lost … restored after 2.1 s"). Once
//! `SUBSCRIBE` has been answered, nothing published afterwards is missed. A silent
//! connection is checked with a `PING` every `refresh_interval`, so a dead one is found
//! within `refresh_interval + io_timeout` even without a TCP reset.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Msg, RedisResult};

use crate::config::Backoff;
use crate::envelope::Envelope;
use crate::shared::{Shared, POLL};

pub(crate) fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(&shared.config);
    // When the current outage began, after a subscription (`None` before the first).
    let mut down_since: Option<Instant> = None;
    let mut up_since: Option<Instant> = None;
    while !shared.stopping() {
        let result = listen(&shared, || {
            up_since = Some(Instant::now());
            match down_since.take() {
                Some(since) => log::info!(
                    "subscription to Redis restored after {:.1?}: messages published in that \
                     window did not reach this instance",
                    since.elapsed()
                ),
                None => log::debug!("subscribed to Redis"),
            }
        });
        shared.subscribed.store(false, Ordering::SeqCst);
        let Err(e) = result else {
            break; // stopping
        };
        let wait = match up_since.take() {
            Some(since) => {
                down_since = Some(Instant::now());
                log::warn!(
                    "subscription to Redis at {} lost ({e}): messages published until it is \
                     back are lost for this instance; reconnecting",
                    shared.redis_addr
                );
                backoff.lost_after(since.elapsed())
            }
            None => backoff.next(),
        };
        if wait.is_zero() {
            continue;
        }
        log::warn!(
            "cannot subscribe at Redis {} ({e}); next try in {wait:?}",
            shared.redis_addr
        );
        sleep_unless_stopping(&shared, wait);
    }
    log::debug!("subscriber stopped");
}

/// Subscribe and apply messages until the connection fails (`Err`) or the bridge stops
/// (`Ok`). `subscribed` is called once the subscription is in place.
fn listen(shared: &Shared, subscribed: impl FnOnce()) -> RedisResult<()> {
    let config = &shared.config;
    let mut conn = shared
        .client
        .get_connection_with_timeout(config.io_timeout)?;
    conn.set_write_timeout(Some(config.io_timeout))?;
    conn.set_read_timeout(Some(config.io_timeout))?;
    let mut pubsub = conn.as_pubsub();
    let channels = [
        config.events_channel(),
        config.instance_channel(&config.instance_id),
    ];
    pubsub.subscribe(&channels[..])?;
    shared.subscribed.store(true, Ordering::SeqCst);
    subscribed();
    pubsub.set_read_timeout(Some(POLL))?;
    let mut heard = Instant::now();
    loop {
        if shared.stopping() {
            return Ok(());
        }
        match pubsub.get_message() {
            Ok(message) => {
                heard = Instant::now();
                deliver(shared, &message);
            }
            Err(e) if e.is_timeout() => {
                if heard.elapsed() >= config.refresh_interval {
                    pubsub.set_read_timeout(Some(config.io_timeout))?;
                    pubsub.ping::<redis::Value>()?;
                    pubsub.set_read_timeout(Some(POLL))?;
                    heard = Instant::now();
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn deliver(shared: &Shared, message: &Msg) {
    let payload = message.get_payload_bytes();
    match Envelope::from_json(payload) {
        Ok(envelope) => shared.apply(envelope),
        Err(e) => log::warn!(
            "ignored a message on {}: {e}; it began {:?}",
            message.get_channel_name(),
            String::from_utf8_lossy(&payload[..payload.len().min(100)]),
        ),
    }
}

fn sleep_unless_stopping(shared: &Shared, time: Duration) {
    let until = Instant::now() + time;
    while !shared.stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}
