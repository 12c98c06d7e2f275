//! The connection, migrations, the schema check and the data version.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use sea_orm_migration::MigratorTrait;

use crate::{
    StorageError,
    entity::{data_version, indicator},
    migration::Migrator,
};

/// The zonerank database.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
}

/// Where the database schema stands against this binary's migrations.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaStatus {
    /// Every migration applied, none unknown.
    Current,
    /// These migrations have not been applied yet.
    Behind(Vec<String>),
}

impl Store {
    /// Connects to `url`: `sqlite://path?mode=rwc`, a bare file path (SQLite, created if missing)
    /// or `postgres://…`. A URL that cannot be used fails with a `StorageError::Connect` that
    /// names what to fix, within seconds.
    pub async fn connect(url: &str) -> Result<Store, StorageError> {
        let db = crate::connect::open(url, |options, sqlite| {
            options.sqlx_logging(false);
            if sqlite {
                // One writer at a time is all SQLite allows; more connections only contend.
                options.max_connections(4).min_connections(1);
            } else {
                options.max_connections(16).min_connections(1);
            }
        })
        .await?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers go on while an import writes; busy_timeout queues writers.
            db.execute_unprepared(
                "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
            )
            .await?;
        }
        Ok(Store { db })
    }

    /// The underlying sea-orm connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration and brings the built-in indicator catalog up to date.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        Migrator::up(&self.db, None).await?;
        self.seed_builtin_indicators().await
    }

    /// Compares the database's applied migrations with this binary's.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StorageError> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(|e| {
                // sea-orm-migration refuses a database with applied migrations it has no file for.
                let text = e.to_string();
                if text.contains("missing") {
                    StorageError::SchemaUnknown(text)
                } else {
                    StorageError::Database(e)
                }
            })?;
        if pending.is_empty() {
            Ok(SchemaStatus::Current)
        } else {
            Ok(SchemaStatus::Behind(
                pending.iter().map(|m| m.name().to_string()).collect(),
            ))
        }
    }

    /// Fails unless the schema is exactly the one this binary knows: services refuse to start
    /// on anything else.
    pub async fn require_current_schema(&self) -> Result<(), StorageError> {
        match self.schema_status().await? {
            SchemaStatus::Current => Ok(()),
            SchemaStatus::Behind(pending) => Err(StorageError::SchemaBehind(pending)),
        }
    }

    /// Answers when the database does (readiness).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db.ping().await.map_err(StorageError::from)
    }

    /// The current data version.
    pub async fn data_version(&self) -> Result<i64, StorageError> {
        current_version(&self.db).await
    }

    async fn seed_builtin_indicators(&self) -> Result<(), StorageError> {
        let existing = indicator::Entity::find()
            .select_only()
            .column(indicator::Column::Code)
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        let builtins = zonerank_domain::catalog::builtin_indicators();
        let missing: Vec<_> = builtins
            .iter()
            .filter(|i| !existing.contains(&i.code))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        crate::reference::insert_indicators(&txn, missing.into_iter(), true).await?;
        bump_version(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

pub(crate) async fn current_version<C: ConnectionTrait>(db: &C) -> Result<i64, StorageError> {
    Ok(version_row(db).await?.version)
}

async fn version_row<C: ConnectionTrait>(db: &C) -> Result<data_version::Model, StorageError> {
    data_version::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| StorageError::Corrupt("data_version row missing".into()))
}

/// A committed data version and the moment it was stamped with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataVersion {
    pub version: i64,
    /// Microseconds since the epoch. Every revision of this commit is recorded with it, and
    /// every later commit's is greater: an as-of read at this moment sees exactly this version.
    pub stamped_at: i64,
}

/// Bumps the data version inside the caller's transaction (taking the writers' lock) and
/// returns the new version with its stamp, strictly after the previous commit's even if clocks
/// of different pods disagree.
pub(crate) async fn bump_version(txn: &DatabaseTransaction) -> Result<DataVersion, StorageError> {
    data_version::Entity::update_many()
        .col_expr(
            data_version::Column::Version,
            Expr::col(data_version::Column::Version).add(Expr::val(1i64)),
        )
        .filter(data_version::Column::Id.eq(1))
        .exec(txn)
        .await?;
    let row = version_row(txn).await?;
    let stamped_at = Ord::max(crate::now_micros(), row.updated_at + 1);
    data_version::Entity::update_many()
        .col_expr(data_version::Column::UpdatedAt, Expr::value(stamped_at))
        .filter(data_version::Column::Id.eq(1))
        .exec(txn)
        .await?;
    Ok(DataVersion {
        version: row.version,
        stamped_at,
    })
}

/// Takes the writers' lock (the version row) without bumping the version.
pub(crate) async fn lock_writers(txn: &DatabaseTransaction) -> Result<(), StorageError> {
    data_version::Entity::update_many()
        .col_expr(
            data_version::Column::Version,
            Expr::col(data_version::Column::Version),
        )
        .filter(data_version::Column::Id.eq(1))
        .exec(txn)
        .await?;
    Ok(())
}

impl Store {
    /// The latest committed data version and its stamp: the `as_of` that reproduces exactly
    /// what is served now.
    pub async fn committed_version(&self) -> Result<DataVersion, StorageError> {
        let row = version_row(&self.db).await?;
        Ok(DataVersion {
            version: row.version,
            stamped_at: row.updated_at,
        })
    }
}
