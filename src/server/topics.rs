//! Topics: which sessions of this loop receive what is published to a name (rooms, shops,
//! channels).
//!
//! Owns: the map from topic to subscribed connections, and its consistency: a topic with no
//! subscriber takes no memory, and a connection's subscriptions end with it (the loop's core
//! calls [`Topics::leave_all`] when it removes one). Must not: queue frames (`output.rs`
//! does, one shared frame per publish, as for a broadcast) or know which loop holds a sid
//! (`handover.rs` forwards subscriptions for sids on other loops).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::timer::ConnRef;

/// One loop's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    members: HashMap<Arc<str>, HashSet<ConnRef>>,
}

impl Topics {
    /// Subscribe `conn` to `topic`; false if it was already. Returns the topic's shared
    /// name, for the connection's own list.
    pub(crate) fn join(&mut self, topic: &str, conn: ConnRef) -> Option<Arc<str>> {
        if let Some(members) = self.members.get_mut(topic) {
            if !members.insert(conn) {
                return None;
            }
            return self
                .members
                .get_key_value(topic)
                .map(|(name, _)| name.clone());
        }
        let name: Arc<str> = Arc::from(topic);
        self.members.insert(name.clone(), HashSet::from([conn]));
        Some(name)
    }

    /// Unsubscribe `conn` from `topic`; false if it was not subscribed.
    pub(crate) fn leave(&mut self, topic: &str, conn: ConnRef) -> bool {
        let Some(members) = self.members.get_mut(topic) else {
            return false;
        };
        let left = members.remove(&conn);
        if members.is_empty() {
            self.members.remove(topic);
        }
        left
    }

    /// `conn` goes: it leaves every topic in `topics` (its own list).
    pub(crate) fn leave_all(&mut self, topics: &[Arc<str>], conn: ConnRef) {
        for topic in topics {
            self.leave(topic, conn);
        }
    }

    /// The connections subscribed to `topic`.
    pub(crate) fn members(&self, topic: &str) -> impl Iterator<Item = ConnRef> + '_ {
        self.members.get(topic).into_iter().flatten().copied()
    }

    /// How many sessions of this loop are subscribed to `topic`.
    pub(crate) fn count(&self, topic: &str) -> usize {
        self.members.get(topic).map_or(0, HashSet::len)
    }

    /// How many topics have subscribers on this loop.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// How many subscriptions there are on this loop, over all topics.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn total(&self) -> usize {
        self.members.values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(key: usize) -> ConnRef {
        ConnRef { key, generation: 1 }
    }

    #[test]
    fn topics_come_and_go_with_their_members() {
        let mut t = Topics::default();
        let name = t.join("shop/1", conn(1)).unwrap();
        assert_eq!(&*name, "shop/1");
        assert!(t.join("shop/1", conn(1)).is_none(), "already subscribed");
        assert!(t.join("shop/1", conn(2)).is_some());
        assert!(t.join("shop/2", conn(2)).is_some());
        assert_eq!(t.count("shop/1"), 2);
        let mut members: Vec<usize> = t.members("shop/1").map(|c| c.key).collect();
        members.sort();
        assert_eq!(members, [1, 2]);
        assert!(t.leave("shop/1", conn(1)));
        assert!(!t.leave("shop/1", conn(1)));
        // The last member leaving takes the topic's entry with it.
        t.leave_all(&[Arc::from("shop/1"), Arc::from("shop/2")], conn(2));
        assert_eq!(t.len(), 0);
        assert_eq!(t.count("shop/1"), 0);
        assert_eq!(t.members("nothing").count(), 0);
    }
}
