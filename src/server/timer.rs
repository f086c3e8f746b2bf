//! Deadlines of many connections, soonest first.
//!
//! Owns: a min-heap of (deadline, connection) entries. Each connection keeps the deadline of
//! its one live entry; an entry whose deadline no longer matches is stale and skipped when
//! it surfaces. A connection whose deadline moves later (activity) keeps its old entry and is
//! re-queued when that entry fires, so a busy connection costs no heap work per message and
//! a wake-up never scans every connection.
//! Must not: decide what a deadline means; `deadline.rs` does, and the loop's core acts on
//! it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A connection's place: slab key and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConnRef {
    pub(crate) key: usize,
    pub(crate) generation: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnRef)>>,
}

impl Timers {
    /// Queue an entry.
    pub(crate) fn push(&mut self, at: Instant, conn: ConnRef) {
        self.heap.push(Reverse((at, conn)));
    }

    /// The soonest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Take the soonest entry if it is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnRef)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_out_soonest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let c = |key| ConnRef { key, generation: 0 };
        timers.push(t0 + Duration::from_secs(3), c(3));
        timers.push(t0 + Duration::from_secs(1), c(1));
        timers.push(t0 + Duration::from_secs(2), c(2));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let due = t0 + Duration::from_secs(2);
        assert_eq!(timers.pop_due(due).map(|(_, c)| c.key), Some(1));
        assert_eq!(timers.pop_due(due).map(|(_, c)| c.key), Some(2));
        assert_eq!(timers.pop_due(due), None);
        assert_eq!(timers.len(), 1);
    }
}
