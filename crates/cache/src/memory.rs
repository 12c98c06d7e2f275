//! In-process cache (moka) used when no Redis is configured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use crate::key::CacheKey;
use crate::stats::{CacheStats, Counters};

#[derive(Clone)]
struct Entry {
    data: Arc<[u8]>,
    ttl: Duration,
}

/// Expires each entry after the TTL given to its `put`.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A bounded in-process cache with per-entry TTL. Cheap to clone; clones share entries and stats.
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<String, Entry>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entry_count", &self.inner.entry_count())
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_entries` entries (least recently/frequently used evicted first).
    pub fn new(max_entries: u64) -> MemoryCache {
        MemoryCache {
            inner: moka::future::Cache::builder()
                .name("zonerank-cache")
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
            counters: Arc::new(Counters::default()),
        }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let value = self.inner.get(key.as_str()).await.map(|e| e.data.to_vec());
        if value.is_some() {
            self.counters.hit();
        } else {
            self.counters.miss();
        }
        value
    }

    /// Stores `value` for `ttl`; a zero TTL stores nothing.
    pub async fn put(&self, key: &CacheKey, value: &[u8], ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let entry = Entry {
            data: Arc::from(value),
            ttl,
        };
        self.inner.insert(key.as_str().to_owned(), entry).await;
    }

    /// Removes every entry; returns how many were removed.
    pub async fn clear(&self) -> u64 {
        let keys: Vec<Arc<String>> = self.inner.iter().map(|(k, _)| k).collect();
        let mut removed = 0;
        for key in keys {
            if self.inner.remove(key.as_str()).await.is_some() {
                removed += 1;
            }
        }
        removed
    }

    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot()
    }
}
