//! Archived schemes (a flag on every version of the scheme) and an index for listing runs
//! newest first across schemes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Schemes {
    Table,
    Archived,
}

#[derive(DeriveIden)]
enum RankingRuns {
    Table,
    ComputedAt,
    RunId,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Schemes::Table)
                    .add_column(boolean(Schemes::Archived).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ranking_runs_computed_at")
                    .table(RankingRuns::Table)
                    .col(RankingRuns::ComputedAt)
                    .col(RankingRuns::RunId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_ranking_runs_computed_at")
                    .table(RankingRuns::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Schemes::Table)
                    .drop_column(Schemes::Archived)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
