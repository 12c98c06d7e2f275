//! Update masks of the reference-data upserts (AIP-134): which fields of a stored record a
//! request changes.
//!
//! - No mask: every field sent non-empty is written; a field left empty keeps its stored value.
//!   proto3 cannot tell "empty" from "not sent", so an empty string, an UNSPECIFIED enum, an
//!   empty list and `false` all count as not sent: clearing a field, or writing
//!   `above_scale = false`, needs the mask.
//! - `paths`: only the named fields change, to what was sent (empty included).
//! - `*`: whole records are replaced.
//!
//! A record that is not stored yet is created from every field sent, whatever the mask. The key
//! field is always read; naming it in the mask changes nothing.

use std::collections::HashSet;

use zonerank_api::prost_types::FieldMask;

use crate::error::{ServiceError, Violation};

/// How a request's records merge with the stored ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mask {
    /// No mask: fields sent non-empty.
    Unset,
    /// `*`: every field.
    Whole,
    /// These fields.
    Paths(HashSet<String>),
}

impl Mask {
    /// The mask of a request whose records have the `key` field and the other `fields`.
    pub fn parse(
        mask: Option<&FieldMask>,
        key: &str,
        fields: &[&str],
    ) -> Result<Mask, ServiceError> {
        let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else {
            return Ok(Mask::Unset);
        };
        if mask.paths.iter().any(|p| p == "*") {
            if mask.paths.len() > 1 {
                return Err(ServiceError::invalid(
                    "update_mask.paths",
                    "\"*\" replaces whole records and stands alone",
                ));
            }
            return Ok(Mask::Whole);
        }
        let violations: Vec<Violation> = mask
            .paths
            .iter()
            .enumerate()
            .filter(|(_, path)| path.as_str() != key && !fields.contains(&path.as_str()))
            .map(|(i, path)| {
                Violation::new(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "no field {path:?}; the fields are {}, or \"*\" for whole records",
                        fields.join(", ")
                    ),
                )
            })
            .collect();
        if let Some(first) = violations.first() {
            return Err(ServiceError::InvalidArgument {
                message: format!("{}: {}; nothing written", first.field, first.reason),
                violations,
            });
        }
        Ok(Mask::Paths(mask.paths.iter().cloned().collect()))
    }

    /// The value of the field `path` after the merge of `sent` into `stored`.
    pub fn pick<T: Default + PartialEq>(&self, path: &str, sent: T, stored: T) -> T {
        let take_sent = match self {
            Mask::Whole => true,
            Mask::Paths(paths) => paths.contains(path),
            Mask::Unset => sent != T::default(),
        };
        if take_sent { sent } else { stored }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        })
    }

    const FIELDS: [&str; 3] = ["name", "name_en", "tags"];

    #[test]
    fn no_mask_keeps_what_was_left_empty() {
        let unset = Mask::parse(None, "code", &FIELDS).unwrap();
        assert_eq!(
            unset,
            Mask::parse(mask(&[]).as_ref(), "code", &FIELDS).unwrap()
        );
        assert_eq!(
            unset.pick("name_en", String::new(), "Henan".into()),
            "Henan"
        );
        assert_eq!(
            unset.pick("name", "河南".to_string(), "河南省".into()),
            "河南"
        );
        assert_eq!(
            unset.pick("tags", Vec::<String>::new(), vec!["a".into()]),
            ["a"]
        );
        assert!(
            unset.pick("above_scale", false, true),
            "false counts as not sent"
        );
        assert_eq!(unset.pick("level", 0, 2), 2);
    }

    #[test]
    fn paths_change_exactly_the_named_fields() {
        let paths = Mask::parse(mask(&["name_en", "code"]).as_ref(), "code", &FIELDS).unwrap();
        assert_eq!(paths.pick("name_en", String::new(), "Henan".into()), "");
        assert_eq!(
            paths.pick("name", "河南".to_string(), "河南省".into()),
            "河南省"
        );
        let whole = Mask::parse(mask(&["*"]).as_ref(), "code", &FIELDS).unwrap();
        assert_eq!(whole.pick("name_en", String::new(), "Henan".into()), "");
    }

    #[test]
    fn unknown_paths_are_named() {
        let err =
            Mask::parse(mask(&["name", "nmae", "parent"]).as_ref(), "code", &FIELDS).unwrap_err();
        let ServiceError::InvalidArgument { violations, .. } = err else {
            panic!("not invalid: {err}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["update_mask.paths[1]", "update_mask.paths[2]"]);
        assert!(
            violations[0].reason.contains("name_en"),
            "{}",
            violations[0].reason
        );
        assert!(Mask::parse(mask(&["*", "name"]).as_ref(), "code", &FIELDS).is_err());
    }
}
