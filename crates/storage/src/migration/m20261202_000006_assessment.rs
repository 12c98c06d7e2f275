//! The assessment lifecycle: published versions of a (scheme, period) and the objections filed
//! against them, each step with who took it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Publications {
    Table,
    SchemeId,
    Period,
    Version,
    RunId,
    State,
    NoticeUntil,
    Replaces,
    CausedBy,
    PublishedBy,
    PublishedAt,
    FinalizedBy,
    FinalizedAt,
}

#[derive(DeriveIden)]
enum Objections {
    Table,
    Id,
    RunId,
    SchemeId,
    Period,
    EntityKind,
    EntityId,
    Reason,
    Disputed,
    Evidence,
    State,
    FiledBy,
    FiledAt,
    ResolvedBy,
    ResolvedAt,
    Note,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Publications::Table)
                    .if_not_exists()
                    .col(string_len(Publications::SchemeId, 64))
                    .col(string_len(Publications::Period, 16))
                    .col(integer(Publications::Version))
                    .col(string_len(Publications::RunId, 64))
                    .col(string_len(Publications::State, 16))
                    .col(big_integer(Publications::NoticeUntil))
                    .col(integer(Publications::Replaces))
                    .col(text(Publications::CausedBy))
                    .col(string(Publications::PublishedBy))
                    .col(big_integer(Publications::PublishedAt))
                    .col(string_null(Publications::FinalizedBy))
                    .col(big_integer_null(Publications::FinalizedAt))
                    .primary_key(
                        Index::create()
                            .col(Publications::SchemeId)
                            .col(Publications::Period)
                            .col(Publications::Version),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_publications_run")
                    .table(Publications::Table)
                    .col(Publications::RunId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Objections::Table)
                    .if_not_exists()
                    .col(string_len(Objections::Id, 64).primary_key())
                    .col(string_len(Objections::RunId, 64))
                    .col(string_len(Objections::SchemeId, 64))
                    .col(string_len(Objections::Period, 16))
                    .col(string_len(Objections::EntityKind, 16))
                    .col(string_len(Objections::EntityId, 64))
                    .col(text(Objections::Reason))
                    .col(blob(Objections::Disputed))
                    .col(text(Objections::Evidence))
                    .col(string_len(Objections::State, 16))
                    .col(string(Objections::FiledBy))
                    .col(big_integer(Objections::FiledAt))
                    .col(string_null(Objections::ResolvedBy))
                    .col(big_integer_null(Objections::ResolvedAt))
                    .col(text(Objections::Note))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_objections_scheme_period")
                    .table(Objections::Table)
                    .col(Objections::SchemeId)
                    .col(Objections::Period)
                    .col(Objections::State)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Objections::Table.into_iden(),
            Publications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
