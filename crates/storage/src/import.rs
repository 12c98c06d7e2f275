//! Bulk import of observations in bounded memory: rows arrive in chunks and are staged in a
//! temporary table inside one transaction (PostgreSQL: `COPY`; SQLite: multi-row inserts of one
//! prepared shape), then merged set-wise when the last chunk is in: new keys into
//! `observations`, changed ones there too with the values they replace moved to
//! `observation_revisions`. Nothing is visible to anyone until the transaction commits, so a bad
//! row in the last chunk still leaves nothing written.

use std::{collections::BTreeSet, sync::Arc};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
    prelude::async_trait,
    sea_query::{Value, Values},
    sqlx,
};
use sea_query_sqlx::SqlxValues;

use crate::{
    AuditEvent, ObservationInput, StorageError, Store, WriteSummary,
    audit::{add_event_entities_from, insert_event},
    observations::{KEY_COLUMNS, WRITTEN_COLUMNS, archive_replaced, replace_current},
    partitions::{ANALYZE_AFTER_ROWS, analyze_years, ensure_years, year_of},
    reference::rows_per_statement,
    store::{begin_version, stamp_commit},
};

/// The staged rows: `seq` is the position in the import (unique), `row_number` the row the
/// caller reports errors with (a CSV line, or what a client sent).
const STAGE: &str = "import_rows";
const STAGE_COLUMNS: [&str; 10] = [
    "seq",
    "row_number",
    "entity_kind",
    "entity_id",
    "indicator",
    "period",
    "period_start",
    "period_end",
    "value",
    "source",
];
/// The staged rows that change something, with the revision they become.
const CHANGED: &str = "import_changed";

/// A PostgreSQL transaction on a connection of the store's pool, driven through sqlx directly:
/// sea-orm does not hand out the connection of its own transactions, and `COPY` needs it. It
/// implements `ConnectionTrait`, so the statements every write shares (the writers' lock, the
/// commit stamp, the audit event) run on it unchanged.
pub(crate) struct PgTxn(tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>>);

impl PgTxn {
    /// Opens a transaction on a connection of `db`'s pool (a PostgreSQL store).
    pub(crate) async fn begin(db: &DatabaseConnection) -> Result<PgTxn, StorageError> {
        let txn = db
            .get_postgres_connection_pool()
            .begin()
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(PgTxn(tokio::sync::Mutex::new(txn)))
    }

    /// Sends `data` to `copy` (a `COPY … FROM STDIN` statement) in this transaction.
    pub(crate) async fn copy_in(&self, copy: &str, data: &[u8]) -> Result<(), StorageError> {
        self.copy_in_parts(copy, std::iter::once(data.to_vec()))
            .await
    }

    /// A `COPY … FROM STDIN` whose data is sent part by part as `parts` yields it, so the
    /// whole payload is never held at once.
    pub(crate) async fn copy_in_parts(
        &self,
        copy: &str,
        parts: impl Iterator<Item = Vec<u8>> + Send,
    ) -> Result<(), StorageError> {
        let mut txn = self.0.lock().await;
        let mut sink = txn.copy_in_raw(copy).await.map_err(exec_err)?;
        for part in parts {
            if let Err(e) = sink.send(part).await {
                let _ = sink.abort("send failed").await;
                return Err(exec_err(e).into());
            }
        }
        sink.finish().await.map_err(exec_err)?;
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), StorageError> {
        self.0.into_inner().commit().await.map_err(exec_err)?;
        Ok(())
    }
}

fn query(stmt: &Statement) -> sqlx::query::Query<'_, sqlx::Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

#[async_trait::async_trait]
impl ConnectionTrait for PgTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut txn = self.0.lock().await;
        let done = query(&stmt).execute(&mut **txn).await.map_err(exec_err)?;
        Ok(done.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut txn = self.0.lock().await;
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut **txn)
            .await
            .map_err(exec_err)?;
        Ok(done.into())
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut txn = self.0.lock().await;
        let row = query(&stmt)
            .fetch_optional(&mut **txn)
            .await
            .map_err(query_err)?;
        Ok(row.map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut txn = self.0.lock().await;
        let rows = query(&stmt)
            .fetch_all(&mut **txn)
            .await
            .map_err(query_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

enum Txn {
    Postgres(PgTxn),
    Sqlite(DatabaseTransaction),
}

/// Runs `$body` with `$c` bound to the transaction, whichever backend.
macro_rules! on_txn {
    ($txn:expr, $c:ident => $body:expr) => {
        match $txn {
            Txn::Postgres($c) => $body,
            Txn::Sqlite($c) => $body,
        }
    };
}

/// A row refused because an earlier row of the same import has its key.
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicateRow {
    pub row: i64,
    pub first_row: i64,
    pub kind: String,
    pub entity_id: String,
    pub indicator: String,
    pub period: String,
}

/// An import under way: one open transaction with the rows staged so far. Dropped without
/// [`ObservationImport::finish`], it rolls back.
pub struct ObservationImport {
    db: DatabaseConnection,
    txn: Txn,
    staged: i64,
    /// The years of the staged rows: their partitions are made before the merge.
    years: BTreeSet<i32>,
}

impl Store {
    /// Opens an import: a transaction with an empty staging table. Rows are written when it
    /// finishes.
    pub async fn begin_observation_import(&self) -> Result<ObservationImport, StorageError> {
        let txn = match self.db.get_database_backend() {
            DbBackend::Postgres => Txn::Postgres(PgTxn::begin(&self.db).await?),
            _ => Txn::Sqlite(self.db.begin().await?),
        };
        let import = ObservationImport {
            db: self.db.clone(),
            txn,
            staged: 0,
            years: BTreeSet::new(),
        };
        on_txn!(&import.txn, c => create_stage(c).await)?;
        Ok(import)
    }
}

fn temp_table(backend: DbBackend, name: &str, body: &str) -> String {
    match backend {
        // Gone at commit or rollback.
        DbBackend::Postgres => match body.strip_prefix("AS ") {
            Some(query) => format!("CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {query}"),
            None => format!("CREATE TEMPORARY TABLE {name} {body} ON COMMIT DROP"),
        },
        // SQLite's DDL is transactional; a committed temp table lives with the pooled
        // connection, so `drop_stage` removes it before commit.
        _ => format!("CREATE TEMPORARY TABLE {name} {body}"),
    }
}

/// The memory PostgreSQL may give each sort and hash of an import's set statements (the
/// repeats' grouping, the join with the served values, the entities' `DISTINCT`): in memory
/// instead of spilled to disk at the server's default 4 MB, for this transaction only.
const IMPORT_WORK_MEM: &str = "64MB";

async fn create_stage<C: ConnectionTrait>(c: &C) -> Result<(), StorageError> {
    let backend = c.get_database_backend();
    if backend == DbBackend::Postgres {
        c.execute_unprepared(&format!("SET LOCAL work_mem = '{IMPORT_WORK_MEM}'"))
            .await?;
    } else {
        c.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{STAGE}"))
            .await?;
        c.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{CHANGED}"))
            .await?;
    }
    c.execute_unprepared(&temp_table(
        backend,
        STAGE,
        "(seq BIGINT NOT NULL, row_number BIGINT NOT NULL, entity_kind TEXT NOT NULL, \
         entity_id TEXT NOT NULL, indicator TEXT NOT NULL, period TEXT NOT NULL, \
         period_start INTEGER NOT NULL, period_end INTEGER NOT NULL, \
         value DOUBLE PRECISION NOT NULL, source TEXT NOT NULL)",
    ))
    .await?;
    Ok(())
}

async fn drop_stage<C: ConnectionTrait>(c: &C) -> Result<(), StorageError> {
    if c.get_database_backend() != DbBackend::Postgres {
        c.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{STAGE}"))
            .await?;
        c.execute_unprepared(&format!("DROP TABLE IF EXISTS temp.{CHANGED}"))
            .await?;
    }
    Ok(())
}

/// Appends `text` to a `COPY … (FORMAT text)` field, escaping what the format reserves.
fn copy_text(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(ch),
        }
    }
}

/// The `COPY` text of one chunk. Values are written in Rust's shortest round-trip form, which
/// PostgreSQL reads back to the same bits.
fn copy_chunk(first_seq: i64, rows: &[ObservationInput], row_numbers: &[i64]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(rows.len() * 96);
    for (n, (o, row)) in rows.iter().zip(row_numbers).enumerate() {
        let _ = write!(
            out,
            "{}\t{row}\t{}\t",
            first_seq + n as i64,
            o.kind.as_str()
        );
        copy_text(&mut out, &o.entity_id);
        out.push('\t');
        copy_text(&mut out, &o.indicator);
        out.push('\t');
        copy_text(&mut out, &o.period.canonical());
        let _ = write!(
            out,
            "\t{}\t{}\t{}\t",
            o.period.start_ordinal(),
            o.period.end_ordinal(),
            o.value
        );
        copy_text(&mut out, &o.source);
        out.push('\n');
    }
    out
}

/// The key columns of the two staging tables, matched with `observations` (alias `o`).
fn key_join(left: &str) -> String {
    KEY_COLUMNS
        .iter()
        .map(|k| format!("o.{k} = {left}.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn statement(backend: DbBackend, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}

/// The `n`-th bind placeholder (1-based) of the backend.
/// The `n`th bind placeholder of `backend`.
pub(crate) fn bind(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}

impl ObservationImport {
    /// Stages a chunk of checked rows; `row_numbers[i]` is the row of `rows[i]`. Keys need not
    /// be unique across chunks: [`ObservationImport::take_duplicates`] finds repeats.
    pub async fn stage(
        &mut self,
        rows: &[ObservationInput],
        row_numbers: &[i64],
    ) -> Result<(), StorageError> {
        self.years
            .extend(rows.iter().map(|r| year_of(r.period.start_ordinal())));
        if rows.is_empty() {
            return Ok(());
        }
        let first_seq = self.staged + 1;
        match &self.txn {
            Txn::Postgres(pg) => {
                let text = copy_chunk(first_seq, rows, row_numbers);
                pg.copy_in(
                    &format!(
                        "COPY {STAGE} ({}) FROM STDIN (FORMAT text)",
                        STAGE_COLUMNS.join(", ")
                    ),
                    text.as_bytes(),
                )
                .await?;
            }
            Txn::Sqlite(txn) => {
                let per_statement = rows_per_statement(STAGE_COLUMNS.len());
                let tuple = format!("({})", vec!["?"; STAGE_COLUMNS.len()].join(", "));
                for (c, chunk) in rows.chunks(per_statement).enumerate() {
                    let at = c * per_statement;
                    let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 10);
                    for (n, o) in chunk.iter().enumerate() {
                        values.extend([
                            (first_seq + (at + n) as i64).into(),
                            row_numbers[at + n].into(),
                            o.kind.as_str().into(),
                            o.entity_id.clone().into(),
                            o.indicator.clone().into(),
                            o.period.canonical().into(),
                            (o.period.start_ordinal() as i32).into(),
                            (o.period.end_ordinal() as i32).into(),
                            o.value.into(),
                            o.source.clone().into(),
                        ]);
                    }
                    let tuples = vec![tuple.as_str(); chunk.len()].join(", ");
                    txn.execute_raw(statement(
                        DbBackend::Sqlite,
                        format!("INSERT INTO {STAGE} VALUES {tuples}"),
                        values,
                    ))
                    .await?;
                }
            }
        }
        self.staged += rows.len() as i64;
        Ok(())
    }

    /// Rows staged so far.
    pub fn staged(&self) -> i64 {
        self.staged
    }

    /// Removes every staged row whose key an earlier row of the import already has, and
    /// returns how many there were and the first `limit` of them in row order.
    pub async fn take_duplicates(
        &mut self,
        limit: u64,
    ) -> Result<(i64, Vec<DuplicateRow>), StorageError> {
        let keys = KEY_COLUMNS.join(", ");
        let on = KEY_COLUMNS
            .iter()
            .map(|k| format!("s.{k} = f.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let repeats = format!(
            "FROM {STAGE} s JOIN (SELECT {keys}, MIN(seq) AS first_seq, MIN(row_number) AS \
             first_row FROM {STAGE} GROUP BY {keys} HAVING COUNT(*) > 1) f ON {on} \
             WHERE s.seq > f.first_seq"
        );
        let found = on_txn!(&self.txn, c => {
            let backend = c.get_database_backend();
            let rows = c
                .query_all_raw(statement(
                    backend,
                    format!(
                        "SELECT s.row_number, f.first_row, s.entity_kind, s.entity_id, \
                         s.indicator, s.period {repeats} ORDER BY s.seq LIMIT {limit}"
                    ),
                    Vec::new(),
                ))
                .await?;
            if rows.is_empty() {
                return Ok((0, Vec::new()));
            }
            let mut found = Vec::with_capacity(rows.len());
            for r in rows {
                found.push(DuplicateRow {
                    row: r.try_get_by_index(0)?,
                    first_row: r.try_get_by_index(1)?,
                    kind: r.try_get_by_index(2)?,
                    entity_id: r.try_get_by_index(3)?,
                    indicator: r.try_get_by_index(4)?,
                    period: r.try_get_by_index(5)?,
                });
            }
            let removed = c
                .execute_raw(statement(
                    backend,
                    format!("DELETE FROM {STAGE} WHERE seq IN (SELECT s.seq {repeats})"),
                    Vec::new(),
                ))
                .await?
                .rows_affected();
            (removed as i64, found)
        });
        self.staged -= found.0;
        Ok(found)
    }

    /// Merges the staged rows: new keys are accepted, changed values become the next revision
    /// with the next data version, values equal to the served one (bit for bit on PostgreSQL)
    /// are left alone. `event` gets the counts and the entities written and is inserted in the
    /// same transaction (on its own when nothing changed; not at all on a dry run, which rolls
    /// everything back).
    pub async fn finish(
        self,
        dry_run: bool,
        mut event: AuditEvent,
        issues: &crate::IssueChanges,
    ) -> Result<WriteSummary, StorageError> {
        let recorded_by = event.principal.clone();
        if !dry_run {
            ensure_years(&self.db, &self.years).await?;
        }
        let summary = on_txn!(&self.txn, c => merge(c, dry_run, &recorded_by).await)?;
        event.created += summary.accepted;
        event.updated += summary.updated;
        event.unchanged += summary.unchanged;
        let changed = summary.accepted + summary.updated > 0;
        if dry_run || !changed {
            let db = self.db.clone();
            self.rollback().await?;
            if !dry_run {
                // Nothing was written: the event stands alone, without a data version.
                insert_event(&db, &event, None).await?;
            }
            return Ok(summary);
        }
        on_txn!(&self.txn, c => {
            let id = insert_event(c, &event, Some(summary.data_version)).await?;
            // The entities written, named from the changed rows in the database.
            add_event_entities_from(c, id, CHANGED).await?;
            // The data-quality issues of the rows written, in the same transaction.
            crate::data_issues::apply_issue_changes(c, issues, summary.data_version, &event.request_id)
                .await?;
            drop_stage(c).await?;
            if summary.accepted + summary.updated >= ANALYZE_AFTER_ROWS {
                analyze_years(c, &self.years, summary.updated > 0).await?;
            }
        });
        match self.txn {
            Txn::Postgres(pg) => pg.commit().await?,
            Txn::Sqlite(txn) => txn.commit().await?,
        }
        Ok(summary)
    }

    /// Abandons the import: nothing staged is written.
    pub async fn rollback(self) -> Result<(), StorageError> {
        match self.txn {
            Txn::Postgres(pg) => pg.0.into_inner().rollback().await.map_err(exec_err)?,
            Txn::Sqlite(txn) => {
                drop_stage(&txn).await?;
                txn.rollback().await?;
            }
        }
        Ok(())
    }
}

/// The set-wise merge inside the import's transaction; its summary. The changed rows stay in
/// `CHANGED` for the audit event.
async fn merge<C: ConnectionTrait>(
    c: &C,
    dry_run: bool,
    recorded_by: &str,
) -> Result<WriteSummary, StorageError> {
    let backend = c.get_database_backend();
    // Writing the version row first takes the writers' lock before the served values are
    // read, as every observation write does.
    let version = begin_version(c).await?;
    if backend == DbBackend::Postgres {
        // A temporary table has no statistics until analyzed; the join below needs them.
        c.execute_unprepared(&format!("ANALYZE {STAGE}")).await?;
    }
    let differs = match backend {
        // Bit-equal, as the value is stored as given after unit conversion: a re-import of the
        // same file reproduces the same bits.
        DbBackend::Postgres => "float8send(o.value) <> float8send(s.value)",
        _ => "o.value <> s.value",
    };
    c.execute_unprepared(&temp_table(
        backend,
        CHANGED,
        &format!(
            "AS SELECT s.entity_kind, s.entity_id, s.indicator, s.period, \
             COALESCE(o.revision, 0) + 1 AS revision, s.period_start, s.period_end, s.value, \
             s.source, CASE WHEN o.revision IS NULL THEN 1 ELSE 0 END AS is_new \
             FROM {STAGE} s LEFT JOIN observations o ON {} \
             WHERE o.revision IS NULL OR {differs}",
            key_join("s")
        ),
    ))
    .await?;
    let counts = c
        .query_one_raw(statement(
            backend,
            format!(
                "SELECT (SELECT COUNT(*) FROM {STAGE}), (SELECT COUNT(*) FROM {CHANGED}), \
                 (SELECT COUNT(*) FROM {CHANGED} WHERE is_new = 1)"
            ),
            Vec::new(),
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("import counts".into()))?;
    let (staged, changed, new): (i64, i64, i64) = (
        counts.try_get_by_index(0)?,
        counts.try_get_by_index(1)?,
        counts.try_get_by_index(2)?,
    );
    let mut summary = WriteSummary {
        accepted: new,
        updated: changed - new,
        unchanged: staged - changed,
        data_version: version - 1,
    };
    if dry_run || changed == 0 {
        return Ok(summary);
    }
    let names: Vec<&str> = WRITTEN_COLUMNS.iter().map(|(name, ..)| *name).collect();
    // Every column comes from the changed rows but the two the import itself stamps.
    let select: Vec<String> = names
        .iter()
        .map(|&name| match name {
            "version" => format!("CAST({} AS BIGINT)", bind(backend, 1)),
            "recorded_by" => format!("CAST({} AS TEXT)", bind(backend, 2)),
            other => other.to_string(),
        })
        .collect();
    let columns = names.join(", ");
    let select = select.join(", ");
    let binds = || vec![Value::from(version), Value::from(recorded_by.to_string())];
    if summary.updated > 0 {
        // The values replaced move to the history; a new key has none to move.
        c.execute_unprepared(&archive_replaced(backend, "", &format!("{CHANGED} c")))
            .await?;
        // `WHERE` keeps SQLite from reading ON CONFLICT as a join constraint.
        c.execute_raw(statement(
            backend,
            format!(
                "INSERT INTO observations ({columns}) SELECT {select} FROM {CHANGED} \
                 WHERE is_new = 0{}",
                replace_current(backend)
            ),
            binds(),
        ))
        .await?;
    }
    // New keys are absent under the writers' lock: a plain insert, without the conflict
    // check each row of an upsert pays.
    c.execute_raw(statement(
        backend,
        format!(
            "INSERT INTO observations ({columns}) SELECT {select} FROM {CHANGED} WHERE is_new = 1"
        ),
        binds(),
    ))
    .await?;
    summary.data_version = stamp_commit(c, version).await?.version;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut out = String::new();
        copy_text(&mut out, "a\tb\\c\nd\re");
        assert_eq!(out, "a\\tb\\\\c\\nd\\re");
    }
}
