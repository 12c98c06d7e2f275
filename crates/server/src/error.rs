//! The services' failures and their one mapping to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
use zonerank_storage::StorageError;

/// A rejected row or field: where and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The field path, e.g. `rows[12].unit` or `zones[0].region_code`.
    pub field: String,
    pub reason: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, reason: impl ToString) -> Violation {
        Violation {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; nothing was written.
    #[error("{message}")]
    InvalidArgument {
        message: String,
        violations: Vec<Violation>,
    },
    /// A named thing does not exist: `google.rpc.ResourceInfo` names it.
    #[error("{message}")]
    NotFound {
        /// What kind of thing, e.g. `zonerank.v1.Region` or `ranking run`.
        resource_type: String,
        /// Its name as the caller gave it.
        resource_name: String,
        message: String,
    },
    /// The request is well-formed but the stored state forbids it (a zone that observations
    /// still refer to, a scheme that is archived): `google.rpc.PreconditionFailure` says what.
    #[error("{message}")]
    FailedPrecondition {
        /// The kind of precondition, e.g. `REFERENCED` or `ARCHIVED`.
        kind: String,
        /// The thing it is about, e.g. `zone 411725-CJQ`.
        subject: String,
        message: String,
    },
    /// The thing to create exists already: `ResourceInfo` names it.
    #[error("{message}")]
    AlreadyExists {
        resource_type: String,
        resource_name: String,
        message: String,
    },
    /// The caller presented no credentials, or ones that do not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this: `ErrorInfo{reason, metadata}` says what it
    /// lacks (a role, a region).
    #[error("{message}")]
    PermissionDenied {
        reason: String,
        message: String,
        metadata: Vec<(String, String)>,
    },
    /// The request asks for more than a call may use: `QuotaFailure` names the budget.
    #[error("{message}")]
    ResourceExhausted {
        /// The budget exceeded, e.g. `samples × entities`.
        subject: String,
        message: String,
    },
    /// The caller went away or its deadline passed before the work was done.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A dependency (the metrics service, the database) did not answer; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server itself; the client gets a request id, the log the detail.
    #[error("{0}")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ServiceError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> ServiceError {
        let violation = Violation::new(field, reason);
        ServiceError::InvalidArgument {
            message: format!("{}: {}", violation.field, violation.reason),
            violations: vec![violation],
        }
    }

    /// `resource_name` of `resource_type` does not exist; the message is `{what} not found`.
    pub fn not_found(
        resource_type: impl Into<String>,
        resource_name: impl Into<String>,
        what: impl std::fmt::Display,
    ) -> ServiceError {
        ServiceError::NotFound {
            resource_type: resource_type.into(),
            resource_name: resource_name.into(),
            message: format!("{what} not found"),
        }
    }

    /// The stored state forbids the request.
    pub fn failed_precondition(
        kind: impl Into<String>,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> ServiceError {
        ServiceError::FailedPrecondition {
            kind: kind.into(),
            subject: subject.into(),
            message: message.into(),
        }
    }
}

/// Violations listed in one status. Details travel base64-encoded in a trailer and the message
/// percent-encoded, and the smallest common client limit is grpc-python's 8 KiB of metadata:
/// the whole error stays under 7 KiB. The rest are counted in ErrorInfo and in the message;
/// a `dry_run` answers OK with every row's fault.
const MAX_VIOLATIONS: usize = 100;

/// Bytes of violation text one status carries at most: 4 KiB is 5.4 KiB after base64, and
/// the message (at most 300 bytes, 900 once percent-encoded) and ErrorInfo fit beside it.
const MAX_VIOLATION_BYTES: usize = 4 * 1024;

/// The whole error metadata (message and details as they travel) stays under this.
#[cfg(test)]
const MAX_ERROR_METADATA_BYTES: usize = 7 * 1024;

/// Text cut to `max` bytes at a character boundary, marked with `…`: reasons can echo what a
/// user sent.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A field or reason in the details: long enough for a whole list of accepted forms.
fn shortened(text: &str) -> String {
    cut(text, 2048)
}

/// The status message: the first fault in brief. A list of accepted forms is never cut in its
/// middle: the message leaves it out and the details carry it whole.
fn brief(message: &str) -> String {
    const MAX: usize = 300;
    const LISTS: [&str; 3] = ["; accepted forms: ", "; accepted: ", "; expected "];
    let short = match LISTS.iter().filter_map(|l| message.find(l)).min() {
        Some(at) if message.len() > MAX => {
            format!("{}; the details list the accepted forms", &message[..at])
        }
        _ => message.to_string(),
    };
    cut(&short, MAX)
}

/// A status about one named resource, with `google.rpc.ResourceInfo`.
fn resource_status(code: Code, resource_type: String, name: &str, message: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_resource_info(resource_type, shortened(name), "", shortened(message));
    Status::with_error_details(code, brief(message), details)
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        match error {
            ServiceError::InvalidArgument {
                message,
                violations,
            } => {
                let mut budget = MAX_VIOLATION_BYTES;
                let listed: Vec<FieldViolation> = violations
                    .iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| FieldViolation::new(shortened(&v.field), shortened(&v.reason)))
                    .take_while(|v| {
                        // protobuf framing of the violation and its two strings
                        let size = v.field.len() + v.description.len() + 8;
                        let fits = size <= budget;
                        budget = budget.saturating_sub(size);
                        fits
                    })
                    .collect();
                let left_out = violations.len() - listed.len();
                let message = if left_out > 0 && !message.contains(" more") {
                    format!(
                        "{} ({left_out} more not listed; a dry_run lists every fault)",
                        brief(&message)
                    )
                } else {
                    brief(&message)
                };
                let mut details = ErrorDetails::with_bad_request(listed);
                details.set_error_info(
                    "INVALID_INPUT",
                    "zonerank.v1",
                    [
                        ("faults".to_string(), violations.len().to_string()),
                        (
                            "faults_listed".to_string(),
                            (violations.len() - left_out).to_string(),
                        ),
                    ],
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ServiceError::NotFound {
                resource_type,
                resource_name,
                message,
            } => resource_status(Code::NotFound, resource_type, &resource_name, &message),
            ServiceError::FailedPrecondition {
                kind,
                subject,
                message,
            } => {
                let details = ErrorDetails::with_precondition_failure(vec![
                    tonic_types::PreconditionViolation::new(
                        kind,
                        shortened(&subject),
                        shortened(&message),
                    ),
                ]);
                Status::with_error_details(Code::FailedPrecondition, brief(&message), details)
            }
            ServiceError::AlreadyExists {
                resource_type,
                resource_name,
                message,
            } => resource_status(Code::AlreadyExists, resource_type, &resource_name, &message),
            ServiceError::Unauthenticated(message) => {
                let mut details = ErrorDetails::new();
                details.set_error_info("UNAUTHENTICATED", "zonerank.v1", []);
                Status::with_error_details(Code::Unauthenticated, brief(&message), details)
            }
            ServiceError::PermissionDenied {
                reason,
                message,
                metadata,
            } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    reason,
                    "zonerank.v1",
                    metadata
                        .into_iter()
                        .map(|(k, v)| (k, shortened(&v)))
                        .collect::<std::collections::HashMap<_, _>>(),
                );
                Status::with_error_details(Code::PermissionDenied, brief(&message), details)
            }
            ServiceError::ResourceExhausted { subject, message } => {
                let details =
                    ErrorDetails::with_quota_failure(vec![tonic_types::QuotaViolation::new(
                        shortened(&subject),
                        shortened(&message),
                    )]);
                Status::with_error_details(Code::ResourceExhausted, brief(&message), details)
            }
            ServiceError::DeadlineExceeded(message) => Status::with_error_details(
                Code::DeadlineExceeded,
                brief(&message),
                ErrorDetails::new(),
            ),
            ServiceError::Unavailable(message) => {
                let mut details = ErrorDetails::new();
                details.set_error_info("UNAVAILABLE", "zonerank.v1", []);
                Status::with_error_details(Code::Unavailable, brief(&message), details)
            }
            ServiceError::Internal(detail) => {
                let request_id = zonerank_telemetry::request_id();
                tracing::error!(error = %detail, %request_id, "internal failure");
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "INTERNAL",
                    "zonerank.v1",
                    [("request_id".to_string(), request_id.clone())],
                );
                Status::with_error_details(
                    Code::Internal,
                    format!("the server failed (request id {request_id})"),
                    details,
                )
            }
            ServiceError::Storage(e) => {
                // Database and driver text stays in the logs; the client gets the request id
                // to quote.
                let request_id = zonerank_telemetry::request_id();
                tracing::error!(error = %e, %request_id, "storage failure");
                let (code, reason, message) = match e {
                    StorageError::Database(_) | StorageError::Connect(_) => (
                        Code::Unavailable,
                        "STORAGE_UNAVAILABLE",
                        "the database did not answer; retry later",
                    ),
                    StorageError::InvalidPageToken => {
                        return Status::from(ServiceError::invalid(
                            "page_token",
                            "not a token this service handed out",
                        ));
                    }
                    StorageError::SchemaBehind(_)
                    | StorageError::SchemaUnknown(_)
                    | StorageError::Corrupt(_) => (
                        Code::Internal,
                        "STORAGE_FAILURE",
                        "the stored data could not be read",
                    ),
                };
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    reason,
                    "zonerank.v1",
                    [("request_id".to_string(), request_id.clone())],
                );
                Status::with_error_details(
                    code,
                    format!("{message} (request id {request_id})"),
                    details,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn many_long_violations_stay_inside_the_trailer_budget() {
        let reason = "未知指标 ".repeat(200);
        let violations = (0..500)
            .map(|i| Violation::new(format!("rows[{i}].indicator"), &reason))
            .collect();
        let status = Status::from(ServiceError::InvalidArgument {
            message: "500 rows rejected".into(),
            violations,
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        let listed = status
            .get_details_bad_request()
            .expect("details")
            .field_violations;
        assert!(!listed.is_empty());
        let bytes: usize = listed
            .iter()
            .map(|v| v.field.len() + v.description.len())
            .sum();
        assert!(bytes <= MAX_VIOLATION_BYTES, "{bytes}");
        let mut headers = http::HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        let metadata: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        assert!(
            metadata < MAX_ERROR_METADATA_BYTES,
            "{metadata} bytes of metadata"
        );
        assert!(
            status.message().contains("more not listed"),
            "{}",
            status.message()
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata["faults"], "500");
        assert!(listed[0].description.ends_with('…'));
        assert_eq!(listed[0].field, "rows[0].indicator");
    }

    /// Statuses are built here only: a handler that builds its own bypasses the details, the
    /// trailer budget and the rule that driver text stays in the logs.
    #[test]
    fn no_status_is_built_outside_the_one_mapping() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut offenders = Vec::new();
        let mut dirs = vec![root.join("crates/server/src"), root.join("services")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if path
                        .file_name()
                        .is_some_and(|n| n != "tests" && n != "target")
                    {
                        dirs.push(path);
                    }
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/error.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    let builds = [
                        "Status::new(",
                        "Status::with_",
                        "Status::invalid_argument(",
                        "Status::not_found(",
                        "Status::internal(",
                        "Status::unavailable(",
                        "Status::unknown(",
                        "Status::failed_precondition(",
                        "Status::permission_denied(",
                        "Status::unauthenticated(",
                        "Status::resource_exhausted(",
                        "Status::already_exists(",
                        "Status::cancelled(",
                        "Status::deadline_exceeded(",
                        "Status::unimplemented(",
                        "Status::aborted(",
                        "Status::out_of_range(",
                        "Status::data_loss(",
                    ];
                    if builds.iter().any(|b| code.contains(b)) {
                        offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "statuses built outside error.rs:\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn database_text_never_reaches_the_client() {
        let status = Status::from(ServiceError::Storage(StorageError::Corrupt(
            "row 17 of scheme_versions: invalid protobuf".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("protobuf"),
            "{}",
            status.message()
        );
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "STORAGE_FAILURE");
        let id = &info.metadata["request_id"];
        assert!(status.message().contains(id.as_str()));
    }

    #[test]
    fn a_list_of_accepted_forms_is_left_whole_to_the_details() {
        let reason = zonerank_domain::unit::Unit::parse("斤")
            .unwrap_err()
            .to_string();
        assert!(reason.len() > 300, "a long list: {reason}");
        let status = Status::from(ServiceError::invalid("rows[3].unit", &reason));
        assert_eq!(
            status.message(),
            "rows[3].unit: unknown unit '斤'; the details list the accepted forms"
        );
        let listed = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(
            listed[0].description, reason,
            "the whole list in the details"
        );
        // A short message with a list stays as it is.
        let status = Status::from(ServiceError::invalid(
            "kind",
            "unknown 'x'; expected A or B",
        ));
        assert_eq!(status.message(), "kind: unknown 'x'; expected A or B");
    }
}
