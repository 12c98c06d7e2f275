//! Assessment schemes (versioned) and ranking runs with their entries.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Schemes {
    Table,
    Id,
    Version,
    Name,
    EntityKind,
    Definition,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RankingRuns {
    Table,
    RunId,
    SchemeId,
    SchemeVersion,
    Period,
    Run,
    ComputedAt,
}

#[derive(DeriveIden)]
enum RankingEntries {
    Table,
    RunId,
    Position,
    EntityId,
    Entry,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Schemes::Table)
                    .if_not_exists()
                    .col(string_len(Schemes::Id, 64))
                    .col(integer(Schemes::Version))
                    .col(string(Schemes::Name))
                    .col(string_len(Schemes::EntityKind, 16))
                    .col(blob(Schemes::Definition))
                    .col(big_integer(Schemes::CreatedAt))
                    .primary_key(Index::create().col(Schemes::Id).col(Schemes::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RankingRuns::Table)
                    .if_not_exists()
                    .col(string_len(RankingRuns::RunId, 64).primary_key())
                    .col(string_len(RankingRuns::SchemeId, 64))
                    .col(integer(RankingRuns::SchemeVersion))
                    .col(string_len(RankingRuns::Period, 16))
                    .col(blob(RankingRuns::Run))
                    .col(big_integer(RankingRuns::ComputedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ranking_runs_scheme_period")
                    .table(RankingRuns::Table)
                    .col(RankingRuns::SchemeId)
                    .col(RankingRuns::Period)
                    .col(RankingRuns::ComputedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RankingEntries::Table)
                    .if_not_exists()
                    .col(string_len(RankingEntries::RunId, 64))
                    .col(integer(RankingEntries::Position))
                    .col(string_len(RankingEntries::EntityId, 64))
                    .col(blob(RankingEntries::Entry))
                    .primary_key(
                        Index::create()
                            .col(RankingEntries::RunId)
                            .col(RankingEntries::Position),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ranking_entries_entity")
                    .table(RankingEntries::Table)
                    .col(RankingEntries::RunId)
                    .col(RankingEntries::EntityId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RankingEntries::Table.into_iden(),
            RankingRuns::Table.into_iden(),
            Schemes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
