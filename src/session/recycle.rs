//! Message buffers an I/O layer lends a session and takes back.
//!
//! Owns: the [`Recycle`] trait, through which the reader asks for a buffer already in memory
//! before it assembles a data message, and gives back one it no longer needs. Must not: keep
//! buffers itself or decide how many are kept; that is the I/O layer's (the server's per-loop
//! `BufferPool`). A plain [`Session::receive`](super::Session::receive) lends nothing (`()`).

use alloc::vec::Vec;

/// A source of message buffers, and a place to return them.
///
/// Why: a fresh allocation for each message of a few KiB or more is memory the process has
/// usually just handed back to the system, so every message pays page faults and zeroing
/// (about a fifth of a 64 KiB echo's time before the server's pool, `benches/e2e` row 2b).
pub(crate) trait Recycle {
    /// A buffer with room for at least `need` bytes, empty, if one is at hand.
    fn take(&mut self, need: usize) -> Option<Vec<u8>>;
    /// A buffer the caller no longer needs; the source may keep it or drop it.
    fn give(&mut self, buffer: Vec<u8>);
}

/// No buffers to lend: every message allocates its own.
impl Recycle for () {
    #[inline]
    fn take(&mut self, _need: usize) -> Option<Vec<u8>> {
        None
    }

    #[inline]
    fn give(&mut self, _buffer: Vec<u8>) {}
}
