//! Callers: JWT bearer tokens verified against a JSON Web Key Set file, the role each method
//! needs, and the guard that applies both to the zonerank services (health and reflection stay
//! open).

pub mod keys;
mod roles;
pub mod scope;

use std::{
    collections::HashMap,
    convert::Infallible,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use futures::future::BoxFuture;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet},
};
use tonic::{body::Body, server::NamedService};

pub use roles::{Role, authorize, is_known_method, method_path, needed_role};
pub use scope::{Caller, Scope};

use crate::error::ServiceError;

/// The authentication flags of a server.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AuthArgs {
    /// JSON Web Key Set file whose keys sign callers' tokens (re-read when it changes).
    #[arg(
        long,
        env = "ZONERANK_AUTH_JWKS",
        requires_all = ["auth_issuer", "auth_audience"]
    )]
    pub auth_jwks: Option<PathBuf>,
    /// The `iss` every token must carry.
    #[arg(long, env = "ZONERANK_AUTH_ISSUER", requires = "auth_jwks")]
    pub auth_issuer: Option<String>,
    /// The `aud` every token must carry.
    #[arg(long, env = "ZONERANK_AUTH_AUDIENCE", requires = "auth_jwks")]
    pub auth_audience: Option<String>,
    /// Serve without authentication on a non-loopback address (anyone who reaches the port
    /// may read and write everything).
    #[arg(long, env = "ZONERANK_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// A verified caller, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// Roles the token grants (unknown role names grant nothing).
    pub roles: Vec<Role>,
    /// GB/T 2260 codes of the regions (and their subtrees) a submitter may write under.
    pub regions: Vec<String>,
}

/// The signature algorithms accepted: no HMAC (a public key is not a shared secret), no `none`.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// How often, at most, the JWKS file is checked for changes.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A JWKS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JwksError {
    pub path: String,
    pub message: String,
}

/// Verification keys by `kid`, each with the one algorithm it verifies.
type Keys = HashMap<String, (Algorithm, DecodingKey)>;

fn load_keys(path: &Path) -> Result<Keys, JwksError> {
    let error = |message: String| JwksError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
    let mut keys = Keys::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::warn!(jwks = %path.display(), "a key without kid is ignored");
            continue;
        };
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => {
                tracing::warn!(%kid, "a key of an unsupported type (HMAC, P-384, …) is ignored");
                continue;
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| error(format!("key {kid}: {e}")))?;
        keys.insert(kid, (algorithm, key));
    }
    if keys.is_empty() {
        return Err(error(
            "no usable RS256, ES256 or EdDSA key with a kid".into(),
        ));
    }
    Ok(keys)
}

/// Checks bearer tokens against the keys of a JWKS file, re-read when the file changes.
pub struct Verifier {
    path: PathBuf,
    issuer: String,
    audience: String,
    current: Mutex<LoadedKeys>,
}

struct LoadedKeys {
    keys: Arc<Keys>,
    modified: Option<SystemTime>,
    checked: Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The claims zonerank reads; `exp`, `nbf`, `iss` and `aud` are checked by the validation.
#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    zonerank_roles: Vec<String>,
    #[serde(default)]
    zonerank_regions: Vec<String>,
}

impl Verifier {
    /// A verifier of tokens signed by the keys in `path` for `issuer` and `audience`.
    pub fn new(path: PathBuf, issuer: String, audience: String) -> Result<Verifier, JwksError> {
        let keys = Arc::new(load_keys(&path)?);
        Ok(Verifier {
            current: Mutex::new(LoadedKeys {
                keys,
                modified: modified(&path),
                checked: Instant::now(),
            }),
            path,
            issuer,
            audience,
        })
    }

    /// The verifier the flags ask for, if any.
    pub fn from_args(args: &AuthArgs) -> Result<Option<Verifier>, JwksError> {
        match (&args.auth_jwks, &args.auth_issuer, &args.auth_audience) {
            (Some(path), Some(issuer), Some(audience)) => {
                Verifier::new(path.clone(), issuer.clone(), audience.clone()).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn keys(&self) -> Arc<Keys> {
        let mut loaded = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let now = modified(&self.path);
            if now != loaded.modified {
                match load_keys(&self.path) {
                    Ok(keys) => {
                        tracing::info!(jwks = %self.path.display(), keys = keys.len(), "JWKS reloaded");
                        loaded.keys = Arc::new(keys);
                        loaded.modified = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS changed but cannot be read; keeping the previous keys");
                    }
                }
            }
        }
        loaded.keys.clone()
    }

    /// The principal of `token`, or UNAUTHENTICATED saying why not.
    pub fn verify(&self, token: &str) -> Result<Principal, ServiceError> {
        let refuse = |why: &str| ServiceError::Unauthenticated(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("not a signed JWT"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refuse("algorithm not accepted (RS256, ES256 or EdDSA)"));
        }
        let kid = header.kid.ok_or_else(|| refuse("no kid in the header"))?;
        let keys = self.keys();
        let (algorithm, key) = keys
            .get(&kid)
            .ok_or_else(|| refuse("signed by an unknown key"))?;
        if *algorithm != header.alg {
            return Err(refuse("algorithm does not match the key"));
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            refuse(match e.kind() {
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::ImmatureSignature => "not valid yet",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "malformed",
            })
        })?;
        Ok(Principal {
            subject: claims.claims.sub,
            roles: claims
                .claims
                .zonerank_roles
                .iter()
                .filter_map(|r| Role::from_claim(r))
                .collect(),
            regions: claims.claims.zonerank_regions,
        })
    }
}

tokio::task_local! {
    /// The caller's `authorization` value while its call is handled, forwarded on the calls
    /// the handler makes to other zonerank services (ranking → metrics).
    static CALLER_AUTHORIZATION: Option<http::HeaderValue>;
}

/// The `authorization` header of the call being handled, if it had one.
pub fn caller_authorization() -> Option<http::HeaderValue> {
    CALLER_AUTHORIZATION.try_with(Clone::clone).ok().flatten()
}

/// The principal of the `authorization: Bearer …` header, checked against `verifier`, and
/// allowed to call `path`.
fn admit(
    verifier: &Verifier,
    path: &str,
    headers: &http::HeaderMap,
) -> Result<Principal, ServiceError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| ServiceError::Unauthenticated("no bearer token".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            ServiceError::Unauthenticated("authorization is not `Bearer <token>`".into())
        })?;
    let principal = verifier.verify(token.trim())?;
    authorize(&principal, path)?;
    Ok(principal)
}

/// A zonerank service behind the token check and the role table; without a verifier, open.
/// With an audit store, every refused call and every failed write is recorded there (a
/// successful write records itself, in its own transaction).
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    verifier: Option<Arc<Verifier>>,
    audit: Option<crate::refusals::RefusalLog>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, verifier: Option<Arc<Verifier>>) -> Guarded<S> {
        Guarded {
            inner,
            verifier,
            audit: None,
        }
    }

    /// Records refusals (within the log's budget) and failed writes in `log`.
    pub fn audited(mut self, log: crate::refusals::RefusalLog) -> Guarded<S> {
        self.audit = Some(log);
        self
    }
}

/// Appends the event of a call of `path` by `principal` that ended with `status`, if the
/// audit log keeps such calls; a failure to record is logged, never the caller's problem.
async fn record_failure(
    log: Option<crate::refusals::RefusalLog>,
    principal: String,
    path: String,
    code: tonic::Code,
    message: String,
) {
    let Some(log) = log else { return };
    if !crate::audit::audits_failure(&path, code) {
        return;
    }
    let mut event = zonerank_storage::AuditEvent::new(
        &principal,
        &path,
        &crate::audit::code_name(code),
        &zonerank_telemetry::request_id(),
    );
    event.message = message;
    log.record(event, code).await;
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for Guarded<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        let mut caller = Caller::default();
        if let Some(verifier) = &self.verifier {
            match admit(verifier, request.uri().path(), request.headers()) {
                Ok(principal) => {
                    caller.principal = Some(principal.clone());
                    request.extensions_mut().insert(principal);
                }
                Err(refusal) => {
                    let path = request.uri().path().to_string();
                    tracing::info!(method = %path, error = %refusal, "call refused");
                    let principal = match &refusal {
                        ServiceError::PermissionDenied { metadata, .. } => metadata
                            .iter()
                            .find(|(k, _)| k == "principal")
                            .map(|(_, v)| v.clone()),
                        _ => None,
                    }
                    .unwrap_or_else(|| "anonymous".into());
                    let status = tonic::Status::from(refusal);
                    let audit = self.audit.clone();
                    return Box::pin(async move {
                        let message = status.message().to_string();
                        record_failure(audit, principal, path, status.code(), message).await;
                        Ok(status.into_http())
                    });
                }
            }
        }
        let path = request.uri().path().to_string();
        let principal = caller.name().to_string();
        request.extensions_mut().insert(caller);
        let call = self.inner.call(request);
        let audit = self.audit.clone();
        Box::pin(CALLER_AUTHORIZATION.scope(authorization, async move {
            let response = call.await?;
            // A status in the headers: every unary failure, and every refusal before a
            // stream starts.
            if let Some(status) = tonic::Status::from_header_map(response.headers()) {
                let message = status.message().to_string();
                record_failure(audit, principal, path, status.code(), message).await;
            }
            Ok(response)
        }))
    }
}
