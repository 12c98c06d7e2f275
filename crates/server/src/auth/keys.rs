//! Signing keys and tokens: what `zonerank auth keygen` and `zonerank auth token` do, and what
//! tests use to make their own.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet, ThumbprintHash},
};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519};

/// The kinds of signing key `keygen` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// Ed25519 (JWT `EdDSA`).
    Ed25519,
    /// ECDSA P-256 (JWT `ES256`).
    P256,
}

/// A private signing key (PKCS#8 PEM) and the public key set that verifies it.
pub struct SigningKey {
    key: KeyPair,
}

/// A key or token that cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl SigningKey {
    /// A new random key.
    pub fn generate(kind: KeyKind) -> Result<SigningKey, KeyError> {
        let algorithm = match kind {
            KeyKind::Ed25519 => &PKCS_ED25519,
            KeyKind::P256 => &PKCS_ECDSA_P256_SHA256,
        };
        let key = KeyPair::generate_for(algorithm).map_err(|e| KeyError(e.to_string()))?;
        Ok(SigningKey { key })
    }

    /// The key in a PEM file written by [`SigningKey::pem`].
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let key = KeyPair::from_pem(pem).map_err(|e| KeyError(format!("not a PEM key: {e}")))?;
        if key.algorithm() != &PKCS_ED25519 && key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(KeyError("only Ed25519 and P-256 keys sign tokens".into()));
        }
        Ok(SigningKey { key })
    }

    /// The private key, PKCS#8 PEM.
    pub fn pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn algorithm(&self) -> Algorithm {
        if self.key.algorithm() == &PKCS_ED25519 {
            Algorithm::EdDSA
        } else {
            Algorithm::ES256
        }
    }

    /// The public key as a JWK, its `kid` the RFC 7638 thumbprint.
    pub fn jwk(&self) -> Jwk {
        let raw = self.key.public_key_raw();
        let value = match self.algorithm() {
            Algorithm::EdDSA => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(raw),
                "alg": "EdDSA", "use": "sig",
            }),
            // An uncompressed point: 0x04, then x and y of 32 bytes each.
            _ => serde_json::json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
                "alg": "ES256", "use": "sig",
            }),
        };
        let mut jwk: Jwk = serde_json::from_value(value).expect("a well-formed JWK");
        jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256));
        jwk
    }

    /// The key set servers read (`--auth-jwks`), with this key alone.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk()],
        }
    }

    /// A token signed by this key for `claims` (a JSON object with `sub`, `iss`, `aud`, `exp`…).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        let pem = self.pem();
        let key = match self.algorithm() {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .map_err(|e| KeyError(e.to_string()))?;
        let mut header = Header::new(self.algorithm());
        header.kid = self.jwk().common.key_id;
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| KeyError(e.to_string()))
    }
}

/// The claims of a zonerank token.
pub struct TokenClaims<'a> {
    pub subject: &'a str,
    pub roles: &'a [String],
    pub regions: &'a [String],
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Seconds the token is valid from now.
    pub ttl_secs: u64,
}

impl TokenClaims<'_> {
    /// The JSON claims, `iat` and `nbf` now and `exp` after the ttl.
    pub fn to_json(&self) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        serde_json::json!({
            "sub": self.subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_secs,
            "zonerank_roles": self.roles,
            "zonerank_regions": self.regions,
        })
    }
}
