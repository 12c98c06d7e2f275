//! The assessment lifecycle's stored state: published versions and objections. Every step is
//! one function here and one transaction, with who took it: publish, finalize, file, reject,
//! accept (which writes the corrected observations through the observation write path) and
//! republish.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use zonerank_domain::assessment::{ObjectionState, PublicationState};

use crate::{
    AuditEvent, ObservationInput, StorageError, Store, WriteSummary,
    audit::{commit_with_event, insert_event},
    entity::{objection, publication},
    observations::{write_observations_in, years_of},
    store::lock_writers,
};

/// One published version.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicationRow {
    pub scheme_id: String,
    pub period: String,
    pub version: i32,
    pub run_id: String,
    pub state: PublicationState,
    /// Microseconds since the epoch.
    pub notice_until: i64,
    /// 0 for the first version.
    pub replaces: i32,
    pub caused_by: Vec<String>,
    pub published_by: String,
    pub published_at: i64,
    pub finalized_by: Option<String>,
    pub finalized_at: Option<i64>,
}

/// One objection.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectionRow {
    pub id: String,
    pub run_id: String,
    pub scheme_id: String,
    pub period: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub reason: String,
    /// The encoded disputed values.
    pub disputed: Vec<u8>,
    pub evidence: String,
    pub state: ObjectionState,
    pub filed_by: String,
    pub filed_at: i64,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub note: String,
}

/// Which objections `Store::objections` lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectionFilter {
    pub run_id: Option<String>,
    pub entity_id: Option<String>,
    pub state: Option<ObjectionState>,
}

/// Why the stored state refuses a lifecycle step.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The (scheme, period) already has a current published version.
    AlreadyPublished(PublicationRow),
    /// The run (or the scheme and period) has no current published version.
    NotPublished,
    /// The publication is not in its public notice (it is final, or superseded).
    NotInNotice(PublicationState),
    /// The notice ended at this moment (microseconds).
    NoticeOver(i64),
    /// Objections are still open: their ids.
    OpenObjections(Vec<String>),
    /// No such objection.
    NoObjection,
    /// The objection was already resolved.
    Resolved(ObjectionState),
}

/// A step's answer: done, or refused by the stored state.
pub type Step<T> = Result<Result<T, Refusal>, StorageError>;

fn corrupt(what: &str, text: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} {text:?}"))
}

impl TryFrom<publication::Model> for PublicationRow {
    type Error = StorageError;

    fn try_from(m: publication::Model) -> Result<PublicationRow, StorageError> {
        Ok(PublicationRow {
            state: PublicationState::parse(&m.state)
                .ok_or_else(|| corrupt("publication state", &m.state))?,
            caused_by: m
                .caused_by
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            scheme_id: m.scheme_id,
            period: m.period,
            version: m.version,
            run_id: m.run_id,
            notice_until: m.notice_until,
            replaces: m.replaces,
            published_by: m.published_by,
            published_at: m.published_at,
            finalized_by: m.finalized_by,
            finalized_at: m.finalized_at,
        })
    }
}

impl TryFrom<objection::Model> for ObjectionRow {
    type Error = StorageError;

    fn try_from(m: objection::Model) -> Result<ObjectionRow, StorageError> {
        Ok(ObjectionRow {
            state: ObjectionState::parse(&m.state)
                .ok_or_else(|| corrupt("objection state", &m.state))?,
            id: m.id,
            run_id: m.run_id,
            scheme_id: m.scheme_id,
            period: m.period,
            entity_kind: m.entity_kind,
            entity_id: m.entity_id,
            reason: m.reason,
            disputed: m.disputed,
            evidence: m.evidence,
            filed_by: m.filed_by,
            filed_at: m.filed_at,
            resolved_by: m.resolved_by,
            resolved_at: m.resolved_at,
            note: m.note,
        })
    }
}

fn publication_model(row: &PublicationRow) -> publication::ActiveModel {
    publication::Model {
        scheme_id: row.scheme_id.clone(),
        period: row.period.clone(),
        version: row.version,
        run_id: row.run_id.clone(),
        state: row.state.as_str().to_string(),
        notice_until: row.notice_until,
        replaces: row.replaces,
        caused_by: row.caused_by.join(","),
        published_by: row.published_by.clone(),
        published_at: row.published_at,
        finalized_by: row.finalized_by.clone(),
        finalized_at: row.finalized_at,
    }
    .into_active_model()
}

/// The current (not superseded) version of (scheme, period).
async fn current_in<C: sea_orm::ConnectionTrait>(
    db: &C,
    scheme_id: &str,
    period: &str,
) -> Result<Option<PublicationRow>, StorageError> {
    publication::Entity::find()
        .filter(publication::Column::SchemeId.eq(scheme_id))
        .filter(publication::Column::Period.eq(period))
        .filter(publication::Column::State.ne(PublicationState::Superseded.as_str()))
        .order_by_desc(publication::Column::Version)
        .one(db)
        .await?
        .map(PublicationRow::try_from)
        .transpose()
}

async fn objection_in(
    txn: &DatabaseTransaction,
    id: &str,
) -> Result<Option<ObjectionRow>, StorageError> {
    objection::Entity::find_by_id(id.to_string())
        .one(txn)
        .await?
        .map(ObjectionRow::try_from)
        .transpose()
}

/// Marks an open objection resolved inside `txn`.
async fn resolve_in(
    txn: &DatabaseTransaction,
    row: ObjectionRow,
    state: ObjectionState,
    by: &str,
    note: &str,
) -> Result<ObjectionRow, StorageError> {
    let now = crate::now_micros();
    let mut active = objection::Entity::find_by_id(row.id.clone())
        .one(txn)
        .await?
        .ok_or_else(|| corrupt("objection", &row.id))?
        .into_active_model();
    active.state = Set(state.as_str().to_string());
    active.resolved_by = Set(Some(by.to_string()));
    active.resolved_at = Set(Some(now));
    active.note = Set(note.to_string());
    active.update(txn).await?;
    Ok(ObjectionRow {
        state,
        resolved_by: Some(by.to_string()),
        resolved_at: Some(now),
        note: note.to_string(),
        ..row
    })
}

/// An objection that can still be resolved, or why not.
async fn open_objection(
    txn: &DatabaseTransaction,
    id: &str,
) -> Result<Result<ObjectionRow, Refusal>, StorageError> {
    Ok(match objection_in(txn, id).await? {
        None => Err(Refusal::NoObjection),
        Some(row) if row.state != ObjectionState::Open => Err(Refusal::Resolved(row.state)),
        Some(row) => Ok(row),
    })
}

impl Store {
    /// Publishes `run_id` as version 1 of (scheme, period), in public notice until
    /// `notice_until`; refused when the pair already has a current version.
    pub async fn publish_run(
        &self,
        scheme_id: &str,
        period: &str,
        run_id: &str,
        notice_until: i64,
        by: &str,
        audit: Option<&AuditEvent>,
    ) -> Step<PublicationRow> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        if let Some(current) = current_in(&txn, scheme_id, period).await? {
            txn.rollback().await?;
            return Ok(Err(Refusal::AlreadyPublished(current)));
        }
        let latest: Option<i32> = publication::Entity::find()
            .select_only()
            .column(publication::Column::Version)
            .filter(publication::Column::SchemeId.eq(scheme_id))
            .filter(publication::Column::Period.eq(period))
            .order_by_desc(publication::Column::Version)
            .into_tuple()
            .one(&txn)
            .await?;
        let row = PublicationRow {
            scheme_id: scheme_id.to_string(),
            period: period.to_string(),
            version: latest.unwrap_or(0) + 1,
            run_id: run_id.to_string(),
            state: PublicationState::PublicNotice,
            notice_until,
            replaces: 0,
            caused_by: vec![],
            published_by: by.to_string(),
            published_at: crate::now_micros(),
            finalized_by: None,
            finalized_at: None,
        };
        publication::Entity::insert(publication_model(&row))
            .exec_without_returning(&txn)
            .await?;
        commit_with_event(txn, audit).await?;
        Ok(Ok(row))
    }

    /// Closes the notice of (scheme, period): FINAL, refused while an objection against any of
    /// its versions is open.
    pub async fn finalize_publication(
        &self,
        scheme_id: &str,
        period: &str,
        by: &str,
        audit: Option<&AuditEvent>,
    ) -> Step<PublicationRow> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        let Some(current) = current_in(&txn, scheme_id, period).await? else {
            txn.rollback().await?;
            return Ok(Err(Refusal::NotPublished));
        };
        if current.state != PublicationState::PublicNotice {
            txn.rollback().await?;
            return Ok(Err(Refusal::NotInNotice(current.state)));
        }
        let open: Vec<String> = objection::Entity::find()
            .select_only()
            .column(objection::Column::Id)
            .filter(objection::Column::SchemeId.eq(scheme_id))
            .filter(objection::Column::Period.eq(period))
            .filter(objection::Column::State.eq(ObjectionState::Open.as_str()))
            .order_by_asc(objection::Column::Id)
            .into_tuple()
            .all(&txn)
            .await?;
        if !open.is_empty() {
            txn.rollback().await?;
            return Ok(Err(Refusal::OpenObjections(open)));
        }
        let row = PublicationRow {
            state: PublicationState::Final,
            finalized_by: Some(by.to_string()),
            finalized_at: Some(crate::now_micros()),
            ..current
        };
        publication_model(&row).reset_all().update(&txn).await?;
        commit_with_event(txn, audit).await?;
        Ok(Ok(row))
    }

    /// Every version of (scheme, period), oldest first.
    pub async fn publications(
        &self,
        scheme_id: &str,
        period: &str,
    ) -> Result<Vec<PublicationRow>, StorageError> {
        publication::Entity::find()
            .filter(publication::Column::SchemeId.eq(scheme_id))
            .filter(publication::Column::Period.eq(period))
            .order_by_asc(publication::Column::Version)
            .all(&self.db)
            .await?
            .into_iter()
            .map(PublicationRow::try_from)
            .collect()
    }

    /// The current version of (scheme, period), if it was published.
    pub async fn current_publication(
        &self,
        scheme_id: &str,
        period: &str,
    ) -> Result<Option<PublicationRow>, StorageError> {
        current_in(&self.db, scheme_id, period).await
    }

    /// The current version of every published period of a scheme.
    pub async fn current_publications(
        &self,
        scheme_id: &str,
    ) -> Result<Vec<PublicationRow>, StorageError> {
        publication::Entity::find()
            .filter(publication::Column::SchemeId.eq(scheme_id))
            .filter(publication::Column::State.ne(PublicationState::Superseded.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(PublicationRow::try_from)
            .collect()
    }

    /// The version that published `run_id`, if any.
    pub async fn publication_of_run(
        &self,
        run_id: &str,
    ) -> Result<Option<PublicationRow>, StorageError> {
        publication::Entity::find()
            .filter(publication::Column::RunId.eq(run_id))
            .one(&self.db)
            .await?
            .map(PublicationRow::try_from)
            .transpose()
    }

    /// Files an objection against its run, which must be the current version of its (scheme,
    /// period) with the notice still open at `now`.
    pub async fn file_objection(
        &self,
        row: ObjectionRow,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> Step<ObjectionRow> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        let current = current_in(&txn, &row.scheme_id, &row.period).await?;
        let refusal = match &current {
            Some(p) if p.run_id != row.run_id => {
                Some(Refusal::NotInNotice(PublicationState::Superseded))
            }
            Some(p) if p.state != PublicationState::PublicNotice => {
                Some(Refusal::NotInNotice(p.state))
            }
            Some(p) if now > p.notice_until => Some(Refusal::NoticeOver(p.notice_until)),
            Some(_) => None,
            None => Some(Refusal::NotPublished),
        };
        if let Some(refusal) = refusal {
            txn.rollback().await?;
            return Ok(Err(refusal));
        }
        objection::Entity::insert(
            objection::Model {
                id: row.id.clone(),
                run_id: row.run_id.clone(),
                scheme_id: row.scheme_id.clone(),
                period: row.period.clone(),
                entity_kind: row.entity_kind.clone(),
                entity_id: row.entity_id.clone(),
                reason: row.reason.clone(),
                disputed: row.disputed.clone(),
                evidence: row.evidence.clone(),
                state: row.state.as_str().to_string(),
                filed_by: row.filed_by.clone(),
                filed_at: row.filed_at,
                resolved_by: None,
                resolved_at: None,
                note: row.note.clone(),
            }
            .into_active_model(),
        )
        .exec_without_returning(&txn)
        .await?;
        commit_with_event(txn, audit).await?;
        Ok(Ok(row))
    }

    /// One objection.
    pub async fn objection(&self, id: &str) -> Result<Option<ObjectionRow>, StorageError> {
        objection::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(ObjectionRow::try_from)
            .transpose()
    }

    /// Objections by id, after the id `after`, at most `limit`; whether more follow.
    pub async fn objections(
        &self,
        filter: &ObjectionFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<ObjectionRow>, bool), StorageError> {
        let mut query = objection::Entity::find().order_by_asc(objection::Column::Id);
        if let Some(run_id) = &filter.run_id {
            query = query.filter(objection::Column::RunId.eq(run_id.as_str()));
        }
        if let Some(entity_id) = &filter.entity_id {
            query = query.filter(objection::Column::EntityId.eq(entity_id.as_str()));
        }
        if let Some(state) = filter.state {
            query = query.filter(objection::Column::State.eq(state.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(objection::Column::Id.gt(after));
        }
        let mut rows = query
            .limit(limit + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ObjectionRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// Rejects an open objection.
    pub async fn reject_objection(
        &self,
        id: &str,
        by: &str,
        note: &str,
        audit: Option<&AuditEvent>,
    ) -> Step<ObjectionRow> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        let row = match open_objection(&txn, id).await? {
            Ok(row) => row,
            Err(refusal) => {
                txn.rollback().await?;
                return Ok(Err(refusal));
            }
        };
        let row = resolve_in(&txn, row, ObjectionState::Rejected, by, note).await?;
        commit_with_event(txn, audit).await?;
        Ok(Ok(row))
    }

    /// Accepts an open objection: writes `corrections` (the claimed values, their source
    /// naming the objection) through the observation write path, with a new data version and
    /// commit stamp, and marks the objection accepted, in one transaction.
    pub async fn accept_objection(
        &self,
        id: &str,
        by: &str,
        note: &str,
        corrections: &[ObservationInput],
        audit: Option<AuditEvent>,
    ) -> Step<(ObjectionRow, WriteSummary)> {
        crate::partitions::ensure_years(&self.db, &years_of(corrections)).await?;
        let txn = self.db.begin().await?;
        // The observation write path takes the writers' lock first.
        let (summary, _, _) =
            write_observations_in(&txn, corrections, false, std::future::ready(()), by).await?;
        let row = match open_objection(&txn, id).await? {
            Ok(row) => row,
            Err(refusal) => {
                txn.rollback().await?;
                return Ok(Err(refusal));
            }
        };
        let row = resolve_in(&txn, row, ObjectionState::Accepted, by, note).await?;
        if let Some(mut event) = audit {
            // The corrections are the write's rows; they commit as the summary's data version.
            event.created = summary.accepted;
            event.updated = summary.updated;
            event.unchanged = summary.unchanged;
            let changed = summary.accepted + summary.updated > 0;
            insert_event(&txn, &event, changed.then_some(summary.data_version)).await?;
        }
        txn.commit().await?;
        Ok(Ok((row, summary)))
    }

    /// Publishes `run_id` as the next version of (scheme, period) in place of `replaces`
    /// (which must still be current), naming the objections that caused it; the notice keeps
    /// its deadline.
    pub async fn republish(
        &self,
        replaces: &PublicationRow,
        run_id: &str,
        caused_by: Vec<String>,
        by: &str,
        audit: Option<&AuditEvent>,
    ) -> Step<PublicationRow> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        let current = current_in(&txn, &replaces.scheme_id, &replaces.period).await?;
        let Some(current) = current.filter(|c| c.version == replaces.version) else {
            txn.rollback().await?;
            return Ok(Err(Refusal::NotInNotice(PublicationState::Superseded)));
        };
        if current.state != PublicationState::PublicNotice {
            txn.rollback().await?;
            return Ok(Err(Refusal::NotInNotice(current.state)));
        }
        let superseded = PublicationRow {
            state: PublicationState::Superseded,
            ..current.clone()
        };
        publication_model(&superseded)
            .reset_all()
            .update(&txn)
            .await?;
        let row = PublicationRow {
            version: current.version + 1,
            run_id: run_id.to_string(),
            state: PublicationState::PublicNotice,
            replaces: current.version,
            caused_by,
            published_by: by.to_string(),
            published_at: crate::now_micros(),
            finalized_by: None,
            finalized_at: None,
            ..current
        };
        publication::Entity::insert(publication_model(&row))
            .exec_without_returning(&txn)
            .await?;
        commit_with_event(txn, audit).await?;
        Ok(Ok(row))
    }
}
