//! Schema migrations (sea-orm-migration). Append new migrations; never edit an applied one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_ranking;
mod m20261202_000003_scheme_archive;
mod m20261202_000004_commit_stamps;
mod m20261202_000005_audit;
mod m20261202_000006_assessment;
mod m20261202_000007_data_issues;
mod m20261202_000008_projects_screening;
mod m20261202_000010_audit_suppressed;
mod m20261203_000011_partition_observations;
mod m20261203_000012_history_superseded;
mod m20261203_000013_drop_indicator_index;

/// Every migration zonerank knows, in order.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_ranking::Migration),
            Box::new(m20261202_000003_scheme_archive::Migration),
            Box::new(m20261202_000004_commit_stamps::Migration),
            Box::new(m20261202_000005_audit::Migration),
            Box::new(m20261202_000006_assessment::Migration),
            Box::new(m20261202_000007_data_issues::Migration),
            Box::new(m20261202_000008_projects_screening::Migration),
            Box::new(m20261202_000010_audit_suppressed::Migration),
            Box::new(m20261203_000011_partition_observations::Migration),
            Box::new(m20261203_000012_history_superseded::Migration),
            Box::new(m20261203_000013_drop_indicator_index::Migration),
        ]
    }
}
