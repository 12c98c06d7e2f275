use std::sync::atomic::{AtomicU64, Ordering};

/// Hit and miss counts of a cache since it was created (shared by all its clones).
///
/// A lookup that failed (e.g. Redis unreachable) counts as a miss, since the caller then
/// computes the result itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record<T, E>(&self, result: &Result<Option<T>, E>) {
        match result {
            Ok(Some(_)) => self.hit(),
            Ok(None) | Err(_) => self.miss(),
        }
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}
