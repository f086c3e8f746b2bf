//! [`Bridged`]: the application's handler, wrapped so that the directory learns of every
//! session that opens or closes here.
//!
//! Owns: numbering this instance's sessions and reporting them to the writer thread. Must
//! not: do Redis I/O; it runs on the event loop's thread, so it only updates a table and
//! queues a job.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use wsloop::server::{
    CloseReason, Context, Handler, HttpRequest, HttpResponse, Upgrade, UpgradeRequest,
};
use wsloop::Message;

use crate::shared::{Job, Shared};

/// A [`Handler`] that forwards every callback to the application's handler `H`, and reports
/// sessions opening and closing to the bridge (see [`crate::Bridge::wrap`]).
///
/// Each session gets a number, unique within this instance; its directory entry is
/// `{instance}#{number}`, so that a replacement on another instance closes exactly this
/// session and not a newer one with the same sid.
#[derive(Clone)]
pub struct Bridged<H> {
    inner: H,
    shared: Arc<Shared>,
    /// The sessions that opened through this handler (a clone per event loop, if a server
    /// runs several, each keeps its own).
    mine: HashMap<String, u64>,
}

impl<H> Bridged<H> {
    pub(crate) fn new(inner: H, shared: Arc<Shared>) -> Self {
        Bridged {
            inner,
            shared,
            mine: HashMap::new(),
        }
    }

    /// The application's handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The application's handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }
}

impl<H: Handler> Handler for Bridged<H> {
    /// The application decides: the bridge adds nothing to an upgrade.
    fn on_upgrade(&mut self, ctx: &mut Context<'_>, request: &UpgradeRequest<'_>) -> Upgrade {
        self.inner.on_upgrade(ctx, request)
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, sid: &str) {
        let session = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        self.mine.insert(sid.to_string(), session);
        self.shared.sessions().insert(sid.to_string(), session);
        self.shared.job(Job::Opened(sid.to_string(), session));
        self.inner.on_open(ctx, sid);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, sid: &str, message: Message) {
        self.inner.on_message(ctx, sid, message);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, sid: &str, reason: &CloseReason) {
        if let Some(session) = self.mine.remove(sid) {
            {
                let mut sessions = self.shared.sessions();
                if sessions.get(sid) == Some(&session) {
                    sessions.remove(sid);
                }
            }
            self.shared.job(Job::Closed(sid.to_string(), session));
        }
        self.inner.on_close(ctx, sid, reason);
    }

    fn on_request(&mut self, ctx: &mut Context<'_>, request: &HttpRequest) -> HttpResponse {
        self.inner.on_request(ctx, request)
    }
}
