//! Attribution and audit: every observation value records who sent it (`recorded_by`; the
//! history before this migration is `anonymous`), and `audit_events` lists every write and
//! every refused call, with the entities each touched in `audit_event_entities`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Observations {
    Table,
    RecordedBy,
}

#[derive(DeriveIden)]
enum ObservationRevisions {
    Table,
    RecordedBy,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Principal,
    Method,
    Outcome,
    Message,
    Created,
    Updated,
    Unchanged,
    Rejected,
    EntityCount,
    DataVersion,
    RequestId,
}

#[derive(DeriveIden)]
enum AuditEventEntities {
    Table,
    EventId,
    EntityKind,
    EntityId,
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ObservationRevisions::Table)
                    .add_column(string(ObservationRevisions::RecordedBy).default("anonymous"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Observations::Table)
                    .add_column(string(Observations::RecordedBy).default("anonymous"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::At))
                    .col(string(AuditEvents::Principal))
                    .col(string(AuditEvents::Method))
                    .col(string(AuditEvents::Outcome))
                    .col(text(AuditEvents::Message).default(""))
                    .col(big_integer(AuditEvents::Created).default(0i64))
                    .col(big_integer(AuditEvents::Updated).default(0i64))
                    .col(big_integer(AuditEvents::Unchanged).default(0i64))
                    .col(big_integer(AuditEvents::Rejected).default(0i64))
                    .col(big_integer(AuditEvents::EntityCount).default(0i64))
                    .col(big_integer_null(AuditEvents::DataVersion))
                    .col(string(AuditEvents::RequestId).default(""))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_audit_events_principal", AuditEvents::Principal),
            ("idx_audit_events_method", AuditEvents::Method),
            ("idx_audit_events_at", AuditEvents::At),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditEventEntities::Table)
                    .col(big_integer(AuditEventEntities::EventId))
                    .col(string(AuditEventEntities::EntityKind))
                    .col(string(AuditEventEntities::EntityId))
                    .primary_key(
                        Index::create()
                            .col(AuditEventEntities::EventId)
                            .col(AuditEventEntities::EntityKind)
                            .col(AuditEventEntities::EntityId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_event_entities_entity")
                    .table(AuditEventEntities::Table)
                    .col(AuditEventEntities::EntityKind)
                    .col(AuditEventEntities::EntityId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEventEntities::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Observations::Table)
                    .drop_column(Observations::RecordedBy)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ObservationRevisions::Table)
                    .drop_column(ObservationRevisions::RecordedBy)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
