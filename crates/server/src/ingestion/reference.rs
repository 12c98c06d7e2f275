//! Checking and storing reference data: every fault of a request is reported at once, with the
//! field path of the item at fault, and a request with any fault writes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};

use zonerank_api::{
    convert::{WireEnum, WireEnumError, enum_value},
    prost_types::FieldMask,
    v1,
};
use zonerank_domain::{
    catalog::{Indicator, builtin_indicator},
    entity::{EntityKind, ProjectStatus, ZoneKind, validate_id},
    metric::{Comparator, parse_metric},
    period::Period,
    region::RegionTree,
    unit::{Dimension, convert_to},
};
use zonerank_storage::{
    ClusterRecord, EnterpriseFilter, EnterpriseRecord, ProjectRecord, RegionRecord, Store,
    TargetRecord, UpsertCounts, Writes, ZoneFilter, ZoneRecord,
};

use crate::paging::{decode_page_token, encode_page_token, page_size};
use crate::{
    audit::record_write,
    auth::{Caller, Scope},
    convert::{self, item_field},
    error::{ServiceError, Violation},
    ingestion::mask::Mask,
};

/// Collects the faults of one request.
#[derive(Default)]
struct Faults(Vec<Violation>);

impl Faults {
    fn add(&mut self, field: String, reason: impl ToString) {
        self.0.push(Violation::new(field, reason));
    }

    /// The domain value of the wire enum number in `field`, or a fault recorded.
    fn wire_enum<W: WireEnum, D: TryFrom<W, Error = WireEnumError>>(
        &mut self,
        field: String,
        value: i32,
    ) -> Option<D> {
        enum_value::<W, D>(value)
            .map_err(|e| self.add(field, e))
            .ok()
    }

    /// The id normalized, or a fault recorded.
    fn id(&mut self, field: String, kind: EntityKind, id: &str) -> String {
        validate_id(kind, id).unwrap_or_else(|e| {
            self.add(field, e);
            String::new()
        })
    }

    fn name(&mut self, field: String, name: &str) {
        if name.trim().is_empty() {
            self.add(field, "must not be empty");
        }
    }

    /// Records a fault for each id seen before in this request.
    fn unique(&mut self, items: impl Iterator<Item = (String, String)>) {
        let mut seen = HashSet::new();
        for (field, id) in items {
            if !id.is_empty() && !seen.insert(id.clone()) {
                self.add(field, format!("{id:?} appears twice in this request"));
            }
        }
    }

    /// Records a fault for each reference to an entity that neither the store nor this request has.
    async fn exist(
        &mut self,
        store: &Writes,
        kind: EntityKind,
        refs: Vec<(String, String)>,
        in_request: &HashSet<String>,
    ) -> Result<(), ServiceError> {
        let ids: Vec<String> = refs
            .iter()
            .map(|(_, id)| id.clone())
            .filter(|id| !id.is_empty() && !in_request.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let known = store.existing_entities(kind, &ids).await?;
        for (field, id) in refs {
            if !id.is_empty() && !in_request.contains(&id) && !known.contains(&id) {
                self.add(
                    field,
                    format!("unknown {} {id:?}", kind.as_str().to_lowercase()),
                );
            }
        }
        Ok(())
    }

    fn finish(self, what: &str, total: usize) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ServiceError::InvalidArgument {
            message: format!(
                "{} fault(s) in {total} {what}, nothing written; first: {}: {}",
                self.0.len(),
                self.0[0].field,
                self.0[0].reason
            ),
            violations: self.0,
        })
    }
}

/// The fields of a region an update mask may name, besides its key `code`.
const REGION_FIELDS: [&str; 4] = ["name", "name_en", "level", "parent_code"];

fn merge_region(mask: &Mask, sent: v1::Region, stored: v1::Region) -> v1::Region {
    v1::Region {
        code: sent.code,
        name: mask.pick("name", sent.name, stored.name),
        name_en: mask.pick("name_en", sent.name_en, stored.name_en),
        level: mask.pick("level", sent.level, stored.level),
        parent_code: mask.pick("parent_code", sent.parent_code, stored.parent_code),
    }
}

/// Each sent item merged into its stored record, when there is one (looked up by its key as
/// normalized; an invalid key finds nothing and is reported by the checks).
fn merged<W, R: Clone>(
    sent: Vec<W>,
    kind: EntityKind,
    key: impl Fn(&W) -> &str,
    stored: &HashMap<String, R>,
    merge: impl Fn(W, R) -> W,
) -> Vec<W> {
    sent.into_iter()
        .map(|item| {
            let found = validate_id(kind, key(&item))
                .ok()
                .and_then(|k| stored.get(&k).cloned());
            match found {
                Some(record) => merge(item, record),
                None => item,
            }
        })
        .collect()
}

/// Checks regions merged into the stored ones and writes them (or, on a dry run, only counts).
pub async fn upsert_regions(
    store: &Store,
    caller: &Caller,
    regions: Vec<v1::Region>,
    update_mask: Option<&FieldMask>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mask = Mask::parse(update_mask, "code", &REGION_FIELDS)?;
    let mut writes = store.begin_writes().await?;
    let stored: HashMap<String, RegionRecord> = writes
        .regions()
        .await?
        .into_iter()
        .map(|r| (r.code.clone(), r))
        .collect();
    let regions = merged(
        regions,
        EntityKind::Region,
        |r| &r.code,
        &stored,
        |r, s| merge_region(&mask, r, region_to_wire(s)),
    );
    let mut faults = Faults::default();
    let mut records = Vec::with_capacity(regions.len());
    // Each record's index in the request: a rejected item leaves no record, so fields name
    // the request's index, not the record's.
    let mut origin = Vec::with_capacity(regions.len());
    for (i, r) in regions.iter().enumerate() {
        let code = faults.id(
            item_field("regions", i, "code"),
            EntityKind::Region,
            &r.code,
        );
        faults.name(item_field("regions", i, "name"), &r.name);
        let level = convert::region_level(r.level);
        if level.is_none() {
            faults.add(
                item_field("regions", i, "level"),
                "must be PROVINCE, CITY or COUNTY",
            );
        }
        let parent = (!r.parent_code.trim().is_empty()).then(|| {
            faults.id(
                item_field("regions", i, "parent_code"),
                EntityKind::Region,
                &r.parent_code,
            )
        });
        if parent.as_deref() == Some(code.as_str()) && !code.is_empty() {
            faults.add(
                item_field("regions", i, "parent_code"),
                "a region cannot be its own parent",
            );
        }
        if let Some(level) = level {
            origin.push(i);
            records.push(RegionRecord {
                code,
                name: r.name.trim().to_string(),
                name_en: r.name_en.trim().to_string(),
                level,
                parent_code: parent,
            });
        }
    }
    faults.unique(
        records
            .iter()
            .zip(&origin)
            .map(|(r, i)| (item_field("regions", *i, "code"), r.code.clone())),
    );
    let in_request: HashSet<String> = records.iter().map(|r| r.code.clone()).collect();
    let parents = records
        .iter()
        .zip(&origin)
        .filter_map(|(r, i)| {
            r.parent_code
                .clone()
                .map(|p| (item_field("regions", *i, "parent_code"), p))
        })
        .collect();
    faults
        .exist(&writes, EntityKind::Region, parents, &in_request)
        .await?;
    // The tree as the write would leave it. A parent chain must end at a root: a cycle would
    // send every walk up the tree round for ever (group ranks, tier counts, zone totals).
    let mut tree = RegionTree::new(
        stored
            .into_values()
            .map(|r| (r.code, r.level, r.parent_code)),
    );
    tree.upsert(
        records
            .iter()
            .map(|r| (r.code.clone(), r.level, r.parent_code.clone())),
    );
    for (r, i) in records.iter().zip(&origin) {
        if let Some(code) = tree.cycle_at(&r.code) {
            faults.add(
                item_field("regions", *i, "parent_code"),
                format!(
                    "{} under {} would make the region tree a cycle through {code}",
                    r.code,
                    r.parent_code.as_deref().unwrap_or_default()
                ),
            );
        } else if let Err(e) = tree.check_parent(&r.code) {
            faults.add(item_field("regions", *i, "parent_code"), e);
        } else if let Some(child) = tree
            .children(&r.code)
            .iter()
            .find(|c| tree.check_parent(c).is_err())
        {
            // A changed level must still sit above the regions stored under it.
            let e = tree.check_parent(child).unwrap_err();
            faults.add(item_field("regions", *i, "level"), format!("{child}: {e}"));
        }
    }
    faults.finish("regions", regions.len())?;
    let counts = writes.put_regions(&records).await?;
    let entities = records.iter().map(|r| (EntityKind::Region, r.code.clone()));
    record_write(&mut writes, caller, "UpsertRegions", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// The fields of a zone an update mask may name, besides its key `id`.
const ZONE_FIELDS: [&str; 5] = ["name", "region_code", "kind", "tags", "leading_industries"];

fn merge_zone(mask: &Mask, sent: v1::Zone, stored: v1::Zone) -> v1::Zone {
    v1::Zone {
        id: sent.id,
        name: mask.pick("name", sent.name, stored.name),
        region_code: mask.pick("region_code", sent.region_code, stored.region_code),
        kind: mask.pick("kind", sent.kind, stored.kind),
        tags: mask.pick("tags", sent.tags, stored.tags),
        leading_industries: mask.pick(
            "leading_industries",
            sent.leading_industries,
            stored.leading_industries,
        ),
    }
}

/// The valid, normalized keys of the sent items.
fn keys<W>(sent: &[W], kind: EntityKind, key: impl Fn(&W) -> &str) -> Vec<String> {
    sent.iter()
        .filter_map(|item| validate_id(kind, key(item)).ok())
        .collect()
}

/// Checks zones merged into the stored ones and writes them (or, on a dry run, only counts).
pub async fn upsert_zones(
    store: &Store,
    caller: &Caller,
    zones: Vec<v1::Zone>,
    update_mask: Option<&FieldMask>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mask = Mask::parse(update_mask, "id", &ZONE_FIELDS)?;
    let mut writes = store.begin_writes().await?;
    let stored: HashMap<String, ZoneRecord> = writes
        .zones_by_id(&keys(&zones, EntityKind::Zone, |z| &z.id))
        .await?
        .into_iter()
        .map(|z| (z.id.clone(), z))
        .collect();
    let zones = merged(
        zones,
        EntityKind::Zone,
        |z| &z.id,
        &stored,
        |z, s| merge_zone(&mask, z, zone_to_wire(s)),
    );
    let mut faults = Faults::default();
    let mut records = Vec::with_capacity(zones.len());
    for (i, z) in zones.iter().enumerate() {
        let id = faults.id(item_field("zones", i, "id"), EntityKind::Zone, &z.id);
        faults.name(item_field("zones", i, "name"), &z.name);
        let region_code = faults.id(
            item_field("zones", i, "region_code"),
            EntityKind::Region,
            &z.region_code,
        );
        let kind = faults.wire_enum::<v1::ZoneKind, _>(item_field("zones", i, "kind"), z.kind);
        for (t, tag) in z.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.len() > 128 {
                faults.add(
                    format!("zones[{i}].tags[{t}]"),
                    "a tag is 1–128 bytes of text",
                );
            }
        }
        records.push(ZoneRecord {
            id,
            name: z.name.trim().to_string(),
            region_code,
            // A fault already refuses the request when the kind is missing.
            kind: kind.unwrap_or(ZoneKind::AgglomerationZone),
            tags: z.tags.iter().map(|t| t.trim().to_string()).collect(),
            leading_industries: z.leading_industries.clone(),
        });
    }
    faults.unique(
        records
            .iter()
            .enumerate()
            .map(|(i, z)| (item_field("zones", i, "id"), z.id.clone())),
    );
    // Permission before existence: the scope is checked on what the request names, and a
    // stored zone it replaces must lie inside the scope too (no moving Zhengzhou's zone away).
    let scope = Scope::of(caller, &writes).await?;
    scope.regions(records.iter().enumerate().map(|(i, z)| {
        (
            item_field("zones", i, "region_code"),
            z.region_code.as_str(),
        )
    }))?;
    let replaced: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, z)| (item_field("zones", i, "id"), EntityKind::Zone, z.id.clone()))
        .collect();
    scope.entities(&writes, &replaced, false).await?;
    let regions = records
        .iter()
        .enumerate()
        .map(|(i, z)| (item_field("zones", i, "region_code"), z.region_code.clone()))
        .collect();
    faults
        .exist(&writes, EntityKind::Region, regions, &HashSet::new())
        .await?;
    faults.finish("zones", zones.len())?;
    let counts = writes.put_zones(&records).await?;
    let entities = records.iter().map(|r| (EntityKind::Zone, r.id.clone()));
    record_write(&mut writes, caller, "UpsertZones", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// The fields of an enterprise an update mask may name, besides its key `credit_code`.
const ENTERPRISE_FIELDS: [&str; 4] = ["name", "zone_id", "industry_code", "above_scale"];

fn merge_enterprise(mask: &Mask, sent: v1::Enterprise, stored: v1::Enterprise) -> v1::Enterprise {
    v1::Enterprise {
        credit_code: sent.credit_code,
        name: mask.pick("name", sent.name, stored.name),
        zone_id: mask.pick("zone_id", sent.zone_id, stored.zone_id),
        industry_code: mask.pick("industry_code", sent.industry_code, stored.industry_code),
        above_scale: mask.pick("above_scale", sent.above_scale, stored.above_scale),
    }
}

/// Checks enterprises merged into the stored ones and writes them (or, on a dry run, only
/// counts).
pub async fn upsert_enterprises(
    store: &Store,
    caller: &Caller,
    enterprises: Vec<v1::Enterprise>,
    update_mask: Option<&FieldMask>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mask = Mask::parse(update_mask, "credit_code", &ENTERPRISE_FIELDS)?;
    let mut writes = store.begin_writes().await?;
    let codes = keys(&enterprises, EntityKind::Enterprise, |e| &e.credit_code);
    let stored: HashMap<String, EnterpriseRecord> = writes
        .enterprises_by_code(&codes)
        .await?
        .into_iter()
        .map(|e| (e.credit_code.clone(), e))
        .collect();
    let enterprises = merged(
        enterprises,
        EntityKind::Enterprise,
        |e| &e.credit_code,
        &stored,
        |e, s| merge_enterprise(&mask, e, enterprise_to_wire(s)),
    );
    let mut faults = Faults::default();
    let mut records = Vec::with_capacity(enterprises.len());
    for (i, e) in enterprises.iter().enumerate() {
        let credit_code = faults.id(
            item_field("enterprises", i, "credit_code"),
            EntityKind::Enterprise,
            &e.credit_code,
        );
        faults.name(item_field("enterprises", i, "name"), &e.name);
        let zone_id = (!e.zone_id.trim().is_empty()).then(|| {
            faults.id(
                item_field("enterprises", i, "zone_id"),
                EntityKind::Zone,
                &e.zone_id,
            )
        });
        if e.industry_code.trim().chars().count() > 8 {
            faults.add(
                item_field("enterprises", i, "industry_code"),
                "a GB/T 4754 code of at most 8 characters, e.g. C3511",
            );
        }
        records.push(EnterpriseRecord {
            credit_code,
            name: e.name.trim().to_string(),
            zone_id,
            industry_code: e.industry_code.trim().to_string(),
            above_scale: e.above_scale,
        });
    }
    faults.unique(records.iter().enumerate().map(|(i, e)| {
        (
            item_field("enterprises", i, "credit_code"),
            e.credit_code.clone(),
        )
    }));
    // An enterprise lies where its zone does: the zone it is put in and, when it exists, the
    // zone it was in.
    let scope = Scope::of(caller, &writes).await?;
    for (i, e) in records.iter().enumerate() {
        scope.zoned(
            item_field("enterprises", i, "zone_id"),
            e.zone_id.as_deref(),
        )?;
    }
    let in_zones: Vec<_> = records
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let zone = e.zone_id.clone()?;
            Some((
                item_field("enterprises", i, "zone_id"),
                EntityKind::Zone,
                zone,
            ))
        })
        .collect();
    scope.entities(&writes, &in_zones, true).await?;
    let replaced: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                item_field("enterprises", i, "credit_code"),
                EntityKind::Enterprise,
                e.credit_code.clone(),
            )
        })
        .collect();
    scope.entities(&writes, &replaced, false).await?;
    let zones = records
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.zone_id
                .clone()
                .map(|z| (item_field("enterprises", i, "zone_id"), z))
        })
        .collect();
    faults
        .exist(&writes, EntityKind::Zone, zones, &HashSet::new())
        .await?;
    faults.finish("enterprises", enterprises.len())?;
    let counts = writes.put_enterprises(&records).await?;
    let entities = records
        .iter()
        .map(|r| (EntityKind::Enterprise, r.credit_code.clone()));
    record_write(&mut writes, caller, "UpsertEnterprises", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// Checks clusters and writes them whole (or, on a dry run, only counts).
pub async fn upsert_clusters(
    store: &Store,
    caller: &Caller,
    clusters: Vec<v1::Cluster>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mut writes = store.begin_writes().await?;
    let mut faults = Faults::default();
    let mut records = Vec::with_capacity(clusters.len());
    for (i, c) in clusters.iter().enumerate() {
        let id = faults.id(item_field("clusters", i, "id"), EntityKind::Cluster, &c.id);
        faults.name(item_field("clusters", i, "name"), &c.name);
        let region_code = faults.id(
            item_field("clusters", i, "region_code"),
            EntityKind::Region,
            &c.region_code,
        );
        let zone_id = (!c.zone_id.trim().is_empty()).then(|| {
            faults.id(
                item_field("clusters", i, "zone_id"),
                EntityKind::Zone,
                &c.zone_id,
            )
        });
        records.push(ClusterRecord {
            id,
            name: c.name.trim().to_string(),
            region_code,
            zone_id,
            industry: c.industry.trim().to_string(),
        });
    }
    faults.unique(
        records
            .iter()
            .enumerate()
            .map(|(i, c)| (item_field("clusters", i, "id"), c.id.clone())),
    );
    let scope = Scope::of(caller, &writes).await?;
    scope.regions(records.iter().enumerate().map(|(i, c)| {
        (
            item_field("clusters", i, "region_code"),
            c.region_code.as_str(),
        )
    }))?;
    let named: Vec<_> = records
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            let zone = c
                .zone_id
                .clone()
                .map(|z| (item_field("clusters", i, "zone_id"), EntityKind::Zone, z));
            let own = (
                item_field("clusters", i, "id"),
                EntityKind::Cluster,
                c.id.clone(),
            );
            zone.into_iter().chain([own])
        })
        .collect();
    let (zones_named, replaced): (Vec<_>, Vec<_>) = named
        .into_iter()
        .partition(|(_, kind, _)| *kind == EntityKind::Zone);
    scope.entities(&writes, &zones_named, true).await?;
    scope.entities(&writes, &replaced, false).await?;
    let regions = records
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                item_field("clusters", i, "region_code"),
                c.region_code.clone(),
            )
        })
        .collect();
    faults
        .exist(&writes, EntityKind::Region, regions, &HashSet::new())
        .await?;
    let zones = records
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.zone_id
                .clone()
                .map(|z| (item_field("clusters", i, "zone_id"), z))
        })
        .collect();
    faults
        .exist(&writes, EntityKind::Zone, zones, &HashSet::new())
        .await?;
    faults.finish("clusters", clusters.len())?;
    let counts = writes.put_clusters(&records).await?;
    let entities = records.iter().map(|r| (EntityKind::Cluster, r.id.clone()));
    record_write(&mut writes, caller, "UpsertClusters", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// Checks projects and writes them whole (or, on a dry run, only counts).
pub async fn upsert_projects(
    store: &Store,
    caller: &Caller,
    projects: Vec<v1::Project>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mut writes = store.begin_writes().await?;
    let mut faults = Faults::default();
    let mut records = Vec::with_capacity(projects.len());
    for (i, p) in projects.iter().enumerate() {
        let id = faults.id(item_field("projects", i, "id"), EntityKind::Project, &p.id);
        faults.name(item_field("projects", i, "name"), &p.name);
        let zone_id = faults.id(
            item_field("projects", i, "zone_id"),
            EntityKind::Zone,
            &p.zone_id,
        );
        let status =
            faults.wire_enum::<v1::ProjectStatus, _>(item_field("projects", i, "status"), p.status);
        if let Err(e) = convert_to(0.0, &p.unit, Dimension::Cny) {
            faults.add(item_field("projects", i, "unit"), e);
        }
        // Both amounts in 万元; a unit fault is reported once, above.
        let mut amount = |field: &str, value: f64| match convert_to(value, &p.unit, Dimension::Cny)
        {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            Ok(_) => {
                faults.add(
                    item_field("projects", i, field),
                    "must be a finite, non-negative amount",
                );
                0.0
            }
            Err(_) => 0.0,
        };
        let planned_investment = amount("planned_investment", p.planned_investment);
        let completed_investment = amount("completed_investment", p.completed_investment);
        let period = match p.period.trim() {
            "" => None,
            text => match Period::parse(text) {
                Ok(period) => Some(period),
                Err(e) => {
                    faults.add(item_field("projects", i, "period"), e);
                    None
                }
            },
        };
        records.push(ProjectRecord {
            id,
            name: p.name.trim().to_string(),
            zone_id,
            // A fault already refuses the request when the status is missing.
            status: status.unwrap_or(ProjectStatus::Negotiating),
            planned_investment,
            period,
            completed_investment,
        });
    }
    faults.unique(
        records
            .iter()
            .enumerate()
            .map(|(i, p)| (item_field("projects", i, "id"), p.id.clone())),
    );
    // A project lies where its zone does: the one it is put in and the one it was in.
    let scope = Scope::of(caller, &writes).await?;
    let in_zones: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                item_field("projects", i, "zone_id"),
                EntityKind::Zone,
                p.zone_id.clone(),
            )
        })
        .collect();
    scope.entities(&writes, &in_zones, true).await?;
    let replaced: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                item_field("projects", i, "id"),
                EntityKind::Project,
                p.id.clone(),
            )
        })
        .collect();
    scope.entities(&writes, &replaced, false).await?;
    let zones = records
        .iter()
        .enumerate()
        .map(|(i, p)| (item_field("projects", i, "zone_id"), p.zone_id.clone()))
        .collect();
    faults
        .exist(&writes, EntityKind::Zone, zones, &HashSet::new())
        .await?;
    faults.finish("projects", projects.len())?;
    let counts = writes.put_projects(&records).await?;
    let entities = records.iter().map(|r| (EntityKind::Project, r.id.clone()));
    record_write(&mut writes, caller, "UpsertProjects", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// Checks user-defined indicators and writes them whole (or, on a dry run, only counts).
pub async fn upsert_indicators(
    store: &Store,
    caller: &Caller,
    indicators: Vec<v1::Indicator>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mut faults = Faults::default();
    let mut records: Vec<Indicator> = Vec::with_capacity(indicators.len());
    let mut origin = Vec::with_capacity(indicators.len());
    for (i, ind) in indicators.iter().enumerate() {
        if builtin_indicator(ind.code.trim()).is_some() {
            faults.add(
                item_field("indicators", i, "code"),
                format!(
                    "{:?} is a built-in indicator and cannot be redefined",
                    ind.code
                ),
            );
            continue;
        }
        let Some(kind) = convert::indicator_kind(ind.kind) else {
            faults.add(
                item_field("indicators", i, "kind"),
                "must be FLOW, STOCK or RATE",
            );
            continue;
        };
        let Some(direction) = convert::direction(ind.direction) else {
            faults.add(
                item_field("indicators", i, "direction"),
                "must be HIGHER_IS_BETTER or LOWER_IS_BETTER",
            );
            continue;
        };
        match Indicator::define(
            &ind.code,
            &ind.name_zh,
            &ind.name_en,
            &ind.unit,
            kind,
            direction,
        ) {
            Ok(indicator) => {
                origin.push(i);
                records.push(indicator);
            }
            Err(e) => faults.add(format!("indicators[{i}]"), e),
        }
    }
    faults.unique(
        records
            .iter()
            .zip(&origin)
            .map(|(r, i)| (item_field("indicators", *i, "code"), r.code.clone())),
    );
    faults.finish("indicators", indicators.len())?;
    let mut writes = store.begin_writes().await?;
    let counts = writes.put_indicators(&records).await?;
    record_write(&mut writes, caller, "UpsertIndicators", counts, []);
    writes.finish(dry_run).await?;
    Ok(counts)
}

/// Checks targets and writes them whole (or, on a dry run, only counts).
pub async fn upsert_targets(
    store: &Store,
    caller: &Caller,
    targets: Vec<v1::Target>,
    dry_run: bool,
) -> Result<UpsertCounts, ServiceError> {
    let mut writes = store.begin_writes().await?;
    let mut faults = Faults::default();
    let catalog = writes.catalog().await?;
    let mut records = Vec::with_capacity(targets.len());
    let mut origin = Vec::with_capacity(targets.len());
    let mut refs: Vec<(EntityKind, String, String)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let entity = t.entity.clone().unwrap_or_default();
        let Some(kind) = convert::entity_kind(entity.kind) else {
            faults.add(item_field("targets", i, "entity.kind"), "must be set");
            continue;
        };
        let id = faults.id(item_field("targets", i, "entity.id"), kind, &entity.id);
        // Stored in its normalized spelling, so one target per metric however it was typed.
        let metric = match parse_metric(&t.metric, &|code: &str| catalog.get(code).cloned()) {
            Ok(metric) => metric.text,
            Err(e) => {
                faults.add(item_field("targets", i, "metric"), e);
                t.metric.trim().to_string()
            }
        };
        let period = Period::parse(&t.period)
            .map(|p| p.canonical())
            .unwrap_or_else(|e| {
                faults.add(item_field("targets", i, "period"), e);
                String::new()
            });
        let comparator = faults
            .wire_enum::<v1::Comparator, _>(item_field("targets", i, "comparator"), t.comparator);
        if !t.value.is_finite() {
            faults.add(item_field("targets", i, "value"), "must be a finite number");
        }
        // A target on a plain indicator is stored in the indicator's unit, like observations.
        let (value, unit) = match catalog.get(&metric) {
            Some(indicator) => match convert_to(t.value, &t.unit, indicator.dimension()) {
                Ok(v) => (v, indicator.unit.symbol.to_string()),
                Err(e) => {
                    faults.add(item_field("targets", i, "unit"), e);
                    (t.value, String::new())
                }
            },
            None => {
                if t.unit.trim().chars().count() > 16 {
                    faults.add(
                        item_field("targets", i, "unit"),
                        "a unit of at most 16 characters",
                    );
                }
                (t.value, t.unit.trim().to_string())
            }
        };
        refs.push((kind, id.clone(), item_field("targets", i, "entity.id")));
        origin.push(i);
        records.push(TargetRecord {
            entity_kind: kind,
            entity_id: id,
            metric,
            period,
            // A fault already refuses the request when the comparator is missing.
            comparator: comparator.unwrap_or(Comparator::AtLeast),
            value,
            unit,
            note: t.note.clone(),
        });
    }
    faults.unique(records.iter().zip(&origin).map(|(t, i)| {
        (
            format!("targets[{i}]"),
            format!(
                "{} {} {} {}",
                t.entity_kind.as_str(),
                t.entity_id,
                t.metric,
                t.period
            ),
        )
    }));
    let scoped: Vec<_> = refs
        .iter()
        .map(|(kind, id, field)| (field.clone(), *kind, id.clone()))
        .collect();
    Scope::of(caller, &writes)
        .await?
        .entities(&writes, &scoped, true)
        .await?;
    for kind in EntityKind::ALL {
        let of_kind = refs
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, id, field)| (field.clone(), id.clone()))
            .collect::<Vec<_>>();
        if !of_kind.is_empty() {
            faults
                .exist(&writes, kind, of_kind, &HashSet::new())
                .await?;
        }
    }
    faults.finish("targets", targets.len())?;
    let counts = writes.put_targets(&records).await?;
    let entities = records.iter().map(|r| (r.entity_kind, r.entity_id.clone()));
    record_write(&mut writes, caller, "UpsertTargets", counts, entities);
    writes.finish(dry_run).await?;
    Ok(counts)
}

pub fn target_to_wire(t: TargetRecord) -> v1::Target {
    v1::Target {
        entity: Some(v1::EntityRef {
            kind: convert::entity_kind_to_wire(t.entity_kind) as i32,
            id: t.entity_id,
        }),
        metric: t.metric,
        period: t.period,
        comparator: v1::Comparator::from(t.comparator) as i32,
        value: t.value,
        unit: t.unit,
        note: t.note,
    }
}

pub async fn list_regions(
    store: &Store,
    request: v1::ListRegionsRequest,
) -> Result<v1::ListRegionsResponse, ServiceError> {
    let limit = page_size(request.page_size, 100, 1000)? as usize;
    let after = decode_page_token(&request.page_token)?;
    let subtree = if request.parent_code.trim().is_empty() {
        None
    } else {
        Some(store.region_subtree(request.parent_code.trim()).await?)
    };
    let mut page: Vec<RegionRecord> = store
        .regions()
        .await?
        .into_iter()
        .filter(|r| subtree.as_ref().is_none_or(|s| s.contains(&r.code)))
        .filter(|r| after.as_ref().is_none_or(|a| r.code.as_str() > a.as_str()))
        .take(limit + 1)
        .collect();
    let next_page_token = if page.len() > limit {
        page.truncate(limit);
        page.last()
            .map(|r| encode_page_token(&r.code))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(v1::ListRegionsResponse {
        regions: page.into_iter().map(region_to_wire).collect(),
        next_page_token,
    })
}

pub fn region_to_wire(r: RegionRecord) -> v1::Region {
    v1::Region {
        code: r.code,
        name: r.name,
        level: convert::region_level_to_wire(r.level) as i32,
        parent_code: r.parent_code.unwrap_or_default(),
        name_en: r.name_en,
    }
}

pub fn enterprise_to_wire(e: EnterpriseRecord) -> v1::Enterprise {
    v1::Enterprise {
        credit_code: e.credit_code,
        name: e.name,
        zone_id: e.zone_id.unwrap_or_default(),
        industry_code: e.industry_code,
        above_scale: e.above_scale,
    }
}

/// Enterprises by zone, region subtree and industry-code prefix, in pages by credit code.
pub async fn list_enterprises(
    store: &Store,
    request: v1::ListEnterprisesRequest,
) -> Result<v1::ListEnterprisesResponse, ServiceError> {
    let limit = page_size(request.page_size, 100, 1000)?;
    let after = decode_page_token(&request.page_token)?;
    let optional = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let zone_id = optional(&request.zone_id)
        .map(|z| validate_id(EntityKind::Zone, &z).map_err(|e| ServiceError::invalid("zone_id", e)))
        .transpose()?;
    let region_code = optional(&request.region_code)
        .map(|r| {
            validate_id(EntityKind::Region, &r).map_err(|e| ServiceError::invalid("region_code", e))
        })
        .transpose()?;
    let industry_prefix = optional(&request.industry_code);
    if let Some(prefix) = &industry_prefix
        && (prefix.len() > 8 || !prefix.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(ServiceError::invalid(
            "industry_code",
            "a GB/T 4754 code or its start: letters and digits, at most 8 (\"C\", \"C26\")",
        ));
    }
    let filter = EnterpriseFilter {
        zone_id,
        region_code,
        industry_prefix,
    };
    let page = store
        .list_enterprises(&filter, after.as_deref(), limit)
        .await?;
    Ok(v1::ListEnterprisesResponse {
        enterprises: page.items.into_iter().map(enterprise_to_wire).collect(),
        next_page_token: page
            .next_after
            .map(|k| encode_page_token(&k))
            .unwrap_or_default(),
    })
}

pub fn zone_to_wire(z: ZoneRecord) -> v1::Zone {
    v1::Zone {
        id: z.id,
        name: z.name,
        region_code: z.region_code,
        kind: v1::ZoneKind::from(z.kind) as i32,
        tags: z.tags,
        leading_industries: z.leading_industries,
    }
}

pub async fn list_zones(
    store: &Store,
    request: v1::ListZonesRequest,
) -> Result<v1::ListZonesResponse, ServiceError> {
    let limit = page_size(request.page_size, 100, 1000)?;
    let after = decode_page_token(&request.page_token)?;
    let kind = match request.kind {
        0 => None,
        kind => Some(convert::enum_field::<v1::ZoneKind, _>("kind", kind)?),
    };
    let filter = ZoneFilter {
        region_code: Some(request.region_code.trim().to_string()).filter(|r| !r.is_empty()),
        kind,
        tags: request.tags.iter().map(|t| t.trim().to_string()).collect(),
    };
    let page = store.list_zones(&filter, after.as_deref(), limit).await?;
    Ok(v1::ListZonesResponse {
        zones: page.items.into_iter().map(zone_to_wire).collect(),
        next_page_token: page
            .next_after
            .map(|k| encode_page_token(&k))
            .unwrap_or_default(),
    })
}
