//! The connection, migrations, the schema check and the data version.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder, SelectStatement, SimpleExpr},
};
use sea_orm_migration::MigratorTrait;

use crate::{
    StorageError,
    entity::{data_commit, data_version, indicator},
    migration::Migrator,
};

/// How long a query waits for a pooled connection, opening new ones meanwhile, before it
/// fails and the request answers UNAVAILABLE: the driver's default, 30 s, would hold every
/// request of a database outage that long. (sea-orm's `connect_timeout` sets the same
/// deadline.)
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

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
                options
                    .max_connections(16)
                    .min_connections(1)
                    .acquire_timeout(ACQUIRE_TIMEOUT);
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
    /// Microseconds since the epoch, taken when the version committed. Every later commit's is
    /// greater: an as-of read at this moment sees exactly this version.
    pub stamped_at: i64,
}

/// Takes the writers' lock (the version row, held until the transaction ends) and returns the
/// version this transaction will commit as. Its revisions carry that version; the moment it
/// becomes visible to as-of reads is stamped by [`stamp_commit`] at the end.
pub(crate) async fn begin_version<C: ConnectionTrait>(txn: &C) -> Result<i64, StorageError> {
    data_version::Entity::update_many()
        .col_expr(
            data_version::Column::Version,
            Expr::col(data_version::Column::Version).add(Expr::val(1i64)),
        )
        .filter(data_version::Column::Id.eq(1))
        .exec(txn)
        .await?;
    Ok(version_row(txn).await?.version)
}

/// The last statements of a write transaction that holds the writers' lock as `version`:
/// records the commit stamp, `max(now, previous stamp + 1 µs)`, in the version row and the
/// commit log. The caller commits right after.
///
/// The visibility rule of as-of reads rests on this stamp. A read at moment T shows the
/// versions committed at or before T among the commits it can see ([`version_as_of`]). Let L be
/// the last of those stamps. A transaction the read cannot see holds the lock and stamps after
/// every commit the read saw, so its stamp is greater than L: the answer at any T up to L is
/// final. A T after L reads the state at L, and keeps reading it after an open import commits
/// as long as the import stamps later than T, which holds when it takes its stamp after the
/// read on a clock not behind the reader's. That is why the stamp is taken here, after every
/// row is written, and why [`Store::pin`] clamps a moment after L to L.
pub(crate) async fn stamp_commit<C: ConnectionTrait>(
    txn: &C,
    version: i64,
) -> Result<DataVersion, StorageError> {
    let previous = version_row(txn).await?.updated_at;
    let stamped_at = Ord::max(crate::now_micros(), previous + 1);
    data_version::Entity::update_many()
        .col_expr(data_version::Column::UpdatedAt, Expr::value(stamped_at))
        .filter(data_version::Column::Id.eq(1))
        .exec(txn)
        .await?;
    data_commit::Entity::insert(data_commit::ActiveModel {
        version: sea_orm::Set(version),
        committed_at: sea_orm::Set(stamped_at),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(DataVersion {
        version,
        stamped_at,
    })
}

/// Bumps the data version and stamps the commit inside the caller's transaction, for writes
/// that have nothing to do between the two: call it last, then commit.
pub(crate) async fn bump_version(txn: &DatabaseTransaction) -> Result<DataVersion, StorageError> {
    let version = begin_version(txn).await?;
    stamp_commit(txn, version).await
}

/// The last data version committed at or before `as_of` (microseconds since the epoch), one
/// query: a moment at or after the last commit resolves to that commit, and a version still
/// open has no commit row yet. None before the first commit.
pub(crate) async fn version_as_of<C: ConnectionTrait>(
    db: &C,
    as_of: i64,
) -> Result<Option<i64>, StorageError> {
    let statement = db.get_database_backend().build(&last_version_by(as_of));
    Ok(match db.query_one_raw(statement).await? {
        Some(row) => row.try_get_by_index::<Option<i64>>(0)?,
        None => None,
    })
}

/// `SELECT max(version)` of the commits stamped at or before `as_of`.
fn last_version_by(as_of: i64) -> SelectStatement {
    Query::select()
        .expr(Expr::col(data_commit::Column::Version).max())
        .from(data_commit::Entity)
        .and_where(Expr::col(data_commit::Column::CommittedAt).lte(as_of))
        .to_owned()
}

/// The commit stamps of `versions`: the `recorded_at` of the revisions they wrote.
pub(crate) async fn commit_stamps<C: ConnectionTrait>(
    db: &C,
    versions: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, i64>, StorageError> {
    let versions: BTreeSet<i64> = versions.into_iter().collect();
    let mut stamps = HashMap::with_capacity(versions.len());
    let versions: Vec<i64> = versions.into_iter().collect();
    for chunk in versions.chunks(crate::reference::rows_per_statement(1)) {
        let rows: Vec<(i64, i64)> = data_commit::Entity::find()
            .select_only()
            .columns([
                data_commit::Column::Version,
                data_commit::Column::CommittedAt,
            ])
            .filter(data_commit::Column::Version.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        stamps.extend(rows);
    }
    match versions.iter().find(|v| !stamps.contains_key(v)) {
        Some(v) => Err(StorageError::Corrupt(format!(
            "commit of version {v} missing"
        ))),
        None => Ok(stamps),
    }
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

/// The moment a computation reads at and the data version it shows, resolved together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// Microseconds since the epoch: the moment asked for, or the last commit's stamp when none
    /// was asked for or the moment is later than that commit.
    pub as_of: i64,
    /// The last version committed at or before `as_of` (0 before any).
    pub version: i64,
}

impl Store {
    /// Pins a read: `as_of` (None for now) clamped to the last commit's stamp, with the version
    /// committed by then, from one statement. Every commit the read cannot see stamps later
    /// than that commit, so reads at the pinned moment give the same answer at any later time;
    /// a moment later than the last commit is not pinned as such, since a transaction open now
    /// may still commit before it.
    pub async fn pin(&self, as_of: Option<i64>) -> Result<Pinned, StorageError> {
        let at = as_of.unwrap_or(i64::MAX);
        let (visible, last): (Option<i64>, i64) = data_version::Entity::find()
            .select_only()
            .expr(SimpleExpr::SubQuery(
                None,
                Box::new(last_version_by(at).into_sub_query_statement()),
            ))
            .column(data_version::Column::UpdatedAt)
            .filter(data_version::Column::Id.eq(1))
            .into_tuple()
            .one(&self.db)
            .await?
            .ok_or_else(|| StorageError::Corrupt("data_version row missing".into()))?;
        Ok(Pinned {
            as_of: Ord::min(at, last),
            version: visible.unwrap_or(0),
        })
    }

    /// The latest committed data version and its stamp, read together from the version row: the
    /// `as_of` that reproduces exactly what is served now, and the version it shows.
    pub async fn committed_version(&self) -> Result<DataVersion, StorageError> {
        let row = version_row(&self.db).await?;
        Ok(DataVersion {
            version: row.version,
            stamped_at: row.updated_at,
        })
    }
}
