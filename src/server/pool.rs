//! The loop's pool of message buffers: payloads written out, lent again to the next message.
//!
//! Owns: [`BufferPool`], what it keeps and what it lends. Must not: decide when buffers come
//! back (the write queue gives each payload back once written) or charge the memory budget
//! (the core charges what the pool holds at the end of each step, and empties it under
//! pressure).
//!
//! Why: an echo, a relay or a file upload moves a steady stream of messages through the loop.
//! Without the pool each one is a fresh allocation, and one of a few KiB or more is memory the
//! allocator has just given back to the system (glibc trims the top of its heap and unmaps
//! large blocks), so every message paid page faults and the zeroing of fresh pages: about a
//! fifth of the server's time echoing 64 KiB messages and more than half of it echoing 16 MiB
//! ones (`benches/e2e`, rows 2b and 3). Small messages cost less (a malloc and a free from the
//! allocator's thread cache, about 2% of a 64-byte echo) but are pooled the same way. With the
//! pool the steady path allocates nothing: the buffer a payload was written from (or, for a
//! small one, copied from into the write queue) holds the next message read.
//!
//! Bounded, so that it never holds more than a burst's worth of memory for ever:
//! - only buffers of [`MIN_CAPACITY`] bytes or more are kept, at most [`PER_CLASS`] of each
//!   class;
//! - at most [`POOL_BYTES`] in all, except that one buffer larger than that (up to the
//!   largest message allowed, the loop's one large message's worth) may be kept alone;
//! - idle connections hold nothing of it: a buffer is lent only while a message is read, so
//!   the memory per idle connection (`benches/e2e` row 6) does not change.
//!
//! The memory budget charges a lent buffer as the message's bytes, not its capacity: the
//! difference (at most 8 times a small message, or what the pool held for a large one) is
//! slack over the budget, bounded by the pool's own bound.
//!
//! Buffers are kept in classes by capacity (powers of two), so that lending is a constant-
//! time pop and a small message never takes a buffer many times its size, which would then
//! live on with the application if it keeps the message.

use crate::session::Recycle;

/// The smallest buffer worth keeping: below it the allocator's own smallest chunks.
pub(crate) const MIN_CAPACITY: usize = 16;

/// The most buffers kept of one class, so that the pool's own list of small buffers stays
/// small too (4 MiB of 16-byte buffers would be a quarter of a million of them).
pub(crate) const PER_CLASS: usize = 1024;

/// The most the pool keeps in all, but for one large buffer kept alone: 4 MiB, 64 buffers of
/// 64 KiB, enough for the messages of one step of a loop under a mid-size echo load.
pub(crate) const POOL_BYTES: usize = 4 << 20;

/// A message at least this large may take any larger buffer, not only one of a size close to
/// its own: a large message is rare, short-lived (written out and given back), and a buffer
/// that is already mapped spares it the faults that cost the most.
const LARGE_MESSAGE: usize = 64 * 1024;

/// Capacity classes: `floor(log2(capacity))` from 2^4 (16 bytes) up; the last class takes
/// everything from 2^(4 + CLASSES - 1) (2 GiB) on.
const CLASSES: usize = 28;
const FIRST_CLASS: u32 = MIN_CAPACITY.trailing_zeros();

/// Recycled message buffers, per event loop.
#[derive(Debug)]
pub(crate) struct BufferPool {
    classes: [Vec<Vec<u8>>; CLASSES],
    /// The capacity of every buffer kept, together.
    held: usize,
    /// The largest buffer worth keeping: one message's worth (`max_message_size`).
    largest: usize,
}

impl BufferPool {
    /// A pool that keeps no buffer larger than `largest` bytes.
    pub(crate) fn new(largest: usize) -> BufferPool {
        BufferPool {
            classes: Default::default(),
            held: 0,
            largest,
        }
    }

    /// The capacity of the buffers kept, together: what the memory budget charges the pool.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Drop every buffer (the memory budget is under pressure).
    pub(crate) fn clear(&mut self) {
        for class in &mut self.classes {
            *class = Vec::new();
        }
        self.held = 0;
    }

    /// The class of a capacity of at least `MIN_CAPACITY`.
    fn class_of(capacity: usize) -> usize {
        let log = usize::BITS - 1 - capacity.leading_zeros();
        (log.saturating_sub(FIRST_CLASS) as usize).min(CLASSES - 1)
    }

    fn pop(&mut self, class: usize) -> Option<Vec<u8>> {
        let buffer = self.classes[class].pop()?;
        self.held -= buffer.capacity();
        Some(buffer)
    }
}

impl Recycle for BufferPool {
    /// A buffer of at least `need` bytes: from `need`'s own class (when its last buffer is
    /// large enough) or the two above it, so at most about 8 times `need`; a large message
    /// takes any larger one.
    fn take(&mut self, need: usize) -> Option<Vec<u8>> {
        if need < MIN_CAPACITY || self.held == 0 {
            return None;
        }
        let own = Self::class_of(need);
        if self.classes[own]
            .last()
            .is_some_and(|b| b.capacity() >= need)
        {
            return self.pop(own);
        }
        let reach = if need >= LARGE_MESSAGE {
            CLASSES
        } else {
            (own + 3).min(CLASSES)
        };
        (own + 1..reach).find_map(|class| self.pop(class))
    }

    /// Keep `buffer` (emptied) if it is worth keeping and fits the bounds.
    fn give(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity < MIN_CAPACITY || capacity > self.largest {
            return;
        }
        let class = Self::class_of(capacity);
        if self.classes[class].len() >= PER_CLASS {
            return;
        }
        if self.held + capacity > POOL_BYTES {
            // Full, or a buffer larger than the whole pool: that one is kept alone, in place
            // of smaller ones together (the loop's one large message's worth).
            if capacity <= POOL_BYTES || capacity <= self.held {
                return;
            }
            self.clear();
        }
        buffer.clear();
        self.held += capacity;
        self.classes[class].push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(capacity: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(capacity);
        b.extend_from_slice(b"old bytes");
        b
    }

    #[test]
    fn a_buffer_given_back_is_lent_again_empty() {
        let mut pool = BufferPool::new(1 << 20);
        pool.give(buffer(64 * 1024));
        assert_eq!(pool.held(), 64 * 1024);
        let lent = pool.take(60_000).expect("a buffer large enough");
        assert!(lent.is_empty());
        assert_eq!(lent.capacity(), 64 * 1024);
        assert_eq!(pool.held(), 0);
        assert!(pool.take(60_000).is_none(), "lent only once");
    }

    #[test]
    fn tiny_buffers_and_needs_are_left_to_the_allocator() {
        let mut pool = BufferPool::new(1 << 20);
        pool.give(buffer(MIN_CAPACITY - 1));
        pool.give(Vec::new());
        assert_eq!(pool.held(), 0);
        pool.give(buffer(64));
        assert!(pool.take(MIN_CAPACITY - 1).is_none());
        assert_eq!(pool.take(64).map(|b| b.capacity()), Some(64));
    }

    #[test]
    fn each_class_keeps_a_bounded_number_of_buffers() {
        let mut pool = BufferPool::new(1 << 20);
        for _ in 0..PER_CLASS + 10 {
            pool.give(buffer(64));
        }
        assert_eq!(pool.held(), PER_CLASS * 64);
        pool.give(buffer(128));
        assert_eq!(
            pool.held(),
            PER_CLASS * 64 + 128,
            "another class still takes one"
        );
    }

    #[test]
    fn a_buffer_too_small_for_the_need_is_not_lent() {
        let mut pool = BufferPool::new(1 << 20);
        pool.give(buffer(40_000)); // class 2^15, below a 50,000-byte need of the same class
        assert!(pool.take(50_000).is_none());
        assert!(pool.take(40_000).is_some());
    }

    #[test]
    fn a_small_message_does_not_take_a_buffer_many_times_its_size() {
        let mut pool = BufferPool::new(64 << 20);
        pool.give(buffer(1 << 20));
        assert!(pool.take(2048).is_none(), "512 times the need");
        assert!(pool.take(100).is_none());
        assert!(
            pool.take(200_000).is_some(),
            "a large message takes any larger buffer"
        );
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound_or_one_large_buffer_alone() {
        let mut pool = BufferPool::new(64 << 20);
        for _ in 0..100 {
            pool.give(buffer(64 * 1024));
        }
        assert_eq!(
            pool.held(),
            POOL_BYTES,
            "64 buffers of 64 KiB, the rest dropped"
        );
        // One message's worth larger than the whole pool replaces the small ones.
        pool.give(buffer(16 << 20));
        assert_eq!(pool.held(), 16 << 20);
        // Then smaller ones do not fit beside it, and a smaller large one does not replace it.
        pool.give(buffer(64 * 1024));
        pool.give(buffer(8 << 20));
        assert_eq!(pool.held(), 16 << 20);
        // Never more than one message's worth in one buffer.
        let mut small_limit = BufferPool::new(1 << 20);
        small_limit.give(buffer(2 << 20));
        assert_eq!(small_limit.held(), 0);
    }

    #[test]
    fn clear_gives_everything_back() {
        let mut pool = BufferPool::new(1 << 20);
        pool.give(buffer(4096));
        pool.give(buffer(8192));
        pool.clear();
        assert_eq!(pool.held(), 0);
        assert!(pool.take(4096).is_none());
    }
}
