//! Reference data: regions, zones, enterprises, clusters, projects, the indicator catalog and
//! targets, and their reads. Writes go through [`Writes`], one transaction each.

use std::collections::{BTreeSet, HashMap, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use zonerank_domain::{
    catalog::{Catalog, Direction, Indicator, IndicatorKind},
    entity::{EntityKind, ProjectStatus, RegionLevel, ZoneKind},
    metric::Comparator,
    period::Period,
    region::RegionTree,
    unit::Unit,
};

use crate::{
    StorageError, Store, UpsertCounts, Writes,
    entity::{cluster, enterprise, indicator, project, region, target, zone, zone_tag},
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
    pub kind: ZoneKind,
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
    pub status: ProjectStatus,
    /// 万元
    pub planned_investment: f64,
    /// The period the status and investment hold for; each period given is kept as the
    /// project's history for the pipeline metrics.
    pub period: Option<Period>,
    /// 万元
    pub completed_investment: f64,
}

/// A target to store.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRecord {
    pub entity_kind: EntityKind,
    pub entity_id: String,
    pub metric: String,
    /// Canonical period spelling.
    pub period: String,
    pub comparator: Comparator,
    pub value: f64,
    pub unit: String,
    pub note: String,
}

/// Filters of a zone listing.
#[derive(Clone, Debug, Default)]
pub struct ZoneFilter {
    /// Zones in this region's subtree.
    pub region_code: Option<String>,
    pub kind: Option<ZoneKind>,
    /// Zones carrying every one of these tags.
    pub tags: Vec<String>,
}

/// Filters of an enterprise listing.
#[derive(Clone, Debug, Default)]
pub struct EnterpriseFilter {
    /// Enterprises of this zone.
    pub zone_id: Option<String>,
    /// Enterprises whose zone lies in this region's subtree.
    pub region_code: Option<String>,
    /// Enterprises whose industry code starts with this prefix (letters and digits only).
    pub industry_prefix: Option<String>,
}

/// One page of a keyset-paginated listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, K = String> {
    pub items: Vec<T>,
    /// The last key of this page when more follow.
    pub next_after: Option<K>,
}

impl<T, K> Page<T, K> {
    /// The page of `rows` read with one row more than `limit`: that row says more follow.
    pub(crate) fn of(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> K) -> Page<T, K> {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_after = if more { rows.last().map(key) } else { None };
        Page {
            items: rows,
            next_after,
        }
    }
}

pub(crate) fn region_record(r: region::Model) -> Result<RegionRecord, StorageError> {
    Ok(RegionRecord {
        level: RegionLevel::parse(&r.level).map_err(|_| {
            StorageError::Corrupt(format!("region {} has level {:?}", r.code, r.level))
        })?,
        code: r.code,
        name: r.name,
        name_en: r.name_en,
        parent_code: r.parent_code,
    })
}

/// The tree of these regions.
fn region_tree_of(regions: impl IntoIterator<Item = RegionRecord>) -> RegionTree {
    RegionTree::new(
        regions
            .into_iter()
            .map(|r| (r.code, r.level, r.parent_code)),
    )
}

pub(crate) fn region_model(r: &RegionRecord) -> region::ActiveModel {
    region::ActiveModel {
        code: Set(r.code.clone()),
        name: Set(r.name.clone()),
        name_en: Set(r.name_en.clone()),
        level: Set(r.level.as_str().to_string()),
        parent_code: Set(r.parent_code.clone()),
    }
}

pub(crate) fn enterprise_record(e: enterprise::Model) -> EnterpriseRecord {
    EnterpriseRecord {
        credit_code: e.credit_code,
        name: e.name,
        zone_id: e.zone_id,
        industry_code: e.industry_code,
        above_scale: e.above_scale,
    }
}

pub(crate) fn enterprise_model(e: &EnterpriseRecord) -> enterprise::ActiveModel {
    enterprise::ActiveModel {
        credit_code: Set(e.credit_code.clone()),
        name: Set(e.name.clone()),
        zone_id: Set(e.zone_id.clone()),
        industry_code: Set(e.industry_code.clone()),
        above_scale: Set(e.above_scale),
    }
}

pub(crate) fn cluster_record(c: cluster::Model) -> ClusterRecord {
    ClusterRecord {
        id: c.id,
        name: c.name,
        region_code: c.region_code,
        zone_id: c.zone_id,
        industry: c.industry,
    }
}

pub(crate) fn cluster_model(c: &ClusterRecord) -> cluster::ActiveModel {
    cluster::ActiveModel {
        id: Set(c.id.clone()),
        name: Set(c.name.clone()),
        region_code: Set(c.region_code.clone()),
        zone_id: Set(c.zone_id.clone()),
        industry: Set(c.industry.clone()),
    }
}

/// A stored name read back as its domain value; one that does not parse is corrupt.
pub(crate) fn stored_name<T>(
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
    owner: &str,
    text: &str,
) -> Result<T, StorageError> {
    parse(text).ok_or_else(|| StorageError::Corrupt(format!("{owner} has {what} {text:?}")))
}

pub(crate) fn project_record(p: project::Model) -> Result<ProjectRecord, StorageError> {
    Ok(ProjectRecord {
        status: stored_name(
            |s| ProjectStatus::parse(s).ok(),
            "status",
            &format!("project {}", p.id),
            &p.status,
        )?,
        period: if p.period.is_empty() {
            None
        } else {
            Some(stored_name(
                |s| Period::parse(s).ok(),
                "period",
                &format!("project {}", p.id),
                &p.period,
            )?)
        },
        id: p.id,
        name: p.name,
        zone_id: p.zone_id,
        planned_investment: p.planned_investment,
        completed_investment: p.completed_investment,
    })
}

pub(crate) fn project_model(p: &ProjectRecord) -> project::ActiveModel {
    project::ActiveModel {
        id: Set(p.id.clone()),
        name: Set(p.name.clone()),
        zone_id: Set(p.zone_id.clone()),
        status: Set(p.status.as_str().to_string()),
        planned_investment: Set(p.planned_investment),
        period: Set(p.period.map(|p| p.canonical()).unwrap_or_default()),
        completed_investment: Set(p.completed_investment),
    }
}

pub(crate) fn target_record(t: target::Model) -> Result<TargetRecord, StorageError> {
    Ok(TargetRecord {
        comparator: stored_name(
            Comparator::parse,
            "comparator",
            &format!("target of {}", t.entity_id),
            &t.comparator,
        )?,
        entity_kind: EntityKind::parse(&t.entity_kind).map_err(|_| {
            StorageError::Corrupt(format!(
                "target of {} has kind {:?}",
                t.entity_id, t.entity_kind
            ))
        })?,
        entity_id: t.entity_id,
        metric: t.metric,
        period: t.period,
        value: t.value,
        unit: t.unit,
        note: t.note,
    })
}

pub(crate) fn target_model(t: &TargetRecord) -> target::ActiveModel {
    target::ActiveModel {
        entity_kind: Set(t.entity_kind.as_str().to_string()),
        entity_id: Set(t.entity_id.clone()),
        metric: Set(t.metric.clone()),
        period: Set(t.period.clone()),
        comparator: Set(t.comparator.as_str().to_string()),
        value: Set(t.value),
        unit: Set(t.unit.clone()),
        note: Set(t.note.clone()),
    }
}

/// A catalog row and its built-in flag.
pub(crate) fn indicator_entry(r: indicator::Model) -> Result<(Indicator, bool), StorageError> {
    let corrupt =
        |what: &str| StorageError::Corrupt(format!("indicator {} has a bad {what}", r.code));
    Ok((
        Indicator {
            unit: Unit::parse(&r.unit).map_err(|_| corrupt("unit"))?,
            kind: IndicatorKind::parse(&r.kind).map_err(|_| corrupt("kind"))?,
            direction: Direction::parse(&r.direction).map_err(|_| corrupt("direction"))?,
            code: r.code.clone(),
            name_zh: r.name_zh.clone(),
            name_en: r.name_en.clone(),
        },
        r.builtin,
    ))
}

/// The rows of `E` whose `column` is one of `keys`, in chunks under the bind limit.
pub(crate) async fn rows_with_keys<E, C>(
    db: &C,
    column: E::Column,
    keys: &[String],
) -> Result<Vec<E::Model>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(rows_per_statement(1)) {
        rows.extend(
            E::find()
                .filter(column.is_in(chunk.iter().cloned()))
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

/// Every region, ordered by code.
pub(crate) async fn regions_in<C: ConnectionTrait>(
    db: &C,
) -> Result<Vec<RegionRecord>, StorageError> {
    region::Entity::find()
        .order_by_asc(region::Column::Code)
        .all(db)
        .await?
        .into_iter()
        .map(region_record)
        .collect()
}

/// The zones with these ids, ordered by id, each with its tags (in byte order).
pub(crate) async fn zones_in<C: ConnectionTrait>(
    db: &C,
    ids: &[String],
) -> Result<Vec<ZoneRecord>, StorageError> {
    let mut rows = rows_with_keys::<zone::Entity, _>(db, zone::Column::Id, ids).await?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    zones_with_tags(db, rows).await
}

async fn zones_with_tags<C: ConnectionTrait>(
    db: &C,
    rows: Vec<zone::Model>,
) -> Result<Vec<ZoneRecord>, StorageError> {
    let ids: Vec<String> = rows.iter().map(|z| z.id.clone()).collect();
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    for t in rows_with_keys::<zone_tag::Entity, _>(db, zone_tag::Column::ZoneId, &ids).await? {
        tags.entry(t.zone_id).or_default().push(t.tag);
    }
    rows.into_iter()
        .map(|z| {
            let owner = format!("zone {}", z.id);
            Ok(ZoneRecord {
                // Byte order, whatever the database collation: records compare equal when their
                // tag sets are.
                tags: tags
                    .remove(&z.id)
                    .map(|mut t| {
                        t.sort();
                        t
                    })
                    .unwrap_or_default(),
                leading_industries: stored_name(
                    |s| serde_json::from_str(s).ok(),
                    "leading industries",
                    &owner,
                    &z.leading_industries,
                )?,
                kind: stored_name(|s| ZoneKind::parse(s).ok(), "kind", &owner, &z.kind)?,
                id: z.id,
                name: z.name,
                region_code: z.region_code,
            })
        })
        .collect()
}

/// Which of `ids` exist as entities of `kind`.
pub(crate) async fn existing_in<C: ConnectionTrait>(
    db: &C,
    kind: EntityKind,
    ids: &[String],
) -> Result<HashSet<String>, StorageError> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(rows_per_statement(1)) {
        let chunk = chunk.iter().cloned();
        let rows: Vec<String> = match kind {
            EntityKind::Region => {
                key_column(region::Entity, region::Column::Code, chunk, db).await?
            }
            EntityKind::Zone => key_column(zone::Entity, zone::Column::Id, chunk, db).await?,
            EntityKind::Enterprise => {
                key_column(
                    enterprise::Entity,
                    enterprise::Column::CreditCode,
                    chunk,
                    db,
                )
                .await?
            }
            EntityKind::Cluster => {
                key_column(cluster::Entity, cluster::Column::Id, chunk, db).await?
            }
            EntityKind::Project => {
                key_column(project::Entity, project::Column::Id, chunk, db).await?
            }
        };
        found.extend(rows);
    }
    Ok(found)
}

/// The whole catalog, ordered by code, each with its built-in flag.
pub(crate) async fn indicators_in<C: ConnectionTrait>(
    db: &C,
) -> Result<Vec<(Indicator, bool)>, StorageError> {
    indicator::Entity::find()
        .order_by_asc(indicator::Column::Code)
        .all(db)
        .await?
        .into_iter()
        .map(indicator_entry)
        .collect()
}

impl Store {
    /// Every region, ordered by code.
    pub async fn regions(&self) -> Result<Vec<RegionRecord>, StorageError> {
        regions_in(&self.db).await
    }

    /// The region tree of every stored region.
    pub async fn region_tree(&self) -> Result<RegionTree, StorageError> {
        Ok(region_tree_of(self.regions().await?))
    }

    /// The codes of `root` and every region under it.
    pub async fn region_subtree(&self, root: &str) -> Result<BTreeSet<String>, StorageError> {
        Ok(self.region_tree().await?.subtree(root))
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
        let rows = query.limit(limit + 1).all(&self.db).await?;
        let page = Page::of(rows, limit, |z| z.id.clone());
        Ok(Page {
            items: zones_with_tags(&self.db, page.items).await?,
            next_after: page.next_after,
        })
    }

    /// The zones with these ids (unknown ids are skipped).
    pub async fn zones_by_id(&self, ids: &[String]) -> Result<Vec<ZoneRecord>, StorageError> {
        zones_in(&self.db, ids).await
    }

    /// The enterprises with these credit codes (unknown codes are skipped).
    pub async fn enterprises_by_code(
        &self,
        codes: &[String],
    ) -> Result<Vec<EnterpriseRecord>, StorageError> {
        Ok(
            rows_with_keys::<enterprise::Entity, _>(
                &self.db,
                enterprise::Column::CreditCode,
                codes,
            )
            .await?
            .into_iter()
            .map(enterprise_record)
            .collect(),
        )
    }

    /// One page of enterprises ordered by credit code, after the code `after`.
    pub async fn list_enterprises(
        &self,
        filter: &EnterpriseFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<EnterpriseRecord>, StorageError> {
        let mut query = enterprise::Entity::find().order_by_asc(enterprise::Column::CreditCode);
        if let Some(zone_id) = &filter.zone_id {
            query = query.filter(enterprise::Column::ZoneId.eq(zone_id.as_str()));
        }
        if let Some(root) = &filter.region_code {
            let subtree = self.region_subtree(root).await?;
            let zones_in_subtree = Query::select()
                .column(zone::Column::Id)
                .from(zone::Entity)
                .and_where(zone::Column::RegionCode.is_in(subtree))
                .to_owned();
            query = query.filter(enterprise::Column::ZoneId.in_subquery(zones_in_subtree));
        }
        if let Some(prefix) = &filter.industry_prefix {
            if !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                // A LIKE pattern must not carry wildcards of its own.
                return Ok(Page {
                    items: Vec::new(),
                    next_after: None,
                });
            }
            query = query.filter(enterprise::Column::IndustryCode.starts_with(prefix.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(enterprise::Column::CreditCode.gt(after));
        }
        let rows = query.limit(limit + 1).all(&self.db).await?;
        let page = Page::of(rows, limit, |e| e.credit_code.clone());
        Ok(Page {
            items: page.items.into_iter().map(enterprise_record).collect(),
            next_after: page.next_after,
        })
    }

    /// The region each of `ids` (entities of `kind`) lies in; unknown ids are absent.
    pub async fn entity_regions(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StorageError> {
        regions_of_in(&self.db, kind, ids).await
    }

    /// Which of `ids` exist as entities of `kind`.
    pub async fn existing_entities(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<HashSet<String>, StorageError> {
        existing_in(&self.db, kind, ids).await
    }

    /// The whole catalog, ordered by code, each with its built-in flag.
    pub async fn indicators(&self) -> Result<Vec<(Indicator, bool)>, StorageError> {
        indicators_in(&self.db).await
    }

    /// The stored catalog, the one every reader of indicators looks codes up in.
    pub async fn catalog(&self) -> Result<Catalog, StorageError> {
        Ok(Catalog::new(indicators_in(&self.db).await?))
    }

    /// The targets of one entity, optionally of one period, ordered by period then metric.
    pub async fn targets(
        &self,
        kind: EntityKind,
        entity_id: &str,
        period: Option<&str>,
    ) -> Result<Vec<TargetRecord>, StorageError> {
        Ok(self
            .targets_page(kind, entity_id, period, None, None)
            .await?
            .items)
    }

    /// One page of an entity's targets ordered by (period, metric), after the key `after`.
    pub async fn targets_page(
        &self,
        kind: EntityKind,
        entity_id: &str,
        period: Option<&str>,
        after: Option<&(String, String)>,
        limit: Option<u64>,
    ) -> Result<Page<TargetRecord, (String, String)>, StorageError> {
        let mut query = target::Entity::find()
            .filter(target::Column::EntityKind.eq(kind.as_str()))
            .filter(target::Column::EntityId.eq(entity_id))
            .order_by_asc(target::Column::Period)
            .order_by_asc(target::Column::Metric);
        if let Some(period) = period {
            query = query.filter(target::Column::Period.eq(period));
        }
        if let Some((period, metric)) = after {
            query = query.filter(
                Expr::tuple([
                    Expr::col(target::Column::Period),
                    Expr::col(target::Column::Metric),
                ])
                .gt(Expr::tuple([
                    Expr::val(period.as_str()),
                    Expr::val(metric.as_str()),
                ])),
            );
        }
        if let Some(limit) = limit {
            query = query.limit(limit + 1);
        }
        let rows = query
            .all(&self.db)
            .await?
            .into_iter()
            .map(target_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::of(rows, limit.unwrap_or(u64::MAX), |t| {
            (t.period.clone(), t.metric.clone())
        }))
    }

    /// Runs `write` in a transaction of its own and commits it.
    async fn committed<T>(
        &self,
        write: impl AsyncFnOnce(&mut Writes) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut writes = self.begin_writes().await?;
        let done = write(&mut writes).await?;
        writes.finish(false).await?;
        Ok(done)
    }

    /// Creates or replaces regions by code, in a transaction of its own.
    pub async fn upsert_regions(
        &self,
        rows: &[RegionRecord],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_regions(rows).await).await
    }

    /// Creates or replaces zones by id, their tags with them, in a transaction of its own.
    pub async fn upsert_zones(&self, rows: &[ZoneRecord]) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_zones(rows).await).await
    }

    /// Creates or replaces enterprises by credit code, in a transaction of its own.
    pub async fn upsert_enterprises(
        &self,
        rows: &[EnterpriseRecord],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_enterprises(rows).await)
            .await
    }

    /// Creates or replaces clusters by id, in a transaction of its own.
    pub async fn upsert_clusters(
        &self,
        rows: &[ClusterRecord],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_clusters(rows).await).await
    }

    /// Creates or replaces projects by id, in a transaction of its own.
    pub async fn upsert_projects(
        &self,
        rows: &[ProjectRecord],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_projects(rows).await).await
    }

    /// Adds indicators to the catalog or replaces user-defined ones, in a transaction of its
    /// own; built-ins are never replaced.
    pub async fn upsert_indicators(
        &self,
        rows: &[Indicator],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_indicators(rows).await).await
    }

    /// Creates or replaces targets by (entity, metric, period), in a transaction of its own.
    pub async fn upsert_targets(
        &self,
        rows: &[TargetRecord],
    ) -> Result<UpsertCounts, StorageError> {
        self.committed(async |w| w.put_targets(rows).await).await
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

/// `(key, other)` of the rows of `E` whose `key` is one of `ids`, where `other` is set.
async fn key_pairs<E, C>(
    key: E::Column,
    other: E::Column,
    ids: &[String],
    db: &C,
) -> Result<Vec<(String, String)>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut pairs = Vec::new();
    for chunk in ids.chunks(rows_per_statement(1)) {
        let rows: Vec<(String, Option<String>)> = E::find()
            .select_only()
            .column(key)
            .column(other)
            .filter(key.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        pairs.extend(rows.into_iter().filter_map(|(k, o)| Some((k, o?))));
    }
    Ok(pairs)
}

/// The region each of `ids` (entities of `kind`) lies in: a region itself, a zone's or a
/// cluster's region, an enterprise's or a project's through its zone. Ids that do not exist,
/// or have no zone, are absent.
pub(crate) async fn regions_of_in<C: ConnectionTrait>(
    db: &C,
    kind: EntityKind,
    ids: &[String],
) -> Result<HashMap<String, String>, StorageError> {
    let through_zone = |pairs: Vec<(String, String)>| async move {
        let mut zones: Vec<String> = pairs.iter().map(|(_, z)| z.clone()).collect();
        zones.sort();
        zones.dedup();
        let zone_regions: HashMap<String, String> =
            key_pairs::<zone::Entity, _>(zone::Column::Id, zone::Column::RegionCode, &zones, db)
                .await?
                .into_iter()
                .collect();
        Ok::<_, StorageError>(
            pairs
                .into_iter()
                .filter_map(|(id, z)| Some((id, zone_regions.get(&z)?.clone())))
                .collect(),
        )
    };
    Ok(match kind {
        EntityKind::Region => existing_in(db, kind, ids)
            .await?
            .into_iter()
            .map(|c| (c.clone(), c))
            .collect(),
        EntityKind::Zone => {
            key_pairs::<zone::Entity, _>(zone::Column::Id, zone::Column::RegionCode, ids, db)
                .await?
                .into_iter()
                .collect()
        }
        EntityKind::Cluster => key_pairs::<cluster::Entity, _>(
            cluster::Column::Id,
            cluster::Column::RegionCode,
            ids,
            db,
        )
        .await?
        .into_iter()
        .collect(),
        EntityKind::Enterprise => {
            through_zone(
                key_pairs::<enterprise::Entity, _>(
                    enterprise::Column::CreditCode,
                    enterprise::Column::ZoneId,
                    ids,
                    db,
                )
                .await?,
            )
            .await?
        }
        EntityKind::Project => {
            through_zone(
                key_pairs::<project::Entity, _>(
                    project::Column::Id,
                    project::Column::ZoneId,
                    ids,
                    db,
                )
                .await?,
            )
            .await?
        }
    })
}
