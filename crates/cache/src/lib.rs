//! Result cache for the zonerank services.
//!
//! One interface, [`Cache`], over two backends: Redis (shared by all pods) when `REDIS_URL` is
//! configured, an in-process [moka](https://docs.rs/moka) cache otherwise. Keys ([`CacheKey`])
//! carry the data version bumped by every ingestion commit, so new data never serves stale
//! results: old entries simply stop being looked up and expire by their TTL.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use zonerank_cache::{Cache, CacheKey};
//!
//! let cache = Cache::from_config(std::env::var("REDIS_URL").ok().as_deref(), "zonerank:").await?;
//! let key = CacheKey::new("metrics.compute", 42, b"encoded request");
//! let (bytes, hit) = cache
//!     .get_or_compute(&key, Duration::from_secs(600), || async {
//!         Ok::<_, std::io::Error>(b"encoded response".to_vec())
//!     })
//!     .await?;
//! # let _ = (bytes, hit);
//! # Ok(())
//! # }
//! ```

mod key;
mod memory;
mod redis_cache;
mod stats;

use std::future::Future;
use std::time::Duration;

pub use key::CacheKey;
pub use memory::MemoryCache;
pub use redis_cache::{DEFAULT_KEY_PREFIX, RedisCache};
pub use stats::CacheStats;

/// Entries of the in-process cache built by [`Cache::from_config`] without a Redis URL.
pub const DEFAULT_MEMORY_ENTRIES: u64 = 10_000;

/// Values larger than this are served but not stored: one oversized table (2,000 metrics ×
/// 5,000 zones is 244 MB) would otherwise fill Redis's memory and cost more to send there and
/// back than to compute again.
pub const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// Errors of the cache. Callers serving requests should treat them as misses
/// (as [`Cache::get_or_compute`] does): a broken cache must never fail a request.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL {url}: {source}")]
    InvalidUrl {
        /// The URL with its password masked.
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis could not be reached when the cache was created.
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The URL with its password masked.
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// A Redis command failed (connection lost, timeout, server error).
    #[error("Redis {command} failed at {url}: {source}")]
    Command {
        command: &'static str,
        /// The URL with its password masked.
        url: String,
        #[source]
        source: redis::RedisError,
    },
}

/// The result cache: Redis or in-process, behind one interface. Cheap to clone; clones share
/// the same entries, connection and stats.
#[derive(Debug, Clone)]
pub enum Cache {
    Memory(MemoryCache),
    Redis(RedisCache),
}

impl Cache {
    /// An in-process cache holding at most `max_entries` entries, each expiring after the TTL
    /// given to [`Cache::put`].
    pub fn memory(max_entries: u64) -> Cache {
        Cache::Memory(MemoryCache::new(max_entries))
    }

    /// A Redis cache at `url` (`redis://[user:password@]host[:port][/db]`), storing every key
    /// under `key_prefix` (empty means [`DEFAULT_KEY_PREFIX`]). Fails if Redis cannot be
    /// reached; the error names the URL without its password.
    pub async fn redis(url: &str, key_prefix: &str) -> Result<Cache, CacheError> {
        Ok(Cache::Redis(RedisCache::connect(url, key_prefix).await?))
    }

    /// Redis when `redis_url` is given and not blank, otherwise an in-process cache of
    /// [`DEFAULT_MEMORY_ENTRIES`] entries.
    pub async fn from_config(
        redis_url: Option<&str>,
        key_prefix: &str,
    ) -> Result<Cache, CacheError> {
        match redis_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Cache::redis(url, key_prefix).await,
            None => Ok(Cache::memory(DEFAULT_MEMORY_ENTRIES)),
        }
    }

    /// The cache of a service: like [`Cache::from_config`], but a Redis that does not answer
    /// yet is no failure. The cache is optional: the service starts, computes every result
    /// while Redis is away and uses it once it answers (see [`RedisCache`]).
    pub async fn for_service(
        redis_url: Option<&str>,
        key_prefix: &str,
    ) -> Result<Cache, CacheError> {
        match redis_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Ok(Cache::Redis(
                RedisCache::connect_in_background(url, key_prefix).await?,
            )),
            None => Ok(Cache::memory(DEFAULT_MEMORY_ENTRIES)),
        }
    }

    /// `"redis"` or `"memory"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Cache::Memory(_) => "memory",
            Cache::Redis(_) => "redis",
        }
    }

    /// The cached value for `key`, if any. Counts a hit or a miss (a failed lookup is a miss).
    pub async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Cache::Memory(c) => Ok(c.get(key).await),
            Cache::Redis(c) => c.get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl` (Redis: `SET … EX`). A zero TTL stores nothing, and
    /// neither does a value over [`MAX_VALUE_BYTES`].
    pub async fn put(&self, key: &CacheKey, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        if value.len() > MAX_VALUE_BYTES {
            tracing::debug!(cache = self.kind(), key = %key, bytes = value.len(), "value too large to cache");
            return Ok(());
        }
        match self {
            Cache::Memory(c) => {
                c.put(key, value, ttl).await;
                Ok(())
            }
            Cache::Redis(c) => c.put(key, value, ttl).await,
        }
    }

    /// Has `key` deleted when the cache comes back after an outage, before it is used again
    /// (see [`RedisCache::forget_after_outage`]). The in-process cache has no outages.
    pub fn forget_after_outage(&self, key: &CacheKey) {
        match self {
            Cache::Memory(_) => {}
            Cache::Redis(c) => c.forget_after_outage(key),
        }
    }

    /// Checks the backend is usable (Redis `PING`; always Ok in memory). For readiness probes.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(c) => c.ping().await,
        }
    }

    /// Deletes every entry of this cache (Redis: every key under its prefix, nothing else);
    /// returns how many were deleted.
    pub async fn clear(&self) -> Result<u64, CacheError> {
        match self {
            Cache::Memory(c) => Ok(c.clear().await),
            Cache::Redis(c) => c.clear().await,
        }
    }

    /// Hits and misses since creation.
    pub fn stats(&self) -> CacheStats {
        match self {
            Cache::Memory(c) => c.stats(),
            Cache::Redis(c) => c.stats(),
        }
    }

    /// Returns the cached value for `key`, or runs `compute`, stores its result for `ttl` and
    /// returns it. The boolean is `true` on a hit.
    ///
    /// Cache failures are logged with `tracing::warn!` and treated as a miss (lookup) or
    /// ignored (store): a broken cache never fails a request. Errors of `compute` are returned
    /// as they are, and nothing is stored then.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        ttl: Duration,
        compute: F,
    ) -> Result<(Vec<u8>, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        match self.get(key).await {
            Ok(Some(value)) => return Ok((value, true)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(cache = self.kind(), key = %key, %error, "cache lookup failed; computing");
            }
        }
        let value = compute().await?;
        if let Err(error) = self.put(key, &value, ttl).await {
            tracing::warn!(cache = self.kind(), key = %key, %error, "cache store failed");
        }
        Ok((value, false))
    }
}
