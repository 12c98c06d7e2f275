//! Computing a ranking: metric tables from the metrics service (this period and the year
//! before), the domain engine, and the entries a run stores.

use std::collections::HashMap;

use prost::Message;
use rayon::prelude::*;

use zonerank_api::v1;
use zonerank_domain::{
    period::Period,
    ranking::{
        engine::{Groups, RankingError, RankingInput, RankingOutcome, rank},
        weighting::shown,
    },
};

use super::{scheme::CheckedScheme, source::MetricsSource};
use crate::{convert, error::ServiceError};

/// The columns and groups a run was computed from, kept so the run can be explained and
/// perturbed without reading the data again.
#[derive(Clone, Debug, Default)]
pub struct RunInput {
    pub entities: Vec<v1::EntityRef>,
    pub names: Vec<String>,
    /// `[criterion][entity]`
    pub criteria: Vec<Vec<Option<f64>>>,
    /// `[criterion][entity]` the reason a raw value is missing.
    pub reasons: Vec<Vec<String>>,
    pub extras: HashMap<String, Vec<Option<f64>>>,
    pub groups: Groups,
    pub previous: Vec<Option<(u32, f64)>>,
}

impl RunInput {
    /// The engine's view of this input.
    pub fn as_input<'a>(&'a self, scheme: &'a CheckedScheme) -> RankingInput<'a> {
        RankingInput {
            scheme: &scheme.scheme,
            criteria: self.criteria.clone(),
            extras: self.extras.clone(),
            groups: self.groups.clone(),
            previous: self.previous.clone(),
        }
    }
}

impl RunInput {
    /// The engine's outcome over this input, or why the scheme cannot rank it with the
    /// entity named by its id.
    pub fn rank(&self, scheme: &CheckedScheme) -> Result<RankingOutcome, ServiceError> {
        rank(&self.as_input(scheme)).map_err(|e| ranking_failed(e, &self.entities, scheme))
    }
}

/// A ranking failure as the caller can act on it: the criterion by its field and the entity
/// by its id (the engine knows entities by position only).
pub fn ranking_failed(
    error: RankingError,
    entities: &[v1::EntityRef],
    scheme: &CheckedScheme,
) -> ServiceError {
    match error {
        RankingError::EntropyValue {
            criterion,
            entity,
            value,
        } => {
            let metric = scheme
                .scheme
                .criteria
                .get(criterion)
                .map_or("", |c| c.metric.as_str());
            let who = entities.get(entity).map_or_else(
                || format!("entity #{entity}"),
                |e| {
                    let kind = convert::entity_kind(e.kind)
                        .map_or("entity".to_string(), |k| k.as_str().to_lowercase());
                    format!("{kind} {}", e.id)
                },
            );
            ServiceError::invalid(
                format!("scheme.criteria[{criterion}].metric"),
                format!(
                    "ENTROPY weighting takes values as proportions, which must be ≥ 0, but                      `{metric}` of {who} is {value}; use CRITIC, EQUAL or FIXED weighting"
                ),
            )
        }
        other => ServiceError::invalid("scheme", other),
    }
}

/// Region ancestry, for group keys ("region:410300" for a zone in Xin'an county).
pub type RegionParents = zonerank_domain::region::RegionTree;

/// The prefix of a region's group key, before its GB/T 2260 code ("region:410300").
pub const REGION_GROUP: &str = "region:";
/// The prefix of a tag's group key, before the tag ("tag:四支撑").
pub const TAG_GROUP: &str = "tag:";

fn group_keys(row: &v1::MetricRow, parents: &RegionParents) -> Vec<String> {
    let mut keys = Vec::new();
    if !row.region_code.is_empty() {
        keys.extend(
            parents
                .ancestors(&row.region_code)
                .into_iter()
                .map(|code| format!("{REGION_GROUP}{code}")),
        );
    }
    keys.extend(row.tags.iter().map(|t| format!("{TAG_GROUP}{t}")));
    keys
}

/// Whether `group` is a key [`group_keys`] can make: a region by its code or a tag; empty
/// asks for every entry.
pub fn check_group(group: &str) -> Result<(), ServiceError> {
    let group = group.trim();
    if group.is_empty() {
        return Ok(());
    }
    let expected = "expected region:<GB/T 2260 code> (e.g. region:410300) or tag:<tag>";
    if let Some(code) = group.strip_prefix(REGION_GROUP) {
        return zonerank_domain::entity::validate_id(
            zonerank_domain::entity::EntityKind::Region,
            code,
        )
        .map(|_| ())
        .map_err(|e| ServiceError::invalid("group", format!("{e}; {expected}")));
    }
    match group.strip_prefix(TAG_GROUP) {
        Some(tag) if !tag.trim().is_empty() => Ok(()),
        _ => Err(ServiceError::invalid(
            "group",
            format!("{group:?}: {expected}"),
        )),
    }
}

/// Reads the tables for `period` and turns them into the engine's columns.
pub async fn gather(
    source: &MetricsSource,
    scheme: &CheckedScheme,
    period: &Period,
    cohort: &v1::CohortSelector,
    as_of: Option<prost_types::Timestamp>,
    parents: &RegionParents,
) -> Result<RunInput, tonic::Status> {
    let table = source
        .table(v1::StreamMetricsRequest {
            metrics: scheme.metrics.clone(),
            period: period.canonical(),
            cohort: Some(cohort.clone()),
            as_of,
            chunk_size: 0,
        })
        .await?;
    let n = table.rows.len();
    let criteria_count = scheme.scheme.criteria.len();
    let mut input = RunInput {
        criteria: vec![Vec::with_capacity(n); criteria_count],
        reasons: vec![Vec::with_capacity(n); criteria_count],
        previous: vec![None; n],
        ..Default::default()
    };
    let mut extras: Vec<Vec<Option<f64>>> =
        vec![Vec::with_capacity(n); scheme.metrics.len() - criteria_count];
    for row in &table.rows {
        input.entities.push(row.entity.clone().unwrap_or_default());
        input.names.push(row.name.clone());
        input.groups.push(group_keys(row, parents));
        for (j, value) in row.values.iter().enumerate() {
            let (number, reason) = match &value.result {
                Some(v1::metric_value::Result::Value(v)) => (Some(*v), String::new()),
                Some(v1::metric_value::Result::MissingReason(r)) => (None, r.clone()),
                None => (None, "no value".to_string()),
            };
            if j < criteria_count {
                input.criteria[j].push(number);
                input.reasons[j].push(reason);
            } else {
                extras[j - criteria_count].push(number);
            }
        }
    }
    input.extras = scheme.metrics[criteria_count..]
        .iter()
        .cloned()
        .zip(extras)
        .collect();
    Ok(input)
}

/// Each ranked entity's (rank, score) in the period before, by entity id.
pub type PreviousRanks = HashMap<String, (u32, f64)>;

/// The two fields of a stored `RankingEntry` that rank changes need (its tags 3 and 4): decoding
/// only these skips the criteria, groups and strings of every entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRank {
    #[prost(int32, tag = "3")]
    pub rank: i32,
    #[prost(double, tag = "4")]
    pub score: f64,
}

/// The (rank, score) of the ranked entries of a stored run.
pub fn previous_ranks(entries: impl IntoIterator<Item = v1::RankingEntry>) -> PreviousRanks {
    entries
        .into_iter()
        .filter(|e| e.rank > 0)
        .map(|e| (e.entity.unwrap_or_default().id, (e.rank as u32, e.score)))
        .collect()
}

/// This period's input with the previous period's ranks filled in, and the outcome. The
/// previous period is ranked here unless its ranks are given (from a stored run of the same
/// scheme version over the same data).
pub async fn compute(
    source: &MetricsSource,
    scheme: &CheckedScheme,
    period: &Period,
    cohort: &v1::CohortSelector,
    as_of: Option<prost_types::Timestamp>,
    parents: &RegionParents,
    known_previous: Option<PreviousRanks>,
) -> Result<(RunInput, RankingOutcome), tonic::Status> {
    let previous_period = period.year_earlier();
    let (mut current, previous_ranks) = match known_previous {
        Some(ranks) => (
            gather(source, scheme, period, cohort, as_of, parents).await?,
            ranks,
        ),
        None => {
            let (current, previous) = tokio::try_join!(
                gather(source, scheme, period, cohort, as_of, parents),
                gather(source, scheme, &previous_period, cohort, as_of, parents),
            )?;
            // Last year's data must not stop this year's ranking: without a previous ranking
            // there are simply no rank changes.
            let ranks: PreviousRanks = match rank(&previous.as_input(scheme)) {
                Ok(before) => previous
                    .entities
                    .iter()
                    .zip(before.entries())
                    .filter(|(_, e)| e.included)
                    .map(|(entity, e)| (entity.id.clone(), (e.rank, e.score)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(period = %previous_period, error = %e, "previous period not ranked; no rank changes");
                    HashMap::new()
                }
            };
            (current, ranks)
        }
    };
    crate::budget::ranking_cohort(current.entities.len())?;
    current.previous = current
        .entities
        .iter()
        .map(|e| previous_ranks.get(e.id.as_str()).copied())
        .collect();
    let outcome = current.rank(scheme)?;
    Ok((current, outcome))
}

/// The entries of a run in rank order (excluded entities last).
pub fn entries(
    input: &RunInput,
    scheme: &CheckedScheme,
    outcome: &RankingOutcome,
    rank_target: i32,
) -> Vec<v1::RankingEntry> {
    entry_order(input, outcome)
        .into_iter()
        .map(|i| entry(input, scheme, outcome, rank_target, i))
        .collect()
}

/// The entities of a run in its entries' order: ranked ones by rank, then the excluded, ties
/// by entity id.
pub fn entry_order(input: &RunInput, outcome: &RankingOutcome) -> Vec<usize> {
    let mut order: Vec<usize> = (0..input.entities.len()).collect();
    order.par_sort_unstable_by(|&a, &b| {
        let (ia, ib) = (
            outcome.position_of(a).is_some(),
            outcome.position_of(b).is_some(),
        );
        ib.cmp(&ia)
            .then(outcome.rank[a].cmp(&outcome.rank[b]))
            .then(input.entities[a].id.cmp(&input.entities[b].id))
            .then(a.cmp(&b))
    });
    order
}

/// The entry of entity `i`.
pub fn entry(
    input: &RunInput,
    scheme: &CheckedScheme,
    outcome: &RankingOutcome,
    rank_target: i32,
    i: usize,
) -> v1::RankingEntry {
    let e = outcome.entry(i);
    let criteria = scheme
        .scheme
        .criteria
        .iter()
        .enumerate()
        .map(|(j, c)| v1::CriterionScore {
            metric: c.metric.clone(),
            raw: input.criteria[j][i],
            normalized: shown(e.normalized(j)),
            weight: shown(outcome.weights.get(j).copied().unwrap_or_default()),
            contribution: shown(e.contribution(j)),
            missing_reason: input.reasons[j][i].clone(),
        })
        .collect();
    v1::RankingEntry {
        entity: Some(input.entities[i].clone()),
        name: input.names[i].clone(),
        rank: if e.included { e.rank as i32 } else { 0 },
        // Shown to 15 significant digits (no 60.00000000000001); ranks were taken from the
        // full values.
        score: shown(e.score),
        percentile: shown(e.percentile),
        stars: i32::from(e.stars),
        class_label: e.class_label.to_owned(),
        previous_rank: e.previous_rank.map_or(0, |r| r as i32),
        rank_change: e.rank_change.unwrap_or(0) as i32,
        criteria,
        group_ranks: e
            .group_ranks()
            .map(|(group, rank)| v1::GroupRank {
                group: group.to_owned(),
                rank: rank as i32,
            })
            .collect(),
        bonus: shown(e.bonus),
        vetoes: e.vetoes().map(str::to_owned).collect(),
        excluded_reason: e.excluded_because.unwrap_or_default().to_owned(),
        previous_score: input.previous[i].map_or(0.0, |(_, s)| shown(s)),
        meets_rank_target: meets_rank_target(outcome, rank_target, i),
        policies: scheme.lifecycle.policies(e.class_label),
        extras: input
            .extras
            .iter()
            .filter_map(|(metric, column)| column[i].map(|v| (metric.clone(), v)))
            .collect(),
    }
}

/// Whether entity `i` was ranked within the scheme's rank target (none when it is 0).
pub fn meets_rank_target(outcome: &RankingOutcome, rank_target: i32, i: usize) -> bool {
    outcome.position_of(i).is_some()
        && rank_target > 0
        && outcome.rank[i] as i64 <= i64::from(rank_target)
}

/// A run's entries encoded for the store, in [`entry_order`], built and encoded in parallel
/// without holding every decoded entry (at national scale they would be the largest thing a
/// ranking pod holds); and the first `top` entries decoded, for the answer.
pub fn encoded_entries(
    input: &RunInput,
    scheme: &CheckedScheme,
    outcome: &RankingOutcome,
    rank_target: i32,
    top: usize,
) -> (Vec<(String, Vec<u8>)>, Vec<v1::RankingEntry>) {
    let order = entry_order(input, outcome);
    let encoded = order
        .par_iter()
        .map(|&i| {
            let entry = entry(input, scheme, outcome, rank_target, i);
            (input.entities[i].id.clone(), entry.encode_to_vec())
        })
        .collect();
    let first = order
        .iter()
        .take(top)
        .map(|&i| entry(input, scheme, outcome, rank_target, i))
        .collect();
    (encoded, first)
}

/// The engine input rebuilt from a stored run's entries (criteria raw values and groups), for
/// explanations and robustness without reading the data again.
pub fn input_from_entries(scheme: &CheckedScheme, entries: &[v1::RankingEntry]) -> RunInput {
    let criteria_count = entries.first().map_or(0, |e| e.criteria.len());
    let mut input = RunInput {
        criteria: vec![Vec::with_capacity(entries.len()); criteria_count],
        reasons: vec![Vec::with_capacity(entries.len()); criteria_count],
        ..Default::default()
    };
    for e in entries {
        input.entities.push(e.entity.clone().unwrap_or_default());
        input.names.push(e.name.clone());
        input
            .groups
            .push(e.group_ranks.iter().map(|g| g.group.as_str()));
        input
            .previous
            .push((e.previous_rank > 0).then_some((e.previous_rank as u32, e.previous_score)));
        for (j, c) in e.criteria.iter().enumerate().take(criteria_count) {
            input.criteria[j].push(c.raw);
            input.reasons[j].push(c.missing_reason.clone());
        }
    }
    for metric in &scheme.metrics[criteria_count.min(scheme.metrics.len())..] {
        let column = entries
            .iter()
            .map(|e| e.extras.get(metric).copied())
            .collect();
        input.extras.insert(metric.clone(), column);
    }
    input
}

#[cfg(test)]
mod stored_rank_tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_stored_rank_reads_the_rank_and_score_of_an_encoded_entry() {
        let entry = v1::RankingEntry {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Enterprise as i32,
                id: "91410100MA000000X0".into(),
            }),
            name: "某企业".into(),
            rank: 17,
            score: 0.625,
            percentile: 0.4,
            class_label: "B".into(),
            ..Default::default()
        };
        let stored = StoredRank::decode(entry.encode_to_vec().as_slice()).unwrap();
        assert_eq!((stored.rank, stored.score), (17, 0.625));
    }
}
