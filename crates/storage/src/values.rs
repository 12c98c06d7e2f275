//! Bulk reads of values for computations: every figure of a kind (or of a set of ids) for a
//! few indicators over a span of months, streamed into the caller's sink row by row, so a
//! national read never holds its rows twice.
//!
//! A read "as of" a moment reads the served table for every key whose served revision was
//! committed by then (commit versions rise with their stamps, so `version <= visible` says
//! exactly that), and the revision history only for the keys revised since. A run pinned to the
//! last commit, the usual case, reads no history at all.
//!
//! On PostgreSQL the served rows come through a binary `COPY` of the same query
//! (`copy_out.rs`); SQLite streams them through sea-orm.

use std::collections::{BTreeSet, HashMap};

use futures::TryStreamExt;
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Select,
    sea_query::PostgresQueryBuilder,
};
use zonerank_domain::{entity::EntityKind, period::Period};

use crate::{
    StorageError, Store, copy_out,
    entity::{observation, observation_revision},
    reference::rows_per_statement,
    store::version_as_of,
};

/// One stored value, for bulk computations.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueRow {
    pub entity_id: String,
    pub indicator: String,
    pub period: Period,
    pub value: f64,
}

/// A bulk read of values for a computation.
#[derive(Clone, Debug)]
pub struct ValueQuery {
    pub kind: EntityKind,
    /// These entities only; None for every entity of the kind (cheaper than a huge IN list).
    pub ids: Option<Vec<String>>,
    pub indicators: Vec<String>,
    /// Spans ending at or after this month ordinal.
    pub from_ordinal: i64,
    /// Spans ending at or before this month ordinal.
    pub to_ordinal: i64,
    /// Values as served at this moment (microseconds since the epoch).
    pub as_of: Option<i64>,
}

/// The period of a stored span.
fn period_of(start: i32, end: i32) -> Option<Period> {
    let year = start.div_euclid(12);
    Period::new(
        year,
        (start.rem_euclid(12) + 1) as u8,
        (end - year * 12 + 1) as u8,
    )
    .ok()
}

/// (entity id, indicator, first month, last month).
type Key = (String, String, i32, i32);

impl Store {
    /// The values a computation needs, collected; [`Store::for_each_value`] streams them.
    pub async fn values(&self, query: &ValueQuery) -> Result<Vec<ValueRow>, StorageError> {
        let mut rows = Vec::new();
        self.for_each_value(query, |entity_id, indicator, period, value| {
            rows.push(ValueRow {
                entity_id: entity_id.to_owned(),
                indicator: indicator.to_owned(),
                period,
                value,
            })
        })
        .await?;
        Ok(rows)
    }

    /// Streams the values a computation needs into `sink` (entity id, indicator, period,
    /// value), each key once, in one query per chunk of ids (or one for the whole kind): never
    /// one per entity or per metric.
    pub async fn for_each_value(
        &self,
        query: &ValueQuery,
        mut sink: impl FnMut(&str, &str, Period, f64),
    ) -> Result<(), StorageError> {
        if query.indicators.is_empty() {
            return Ok(());
        }
        let chunks: Vec<Option<&[String]>> = match &query.ids {
            None => vec![None],
            Some(ids) if ids.is_empty() => return Ok(()),
            Some(ids) => ids.chunks(ids_per_statement(query)).map(Some).collect(),
        };
        // Resolved once, so that every chunk reads the same commits.
        let visible = match query.as_of {
            None => None,
            Some(as_of) => match version_as_of(&self.db, as_of).await? {
                Some(version) => Some(version),
                None => return Ok(()),
            },
        };
        let mut emit = |entity: &str, indicator: &str, start: i32, end: i32, value: f64| {
            if let Some(period) = period_of(start, end) {
                sink(entity, indicator, period, value);
            }
        };
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        for chunk in chunks {
            use observation::Column as C;
            let mut served = served(query, chunk).select_only().columns([
                C::EntityId,
                C::Indicator,
                C::PeriodStart,
                C::PeriodEnd,
                C::Value,
            ]);
            if let Some(version) = visible {
                served = served.filter(C::Version.lte(version));
            }
            if postgres {
                let select = served.as_query().to_string(PostgresQueryBuilder);
                copy_out::for_each_row(&self.db, &select, |f| {
                    emit(
                        copy_out::text(f[0])?,
                        copy_out::text(f[1])?,
                        copy_out::int4(f[2])?,
                        copy_out::int4(f[3])?,
                        copy_out::float8(f[4])?,
                    );
                    Ok(())
                })
                .await?;
            } else {
                let mut rows = served
                    .into_tuple::<(String, String, i32, i32, f64)>()
                    .stream(&self.db)
                    .await?;
                while let Some((entity, indicator, start, end, value)) = rows.try_next().await? {
                    emit(&entity, &indicator, start, end, value);
                    // Buffered rows never make the stream wait: give the worker back now and
                    // then (see `copy_out::for_each_row`).
                    tokio::task::consume_budget().await;
                }
            }
            if let Some(version) = visible {
                for (entity, indicator, start, end, value) in
                    self.revised_since(query, chunk, version).await?
                {
                    emit(&entity, &indicator, start, end, value);
                }
            }
        }
        Ok(())
    }

    /// The values then of the keys of `chunk` whose served revision is later than `visible`:
    /// their latest revision recorded by then (none for a key that did not exist yet).
    async fn revised_since(
        &self,
        query: &ValueQuery,
        chunk: Option<&[String]>,
        visible: i64,
    ) -> Result<Vec<(String, String, i32, i32, f64)>, StorageError> {
        use observation::Column as C;
        let revised: BTreeSet<Key> = served(query, chunk)
            .select_only()
            .columns([C::EntityId, C::Indicator, C::PeriodStart, C::PeriodEnd])
            .filter(C::Version.gt(visible))
            .into_tuple()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        if revised.is_empty() {
            return Ok(Vec::new());
        }
        let entities: Vec<String> = revised
            .iter()
            .map(|(entity, ..)| entity.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut latest: HashMap<Key, (i32, f64)> = HashMap::new();
        let (first_start, last_start) = start_bounds(query);
        for ids in entities.chunks(ids_per_statement(query)) {
            use observation_revision::Column as R;
            let rows: Vec<(String, String, i32, i32, f64, i32)> =
                observation_revision::Entity::find()
                    .select_only()
                    .columns([
                        R::EntityId,
                        R::Indicator,
                        R::PeriodStart,
                        R::PeriodEnd,
                        R::Value,
                        R::Revision,
                    ])
                    .filter(R::EntityKind.eq(query.kind.as_str()))
                    .filter(R::Indicator.is_in(query.indicators.iter().cloned()))
                    .filter(R::PeriodEnd.gte(query.from_ordinal as i32))
                    .filter(R::PeriodEnd.lte(query.to_ordinal as i32))
                    .filter(R::PeriodStart.between(first_start, last_start))
                    .filter(R::Version.lte(visible))
                    .filter(R::EntityId.is_in(ids.iter().cloned()))
                    .into_tuple()
                    .all(&self.db)
                    .await?;
            for (entity, indicator, start, end, value, revision) in rows {
                let key = (entity, indicator, start, end);
                if !revised.contains(&key) {
                    continue;
                }
                // The latest revision recorded by then is the one that was served.
                let slot = latest.entry(key).or_insert((revision, value));
                if revision >= slot.0 {
                    *slot = (revision, value);
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|((e, i, s, end), (_, v))| (e, i, s, end, v))
            .collect())
    }
}

/// Ids per statement, leaving room for the indicators and the other binds.
fn ids_per_statement(query: &ValueQuery) -> usize {
    rows_per_statement(1) - query.indicators.len() - 8
}

/// The starts of the spans a query reads: a span lies in one year, so one that ends in
/// `[from, to]` starts between January of `from`'s year and `to`. Said to the database, the
/// bound lets PostgreSQL read only those years' partitions.
fn start_bounds(query: &ValueQuery) -> (i32, i32) {
    (
        (query.from_ordinal.div_euclid(12) * 12) as i32,
        query.to_ordinal as i32,
    )
}

/// The served rows a query reads, before any as-of filter.
fn served(query: &ValueQuery, ids: Option<&[String]>) -> Select<observation::Entity> {
    use observation::Column as C;
    let (first_start, last_start) = start_bounds(query);
    let mut select = observation::Entity::find()
        .filter(C::EntityKind.eq(query.kind.as_str()))
        .filter(C::Indicator.is_in(query.indicators.iter().cloned()))
        .filter(C::PeriodEnd.gte(query.from_ordinal as i32))
        .filter(C::PeriodEnd.lte(query.to_ordinal as i32))
        .filter(C::PeriodStart.between(first_start, last_start));
    if let Some(ids) = ids {
        select = select.filter(C::EntityId.is_in(ids.iter().cloned()));
    }
    select
}
