//! The writer thread: keeps this instance's entries in the directory and publishes.
//!
//! Owns: the command connection to Redis, the directory bookkeeping (which entries are
//! claimed, which must still be released), the outbox that holds outgoing messages while
//! Redis is unreachable, and reconnection with backoff. Must not: touch the subscription
//! (the subscriber thread's) or block anything but itself.
//!
//! When the connection fails, the thread keeps taking jobs: sessions opening and closing are
//! noted and settled with Redis once it is back (claims, releases, then a refresh that also
//! recreates entries a restarted Redis lost); outgoing messages wait in the outbox, at most
//! `outbox_limit` of them (the oldest are dropped beyond it, and counted in the log). It
//! retries at once, then after `reconnect_min`, doubling up to `reconnect_max`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use redis::{Connection, RedisError, RedisResult};
use wsloop::CloseCode;

use crate::config::{Backoff, Config};
use crate::directory;
use crate::envelope::Envelope;
use crate::shared::{Job, Outgoing, Shared, POLL};

/// Why a Redis exchange did not happen.
enum Failed {
    /// The connection is gone (dropped by now); the work is redone after reconnecting.
    Down,
    /// Redis answered with an error (logged); nothing to retry.
    Refused,
}

/// One of this instance's sessions, as the directory should know it.
struct Entry {
    /// `{instance}#{session}`.
    value: String,
    /// Whether Redis has it (claimed since the last connection, or refreshed).
    claimed: bool,
}

struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    entries: HashMap<String, Entry>,
    /// Entries of closed sessions that could not be released yet: sid → value.
    unreleased: HashMap<String, String>,
    outbox: VecDeque<Outgoing>,
    /// Outgoing messages dropped during the current outage.
    dropped: u64,
    /// When the current outage began, a connection having been settled before it (`None`
    /// while connected, and before the first connection).
    down_since: Option<Instant>,
    /// When the current connection was settled (`None` while disconnected).
    up_since: Option<Instant>,
    retry_at: Instant,
    backoff: Backoff,
    refresh_at: Instant,
}

pub(crate) fn run(shared: Arc<Shared>, jobs: Receiver<Job>) {
    let now = Instant::now();
    let mut writer = Writer {
        conn: None,
        entries: HashMap::new(),
        unreleased: HashMap::new(),
        outbox: VecDeque::new(),
        dropped: 0,
        down_since: None,
        up_since: None,
        retry_at: now,
        backoff: Backoff::new(&shared.config),
        refresh_at: now + shared.config.refresh_interval,
        shared,
    };
    writer.connect();
    loop {
        let now = Instant::now();
        // Connected, the refresh is due next; disconnected, the next try (which refreshes).
        let wake = match writer.conn {
            Some(_) => writer.refresh_at,
            None => writer.retry_at,
        }
        .min(now + POLL);
        match jobs.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(job) => writer.job(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if writer.conn.is_none() && now >= writer.retry_at {
            writer.connect();
        }
        if writer.conn.is_some() && now >= writer.refresh_at {
            writer.refresh();
        }
        if writer.shared.stopping() {
            // The server's last `on_close` calls come before it reports being stopped.
            while let Ok(job) = jobs.try_recv() {
                writer.job(job);
            }
            writer.finish();
            break;
        }
    }
}

fn is_down(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

impl Writer {
    fn config(&self) -> &Config {
        &self.shared.config
    }

    fn me(&self) -> &str {
        &self.shared.config.instance_id
    }

    fn job(&mut self, job: Job) {
        match job {
            Job::Opened(sid, session) => {
                let value = directory::entry(self.me(), session);
                self.unreleased.remove(&sid);
                self.entries.insert(
                    sid.clone(),
                    Entry {
                        value,
                        claimed: false,
                    },
                );
                if self.conn.is_some() {
                    self.claim(&sid);
                }
            }
            Job::Closed(sid, session) => {
                let value = directory::entry(self.me(), session);
                if self.entries.get(&sid).is_some_and(|e| e.value == value) {
                    let entry = self.entries.remove(&sid).expect("just seen");
                    if entry.claimed {
                        self.unreleased.insert(sid.clone(), entry.value);
                        self.release(&sid);
                    }
                }
            }
            Job::Out(outgoing) => {
                self.shared.pending.fetch_sub(1, Ordering::SeqCst);
                self.out(outgoing);
            }
            Job::Wake => {}
        }
    }

    /// One Redis exchange on the current connection.
    fn io<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Connection, &Config) -> RedisResult<T>,
    ) -> Result<T, Failed> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failed::Down);
        };
        match f(conn, &self.shared.config) {
            Ok(value) => Ok(value),
            Err(e) if is_down(&e) => {
                self.lost(&e);
                Err(Failed::Down)
            }
            Err(e) => {
                log::warn!("Redis refused {what}: {e}");
                Err(Failed::Refused)
            }
        }
    }

    fn lost(&mut self, e: &RedisError) {
        self.conn = None;
        self.shared.writer_up.store(false, Ordering::SeqCst);
        let now = Instant::now();
        if let Some(since) = self.up_since.take() {
            // The first failure of an outage.
            self.down_since = Some(now);
            self.dropped = 0;
            self.retry_at = now + self.backoff.lost_after(since.elapsed());
            log::warn!(
                "lost the connection to Redis at {} ({e}); until it is back, messages for \
                 other instances wait in the outbox (at most {}) and the directory is settled \
                 afterwards",
                self.shared.redis_addr,
                self.config().outbox_limit,
            );
        } else {
            // Failed again while settling after a reconnection: back off.
            let wait = self.backoff.next();
            self.retry_at = now + wait;
            log::warn!(
                "lost the connection to Redis at {} again ({e}); next try in {wait:?}",
                self.shared.redis_addr,
            );
        }
    }

    fn connect(&mut self) {
        let config = self.config();
        let timeout = config.io_timeout;
        let attempt = self
            .shared
            .client
            .get_connection_with_timeout(timeout)
            .and_then(|conn| {
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Ok(conn)
            });
        match attempt {
            Ok(conn) => {
                self.conn = Some(conn);
                if self.settle() {
                    self.shared.writer_up.store(true, Ordering::SeqCst);
                    let outage = self.down_since.take().map(|t| t.elapsed());
                    log::info!(
                        "connected to Redis at {}{}; sessions in the directory: {}{}",
                        self.shared.redis_addr,
                        match outage {
                            Some(d) => format!(" after {d:.1?} without it"),
                            None => String::new(),
                        },
                        self.entries.len(),
                        match self.dropped {
                            0 => String::new(),
                            n => format!("; {n} outgoing messages were dropped meanwhile"),
                        },
                    );
                    self.dropped = 0;
                    self.up_since = Some(Instant::now());
                }
            }
            Err(e) => {
                let wait = self.backoff.next();
                self.retry_at = Instant::now() + wait;
                log::warn!(
                    "cannot reach Redis at {} ({e}); next try in {wait:?}",
                    self.shared.redis_addr,
                );
            }
        }
    }

    /// Bring Redis up to date after (re)connecting; false if the connection failed again.
    fn settle(&mut self) -> bool {
        let unreleased: Vec<String> = self.unreleased.keys().cloned().collect();
        for sid in unreleased {
            self.release(&sid);
        }
        let unclaimed: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.claimed)
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in unclaimed {
            self.claim(&sid);
        }
        self.refresh();
        while self.conn.is_some() {
            let Some(outgoing) = self.outbox.pop_front() else {
                break;
            };
            self.out(outgoing);
        }
        self.conn.is_some()
    }

    /// Point the directory at this instance for `sid`; tell the previous holder, if another
    /// instance, to close its session.
    fn claim(&mut self, sid: &str) {
        let Some(value) = self.entries.get(sid).map(|e| e.value.clone()) else {
            return;
        };
        let Ok(previous) = self.io("SET", |conn, config| {
            directory::claim(conn, config, sid, &value)
        }) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(sid) {
            entry.claimed = true;
        }
        let Some(previous) = previous else {
            return;
        };
        match directory::parse_entry(&previous) {
            Some((instance, session)) if instance != self.me() => {
                log::info!(
                    "{sid} opened here while instance {instance} holds it: asking it to close \
                     its session (4000 replaced)"
                );
                let channel = self.config().instance_channel(instance);
                self.out(Outgoing::Publish {
                    channel,
                    envelope: Envelope::Close {
                        sid: sid.to_string(),
                        code: CloseCode::Private(4000),
                        reason: "replaced".to_string(),
                        session: Some(session),
                    },
                });
            }
            Some(_) => {} // ours: the loop has replaced its own session already
            None => log::warn!("directory entry of {sid} is malformed: {previous:?}"),
        }
    }

    fn release(&mut self, sid: &str) {
        let Some(value) = self.unreleased.get(sid).cloned() else {
            return;
        };
        let released = self.io("release", |conn, config| {
            directory::release(conn, config, sid, &value)
        });
        if !matches!(released, Err(Failed::Down)) {
            self.unreleased.remove(sid);
        }
    }

    /// Extend this instance's entries, recreate lost ones, and close the sessions whose sid
    /// another instance has taken (in case its notice was lost with a subscription).
    fn refresh(&mut self) {
        self.refresh_at = Instant::now() + self.config().refresh_interval;
        if self.entries.is_empty() {
            // Still a round trip: a dead connection is found now, not at the next send.
            let _ = self.io("PING", |conn, _| redis::cmd("PING").exec(conn));
            return;
        }
        let taken = {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let claimed = self
                .entries
                .iter()
                .filter(|(_, e)| e.claimed)
                .map(|(sid, e)| (sid.as_str(), e.value.as_str()));
            directory::refresh(conn, &self.shared.config, claimed)
                .map(|taken| taken.into_iter().map(str::to_string).collect::<Vec<_>>())
        };
        match taken {
            Ok(taken) => {
                for sid in taken {
                    let Some(session) = self
                        .entries
                        .get(&sid)
                        .and_then(|e| directory::parse_entry(&e.value))
                        .map(|(_, session)| session)
                    else {
                        continue;
                    };
                    if self.shared.session_of(&sid) == Some(session) {
                        log::info!("{sid} is held by another instance now: closing it here");
                        if let Err(e) =
                            self.shared
                                .handle
                                .close(&sid, CloseCode::Private(4000), "replaced")
                        {
                            log::warn!("close of {sid} not queued: {e}");
                        }
                    }
                }
            }
            Err(e) if is_down(&e) => self.lost(&e),
            Err(e) => log::warn!("Redis refused the directory refresh: {e}"),
        }
    }

    fn out(&mut self, outgoing: Outgoing) {
        if self.conn.is_none() {
            self.hold(outgoing);
            return;
        }
        match outgoing {
            Outgoing::Publish { channel, envelope } => {
                let payload = envelope.to_json();
                let published = self.io("PUBLISH", |conn, _| {
                    redis::cmd("PUBLISH")
                        .arg(&channel)
                        .arg(&payload)
                        .query::<i64>(conn)
                });
                if let Err(Failed::Down) = published {
                    // Not answered: it goes again once the connection is back (a duplicate
                    // is possible if Redis had taken it just before the connection broke).
                    self.outbox
                        .push_front(Outgoing::Publish { channel, envelope });
                }
            }
            Outgoing::Route(envelope) => {
                let sid = match &envelope {
                    Envelope::Send { sid, .. } | Envelope::Close { sid, .. } => sid.clone(),
                    Envelope::Broadcast { .. } | Envelope::Publish { .. } => {
                        unreachable!("broadcasts and publishes are not routed")
                    }
                };
                match self.io("GET", |conn, config| directory::lookup(conn, config, &sid)) {
                    Ok(None) => log::info!("no instance holds {sid}: dropped a send or close"),
                    Ok(Some(value)) => match directory::parse_entry(&value) {
                        Some((instance, _)) if instance == self.me() => self.shared.apply(envelope),
                        Some((instance, _)) => {
                            let channel = self.config().instance_channel(instance);
                            self.out(Outgoing::Publish { channel, envelope });
                        }
                        None => log::warn!("directory entry of {sid} is malformed: {value:?}"),
                    },
                    Err(Failed::Down) => self.outbox.push_front(Outgoing::Route(envelope)),
                    Err(Failed::Refused) => {}
                }
            }
        }
    }

    /// Keep an outgoing message for when Redis is back, dropping the oldest beyond the limit.
    fn hold(&mut self, outgoing: Outgoing) {
        self.outbox.push_back(outgoing);
        if self.outbox.len() > self.config().outbox_limit {
            self.outbox.pop_front();
            if self.dropped == 0 {
                log::warn!(
                    "Redis is still unreachable and {} messages wait: dropping the oldest",
                    self.config().outbox_limit
                );
            }
            self.dropped += 1;
        }
    }

    /// The bridge is stopping: release what is left (nothing, after a graceful shutdown,
    /// whose sessions have all closed), if Redis can be reached.
    fn finish(&mut self) {
        if self.conn.is_some() {
            let open: Vec<(String, String)> = self
                .entries
                .drain()
                .filter(|(_, e)| e.claimed)
                .map(|(sid, e)| (sid, e.value))
                .collect();
            self.unreleased.extend(open);
            let sids: Vec<String> = self.unreleased.keys().cloned().collect();
            for sid in sids {
                self.release(&sid);
            }
        }
        let left = self.unreleased.len() + self.entries.len();
        if left > 0 {
            log::warn!("bridge stopped with {left} directory entries left to expire");
        }
        if !self.outbox.is_empty() {
            log::warn!(
                "bridge stopped with {} messages never sent to Redis",
                self.outbox.len()
            );
        }
        self.shared.writer_up.store(false, Ordering::SeqCst);
    }
}
