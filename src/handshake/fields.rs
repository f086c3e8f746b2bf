//! Reading HTTP field values (RFC 9110 §5.5, §5.6): trimming, and comma-separated token lists.
//!
//! Owns: the helpers that both the allocating head (`http`) and the allocator-free handshake
//! (`fixed`) apply to header values. Must not: know about WebSocket, or allocate.

/// `bytes` without leading and trailing ASCII whitespace.
pub(super) fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// RFC 9110 §5.6.1: the elements of a comma-separated list in one field value, without the
/// whitespace around them, the empty ones skipped; nothing for a value that is not UTF-8.
/// (Byte-wise, without Unicode tables or `str::split`: this runs on microcontrollers too.)
pub(super) fn tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    let list: &[u8] = if core::str::from_utf8(value).is_ok() {
        value
    } else {
        &[]
    };
    list.split(|&b| b == b',')
        .map(trim_ascii)
        .filter(|t| !t.is_empty())
        .filter_map(|t| core::str::from_utf8(t).ok())
}

/// Whether the list in `value` includes `token`, case-insensitive.
pub(super) fn has_token(value: &[u8], token: &str) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn token_lists_are_split_trimmed_and_matched_case_insensitively() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b" ,websocket ,", "WebSocket"));
        assert!(!has_token(b"upgraded", "upgrade"));
        assert!(!has_token(b"\xffupgrade", "upgrade"));
        assert_eq!(trim_ascii(b" \t13\r\n"), b"13");
        let list: Vec<&str> = tokens(b"a, ,b ,\tc").collect();
        assert_eq!(list, ["a", "b", "c"]);
        assert_eq!(tokens(b"a,\xff").count(), 0, "not UTF-8: no tokens at all");
    }
}
