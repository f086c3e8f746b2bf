//! The key and its answer (RFC 6455 §1.3, §4.2.2 item 5): `Sec-WebSocket-Accept` is
//! base64(SHA-1(`Sec-WebSocket-Key` + GUID)).
//!
//! Owns: the GUID and the computation, which the server uses to answer and the client to
//! check the answer, with its SHA-1 (FIPS 180-4) and base64 encoding (RFC 4648), small ones
//! of its own (a firmware's largest parts otherwise); whether a key is base64 of 16 bytes
//! (§4.1). Must not: choose keys (the client does), or allocate.

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// RFC 4648 §4: the standard base64 alphabet.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_LEN: usize = 28;

/// A `Sec-WebSocket-Accept` value, held without an allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; ACCEPT_LEN]);

impl AcceptKey {
    /// base64(SHA-1(`key` + GUID)) (§4.2.2 item 5).
    ///
    /// ```
    /// use wsloop::handshake::AcceptKey;
    /// let accept = AcceptKey::for_key(b"dGhlIHNhbXBsZSBub25jZQ==");
    /// assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// ```
    pub fn for_key(key: &[u8]) -> AcceptKey {
        let digest = sha1_of_key(key);
        // RFC 4648 §4: base64 of the 20 bytes, 3 bytes to 4 characters; the last group has
        // 2 bytes, so its last character is padding.
        let mut out = [0u8; ACCEPT_LEN];
        for (group, chars) in digest.chunks(3).zip(out.chunks_exact_mut(4)) {
            let bits = group
                .iter()
                .enumerate()
                .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
            for (i, c) in chars.iter_mut().enumerate() {
                *c = BASE64[(bits >> (18 - 6 * i)) as usize & 0x3f];
            }
        }
        out[ACCEPT_LEN - 1] = b'=';
        AcceptKey(out)
    }

    /// The value, as sent in the header.
    pub fn as_str(&self) -> &str {
        // base64's alphabet is ASCII.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// SHA-1(`key` + GUID) (FIPS 180-4 §6.1): the message in 64-byte blocks, then the padding of
/// §5.1.1 (a 1 bit, zeros, and the message's length in bits in the last 8 bytes of a block).
fn sha1_of_key(key: &[u8]) -> [u8; 20] {
    // FIPS 180-4 §5.3.1: the initial hash value.
    let mut state = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let mut block = [0u8; 64];
    let mut filled = 0;
    for part in [key, GUID.as_bytes()] {
        let mut rest = part;
        while !rest.is_empty() {
            let take = rest.len().min(64 - filled);
            block[filled..filled + take].copy_from_slice(&rest[..take]);
            filled += take;
            rest = &rest[take..];
            if filled == 64 {
                compress(&mut state, &block);
                filled = 0;
            }
        }
    }
    // §5.1.1: the 1 bit; the length needs the last 8 bytes of a block, so a message that
    // leaves fewer takes one more block.
    block[filled] = 0x80;
    filled += 1;
    if filled > 56 {
        block[filled..].fill(0);
        compress(&mut state, &block);
        filled = 0;
    }
    block[filled..56].fill(0);
    let bits = (key.len() + GUID.len()) as u64 * 8;
    block[56..].copy_from_slice(&bits.to_be_bytes());
    compress(&mut state, &block);
    let mut digest = [0u8; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// FIPS 180-4 §6.1.2: SHA-1's processing of one 64-byte block: the 80-word message schedule
/// (§6.1.2 step 1), then 80 rounds in four runs of 20, each with its function and constant
/// (§4.1.1, §4.2.1). Plain loops, so about 0.3 KB of code on a Cortex-M4 at opt-level "z",
/// where the `sha1` crate's unrolled one took 3 KB, the largest part of a firmware (README,
/// "Embedded"); with no branch inside a round, so that an optimised build unrolls them (an
/// earlier version picked the function with a `match` in every round and took 2.4 times the
/// instructions). The tests check it against that crate.
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for (w, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for t in 16..80 {
        // §6.1.2: W(t) = ROTL1(W(t-3) ^ W(t-8) ^ W(t-14) ^ W(t-16)).
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }
    let mut s = *state;
    for &wt in &w[..20] {
        let [_, b, c, d, _] = s;
        round(&mut s, (b & c) | (!b & d), 0x5a82_7999, wt);
    }
    for &wt in &w[20..40] {
        let [_, b, c, d, _] = s;
        round(&mut s, b ^ c ^ d, 0x6ed9_eba1, wt);
    }
    for &wt in &w[40..60] {
        let [_, b, c, d, _] = s;
        round(&mut s, (b & c) | (b & d) | (c & d), 0x8f1b_bcdc, wt);
    }
    for &wt in &w[60..] {
        let [_, b, c, d, _] = s;
        round(&mut s, b ^ c ^ d, 0xca62_c1d6, wt);
    }
    for (h, v) in state.iter_mut().zip(s) {
        *h = h.wrapping_add(v);
    }
}

/// One round of §6.1.2 step 3 on the working variables `[a, b, c, d, e]`, with the round's
/// function value `f`, constant `k` and schedule word `w`:
/// T = ROTL5(a) + f + e + k + w; e = d; d = c; c = ROTL30(b); b = a; a = T.
#[inline(always)]
fn round(s: &mut [u32; 5], f: u32, k: u32, w: u32) {
    let [a, b, c, d, e] = *s;
    let t = a
        .rotate_left(5)
        .wrapping_add(f)
        .wrapping_add(e)
        .wrapping_add(k)
        .wrapping_add(w);
    *s = [t, a, b.rotate_left(30), c, d];
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)) (§4.2.2).
#[cfg(feature = "alloc")]
pub fn accept_key(key: &[u8]) -> alloc::string::String {
    alloc::string::String::from(AcceptKey::for_key(key).as_str())
}

/// RFC 6455 §4.1: whether `key` (trimmed) is "a base64-encoded value that, when decoded, is
/// 16 bytes in length".
///
/// Checked from the text rather than by decoding, which keeps base64's decoder out of a
/// firmware (about 1 KB): in the standard alphabet with canonical padding, 16 bytes are
/// exactly 22 characters and `==`, and the last character carries 2 bits of data and 4 bits
/// that must be zero. The tests check this against base64's own decoder.
pub(super) fn is_valid_key(key: &[u8]) -> bool {
    let [data @ .., b'=', b'='] = key else {
        return false;
    };
    let Some(&last) = data.last() else {
        return false;
    };
    data.len() == 22
        && data.iter().all(|&c| sextet(c).is_some())
        && sextet(last).is_some_and(|v| v & 0x0f == 0)
}

/// The value of a character of the standard base64 alphabet (RFC 4648 §4).
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The base64 form of a client's 16-byte nonce (§4.1 item 7): 24 characters.
#[cfg(feature = "alloc")]
pub(super) fn encode_nonce(nonce: &[u8; 16]) -> [u8; 24] {
    use base64::Engine as _;
    let mut out = [0u8; 24];
    // 16 bytes are exactly 24 base64 characters, so the slice always fits.
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(nonce, &mut out)
        .unwrap_or(0);
    debug_assert_eq!(written, 24);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    /// What base64's decoder says: the key decodes to exactly 16 bytes.
    fn decodes_to_16(key: &[u8]) -> bool {
        let mut out = [0u8; 64];
        key.len() <= 64
            && matches!(
                base64::engine::general_purpose::STANDARD.decode_slice(key, &mut out),
                Ok(16)
            )
    }

    proptest! {
        #[test]
        fn the_key_check_agrees_with_base64s_decoder(
            key in prop_oneof![
                "[A-Za-z0-9+/]{21,23}={0,2}",
                "[A-Za-z0-9+/]{21}[A-Za-z0-9+/]==",
                "[A-Za-z0-9+/=]{20,26}",
                proptest::collection::vec(any::<u8>(), 22..26)
                    .prop_map(|v| String::from_utf8_lossy(&v).into_owned()),
            ],
            nonce in any::<[u8; 16]>(),
        ) {
            prop_assert_eq!(is_valid_key(key.as_bytes()), decodes_to_16(key.as_bytes()));
            let encoded = encode_nonce(&nonce);
            prop_assert!(is_valid_key(&encoded));
        }
    }

    /// The accept value as the `sha1` crate's hasher and `base64`'s encoder make it.
    fn reference_accept(key: &[u8]) -> String {
        use sha1::Digest as _;
        let digest = sha1::Sha1::new()
            .chain_update(key)
            .chain_update(GUID.as_bytes())
            .finalize();
        base64::engine::general_purpose::STANDARD.encode(digest)
    }

    #[test]
    fn the_accept_value_agrees_with_sha1_and_base64_for_every_length_up_to_three_blocks() {
        // Messages (key + 36 bytes of GUID) of 36 to 235 bytes: one to four blocks, with the
        // padding's edges (55/56 and 119/120 bytes) among them.
        for len in 0..200 {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let accept = AcceptKey::for_key(&key);
            assert_eq!(accept.as_str(), reference_accept(&key), "length {len}");
        }
    }

    proptest! {
        #[test]
        fn the_accept_value_agrees_with_sha1_and_base64(
            key in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let (accept, expected) = (AcceptKey::for_key(&key), reference_accept(&key));
            prop_assert_eq!(accept.as_str(), expected.as_str());
        }
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_key_is_base64_of_exactly_16_bytes() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // 15 and 17 bytes, unpadded, not base64, and far too long.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZXg="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=!"));
        assert!(!is_valid_key(&[b'A'; 400]));
        // Trailing bits must be zero: "...ZR==" decodes to 16 bytes only non-canonically.
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR=="));
        assert_eq!(
            &encode_nonce(b"the sample nonce"),
            b"dGhlIHNhbXBsZSBub25jZQ=="
        );
    }
}
