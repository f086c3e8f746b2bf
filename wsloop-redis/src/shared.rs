//! The state the bridge and its threads share: one [`Shared`] behind an `Arc`, the jobs the
//! writer thread is given ([`Job`], [`Outgoing`]), and how often the threads look up ([`POLL`]).
//!
//! Owns: the configuration and the Redis client, the server's [`Handle`], the queue to the
//! writer thread and its count of pending messages, this instance's table of open sessions
//! (sid → session number), the flags (stopping, writer connected, subscribed), the threads'
//! join handles, and how an envelope from Redis is applied to this instance's sessions.
//! Must not: start threads, do Redis I/O, or know the public API ([`crate::Bridge`] is built
//! on this, and the workers only need this): the bridge, the wrapped handler, the writer and
//! the subscriber all depend on this module, and it on none of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use wsloop::server::Handle;

use crate::config::Config;
use crate::envelope::Envelope;

/// How often the threads look at the stop flag and the server's state when idle.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// What the writer thread is asked to do.
pub(crate) enum Job {
    /// A session opened here: claim its directory entry.
    Opened(String, u64),
    /// A session closed here: release its entry.
    Closed(String, u64),
    /// Publish something.
    Out(Outgoing),
    /// Look at the stop flag now.
    Wake,
}

/// A message for Redis.
pub(crate) enum Outgoing {
    /// `envelope` on `channel`.
    Publish { channel: String, envelope: Envelope },
    /// A send or close for a sid held elsewhere: look it up in the directory, then publish to
    /// its instance's channel.
    Route(Envelope),
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) client: redis::Client,
    /// Where Redis is, for the logs (the URL may hold a password).
    pub(crate) redis_addr: String,
    pub(crate) handle: Handle,
    jobs: Sender<Job>,
    /// Outgoing jobs queued and not yet taken by the writer.
    pub(crate) pending: AtomicUsize,
    /// This instance's open sessions: sid → session number.
    sessions: Mutex<HashMap<String, u64>>,
    pub(crate) next_session: AtomicU64,
    stop: AtomicBool,
    pub(crate) writer_up: AtomicBool,
    pub(crate) subscribed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// The state of a bridge not started yet: no session, no thread, nothing connected;
    /// `jobs` goes to the writer thread.
    pub(crate) fn new(
        config: Config,
        client: redis::Client,
        redis_addr: String,
        handle: Handle,
        jobs: Sender<Job>,
    ) -> Shared {
        Shared {
            config,
            client,
            redis_addr,
            handle,
            jobs,
            pending: AtomicUsize::new(0),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            writer_up: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn sessions(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session number of `sid` if it is open here.
    pub(crate) fn session_of(&self, sid: &str) -> Option<u64> {
        self.sessions().get(sid).copied()
    }

    pub(crate) fn job(&self, job: Job) {
        // The writer lives as long as `Shared`; a send fails only after it has exited.
        let _ = self.jobs.send(job);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.handle.is_stopped()
    }

    /// Raise the stop flag and wake the writer, so that both threads see it.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.job(Job::Wake);
    }

    fn threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep the started threads, for [`Shared::take_threads`].
    pub(crate) fn keep_threads(&self, threads: Vec<JoinHandle<()>>) {
        *self.threads() = threads;
    }

    /// The threads to join (once: a second call gets none).
    pub(crate) fn take_threads(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.threads())
    }

    /// Apply an envelope to this instance's sessions (from Redis, or routed back here).
    pub(crate) fn apply(&self, envelope: Envelope) {
        let me = self.config.instance_id.as_str();
        let result = match envelope {
            Envelope::Broadcast { origin, message } => {
                if origin.as_deref() == Some(me) {
                    return; // delivered here when it was published
                }
                self.handle.broadcast(message)
            }
            Envelope::Publish {
                topic,
                message,
                origin,
            } => {
                if origin.as_deref() == Some(me) {
                    return; // delivered here when it was published
                }
                // Subscriptions are this instance's own: the loops know which of their
                // sessions follow `topic` (none, often), Redis does not.
                self.handle.publish(&topic, message)
            }
            Envelope::Send { sid, message } => {
                if self.session_of(&sid).is_none() {
                    log::debug!("send to {sid}: not open here");
                    return;
                }
                self.handle.send(&sid, message)
            }
            Envelope::Close {
                sid,
                code,
                reason,
                session,
            } => match (self.session_of(&sid), session) {
                (Some(here), Some(wanted)) if here != wanted => {
                    log::debug!("close of {sid} session {wanted}: session {here} holds it now");
                    return;
                }
                (Some(_), _) => self.handle.close(&sid, code, &reason),
                (None, _) => {
                    log::debug!("close of {sid}: not open here");
                    return;
                }
            },
        };
        if let Err(e) = result {
            log::warn!("a command from Redis was not queued: {e}");
        }
    }
}
