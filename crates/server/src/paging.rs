//! The one paging convention of every list: `page_size` (0 → the call's default, capped at its
//! maximum, negative refused) and an opaque `page_token`.
//!
//! Two kinds of token:
//! - key tokens, for lists read from the store in key order: the last key of the previous page;
//! - offset tokens, for lists computed per request (simulations, robustness, most improved):
//!   the position of the next item and a fingerprint of the request, so a token is refused
//!   when sent with other request fields (AIP-158).

use crate::error::ServiceError;

/// The page size of a listing: 0 → `default`, above `max` → `max`, negative → an error.
pub fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, ServiceError> {
    match requested {
        n if n < 0 => Err(ServiceError::invalid("page_size", "must not be negative")),
        0 => Ok(default),
        n => Ok((n as u64).min(max)),
    }
}

fn bad_token() -> ServiceError {
    ServiceError::invalid("page_token", "not a token this service handed out")
}

/// Page tokens are the last key of the previous page, hex-encoded so clients treat them as
/// opaque.
pub fn encode_page_token(last_key: &str) -> String {
    hex(last_key.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return None;
    }
    (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
        .collect()
}

/// The key a page token stands for; an empty token is the first page.
pub fn decode_page_token(token: &str) -> Result<Option<String>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = unhex(token).ok_or_else(bad_token)?;
    String::from_utf8(bytes).map(Some).map_err(|_| bad_token())
}

/// The page token of a list keyed by a numeric id (the previous page's last).
pub fn encode_id_token(last_id: i64) -> String {
    encode_page_token(&last_id.to_string())
}

/// The id an [`encode_id_token`] token stands for; an empty token is the first page.
pub fn decode_id_token(token: &str) -> Result<Option<i64>, ServiceError> {
    decode_page_token(token)?
        .map(|id| id.parse().map_err(|_| bad_token()))
        .transpose()
}

/// Separates the parts of a composite key in a token: PostgreSQL text cannot hold NUL, so no
/// stored key contains it.
const KEY_PART_SEPARATOR: char = '\0';

/// The page token of a composite sort key, e.g. (indicator, period, revision).
pub fn encode_key_token(parts: &[&str]) -> String {
    encode_page_token(&parts.join(&KEY_PART_SEPARATOR.to_string()))
}

/// The `N` parts of a composite key a page token stands for; an empty token is the first page.
pub fn decode_key_token<const N: usize>(token: &str) -> Result<Option<[String; N]>, ServiceError> {
    let Some(key) = decode_page_token(token)? else {
        return Ok(None);
    };
    let parts: Vec<String> = key.split(KEY_PART_SEPARATOR).map(str::to_string).collect();
    <[String; N]>::try_from(parts)
        .map(Some)
        .map_err(|_| bad_token())
}

/// A fingerprint of the request fields an offset token is bound to (FNV-1a over their
/// encodings; stable across processes, unlike std's hasher).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The token of the page starting at item `offset` of a request with `fingerprint`.
pub fn encode_offset_token(offset: u64, fingerprint: u64) -> String {
    let mut bytes = offset.to_be_bytes().to_vec();
    bytes.extend_from_slice(&fingerprint.to_be_bytes());
    hex(&bytes)
}

/// The offset a token stands for (0 for an empty token), refused when it was handed out for a
/// request with other fields.
pub fn decode_offset_token(token: &str, fingerprint: u64) -> Result<u64, ServiceError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bytes = unhex(token).ok_or_else(bad_token)?;
    let [
        o0,
        o1,
        o2,
        o3,
        o4,
        o5,
        o6,
        o7,
        f0,
        f1,
        f2,
        f3,
        f4,
        f5,
        f6,
        f7,
    ] = bytes[..]
    else {
        return Err(bad_token());
    };
    let offset = u64::from_be_bytes([o0, o1, o2, o3, o4, o5, o6, o7]);
    let print = u64::from_be_bytes([f0, f1, f2, f3, f4, f5, f6, f7]);
    if print != fingerprint {
        return Err(ServiceError::invalid(
            "page_token",
            "handed out for a request with other fields; send the same fields with it",
        ));
    }
    Ok(offset)
}

/// One page of `items` (already in their order) from `offset`, and the token of the next page.
pub fn offset_page<T>(
    items: impl IntoIterator<Item = T>,
    offset: u64,
    size: u64,
    fingerprint: u64,
) -> (Vec<T>, String) {
    let mut iter = items.into_iter().skip(offset as usize);
    let page: Vec<T> = iter.by_ref().take(size as usize).collect();
    let next = if iter.next().is_some() {
        encode_offset_token(offset + page.len() as u64, fingerprint)
    } else {
        String::new()
    };
    (page, next)
}

/// One page of `items` (sorted by `key`, computed per request) after the key `after`, and the
/// key token of the next page.
pub fn key_page<T>(
    items: impl IntoIterator<Item = T>,
    after: Option<&str>,
    size: u64,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    let mut iter = items
        .into_iter()
        .filter(|item| after.is_none_or(|a| key(item).as_str() > a));
    let page: Vec<T> = iter.by_ref().take(size as usize).collect();
    let next = match (iter.next(), page.last()) {
        (Some(_), Some(last)) => encode_page_token(&key(last)),
        _ => String::new(),
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pages_continue_after_the_last_key() {
        let items = ["a", "b", "c"];
        let (page, next) = key_page(items, None, 2, |s| s.to_string());
        assert_eq!(page, ["a", "b"]);
        let after = decode_page_token(&next).unwrap();
        let (page, next) = key_page(items, after.as_deref(), 2, |s| s.to_string());
        assert_eq!((page, next.as_str()), (vec!["c"], ""));
        let (page, next) = key_page(items, None, 3, |s| s.to_string());
        assert_eq!((page.len(), next.as_str()), (3, ""));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_forgeries() {
        let token = encode_page_token("411725-CJQ");
        assert_eq!(
            decode_page_token(&token).unwrap().as_deref(),
            Some("411725-CJQ")
        );
        assert_eq!(decode_page_token("").unwrap(), None);
        assert!(decode_page_token("zz").is_err());
        assert!(decode_page_token("abc").is_err());
    }

    #[test]
    fn composite_key_tokens_round_trip_and_count_their_parts() {
        let token = encode_key_token(&["output_value", "2014-H1", "2"]);
        assert_eq!(
            decode_key_token::<3>(&token).unwrap(),
            Some(["output_value".into(), "2014-H1".into(), "2".into()])
        );
        assert_eq!(decode_key_token::<3>("").unwrap(), None);
        assert!(decode_key_token::<2>(&token).is_err());
        assert!(decode_key_token::<2>(&encode_page_token("2014")).is_err());
    }

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(page_size(0, 100, 1000).unwrap(), 100);
        assert_eq!(page_size(5000, 100, 1000).unwrap(), 1000);
        assert_eq!(page_size(7, 100, 1000).unwrap(), 7);
        assert!(page_size(-1, 100, 1000).is_err());
    }

    #[test]
    fn offset_pages_cover_everything_once_and_bind_to_the_request() {
        let print = fingerprint(&[b"run-1", &7u64.to_be_bytes()]);
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let offset = decode_offset_token(&token, print).unwrap();
            let (page, next) = offset_page(0..10, offset, 4, print);
            seen.extend(page);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let token = encode_offset_token(4, print);
        let other = fingerprint(&[b"run-1", &8u64.to_be_bytes()]);
        assert!(decode_offset_token(&token, other).is_err());
        assert!(decode_offset_token("00", print).is_err());
        // An exact last page has no next token.
        assert_eq!(offset_page(0..4, 0, 4, print).1, "");
    }
}
