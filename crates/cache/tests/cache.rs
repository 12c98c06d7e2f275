//! The same cases against the in-process cache and a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Each Redis test uses its own random key prefix and clears it at
//! the end; every Redis entry written here also has a TTL of at most a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zonerank_cache::{Cache, CacheError, CacheKey, CacheStats, MAX_VALUE_BYTES};

const TTL: Duration = Duration::from_secs(60);

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

fn unique_prefix() -> String {
    format!("zonerank-test-{:016x}:", rand::random::<u64>())
}

async fn redis_cache() -> Cache {
    let url = redis_url();
    Cache::redis(&url, &unique_prefix())
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Redis (set REDIS_URL): {e}"))
}

fn memory_cache() -> Cache {
    Cache::memory(1_000)
}

/// A raw connection for checking what the cache wrote.
async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

// ---------------------------------------------------------------- shared cases

async fn case_round_trip(cache: Cache) {
    let key = CacheKey::new("metrics.compute", 1, b"request-a");
    let other = CacheKey::new("metrics.compute", 1, b"request-b");
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.put(&key, b"\x00binary\xffvalue", TTL).await.unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(&b"\x00binary\xffvalue"[..])
    );
    assert_eq!(cache.get(&other).await.unwrap(), None);
    // Overwrite.
    cache.put(&key, b"second", TTL).await.unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    // An empty value is a value, not a miss.
    cache.put(&other, b"", TTL).await.unwrap();
    assert_eq!(cache.get(&other).await.unwrap(), Some(Vec::new()));
    assert_eq!(cache.stats(), CacheStats { hits: 3, misses: 2 });
    assert_eq!(cache.clone().stats(), cache.stats(), "clones share stats");
    cache.ping().await.unwrap();
    assert_eq!(cache.clear().await.unwrap(), 2);
    assert_eq!(cache.get(&key).await.unwrap(), None);
}

async fn case_new_data_version_misses(cache: Cache) {
    let v1 = CacheKey::new("ranking.get", 1, b"same request");
    let v2 = CacheKey::new("ranking.get", 2, b"same request");
    cache
        .put(&v1, b"ranking computed from v1", TTL)
        .await
        .unwrap();
    assert_eq!(cache.get(&v2).await.unwrap(), None);
    assert!(cache.get(&v1).await.unwrap().is_some());
    cache.clear().await.unwrap();
}

async fn case_ttl_expiry(cache: Cache) {
    let short = CacheKey::new("ttl", 1, b"short");
    let long = CacheKey::new("ttl", 1, b"long");
    let zero = CacheKey::new("ttl", 1, b"zero");
    cache
        .put(&short, b"x", Duration::from_millis(300))
        .await
        .unwrap();
    cache.put(&long, b"y", TTL).await.unwrap();
    cache.put(&zero, b"z", Duration::ZERO).await.unwrap();
    assert!(cache.get(&short).await.unwrap().is_some());
    assert_eq!(
        cache.get(&zero).await.unwrap(),
        None,
        "a zero TTL stores nothing"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(cache.get(&short).await.unwrap(), None, "expired");
    assert!(cache.get(&long).await.unwrap().is_some());
    cache.clear().await.unwrap();
}

async fn case_get_or_compute(cache: Cache) {
    let key = CacheKey::new("metrics.compute", 5, b"req");
    let calls = Arc::new(AtomicUsize::new(0));
    let compute = || {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(b"computed".to_vec())
        }
    };
    let (value, hit) = cache.get_or_compute(&key, TTL, compute).await.unwrap();
    assert_eq!((value.as_slice(), hit), (&b"computed"[..], false));
    let (value, hit) = cache.get_or_compute(&key, TTL, compute).await.unwrap();
    assert_eq!((value.as_slice(), hit), (&b"computed"[..], true));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "computed once");
    assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1 });

    // Compute errors propagate and store nothing.
    let failing = CacheKey::new("metrics.compute", 5, b"failing");
    let err = cache
        .get_or_compute(&failing, TTL, || async { Err::<Vec<u8>, _>("boom") })
        .await
        .unwrap_err();
    assert_eq!(err, "boom");
    assert_eq!(cache.get(&failing).await.unwrap(), None);
    cache.clear().await.unwrap();
}

async fn case_oversized_values_are_served_not_stored(cache: Cache) {
    let largest = CacheKey::new("metrics.compute", 6, b"largest");
    let value = vec![7u8; MAX_VALUE_BYTES];
    cache.put(&largest, &value, TTL).await.unwrap();
    assert_eq!(
        cache.get(&largest).await.unwrap().as_deref(),
        Some(&value[..])
    );

    let oversized = CacheKey::new("metrics.compute", 6, b"oversized");
    let value = vec![7u8; MAX_VALUE_BYTES + 1];
    cache.put(&oversized, &value, TTL).await.unwrap();
    assert_eq!(cache.get(&oversized).await.unwrap(), None);
    let (served, hit) = cache
        .get_or_compute(&oversized, TTL, || async {
            Ok::<_, std::io::Error>(value.clone())
        })
        .await
        .unwrap();
    assert_eq!((served.len(), hit), (MAX_VALUE_BYTES + 1, false));
    assert_eq!(cache.get(&oversized).await.unwrap(), None, "not stored");
    cache.clear().await.unwrap();
}

// ---------------------------------------------------------------- memory

#[tokio::test]
async fn memory_oversized_values_are_served_not_stored() {
    case_oversized_values_are_served_not_stored(memory_cache()).await;
}

#[tokio::test]
async fn memory_round_trip() {
    case_round_trip(memory_cache()).await;
}

#[tokio::test]
async fn memory_new_data_version_misses() {
    case_new_data_version_misses(memory_cache()).await;
}

#[tokio::test]
async fn memory_ttl_expiry() {
    case_ttl_expiry(memory_cache()).await;
}

#[tokio::test]
async fn memory_get_or_compute() {
    case_get_or_compute(memory_cache()).await;
}

#[tokio::test]
async fn memory_kind_and_config() {
    let cache = memory_cache();
    assert_eq!(cache.kind(), "memory");
    cache.ping().await.unwrap();
    assert_eq!(
        Cache::from_config(None, "zonerank:").await.unwrap().kind(),
        "memory"
    );
    assert_eq!(
        Cache::from_config(Some("  "), "zonerank:")
            .await
            .unwrap()
            .kind(),
        "memory"
    );
}

#[tokio::test]
async fn memory_clear_is_per_instance() {
    let a = memory_cache();
    let b = memory_cache();
    let key = CacheKey::new("ns", 1, b"k");
    a.put(&key, b"a", TTL).await.unwrap();
    b.put(&key, b"b", TTL).await.unwrap();
    assert_eq!(a.clear().await.unwrap(), 1);
    assert_eq!(a.get(&key).await.unwrap(), None);
    assert_eq!(b.get(&key).await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(b.clear().await.unwrap(), 1);
}

// ---------------------------------------------------------------- redis

#[tokio::test]
async fn redis_oversized_values_are_served_not_stored() {
    case_oversized_values_are_served_not_stored(redis_cache().await).await;
}

#[tokio::test]
async fn redis_round_trip() {
    let cache = redis_cache().await;
    assert_eq!(cache.kind(), "redis");
    case_round_trip(cache).await;
}

#[tokio::test]
async fn redis_new_data_version_misses() {
    case_new_data_version_misses(redis_cache().await).await;
}

#[tokio::test]
async fn redis_ttl_expiry() {
    case_ttl_expiry(redis_cache().await).await;
}

#[tokio::test]
async fn redis_get_or_compute() {
    case_get_or_compute(redis_cache().await).await;
}

#[tokio::test]
async fn redis_from_config_uses_redis() {
    let prefix = unique_prefix();
    let cache = Cache::from_config(Some(&redis_url()), &prefix)
        .await
        .unwrap();
    assert_eq!(cache.kind(), "redis");
    cache.ping().await.unwrap();
    assert_eq!(cache.clear().await.unwrap(), 0);
}

#[tokio::test]
async fn redis_stores_under_prefix_with_ttl() {
    let prefix = unique_prefix();
    let cache = Cache::redis(&redis_url(), &prefix).await.unwrap();
    let key = CacheKey::new("ns", 9, b"req");
    cache.put(&key, b"v", TTL).await.unwrap();

    let mut raw = raw_redis().await;
    let full = format!("{prefix}{key}");
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&full)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"v"[..]));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&full)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl), "SET with EX 60, got TTL {ttl}");

    // A second client with the same prefix (another pod) shares the entry.
    let other_pod = Cache::redis(&redis_url(), &prefix).await.unwrap();
    assert_eq!(
        other_pod.get(&key).await.unwrap().as_deref(),
        Some(&b"v"[..])
    );

    assert_eq!(cache.clear().await.unwrap(), 1);
}

#[tokio::test]
async fn redis_clear_removes_only_its_prefix() {
    let mine = redis_cache().await;
    let theirs_prefix = unique_prefix();
    let theirs = Cache::redis(&redis_url(), &theirs_prefix).await.unwrap();
    let key = CacheKey::new("ns", 1, b"shared request");

    // More keys than one SCAN/DEL batch, so batching is exercised.
    for i in 0..1_200u32 {
        let k = CacheKey::new("bulk", 1, &i.to_be_bytes());
        mine.put(&k, b"x", TTL).await.unwrap();
    }
    mine.put(&key, b"mine", TTL).await.unwrap();
    theirs.put(&key, b"theirs", TTL).await.unwrap();

    assert_eq!(mine.clear().await.unwrap(), 1_201);
    assert_eq!(mine.get(&key).await.unwrap(), None);
    assert_eq!(
        theirs.get(&key).await.unwrap().as_deref(),
        Some(&b"theirs"[..]),
        "other prefix survives"
    );

    assert_eq!(theirs.clear().await.unwrap(), 1);
    let mut raw = raw_redis().await;
    let left: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{theirs_prefix}{key}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, None);
}

#[tokio::test]
async fn redis_unreachable_url_fails_clearly() {
    let started = std::time::Instant::now();
    let err = Cache::redis("redis://app:s3cret@127.0.0.1:1", "zonerank:")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to Redis at redis://app:***@127.0.0.1:1"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");

    let err = Cache::from_config(Some("redis://127.0.0.1:1"), "zonerank:")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redis://127.0.0.1:1"), "{err}");

    let err = Cache::redis("not a url", "zonerank:").await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidUrl { .. }), "{err:?}");
}

/// A fake Redis that accepts connections and answers every command with an error, standing
/// in for a cache that broke after start-up.
async fn broken_redis() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // One error reply per command (each command is a RESP array "*N\r\n…").
                    let commands = buf[..n]
                        .split(|&b| b == b'\n')
                        .filter(|line| line.first() == Some(&b'*'))
                        .count();
                    for _ in 0..commands {
                        if socket.write_all(b"-ERR cache is broken\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("redis://{addr}")
}

#[tokio::test]
async fn redis_broken_cache_never_fails_a_request() {
    let cache = Cache::redis(&broken_redis().await, &unique_prefix())
        .await
        .unwrap();
    let key = CacheKey::new("ns", 1, b"req");
    let err = cache.get(&key).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Redis GET failed at redis://127.0.0.1:"),
        "{err}"
    );
    assert!(cache.ping().await.is_err());

    let (value, hit) = cache
        .get_or_compute(&key, TTL, || async {
            Ok::<_, std::io::Error>(b"fresh".to_vec())
        })
        .await
        .unwrap();
    assert_eq!((value.as_slice(), hit), (&b"fresh"[..], false));
    assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 2 });
}
