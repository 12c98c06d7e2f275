//! A TCP proxy between a service and one of its dependencies (PostgreSQL, Redis, another
//! service), to make that dependency really fail: `cut` closes every open connection and
//! refuses new ones, `freeze` keeps them open but stops passing bytes (a process that stopped
//! answering, or a network that drops packets without a reset), `restore` lets them through
//! again.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::JoinHandle,
};

/// A proxy on an ephemeral port of 127.0.0.1; stops when dropped.
pub struct Proxy {
    /// Where clients connect instead of the upstream.
    pub address: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    flowing: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy forwarding to `upstream`.
    pub async fn to(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let open = Arc::new(watch::Sender::new(true));
        let flowing = Arc::new(watch::Sender::new(true));
        let task = tokio::spawn(accept(listener, upstream, open.clone(), flowing.clone()));
        Proxy {
            address,
            open,
            flowing,
            task,
        }
    }

    /// A proxy in front of the server `url` names (`scheme://[user@]host:port/…`) and the same
    /// URL pointing at the proxy instead.
    pub async fn in_front_of(url: &str) -> (Proxy, String) {
        let (before, authority, after) = split_authority(url);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        let upstream = tokio::net::lookup_host(host_port)
            .await
            .expect("resolve upstream")
            .next()
            .expect("an upstream address");
        let proxy = Proxy::to(upstream).await;
        let url = format!("{before}{userinfo}{}{after}", proxy.address);
        (proxy, url)
    }

    /// Closes every open connection and refuses new ones (each is closed as it is accepted).
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Keeps every connection open and accepts new ones, but passes no byte either way.
    pub fn freeze(&self) {
        self.flowing.send_replace(false);
    }

    /// Lets connections through again (and the bytes held while frozen).
    pub fn restore(&self) {
        self.open.send_replace(true);
        self.flowing.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// `(scheme://, host:port with any userinfo, the rest)`.
fn split_authority(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    (&url[..start], &url[start..end], &url[end..])
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    flowing: Arc<watch::Sender<bool>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if !*open.borrow() {
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, upstream, open.subscribe(), flowing.clone()));
    }
}

/// Copies both ways until either side closes or the proxy is cut, holding bytes while frozen.
async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    mut open: watch::Receiver<bool>,
    flowing: Arc<watch::Sender<bool>>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, flowing.subscribe()) => {}
        _ = pump(server_read, client_write, flowing.subscribe()) => {}
        _ = open.wait_for(|open| !*open) => {}
    }
}

/// Copies `from` to `to`, each chunk only once the proxy is not frozen; ends at either's close.
/// (tokio's `copy_bidirectional` cannot be paused.)
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flowing: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if flowing.wait_for(|flowing| *flowing).await.is_err()
            || to.write_all(&buffer[..n]).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn authorities_are_found_in_database_and_cache_urls() {
        assert_eq!(
            split_authority("postgres://postgres@127.0.0.1:5432/zr_1"),
            ("postgres://", "postgres@127.0.0.1:5432", "/zr_1")
        );
        assert_eq!(
            split_authority("redis://127.0.0.1:6379"),
            ("redis://", "127.0.0.1:6379", "")
        );
        assert_eq!(
            split_authority("http://127.0.0.1:50051"),
            ("http://", "127.0.0.1:50051", "")
        );
    }
}
