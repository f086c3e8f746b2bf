//! The session's limits on what a peer may send.
//!
//! Owns: [`SessionLimits`]. Must not: enforce them (the frame rules and the reader do).

/// Limits on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// The largest frame payload accepted; a larger one is answered with 1009 as soon as its
    /// header arrives, before any of its payload is buffered. Default: the same as
    /// `max_message_size`, i.e. no separate frame limit.
    pub max_frame_size: usize,
    /// The largest message (all fragments together) accepted; beyond it, 1009, checked from
    /// each frame header before its payload is buffered. Default 1 MiB, the default of
    /// Python websockets (`max_size`): ample for chat, dashboards and JSON APIs, and the most
    /// memory one connection can make us hold for an incoming message; raise it for file
    /// transfers (Autobahn's cases need 16 MiB). Memory grows with what actually arrives,
    /// never with what a header announces.
    pub max_message_size: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
        }
    }
}
