//! One metrics computation: parse the expressions, select the cohort, read what the expressions
//! need with a few set-based queries into an in-memory dataset, evaluate.

use std::collections::{BTreeSet, HashMap};

use zonerank_domain::{
    catalog::IndicatorKind,
    entity::EntityKind,
    metric::{Dataset, Metric, Missing, evaluate, parse_metric, requirements},
    period::Period,
};
use zonerank_storage::{CohortMember, CohortQuery, Store, UnknownName, ValueQuery};

use crate::{
    budget::Call,
    convert::resource_type,
    error::{ServiceError, Violation},
};

/// Cohorts larger than this are read by kind rather than by an id list.
const READ_WHOLE_KIND_ABOVE: usize = 5_000;

/// The catalog as a lookup for the expression parser.
pub struct Catalog(zonerank_domain::catalog::Catalog);

impl Catalog {
    /// The stored catalog.
    pub async fn load(store: &Store) -> Result<Catalog, ServiceError> {
        Ok(Catalog(store.catalog().await?))
    }

    /// Whether `code` is an indicator of the catalog.
    pub fn has_indicator(&self, code: &str) -> bool {
        self.0.get(code).is_some()
    }

    /// Parses one expression; `field` names it in the error.
    pub fn parse(&self, field: &str, text: &str) -> Result<Metric, ServiceError> {
        parse_metric(text, &|code: &str| self.0.get(code).cloned())
            .map_err(|e| ServiceError::invalid(field, e))
    }

    /// Parses every expression, reporting all faults at once.
    pub fn parse_all(&self, field: &str, texts: &[String]) -> Result<Vec<Metric>, ServiceError> {
        if texts.is_empty() {
            return Err(ServiceError::invalid(field, "name at least one metric"));
        }
        crate::budget::metric_expressions(texts.len())?;
        let mut metrics = Vec::with_capacity(texts.len());
        let mut violations = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            match parse_metric(text, &|code: &str| self.0.get(code).cloned()) {
                Ok(metric) => metrics.push(metric),
                Err(e) => violations.push(Violation::new(format!("{field}[{i}]"), e)),
            }
        }
        if violations.is_empty() {
            Ok(metrics)
        } else {
            Err(ServiceError::InvalidArgument {
                message: format!("{}: {}", violations[0].field, violations[0].reason),
                violations,
            })
        }
    }

    fn stock_indicators(&self) -> impl Iterator<Item = String> + '_ {
        self.0
            .entries()
            .map(|(i, _)| i)
            .filter(|i| i.kind == IndicatorKind::Stock)
            .map(|i| i.code.clone())
    }
}

/// NOT_FOUND for a cohort naming a region or an entity the store does not hold: every
/// computation (tables, streams, rankings, simulations) selects its cohort here.
pub(crate) fn unknown_in_cohort(name: UnknownName) -> ServiceError {
    match name {
        UnknownName::Region(code) => ServiceError::not_found(
            resource_type(EntityKind::Region),
            code.clone(),
            format!("region {code:?}"),
        ),
        UnknownName::Entity(kind, id) => ServiceError::not_found(
            resource_type(kind),
            id.clone(),
            format!("{} {id:?}", kind.as_str().to_lowercase()),
        ),
    }
}

/// The values of a computation: one row per cohort member, one column per metric and period.
pub struct Computed {
    pub members: Vec<CohortMember>,
    /// `values[row][period][metric]`
    pub values: Vec<Vec<Vec<Result<f64, Missing>>>>,
}

/// Evaluates `metrics` for every member of `cohort` at every one of `periods`, within the
/// server's longest call.
pub async fn compute(
    store: &Store,
    catalog: &Catalog,
    metrics: &[Metric],
    periods: &[Period],
    cohort: &CohortQuery,
    as_of: Option<i64>,
) -> Result<Computed, ServiceError> {
    let call = Call::server_max();
    compute_within(&call, store, catalog, metrics, periods, cohort, as_of).await
}

/// [`compute`] as part of `call`: refused over the cell budget, stopped at its deadline.
pub async fn compute_within(
    call: &Call,
    store: &Store,
    catalog: &Catalog,
    metrics: &[Metric],
    periods: &[Period],
    cohort: &CohortQuery,
    as_of: Option<i64>,
) -> Result<Computed, ServiceError> {
    call.run(compute_cells(
        call, store, catalog, metrics, periods, cohort, as_of,
    ))
    .await
}

async fn compute_cells(
    call: &Call,
    store: &Store,
    catalog: &Catalog,
    metrics: &[Metric],
    periods: &[Period],
    cohort: &CohortQuery,
    as_of: Option<i64>,
) -> Result<Computed, ServiceError> {
    let members = store.cohort(cohort).await?.map_err(unknown_in_cohort)?;
    crate::budget::metric_cells(metrics.len(), periods.len(), members.len())?;
    let kind = cohort.kind.unwrap_or(EntityKind::Zone);
    let mut indicators = BTreeSet::new();
    let (mut years_back, mut parents, mut zones, mut reference) = (0, false, false, false);
    let mut projects = false;
    for metric in metrics {
        let needs = requirements(metric);
        indicators.extend(needs.indicators);
        years_back = years_back.max(needs.years_back);
        parents |= needs.parent;
        zones |= needs.zones;
        reference |= needs.reference;
        projects |= needs.projects;
    }

    let mut data = Dataset::new();
    data.set_stock_indicators(catalog.stock_indicators());
    let rows: Vec<u32> = members
        .iter()
        .map(|m| data.add_entity(m.kind, &m.id))
        .collect();
    // Who else's figures are read: parents for shares, zones for regions' zone totals.
    let mut extra: HashMap<EntityKind, BTreeSet<String>> = HashMap::new();
    if parents {
        for (m, &row) in members.iter().zip(&rows) {
            if let Some((pk, pid)) = &m.parent {
                let parent = data.add_entity(*pk, pid);
                data.set_parent(row, parent);
                extra.entry(*pk).or_default().insert(pid.clone());
            }
        }
    }
    // A region and, when shares are asked of zone totals, its parent too; for location
    // quotients, the parent region's own parent.
    let mut regions_needing_zones: Vec<(String, u32)> = Vec::new();
    if zones && kind == EntityKind::Region {
        regions_needing_zones.extend(members.iter().zip(&rows).map(|(m, &r)| (m.id.clone(), r)));
        if parents {
            for m in &members {
                if let Some((EntityKind::Region, pid)) = &m.parent {
                    let idx = data.add_entity(EntityKind::Region, pid);
                    regions_needing_zones.push((pid.clone(), idx));
                }
            }
        }
    }
    let tree = if zones {
        Some(store.region_tree().await?)
    } else {
        None
    };
    if let (true, Some(tree)) = (reference, &tree) {
        let parents_of_members: BTreeSet<&str> = members
            .iter()
            .filter_map(|m| match &m.parent {
                Some((EntityKind::Region, pid)) => Some(pid.as_str()),
                _ => None,
            })
            .collect();
        for region in parents_of_members {
            if let Some(up) = tree.parent(region) {
                let region_idx = data.add_entity(EntityKind::Region, region);
                let up_idx = data.add_entity(EntityKind::Region, up);
                data.set_parent(region_idx, up_idx);
                extra
                    .entry(EntityKind::Region)
                    .or_default()
                    .insert(up.to_owned());
                regions_needing_zones.push((up.to_owned(), up_idx));
            }
        }
    }
    if let (false, Some(tree)) = (regions_needing_zones.is_empty(), &tree) {
        let zone_regions = store.zone_regions().await?;
        let mut zones_by_region: HashMap<&str, Vec<&str>> = HashMap::new();
        for (zone, region) in &zone_regions {
            zones_by_region
                .entry(region.as_str())
                .or_default()
                .push(zone.as_str());
        }
        for (region, idx) in regions_needing_zones {
            let mut within = Vec::new();
            for code in tree.subtree(&region) {
                for zone in zones_by_region.get(code.as_str()).into_iter().flatten() {
                    within.push(data.add_entity(EntityKind::Zone, zone));
                    extra
                        .entry(EntityKind::Zone)
                        .or_default()
                        .insert(zone.to_string());
                }
            }
            data.set_zones_within(idx, within);
        }
    }

    let (Some(first), Some(last)) = (
        periods.iter().map(|p| p.start_ordinal()).min(),
        periods.iter().map(|p| p.end_ordinal()).max(),
    ) else {
        return Ok(Computed {
            members,
            values: Vec::new(),
        });
    };
    // Stocks may be read up to a year before a span ends; YoY and CAGR bases years earlier.
    let from_ordinal = first - 12 * i64::from(years_back) - 12;
    let indicators: Vec<String> = indicators.into_iter().collect();
    let mut reads: Vec<(EntityKind, Option<Vec<String>>)> = Vec::new();
    let member_ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let mut by_kind: HashMap<EntityKind, BTreeSet<String>> = extra;
    by_kind.entry(kind).or_default().extend(member_ids);
    if projects {
        let zone_ids: Vec<String> = by_kind
            .get(&EntityKind::Zone)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        let zone_ids = (zone_ids.len() <= READ_WHOLE_KIND_ABOVE).then_some(zone_ids);
        for row in store
            .project_periods(zone_ids.as_deref(), from_ordinal, last)
            .await?
        {
            if let Some(idx) = data.index(EntityKind::Zone, &row.zone_id) {
                data.add_project(
                    idx,
                    row.status,
                    row.period,
                    row.planned_investment,
                    row.completed_investment,
                );
            }
        }
        data.mark_projects_read();
    }
    for (k, ids) in by_kind {
        let ids = (ids.len() <= READ_WHOLE_KIND_ABOVE).then(|| ids.into_iter().collect());
        reads.push((k, ids));
    }
    for (k, ids) in reads {
        let query = ValueQuery {
            kind: k,
            ids,
            indicators: indicators.clone(),
            from_ordinal,
            to_ordinal: last,
            as_of,
        };
        // Rows come grouped by entity as they were written (an entity's indicators and
        // periods together), so the last entity's index saves most lookups of its id.
        let (mut last_id, mut last_idx) = (String::new(), None);
        store
            .for_each_value(&query, |entity_id, indicator, period, value| {
                if last_id != entity_id || last_id.is_empty() {
                    last_id.clear();
                    last_id.push_str(entity_id);
                    last_idx = data.index(k, entity_id);
                }
                if let Some(idx) = last_idx {
                    data.insert(idx, indicator, period, value);
                }
            })
            .await?;
    }

    let (metrics, periods) = (metrics.to_vec(), periods.to_vec());
    let values = call
        .blocking(move |cancel| {
            rows.iter()
                .map(|&row| {
                    cancel.check()?;
                    Ok(periods
                        .iter()
                        .map(|period| {
                            metrics
                                .iter()
                                .map(|metric| evaluate(metric, &data, row, period))
                                .collect()
                        })
                        .collect())
                })
                .collect()
        })
        .await?;
    Ok(Computed { members, values })
}
