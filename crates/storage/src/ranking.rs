//! Schemes and ranking runs. Definitions, runs and entries are stored as encoded protobuf
//! messages: the ranking service owns their shape, and a stored run reads back byte for byte.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, Func},
};

use crate::{
    AuditEvent, StorageError, Store,
    audit::commit_with_event,
    entity::{ranking_entry, ranking_run, scheme},
    reference::rows_per_statement,
};

/// One stored scheme version.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemeRow {
    pub id: String,
    pub version: i32,
    pub name: String,
    pub definition: Vec<u8>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// Whether the scheme (every version of it) is archived.
    pub archived: bool,
}

/// One stored run (without its entries).
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub scheme_id: String,
    pub scheme_version: i32,
    pub period: String,
    pub run: Vec<u8>,
    /// Microseconds since the epoch; runs are listed newest first by it.
    pub computed_at: i64,
}

/// Which runs `Store::runs` lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Runs of this scheme only.
    pub scheme_id: Option<String>,
    /// Runs for this canonical period only.
    pub period: Option<String>,
}

impl From<scheme::Model> for SchemeRow {
    fn from(m: scheme::Model) -> SchemeRow {
        SchemeRow {
            id: m.id,
            version: m.version,
            name: m.name,
            definition: m.definition,
            created_at: m.created_at,
            archived: m.archived,
        }
    }
}

impl From<ranking_run::Model> for RunRow {
    fn from(m: ranking_run::Model) -> RunRow {
        RunRow {
            run_id: m.run_id,
            scheme_id: m.scheme_id,
            scheme_version: m.scheme_version,
            period: m.period,
            run: m.run,
            computed_at: m.computed_at,
        }
    }
}

impl Store {
    /// Stores a new version of scheme `id` (1 for a new id) and returns it; `definition` is
    /// built by the caller once the version is known. With `first_only`, an existing scheme is
    /// returned as it is. A new version of an archived scheme brings it back: every version is
    /// un-archived in the same transaction. `audit`, when given, is inserted in that transaction
    /// when a version is stored.
    pub async fn insert_scheme(
        &self,
        id: &str,
        name: &str,
        entity_kind: &str,
        first_only: bool,
        definition: impl FnOnce(i32, i64) -> Vec<u8>,
        audit: Option<&AuditEvent>,
    ) -> Result<SchemeRow, StorageError> {
        let txn = self.db.begin().await?;
        // Two CreateScheme calls (or ranking pods seeding the built-ins together) queue here
        // instead of both picking the same next version.
        crate::store::lock_writers(&txn).await?;
        let latest: Option<i32> = scheme::Entity::find()
            .select_only()
            .column_as(
                Expr::from(Func::max(Expr::col(scheme::Column::Version))),
                "max",
            )
            .filter(scheme::Column::Id.eq(id))
            .into_tuple::<Option<i32>>()
            .one(&txn)
            .await?
            .flatten();
        // Seeding stores a first version only: a second pod seeding the same scheme finds
        // the first pod's under the lock and stores nothing.
        if first_only && let Some(version) = latest {
            txn.rollback().await?;
            return self
                .scheme(id, Some(version))
                .await?
                .ok_or_else(|| StorageError::Corrupt(format!("scheme {id} version {version}")));
        }
        let version = latest.unwrap_or(0) + 1;
        let created_at = crate::now_micros();
        let row = scheme::Model {
            id: id.to_string(),
            version,
            name: name.to_string(),
            entity_kind: entity_kind.to_string(),
            definition: definition(version, created_at),
            created_at,
            archived: false,
        };
        scheme::Entity::update_many()
            .col_expr(scheme::Column::Archived, Expr::value(false))
            .filter(scheme::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        scheme::Entity::insert(scheme::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await?;
        commit_with_event(txn, audit).await?;
        Ok(row.into())
    }

    /// A scheme version; `None` for the latest.
    pub async fn scheme(
        &self,
        id: &str,
        version: Option<i32>,
    ) -> Result<Option<SchemeRow>, StorageError> {
        let mut query = scheme::Entity::find().filter(scheme::Column::Id.eq(id));
        query = match version {
            Some(v) => query.filter(scheme::Column::Version.eq(v)),
            None => query.order_by_desc(scheme::Column::Version),
        };
        Ok(query.one(&self.db).await?.map(SchemeRow::from))
    }

    /// Archives every version of scheme `id`, with `audit` in the same transaction; false (and
    /// nothing recorded) when there is no such scheme.
    pub async fn archive_scheme(
        &self,
        id: &str,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StorageError> {
        let txn = self.db.begin().await?;
        let result = scheme::Entity::update_many()
            .col_expr(scheme::Column::Archived, Expr::value(true))
            .filter(scheme::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        commit_with_event(txn, audit).await?;
        Ok(true)
    }

    /// The latest version of each scheme, ordered by id, after the id `after`; archived
    /// schemes only when `with_archived`.
    pub async fn latest_schemes(
        &self,
        after: Option<&str>,
        limit: u64,
        with_archived: bool,
    ) -> Result<(Vec<SchemeRow>, bool), StorageError> {
        let mut ids = scheme::Entity::find()
            .select_only()
            .column(scheme::Column::Id)
            .distinct()
            .order_by_asc(scheme::Column::Id);
        if let Some(after) = after {
            ids = ids.filter(scheme::Column::Id.gt(after));
        }
        if !with_archived {
            ids = ids.filter(scheme::Column::Archived.eq(false));
        }
        let mut ids: Vec<String> = ids.limit(limit + 1).into_tuple().all(&self.db).await?;
        let more = ids.len() as u64 > limit;
        ids.truncate(limit as usize);
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.scheme(&id, None).await? {
                rows.push(row);
            }
        }
        Ok((rows, more))
    }

    /// Stores a run and its entries (in rank order), and `audit` when given, in one transaction.
    pub async fn insert_run(
        &self,
        run: RunRow,
        entries: Vec<(String, Vec<u8>)>,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StorageError> {
        let row = ranking_run::ActiveModel {
            run_id: sea_orm::Set(run.run_id.clone()),
            scheme_id: sea_orm::Set(run.scheme_id),
            scheme_version: sea_orm::Set(run.scheme_version),
            period: sea_orm::Set(run.period),
            run: sea_orm::Set(run.run),
            computed_at: sea_orm::Set(run.computed_at),
        };
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            // A national run has hundreds of thousands of entries: one binary COPY.
            let txn = crate::import::PgTxn::begin(&self.db).await?;
            ranking_run::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
            txn.copy_in_parts(
                "COPY ranking_entries (run_id, position, entity_id, entry) FROM STDIN \
                 (FORMAT binary)",
                entries_copy(&run.run_id, &entries),
            )
            .await?;
            if let Some(event) = audit {
                crate::audit::insert_event(&txn, event, None).await?;
            }
            return txn.commit().await;
        }
        let txn = self.db.begin().await?;
        ranking_run::Entity::insert(row)
            .exec_without_returning(&txn)
            .await?;
        let models: Vec<ranking_entry::ActiveModel> = entries
            .into_iter()
            .enumerate()
            .map(
                |(position, (entity_id, entry))| ranking_entry::ActiveModel {
                    run_id: sea_orm::Set(run.run_id.clone()),
                    position: sea_orm::Set(position as i32),
                    entity_id: sea_orm::Set(entity_id),
                    entry: sea_orm::Set(entry),
                },
            )
            .collect();
        for chunk in models.chunks(rows_per_statement(4)) {
            ranking_entry::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        commit_with_event(txn, audit).await?;
        Ok(())
    }

    /// A run by id.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRow>, StorageError> {
        Ok(ranking_run::Entity::find_by_id(run_id.to_string())
            .one(&self.db)
            .await?
            .map(RunRow::from))
    }

    /// The runs of a scheme for a period, newest first, at most `limit`.
    pub async fn runs_of(
        &self,
        scheme_id: &str,
        period: &str,
        limit: u64,
    ) -> Result<Vec<RunRow>, StorageError> {
        Ok(ranking_run::Entity::find()
            .filter(ranking_run::Column::SchemeId.eq(scheme_id))
            .filter(ranking_run::Column::Period.eq(period))
            .order_by_desc(ranking_run::Column::ComputedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RunRow::from)
            .collect())
    }

    /// Runs newest first (by computation time, then run id), after the run `after` (its
    /// computation time and id), at most `limit`; whether more follow.
    pub async fn runs(
        &self,
        filter: &RunFilter,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<(Vec<RunRow>, bool), StorageError> {
        let mut query = ranking_run::Entity::find()
            .order_by_desc(ranking_run::Column::ComputedAt)
            .order_by_desc(ranking_run::Column::RunId);
        if let Some(scheme_id) = &filter.scheme_id {
            query = query.filter(ranking_run::Column::SchemeId.eq(scheme_id.as_str()));
        }
        if let Some(period) = &filter.period {
            query = query.filter(ranking_run::Column::Period.eq(period.as_str()));
        }
        if let Some((computed_at, run_id)) = after {
            query = query.filter(
                Condition::any()
                    .add(ranking_run::Column::ComputedAt.lt(computed_at))
                    .add(
                        Condition::all()
                            .add(ranking_run::Column::ComputedAt.eq(computed_at))
                            .add(ranking_run::Column::RunId.lt(run_id)),
                    ),
            );
        }
        let mut rows: Vec<RunRow> = query
            .limit(limit + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RunRow::from)
            .collect();
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// Deletes a run and its entries, with `audit`, in one transaction; false (and nothing
    /// recorded) when there is no such run.
    pub async fn delete_run(
        &self,
        run_id: &str,
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StorageError> {
        let txn = self.db.begin().await?;
        ranking_entry::Entity::delete_many()
            .filter(ranking_entry::Column::RunId.eq(run_id))
            .exec(&txn)
            .await?;
        let deleted = ranking_run::Entity::delete_by_id(run_id.to_string())
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        commit_with_event(txn, audit).await?;
        Ok(true)
    }

    /// A run's entries in rank order, from `from_position`, at most `limit`.
    pub async fn run_entries(
        &self,
        run_id: &str,
        from_position: i32,
        limit: u64,
    ) -> Result<Vec<(i32, Vec<u8>)>, StorageError> {
        Ok(ranking_entry::Entity::find()
            .select_only()
            .column(ranking_entry::Column::Position)
            .column(ranking_entry::Column::Entry)
            .filter(ranking_entry::Column::RunId.eq(run_id))
            .filter(ranking_entry::Column::Position.gte(from_position))
            .order_by_asc(ranking_entry::Column::Position)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Every entry of a run as (entity id, encoded entry), in no particular order.
    pub async fn run_entries_by_entity(
        &self,
        run_id: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        Ok(ranking_entry::Entity::find()
            .select_only()
            .column(ranking_entry::Column::EntityId)
            .column(ranking_entry::Column::Entry)
            .filter(ranking_entry::Column::RunId.eq(run_id))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// One entity's entry in a run.
    pub async fn run_entry(
        &self,
        run_id: &str,
        entity_id: &str,
    ) -> Result<Option<(i32, Vec<u8>)>, StorageError> {
        Ok(ranking_entry::Entity::find()
            .select_only()
            .column(ranking_entry::Column::Position)
            .column(ranking_entry::Column::Entry)
            .filter(ranking_entry::Column::RunId.eq(run_id))
            .filter(ranking_entry::Column::EntityId.eq(entity_id))
            .into_tuple()
            .one(&self.db)
            .await?)
    }
}

/// The entries of run `run_id` (entity id, encoded entry, in position order) in PostgreSQL's
/// binary `COPY` format: a header, then per row the field count and each field as a
/// length-prefixed value (`int4` big-endian, text as UTF-8, `bytea` as its bytes), then -1.
/// Written here because the format is this small and the sqlx driver has no encoder for it;
/// binary avoids hex-encoding every entry as text `COPY` would.
fn entries_copy<'a>(
    run_id: &'a str,
    entries: &'a [(String, Vec<u8>)],
) -> impl Iterator<Item = Vec<u8>> + Send + 'a {
    /// Bytes per part sent to the server: large enough that the per-message cost vanishes.
    const PART: usize = 1 << 20;
    let mut header = Vec::with_capacity(PART);
    header.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    header.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    header.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    let mut next = Some(header);
    let mut rows = entries.iter().enumerate().peekable();
    std::iter::from_fn(move || {
        let mut out = next.take()?;
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        while out.len() < PART {
            let Some((position, (entity_id, entry))) = rows.next() else {
                break;
            };
            out.extend_from_slice(&4i16.to_be_bytes());
            field(&mut out, run_id.as_bytes());
            field(&mut out, &(position as i32).to_be_bytes());
            field(&mut out, entity_id.as_bytes());
            field(&mut out, entry);
        }
        if rows.peek().is_some() {
            next = Some(Vec::with_capacity(PART + 1024));
        } else {
            // The trailer ends the last part.
            out.extend_from_slice(&(-1i16).to_be_bytes());
        }
        Some(out)
    })
}
