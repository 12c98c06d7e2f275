//! zonerank storage: sea-orm entities and migrations, and every query the services run, written
//! once for SQLite (the embedded default) and PostgreSQL (production).

mod cohort;
mod connect;
pub mod entity;
mod error;
pub mod migration;
mod observations;
mod ranking;
mod reference;
mod store;
pub mod test_support;

pub use cohort::{CohortMember, CohortQuery};
pub use connect::ConnectError;
pub use error::StorageError;
pub use observations::{
    ObservationInput, ObservationQuery, StoredObservation, ValueQuery, ValueRow, WriteOutcome,
    WriteSummary,
};
pub use ranking::{RunRow, SchemeRow};
pub use reference::{
    ClusterRecord, EnterpriseRecord, Page, ProjectRecord, RegionRecord, TargetRecord, ZoneFilter,
    ZoneRecord,
};
pub use store::{DataVersion, SchemaStatus, Store};

/// Microseconds since the Unix epoch, the clock every revision is recorded with.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
