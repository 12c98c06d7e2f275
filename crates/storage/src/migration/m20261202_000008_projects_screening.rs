//! The project pipeline by period and stored screening rules: a project's status, planned and
//! completed investment for each period it was reported for, and the rules that flag zones.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Projects {
    Table,
    Period,
    CompletedInvestment,
}

#[derive(DeriveIden)]
enum ProjectPeriods {
    Table,
    ProjectId,
    Period,
    StartOrdinal,
    EndOrdinal,
    ZoneId,
    Status,
    PlannedInvestment,
    CompletedInvestment,
}

#[derive(DeriveIden)]
enum ScreeningRules {
    Table,
    Id,
    Name,
    Definition,
    UpdatedBy,
    UpdatedAt,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(string_len(Projects::Period, 16).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(double(Projects::CompletedInvestment).default(0.0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProjectPeriods::Table)
                    .if_not_exists()
                    .col(string_len(ProjectPeriods::ProjectId, 64))
                    .col(string_len(ProjectPeriods::Period, 16))
                    .col(big_integer(ProjectPeriods::StartOrdinal))
                    .col(big_integer(ProjectPeriods::EndOrdinal))
                    .col(string_len(ProjectPeriods::ZoneId, 64))
                    .col(string_len(ProjectPeriods::Status, 32))
                    .col(double(ProjectPeriods::PlannedInvestment))
                    .col(double(ProjectPeriods::CompletedInvestment))
                    .primary_key(
                        Index::create()
                            .col(ProjectPeriods::ProjectId)
                            .col(ProjectPeriods::Period),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_project_periods_zone")
                    .table(ProjectPeriods::Table)
                    .col(ProjectPeriods::ZoneId)
                    .col(ProjectPeriods::StartOrdinal)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScreeningRules::Table)
                    .if_not_exists()
                    .col(string_len(ScreeningRules::Id, 64).primary_key())
                    .col(string(ScreeningRules::Name))
                    .col(blob(ScreeningRules::Definition))
                    .col(string(ScreeningRules::UpdatedBy))
                    .col(big_integer(ScreeningRules::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ScreeningRules::Table.into_iden(),
            ProjectPeriods::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        for column in [
            Projects::CompletedInvestment.into_iden(),
            Projects::Period.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Projects::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
