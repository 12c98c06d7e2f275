//! The initial schema: reference data, the indicator catalog, observations with revisions, targets.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Regions {
    Table,
    Code,
    Name,
    NameEn,
    Level,
    ParentCode,
}

#[derive(DeriveIden)]
enum Zones {
    Table,
    Id,
    Name,
    RegionCode,
    Kind,
    LeadingIndustries,
}

#[derive(DeriveIden)]
enum ZoneTags {
    Table,
    ZoneId,
    Tag,
}

#[derive(DeriveIden)]
enum Enterprises {
    Table,
    CreditCode,
    Name,
    ZoneId,
    IndustryCode,
    AboveScale,
}

#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
    Name,
    RegionCode,
    ZoneId,
    Industry,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    Name,
    ZoneId,
    Status,
    PlannedInvestment,
}

#[derive(DeriveIden)]
enum Indicators {
    Table,
    Code,
    NameZh,
    NameEn,
    Unit,
    Kind,
    Direction,
    Builtin,
}

#[derive(DeriveIden)]
enum Observations {
    Table,
    EntityKind,
    EntityId,
    Indicator,
    Period,
    Revision,
    PeriodStart,
    PeriodEnd,
    Value,
    Source,
    RecordedAt,
}

#[derive(DeriveIden)]
enum ObservationRevisions {
    Table,
}

#[derive(DeriveIden)]
enum Targets {
    Table,
    EntityKind,
    EntityId,
    Metric,
    Period,
    Comparator,
    Value,
    Unit,
    Note,
}

#[derive(DeriveIden)]
enum DataVersion {
    Table,
    Id,
    Version,
    UpdatedAt,
}

/// The columns shared by `observations` and `observation_revisions`.
fn observation_table(table: impl IntoIden, with_revision_key: bool) -> TableCreateStatement {
    let mut key = Index::create();
    key.col(Observations::EntityKind)
        .col(Observations::EntityId)
        .col(Observations::Indicator)
        .col(Observations::Period);
    if with_revision_key {
        key.col(Observations::Revision);
    }
    Table::create()
        .table(table)
        .if_not_exists()
        .col(string_len(Observations::EntityKind, 16))
        .col(string_len(Observations::EntityId, 64))
        .col(string_len(Observations::Indicator, 64))
        .col(string_len(Observations::Period, 16))
        .col(integer(Observations::Revision))
        .col(integer(Observations::PeriodStart))
        .col(integer(Observations::PeriodEnd))
        .col(double(Observations::Value))
        .col(string(Observations::Source))
        .col(big_integer(Observations::RecordedAt))
        .primary_key(&mut key)
        .to_owned()
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Regions::Table)
                    .if_not_exists()
                    .col(string_len(Regions::Code, 6).primary_key())
                    .col(string(Regions::Name))
                    .col(string(Regions::NameEn))
                    .col(string_len(Regions::Level, 16))
                    .col(string_len_null(Regions::ParentCode, 6))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Zones::Table)
                    .if_not_exists()
                    .col(string_len(Zones::Id, 64).primary_key())
                    .col(string(Zones::Name))
                    .col(string_len(Zones::RegionCode, 6))
                    .col(string_len(Zones::Kind, 32))
                    .col(text(Zones::LeadingIndustries))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_zones_region")
                    .table(Zones::Table)
                    .col(Zones::RegionCode)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ZoneTags::Table)
                    .if_not_exists()
                    .col(string_len(ZoneTags::ZoneId, 64))
                    .col(string(ZoneTags::Tag))
                    .primary_key(Index::create().col(ZoneTags::ZoneId).col(ZoneTags::Tag))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_zone_tags_tag")
                    .table(ZoneTags::Table)
                    .col(ZoneTags::Tag)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Enterprises::Table)
                    .if_not_exists()
                    .col(string_len(Enterprises::CreditCode, 18).primary_key())
                    .col(string(Enterprises::Name))
                    .col(string_len_null(Enterprises::ZoneId, 64))
                    .col(string_len(Enterprises::IndustryCode, 8))
                    .col(boolean(Enterprises::AboveScale))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enterprises_zone")
                    .table(Enterprises::Table)
                    .col(Enterprises::ZoneId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Clusters::Table)
                    .if_not_exists()
                    .col(string_len(Clusters::Id, 64).primary_key())
                    .col(string(Clusters::Name))
                    .col(string_len(Clusters::RegionCode, 6))
                    .col(string_len_null(Clusters::ZoneId, 64))
                    .col(string(Clusters::Industry))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .if_not_exists()
                    .col(string_len(Projects::Id, 64).primary_key())
                    .col(string(Projects::Name))
                    .col(string_len(Projects::ZoneId, 64))
                    .col(string_len(Projects::Status, 32))
                    .col(double(Projects::PlannedInvestment))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Indicators::Table)
                    .if_not_exists()
                    .col(string_len(Indicators::Code, 64).primary_key())
                    .col(string(Indicators::NameZh))
                    .col(string(Indicators::NameEn))
                    .col(string_len(Indicators::Unit, 16))
                    .col(string_len(Indicators::Kind, 16))
                    .col(string_len(Indicators::Direction, 32))
                    .col(boolean(Indicators::Builtin))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(observation_table(Observations::Table, false))
            .await?;
        manager
            .create_table(observation_table(ObservationRevisions::Table, true))
            .await?;
        // Cohort reads go by indicator and period across many entities.
        manager
            .create_index(
                Index::create()
                    .name("idx_observations_indicator_period")
                    .table(Observations::Table)
                    .col(Observations::Indicator)
                    .col(Observations::PeriodStart)
                    .col(Observations::PeriodEnd)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_observation_revisions_recorded")
                    .table(ObservationRevisions::Table)
                    .col(Observations::Indicator)
                    .col(Observations::RecordedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Targets::Table)
                    .if_not_exists()
                    .col(string_len(Targets::EntityKind, 16))
                    .col(string_len(Targets::EntityId, 64))
                    .col(string(Targets::Metric))
                    .col(string_len(Targets::Period, 16))
                    .col(string_len(Targets::Comparator, 16))
                    .col(double(Targets::Value))
                    .col(string_len(Targets::Unit, 16))
                    .col(text(Targets::Note))
                    .primary_key(
                        Index::create()
                            .col(Targets::EntityKind)
                            .col(Targets::EntityId)
                            .col(Targets::Metric)
                            .col(Targets::Period),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DataVersion::Table)
                    .if_not_exists()
                    .col(integer(DataVersion::Id).primary_key())
                    .col(big_integer(DataVersion::Version))
                    .col(big_integer(DataVersion::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(DataVersion::Table)
                    .columns([
                        DataVersion::Id,
                        DataVersion::Version,
                        DataVersion::UpdatedAt,
                    ])
                    .values_panic([1.into(), 0i64.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DataVersion::Table.into_iden(),
            Targets::Table.into_iden(),
            ObservationRevisions::Table.into_iden(),
            Observations::Table.into_iden(),
            Indicators::Table.into_iden(),
            Projects::Table.into_iden(),
            Clusters::Table.into_iden(),
            Enterprises::Table.into_iden(),
            ZoneTags::Table.into_iden(),
            Zones::Table.into_iden(),
            Regions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
