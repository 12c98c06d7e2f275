//! Redis-backed cache shared by all pods.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::CacheError;
use crate::key::CacheKey;
use crate::stats::{CacheStats, Counters};

/// Key prefix used when none (an empty one) is given.
pub const DEFAULT_KEY_PREFIX: &str = "zonerank:";

/// Timeout for establishing a connection and for each command: a slow cache must not
/// stall requests (callers treat cache errors as misses). Redis answers within a millisecond
/// on a working network; a value of several MiB still travels well inside a second.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an unreachable Redis is probed again; requests skip it in between.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Keys fetched per SCAN step and deleted per DEL in [`RedisCache::clear`].
const SCAN_BATCH: usize = 500;

/// A Redis cache (via [`ConnectionManager`], which reconnects on its own). Cheap to clone.
///
/// When a command fails because Redis cannot be reached, the cache is marked down: lookups
/// answer "not cached" and stores are skipped at once, without touching the network, while a
/// background task probes Redis every [`PROBE_EVERY`] and marks it up again when it answers.
/// A dead Redis so costs one failed command, not a timeout per request; the outage and the
/// recovery are logged once each.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    /// The URL with any password masked, for messages.
    display_url: String,
    counters: Counters,
    /// Redis failed to answer and has not answered a probe since.
    down: AtomicBool,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.inner.display_url)
            .field("prefix", &self.inner.prefix)
            .field("stats", &self.inner.counters.snapshot())
            .finish()
    }
}

impl RedisCache {
    /// Connects to `url`; every key is stored under `key_prefix` (an empty prefix means
    /// [`DEFAULT_KEY_PREFIX`], so `clear` can never touch keys that are not ours). Fails if
    /// Redis does not answer.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<RedisCache, CacheError> {
        let (client, display_url) = client(url)?;
        let conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|source| CacheError::Connect {
                url: display_url.clone(),
                source,
            })?;
        Ok(RedisCache::with_connection(conn, key_prefix, display_url))
    }

    /// Like [`RedisCache::connect`], but a Redis that does not answer yet is no failure: the
    /// cache starts marked down and connects in the background. Only a URL that does not
    /// parse fails. For services, whose cache is optional.
    pub async fn connect_in_background(
        url: &str,
        key_prefix: &str,
    ) -> Result<RedisCache, CacheError> {
        let (client, display_url) = client(url)?;
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config()).map_err(
            |source| CacheError::InvalidUrl {
                url: display_url.clone(),
                source,
            },
        )?;
        let cache = RedisCache::with_connection(conn, key_prefix, display_url);
        if let Err(error) = cache.probe().await {
            cache.mark_down(&error);
        }
        Ok(cache)
    }

    fn with_connection(
        conn: ConnectionManager,
        key_prefix: &str,
        display_url: String,
    ) -> RedisCache {
        let prefix = if key_prefix.is_empty() {
            DEFAULT_KEY_PREFIX.to_owned()
        } else {
            key_prefix.to_owned()
        };
        RedisCache {
            conn,
            inner: Arc::new(Inner {
                prefix,
                display_url,
                counters: Counters::default(),
                down: AtomicBool::new(false),
            }),
        }
    }

    /// Whether Redis is marked down (requests skip it until a probe succeeds).
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }

    async fn probe(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
    }

    /// Marks Redis down after `error` if it is a connection failure, and starts the probe
    /// that marks it up again; the first failure of an outage is logged, the rest are not.
    fn mark_down(&self, error: &redis::RedisError) {
        let unreachable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error();
        if !unreachable || self.inner.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            url = %self.inner.display_url,
            %error,
            "Redis unreachable: serving without the cache until it answers again"
        );
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if cache.probe().await.is_ok() {
                    cache.inner.down.store(false, Ordering::Release);
                    tracing::info!(url = %cache.inner.display_url, "Redis answers again: cache in use");
                    return;
                }
            }
        });
    }

    /// The prefix prepended to every key.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis URL with its password masked.
    pub fn url(&self) -> &str {
        &self.inner.display_url
    }

    fn full_key(&self, key: &CacheKey) -> String {
        let mut full = String::with_capacity(self.inner.prefix.len() + key.as_str().len());
        full.push_str(&self.inner.prefix);
        full.push_str(key.as_str());
        full
    }

    fn command_error(&self, command: &'static str, source: redis::RedisError) -> CacheError {
        self.mark_down(&source);
        CacheError::Command {
            command,
            url: self.inner.display_url.clone(),
            source,
        }
    }

    /// The value under `key`; `None` also while Redis is marked down (counted as a miss).
    pub async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        if self.is_down() {
            let result = Ok(None);
            self.inner.counters.record(&result);
            return result;
        }
        let mut conn = self.conn.clone();
        let result = redis::cmd("GET")
            .arg(self.full_key(key))
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
            .map_err(|e| self.command_error("GET", e));
        self.inner.counters.record(&result);
        result
    }

    /// `SET key value EX seconds` (or `PX milliseconds` when the TTL is not whole seconds);
    /// a zero TTL stores nothing.
    pub async fn put(&self, key: &CacheKey, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        if ttl.is_zero() || self.is_down() {
            return Ok(());
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full_key(key)).arg(value);
        if ttl.subsec_nanos() == 0 {
            cmd.arg("EX").arg(ttl.as_secs());
        } else {
            // Round up so a sub-millisecond TTL still stores the value briefly.
            let millis = ttl.as_nanos().div_ceil(1_000_000);
            cmd.arg("PX").arg(u64::try_from(millis).unwrap_or(u64::MAX));
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.command_error("SET", e))
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| self.command_error("PING", e))
    }

    /// Deletes every key under this cache's prefix, with `SCAN MATCH prefix*` and batched
    /// `DEL` (never `KEYS`); returns how many keys were deleted.
    pub async fn clear(&self) -> Result<u64, CacheError> {
        let pattern = format!("{}*", escape_glob(&self.inner.prefix));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut deleted: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.command_error("SCAN", e))?;
            for batch in keys.chunks(SCAN_BATCH) {
                let n: u64 = redis::cmd("DEL")
                    .arg(batch)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.command_error("DEL", e))?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }
}

/// The client for `url` and the URL with its password masked.
fn client(url: &str) -> Result<(redis::Client, String), CacheError> {
    let display_url = redact_url(url);
    match redis::Client::open(url) {
        Ok(client) => Ok((client, display_url)),
        Err(source) => Err(CacheError::InvalidUrl {
            url: display_url,
            source,
        }),
    }
}

/// Short timeouts and few, quick reconnection retries: the cache is optional.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200))
}

/// Escapes Redis glob metacharacters so the prefix matches literally.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Masks the password of a Redis URL (`redis://user:secret@host` → `redis://user:***@host`,
/// `redis://secret@host` → `redis://***@host`, and `pass`/`password` query parameters).
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***{host}"),
                None if userinfo.is_empty() => authority.to_owned(),
                None => format!("***{host}"),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") =>
                    {
                        format!("{k}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://user:s3cret@cache:6379/0"),
            "redis://user:***@cache:6379/0"
        );
        assert_eq!(redact_url("rediss://:s3cret@cache"), "rediss://:***@cache");
        assert_eq!(redact_url("redis://s3cret@cache/1"), "redis://***@cache/1");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(redact_url("redis://a:p@ss@h"), "redis://a:***@h");
    }

    #[test]
    fn escapes_glob() {
        assert_eq!(escape_glob("zonerank:"), "zonerank:");
        assert_eq!(escape_glob("a*b?[c]"), r"a\*b\?\[c\]");
    }
}
