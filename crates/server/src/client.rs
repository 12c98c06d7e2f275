//! Channels to zonerank servers, configured the same way for every caller: the ranking service
//! calling the metrics service, the CLI's import and demo.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An endpoint for `url` (`http://host:port`) with TCP_NODELAY, so a small request leaves at
/// once instead of waiting on the server's delayed ACK, a bounded connect time, and the
/// servers' HTTP/2 keepalive, so a server that vanished without closing is noticed. The
/// message limits are set on each generated client from [`crate::limits`].
pub fn endpoint(url: impl Into<String>) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.into())?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(crate::limits::KEEPALIVE_INTERVAL)
        .keep_alive_timeout(crate::limits::KEEPALIVE_TIMEOUT))
}

/// A connected channel to `url`.
pub async fn connect(url: impl Into<String>) -> Result<Channel, tonic::transport::Error> {
    endpoint(url)?.connect().await
}
