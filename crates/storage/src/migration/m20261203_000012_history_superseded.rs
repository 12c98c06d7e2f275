//! `observation_revisions` keeps only superseded values: the served revision of a key lives in
//! `observations` alone, so a first import writes each value once instead of twice. Up removes
//! from the history every row that is its key's served revision; down copies them back.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The history rows that are their key's served revision, matched with `observations` (`o`).
const SERVED: &str = "o.entity_kind = observation_revisions.entity_kind \
     AND o.entity_id = observation_revisions.entity_id \
     AND o.indicator = observation_revisions.indicator AND o.period = observation_revisions.period \
     AND o.revision = observation_revisions.revision";

const COLUMNS: &str = "entity_kind, entity_id, indicator, period, revision, period_start, \
     period_end, value, source, version, recorded_by";

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DELETE FROM observation_revisions WHERE EXISTS \
                 (SELECT 1 FROM observations o WHERE {SERVED})"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO observation_revisions ({COLUMNS}) SELECT {COLUMNS} FROM observations"
            ))
            .await?;
        Ok(())
    }
}
