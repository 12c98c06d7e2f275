//! Drops the index of `observations` by (indicator, period): the reads by indicator and period
//! scan a year's partition (PostgreSQL) or go by entity through the key, and never used it,
//! while an import paid for it on every row (about 40% of the insert into `observations` at
//! 1.4M rows on PostgreSQL 15). Down makes it again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_observations_indicator_period";

#[derive(DeriveIden)]
enum Observations {
    Table,
    Indicator,
    PeriodStart,
    PeriodEnd,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Observations::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Observations::Table)
                    .col(Observations::Indicator)
                    .col(Observations::PeriodStart)
                    .col(Observations::PeriodEnd)
                    .to_owned(),
            )
            .await
    }
}
