//! The checks every request passes before a handler reads it, walked over the message by
//! reflection so that no field of any message is left out:
//!
//! - **text**: no NUL or other control character in any string (tabs and line breaks only in
//!   the free-text fields), and each string within its documented length;
//! - **enums**: a number the contract does not define is refused, never read as a default;
//! - **numbers**: every `double` is finite;
//! - **lists**: a list nested inside a record (a zone's tags) holds at most
//!   [`MAX_NESTED_ITEMS`] items, a request's own lists at most [`MAX_TOP_LEVEL_ITEMS`].
//!
//! Each fault names its field path (`zones[3].tags[0]`), as the handlers' own checks do.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, Value};

use crate::error::{ServiceError, Violation};

/// Strings of fields not listed in [`LENGTH_CAPS`] hold at most this many characters (names,
/// codes, ids, units, sources, tags).
pub const DEFAULT_MAX_CHARS: usize = 200;

/// Free-text fields: tabs and line breaks are allowed there, and they may be longer.
const FREE_TEXT: [&str; 5] = ["description", "note", "notes", "reason", "evidence"];

/// Length caps, in characters, of the fields that differ from [`DEFAULT_MAX_CHARS`].
const LENGTH_CAPS: [(&str, usize); 10] = [
    ("description", 4000),
    ("note", 4000),
    ("notes", 4000),
    ("reason", 4000),
    ("evidence", 4000),
    // metric expressions and gates such as "revenue >= 1000000"
    ("metric", 1000),
    ("metrics", 1000),
    ("gates", 1000),
    ("page_token", 1000),
    ("paths", 100),
];

/// Items in a list inside a record (a zone's tags, a scheme's criteria).
pub const MAX_NESTED_ITEMS: usize = 1000;

/// Items in one of a request's own lists (zones, observations of one batch).
pub const MAX_TOP_LEVEL_ITEMS: usize = 200_000;

/// Fields whose value the handlers judge themselves, with a finer answer than a refusal of the
/// whole request: an observation's value is checked per row (named `rows[N].value`, and left
/// out alone under `allow_partial`), and a cohort's zone kind that names no kind is NOT_FOUND
/// like an unknown region.
const JUDGED_BY_HANDLERS: [(&str, &str); 2] = [
    ("zonerank.v1.Observation", "value"),
    ("zonerank.v1.CohortSelector", "zone_kind"),
];

/// Faults listed before the walk stops.
const MAX_FAULTS: usize = 100;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(zonerank_api::FILE_DESCRIPTOR_SET)
        .expect("the API's own descriptor set decodes")
});

/// Checks `message` (a request of the zonerank.v1 contract); `Ok` when every field passes.
pub fn check<M: prost::Message + prost::Name>(message: &M) -> Result<(), ServiceError> {
    let Some(descriptor) = POOL.get_message_by_name(&M::full_name()) else {
        // Only zonerank.v1 messages are in the pool; nothing else reaches the handlers.
        return Ok(());
    };
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|_| ServiceError::invalid("", "the request does not decode"))?;
    let mut faults = Vec::new();
    walk_message(&dynamic, "", 0, &mut faults);
    if faults.is_empty() {
        return Ok(());
    }
    let message = match faults.len() {
        1 => format!("{}: {}", faults[0].field, faults[0].reason),
        n => format!(
            "{}: {} (and {} more faults)",
            faults[0].field,
            faults[0].reason,
            n - 1
        ),
    };
    Err(ServiceError::InvalidArgument {
        message,
        violations: faults,
    })
}

/// The message of `request`, checked.
pub fn checked<M: prost::Message + prost::Name>(
    request: tonic::Request<M>,
) -> Result<M, ServiceError> {
    let message = request.into_inner();
    check(&message)?;
    Ok(message)
}

/// Checks one message of a client stream; fault paths start with `batches[{index}].`.
pub fn check_batch<M: prost::Message + prost::Name>(
    message: &M,
    index: usize,
) -> Result<(), ServiceError> {
    check(message).map_err(|error| match error {
        ServiceError::InvalidArgument {
            message,
            violations,
        } => ServiceError::InvalidArgument {
            message: format!("batches[{index}].{message}"),
            violations: violations
                .into_iter()
                .map(|v| Violation::new(format!("batches[{index}].{}", v.field), v.reason))
                .collect(),
        },
        other => other,
    })
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk_message(message: &DynamicMessage, path: &str, depth: usize, faults: &mut Vec<Violation>) {
    for (field, value) in message.fields() {
        if faults.len() >= MAX_FAULTS {
            return;
        }
        let field_path = join(path, field.name());
        match value {
            Value::List(items) => {
                let cap = if depth == 0 {
                    MAX_TOP_LEVEL_ITEMS
                } else {
                    MAX_NESTED_ITEMS
                };
                if items.len() > cap {
                    faults.push(Violation::new(
                        field_path.clone(),
                        format!("{} items; at most {cap} are accepted here", items.len()),
                    ));
                    continue;
                }
                for (i, item) in items.iter().enumerate() {
                    walk_value(
                        &field,
                        item,
                        &format!("{field_path}[{i}]"),
                        depth + 1,
                        faults,
                    );
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    let key = match key {
                        MapKey::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    if let Kind::Message(entry) = field.kind() {
                        let value_field = entry.map_entry_value_field();
                        walk_value(
                            &value_field,
                            item,
                            &format!("{field_path}[{key}]"),
                            depth + 1,
                            faults,
                        );
                    }
                }
            }
            single => walk_value(&field, single, &field_path, depth, faults),
        }
    }
}

fn walk_value(
    field: &FieldDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
    faults: &mut Vec<Violation>,
) {
    let judged = JUDGED_BY_HANDLERS.iter().any(|(message, name)| {
        field.name() == *name && field.parent_message().full_name() == *message
    });
    match value {
        Value::String(text) => check_text(field.name(), text, path, faults),
        _ if judged => {}
        Value::EnumNumber(number) => {
            if let Kind::Enum(kind) = field.kind()
                && kind.get_value(*number).is_none()
            {
                let known: Vec<String> = kind
                    .values()
                    .filter(|v| v.number() != 0)
                    .map(|v| v.name().to_string())
                    .collect();
                faults.push(Violation::new(
                    path,
                    format!(
                        "{number} is not a {}; accepted: {}",
                        kind.full_name(),
                        known.join(", ")
                    ),
                ));
            }
        }
        Value::F64(number) if !number.is_finite() => {
            faults.push(Violation::new(
                path,
                format!("{number} is not a finite number"),
            ));
        }
        Value::F32(number) if !number.is_finite() => {
            faults.push(Violation::new(
                path,
                format!("{number} is not a finite number"),
            ));
        }
        Value::Message(inner) => walk_message(inner, path, depth, faults),
        _ => {}
    }
}

fn check_text(name: &str, text: &str, path: &str, faults: &mut Vec<Violation>) {
    if let Some(reason) = text_fault(name, text) {
        faults.push(Violation::new(path, reason));
    }
}

/// What is wrong with `text` as the value of a string field called `name` (control characters,
/// length past its cap), if anything. Also used for text that arrives inside a CSV file.
pub fn text_fault(name: &str, text: &str) -> Option<String> {
    let free_text = FREE_TEXT.contains(&name);
    if let Some((at, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !(free_text && matches!(c, '\t' | '\n' | '\r')))
    {
        return Some(format!(
            "control character U+{:04X} at character {}; text fields take printable text only",
            c as u32,
            at + 1
        ));
    }
    let cap = LENGTH_CAPS
        .iter()
        .find(|(field, _)| *field == name)
        .map_or(DEFAULT_MAX_CHARS, |(_, cap)| *cap);
    let chars = text.chars().count();
    (chars > cap).then(|| format!("{chars} characters; at most {cap} are accepted"))
}

#[cfg(test)]
mod tests {
    use zonerank_api::v1;

    use super::*;

    fn fields(error: ServiceError) -> Vec<(String, String)> {
        match error {
            ServiceError::InvalidArgument { violations, .. } => violations
                .into_iter()
                .map(|v| (v.field, v.reason))
                .collect(),
            other => panic!("not INVALID_ARGUMENT: {other}"),
        }
    }

    /// Every handler of the services checks its request (a stream, each batch).
    #[test]
    fn every_handler_checks_its_request() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for file in [
            "ingestion/mod.rs",
            "metrics/mod.rs",
            "ranking/mod.rs",
            "assessment/mod.rs",
        ] {
            let text = std::fs::read_to_string(src.join(file)).unwrap();
            let handlers = text.matches("request: Request<").count();
            let checks = text.matches("wire_check::check").count();
            assert!(handlers > 0, "{file}");
            assert_eq!(handlers, checks, "{file}: every handler checks its request");
        }
    }

    #[test]
    fn a_clean_request_passes() {
        let request = v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                id: "411725-CJQ".into(),
                name: "确山县产业集聚区".into(),
                region_code: "411725".into(),
                kind: v1::ZoneKind::AgglomerationZone as i32,
                tags: vec!["郑州都市圈".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        check(&request).unwrap();
    }

    #[test]
    fn control_characters_are_refused_with_the_field_named() {
        let request = v1::UpsertZonesRequest {
            zones: vec![
                v1::Zone {
                    id: "a".into(),
                    name: "ok".into(),
                    ..Default::default()
                },
                v1::Zone {
                    id: "b".into(),
                    name: "x".into(),
                    tags: vec!["fine".into(), "bad\0tag".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let faults = fields(check(&request).unwrap_err());
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].0, "zones[1].tags[1]");
        assert!(faults[0].1.contains("U+0000"), "{}", faults[0].1);
        // Line breaks only in free text.
        let target = v1::UpsertTargetsRequest {
            targets: vec![v1::Target {
                metric: "revenue\n".into(),
                note: "line one\nline two".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let faults = fields(check(&target).unwrap_err());
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].0, "targets[0].metric");
        let token = v1::ListZonesRequest {
            page_token: "ab\u{7f}".into(),
            ..Default::default()
        };
        assert_eq!(fields(check(&token).unwrap_err())[0].0, "page_token");
    }

    #[test]
    fn strings_past_their_cap_are_refused() {
        let request = v1::UpsertRegionsRequest {
            regions: vec![v1::Region {
                code: "410000".into(),
                name: "河".repeat(DEFAULT_MAX_CHARS + 1),
                ..Default::default()
            }],
            ..Default::default()
        };
        let faults = fields(check(&request).unwrap_err());
        assert_eq!(faults[0].0, "regions[0].name");
        assert!(faults[0].1.contains("201 characters"), "{}", faults[0].1);
        // Exactly the cap, in characters not bytes, passes.
        let request = v1::UpsertRegionsRequest {
            regions: vec![v1::Region {
                name: "河".repeat(DEFAULT_MAX_CHARS),
                ..Default::default()
            }],
            ..Default::default()
        };
        check(&request).unwrap();
    }

    #[test]
    fn unknown_enum_numbers_are_refused_at_any_depth() {
        let request = v1::CreateSchemeRequest {
            scheme: Some(v1::Scheme {
                id: "s".into(),
                normalization: 99,
                criteria: vec![v1::Criterion {
                    metric: "revenue".into(),
                    weight: 1.0,
                    direction: 7,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let faults = fields(check(&request).unwrap_err());
        let named: Vec<&str> = faults.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            named,
            ["scheme.criteria[0].direction", "scheme.normalization"]
        );
        assert!(
            faults[1].1.contains("zonerank.v1.Normalization"),
            "{}",
            faults[1].1
        );
        assert!(
            faults[1].1.contains("NORMALIZATION_MIN_MAX"),
            "{}",
            faults[1].1
        );
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        let request = v1::CreateSchemeRequest {
            scheme: Some(v1::Scheme {
                criteria: vec![v1::Criterion {
                    metric: "revenue".into(),
                    weight: f64::INFINITY,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let faults = fields(check(&request).unwrap_err());
        assert_eq!(faults[0].0, "scheme.criteria[0].weight");
    }

    #[test]
    fn a_nested_list_past_its_cap_is_refused_whole() {
        let request = v1::UpsertZonesRequest {
            zones: vec![v1::Zone {
                id: "z".into(),
                tags: (0..70_000).map(|i| format!("t{i}")).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let faults = fields(check(&request).unwrap_err());
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].0, "zones[0].tags");
        assert!(faults[0].1.contains("70000 items"), "{}", faults[0].1);
    }
}
