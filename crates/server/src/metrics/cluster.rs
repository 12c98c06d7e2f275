//! GetClusterStrength: the figures are read with the metrics computation (the entities', and
//! their regions' as a second cohort), and the strength rules of the domain's cluster module
//! decide flags and stars.

use std::collections::{BTreeSet, HashMap};

use zonerank_api::v1;
use zonerank_domain::{
    cluster::{self, ClusterFigures, Strength},
    entity::EntityKind,
    metric::Missing,
};
use zonerank_storage::{CohortQuery, Store};

use super::{Catalog, compute_within, value_to_wire};
use crate::{
    budget::Call,
    convert::{entity_kind_to_wire, timestamp_micros},
    error::ServiceError,
    paging::{decode_page_token, key_page, page_size},
};

/// The employment indicator unless the request names another.
const DEFAULT_EMPLOYMENT: &str = "employees";

/// The strength of every entity of the cohort, one page of them.
pub async fn strength(
    store: &Store,
    call: &Call,
    request: v1::GetClusterStrengthRequest,
) -> Result<v1::GetClusterStrengthResponse, ServiceError> {
    let period = super::period("period", &request.period)?;
    let mut cohort = super::cohort_query(request.cohort.as_ref())?;
    if !matches!(cohort.kind, Some(EntityKind::Zone | EntityKind::Cluster)) {
        return Err(ServiceError::invalid(
            "cohort.entity_kind",
            "cluster strength is computed for zones or clusters",
        ));
    }
    let limit = page_size(request.page_size, 100, 1000)?;
    let after = decode_page_token(&request.page_token)?;
    let national = match (
        request.national_employment,
        request.national_total_employment,
    ) {
        (0.0, 0.0) => None,
        (part, total) if part > 0.0 && total > 0.0 => Some((part, total)),
        _ => {
            return Err(ServiceError::invalid(
                "national_total_employment",
                "give both national figures, each positive, or neither",
            ));
        }
    };
    let catalog = Catalog::load(store).await?;
    let employment_text = match request.employment_indicator.trim() {
        "" => DEFAULT_EMPLOYMENT,
        text => text,
    };
    let employment = catalog.parse("employment_indicator", employment_text)?;
    if request.establishments_indicator.trim().is_empty() {
        return Err(ServiceError::invalid(
            "establishments_indicator",
            "must be set to the indicator counting establishments (enterprises)",
        ));
    }
    let establishments = catalog.parse(
        "establishments_indicator",
        &request.establishments_indicator,
    )?;
    let mut metrics = vec![employment.clone(), establishments];
    if national.is_none() {
        metrics.push(catalog.parse("employment_indicator", &format!("lq({})", employment.text))?);
    }
    let base = period.year_earlier();
    let periods = [base, period];
    let as_of = request.as_of.as_ref().map(timestamp_micros);
    let data_version = store.data_version().await?;
    let computed =
        compute_within(call, store, &catalog, &metrics, &periods, &cohort, as_of).await?;

    // The regions the entities lie in, with the employment figure at both ends of the year.
    let regions: BTreeSet<String> = computed
        .members
        .iter()
        .filter_map(|m| match &m.parent {
            Some((EntityKind::Region, code)) => Some(code.clone()),
            _ => None,
        })
        .collect();
    cohort = CohortQuery {
        kind: Some(EntityKind::Region),
        ids: regions.into_iter().collect(),
        ..Default::default()
    };
    let region_figures: HashMap<String, [Result<f64, Missing>; 2]> = if cohort.ids.is_empty() {
        HashMap::new()
    } else {
        let computed = compute_within(
            call,
            store,
            &catalog,
            std::slice::from_ref(&employment),
            &periods,
            &cohort,
            as_of,
        )
        .await?;
        computed
            .members
            .into_iter()
            .zip(computed.values)
            .map(|(m, v)| (m.id, [v[0][0].clone(), v[1][0].clone()]))
            .collect()
    };

    let no_region = |p| Err(Missing::NoParentFigure { period: p });
    let mut rows = Vec::with_capacity(computed.members.len());
    for (member, values) in computed.members.iter().zip(&computed.values) {
        let [start, end] = [&values[0][0], &values[1][0]];
        let establishments = values[1][1].clone();
        let (region_start, region_end) = match &member.parent {
            Some((EntityKind::Region, code)) => match region_figures.get(code) {
                Some([s, e]) => (s.clone(), e.clone()),
                None => (no_region(base), no_region(period)),
            },
            _ => (Err(Missing::NoParent), Err(Missing::NoParent)),
        };
        let region_end = region_end
            .map_err(|_| Missing::NoParentFigure { period })
            .and_then(|r| {
                if r > 0.0 {
                    Ok(r)
                } else {
                    Err(Missing::NonPositiveBase { period })
                }
            });
        let lq = match national {
            Some((part, total)) => match (end, &region_end) {
                (Ok(e), Ok(r)) => cluster::location_quotient(*e, *r, part, total)
                    .ok_or(Missing::NonPositiveBase { period }),
                (Err(m), _) | (_, Err(m)) => Err(m.clone()),
            },
            None => values[1][2].clone(),
        };
        let region_share = match (end, &region_end) {
            (Ok(e), Ok(r)) => Ok(e / r * 100.0),
            (Err(m), _) | (_, Err(m)) => Err(m.clone()),
        };
        let split = match (start, end) {
            (Ok(s), Ok(e)) => match request.reference_growth {
                Some(growth) => cluster::shift_share(*s, *e, 1.0, 1.0 + growth / 100.0)
                    .ok_or(Missing::NonPositiveBase { period: base }),
                None => match (&region_start, &region_end) {
                    (Ok(rs), Ok(re)) => cluster::shift_share(*s, *e, *rs, *re)
                        .ok_or(Missing::NonPositiveBase { period: base }),
                    _ => Err(Missing::NoParentFigure { period: base }),
                },
            },
            (Err(_), _) => Err(Missing::BaseMissing { period: base }),
            (_, Err(m)) => Err(m.clone()),
        };
        rows.push(Row {
            id: member.id.clone(),
            kind: member.kind,
            name: member.name.clone(),
            region_code: member.region_code.clone().unwrap_or_default(),
            employment: end.clone(),
            establishments,
            lq,
            region_employment: region_end,
            region_share,
            split,
        });
    }

    // Flags and stars over the entities that have what the rules read.
    let complete: Vec<(usize, ClusterFigures)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            Some((
                i,
                ClusterFigures {
                    lq: *r.lq.as_ref().ok()?,
                    employment: *r.employment.as_ref().ok()?,
                    establishments: *r.establishments.as_ref().ok()?,
                    region_employment: r.region_employment.clone().unwrap_or(0.0),
                },
            ))
        })
        .collect();
    let figures: Vec<ClusterFigures> = complete.iter().map(|(_, f)| *f).collect();
    let mut strengths = vec![Strength::default(); rows.len()];
    for ((i, _), s) in complete.iter().zip(cluster::strength(&figures)) {
        strengths[*i] = s;
    }

    let mut entities: Vec<v1::ClusterStrength> = rows
        .into_iter()
        .zip(strengths)
        .map(|(r, s)| r.to_wire(&s))
        .collect();
    entities.sort_by(|a, b| id_of(a).cmp(id_of(b)));
    let (entities, next_page_token) =
        key_page(entities, after.as_deref(), limit, |e| id_of(e).to_string());
    Ok(v1::GetClusterStrengthResponse {
        entities,
        next_page_token,
        data_version,
    })
}

fn id_of(e: &v1::ClusterStrength) -> &str {
    e.entity.as_ref().map_or("", |r| r.id.as_str())
}

/// One entity's figures before the cohort's flags.
struct Row {
    id: String,
    kind: EntityKind,
    name: String,
    region_code: String,
    employment: Result<f64, Missing>,
    establishments: Result<f64, Missing>,
    lq: Result<f64, Missing>,
    region_employment: Result<f64, Missing>,
    region_share: Result<f64, Missing>,
    split: Result<cluster::ShiftShare, Missing>,
}

impl Row {
    fn to_wire(&self, s: &Strength) -> v1::ClusterStrength {
        let part = |f: fn(&cluster::ShiftShare) -> f64| {
            value_to_wire(&self.split.as_ref().map(f).map_err(Clone::clone))
        };
        v1::ClusterStrength {
            entity: Some(v1::EntityRef {
                kind: entity_kind_to_wire(self.kind) as i32,
                id: self.id.clone(),
            }),
            name: self.name.clone(),
            region_code: self.region_code.clone(),
            employment: Some(value_to_wire(&self.employment)),
            establishments: Some(value_to_wire(&self.establishments)),
            lq: Some(value_to_wire(&self.lq)),
            region_share: Some(value_to_wire(&self.region_share)),
            strong: s.strong,
            strong10: s.strong10,
            size_star: s.size_star,
            specialisation_star: s.specialisation_star,
            focus_star: s.focus_star,
            stars: i32::from(s.stars()),
            reference_growth: Some(part(|x| x.reference_growth * 100.0)),
            expected_change: Some(part(|x| x.expected_change)),
            actual_change: Some(part(|x| x.actual_change)),
            differential: Some(part(|x| x.differential)),
        }
    }
}
