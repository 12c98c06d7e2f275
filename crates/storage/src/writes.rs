//! Writes of reference data: one transaction that holds the writers' lock from its first
//! statement, so what a caller reads through it (to merge, validate and count) is the state its
//! writes apply to. A dry run takes the same path and rolls back at the end: its counts are
//! exactly what the real run would report.

use std::collections::HashMap;
use std::hash::Hash;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, Iterable, PaginatorTrait,
    QueryFilter, QuerySelect, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use zonerank_domain::{catalog::Indicator, entity::EntityKind};

use crate::{
    ClusterRecord, EnterpriseRecord, ProjectRecord, RegionRecord, StorageError, Store,
    TargetRecord, ZoneRecord,
    entity::{
        cluster, enterprise, indicator, observation, observation_revision, project, region, target,
        zone, zone_tag,
    },
    reference::{
        cluster_model, cluster_record, enterprise_model, enterprise_record, existing_in,
        indicator_entry, indicators_in, insert_indicators, project_model, project_record,
        region_model, region_record, regions_in, regions_of_in, rows_per_statement, rows_with_keys,
        target_model, target_record, zones_in,
    },
    store::{bump_version, lock_writers},
};

/// What an upsert did, or would do on a dry run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    /// Records that did not exist.
    pub created: i64,
    /// Existing records whose stored fields changed.
    pub updated: i64,
    /// Existing records equal to what was sent: nothing written.
    pub unchanged: i64,
}

impl UpsertCounts {
    /// Every record of the request.
    pub fn total(&self) -> i64 {
        self.created + self.updated + self.unchanged
    }
}

/// One write transaction (see the module documentation). Dropping it unfinished rolls it back.
pub struct Writes {
    txn: DatabaseTransaction,
    /// Whether any statement changed a row: a commit without changes keeps the data version.
    changed: bool,
    /// The audit event inserted when the transaction commits.
    pub(crate) audit: Option<crate::AuditEvent>,
}

impl Writes {
    /// The transaction, for writes kept beside their own tables.
    pub(crate) fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Store {
    /// Begins a write transaction, queued behind any other writer.
    pub async fn begin_writes(&self) -> Result<Writes, StorageError> {
        let txn = self.db.begin().await?;
        lock_writers(&txn).await?;
        Ok(Writes {
            txn,
            changed: false,
            audit: None,
        })
    }
}

/// What refers to a zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneReferences {
    /// Current observation values of the zone.
    pub observations: i64,
    pub targets: i64,
    pub enterprises: i64,
    pub clusters: i64,
    pub projects: i64,
}

/// What refers to an enterprise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnterpriseReferences {
    /// Current observation values of the enterprise.
    pub observations: i64,
    pub targets: i64,
}

/// The records of `records` that are new or differ from their stored version, and the counts.
fn classify<R: PartialEq, K: Eq + Hash>(
    records: &[R],
    stored: Vec<R>,
    key: impl Fn(&R) -> K,
) -> (Vec<&R>, UpsertCounts) {
    let stored: HashMap<K, R> = stored.into_iter().map(|r| (key(&r), r)).collect();
    let mut counts = UpsertCounts::default();
    let mut changed = Vec::new();
    for record in records {
        match stored.get(&key(record)) {
            None => counts.created += 1,
            Some(old) if old == record => {
                counts.unchanged += 1;
                continue;
            }
            Some(_) => counts.updated += 1,
        }
        changed.push(record);
    }
    (changed, counts)
}

impl Writes {
    /// Every region, as this transaction sees them.
    pub async fn regions(&self) -> Result<Vec<RegionRecord>, StorageError> {
        regions_in(&self.txn).await
    }

    /// The zones with these ids, as this transaction sees them.
    pub async fn zones_by_id(&self, ids: &[String]) -> Result<Vec<ZoneRecord>, StorageError> {
        zones_in(&self.txn, ids).await
    }

    /// The enterprises with these credit codes, as this transaction sees them.
    pub async fn enterprises_by_code(
        &self,
        codes: &[String],
    ) -> Result<Vec<EnterpriseRecord>, StorageError> {
        Ok(rows_with_keys::<enterprise::Entity, _>(
            &self.txn,
            enterprise::Column::CreditCode,
            codes,
        )
        .await?
        .into_iter()
        .map(enterprise_record)
        .collect())
    }

    /// Which of `ids` exist as entities of `kind`, as this transaction sees them.
    pub async fn existing_entities(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StorageError> {
        existing_in(&self.txn, kind, ids).await
    }

    /// The region each of `ids` (entities of `kind`) lies in, as this transaction sees it;
    /// unknown ids are absent.
    pub async fn entity_regions(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StorageError> {
        regions_of_in(&self.txn, kind, ids).await
    }

    /// The catalog, as this transaction sees it.
    pub async fn indicators(&self) -> Result<Vec<(Indicator, bool)>, StorageError> {
        indicators_in(&self.txn).await
    }

    /// The catalog as this transaction sees it.
    pub async fn catalog(&self) -> Result<zonerank_domain::catalog::Catalog, StorageError> {
        Ok(zonerank_domain::catalog::Catalog::new(
            indicators_in(&self.txn).await?,
        ))
    }

    /// Writes `models` with multi-row statements chunked under the bind limit.
    async fn upsert_rows<A>(
        &mut self,
        models: Vec<A>,
        on_conflict: OnConflict,
    ) -> Result<(), StorageError>
    where
        A: ActiveModelTrait + Clone + Send + Sync,
    {
        let columns = <A::Entity as EntityTrait>::Column::iter().count();
        for chunk in models.chunks(rows_per_statement(columns)) {
            <A::Entity as EntityTrait>::insert_many(chunk.to_vec())
                .on_conflict(on_conflict.clone())
                .exec_without_returning(&self.txn)
                .await?;
            self.changed = true;
        }
        Ok(())
    }

    /// Creates or replaces regions by code; records equal to the stored ones are not written.
    pub async fn put_regions(
        &mut self,
        rows: &[RegionRecord],
    ) -> Result<UpsertCounts, StorageError> {
        let codes: Vec<String> = rows.iter().map(|r| r.code.clone()).collect();
        let stored = rows_with_keys::<region::Entity, _>(&self.txn, region::Column::Code, &codes)
            .await?
            .into_iter()
            .map(region_record)
            .collect::<Result<Vec<_>, _>>()?;
        let (changed, counts) = classify(rows, stored, |r| r.code.clone());
        let models = changed.into_iter().map(region_model).collect();
        self.upsert_rows(
            models,
            OnConflict::column(region::Column::Code)
                .update_columns([
                    region::Column::Name,
                    region::Column::NameEn,
                    region::Column::Level,
                    region::Column::ParentCode,
                ])
                .to_owned(),
        )
        .await?;
        Ok(counts)
    }

    /// Creates or replaces zones by id, their tags with them.
    pub async fn put_zones(&mut self, rows: &[ZoneRecord]) -> Result<UpsertCounts, StorageError> {
        // Tags are a set: compared and stored sorted and without repeats.
        let rows: Vec<ZoneRecord> = rows
            .iter()
            .map(|z| {
                let mut z = z.clone();
                z.tags.sort();
                z.tags.dedup();
                z
            })
            .collect();
        let ids: Vec<String> = rows.iter().map(|z| z.id.clone()).collect();
        let stored = self.zones_by_id(&ids).await?;
        let (changed, counts) = classify(&rows, stored, |z| z.id.clone());
        let models = changed
            .iter()
            .map(|z| zone::ActiveModel {
                id: sea_orm::Set(z.id.clone()),
                name: sea_orm::Set(z.name.clone()),
                region_code: sea_orm::Set(z.region_code.clone()),
                kind: sea_orm::Set(z.kind.as_str().to_string()),
                leading_industries: sea_orm::Set(
                    serde_json::to_string(&z.leading_industries).unwrap_or_else(|_| "[]".into()),
                ),
            })
            .collect();
        self.upsert_rows(
            models,
            OnConflict::column(zone::Column::Id)
                .update_columns([
                    zone::Column::Name,
                    zone::Column::RegionCode,
                    zone::Column::Kind,
                    zone::Column::LeadingIndustries,
                ])
                .to_owned(),
        )
        .await?;
        let changed_ids: Vec<String> = changed.iter().map(|z| z.id.clone()).collect();
        for chunk in changed_ids.chunks(rows_per_statement(1)) {
            zone_tag::Entity::delete_many()
                .filter(zone_tag::Column::ZoneId.is_in(chunk.iter().cloned()))
                .exec(&self.txn)
                .await?;
        }
        let tags: Vec<zone_tag::ActiveModel> = changed
            .iter()
            .flat_map(|z| {
                z.tags.iter().map(|t| zone_tag::ActiveModel {
                    zone_id: sea_orm::Set(z.id.clone()),
                    tag: sea_orm::Set(t.clone()),
                })
            })
            .collect();
        for chunk in tags.chunks(rows_per_statement(2)) {
            zone_tag::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&self.txn)
                .await?;
        }
        Ok(counts)
    }

    /// Creates or replaces enterprises by credit code.
    pub async fn put_enterprises(
        &mut self,
        rows: &[EnterpriseRecord],
    ) -> Result<UpsertCounts, StorageError> {
        let codes: Vec<String> = rows.iter().map(|e| e.credit_code.clone()).collect();
        let stored = self.enterprises_by_code(&codes).await?;
        let (changed, counts) = classify(rows, stored, |e| e.credit_code.clone());
        let models = changed.into_iter().map(enterprise_model).collect();
        self.upsert_rows(
            models,
            OnConflict::column(enterprise::Column::CreditCode)
                .update_columns([
                    enterprise::Column::Name,
                    enterprise::Column::ZoneId,
                    enterprise::Column::IndustryCode,
                    enterprise::Column::AboveScale,
                ])
                .to_owned(),
        )
        .await?;
        Ok(counts)
    }

    /// Creates or replaces clusters by id.
    pub async fn put_clusters(
        &mut self,
        rows: &[ClusterRecord],
    ) -> Result<UpsertCounts, StorageError> {
        let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
        let stored = rows_with_keys::<cluster::Entity, _>(&self.txn, cluster::Column::Id, &ids)
            .await?
            .into_iter()
            .map(cluster_record)
            .collect();
        let (changed, counts) = classify(rows, stored, |c| c.id.clone());
        let models = changed.into_iter().map(cluster_model).collect();
        self.upsert_rows(
            models,
            OnConflict::column(cluster::Column::Id)
                .update_columns([
                    cluster::Column::Name,
                    cluster::Column::RegionCode,
                    cluster::Column::ZoneId,
                    cluster::Column::Industry,
                ])
                .to_owned(),
        )
        .await?;
        Ok(counts)
    }

    /// Creates or replaces projects by id.
    pub async fn put_projects(
        &mut self,
        rows: &[ProjectRecord],
    ) -> Result<UpsertCounts, StorageError> {
        let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
        let stored = rows_with_keys::<project::Entity, _>(&self.txn, project::Column::Id, &ids)
            .await?
            .into_iter()
            .map(project_record)
            .collect::<Result<_, _>>()?;
        let (changed, counts) = classify(rows, stored, |p| p.id.clone());
        let periods = crate::projects::period_models(&changed);
        let models = changed.into_iter().map(project_model).collect();
        self.upsert_rows(
            models,
            OnConflict::column(project::Column::Id)
                .update_columns([
                    project::Column::Name,
                    project::Column::ZoneId,
                    project::Column::Status,
                    project::Column::PlannedInvestment,
                    project::Column::Period,
                    project::Column::CompletedInvestment,
                ])
                .to_owned(),
        )
        .await?;
        self.upsert_rows(periods, crate::projects::period_conflict())
            .await?;
        Ok(counts)
    }

    /// Adds indicators to the catalog or replaces user-defined ones. A built-in is never
    /// replaced: one sent is counted unchanged.
    pub async fn put_indicators(
        &mut self,
        rows: &[Indicator],
    ) -> Result<UpsertCounts, StorageError> {
        let codes: Vec<String> = rows.iter().map(|i| i.code.clone()).collect();
        let stored: Vec<(Indicator, bool)> =
            rows_with_keys::<indicator::Entity, _>(&self.txn, indicator::Column::Code, &codes)
                .await?
                .into_iter()
                .map(indicator_entry)
                .collect::<Result<_, _>>()?;
        let builtin: std::collections::HashSet<String> = stored
            .iter()
            .filter(|(_, builtin)| *builtin)
            .map(|(i, _)| i.code.clone())
            .collect();
        let (user, protected): (Vec<Indicator>, Vec<Indicator>) = rows
            .iter()
            .cloned()
            .partition(|i| !builtin.contains(&i.code));
        let (changed, mut counts) =
            classify(&user, stored.into_iter().map(|(i, _)| i).collect(), |i| {
                i.code.clone()
            });
        counts.unchanged += protected.len() as i64;
        if !changed.is_empty() {
            insert_indicators(&self.txn, changed.into_iter(), false).await?;
            self.changed = true;
        }
        Ok(counts)
    }

    /// Creates or replaces targets by (entity, metric, period).
    pub async fn put_targets(
        &mut self,
        rows: &[TargetRecord],
    ) -> Result<UpsertCounts, StorageError> {
        let mut ids: Vec<String> = rows.iter().map(|t| t.entity_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let stored = rows_with_keys::<target::Entity, _>(&self.txn, target::Column::EntityId, &ids)
            .await?
            .into_iter()
            .map(target_record)
            .collect::<Result<Vec<_>, _>>()?;
        let key = |t: &TargetRecord| {
            (
                t.entity_kind,
                t.entity_id.clone(),
                t.metric.clone(),
                t.period.clone(),
            )
        };
        let (changed, counts) = classify(rows, stored, key);
        let models = changed.into_iter().map(target_model).collect();
        self.upsert_rows(
            models,
            OnConflict::columns([
                target::Column::EntityKind,
                target::Column::EntityId,
                target::Column::Metric,
                target::Column::Period,
            ])
            .update_columns([
                target::Column::Comparator,
                target::Column::Value,
                target::Column::Unit,
                target::Column::Note,
            ])
            .to_owned(),
        )
        .await?;
        Ok(counts)
    }

    /// What refers to the zone `id`; None when there is no such zone.
    pub async fn zone_references(&self, id: &str) -> Result<Option<ZoneReferences>, StorageError> {
        if zone::Entity::find_by_id(id).one(&self.txn).await?.is_none() {
            return Ok(None);
        }
        let (observations, targets) = self.figures_of(EntityKind::Zone, id).await?;
        Ok(Some(ZoneReferences {
            observations,
            targets,
            enterprises: enterprise::Entity::find()
                .filter(enterprise::Column::ZoneId.eq(id))
                .count(&self.txn)
                .await? as i64,
            clusters: cluster::Entity::find()
                .filter(cluster::Column::ZoneId.eq(id))
                .count(&self.txn)
                .await? as i64,
            projects: project::Entity::find()
                .filter(project::Column::ZoneId.eq(id))
                .count(&self.txn)
                .await? as i64,
        }))
    }

    /// What refers to the enterprise `credit_code`; None when there is no such enterprise.
    pub async fn enterprise_references(
        &self,
        credit_code: &str,
    ) -> Result<Option<EnterpriseReferences>, StorageError> {
        if enterprise::Entity::find_by_id(credit_code)
            .one(&self.txn)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let (observations, targets) = self.figures_of(EntityKind::Enterprise, credit_code).await?;
        Ok(Some(EnterpriseReferences {
            observations,
            targets,
        }))
    }

    /// The current observation values and targets of one entity.
    async fn figures_of(&self, kind: EntityKind, id: &str) -> Result<(i64, i64), StorageError> {
        let observations = observation::Entity::find()
            .filter(observation::Column::EntityKind.eq(kind.as_str()))
            .filter(observation::Column::EntityId.eq(id))
            .count(&self.txn)
            .await?;
        let targets = target::Entity::find()
            .filter(target::Column::EntityKind.eq(kind.as_str()))
            .filter(target::Column::EntityId.eq(id))
            .count(&self.txn)
            .await?;
        Ok((observations as i64, targets as i64))
    }

    /// Removes the observations (current values and every revision) and targets of entities;
    /// returns how many current values went.
    async fn remove_figures(
        &mut self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<i64, StorageError> {
        let mut removed = 0;
        for chunk in ids.chunks(rows_per_statement(1) - 1) {
            removed += observation::Entity::delete_many()
                .filter(observation::Column::EntityKind.eq(kind.as_str()))
                .filter(observation::Column::EntityId.is_in(chunk.iter().cloned()))
                .exec(&self.txn)
                .await?
                .rows_affected as i64;
            observation_revision::Entity::delete_many()
                .filter(observation_revision::Column::EntityKind.eq(kind.as_str()))
                .filter(observation_revision::Column::EntityId.is_in(chunk.iter().cloned()))
                .exec(&self.txn)
                .await?;
            target::Entity::delete_many()
                .filter(target::Column::EntityKind.eq(kind.as_str()))
                .filter(target::Column::EntityId.is_in(chunk.iter().cloned()))
                .exec(&self.txn)
                .await?;
        }
        self.changed = true;
        Ok(removed)
    }

    /// Removes the zone `id` with its tags, observations and targets, and its projects with
    /// theirs; its enterprises and clusters stay, without a zone. Returns how many current
    /// observation values went.
    pub async fn remove_zone(&mut self, id: &str) -> Result<i64, StorageError> {
        let projects: Vec<String> = project::Entity::find()
            .select_only()
            .column(project::Column::Id)
            .filter(project::Column::ZoneId.eq(id))
            .into_tuple()
            .all(&self.txn)
            .await?;
        let mut removed = self
            .remove_figures(EntityKind::Zone, &[id.to_string()])
            .await?;
        removed += self.remove_figures(EntityKind::Project, &projects).await?;
        crate::projects::remove_periods(&self.txn, &projects).await?;
        project::Entity::delete_many()
            .filter(project::Column::ZoneId.eq(id))
            .exec(&self.txn)
            .await?;
        enterprise::Entity::update_many()
            .col_expr(
                enterprise::Column::ZoneId,
                Expr::value(Option::<String>::None),
            )
            .filter(enterprise::Column::ZoneId.eq(id))
            .exec(&self.txn)
            .await?;
        cluster::Entity::update_many()
            .col_expr(cluster::Column::ZoneId, Expr::value(Option::<String>::None))
            .filter(cluster::Column::ZoneId.eq(id))
            .exec(&self.txn)
            .await?;
        zone_tag::Entity::delete_many()
            .filter(zone_tag::Column::ZoneId.eq(id))
            .exec(&self.txn)
            .await?;
        zone::Entity::delete_by_id(id).exec(&self.txn).await?;
        Ok(removed)
    }

    /// Removes the enterprise `credit_code` with its observations and targets. Returns how many
    /// current observation values went.
    pub async fn remove_enterprise(&mut self, credit_code: &str) -> Result<i64, StorageError> {
        let removed = self
            .remove_figures(EntityKind::Enterprise, &[credit_code.to_string()])
            .await?;
        enterprise::Entity::delete_by_id(credit_code)
            .exec(&self.txn)
            .await?;
        Ok(removed)
    }

    /// Removes one target; false when there was none.
    pub async fn remove_target(
        &mut self,
        kind: EntityKind,
        entity_id: &str,
        metric: &str,
        period: &str,
    ) -> Result<bool, StorageError> {
        let removed = target::Entity::delete_many()
            .filter(target::Column::EntityKind.eq(kind.as_str()))
            .filter(target::Column::EntityId.eq(entity_id))
            .filter(target::Column::Metric.eq(metric))
            .filter(target::Column::Period.eq(period))
            .exec(&self.txn)
            .await?
            .rows_affected
            > 0;
        self.changed |= removed;
        Ok(removed)
    }

    /// Ends the transaction: commits it with a new data version when something changed and
    /// this is no dry run, otherwise rolls it back and nothing is written.
    /// The audit event, when one was recorded, is inserted in the same transaction: a write
    /// that changed nothing commits the event alone, keeping the data version.
    pub async fn finish(self, dry_run: bool) -> Result<(), StorageError> {
        if dry_run || (!self.changed && self.audit.is_none()) {
            self.txn.rollback().await?;
            return Ok(());
        }
        let version = if self.changed {
            Some(bump_version(&self.txn).await?.version)
        } else {
            None
        };
        if let Some(event) = &self.audit {
            crate::audit::insert_event(&self.txn, event, version).await?;
        }
        self.txn.commit().await?;
        Ok(())
    }
}
