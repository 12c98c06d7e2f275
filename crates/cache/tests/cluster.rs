//! The cache through a real three-master Redis Cluster that the test starts itself: three
//! `redis-server --cluster-enabled yes` on free ports in a temporary directory, joined by
//! `redis-cli --cluster create … --cluster-replicas 0`, and killed when the test ends.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zonerank_cache::{Cache, CacheKey};

const TTL: Duration = Duration::from_secs(60);

/// The servers, killed on drop (also when an assertion fails).
struct Cluster {
    servers: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A port that is free, whose cluster bus port (+10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port > 55_000 || taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (install redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `done` every 100 ms, up to `tries` times (waiting for processes, not timing them).
fn wait_for(tries: usize, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn start_cluster() -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = free_port(&ports);
        ports.push(port);
    }
    let mut cluster = Cluster {
        servers: Vec::new(),
        ports: ports.clone(),
        _dir: dir,
    };
    for &port in &ports {
        let node_dir = cluster._dir.path().join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let server = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        cluster.servers.push(server);
    }
    for &port in &ports {
        assert!(
            wait_for(100, || cli(port, &["ping"]).trim() == "PONG"),
            "redis-server on {port} did not start"
        );
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(created.success(), "cluster create failed");
    for &port in &ports {
        assert!(
            wait_for(200, || cli(port, &["cluster", "info"])
                .contains("cluster_state:ok")),
            "the cluster did not reach cluster_state:ok on {port}"
        );
    }
    cluster
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_runs_through_a_three_master_cluster() {
    let cluster = start_cluster();
    let url = format!(
        "redis+cluster://{}",
        cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cache = Cache::redis(&url, "zonerank-cluster-test:")
        .await
        .expect("connect to the cluster");
    assert_eq!(cache.kind(), "redis");
    cache.ping().await.expect("ping");

    // Enough keys that every master holds some (16384 slots split three ways).
    let keys: Vec<CacheKey> = (0..60u32)
        .map(|i| CacheKey::new("ranking.get", 1, &i.to_le_bytes()))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(cache.get(key).await.unwrap(), None);
        cache
            .put(key, format!("value {i}").as_bytes(), TTL)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            cache.get(key).await.unwrap(),
            Some(format!("value {i}").into_bytes())
        );
    }
    // Each master holds part of the keys: the cluster, not one node, stores them.
    let per_node: Vec<u64> = cluster
        .ports
        .iter()
        .map(|&p| cli(p, &["dbsize"]).trim().parse().expect("dbsize"))
        .collect();
    assert_eq!(per_node.iter().sum::<u64>(), 60, "{per_node:?}");
    assert!(per_node.iter().all(|&n| n > 0), "{per_node:?}");

    // get_or_compute through the cluster: computed once, then served.
    let key = CacheKey::new("metrics.compute", 7, b"request");
    let (first, hit_first) = cache
        .get_or_compute(&key, TTL, || async {
            Ok::<_, std::io::Error>(b"computed".to_vec())
        })
        .await
        .unwrap();
    let (second, hit_second) = cache
        .get_or_compute(&key, TTL, || async {
            Ok::<_, std::io::Error>(b"not again".to_vec())
        })
        .await
        .unwrap();
    assert_eq!((first, hit_first), (b"computed".to_vec(), false));
    assert_eq!((second, hit_second), (b"computed".to_vec(), true));

    // clear scans every master and deletes key by key (no cross-slot DEL).
    assert_eq!(cache.clear().await.unwrap(), 61);
    for key in &keys {
        assert_eq!(cache.get(key).await.unwrap(), None);
    }
    drop(cluster);
}
