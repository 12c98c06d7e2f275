//! TLS for servers and clients (rustls with ring, no OpenSSL).
//!
//! Servers terminate TLS themselves over the accepted TCP connections: tonic's
//! `ServerTlsConfig` reads the certificate once, while cert-manager rotates it in place. The
//! certificate resolver here re-reads the files when their modification times change, so a new
//! certificate serves new connections without a restart.

use std::{
    fmt,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use futures::{Stream, StreamExt, stream::FuturesUnordered};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        crypto::CryptoProvider,
        server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
        sign::CertifiedKey,
    },
    server::TlsStream,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The TLS flags of a server.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain to serve TLS with (re-read when the file changes).
    #[arg(long, env = "ZONERANK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (re-read when the file changes).
    #[arg(long, env = "ZONERANK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one of them (mTLS).
    #[arg(long, env = "ZONERANK_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// The TLS flags of a client of a zonerank server.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ClientTlsArgs {
    /// PEM CA certificates to trust for the server's certificate (implies TLS).
    #[arg(long, env = "ZONERANK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate to present (mTLS).
    #[arg(long, env = "ZONERANK_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `--client-cert`.
    #[arg(long, env = "ZONERANK_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsError {
    pub path: String,
    pub message: String,
}

impl TlsError {
    fn new(path: &Path, message: impl fmt::Display) -> TlsError {
        TlsError {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, at most, the certificate files are checked for changes.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::new(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::new(path, e))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The server certificate, re-read from its files when they change.
struct ReloadingCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    mtimes: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, TlsError> {
        let certs = read_certs(cert_path)?;
        let key = read_key(key_path)?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::new(key_path, e))?;
        let certified = CertifiedKey::new(certs, signing);
        certified
            .keys_match()
            .map_err(|e| TlsError::new(key_path, format!("does not match the certificate: {e}")))?;
        Ok(certified)
    }

    fn new(cert_path: PathBuf, key_path: PathBuf) -> Result<ReloadingCertificate, TlsError> {
        let provider = provider();
        let mtimes = (modified(&cert_path), modified(&key_path));
        let key = Arc::new(Self::load(&cert_path, &key_path, &provider)?);
        Ok(ReloadingCertificate {
            cert_path,
            key_path,
            provider,
            current: Mutex::new(Loaded {
                key,
                mtimes,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate to serve, re-read first if a file changed. A file caught half-written
    /// keeps the previous certificate (and is tried again on the next check).
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let mtimes = (modified(&self.cert_path), modified(&self.key_path));
            if mtimes != loaded.mtimes {
                match Self::load(&self.cert_path, &self.key_path, &self.provider) {
                    Ok(key) => {
                        tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                        loaded.key = Arc::new(key);
                        loaded.mtimes = mtimes;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; serving the previous one");
                    }
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server's TLS acceptor, or `None` when no certificate is configured (plaintext).
pub fn acceptor(args: &TlsArgs) -> Result<Option<Acceptor>, TlsError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let resolver = Arc::new(ReloadingCertificate::new(cert.clone(), key.clone())?);
    let client_ca = args.tls_client_ca.clone();
    let acceptor = build_acceptor(cert, &resolver, client_ca.as_deref())?;
    Ok(Some(Acceptor {
        state: Arc::new(AcceptorState {
            current: Mutex::new(LoadedAcceptor {
                acceptor,
                ca_mtime: client_ca.as_deref().and_then(modified),
                checked: Instant::now(),
            }),
            cert_path: cert.clone(),
            resolver,
            client_ca,
        }),
    }))
}

fn build_acceptor(
    cert: &Path,
    resolver: &Arc<ReloadingCertificate>,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(cert, e))?;
    let mut config = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError::new(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::new(ca, e))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver.clone())
        }
        None => builder
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone()),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS acceptor of a server: the certificate reloads itself (see
/// [`ReloadingCertificate`]); the client CA of mTLS is re-read when its file changes, by
/// rebuilding the acceptor for the connections accepted after the change.
#[derive(Clone)]
pub struct Acceptor {
    state: Arc<AcceptorState>,
}

struct AcceptorState {
    cert_path: PathBuf,
    resolver: Arc<ReloadingCertificate>,
    client_ca: Option<PathBuf>,
    current: Mutex<LoadedAcceptor>,
}

struct LoadedAcceptor {
    acceptor: TlsAcceptor,
    ca_mtime: Option<SystemTime>,
    checked: Instant,
}

impl Acceptor {
    /// The acceptor for a new connection, rebuilt first if the client CA file changed. A CA
    /// file caught half-written keeps the previous CA (and is tried again on the next check).
    fn current(&self) -> TlsAcceptor {
        let state = &self.state;
        let mut loaded = state.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ca) = &state.client_ca
            && loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL
        {
            loaded.checked = Instant::now();
            let mtime = modified(ca);
            if mtime != loaded.ca_mtime {
                match build_acceptor(&state.cert_path, &state.resolver, Some(ca)) {
                    Ok(acceptor) => {
                        tracing::info!(client_ca = %ca.display(), "TLS client CA reloaded");
                        loaded.acceptor = acceptor;
                        loaded.ca_mtime = mtime;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS client CA changed but cannot be loaded; keeping the previous one");
                    }
                }
            }
        }
        loaded.acceptor.clone()
    }
}

type Handshake = Pin<Box<dyn Future<Output = Option<TlsStream<TcpStream>>> + Send>>;

/// Accepted connections after their TLS handshakes, which run concurrently so one slow client
/// does not hold up the others. Failed handshakes (a plaintext client, an untrusted client
/// certificate) are logged and dropped. Dropping the stream closes the listener.
pub struct TlsIncoming {
    tcp: Pin<Box<dyn Stream<Item = std::io::Result<TcpStream>> + Send>>,
    acceptor: Acceptor,
    handshakes: FuturesUnordered<Handshake>,
    tcp_done: bool,
}

impl TlsIncoming {
    pub fn new(
        tcp: impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
        acceptor: Acceptor,
    ) -> TlsIncoming {
        TlsIncoming {
            tcp: Box::pin(tcp),
            acceptor,
            handshakes: FuturesUnordered::new(),
            tcp_done: false,
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while !this.tcp_done {
            match this.tcp.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    let acceptor = this.acceptor.current();
                    this.handshakes.push(Box::pin(async move {
                        let peer = stream.peer_addr().ok();
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => Some(tls),
                            Ok(Err(e)) => {
                                tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(peer = ?peer, "TLS handshake timed out");
                                None
                            }
                        }
                    }));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.tcp_done = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_next_unpin(cx) {
                Poll::Ready(Some(Some(tls))) => return Poll::Ready(Some(Ok(tls))),
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) if this.tcp_done => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The client TLS configuration for `args`, or `None` for plaintext.
pub fn client_config(args: &ClientTlsArgs) -> Result<Option<ClientTlsConfig>, TlsError> {
    if args.ca_cert.is_none() && args.client_cert.is_none() {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &args.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| TlsError::new(ca, e))?;
        config = config.ca_certificate(Certificate::from_pem(pem));
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        let cert_pem = std::fs::read(cert).map_err(|e| TlsError::new(cert, e))?;
        let key_pem = std::fs::read(key).map_err(|e| TlsError::new(key, e))?;
        config = config.identity(Identity::from_pem(cert_pem, key_pem));
    }
    Ok(Some(config))
}
