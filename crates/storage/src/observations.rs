//! Observations with revision history: `observations` holds the value served now and
//! `observation_revisions` every value it superseded, so reads can be asked "as of" a moment
//! (a key's revisions are the two tables' rows together).

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{ArrayType, Expr, ExprTrait, Order, Value},
};
use zonerank_domain::{entity::EntityKind, period::Period};

use crate::{
    AuditEvent, Page, StorageError, Store,
    audit::insert_event,
    entity::{observation, observation_revision},
    partitions::{ensure_years, year_of},
    reference::rows_per_statement,
    store::{begin_version, commit_stamps, stamp_commit, version_as_of},
};

/// One observation to write, already validated and in canonical units.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationInput {
    pub kind: EntityKind,
    pub entity_id: String,
    pub indicator: String,
    pub period: Period,
    pub value: f64,
    pub source: String,
}

/// What writing one observation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A key never seen before.
    Accepted,
    /// A new value for a known key: a new revision.
    Updated,
    /// The value already served: nothing written.
    Unchanged,
}

/// What a batch write did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteSummary {
    pub accepted: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// The data version after the write (unchanged when nothing was written).
    pub data_version: i64,
}

/// A read of one entity's observations.
#[derive(Clone, Debug)]
pub struct ObservationQuery {
    pub kind: EntityKind,
    pub entity_id: String,
    pub indicator: Option<String>,
    /// Spans starting at or after this period's start.
    pub from: Option<Period>,
    /// Spans ending at or before this period's end.
    pub to: Option<Period>,
    /// Microseconds since the epoch: the values served at that moment.
    pub as_of: Option<i64>,
    /// Every revision instead of the one served.
    pub include_revisions: bool,
}

/// Where a page of observations ends: the sort key of its last item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservationPosition {
    pub indicator: String,
    /// Canonical period spelling.
    pub period: String,
    pub revision: i32,
}

/// An observation as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObservation {
    pub kind: EntityKind,
    pub entity_id: String,
    pub indicator: String,
    /// Canonical period spelling.
    pub period: String,
    pub value: f64,
    pub source: String,
    /// Microseconds since the epoch.
    pub recorded_at: i64,
    pub revision: i32,
    /// The principal that sent it (`anonymous` with auth off).
    pub recorded_by: String,
}

type Key = (String, String, String, String);

fn key_of(o: &ObservationInput) -> Key {
    (
        o.kind.as_str().to_string(),
        o.entity_id.clone(),
        o.indicator.clone(),
        o.period.canonical(),
    )
}

impl Store {
    /// Writes a batch in one transaction: new keys are accepted, changed values become new
    /// revisions, equal values are left alone. With `dry_run` the outcome is computed and
    /// nothing is written. Keys must be unique within the batch (the caller checks).
    pub async fn write_observations(
        &self,
        rows: &[ObservationInput],
        dry_run: bool,
    ) -> Result<(WriteSummary, Vec<WriteOutcome>), StorageError> {
        self.write_observations_holding(rows, dry_run, std::future::ready(()), None)
            .await
    }

    /// [`Store::write_observations`] on behalf of `event.principal`: every value written
    /// records it as `recorded_by`, and `event`, with the counts, the entities written and the
    /// data version filled in, is inserted in the same transaction (on its own when nothing
    /// changed; not at all on a dry run).
    pub async fn write_observations_audited(
        &self,
        rows: &[ObservationInput],
        dry_run: bool,
        event: AuditEvent,
    ) -> Result<(WriteSummary, Vec<WriteOutcome>), StorageError> {
        self.write_observations_holding(rows, dry_run, std::future::ready(()), Some(event))
            .await
    }

    /// The value each row would replace: the one served now for its key, if any. The data
    /// quality rules compare a revision with it.
    pub async fn served_values(
        &self,
        rows: &[ObservationInput],
    ) -> Result<Vec<Option<f64>>, StorageError> {
        let txn = self.db.begin().await?;
        let current = current_values(&txn, rows).await?;
        txn.rollback().await?;
        Ok(rows
            .iter()
            .map(|row| current.get(&key_of(row)).map(|(value, _)| *value))
            .collect())
    }

    /// [`Store::write_observations`], holding the transaction open, with every row written and
    /// the commit not yet stamped, until `hold` completes: what a reader sees while an import
    /// is under way.
    #[cfg(feature = "test-support")]
    pub async fn write_observations_held(
        &self,
        rows: &[ObservationInput],
        hold: impl std::future::Future<Output = ()>,
    ) -> Result<(WriteSummary, Vec<WriteOutcome>), StorageError> {
        self.write_observations_holding(rows, false, hold, None)
            .await
    }

    async fn write_observations_holding(
        &self,
        rows: &[ObservationInput],
        dry_run: bool,
        hold: impl std::future::Future<Output = ()>,
        audit: Option<AuditEvent>,
    ) -> Result<(WriteSummary, Vec<WriteOutcome>), StorageError> {
        let recorded_by = audit
            .as_ref()
            .map_or("anonymous", |e| e.principal.as_str())
            .to_string();
        if !dry_run {
            ensure_years(&self.db, &years_of(rows)).await?;
        }
        let txn = self.db.begin().await?;
        let (summary, outcomes, changed) =
            write_observations_in(&txn, rows, dry_run, hold, &recorded_by).await?;
        let audit = audit.map(|mut event| {
            event.created += summary.accepted;
            event.updated += summary.updated;
            event.unchanged += summary.unchanged;
            event.entities.extend(
                changed
                    .iter()
                    .map(|&(i, _)| (rows[i].kind, rows[i].entity_id.clone())),
            );
            event
        });
        if dry_run || changed.is_empty() {
            txn.rollback().await?;
            // Nothing was written: the event stands alone, without a data version.
            if let (Some(event), false) = (&audit, dry_run) {
                insert_event(&self.db, event, None).await?;
            }
            return Ok((summary, outcomes));
        }
        if let Some(event) = &audit {
            insert_event(&txn, event, Some(summary.data_version)).await?;
        }
        txn.commit().await?;
        Ok((summary, outcomes))
    }

    /// Reads one entity's observations, as served now or at `as_of`.
    pub async fn observations(
        &self,
        query: &ObservationQuery,
    ) -> Result<Vec<StoredObservation>, StorageError> {
        Ok(self.observations_page(query, None, None).await?.items)
    }

    /// One page of an entity's observations in (indicator, period, revision) order, after the
    /// position `after`, at most `limit` of them (all when None).
    pub async fn observations_page(
        &self,
        query: &ObservationQuery,
        after: Option<&ObservationPosition>,
        limit: Option<u64>,
    ) -> Result<Page<StoredObservation, ObservationPosition>, StorageError> {
        let kind = query.kind;
        let after = match after {
            Some(a) => {
                let period =
                    Period::parse(&a.period).map_err(|_| StorageError::InvalidPageToken)?;
                Some((
                    a.indicator.clone(),
                    period.start_ordinal() as i32,
                    period.end_ordinal() as i32,
                    a.revision,
                ))
            }
            None => None,
        };
        let position = |r: &StoredObservation| ObservationPosition {
            indicator: r.indicator.clone(),
            period: r.period.clone(),
            revision: r.revision,
        };
        let everything = u64::MAX;
        let visible = match query.as_of {
            // The moment resolves to the last version committed by then (see `stamp_commit`).
            Some(as_of) => match version_as_of(&self.db, as_of).await? {
                Some(version) => Some(version),
                None => {
                    return Ok(Page {
                        items: Vec::new(),
                        next_after: None,
                    });
                }
            },
            None => None,
        };
        // The values served now are one row a key, in `observations` alone.
        let served_now = query.as_of.is_none() && !query.include_revisions;
        // Every revision is one item, as is a value served now: the page is a SQL limit.
        // Values served at a moment collapse a key's revisions into one, so they are counted
        // after reading.
        let sql_limit = limit.filter(|_| query.include_revisions || served_now);
        let backend = self.db.get_database_backend();
        // A key's revisions are the superseded ones in the history and the served one: the
        // same read of both tables, merged in order.
        macro_rules! revisions_in {
            ($table:ident) => {{
                use $table::Column as C;
                let mut select = $table::Entity::find()
                    .filter(C::EntityKind.eq(kind.as_str()))
                    .filter(C::EntityId.eq(query.entity_id.as_str()));
                if let Some(indicator) = &query.indicator {
                    select = select.filter(C::Indicator.eq(indicator.as_str()));
                }
                if let Some(from) = &query.from {
                    select = select.filter(C::PeriodStart.gte(from.start_ordinal() as i32));
                }
                if let Some(to) = &query.to {
                    select = select.filter(C::PeriodEnd.lte(to.end_ordinal() as i32));
                }
                if let Some(version) = visible {
                    select = select.filter(C::Version.lte(version));
                }
                if let Some(after) = &after {
                    // The served revision of a key is its last one at as_of: later rows of the
                    // same key are after as_of, so the next page starts at the next key.
                    select = select.filter(after_position(
                        indicator_in_byte_order(backend),
                        [C::PeriodStart, C::PeriodEnd, C::Revision],
                        after.clone(),
                    ));
                }
                if let Some(limit) = sql_limit {
                    select = select.limit(limit + 1);
                }
                select
                    .order_by(indicator_in_byte_order(backend), Order::Asc)
                    .order_by_asc(C::PeriodStart)
                    .order_by_asc(C::PeriodEnd)
                    .order_by_asc(C::Revision)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|r| observation_revision::Model {
                        entity_kind: r.entity_kind,
                        entity_id: r.entity_id,
                        indicator: r.indicator,
                        period: r.period,
                        period_start: r.period_start,
                        period_end: r.period_end,
                        revision: r.revision,
                        value: r.value,
                        source: r.source,
                        version: r.version,
                        recorded_by: r.recorded_by,
                    })
                    .collect::<Vec<observation_revision::Model>>()
            }};
        }
        let mut rows = if served_now {
            Vec::new()
        } else {
            revisions_in!(observation_revision)
        };
        rows.extend(revisions_in!(observation));
        rows.sort_by(|a, b| listing_order(a).cmp(&listing_order(b)));
        if let Some(limit) = sql_limit {
            rows.truncate(limit as usize + 1);
        }
        let stamps = commit_stamps(&self.db, rows.iter().map(|r| r.version)).await?;
        let mut out: Vec<StoredObservation> = Vec::with_capacity(rows.len());
        for r in rows {
            let row = StoredObservation {
                kind,
                entity_id: r.entity_id,
                indicator: r.indicator,
                period: r.period,
                value: r.value,
                source: r.source,
                recorded_at: stamps[&r.version],
                revision: r.revision,
                recorded_by: r.recorded_by,
            };
            // Rows come ordered by revision within a key: the last one at as_of is served.
            if !query.include_revisions
                && let Some(last) = out.last_mut()
                && last.indicator == row.indicator
                && last.period == row.period
            {
                *last = row;
                continue;
            }
            if limit.is_some_and(|limit| out.len() as u64 > limit) {
                break;
            }
            out.push(row);
        }
        Ok(Page::of(out, limit.unwrap_or(everything), position))
    }
}

/// The order of a listing of one entity's revisions, read from either table: (indicator,
/// period start, period end, revision).
fn listing_order(r: &observation_revision::Model) -> (&str, i32, i32, i32) {
    (&r.indicator, r.period_start, r.period_end, r.revision)
}

/// Rows after `position` in (indicator, period start, period end, revision) order: a row-value
/// comparison, so the database orders and compares with one collation. `indicator` is the
/// indicator column as the listing orders it (see [`indicator_in_byte_order`]).
fn after_position<C: ColumnTrait>(
    indicator: Expr,
    columns: [C; 3],
    position: (String, i32, i32, i32),
) -> Condition {
    let [start, end, revision] = columns;
    Condition::all().add(
        Expr::tuple([
            indicator,
            Expr::col(start),
            Expr::col(end),
            Expr::col(revision),
        ])
        .gt(Expr::tuple([
            Expr::val(position.0),
            Expr::val(position.1),
            Expr::val(position.2),
            Expr::val(position.3),
        ])),
    )
}

/// The indicator column compared byte by byte, as Rust compares strings: a listing of both
/// observation tables is merged in Rust, so the database must order and page it the same way
/// whatever its default collation (SQLite's is bytes already).
fn indicator_in_byte_order(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::cust("indicator COLLATE \"C\""),
        _ => Expr::cust("indicator"),
    }
}

/// The entity ids, indicators and periods of one kind in a batch.
type BatchKeys<'a> = (BTreeSet<&'a str>, BTreeSet<&'a str>, BTreeSet<String>);

/// The served value and revision of every key of `rows` that exists: one query per kind and
/// chunk of entity ids, narrowed by the batch's indicators and periods.
async fn current_values(
    txn: &DatabaseTransaction,
    rows: &[ObservationInput],
) -> Result<HashMap<Key, (f64, i32)>, StorageError> {
    let mut found = HashMap::new();
    let mut by_kind: HashMap<EntityKind, BatchKeys<'_>> = HashMap::new();
    for row in rows {
        let (ids, indicators, periods) = by_kind.entry(row.kind).or_default();
        ids.insert(row.entity_id.as_str());
        indicators.insert(row.indicator.as_str());
        periods.insert(row.period.canonical());
    }
    for (kind, (ids, indicators, periods)) in by_kind {
        let ids: Vec<&str> = ids.into_iter().collect();
        let chunk = rows_per_statement(1)
            .saturating_sub(indicators.len() + periods.len() + 1)
            .max(1);
        for ids in ids.chunks(chunk) {
            let existing: Vec<(String, String, String, f64, i32)> = observation::Entity::find()
                .select_only()
                .columns([
                    observation::Column::EntityId,
                    observation::Column::Indicator,
                    observation::Column::Period,
                    observation::Column::Value,
                    observation::Column::Revision,
                ])
                .filter(observation::Column::EntityKind.eq(kind.as_str()))
                .filter(observation::Column::EntityId.is_in(ids.iter().copied()))
                .filter(observation::Column::Indicator.is_in(indicators.iter().copied()))
                .filter(observation::Column::Period.is_in(periods.iter().map(String::as_str)))
                .into_tuple()
                .all(txn)
                .await?;
            for (entity_id, indicator, period, value, revision) in existing {
                found.insert(
                    (kind.as_str().to_string(), entity_id, indicator, period),
                    (value, revision),
                );
            }
        }
    }
    Ok(found)
}

/// Rows per `unnest` statement on PostgreSQL: arrays are one bind each, so only memory bounds it.
const UNNEST_ROWS: usize = 50_000;

/// One value being written: a row of `observations`.
pub(crate) struct Written<'a> {
    o: &'a ObservationInput,
    revision: i32,
    version: i64,
    recorded_by: &'a str,
}

/// A column of both observation tables: its name, its PostgreSQL array type for `unnest`, and
/// its value. Both backends build their statements from this one list, so a new column is one
/// line here.
pub(crate) type WrittenColumn = (
    &'static str,
    ArrayType,
    &'static str,
    fn(&Written<'_>) -> Value,
);

pub(crate) const WRITTEN_COLUMNS: [WrittenColumn; 11] = [
    ("entity_kind", ArrayType::String, "text", |w| {
        w.o.kind.as_str().into()
    }),
    ("entity_id", ArrayType::String, "text", |w| {
        w.o.entity_id.clone().into()
    }),
    ("indicator", ArrayType::String, "text", |w| {
        w.o.indicator.clone().into()
    }),
    ("period", ArrayType::String, "text", |w| {
        w.o.period.canonical().into()
    }),
    ("revision", ArrayType::Int, "int4", |w| w.revision.into()),
    ("period_start", ArrayType::Int, "int4", |w| {
        (w.o.period.start_ordinal() as i32).into()
    }),
    ("period_end", ArrayType::Int, "int4", |w| {
        (w.o.period.end_ordinal() as i32).into()
    }),
    ("value", ArrayType::Double, "float8", |w| w.o.value.into()),
    ("source", ArrayType::String, "text", |w| {
        w.o.source.clone().into()
    }),
    ("version", ArrayType::BigInt, "int8", |w| w.version.into()),
    ("recorded_by", ArrayType::String, "text", |w| {
        w.recorded_by.to_string().into()
    }),
];

/// The key of `observations`: the other columns are replaced on conflict.
pub(crate) const KEY_COLUMNS: [&str; 4] = ["entity_kind", "entity_id", "indicator", "period"];

/// `INSERT INTO observations … ON CONFLICT (key) DO UPDATE SET` the other columns. On
/// PostgreSQL the key holds the year partitions' column too (a period has one start).
pub(crate) fn replace_current(backend: DbBackend) -> String {
    let set: Vec<String> = WRITTEN_COLUMNS
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| !KEY_COLUMNS.contains(name))
        .map(|name| format!("{name} = EXCLUDED.{name}"))
        .collect();
    format!(
        " ON CONFLICT ({}{}) DO UPDATE SET {}",
        KEY_COLUMNS.join(", "),
        match backend {
            DbBackend::Postgres => ", period_start",
            _ => "",
        },
        set.join(", ")
    )
}

/// `{with}INSERT INTO observation_revisions` the served rows that the rows of `changed` (a
/// table expression aliased `c` with the written columns) replace: the history holds superseded
/// values, the served one lives in `observations` alone. A row of revision 1 is a new key and
/// replaces nothing.
pub(crate) fn archive_replaced(backend: DbBackend, with: &str, changed: &str) -> String {
    let names: Vec<&str> = WRITTEN_COLUMNS.iter().map(|(name, ..)| *name).collect();
    let served: Vec<String> = names.iter().map(|c| format!("o.{c}")).collect();
    let mut on: Vec<String> = KEY_COLUMNS
        .iter()
        .map(|k| format!("o.{k} = c.{k}"))
        .collect();
    if backend == DbBackend::Postgres {
        // The partition column, so that only the changed rows' years are read.
        on.push("o.period_start = c.period_start".into());
    }
    format!(
        "{with}INSERT INTO observation_revisions ({}) SELECT {} FROM observations o \
         JOIN {changed} ON {} WHERE c.revision > 1",
        names.join(", "),
        served.join(", "),
        on.join(" AND ")
    )
}

/// Writes the changed rows: the values they replace move to the history, then the rows are
/// served. PostgreSQL: every column as one array, expanded by
/// `unnest`, so a statement has one bind per column however many rows (a multi-row VALUES list
/// needs one per value and a parse of each). SQLite: multi-row VALUES chunked under the bind
/// limit.
async fn write_changed(
    txn: &DatabaseTransaction,
    rows: &[ObservationInput],
    changed: &[(usize, i32)],
    version: i64,
    recorded_by: &str,
) -> Result<(), StorageError> {
    let names: Vec<&str> = WRITTEN_COLUMNS.iter().map(|(name, ..)| *name).collect();
    let columns = names.join(", ");
    let written = |&(i, revision): &(usize, i32)| Written {
        o: &rows[i],
        revision,
        version,
        recorded_by,
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        let arrays: Vec<String> = WRITTEN_COLUMNS
            .iter()
            .enumerate()
            .map(|(n, (_, _, ty, _))| format!("${}::{ty}[]", n + 1))
            .collect();
        let unnest = format!("SELECT * FROM unnest({})", arrays.join(", "));
        for chunk in changed.chunks(UNNEST_ROWS) {
            let chunk: Vec<Written<'_>> = chunk.iter().map(written).collect();
            let binds: Vec<Value> = WRITTEN_COLUMNS
                .iter()
                .map(|(_, ty, _, value)| {
                    let values: Vec<Value> = chunk.iter().map(value).collect();
                    Value::Array(ty.clone(), Some(Box::new(values)))
                })
                .collect();
            if chunk.iter().any(|w| w.revision > 1) {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    archive_replaced(
                        DbBackend::Postgres,
                        "",
                        &format!("unnest({}) AS c ({columns})", arrays.join(", ")),
                    ),
                    binds.clone(),
                ))
                .await?;
            }
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "INSERT INTO observations ({columns}) {unnest}{}",
                    replace_current(DbBackend::Postgres)
                ),
                binds,
            ))
            .await?;
        }
        return Ok(());
    }
    let backend = txn.get_database_backend();
    for chunk in changed.chunks(rows_per_statement(WRITTEN_COLUMNS.len())) {
        let mut binds = Vec::with_capacity(chunk.len() * WRITTEN_COLUMNS.len());
        let mut tuples = Vec::with_capacity(chunk.len());
        for w in chunk.iter().map(written) {
            tuples.push(format!("({})", vec!["?"; WRITTEN_COLUMNS.len()].join(", ")));
            binds.extend(WRITTEN_COLUMNS.iter().map(|(_, _, _, value)| value(&w)));
        }
        let values = tuples.join(", ");
        if chunk.iter().any(|&(_, revision)| revision > 1) {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                archive_replaced(
                    backend,
                    &format!("WITH c ({columns}) AS (VALUES {values}) "),
                    "c",
                ),
                binds.clone(),
            ))
            .await?;
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO observations ({columns}) VALUES {values}{}",
                replace_current(backend)
            ),
            binds,
        ))
        .await?;
    }
    Ok(())
}

/// The years `rows` fall in: their partitions must exist before they are written.
pub(crate) fn years_of(rows: &[ObservationInput]) -> BTreeSet<i32> {
    rows.iter()
        .map(|r| year_of(r.period.start_ordinal()))
        .collect()
}

/// The one write path of observations, inside `txn`: new keys are accepted, changed values
/// become new revisions with the next data version, and the commit is stamped last; whether
/// anything was written (the caller commits then, and rolls back otherwise). Ingestion and
/// accepted objections both write through it.
pub(crate) async fn write_observations_in(
    txn: &DatabaseTransaction,
    rows: &[ObservationInput],
    dry_run: bool,
    hold: impl std::future::Future<Output = ()>,
    recorded_by: &str,
) -> Result<(WriteSummary, Vec<WriteOutcome>, Vec<(usize, i32)>), StorageError> {
    // Writing the version row first takes the write lock before anything is read: writers
    // queue (a PostgreSQL row lock; SQLite's one writer, which a read-then-write
    // transaction could not upgrade to), so two imports of the same keys see each other's
    // revisions instead of both writing revision 1.
    let version = begin_version(txn).await?;
    let current = current_values(txn, rows).await?;
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut changed: Vec<(usize, i32)> = Vec::new();
    let mut summary = WriteSummary::default();
    for (i, row) in rows.iter().enumerate() {
        let outcome = match current.get(&key_of(row)) {
            None => {
                changed.push((i, 1));
                summary.accepted += 1;
                WriteOutcome::Accepted
            }
            // Bit-equal: the value is stored as given after unit conversion, so a re-import
            // of the same file reproduces the same bits.
            Some((value, _)) if value.to_bits() == row.value.to_bits() => {
                summary.unchanged += 1;
                WriteOutcome::Unchanged
            }
            Some((_, revision)) => {
                changed.push((i, revision + 1));
                summary.updated += 1;
                WriteOutcome::Updated
            }
        };
        outcomes.push(outcome);
    }
    if dry_run || changed.is_empty() {
        summary.data_version = version - 1;
        return Ok((summary, outcomes, changed));
    }
    // Revisions carry the version; the commit stamp that makes them visible to as-of reads
    // is taken last, under the lock, so it is later than any moment read while they were
    // being written (see `stamp_commit`).
    write_changed(txn, rows, &changed, version, recorded_by).await?;
    hold.await;
    summary.data_version = stamp_commit(txn, version).await?.version;
    Ok((summary, outcomes, changed))
}
