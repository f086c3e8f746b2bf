//! The sid directory in Redis: which instance holds which session.
//!
//! Owns: the entry format and the Redis commands that claim, refresh and release entries.
//! Must not: decide when; the bridge thread calls these as sessions open and close, on its
//! refresh timer and after a reconnection.
//!
//! One string key per open session: `{prefix}:sid:{sid}` → `{instance}#{session}`, where
//! `session` numbers the sessions of that instance (so that a replacement closes exactly the
//! connection it replaced, not a newer one with the same sid). Every key has a TTL
//! (`directory_ttl`), refreshed every `refresh_interval` while the session is open, and is
//! deleted when it closes; a crashed instance's keys thus expire at most `directory_ttl`
//! after its last refresh.
//!
//! Every change is conditional on the value, so an instance never removes or extends an
//! entry that another instance has taken over: claiming is `SET … GET` (atomic, returns the
//! previous holder, Redis ≥ 6.2), releasing and refreshing are small Lua scripts that
//! compare first.

use redis::{Connection, RedisResult};

use crate::config::Config;

/// Release `KEYS[1]` if it still holds `ARGV[1]`.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                           return redis.call('DEL', KEYS[1]) \
                       end \
                       return 0";

/// For each key: extend it if it still holds our value, recreate it if it has gone (expired
/// while we could not reach Redis, or Redis restarted empty); leave it if another instance
/// holds it now, and return those keys' positions (1-based). `ARGV[1]` is the TTL in ms,
/// `ARGV[i + 1]` the value for `KEYS[i]`.
const REFRESH: &str = "local taken = {} \
                       for i, key in ipairs(KEYS) do \
                           local want = ARGV[i + 1] \
                           local have = redis.call('GET', key) \
                           if have == want then \
                               redis.call('PEXPIRE', key, ARGV[1]) \
                           elseif not have then \
                               redis.call('SET', key, want, 'PX', ARGV[1]) \
                           else \
                               table.insert(taken, i) \
                           end \
                       end \
                       return taken";

/// Keys per `REFRESH` call: one script call holds Redis for its length, so keep it short.
const REFRESH_BATCH: usize = 256;

/// The value of a directory entry.
pub(crate) fn entry(instance: &str, session: u64) -> String {
    format!("{instance}#{session}")
}

/// `(instance, session)` from an entry's value.
pub(crate) fn parse_entry(value: &str) -> Option<(&str, u64)> {
    let (instance, session) = value.rsplit_once('#')?;
    Some((instance, session.parse().ok()?))
}

fn ttl_ms(config: &Config) -> u64 {
    config.directory_ttl.as_millis().max(1) as u64
}

/// Point `sid` at `value`; returns the entry it replaced, if any.
pub(crate) fn claim(
    conn: &mut Connection,
    config: &Config,
    sid: &str,
    value: &str,
) -> RedisResult<Option<String>> {
    redis::cmd("SET")
        .arg(config.sid_key(sid))
        .arg(value)
        .arg("PX")
        .arg(ttl_ms(config))
        .arg("GET")
        .query(conn)
}

/// Delete `sid`'s entry if it is still `value`.
pub(crate) fn release(
    conn: &mut Connection,
    config: &Config,
    sid: &str,
    value: &str,
) -> RedisResult<()> {
    redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(config.sid_key(sid))
        .arg(value)
        .exec(conn)
}

/// Refresh (or recreate) the entries `(sid, value)` that are still ours; returns the sids
/// that another instance holds now (their replacement notice may have been lost while a
/// subscription was down).
pub(crate) fn refresh<'a>(
    conn: &mut Connection,
    config: &Config,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) -> RedisResult<Vec<&'a str>> {
    let entries: Vec<_> = entries.collect();
    let mut taken = Vec::new();
    for batch in entries.chunks(REFRESH_BATCH) {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REFRESH).arg(batch.len());
        for (sid, _) in batch {
            cmd.arg(config.sid_key(sid));
        }
        cmd.arg(ttl_ms(config));
        for (_, value) in batch {
            cmd.arg(*value);
        }
        let positions: Vec<usize> = cmd.query(conn)?;
        taken.extend(
            positions
                .into_iter()
                .filter_map(|i| batch.get(i.wrapping_sub(1)).map(|(sid, _)| *sid)),
        );
    }
    Ok(taken)
}

/// The entry of `sid`, if any instance holds it.
pub(crate) fn lookup(
    conn: &mut Connection,
    config: &Config,
    sid: &str,
) -> RedisResult<Option<String>> {
    redis::cmd("GET").arg(config.sid_key(sid)).query(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_whatever_the_instance_id() {
        for instance in ["a", "host-12-ab", "we#ird#id"] {
            assert_eq!(parse_entry(&entry(instance, 42)), Some((instance, 42)));
        }
        assert_eq!(parse_entry("no-session"), None);
        assert_eq!(parse_entry("a#x"), None);
    }
}
