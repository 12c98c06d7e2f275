//! Cache keys that carry the data version.

use std::fmt;

use sha2::{Digest, Sha256};

/// A cache key: `"{namespace}:v{data_version}:{sha256 hex of request}"`.
///
/// The data version is bumped by every ingestion commit, so a key built after new data
/// arrived never matches an entry computed from older data. The request digest is SHA-256,
/// which is stable across processes, builds and machines (unlike `std`'s `DefaultHasher`),
/// so several pods sharing one Redis also share entries.
///
/// The Redis backend prepends its own key prefix (default [`crate::DEFAULT_KEY_PREFIX`]);
/// the key itself never contains it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// Builds the key for `request` (typically the encoded protobuf request, or any
    /// canonical byte encoding of the computation's inputs) under `namespace` and `data_version`.
    pub fn new(namespace: &str, data_version: u64, request: &[u8]) -> CacheKey {
        let digest = Sha256::digest(request);
        let mut key = String::with_capacity(namespace.len() + 24 + digest.len() * 2);
        key.push_str(namespace);
        key.push_str(":v");
        key.push_str(&data_version.to_string());
        key.push(':');
        push_hex(&mut key, &digest);
        CacheKey(key)
    }

    /// The key as a string (without any backend prefix).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the key, returning its string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CacheKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_stable_digest() {
        let key = CacheKey::new("metrics", 7, b"abc");
        // SHA-256("abc") is a published test vector: the digest never changes between builds.
        assert_eq!(
            key.as_str(),
            "metrics:v7:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(key, CacheKey::new("metrics", 7, b"abc"));
        assert_eq!(key.to_string(), key.as_str());
    }

    #[test]
    fn version_namespace_and_request_all_matter() {
        let base = CacheKey::new("ranking", 1, b"req");
        assert_ne!(base, CacheKey::new("ranking", 2, b"req"));
        assert_ne!(base, CacheKey::new("metrics", 1, b"req"));
        assert_ne!(base, CacheKey::new("ranking", 1, b"req2"));
    }
}
