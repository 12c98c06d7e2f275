//! zonerank storage: sea-orm entities and migrations, and every query the services run, written
//! once for SQLite (the embedded default) and PostgreSQL (production).

mod assessment;
mod audit;
mod cohort;
mod connect;
mod copy_out;
mod data_issues;
pub mod entity;
mod error;
mod import;
pub mod migration;
mod observations;
mod partitions;
mod projects;
mod ranking;
mod reference;
mod screening;
mod store;
pub mod test_support;
mod values;
mod writes;

pub use assessment::{ObjectionFilter, ObjectionRow, PublicationRow, Refusal, Step};
pub use audit::{AuditEvent, AuditFilter, LISTED_ENTITIES, StoredAuditEvent};
pub use cohort::{CohortMember, CohortQuery, UnknownName};
pub use connect::ConnectError;
pub use data_issues::{
    DataIssueFilter, IssueChanges, IssueKey, NewDataIssue, ServedFigure, StoredDataIssue,
};
pub use error::StorageError;
pub use import::{DuplicateRow, ObservationImport};
pub use observations::{
    ObservationInput, ObservationPosition, ObservationQuery, StoredObservation, WriteOutcome,
    WriteSummary,
};
pub use projects::ProjectPeriodRow;
pub use ranking::{RunFilter, RunRow, SchemeRow};
pub use reference::{
    ClusterRecord, EnterpriseFilter, EnterpriseRecord, Page, ProjectRecord, RegionRecord,
    TargetRecord, ZoneFilter, ZoneRecord,
};
pub use screening::ScreeningRuleRow;
pub use store::{DataVersion, Pinned, SchemaStatus, Store};
pub use values::{ValueQuery, ValueRow};
pub use writes::{EnterpriseReferences, UpsertCounts, Writes, ZoneReferences};

/// Microseconds since the Unix epoch, the clock every revision is recorded with.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
