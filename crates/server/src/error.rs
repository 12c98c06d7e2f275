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
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
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
}

/// Violations listed in one status: details travel in a trailer, and HTTP/2 peers refuse header
/// blocks past 16 KiB by default. The message gives the full count; a dry run with
/// allow_partial lists every rejected row in its report.
const MAX_VIOLATIONS: usize = 100;

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        match error {
            ServiceError::InvalidArgument {
                message,
                violations,
            } => {
                let listed: Vec<FieldViolation> = violations
                    .iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| FieldViolation::new(v.field.clone(), v.reason.clone()))
                    .collect();
                let mut details = ErrorDetails::with_bad_request(listed);
                details.set_error_info("INVALID_INPUT", "zonerank.v1", []);
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ServiceError::NotFound(message) => {
                let mut details = ErrorDetails::new();
                details.set_error_info("NOT_FOUND", "zonerank.v1", []);
                Status::with_error_details(Code::NotFound, message, details)
            }
            ServiceError::Storage(StorageError::InvalidPageToken) => {
                Status::invalid_argument("page_token: not a token this service handed out")
            }
            ServiceError::Storage(e) => {
                tracing::error!(error = %e, "storage failure");
                let code = match e {
                    StorageError::Database(_) => Code::Unavailable,
                    _ => Code::Internal,
                };
                Status::new(code, e.to_string())
            }
        }
    }
}
