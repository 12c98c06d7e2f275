//! Data issues: every data-quality warning a committed ingestion produced, open until a later
//! ingestion finds the same rule sound for the same figure.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataIssues {
    Table,
    Id,
    Rule,
    Severity,
    EntityKind,
    EntityId,
    Indicator,
    Period,
    Figures,
    Tolerance,
    Message,
    RowNumber,
    RequestId,
    DataVersion,
    Status,
    ResolvedVersion,
    ResolvedRequestId,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataIssues::Table)
                    .col(big_pk_auto(DataIssues::Id))
                    .col(string(DataIssues::Rule))
                    .col(string(DataIssues::Severity))
                    .col(string(DataIssues::EntityKind))
                    .col(string(DataIssues::EntityId))
                    .col(string(DataIssues::Indicator))
                    .col(string(DataIssues::Period))
                    .col(text(DataIssues::Figures))
                    .col(double(DataIssues::Tolerance))
                    .col(text(DataIssues::Message))
                    .col(big_integer(DataIssues::RowNumber))
                    .col(string(DataIssues::RequestId).default(""))
                    .col(big_integer(DataIssues::DataVersion))
                    .col(string(DataIssues::Status))
                    .col(big_integer_null(DataIssues::ResolvedVersion))
                    .col(string_null(DataIssues::ResolvedRequestId))
                    .to_owned(),
            )
            .await?;
        // The subject lookup of every ingestion (open issues of these figures) and the
        // listing's filters.
        manager
            .create_index(
                Index::create()
                    .name("idx_data_issues_subject")
                    .table(DataIssues::Table)
                    .col(DataIssues::EntityKind)
                    .col(DataIssues::EntityId)
                    .col(DataIssues::Indicator)
                    .col(DataIssues::Period)
                    .col(DataIssues::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_data_issues_status_rule")
                    .table(DataIssues::Table)
                    .col(DataIssues::Status)
                    .col(DataIssues::Rule)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DataIssues::Table).to_owned())
            .await?;
        Ok(())
    }
}
