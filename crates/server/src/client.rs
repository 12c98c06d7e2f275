//! Channels to zonerank servers, configured the same way for every caller: the ranking service
//! calling the metrics service, the CLI's import and demo.

use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// How long a connection attempt may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An endpoint for `url` (`http://host:port`, or `https://` for TLS) with TCP_NODELAY, so a
/// small request leaves at once instead of waiting on the server's delayed ACK, a bounded
/// connect time, and HTTP/2 keepalive pings while calls are open, so a server that vanished
/// without closing, or stopped answering, fails its calls within seconds. With `tls`, an `http://` URL is called over TLS as `https://`. The message
/// limits are set on each generated client from [`crate::limits`].
pub fn endpoint(
    url: impl Into<String>,
    tls: Option<&ClientTlsConfig>,
) -> Result<Endpoint, tonic::transport::Error> {
    let mut url: String = url.into();
    if tls.is_some()
        && let Some(rest) = url.strip_prefix("http://")
    {
        url = format!("https://{rest}");
    }
    let endpoint = Endpoint::from_shared(url)?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(crate::limits::CLIENT_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(crate::limits::CLIENT_KEEPALIVE_TIMEOUT);
    match tls {
        Some(tls) => endpoint.tls_config(tls.clone()),
        None => Ok(endpoint),
    }
}

/// A connected channel to `url`.
pub async fn connect(
    url: impl Into<String>,
    tls: Option<&ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    endpoint(url, tls)?.connect().await
}

/// Adds `authorization: Bearer <token>` to every call of a client (none without a token).
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<tonic::metadata::AsciiMetadataValue>);

impl Bearer {
    /// The header for `token`; a token that is not printable ASCII is refused.
    pub fn new(token: Option<&str>) -> Result<Bearer, String> {
        token
            .map(|t| {
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| "the token is not printable ASCII".to_string())
            })
            .transpose()
            .map(Bearer)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
