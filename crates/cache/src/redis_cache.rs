//! Redis-backed cache shared by all pods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

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

/// The URL scheme of a Redis Cluster: `redis+cluster://[user:password@]h1:p1,h2:p2,…` lists
/// seed nodes (any of the cluster's nodes; the client learns the slot map from them).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// One Redis server (through [`ConnectionManager`], which reconnects on its own) or a Redis
/// Cluster (through redis-rs' cluster connection, which follows MOVED/ASK redirections and
/// refreshes the slot map itself). The cache sends only single-key commands, so keys need no
/// hash tags: each lands on the node of its own slot.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster {
        conn: ClusterConnection,
        /// The seed URLs, `redis://…` each, kept to reach every master for SCAN.
        nodes: Vec<String>,
    },
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster { conn, .. } => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster { conn, .. } => conn.get_db(),
        }
    }
}

/// A Redis cache on one server or a Redis Cluster, chosen by the URL. Cheap to clone.
///
/// When a command fails because Redis cannot be reached, the cache is marked down: lookups
/// answer "not cached" and stores are skipped at once, without touching the network, while a
/// background task probes Redis every [`PROBE_EVERY`] and marks it up again when it answers.
/// A dead Redis so costs one failed command, not a timeout per request; the outage and the
/// recovery are logged once each.
#[derive(Clone)]
pub struct RedisCache {
    conn: Conn,
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    /// The URL with any password masked, for messages.
    display_url: String,
    counters: Counters,
    /// Redis failed to answer and has not answered a probe since.
    down: AtomicBool,
    /// Full keys deleted when Redis answers again after an outage, before it is marked up.
    forget_after_outage: Mutex<Vec<String>>,
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
        if let Some(nodes) = cluster_nodes(url) {
            return RedisCache::connect_cluster(url, nodes, key_prefix).await;
        }
        let (client, display_url) = client(url)?;
        let conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|source| CacheError::Connect {
                url: display_url.clone(),
                source,
            })?;
        Ok(RedisCache::with_connection(
            Conn::Single(conn),
            key_prefix,
            display_url,
        ))
    }

    /// A Redis Cluster from its seed nodes; fails if none answers.
    async fn connect_cluster(
        url: &str,
        nodes: Vec<String>,
        key_prefix: &str,
    ) -> Result<RedisCache, CacheError> {
        let display_url = redact_url(url);
        let client = ClusterClient::builder(nodes.clone())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(1)
            .build()
            .map_err(|source| CacheError::InvalidUrl {
                url: display_url.clone(),
                source,
            })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|source| CacheError::Connect {
                url: display_url.clone(),
                source,
            })?;
        Ok(RedisCache::with_connection(
            Conn::Cluster { conn, nodes },
            key_prefix,
            display_url,
        ))
    }

    /// Like [`RedisCache::connect`], but a Redis that does not answer yet is no failure: the
    /// cache starts marked down and connects in the background. Only a URL that does not
    /// parse fails. For services, whose cache is optional.
    pub async fn connect_in_background(
        url: &str,
        key_prefix: &str,
    ) -> Result<RedisCache, CacheError> {
        if cluster_nodes(url).is_some() {
            // The cluster client needs the slot map before it can route anything, so it
            // connects now; an unreachable cluster is a failure the service reports at start.
            return RedisCache::connect(url, key_prefix).await;
        }
        let (client, display_url) = client(url)?;
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config()).map_err(
            |source| CacheError::InvalidUrl {
                url: display_url.clone(),
                source,
            },
        )?;
        let cache = RedisCache::with_connection(Conn::Single(conn), key_prefix, display_url);
        if let Err(error) = cache.probe().await {
            cache.mark_down(&error);
        }
        Ok(cache)
    }

    fn with_connection(conn: Conn, key_prefix: &str, display_url: String) -> RedisCache {
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
                forget_after_outage: Mutex::new(Vec::new()),
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
                if cache.probe().await.is_ok() && cache.forget_outage_keys().await.is_ok() {
                    cache.inner.down.store(false, Ordering::Release);
                    tracing::info!(url = %cache.inner.display_url, "Redis answers again: cache in use");
                    return;
                }
            }
        });
    }

    /// Has `key` deleted whenever Redis answers again after an outage, before the cache is used
    /// again: for a key whose value the writes made during the outage would have replaced
    /// (their stores were skipped), so that no reader takes the value from before the outage
    /// for a current one. Registering a key twice registers it once.
    pub fn forget_after_outage(&self, key: &CacheKey) {
        let full = self.full_key(key);
        let mut keys = self
            .inner
            .forget_after_outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !keys.contains(&full) {
            keys.push(full);
        }
    }

    /// Deletes the keys registered with [`RedisCache::forget_after_outage`], one `DEL` per key
    /// (keys of a cluster live on different nodes).
    async fn forget_outage_keys(&self) -> Result<(), redis::RedisError> {
        let keys = self
            .inner
            .forget_after_outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut conn = self.conn.clone();
        for key in keys {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(())
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
    /// deletes (never `KEYS`); returns how many keys were deleted. On a cluster every master
    /// is scanned, and each key is deleted on its own (a multi-key `DEL` would cross slots).
    pub async fn clear(&self) -> Result<u64, CacheError> {
        match &self.conn {
            Conn::Single(conn) => self.clear_on(conn.clone(), true).await,
            Conn::Cluster { conn, nodes } => {
                let mut deleted = 0;
                for master in self.cluster_masters(conn.clone(), nodes).await? {
                    let node = redis::Client::open(master.as_str())
                        .map_err(|e| self.command_error("SCAN", e))?;
                    let node = node
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(|e| self.command_error("SCAN", e))?;
                    deleted += self.clear_on(node, false).await?;
                }
                Ok(deleted)
            }
        }
    }

    /// The URL of every master of the cluster, from `CLUSTER NODES`, with the seed URLs'
    /// credentials.
    async fn cluster_masters(
        &self,
        mut conn: ClusterConnection,
        seeds: &[String],
    ) -> Result<Vec<String>, CacheError> {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.command_error("CLUSTER NODES", e))?;
        let userinfo = seeds
            .first()
            .and_then(|s| s.strip_prefix("redis://"))
            .and_then(|s| s.rsplit_once('@'))
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        Ok(masters_of(&text)
            .into_iter()
            .map(|address| format!("redis://{userinfo}{address}"))
            .collect())
    }

    /// SCAN and delete the prefix's keys on one connection; `multi_key` sends one DEL per
    /// batch, otherwise a pipeline of single-key DELs.
    async fn clear_on<C: ConnectionLike>(
        &self,
        mut conn: C,
        multi_key: bool,
    ) -> Result<u64, CacheError> {
        let pattern = format!("{}*", escape_glob(&self.inner.prefix));
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
                if multi_key {
                    let n: u64 = redis::cmd("DEL")
                        .arg(batch)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| self.command_error("DEL", e))?;
                    deleted += n;
                } else {
                    let mut pipe = redis::pipe();
                    for key in batch {
                        pipe.cmd("DEL").arg(key);
                    }
                    let counts: Vec<u64> = pipe
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| self.command_error("DEL", e))?;
                    deleted += counts.iter().sum::<u64>();
                }
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

/// The seed node URLs of a `redis+cluster://[userinfo@]h1:p1,h2:p2` URL, each as
/// `redis://[userinfo@]host:port`; None for any other URL.
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.trim().strip_prefix(CLUSTER_SCHEME)?;
    let rest = rest.trim_end_matches('/');
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{userinfo}{h}"))
            .collect(),
    )
}

/// The `host:port` of each master in a `CLUSTER NODES` reply (lines of
/// `id host:port@cport[,hostname] flags master-id …`).
fn masters_of(nodes: &str) -> Vec<String> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_id, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let is_master = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            let address = address.split(['@', ',']).next()?;
            is_master.then(|| address.to_owned())
        })
        .collect()
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
    fn cluster_urls_list_their_seed_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://a:7000, b:7001/").unwrap(),
            ["redis://a:7000", "redis://b:7001"]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://u:pw@a:7000,b:7001").unwrap(),
            ["redis://u:pw@a:7000", "redis://u:pw@b:7001"]
        );
        let nodes = "07c3 127.0.0.1:30004@40004 myself,master - 0 0 1 connected 0-5460\n\
                     67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922\n\
                     292f 127.0.0.1:30005@40005 slave 67ed 0 1426238316232 2 connected\n\
                     e7d1 127.0.0.1:30003@40003,host.example master,fail - 0 0 3 connected\n";
        assert_eq!(masters_of(nodes), ["127.0.0.1:30004", "127.0.0.1:30002"]);
    }

    #[test]
    fn escapes_glob() {
        assert_eq!(escape_glob("zonerank:"), "zonerank:");
        assert_eq!(escape_glob("a*b?[c]"), r"a\*b\?\[c\]");
    }
}
