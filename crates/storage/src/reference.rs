//! Reference data: regions, zones, enterprises, clusters, projects, the indicator catalog and
//! targets. Every upsert is one transaction of multi-row statements and bumps the data version.

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, Iterable,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use zonerank_domain::{
    catalog::{Direction, Indicator, IndicatorKind},
    entity::{EntityKind, RegionLevel},
    unit::Unit,
};

use crate::{
    StorageError, Store,
    entity::{cluster, enterprise, indicator, project, region, target, zone, zone_tag},
    store::bump_version,
};

/// Bind parameters one statement may carry: SQLite allows 32,766, PostgreSQL 65,535.
const MAX_BIND_PARAMS: usize = 30_000;

/// Rows per multi-row statement for a table of `columns` columns.
pub(crate) fn rows_per_statement(columns: usize) -> usize {
    (MAX_BIND_PARAMS / columns).max(1)
}

/// A region to store.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionRecord {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub level: RegionLevel,
    pub parent_code: Option<String>,
}

/// A zone to store.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneRecord {
    pub id: String,
    pub name: String,
    pub region_code: String,
    /// The ZoneKind name without prefix, e.g. "AGGLOMERATION_ZONE".
    pub kind: String,
    pub tags: Vec<String>,
    pub leading_industries: Vec<String>,
}

/// An enterprise to store.
#[derive(Clone, Debug, PartialEq)]
pub struct EnterpriseRecord {
    pub credit_code: String,
    pub name: String,
    pub zone_id: Option<String>,
    pub industry_code: String,
    pub above_scale: bool,
}

/// A cluster to store.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterRecord {
    pub id: String,
    pub name: String,
    pub region_code: String,
    pub zone_id: Option<String>,
    pub industry: String,
}

/// A project to store.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    pub zone_id: String,
    /// The ProjectStatus name without prefix, e.g. "SIGNED".
    pub status: String,
    /// 万元
    pub planned_investment: f64,
}

/// A target to store.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRecord {
    pub entity_kind: EntityKind,
    pub entity_id: String,
    pub metric: String,
    /// Canonical period spelling.
    pub period: String,
    /// "AT_LEAST" or "AT_MOST".
    pub comparator: String,
    pub value: f64,
    pub unit: String,
    pub note: String,
}

/// Filters of a zone listing.
#[derive(Clone, Debug, Default)]
pub struct ZoneFilter {
    /// Zones in this region's subtree.
    pub region_code: Option<String>,
    /// The ZoneKind name without prefix.
    pub kind: Option<String>,
    /// Zones carrying every one of these tags.
    pub tags: Vec<String>,
}

/// One page of a keyset-paginated listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The last key of this page when more follow.
    pub next_after: Option<String>,
}

impl Store {
    /// Upserts rows in one transaction of multi-row statements and bumps the data version.
    async fn upsert_committed<A>(
        &self,
        models: Vec<A>,
        on_conflict: OnConflict,
    ) -> Result<i64, StorageError>
    where
        A: ActiveModelTrait + Clone + Send + Sync,
    {
        let columns = <A::Entity as EntityTrait>::Column::iter().count();
        let txn = self.db.begin().await?;
        for chunk in models.chunks(rows_per_statement(columns)) {
            <A::Entity as EntityTrait>::insert_many(chunk.to_vec())
                .on_conflict(on_conflict.clone())
                .exec_without_returning(&txn)
                .await?;
        }
        bump_version(&txn).await?;
        txn.commit().await?;
        Ok(models.len() as i64)
    }

    /// Creates or replaces regions by code.
    pub async fn upsert_regions(&self, regions: &[RegionRecord]) -> Result<i64, StorageError> {
        let models = regions
            .iter()
            .map(|r| region::ActiveModel {
                code: sea_orm::Set(r.code.clone()),
                name: sea_orm::Set(r.name.clone()),
                name_en: sea_orm::Set(r.name_en.clone()),
                level: sea_orm::Set(r.level.as_str().to_string()),
                parent_code: sea_orm::Set(r.parent_code.clone()),
            })
            .collect();
        self.upsert_committed(
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
        .await
    }

    /// Every region, ordered by code.
    pub async fn regions(&self) -> Result<Vec<RegionRecord>, StorageError> {
        let rows = region::Entity::find()
            .order_by_asc(region::Column::Code)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RegionRecord {
                    level: RegionLevel::parse(&r.level).map_err(|_| {
                        StorageError::Corrupt(format!("region {} has level {:?}", r.code, r.level))
                    })?,
                    code: r.code,
                    name: r.name,
                    name_en: r.name_en,
                    parent_code: r.parent_code,
                })
            })
            .collect()
    }

    /// The codes of `root` and every region under it.
    pub async fn region_subtree(&self, root: &str) -> Result<BTreeSet<String>, StorageError> {
        let parents: Vec<(String, Option<String>)> = region::Entity::find()
            .select_only()
            .column(region::Column::Code)
            .column(region::Column::ParentCode)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (code, parent) in parents {
            if let Some(parent) = parent {
                children.entry(parent).or_default().push(code);
            }
        }
        let mut subtree = BTreeSet::new();
        let mut stack = vec![root.to_string()];
        while let Some(code) = stack.pop() {
            if subtree.insert(code.clone())
                && let Some(kids) = children.get(&code)
            {
                stack.extend(kids.iter().cloned());
            }
        }
        Ok(subtree)
    }

    /// Creates or replaces zones by id, their tags with them.
    pub async fn upsert_zones(&self, zones: &[ZoneRecord]) -> Result<i64, StorageError> {
        let txn = self.db.begin().await?;
        for chunk in zones.chunks(rows_per_statement(5)) {
            let models = chunk.iter().map(|z| zone::ActiveModel {
                id: sea_orm::Set(z.id.clone()),
                name: sea_orm::Set(z.name.clone()),
                region_code: sea_orm::Set(z.region_code.clone()),
                kind: sea_orm::Set(z.kind.clone()),
                leading_industries: sea_orm::Set(
                    serde_json::to_string(&z.leading_industries).unwrap_or_else(|_| "[]".into()),
                ),
            });
            zone::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::column(zone::Column::Id)
                        .update_columns([
                            zone::Column::Name,
                            zone::Column::RegionCode,
                            zone::Column::Kind,
                            zone::Column::LeadingIndustries,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            zone_tag::Entity::delete_many()
                .filter(zone_tag::Column::ZoneId.is_in(chunk.iter().map(|z| z.id.clone())))
                .exec(&txn)
                .await?;
        }
        let tags: Vec<zone_tag::ActiveModel> =
            zones
                .iter()
                .flat_map(|z| {
                    z.tags.iter().collect::<BTreeSet<_>>().into_iter().map(|t| {
                        zone_tag::ActiveModel {
                            zone_id: sea_orm::Set(z.id.clone()),
                            tag: sea_orm::Set(t.clone()),
                        }
                    })
                })
                .collect();
        for chunk in tags.chunks(rows_per_statement(2)) {
            zone_tag::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        bump_version(&txn).await?;
        txn.commit().await?;
        Ok(zones.len() as i64)
    }

    /// One page of zones ordered by id, after the id `after`.
    pub async fn list_zones(
        &self,
        filter: &ZoneFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<ZoneRecord>, StorageError> {
        let mut query = zone::Entity::find().order_by_asc(zone::Column::Id);
        if let Some(root) = &filter.region_code {
            let subtree = self.region_subtree(root).await?;
            query = query.filter(zone::Column::RegionCode.is_in(subtree));
        }
        if let Some(kind) = &filter.kind {
            query = query.filter(zone::Column::Kind.eq(kind.as_str()));
        }
        let tags: BTreeSet<&String> = filter.tags.iter().collect();
        if !tags.is_empty() {
            // Zones with every tag: as many matching tag rows as tags asked for.
            let with_all_tags = Query::select()
                .column(zone_tag::Column::ZoneId)
                .from(zone_tag::Entity)
                .and_where(zone_tag::Column::Tag.is_in(tags.iter().map(|t| t.as_str())))
                .group_by_col(zone_tag::Column::ZoneId)
                .and_having(
                    Expr::col(zone_tag::Column::Tag)
                        .count()
                        .eq(Expr::val(tags.len() as i64)),
                )
                .to_owned();
            query = query.filter(zone::Column::Id.in_subquery(with_all_tags));
        }
        if let Some(after) = after {
            query = query.filter(zone::Column::Id.gt(after));
        }
        let mut rows = query.limit(limit + 1).all(&self.db).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_after = more.then(|| rows.last().map(|z| z.id.clone())).flatten();
        let items = self.zones_with_tags(rows).await?;
        Ok(Page { items, next_after })
    }

    /// The zones with these ids (unknown ids are skipped).
    pub async fn zones_by_id(&self, ids: &[String]) -> Result<Vec<ZoneRecord>, StorageError> {
        let rows = zone::Entity::find()
            .filter(zone::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(zone::Column::Id)
            .all(&self.db)
            .await?;
        self.zones_with_tags(rows).await
    }

    async fn zones_with_tags(
        &self,
        rows: Vec<zone::Model>,
    ) -> Result<Vec<ZoneRecord>, StorageError> {
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in rows.chunks(rows_per_statement(1)) {
            let found = zone_tag::Entity::find()
                .filter(zone_tag::Column::ZoneId.is_in(chunk.iter().map(|z| z.id.clone())))
                .order_by_asc(zone_tag::Column::Tag)
                .all(&self.db)
                .await?;
            for t in found {
                tags.entry(t.zone_id).or_default().push(t.tag);
            }
        }
        Ok(rows
            .into_iter()
            .map(|z| ZoneRecord {
                tags: tags.remove(&z.id).unwrap_or_default(),
                leading_industries: serde_json::from_str(&z.leading_industries).unwrap_or_default(),
                id: z.id,
                name: z.name,
                region_code: z.region_code,
                kind: z.kind,
            })
            .collect())
    }

    /// Creates or replaces enterprises by credit code.
    pub async fn upsert_enterprises(&self, rows: &[EnterpriseRecord]) -> Result<i64, StorageError> {
        let models = rows
            .iter()
            .map(|e| enterprise::ActiveModel {
                credit_code: sea_orm::Set(e.credit_code.clone()),
                name: sea_orm::Set(e.name.clone()),
                zone_id: sea_orm::Set(e.zone_id.clone()),
                industry_code: sea_orm::Set(e.industry_code.clone()),
                above_scale: sea_orm::Set(e.above_scale),
            })
            .collect();
        self.upsert_committed(
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
        .await
    }

    /// Creates or replaces clusters by id.
    pub async fn upsert_clusters(&self, rows: &[ClusterRecord]) -> Result<i64, StorageError> {
        let models = rows
            .iter()
            .map(|c| cluster::ActiveModel {
                id: sea_orm::Set(c.id.clone()),
                name: sea_orm::Set(c.name.clone()),
                region_code: sea_orm::Set(c.region_code.clone()),
                zone_id: sea_orm::Set(c.zone_id.clone()),
                industry: sea_orm::Set(c.industry.clone()),
            })
            .collect();
        self.upsert_committed(
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
        .await
    }

    /// Creates or replaces projects by id.
    pub async fn upsert_projects(&self, rows: &[ProjectRecord]) -> Result<i64, StorageError> {
        let models = rows
            .iter()
            .map(|p| project::ActiveModel {
                id: sea_orm::Set(p.id.clone()),
                name: sea_orm::Set(p.name.clone()),
                zone_id: sea_orm::Set(p.zone_id.clone()),
                status: sea_orm::Set(p.status.clone()),
                planned_investment: sea_orm::Set(p.planned_investment),
            })
            .collect();
        self.upsert_committed(
            models,
            OnConflict::column(project::Column::Id)
                .update_columns([
                    project::Column::Name,
                    project::Column::ZoneId,
                    project::Column::Status,
                    project::Column::PlannedInvestment,
                ])
                .to_owned(),
        )
        .await
    }

    /// Which of `ids` exist as entities of `kind`.
    pub async fn existing_entities(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashSet<String>, StorageError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(rows_per_statement(1)) {
            let chunk = chunk.iter().cloned();
            let rows: Vec<String> = match kind {
                EntityKind::Region => {
                    key_column(region::Entity, region::Column::Code, chunk, &self.db).await?
                }
                EntityKind::Zone => {
                    key_column(zone::Entity, zone::Column::Id, chunk, &self.db).await?
                }
                EntityKind::Enterprise => {
                    key_column(
                        enterprise::Entity,
                        enterprise::Column::CreditCode,
                        chunk,
                        &self.db,
                    )
                    .await?
                }
                EntityKind::Cluster => {
                    key_column(cluster::Entity, cluster::Column::Id, chunk, &self.db).await?
                }
                EntityKind::Project => {
                    key_column(project::Entity, project::Column::Id, chunk, &self.db).await?
                }
            };
            found.extend(rows);
        }
        Ok(found)
    }

    /// Adds indicators to the catalog or replaces user-defined ones; built-ins are never replaced.
    pub async fn upsert_indicators(&self, indicators: &[Indicator]) -> Result<i64, StorageError> {
        let txn = self.db.begin().await?;
        insert_indicators(&txn, indicators.iter(), false).await?;
        bump_version(&txn).await?;
        txn.commit().await?;
        Ok(indicators.len() as i64)
    }

    /// The whole catalog, ordered by code, each with its built-in flag.
    pub async fn indicators(&self) -> Result<Vec<(Indicator, bool)>, StorageError> {
        let rows = indicator::Entity::find()
            .order_by_asc(indicator::Column::Code)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                let corrupt = |what: &str| {
                    StorageError::Corrupt(format!("indicator {} has a bad {what}", r.code))
                };
                Ok((
                    Indicator {
                        unit: Unit::parse(&r.unit).map_err(|_| corrupt("unit"))?,
                        kind: IndicatorKind::parse(&r.kind).map_err(|_| corrupt("kind"))?,
                        direction: Direction::parse(&r.direction)
                            .map_err(|_| corrupt("direction"))?,
                        code: r.code.clone(),
                        name_zh: r.name_zh.clone(),
                        name_en: r.name_en.clone(),
                    },
                    r.builtin,
                ))
            })
            .collect()
    }

    /// Creates or replaces targets by (entity, metric, period).
    pub async fn upsert_targets(&self, targets: &[TargetRecord]) -> Result<i64, StorageError> {
        let models = targets
            .iter()
            .map(|t| target::ActiveModel {
                entity_kind: sea_orm::Set(t.entity_kind.as_str().to_string()),
                entity_id: sea_orm::Set(t.entity_id.clone()),
                metric: sea_orm::Set(t.metric.clone()),
                period: sea_orm::Set(t.period.clone()),
                comparator: sea_orm::Set(t.comparator.clone()),
                value: sea_orm::Set(t.value),
                unit: sea_orm::Set(t.unit.clone()),
                note: sea_orm::Set(t.note.clone()),
            })
            .collect();
        self.upsert_committed(
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
        .await
    }

    /// The targets of one entity, optionally of one period.
    pub async fn targets(
        &self,
        kind: EntityKind,
        entity_id: &str,
        period: Option<&str>,
    ) -> Result<Vec<TargetRecord>, StorageError> {
        let mut query = target::Entity::find()
            .filter(target::Column::EntityKind.eq(kind.as_str()))
            .filter(target::Column::EntityId.eq(entity_id))
            .order_by_asc(target::Column::Period)
            .order_by_asc(target::Column::Metric);
        if let Some(period) = period {
            query = query.filter(target::Column::Period.eq(period));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| TargetRecord {
                entity_kind: kind,
                entity_id: t.entity_id,
                metric: t.metric,
                period: t.period,
                comparator: t.comparator,
                value: t.value,
                unit: t.unit,
                note: t.note,
            })
            .collect())
    }
}

async fn key_column<E, C>(
    entity: E,
    column: E::Column,
    ids: impl Iterator<Item = String>,
    db: &C,
) -> Result<Vec<String>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let _ = entity;
    Ok(E::find()
        .select_only()
        .column(column)
        .filter(column.is_in(ids))
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// Inserts catalog rows; user-defined rows replace earlier user-defined ones but never a built-in.
pub(crate) async fn insert_indicators<'a>(
    txn: &DatabaseTransaction,
    indicators: impl Iterator<Item = &'a Indicator>,
    builtin: bool,
) -> Result<(), StorageError> {
    let models: Vec<indicator::ActiveModel> = indicators
        .map(|i| indicator::ActiveModel {
            code: sea_orm::Set(i.code.clone()),
            name_zh: sea_orm::Set(i.name_zh.clone()),
            name_en: sea_orm::Set(i.name_en.clone()),
            unit: sea_orm::Set(i.unit.symbol.to_string()),
            kind: sea_orm::Set(i.kind.as_str().to_string()),
            direction: sea_orm::Set(i.direction.as_str().to_string()),
            builtin: sea_orm::Set(builtin),
        })
        .collect();
    for chunk in models.chunks(rows_per_statement(7)) {
        let mut on_conflict = OnConflict::column(indicator::Column::Code);
        on_conflict.update_columns([
            indicator::Column::NameZh,
            indicator::Column::NameEn,
            indicator::Column::Unit,
            indicator::Column::Kind,
            indicator::Column::Direction,
        ]);
        if !builtin {
            on_conflict.action_and_where(indicator::Column::Builtin.eq(false));
        }
        indicator::Entity::insert_many(chunk.to_vec())
            .on_conflict(on_conflict)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
