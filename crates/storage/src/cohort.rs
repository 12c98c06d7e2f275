//! Cohorts: the entities a computation is about, each with its parent (the whole its shares are
//! taken of) and its groups, read with a few set-based queries.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use zonerank_domain::entity::EntityKind;

use crate::{
    StorageError, Store, ZoneFilter,
    entity::{cluster, enterprise, project, region, zone, zone_tag},
    reference::rows_per_statement,
};

/// Which entities a computation covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CohortQuery {
    pub kind: Option<EntityKind>,
    /// Entities inside this region's subtree.
    pub region_code: Option<String>,
    /// Zones of this kind.
    pub zone_kind: Option<zonerank_domain::entity::ZoneKind>,
    /// Zones carrying every one of these tags.
    pub tags: Vec<String>,
    /// Exactly these ids (other filters still apply).
    pub ids: Vec<String>,
}

/// One entity of a cohort.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortMember {
    pub kind: EntityKind,
    pub id: String,
    pub name: String,
    /// The entity whose figure is "the whole" for shares: a zone's region, a region's parent,
    /// an enterprise's or project's zone, a cluster's region.
    pub parent: Option<(EntityKind, String)>,
    /// The region the entity lies in (itself for a region).
    pub region_code: Option<String>,
    /// Group tags (zones).
    pub tags: Vec<String>,
}

/// A name a cohort query gives that the store does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnknownName {
    /// The region the cohort lies in.
    Region(String),
    /// One of the cohort's ids, of the cohort's kind.
    Entity(EntityKind, String),
}

impl Store {
    /// The members of a cohort, ordered by id; or the first name the query gives that does not
    /// exist: its region, else the first of its ids unknown for its kind (an id that exists
    /// but falls outside the other filters is simply not a member).
    pub async fn cohort(
        &self,
        query: &CohortQuery,
    ) -> Result<Result<Vec<CohortMember>, UnknownName>, StorageError> {
        let kind = query.kind.unwrap_or(EntityKind::Zone);
        if let Some(root) = &query.region_code
            && region::Entity::find_by_id(root.clone())
                .one(&self.db)
                .await?
                .is_none()
        {
            return Ok(Err(UnknownName::Region(root.clone())));
        }
        let members = self.members(kind, query).await?;
        if query.ids.is_empty() {
            return Ok(Ok(members));
        }
        let found: BTreeSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let absent: Vec<String> = query
            .ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .cloned()
            .collect();
        if absent.is_empty() {
            return Ok(Ok(members));
        }
        let existing = self.existing_ids(kind, &absent).await?;
        Ok(match absent.into_iter().find(|id| !existing.contains(id)) {
            Some(id) => Err(UnknownName::Entity(kind, id)),
            None => Ok(members),
        })
    }

    /// Which of `ids` exist as entities of `kind`.
    async fn existing_ids(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<BTreeSet<String>, StorageError> {
        let mut existing = BTreeSet::new();
        for chunk in ids.chunks(rows_per_statement(1)) {
            let chunk = chunk.to_vec();
            let found: Vec<String> = match kind {
                EntityKind::Region => {
                    region::Entity::find()
                        .select_only()
                        .column(region::Column::Code)
                        .filter(region::Column::Code.is_in(chunk))
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
                EntityKind::Zone => {
                    zone::Entity::find()
                        .select_only()
                        .column(zone::Column::Id)
                        .filter(zone::Column::Id.is_in(chunk))
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
                EntityKind::Enterprise => {
                    enterprise::Entity::find()
                        .select_only()
                        .column(enterprise::Column::CreditCode)
                        .filter(enterprise::Column::CreditCode.is_in(chunk))
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
                EntityKind::Cluster => {
                    cluster::Entity::find()
                        .select_only()
                        .column(cluster::Column::Id)
                        .filter(cluster::Column::Id.is_in(chunk))
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
                EntityKind::Project => {
                    project::Entity::find()
                        .select_only()
                        .column(project::Column::Id)
                        .filter(project::Column::Id.is_in(chunk))
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
            };
            existing.extend(found);
        }
        Ok(existing)
    }

    async fn members(
        &self,
        kind: EntityKind,
        query: &CohortQuery,
    ) -> Result<Vec<CohortMember>, StorageError> {
        let subtree = match &query.region_code {
            Some(root) => Some(self.region_subtree(root).await?),
            None => None,
        };
        let in_subtree = |code: &str| {
            subtree
                .as_ref()
                .is_none_or(|s: &BTreeSet<String>| s.contains(code))
        };
        let wanted = |id: &str| query.ids.is_empty() || query.ids.iter().any(|i| i == id);
        let mut members = match kind {
            EntityKind::Region => region::Entity::find()
                .order_by_asc(region::Column::Code)
                .all(&self.db)
                .await?
                .into_iter()
                .filter(|r| in_subtree(&r.code) && wanted(&r.code))
                .map(|r| CohortMember {
                    kind,
                    parent: r.parent_code.map(|p| (EntityKind::Region, p)),
                    region_code: Some(r.code.clone()),
                    id: r.code,
                    name: r.name,
                    tags: Vec::new(),
                })
                .collect(),
            EntityKind::Zone => {
                let filter = ZoneFilter {
                    region_code: query.region_code.clone(),
                    kind: query.zone_kind,
                    tags: query.tags.clone(),
                };
                let mut members = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = self.list_zones(&filter, after.as_deref(), 10_000).await?;
                    members.extend(page.items.into_iter().filter(|z| wanted(&z.id)).map(|z| {
                        CohortMember {
                            kind,
                            parent: Some((EntityKind::Region, z.region_code.clone())),
                            region_code: Some(z.region_code),
                            id: z.id,
                            name: z.name,
                            tags: z.tags,
                        }
                    }));
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                members
            }
            EntityKind::Enterprise => {
                let zones = self.zone_regions().await?;
                let mut select =
                    enterprise::Entity::find().order_by_asc(enterprise::Column::CreditCode);
                if !query.ids.is_empty() && query.ids.len() <= rows_per_statement(1) {
                    select = select.filter(enterprise::Column::CreditCode.is_in(query.ids.clone()));
                }
                select
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .filter(|e| wanted(&e.credit_code))
                    .filter_map(|e| {
                        let region = e.zone_id.as_ref().and_then(|z| zones.get(z)).cloned();
                        if subtree.is_some() && !region.as_deref().is_some_and(in_subtree) {
                            return None;
                        }
                        Some(CohortMember {
                            kind,
                            parent: e.zone_id.map(|z| (EntityKind::Zone, z)),
                            region_code: region,
                            id: e.credit_code,
                            name: e.name,
                            tags: Vec::new(),
                        })
                    })
                    .collect()
            }
            EntityKind::Cluster => cluster::Entity::find()
                .order_by_asc(cluster::Column::Id)
                .all(&self.db)
                .await?
                .into_iter()
                .filter(|c| in_subtree(&c.region_code) && wanted(&c.id))
                .map(|c| CohortMember {
                    kind,
                    parent: Some((EntityKind::Region, c.region_code.clone())),
                    region_code: Some(c.region_code),
                    id: c.id,
                    name: c.name,
                    tags: Vec::new(),
                })
                .collect(),
            EntityKind::Project => {
                let zones = self.zone_regions().await?;
                project::Entity::find()
                    .order_by_asc(project::Column::Id)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .filter(|p| wanted(&p.id))
                    .filter_map(|p| {
                        let region = zones.get(&p.zone_id).cloned();
                        if subtree.is_some() && !region.as_deref().is_some_and(in_subtree) {
                            return None;
                        }
                        Some(CohortMember {
                            kind,
                            parent: Some((EntityKind::Zone, p.zone_id)),
                            region_code: region,
                            id: p.id,
                            name: p.name,
                            tags: Vec::new(),
                        })
                    })
                    .collect()
            }
        };
        members.sort_by(|a: &CohortMember, b| a.id.cmp(&b.id));
        Ok(members)
    }

    /// Every zone's region.
    pub async fn zone_regions(&self) -> Result<HashMap<String, String>, StorageError> {
        Ok(zone::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|z| (z.id, z.region_code))
            .collect())
    }

    /// Every zone's tags.
    pub async fn zone_tags(&self) -> Result<HashMap<String, Vec<String>>, StorageError> {
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for t in zone_tag::Entity::find().all(&self.db).await? {
            tags.entry(t.zone_id).or_default().push(t.tag);
        }
        Ok(tags)
    }
}
