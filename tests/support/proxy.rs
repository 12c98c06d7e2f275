//! A TCP proxy between a service and one of its dependencies (PostgreSQL, Redis, another
//! service), to make that dependency really fail: `cut` closes every open connection and
//! refuses new ones, `restore` lets them through again.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A proxy on an ephemeral port of 127.0.0.1; stops when dropped.
pub struct Proxy {
    /// Where clients connect instead of the upstream.
    pub address: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy forwarding to `upstream`.
    pub async fn to(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let open = Arc::new(watch::Sender::new(true));
        let task = tokio::spawn(accept(listener, upstream, open.clone()));
        Proxy {
            address,
            open,
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

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.send_replace(true);
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

async fn accept(listener: TcpListener, upstream: SocketAddr, open: Arc<watch::Sender<bool>>) {
    while let Ok((client, _)) = listener.accept().await {
        if !*open.borrow() {
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, upstream, open.subscribe()));
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut open: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = open.wait_for(|open| !*open) => {}
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
