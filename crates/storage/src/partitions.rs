//! The year partitions of `observations` and `observation_revisions` on PostgreSQL (made by the
//! `partition_observations` migration), and the years made on demand: every write asks for the
//! years of its rows before it writes them.
//!
//! A missing year is made in a short transaction of its own, before the write's transaction
//! takes the writers' lock. Making a partition locks its parent table (ACCESS EXCLUSIVE) until
//! that transaction ends; inside a long import it would block every read of observations
//! until the import committed, once a year. Made on its own, it waits at most `LOCK_TIMEOUT`
//! for the reads under way, and holds the lock only for the two `CREATE`s. A write that then
//! fails leaves an empty partition of its year behind, which is schema, not data. SQLite has no
//! partitions: nothing is done.

use std::collections::BTreeSet;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait,
    sea_query::{ArrayType, Value},
};

use crate::StorageError;

/// The partitioned tables; a year's partition of `table` is `{table}_y{year}`.
pub(crate) const PARTITIONED: [&str; 2] = ["observations", "observation_revisions"];

/// How long making a partition waits for the reads that hold its parent.
const LOCK_TIMEOUT: &str = "10s";

/// The year of a period that starts at `period_start` (months since year 0).
pub(crate) fn year_of(period_start: i64) -> i32 {
    period_start.div_euclid(12) as i32
}

/// Rows a write must change before it refreshes the planner's statistics of its years.
///
/// A bulk import into a fresh or small partition otherwise leaves PostgreSQL planning the next
/// reads from statistics taken before it (none at all for a new year): it then walks the whole
/// partition through its primary key instead of scanning it, 11–20 s instead of 0.3 s per
/// metrics read at 3.5 million rows a year, until autovacuum analyzes the partition minutes
/// later. Sampling a partition costs a fraction of a second, so smaller writes leave it to
/// autovacuum.
pub(crate) const ANALYZE_AFTER_ROWS: i64 = 10_000;

/// `ANALYZE` of the year partitions of `years` (of the history too when `revised`), inside the
/// caller's transaction, so the statistics commit with the rows they describe. Nothing on
/// SQLite.
pub(crate) async fn analyze_years<C: ConnectionTrait>(
    c: &C,
    years: &BTreeSet<i32>,
    revised: bool,
) -> Result<(), StorageError> {
    if c.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for year in years {
        for table in PARTITIONED {
            if table == "observation_revisions" && !revised {
                continue;
            }
            c.execute_unprepared(&format!("ANALYZE {table}_y{year}"))
                .await?;
        }
    }
    Ok(())
}

/// Makes the partitions of `years` that do not exist yet, on both tables.
pub(crate) async fn ensure_years(
    db: &DatabaseConnection,
    years: &BTreeSet<i32>,
) -> Result<(), StorageError> {
    if db.get_database_backend() != DbBackend::Postgres || years.is_empty() {
        return Ok(());
    }
    let missing = missing_years(db, years).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    // Two writers that both found a year missing make it one after the other; the second's
    // `IF NOT EXISTS` then finds it.
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(hashtext('zonerank partitions'))")
        .await?;
    for year in missing {
        for table in PARTITIONED {
            txn.execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {table}_y{year} PARTITION OF {table} \
                 FOR VALUES FROM ({}) TO ({})",
                i64::from(year) * 12,
                (i64::from(year) + 1) * 12
            ))
            .await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

/// The years among `years` that one of the tables has no partition for.
async fn missing_years<C: ConnectionTrait>(
    c: &C,
    years: &BTreeSet<i32>,
) -> Result<Vec<i32>, StorageError> {
    let years: Vec<Value> = years.iter().map(|&y| Value::from(y)).collect();
    let rows = c
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT y FROM unnest($1::int4[]) AS y \
             WHERE to_regclass('observations_y' || y) IS NULL \
                OR to_regclass('observation_revisions_y' || y) IS NULL",
            [Value::Array(ArrayType::Int, Some(Box::new(years)))],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get_by_index::<i32>(0))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_holds_its_twelve_months() {
        assert_eq!(year_of(2023 * 12), 2023);
        assert_eq!(year_of(2023 * 12 + 11), 2023);
        assert_eq!(year_of(2024 * 12), 2024);
    }
}
