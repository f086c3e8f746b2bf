//! Masking (RFC 6455 §5.3): XOR a payload with a 4-byte key.
//!
//! Owns: the XOR itself, resumable from any offset into the key, because payloads arrive in
//! pieces; what a source of client keys is ([`MaskKeys`]); and (with `std`) one such source
//! backed by the operating system's randomness (`KeyGenerator`).
//! Must not: allocate, or know anything about frames.
//!
//! The loop works on 8-byte words built from the key repeated twice; the compiler turns it into
//! SIMD on long buffers. `benches/core.rs` compares it with the naive byte loop kept here as
//! `apply_mask_naive` (hidden from the docs), which the tests and the fuzz target use as the
//! reference.

/// XOR `buf` in place with `key`, starting at byte `offset` of the key (0..=3 are meaningful,
/// larger values wrap). Returns the key offset for the byte that follows `buf`, so that the
/// next piece of the same payload can continue with it.
///
/// RFC 6455 §5.3: octet i of the transformed data is octet i of the original data XOR octet
/// (i MOD 4) of the masking key. Masking and unmasking are the same operation.
///
/// ```
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// let next = wsloop::mask::apply_mask(&mut data, key, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // the RFC §5.7 masked "Hello"
/// assert_eq!(next, 1);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let offset = offset & 3;
    let next = (offset + buf.len()) & 3;
    // Rotate the key so that `rotated[0]` applies to `buf[0]`.
    let rotated = [
        key[offset],
        key[(offset + 1) & 3],
        key[(offset + 2) & 3],
        key[(offset + 3) & 3],
    ];
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(bytes) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    // Every chunk was a multiple of 4 bytes, so the tail starts at key offset 0 of `rotated`.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i & 3];
    }
    next
}

/// The reference: one byte at a time, exactly as §5.3 states it. For tests, benchmarks and
/// fuzzing only.
#[doc(hidden)]
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) & 3];
    }
    (offset + buf.len()) & 3
}

/// Where a client session takes the masking key of each frame it sends.
///
/// RFC 6455 §5.3: the key "MUST be derived from a strong source of entropy", a fresh one for
/// each frame, so that the bytes on the wire cannot be chosen by whoever chooses the payload
/// (§10.3). With `std`, `KeyGenerator` is such a source. Without it, bring your own: any
/// `FnMut() -> [u8; 4]` closure is one, e.g. one reading an embedded RNG peripheral.
///
/// ```
/// use wsloop::mask::MaskKeys;
/// let mut counter = 0u8;
/// // Predictable: fine for a test, never for a real client.
/// let mut keys = move || {
///     counter += 1;
///     [counter; 4]
/// };
/// assert_eq!(keys.next_key(), [1; 4]);
/// assert_eq!(keys.next_key(), [2; 4]);
/// ```
pub trait MaskKeys {
    /// The key for the next frame.
    fn next_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4]> MaskKeys for F {
    fn next_key(&mut self) -> [u8; 4] {
        self()
    }
}

/// Unpredictable masking keys and handshake nonces from the operating system (std only).
///
/// RFC 6455 §10.3: the masking key must be unpredictable, derived from a strong source of
/// entropy, so that a script cannot choose the bytes that appear on the wire. The standard
/// library already seeds `RandomState` from the OS's randomness (getrandom on Linux); SipHash
/// keyed that way is a pseudo-random function, so hashing a counter under a per-generator key
/// yields unpredictable words without adding a dependency.
#[cfg(feature = "std")]
pub struct KeyGenerator {
    state: std::collections::hash_map::RandomState,
    counter: u64,
}

#[cfg(feature = "std")]
impl KeyGenerator {
    /// A generator keyed from the operating system's randomness.
    pub fn new() -> Self {
        KeyGenerator {
            state: std::collections::hash_map::RandomState::new(),
            counter: 0,
        }
    }

    /// The next 64 unpredictable bits.
    fn next_u64(&mut self) -> u64 {
        use core::hash::{BuildHasher, Hasher};
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = self.state.build_hasher();
        hasher.write_u64(self.counter);
        hasher.finish()
    }

    /// A fresh masking key (§5.3).
    pub fn mask_key(&mut self) -> [u8; 4] {
        let word = self.next_u64();
        [
            word as u8,
            (word >> 8) as u8,
            (word >> 16) as u8,
            (word >> 24) as u8,
        ]
    }

    /// A fresh 16-byte nonce for `Sec-WebSocket-Key` (§4.1).
    pub fn nonce(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

#[cfg(feature = "std")]
impl MaskKeys for KeyGenerator {
    fn next_key(&mut self) -> [u8; 4] {
        self.mask_key()
    }
}

#[cfg(feature = "std")]
impl Default for KeyGenerator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn matches_naive_at_every_offset_and_length_up_to_64() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let base: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..=64 {
                for offset in 0..4 {
                    let mut fast = base[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    let a = apply_mask(&mut fast, key, offset);
                    let b = apply_mask_naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let original: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut data = original.clone();
        apply_mask(&mut data, key, 3);
        assert_ne!(data, original);
        apply_mask(&mut data, key, 3);
        assert_eq!(data, original);
    }

    #[test]
    fn pieces_continue_from_the_returned_offset() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..101u32).map(|i| (i * 13) as u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = original.clone();
        let mut offset = 0;
        for range in [0..1, 1..6, 6..7, 7..40, 40..101] {
            offset = apply_mask(&mut pieces[range], key, offset);
        }
        assert_eq!(pieces, whole);
    }

    #[cfg(feature = "std")]
    #[test]
    fn key_generators_do_not_repeat() {
        let mut a = KeyGenerator::new();
        let mut b = KeyGenerator::new();
        let words: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        let mut sorted = words.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), words.len());
        assert_ne!(a.nonce(), b.nonce());
    }
}
