//! Commit stamps: every revision carries the data version of the transaction that wrote it, and
//! `data_commits` records when each version committed. An as-of read resolves its moment to the
//! last version committed by then, so a transaction still open at that moment, which commits
//! later with a later stamp, can never change the answer.
//!
//! Before this migration a revision carried `recorded_at`, the stamp its transaction took when it
//! started, which was also the version row's stamp at that commit. Those stamps become the
//! commit log of the history: each distinct stamp is one commit, numbered in stamp order so that
//! the newest ends at the current data version.

use sea_orm::{ConnectionTrait, Statement, TryGetable};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataCommits {
    Table,
    Version,
    CommittedAt,
}

#[derive(DeriveIden)]
enum DataVersion {
    Table,
    Id,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Observations {
    Table,
    Indicator,
    Version,
    RecordedAt,
}

#[derive(DeriveIden)]
enum ObservationRevisions {
    Table,
}

const OLD_INDEX: &str = "idx_observation_revisions_recorded";
const NEW_INDEX: &str = "idx_observation_revisions_version";

async fn column_values<T: TryGetable>(
    manager: &SchemaManager<'_>,
    select: SelectStatement,
) -> Result<Vec<T>, DbErr> {
    let db = manager.get_connection();
    let statement: Statement = db.get_database_backend().build(&select);
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<T>(0))
        .collect()
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataCommits::Table)
                    .if_not_exists()
                    .col(big_integer(DataCommits::Version).primary_key())
                    .col(big_integer(DataCommits::CommittedAt).unique_key())
                    .to_owned(),
            )
            .await?;
        for table in [
            Observations::Table.into_iden(),
            ObservationRevisions::Table.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(big_integer(Observations::Version).default(0i64))
                        .to_owned(),
                )
                .await?;
        }

        // The history so far: one commit per distinct stamp, the newest at the current version
        // (or just below it when the last commit wrote reference data only).
        let (version, stamp): (i64, i64) = {
            let db = manager.get_connection();
            let select = Query::select()
                .columns([DataVersion::Version, DataVersion::UpdatedAt])
                .from(DataVersion::Table)
                .and_where(Expr::col(DataVersion::Id).eq(1))
                .to_owned();
            let row = db
                .query_one_raw(db.get_database_backend().build(&select))
                .await?
                .ok_or_else(|| DbErr::Migration("data_version row missing".into()))?;
            (row.try_get_by_index(0)?, row.try_get_by_index(1)?)
        };
        let stamps = column_values::<i64>(
            manager,
            Query::select()
                .distinct()
                .column(Observations::RecordedAt)
                .from(ObservationRevisions::Table)
                .order_by(Observations::RecordedAt, Order::Asc)
                .to_owned(),
        )
        .await?;
        let last_is_current = stamps.last() == Some(&stamp);
        let first = version - stamps.len() as i64 + i64::from(last_is_current);
        let mut commits: Vec<(i64, i64)> = stamps
            .iter()
            .enumerate()
            .map(|(i, &s)| (first + i as i64, s))
            .collect();
        if !last_is_current {
            commits.push((version, stamp));
        }
        for &(version, stamp) in &commits {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(DataCommits::Table)
                        .columns([DataCommits::Version, DataCommits::CommittedAt])
                        .values_panic([version.into(), stamp.into()])
                        .to_owned(),
                )
                .await?;
        }
        // One pass per table, through the unique index on the commit stamp.
        for table in ["observations", "observation_revisions"] {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET version = (SELECT version FROM data_commits \
                     WHERE data_commits.committed_at = {table}.recorded_at)"
                ))
                .await?;
        }

        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(ObservationRevisions::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            Observations::Table.into_iden(),
            ObservationRevisions::Table.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column(Observations::RecordedAt)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(NEW_INDEX)
                    .table(ObservationRevisions::Table)
                    .col(Observations::Indicator)
                    .col(Observations::Version)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NEW_INDEX)
                    .table(ObservationRevisions::Table)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for table in ["observations", "observation_revisions"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(big_integer(Observations::RecordedAt).default(0i64))
                        .to_owned(),
                )
                .await?;
            db.execute_raw(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "UPDATE {table} SET recorded_at = (SELECT committed_at FROM data_commits \
                     WHERE data_commits.version = {table}.version)"
                ),
            ))
            .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Observations::Version)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(ObservationRevisions::Table)
                    .col(Observations::Indicator)
                    .col(Observations::RecordedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DataCommits::Table).to_owned())
            .await?;
        Ok(())
    }
}
