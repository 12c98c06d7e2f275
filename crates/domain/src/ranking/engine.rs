//! One ranking run: missing-data policy, normalisation, weights, aggregation,
//! bonuses, ranks with ties, percentiles, group ranks, stars, classes and rank change.
//!
//! Columnar: each criterion is normalised as one column over the cohort, and the per-entity
//! vectors of the outcome are built once at the end. The cohort is the set of included
//! entities; it is addressed by position (`0..cohort.len()`), not by input index.

use std::collections::HashMap;

use rayon::prelude::*;

use super::aggregate::{aggregate, contributions};
pub use super::groups::Groups;
use super::normalize::normalize;
use super::scale::mean;
use super::scheme::{Scheme, SchemeFault, nearly_equal, validate};
use super::weighting::{WeightingError, weights};
use super::{MissingPolicy, Weighting};

/// What a ranking run reads: the scheme and the cohort's values, all indexed by entity.
#[derive(Clone, Debug)]
pub struct RankingInput<'a> {
    /// The scheme run.
    pub scheme: &'a Scheme,
    /// Raw criterion values, `[criterion][entity]`; None (or a non-finite value) is missing.
    pub criteria: Vec<Vec<Option<f64>>>,
    /// Columns for `extra_metrics(scheme)`: metric text → `[entity]` values.
    pub extras: HashMap<String, Vec<Option<f64>>>,
    /// Group keys per entity, e.g. `region:410300`, `tag:四支撑` (empty: no groups).
    pub groups: Groups,
    /// The previous period's rank and score per entity (empty: no previous run).
    pub previous: Vec<Option<(u32, f64)>>,
}

/// Why a ranking could not be run (an empty cohort is not an error).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RankingError {
    /// The scheme does not validate.
    #[error("the scheme is invalid: {}", faults_text(.0))]
    Scheme(Vec<SchemeFault>),
    /// The number of criterion columns differs from the scheme's criteria.
    #[error("the scheme has {expected} criteria but {got} criterion columns were given")]
    CriterionCount {
        /// The scheme's criteria.
        expected: usize,
        /// The columns given.
        got: usize,
    },
    /// A column's length differs from the number of entities.
    #[error("{column} has {got} values but there are {expected} entities")]
    ColumnLength {
        /// Which column, e.g. `criteria[1]` or `extras[accidents]`.
        column: String,
        /// The number of entities (the first criterion column's length).
        expected: usize,
        /// The column's length.
        got: usize,
    },
    /// A gate, adjustment or veto metric has no column in `extras` (nor among the criteria).
    #[error("no values were given for metric `{metric}` (needed by {needed_by})")]
    MissingExtra {
        /// The metric text.
        metric: String,
        /// The scheme field that reads it, e.g. `vetoes[0]`.
        needed_by: String,
    },
    /// ENTROPY weighting met a value it cannot take as a proportion (below 0).
    #[error(
        "ENTROPY weighting needs values ≥ 0, but entity {entity} has {value} for criterion {criterion}"
    )]
    EntropyValue {
        /// The criterion's position in the scheme.
        criterion: usize,
        /// The entity's input index.
        entity: usize,
        /// The value found (a filled cell shows the cohort's mean).
        value: f64,
    },
    /// The weighting method failed on this cohort.
    #[error("weighting failed: {0}")]
    Weighting(#[from] WeightingError),
    /// A normalised value or a score is not a finite number, e.g. a value far above a fixed
    /// benchmark whose ratio exceeds `f64::MAX`.
    #[error(
        "{stage} gave entity {entity} a value that is not a finite number at criterion {criterion}"
    )]
    NonFinite {
        /// The entity's input index.
        entity: usize,
        /// The criterion's position: the cell's at normalization, the largest part at aggregation.
        criterion: usize,
        /// `normalization` or `aggregation`.
        stage: &'static str,
    },
    /// An entity's bonus and deduction points are not a finite number.
    #[error(
        "the bonus and deduction points of entity {entity} are not a finite number after adjustments[{adjustment}]"
    )]
    NonFiniteBonus {
        /// The entity's input index.
        entity: usize,
        /// The adjustment whose points overflowed.
        adjustment: usize,
    },
}

fn faults_text(faults: &[SchemeFault]) -> String {
    faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

use super::outcome::NONE;
pub use super::outcome::{Entry, RankingOutcome};

/// A present value: None and non-finite values both count as missing.
fn present(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Looks up a gate, adjustment or veto metric: `extras` first, then a criterion with that text.
fn metric_column<'i>(
    input: &'i RankingInput<'_>,
    metric: &str,
    needed_by: String,
    entities: usize,
) -> Result<&'i [Option<f64>], RankingError> {
    let metric = metric.trim();
    let column = input
        .extras
        .get(metric)
        .or_else(|| {
            input
                .scheme
                .criteria
                .iter()
                .position(|c| c.metric.trim() == metric)
                .map(|j| &input.criteria[j])
        })
        .ok_or_else(|| RankingError::MissingExtra {
            metric: metric.to_owned(),
            needed_by,
        })?;
    if column.len() != entities {
        return Err(RankingError::ColumnLength {
            column: format!("extras[{metric}]"),
            expected: entities,
            got: column.len(),
        });
    }
    Ok(column)
}

/// Checks the input's shape and returns the number of entities.
fn entity_count(input: &RankingInput<'_>) -> Result<usize, RankingError> {
    let expected = input.scheme.criteria.len();
    if input.criteria.len() != expected {
        return Err(RankingError::CriterionCount {
            expected,
            got: input.criteria.len(),
        });
    }
    let n = input.criteria.first().map_or(0, Vec::len);
    for (j, column) in input.criteria.iter().enumerate() {
        if column.len() != n {
            return Err(RankingError::ColumnLength {
                column: format!("criteria[{j}]"),
                expected: n,
                got: column.len(),
            });
        }
    }
    for (name, len) in [
        ("groups", input.groups.len()),
        ("previous", input.previous.len()),
    ] {
        if len != 0 && len != n {
            return Err(RankingError::ColumnLength {
                column: name.to_owned(),
                expected: n,
                got: len,
            });
        }
    }
    Ok(n)
}

/// Columns of the included cohort, `[criterion][cohort position]`.
pub(crate) struct Columns {
    /// Input index of each cohort position.
    pub cohort: Vec<usize>,
    /// Normalised values after filling.
    pub normalized: Vec<Vec<f64>>,
    /// Raw values with filled cells at the column's mean present raw value, for entropy
    /// weighting (empty columns under any other weighting).
    pub raw_filled: Vec<Vec<f64>>,
    /// Whether each cell was filled.
    pub filled: Vec<Vec<bool>>,
}

/// Per entity, why it was excluded (an index into the reasons, or `NONE`), and the reasons.
type Exclusions = (Vec<u32>, Vec<String>);

/// Decides the cohort under the missing-data policy and builds its filled columns.
/// Returns the columns and, per input entity, why it was excluded.
fn build_columns(input: &RankingInput<'_>, n: usize) -> (Columns, Exclusions) {
    let scheme = input.scheme;
    let mut excluded: Vec<u32> = vec![NONE; n];
    let mut reasons: Vec<String> = Vec::new();
    if scheme.missing_policy == MissingPolicy::Exclude {
        // One reason per distinct set of missing criteria, so nothing is allocated per entity.
        let mut known: HashMap<Vec<usize>, u32> = HashMap::new();
        let mut missing: Vec<usize> = Vec::new();
        for (e, reason) in excluded.iter_mut().enumerate() {
            missing.clear();
            missing.extend(
                input
                    .criteria
                    .iter()
                    .enumerate()
                    .filter(|(_, column)| present(column[e]).is_none())
                    .map(|(j, _)| j),
            );
            if missing.is_empty() {
                continue;
            }
            *reason = match known.get(missing.as_slice()) {
                Some(&r) => r,
                None => {
                    let names: Vec<String> = missing
                        .iter()
                        .map(|&j| format!("`{}`", scheme.criteria[j].metric))
                        .collect();
                    reasons.push(format!("missing value for {}", names.join(", ")));
                    let r = reasons.len() as u32 - 1;
                    known.insert(missing.clone(), r);
                    r
                }
            };
        }
    } else if let Some(j) = input
        .criteria
        .iter()
        .position(|column| column.iter().all(|v| present(*v).is_none()))
    {
        // Worst or mean of nothing is undefined; ranking without the criterion would silently
        // change the assessment, so the run reports the gap instead.
        reasons.push(format!(
            "no entity has a value for criterion `{}`",
            scheme.criteria[j].metric
        ));
        excluded.fill(0);
    }
    let cohort: Vec<usize> = if excluded.iter().all(|&r| r == NONE) {
        (0..n).collect()
    } else {
        (0..n).filter(|&e| excluded[e] == NONE).collect()
    };
    let excluded = (excluded, reasons);
    let m = scheme.criteria.len();
    let mut columns = Columns {
        normalized: Vec::with_capacity(m),
        raw_filled: Vec::with_capacity(m),
        filled: Vec::with_capacity(m),
        cohort,
    };
    if columns.cohort.is_empty() {
        return (columns, excluded);
    }
    // Columns are independent: one task per criterion.
    let keep_raw = scheme.weighting == Weighting::Entropy;
    let built: Vec<(Vec<f64>, Vec<f64>, Vec<bool>)> = scheme
        .criteria
        .par_iter()
        .zip(input.criteria.par_iter())
        .map(|(criterion, values)| {
            filled_column(scheme, criterion, values, &columns.cohort, n, keep_raw)
        })
        .collect();
    for (normalized, raw_filled, filled) in built {
        columns.normalized.push(normalized);
        columns.raw_filled.push(raw_filled);
        columns.filled.push(filled);
    }
    (columns, excluded)
}

/// One criterion over the cohort: its normalised values after filling, its raw values with
/// filled cells at the mean present raw value (only when `keep_raw`: entropy weighting reads
/// them; empty otherwise), and which cells were filled.
fn filled_column(
    scheme: &Scheme,
    criterion: &super::scheme::Criterion,
    values: &[Option<f64>],
    cohort: &[usize],
    n: usize,
    keep_raw: bool,
) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let k = cohort.len();
    let present_values: Vec<f64> = if k == n && values.iter().all(|&v| present(v).is_some()) {
        // The whole input is the cohort and every value is there: a plain copy.
        values.iter().map(|&v| v.unwrap_or_default()).collect()
    } else if k == n {
        values.iter().filter_map(|&v| present(v)).collect()
    } else {
        cohort.iter().filter_map(|&e| present(values[e])).collect()
    };
    let normalized_present = normalize(
        &present_values,
        criterion.direction,
        scheme.normalization,
        criterion.benchmark,
    );
    debug_assert_eq!(normalized_present.len(), present_values.len());
    if present_values.len() == k {
        // Nothing to fill: the normalised column is the result as it is.
        let raw = if keep_raw { present_values } else { Vec::new() };
        return (normalized_present, raw, vec![false; k]);
    }
    let fill = match scheme.missing_policy {
        MissingPolicy::Worst => normalized_present
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min),
        _ => mean(&normalized_present),
    };
    let raw_mean = mean(&present_values);
    let mut normalized = Vec::with_capacity(k);
    let mut raw_filled = Vec::with_capacity(if keep_raw { k } else { 0 });
    let mut filled = Vec::with_capacity(k);
    let mut next = normalized_present.iter();
    for &e in cohort {
        match present(values[e]) {
            Some(raw) => {
                normalized.push(*next.next().unwrap_or(&fill));
                if keep_raw {
                    raw_filled.push(raw);
                }
                filled.push(false);
            }
            None => {
                normalized.push(fill);
                if keep_raw {
                    raw_filled.push(raw_mean);
                }
                filled.push(true);
            }
        }
    }
    (normalized, raw_filled, filled)
}

/// Competition ranks of `scores`, highest first: ties within 1e-12 relative share 1, 2, 2, 4.
///
/// NaN ranks last. `order` and `ranks` are reused buffers; afterwards `order` holds the
/// positions best first and `ranks[i]` the rank of `scores[i]`.
pub fn competition_ranks(scores: &[f64], order: &mut Vec<usize>, ranks: &mut Vec<u32>) {
    let mut sorter = ScoreSorter::default();
    let keyed = sorter.sort(scores);
    order.clear();
    order.par_extend(keyed.par_iter().map(|k| k.position as usize));
    ranks.clear();
    ranks.resize(scores.len(), 0);
    walk_ties(keyed, |position, rank| ranks[position as usize] = rank);
}

/// [`competition_ranks`] of the positions in `kept` only: `ranks[i]` is the rank of
/// `scores[kept.start + i]` among all of `scores`. `sorter` holds reused buffers.
pub(crate) fn competition_ranks_of(
    scores: &[f64],
    kept: std::ops::Range<usize>,
    sorter: &mut ScoreSorter,
    ranks: &mut Vec<u32>,
) {
    let keyed = sorter.sort(scores);
    ranks.clear();
    ranks.resize(kept.len(), 0);
    let (from, to) = (kept.start as u32, kept.end as u32);
    walk_ties(keyed, |position, rank| {
        if (from..to).contains(&position) {
            ranks[(position - from) as usize] = rank;
        }
    });
}

/// A score's sort key and its position, packed (12 bytes: the sort moves a quarter less
/// memory than with a padded pair).
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
struct Keyed {
    key: u64,
    position: u32,
}

/// Bits of one radix digit.
const DIGIT_BITS: u32 = 12;
/// Buckets of one digit.
const BUCKETS: usize = 1 << DIGIT_BITS;

/// Sorts scores best first, reusing its buffers from one sort to the next.
///
/// Written here rather than taken from a radix-sort crate (radsort was tried): those allocate
/// their scratch on every call and sort every byte of the key, and robustness sorts a national
/// cohort two thousand times. Two 12-bit digits order the 24 key bits below the highest bit
/// in which the keys differ (the bits above it are the same in every key); the few runs whose
/// 24 bits are equal are then ordered by the whole key. Both steps are stable, so equal keys
/// stay in position order.
#[derive(Default)]
pub(crate) struct ScoreSorter {
    keyed: Vec<Keyed>,
    scratch: Vec<Keyed>,
}

impl ScoreSorter {
    /// Every score's key and position, best first. The key orders exactly like `total_cmp`
    /// descending with every NaN last; equal keys are in position order.
    fn sort(&mut self, scores: &[f64]) -> &[Keyed] {
        let n = scores.len();
        self.keyed.clear();
        self.keyed
            .extend(scores.iter().enumerate().map(|(p, &x)| Keyed {
                key: descending_key(x),
                position: p as u32,
            }));
        let (least, most) = self
            .keyed
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), k| (lo.min(k.key), hi.max(k.key)));
        if n < 2 || least == most {
            return &self.keyed;
        }
        let high = u64::BITS - (least ^ most).leading_zeros();
        let low = high.saturating_sub(2 * DIGIT_BITS);
        let digit = |key: u64, d: u32| ((key >> (low + d * DIGIT_BITS)) as usize) & (BUCKETS - 1);
        let mut counts = vec![[0u32; BUCKETS]; 2];
        for k in &self.keyed {
            counts[0][digit(k.key, 0)] += 1;
            counts[1][digit(k.key, 1)] += 1;
        }
        self.scratch.resize(
            n,
            Keyed {
                key: 0,
                position: 0,
            },
        );
        for (d, count) in counts.iter_mut().enumerate() {
            let d = d as u32;
            // A digit every key shares orders nothing.
            if count[digit(self.keyed[0].key, d)] as usize == n {
                continue;
            }
            let mut next = 0;
            for c in count.iter_mut() {
                (*c, next) = (next, next + *c);
            }
            for k in &self.keyed {
                let at = &mut count[digit(k.key, d)];
                self.scratch[*at as usize] = *k;
                *at += 1;
            }
            std::mem::swap(&mut self.keyed, &mut self.scratch);
        }
        if low > 0 {
            let mut start = 0;
            while start < n {
                let top = self.keyed[start].key >> low;
                let end = start
                    + self.keyed[start..]
                        .iter()
                        .take_while(|k| k.key >> low == top)
                        .count();
                if end - start > 1 {
                    self.keyed[start..end].sort_by_key(|k| k.key);
                }
                start = end;
            }
        }
        &self.keyed
    }
}

/// Calls `rank(position, rank)` along sorted pairs. Ties are judged against the first score of
/// the tie run, so a chain of tiny steps cannot drift into one long tie. The scores are read
/// back from the keys, in order, rather than from the scattered scores.
fn walk_ties(keyed: &[Keyed], mut rank: impl FnMut(u32, u32)) {
    let mut leader = f64::NAN;
    let mut leader_rank = 0u32;
    for (at, k) in keyed.iter().enumerate() {
        let score = score_of_key(k.key);
        let tied = at > 0 && (nearly_equal(score, leader) || (score.is_nan() && leader.is_nan()));
        if !tied {
            leader = score;
            leader_rank = at as u32 + 1;
        }
        rank(k.position, leader_rank);
    }
}

/// A key whose ascending order is `scores` descending by `total_cmp`, every NaN after −∞.
fn descending_key(x: f64) -> u64 {
    if x.is_nan() {
        return u64::MAX;
    }
    let bits = x.to_bits();
    // The usual total-order map: flip every bit of a negative number, the sign bit of a
    // positive one; then invert for descending.
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ascending
}

/// The score a [`descending_key`] was made from (every NaN comes back as one NaN).
fn score_of_key(key: u64) -> f64 {
    let ascending = !key;
    let bits = if ascending >> 63 == 1 {
        ascending & !(1 << 63)
    } else {
        !ascending
    };
    f64::from_bits(bits)
}

/// Points from bonus and deduction items per entity (a missing count counts 0 events).
fn bonuses(
    input: &RankingInput<'_>,
    n: usize,
    adjustments: &[&[Option<f64>]],
) -> Result<Vec<f64>, RankingError> {
    let mut bonus = vec![0.0; n];
    for (i, (adjustment, column)) in input.scheme.adjustments.iter().zip(adjustments).enumerate() {
        for (entity, (b, v)) in bonus.iter_mut().zip(column.iter()).enumerate() {
            if let Some(events) = present(*v) {
                *b += adjustment.points_per_event * events;
                if !b.is_finite() {
                    return Err(RankingError::NonFiniteBonus {
                        entity,
                        adjustment: i,
                    });
                }
            }
        }
    }
    Ok(bonus)
}

/// The first normalised cell that is not a finite number, a present value before a filled one
/// (a fill is derived from the present values).
fn non_finite_normalized(columns: &Columns) -> Option<RankingError> {
    for (criterion, (column, filled)) in columns.normalized.iter().zip(&columns.filled).enumerate()
    {
        if column.iter().all(|x| x.is_finite()) {
            continue;
        }
        let bad = |&p: &usize| !column[p].is_finite();
        let p = (0..column.len())
            .filter(|&p| !filled[p])
            .find(bad)
            .or_else(|| (0..column.len()).find(bad))?;
        return Some(RankingError::NonFinite {
            entity: columns.cohort[p],
            criterion,
            stage: "normalization",
        });
    }
    None
}

/// The first score that is not a finite number, named by the criterion whose part is not finite
/// or else (the parts overflowed together, or with the bonus) the largest part.
fn non_finite_score(scores: &[f64], parts: &[Vec<f64>], cohort: &[usize]) -> Option<RankingError> {
    let p = scores.iter().position(|s| !s.is_finite())?;
    let magnitude = |j: usize| {
        let part = parts[j][p];
        if part.is_finite() {
            part.abs()
        } else {
            f64::INFINITY
        }
    };
    let criterion = (0..parts.len())
        .max_by(|&a, &b| magnitude(a).total_cmp(&magnitude(b)).then(b.cmp(&a)))
        .unwrap_or(0);
    Some(RankingError::NonFinite {
        entity: cohort[p],
        criterion,
        stage: "aggregation",
    })
}

/// Runs the scheme over the cohort: scores, ranks, stars and classes for every entity.
///
/// Steps, in order:
/// 1. the missing-data policy decides the cohort: EXCLUDE drops entities missing any criterion;
///    WORST and COHORT_MEAN keep everyone (unless a criterion has no value at all);
/// 2. each criterion column is normalised over the cohort's present values only, then missing
///    cells get the column's worst (minimum) or mean normalised value;
/// 3. weights come from `weights` over the filled normalised columns and the raw columns, whose
///    filled cells take the mean present raw value so entropy/CRITIC see a neutral value;
/// 4. aggregate, then add points × events for each adjustment;
/// 5. competition ranks, percentiles, group ranks, stars, classes, vetoes and rank change.
pub fn rank(input: &RankingInput<'_>) -> Result<RankingOutcome, RankingError> {
    let scheme = input.scheme;
    validate(scheme).map_err(RankingError::Scheme)?;
    let n = entity_count(input)?;

    let adjustment_columns = scheme
        .adjustments
        .iter()
        .enumerate()
        .map(|(i, a)| metric_column(input, &a.metric, format!("adjustments[{i}]"), n))
        .collect::<Result<Vec<_>, _>>()?;
    let veto_columns = scheme
        .vetoes
        .iter()
        .enumerate()
        .map(|(i, v)| metric_column(input, &v.metric, format!("vetoes[{i}]"), n))
        .collect::<Result<Vec<_>, _>>()?;
    let gate_columns = scheme
        .star_rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            rule.gates
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    metric_column(input, &g.metric, format!("star_rules[{i}].gates[{k}]"), n)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (columns, excluded) = build_columns(input, n);
    if let Some(fault) = non_finite_normalized(&columns) {
        return Err(fault);
    }
    let bonus = bonuses(input, n, &adjustment_columns)?;
    let k = columns.cohort.len();

    let (weights_used, scores, contribution_columns) = if k == 0 {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let fixed: Vec<f64> = scheme.criteria.iter().map(|c| c.weight).collect();
        let w = weights(
            scheme.weighting,
            &fixed,
            &columns.raw_filled,
            &columns.normalized,
        )
        .map_err(|e| match e {
            // The weighting sees cohort positions; callers know entities by input index.
            WeightingError::InvalidEntropyValue {
                criterion,
                entity,
                value,
            } => RankingError::EntropyValue {
                criterion,
                entity: columns.cohort[entity],
                value,
            },
            other => RankingError::Weighting(other),
        })?;
        let mut scores = aggregate(scheme.aggregation, &columns.normalized, &w);
        for (score, &e) in scores.iter_mut().zip(&columns.cohort) {
            *score += bonus[e];
        }
        let parts = contributions(scheme.aggregation, &columns.normalized, &w);
        if let Some(fault) = non_finite_score(&scores, &parts, &columns.cohort) {
            return Err(fault);
        }
        (w, scores, parts)
    };

    let mut order = Vec::with_capacity(k);
    let mut ranks = Vec::with_capacity(k);
    competition_ranks(&scores, &mut order, &mut ranks);

    let (excluded, reasons) = excluded;
    // Vetoes apply to every entity with a positive event count, included or not.
    let vetoed: Vec<Vec<bool>> = veto_columns
        .iter()
        .map(|column| {
            column
                .iter()
                .map(|v| present(*v).is_some_and(|v| v > 0.0))
                .collect()
        })
        .collect();
    let bars = |e: usize, bars: fn(&super::scheme::Veto) -> bool| {
        scheme
            .vetoes
            .iter()
            .zip(&vetoed)
            .any(|(veto, column)| column[e] && bars(veto))
    };

    let mut position = vec![NONE; n];
    for (p, &e) in columns.cohort.iter().enumerate() {
        position[e] = p as u32;
    }
    let reach = class_reach(scheme, k);
    let mut score_of = vec![0.0; n];
    let mut rank_of = vec![0; n];
    let mut percentile = vec![0.0; n];
    let mut stars = vec![0; n];
    let mut class = vec![NONE; n];
    // Each entity's row is independent of the others': filled in parallel, by input index.
    score_of
        .par_iter_mut()
        .zip(rank_of.par_iter_mut())
        .zip(percentile.par_iter_mut())
        .zip(stars.par_iter_mut())
        .zip(class.par_iter_mut())
        .enumerate()
        .for_each(
            |(e, ((((score_out, rank_out), percentile_out), stars_out), class_out))| {
                let p = position[e];
                if p == NONE {
                    return;
                }
                let (score, rank) = (scores[p as usize], ranks[p as usize]);
                *score_out = score;
                *rank_out = rank;
                // With competition ranks exactly rank − 1 entities are above, so the rest are at or
                // below.
                *percentile_out = (k - rank as usize + 1) as f64 / k as f64 * 100.0;
                *stars_out = if bars(e, |v| v.bars_stars) {
                    0
                } else {
                    scheme
                        .star_rules
                        .iter()
                        .zip(&gate_columns)
                        .filter(|(rule, gates)| {
                            at_least(score, rule.min_score)
                                && rule
                                    .gates
                                    .iter()
                                    .zip(gates.iter())
                                    .all(|(g, column)| g.holds(column[e]))
                        })
                        .map(|(rule, _)| rule.level)
                        .max()
                        .unwrap_or(0)
                };
                *class_out =
                    class_of(scheme, &reach, score, rank, bars(e, |v| v.bars_class_a)) as u32;
            },
        );

    let mut outcome = RankingOutcome {
        weights: weights_used,
        position,
        score: score_of,
        rank: rank_of,
        percentile,
        stars,
        bonus,
        class,
        class_labels: scheme.class_cuts.iter().map(|c| c.label.clone()).collect(),
        excluded,
        reasons,
        previous: input.previous.clone(),
        vetoed,
        veto_labels: scheme.vetoes.iter().map(|v| v.label.clone()).collect(),
        normalized: columns.normalized,
        contributions: contribution_columns,
        filled: columns.filled,
        cohort: columns.cohort,
        groups: Groups::new(),
        group_rank: Vec::new(),
    };

    if !input.groups.is_empty() {
        outcome.group_rank = group_ranks(&input.groups, &outcome.cohort, &order, &ranks);
        outcome.groups = input.groups.clone();
    }

    Ok(outcome)
}

/// `score >= min` with the tie tolerance, so a computed 0.6 meets a 0.6 threshold.
fn at_least(score: f64, min: f64) -> bool {
    score > min || nearly_equal(score, min)
}

/// Per class cut without a min_score, the last rank it reaches in a cohort of `k`:
/// ceil(k × top_percent ÷ 100), so ties share the better class.
fn class_reach(scheme: &Scheme, k: usize) -> Vec<f64> {
    scheme
        .class_cuts
        .iter()
        // The small slack keeps 10 × 20 ÷ 100 from rounding up past 2.
        .map(|cut| (k as f64 * cut.top_percent / 100.0 - 1e-9).ceil())
        .collect()
}

/// The class for a score and rank: the first cut that holds (by score when it has a min_score,
/// else rank ≤ its [`class_reach`]); the last cut when none holds; the second cut instead of
/// the first when a veto bars class A.
fn class_of(scheme: &Scheme, reach: &[f64], score: f64, rank: u32, bars_first: bool) -> usize {
    let cuts = &scheme.class_cuts;
    let mut index = cuts
        .iter()
        .zip(reach)
        .position(|(cut, &reach)| match cut.min_score {
            Some(min) => at_least(score, min),
            None => f64::from(rank) <= reach,
        })
        .unwrap_or(cuts.len() - 1);
    if bars_first && index == 0 && cuts.len() > 1 {
        index = 1;
    }
    index
}

/// Ranks within each group key, walking the global order so ties stay ties. The result is
/// aligned with `groups.all_ids()` (0 for entities outside the cohort).
///
/// The memberships are gathered along the order in parallel (the reads of a national cohort's
/// columns by rank are scattered), then bucketed by key with a stable counting sort, so each
/// key's members are walked in rank order from contiguous memory.
fn group_ranks(groups: &Groups, cohort: &[usize], order: &[usize], ranks: &[u32]) -> Vec<u32> {
    let ids = groups.all_ids();
    // (key id, global rank, slot in `ids`) per membership, best first.
    let members: Vec<(u32, u32, u32)> = order
        .par_iter()
        .flat_map_iter(|&p| {
            let rank = ranks[p];
            groups
                .span(cohort[p])
                .map(move |i| (ids[i], rank, i as u32))
        })
        .collect();
    let mut start = vec![0usize; groups.key_count() + 1];
    for &(key, _, _) in &members {
        start[key as usize + 1] += 1;
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut next = start.clone();
    let mut by_key = vec![(0u32, 0u32); members.len()];
    for &(key, rank, slot) in &members {
        let at = &mut next[key as usize];
        by_key[*at] = (rank, slot);
        *at += 1;
    }
    drop(members);
    let mut out = vec![0u32; ids.len()];
    for bounds in start.windows(2) {
        // Members seen so far, and the global and group rank of the last one.
        let (mut seen, mut last_global, mut last_group) = (0u32, 0u32, 0u32);
        for &(rank, slot) in &by_key[bounds[0]..bounds[1]] {
            let group_rank = if seen > 0 && last_global == rank {
                last_group
            } else {
                seen + 1
            };
            seen += 1;
            last_global = rank;
            last_group = group_rank;
            out[slot as usize] = group_rank;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::Direction;
    use crate::ranking::scheme::{Adjustment, Criterion, Gate, StarRule, Veto, default_class_cuts};
    use crate::ranking::{Aggregation, Normalization, Weighting};

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// Two criteria, min-max, fixed 0.6/0.4, weighted sum, three star rules with a revenue
    /// gate on level 3, a −1 deduction per accident and a veto on pollution incidents.
    pub(crate) fn zone_scheme() -> Scheme {
        Scheme {
            criteria: vec![
                Criterion {
                    metric: "per_mu(tax)".to_owned(),
                    weight: 0.6,
                    direction: Direction::HigherIsBetter,
                    benchmark: None,
                },
                Criterion {
                    metric: "energy_intensity".to_owned(),
                    weight: 0.4,
                    direction: Direction::LowerIsBetter,
                    benchmark: None,
                },
            ],
            normalization: Normalization::MinMax,
            weighting: Weighting::Fixed,
            aggregation: Aggregation::WeightedSum,
            missing_policy: MissingPolicy::Exclude,
            star_rules: vec![
                StarRule {
                    level: 1,
                    min_score: 0.3,
                    gates: vec![],
                },
                StarRule {
                    level: 3,
                    min_score: 0.8,
                    gates: vec![Gate::parse("revenue >= 1000000").unwrap()],
                },
                StarRule {
                    level: 2,
                    min_score: 0.5,
                    gates: vec![],
                },
            ],
            class_cuts: default_class_cuts(),
            adjustments: vec![Adjustment {
                metric: "accidents".to_owned(),
                points_per_event: -1.0,
                label: "major safety accident".to_owned(),
            }],
            vetoes: vec![Veto {
                metric: "pollution".to_owned(),
                label: "pollution incident".to_owned(),
                bars_stars: true,
                bars_class_a: true,
            }],
        }
    }

    #[test]
    fn an_entropy_failure_names_the_entity_by_input_index() {
        let mut scheme = zone_scheme();
        scheme.weighting = Weighting::Entropy;
        let mut input = zone_input(&scheme);
        // Z1 is left out, so Z3 is the cohort's third member but the input's fourth.
        input.criteria[0][1] = None;
        input.criteria[0][3] = Some(-2.32);
        assert_eq!(
            rank(&input),
            Err(RankingError::EntropyValue {
                criterion: 0,
                entity: 3,
                value: -2.32
            })
        );
    }

    /// Six zones. per_mu(tax) (higher better): 100, 80, 60, 60, 20, 0 → min-max 1, .8, .6, .6, .2, 0.
    /// energy_intensity (lower better): 1, 3, 1, 1, 5, 5 → (5 − x) ÷ 4 = 1, .5, 1, 1, 0, 0.
    /// Scores .6r + .4e: Z0 1.0, Z1 .68, Z2 .76, Z3 .76, Z4 .12, Z5 0.
    pub(crate) fn zone_input(scheme: &Scheme) -> RankingInput<'_> {
        let col = |v: &[f64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        let mut extras = HashMap::new();
        // Gate metric `revenue`: Z0 fails the 3-star gate (900000 < 1000000).
        extras.insert(
            "revenue".to_owned(),
            col(&[900_000.0, 2e6, 1_000_000.0, 3e6, 5e6, 1e6]),
        );
        extras.insert("accidents".to_owned(), vec![None; 6]);
        extras.insert("pollution".to_owned(), vec![None; 6]);
        RankingInput {
            scheme,
            criteria: vec![
                col(&[100.0, 80.0, 60.0, 60.0, 20.0, 0.0]),
                col(&[1.0, 3.0, 1.0, 1.0, 5.0, 5.0]),
            ],
            extras,
            groups: Groups::from_keys([
                vec!["region:410300", "tag:四支撑"],
                vec!["region:410300"],
                vec!["region:411700", "tag:四支撑"],
                vec!["region:410300", "tag:四支撑"],
                vec!["region:411700"],
                vec![],
            ]),
            previous: vec![
                Some((1, 0.9)),
                Some((5, 0.3)),
                Some((2, 0.7)),
                None,
                Some((6, 0.05)),
                Some((3, 0.5)),
            ],
        }
    }

    #[test]
    fn scores_ranks_and_percentiles_by_hand() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let out = rank(&input).unwrap();
        assert!(close(out.weights[0], 0.6) && close(out.weights[1], 0.4));
        let expected_scores = [1.0, 0.68, 0.76, 0.76, 0.12, 0.0];
        for (entry, want) in out.entries().zip(expected_scores) {
            assert!(close(entry.score, want), "{} vs {want}", entry.score);
            assert!(entry.included);
        }
        let ranks: Vec<u32> = out.rank.clone();
        assert_eq!(ranks, [1, 4, 2, 2, 5, 6]);
        // percentile = (6 − rank + 1) ÷ 6 × 100
        let pct: Vec<f64> = out.percentile.clone();
        let want = [
            100.0,
            50.0,
            250.0 / 3.0,
            250.0 / 3.0,
            200.0 / 6.0,
            100.0 / 6.0,
        ];
        for (a, b) in pct.iter().zip(want) {
            assert!(close(*a, b), "{a} vs {b}");
        }
        let z1 = out.entry(1);
        assert!(close(z1.normalized(0), 0.8) && close(z1.normalized(1), 0.5));
        assert!(close(z1.contribution(0), 0.48) && close(z1.contribution(1), 0.2));
        assert_eq!(z1.filled_values().collect::<Vec<_>>(), [false, false]);
    }

    #[test]
    fn ties_share_a_rank_one_two_two_four() {
        let mut order = Vec::new();
        let mut ranks = Vec::new();
        competition_ranks(&[0.9, 0.7, 0.8, 0.8], &mut order, &mut ranks);
        assert_eq!(ranks, [1, 4, 2, 2]);
        assert_eq!(order, [0, 2, 3, 1]);
        // Within 1e-12 relative is a tie; 1e-9 apart is not.
        competition_ranks(&[0.5, 0.5 + 1e-15, 0.5 - 1e-9], &mut order, &mut ranks);
        assert_eq!(ranks, [1, 1, 3]);
        competition_ranks(&[f64::NAN, 1.0, 0.0], &mut order, &mut ranks);
        assert_eq!(ranks, [3, 1, 2]);
        competition_ranks(&[], &mut order, &mut ranks);
        assert!(ranks.is_empty());
    }

    #[test]
    fn the_radix_sort_orders_as_a_stable_sort_by_total_cmp() {
        use rand_chacha::ChaCha8Rng;
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let cohorts: Vec<Vec<f64>> = vec![
            vec![],
            vec![0.5],
            vec![1.0; 50],
            // Top bits equal, the last few apart: only the run fix-up orders these.
            (0..3000)
                .map(|i| {
                    if i == 5 {
                        0.75
                    } else {
                        0.5 + f64::from(i % 97) * 1e-14
                    }
                })
                .collect(),
            (0..3000).map(|_| unit() - 0.5).collect(),
            (0..3000).map(|_| (unit() * 20.0).round()).collect(),
            (0..3000)
                .map(|i| match i % 7 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    3 => -0.0,
                    4 => 0.0,
                    _ => (unit() - 0.5) * 1e300,
                })
                .collect(),
        ];
        let mut sorter = ScoreSorter::default();
        for scores in &cohorts {
            let mut want: Vec<u32> = (0..scores.len() as u32).collect();
            want.sort_by(|&a, &b| {
                let (a, b) = (scores[a as usize], scores[b as usize]);
                match (a.is_nan(), b.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => b.total_cmp(&a),
                }
            });
            let got: Vec<u32> = sorter.sort(scores).iter().map(|k| k.position).collect();
            assert_eq!(got, want, "{} scores", scores.len());
        }
    }

    #[test]
    fn keys_give_their_scores_back_and_a_slice_ranks_as_the_whole() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.76,
        ] {
            assert_eq!(
                score_of_key(descending_key(x)).to_bits(),
                x.to_bits(),
                "{x}"
            );
        }
        assert!(score_of_key(descending_key(f64::NAN)).is_nan());
        let scores = [0.3, f64::NAN, 0.9, 0.3 + 1e-14, -2.0, 0.9, 0.5, 0.0, -0.0];
        let (mut order, mut all) = (Vec::new(), Vec::new());
        competition_ranks(&scores, &mut order, &mut all);
        let (mut sorter, mut some) = (ScoreSorter::default(), Vec::new());
        for from in 0..scores.len() {
            for to in from..=scores.len() {
                competition_ranks_of(&scores, from..to, &mut sorter, &mut some);
                assert_eq!(some, all[from..to], "{from}..{to}");
            }
        }
    }

    #[test]
    fn stars_need_score_and_gates() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let out = rank(&input).unwrap();
        let stars: Vec<u8> = out.stars.clone();
        // Z0 scores 1.0 but revenue 900000 fails the 3-star gate → 2 stars.
        // Z1 .68 → 2; Z2 .76 → 2 (gate holds, score below .8); Z3 .76 → 2; Z4 .12, Z5 0 → 0.
        assert_eq!(stars, [2, 2, 2, 2, 0, 0]);

        let mut scheme = zone_scheme();
        scheme.star_rules[1].min_score = 0.7;
        let input = zone_input(&scheme);
        let out = rank(&input).unwrap();
        let stars: Vec<u8> = out.stars.clone();
        // Z2 revenue exactly 1000000 passes `>=`; Z0 still fails; Z1 .68 < .7.
        assert_eq!(stars, [2, 2, 3, 3, 0, 0]);

        // A missing gate value fails the gate.
        let mut input = zone_input(&scheme);
        input.extras.get_mut("revenue").unwrap()[3] = None;
        let out = rank(&input).unwrap();
        assert_eq!(out.entry(3).stars, 2);
    }

    #[test]
    fn deduction_per_accident_moves_the_score() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        // Z0 had 1 major safety accident: 1.0 − 1 = 0.0, tying Z5 at the bottom.
        input.extras.get_mut("accidents").unwrap()[0] = Some(1.0);
        // Z4 had 0 (explicitly): unchanged.
        input.extras.get_mut("accidents").unwrap()[4] = Some(0.0);
        let out = rank(&input).unwrap();
        let z0 = out.entry(0);
        assert!(close(z0.bonus, -1.0));
        assert!(close(z0.score, 0.0));
        assert!(close((0..2).map(|j| z0.contribution(j)).sum::<f64>(), 1.0));
        let ranks: Vec<u32> = out.rank.clone();
        // .76 .76 .68 .12 then 0, 0 tie
        assert_eq!(ranks, [5, 3, 1, 1, 4, 5]);
        assert_eq!(out.entry(0).stars, 0);
        assert_eq!(out.entry(0).rank_change, Some(1 - 5));
    }

    #[test]
    fn veto_bars_stars_and_class_a() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.extras.get_mut("pollution").unwrap()[2] = Some(1.0);
        input.extras.get_mut("pollution").unwrap()[1] = Some(0.0);
        let out = rank(&input).unwrap();
        let z2 = out.entry(2);
        assert_eq!(z2.vetoes().collect::<Vec<_>>(), ["pollution incident"]);
        assert_eq!(z2.stars, 0);
        // 6 entities: A is rank ≤ ceil(1.2) = 2, so Z2 (rank 2) would be A; the veto makes it B.
        assert_eq!(z2.class_label, "B");
        assert_eq!(out.entry(3).class_label, "A");
        assert_eq!(out.entry(3).stars, 2);
        assert!(out.entry(1).vetoes().next().is_none());
        // The veto does not change score or rank.
        assert!(close(z2.score, 0.76));
        assert_eq!(z2.rank, 2);
    }

    #[test]
    fn classes_under_default_cuts_on_ten_entities() {
        let mut scheme = zone_scheme();
        scheme.criteria.truncate(1);
        scheme.star_rules.clear();
        scheme.adjustments.clear();
        scheme.vetoes.clear();
        // revenue 100, 90, …, 10 with a tie at ranks 6/7 (50, 50): min-max scores
        // 1, 8/9, 7/9, 6/9, 5/9, 4/9, 4/9, 2/9, 1/9, 0 → ranks 1 2 3 4 5 6 6 8 9 10.
        let values = [100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 50.0, 30.0, 20.0, 10.0];
        let input = RankingInput {
            scheme: &scheme,
            criteria: vec![values.iter().map(|&v| Some(v)).collect()],
            extras: HashMap::new(),
            groups: Groups::new(),
            previous: vec![],
        };
        let out = rank(&input).unwrap();
        let ranks: Vec<u32> = out.rank.clone();
        assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 6, 8, 9, 10]);
        let classes: Vec<&str> = out.entries().map(|e| e.class_label).collect();
        // A: rank ≤ ceil(10 × .20) = 2; B: ≤ 6; C: ≤ ceil(9.5) = 10 → with 10 entities no D.
        assert_eq!(classes, ["A", "A", "B", "B", "B", "B", "B", "C", "C", "C"]);

        // A tie straddling the A cut takes the better class: ranks 1, 2, 2 are all A.
        let values = [100.0, 90.0, 90.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0, 10.0];
        let input = RankingInput {
            criteria: vec![values.iter().map(|&v| Some(v)).collect()],
            ..input
        };
        let out = rank(&input).unwrap();
        let classes: Vec<&str> = out.entries().map(|e| e.class_label).collect();
        assert_eq!(classes, ["A", "A", "A", "B", "B", "B", "C", "C", "C", "C"]);

        // 20 entities: D is the last rank (ceil(20 × .95) = 19).
        let values: Vec<Option<f64>> = (0..20).map(|i| Some(f64::from(20 - i))).collect();
        let input = RankingInput {
            criteria: vec![values],
            ..input
        };
        let out = rank(&input).unwrap();
        let counts = ["A", "B", "C", "D"]
            .map(|label| out.entries().filter(|e| e.class_label == label).count());
        assert_eq!(counts, [4, 8, 7, 1]);
        assert_eq!(out.entry(19).class_label, "D");
    }

    #[test]
    fn classes_by_score() {
        let mut scheme = zone_scheme();
        for (cut, min) in scheme.class_cuts.iter_mut().zip([0.9, 0.7, 0.1]) {
            cut.min_score = Some(min);
        }
        let input = zone_input(&scheme);
        let out = rank(&input).unwrap();
        let classes: Vec<&str> = out.entries().map(|e| e.class_label).collect();
        // 1.0 ≥ .9 A; .68 < .7 → C (≥ .1); .76 B; .76 B; .12 C; 0 → D (100%).
        assert_eq!(classes, ["A", "C", "B", "B", "C", "D"]);
    }

    /// Z1's energy_intensity is missing.
    fn with_missing(scheme: &Scheme) -> RankingInput<'_> {
        let mut input = zone_input(scheme);
        input.criteria[1][1] = None;
        input
    }

    #[test]
    fn exclude_policy_drops_and_reports() {
        let scheme = zone_scheme();
        let out = rank(&with_missing(&scheme)).unwrap();
        let z1 = out.entry(1);
        assert!(!z1.included);
        assert_eq!(
            z1.excluded_because,
            Some("missing value for `energy_intensity`")
        );
        assert_eq!((z1.rank, z1.score, z1.stars), (0, 0.0, 0));
        assert!(z1.normalized_values().next().is_none() && z1.class_label.is_empty());
        assert_eq!(z1.rank_change, None);
        assert_eq!(z1.previous_rank, Some(5));
        // Cohort of 5: per_mu(tax) min-max over 100, 60, 60, 20, 0 is unchanged; energy too.
        let scores: Vec<f64> = out.score.clone();
        for (a, b) in scores.iter().zip([1.0, 0.0, 0.76, 0.76, 0.12, 0.0]) {
            assert!(close(*a, b), "{a} vs {b}");
        }
        let ranks: Vec<u32> = out.rank.clone();
        assert_eq!(ranks, [1, 0, 2, 2, 4, 5]);
        assert!(close(out.entry(4).percentile, 40.0));
    }

    #[test]
    fn worst_policy_fills_the_worst_normalised_value() {
        let mut scheme = zone_scheme();
        scheme.missing_policy = MissingPolicy::Worst;
        let out = rank(&with_missing(&scheme)).unwrap();
        let z1 = out.entry(1);
        // Present energy 1, 1, 1, 5, 5 → normalised 1, 1, 1, 0, 0; worst 0.
        // Z1: .6 × .8 + .4 × 0 = .48.
        assert!(z1.included);
        assert_eq!(z1.filled_values().collect::<Vec<_>>(), [false, true]);
        assert!(close(z1.normalized(1), 0.0));
        assert!(close(z1.score, 0.48));
        let ranks: Vec<u32> = out.rank.clone();
        assert_eq!(ranks, [1, 4, 2, 2, 5, 6]);
    }

    #[test]
    fn cohort_mean_policy_fills_the_mean_normalised_value() {
        let mut scheme = zone_scheme();
        scheme.missing_policy = MissingPolicy::CohortMean;
        let out = rank(&with_missing(&scheme)).unwrap();
        let z1 = out.entry(1);
        // Mean of 1, 1, 1, 0, 0 = .6; Z1: .6 × .8 + .4 × .6 = .72.
        assert!(close(z1.normalized(1), 0.6));
        assert!(close(z1.score, 0.72));
        assert_eq!(z1.filled_values().collect::<Vec<_>>(), [false, true]);
        let ranks: Vec<u32> = out.rank.clone();
        assert_eq!(ranks, [1, 4, 2, 2, 5, 6]);
    }

    #[test]
    fn entropy_sees_filled_cells_at_the_mean_raw_value() {
        let mut scheme = zone_scheme();
        scheme.missing_policy = MissingPolicy::CohortMean;
        scheme.weighting = Weighting::Entropy;
        let out = rank(&with_missing(&scheme)).unwrap();
        // Z1's energy is filled with the mean of 1, 1, 1, 5, 5 = 2.6 for weighting.
        let raw = vec![
            vec![100.0, 80.0, 60.0, 60.0, 20.0, 0.0],
            vec![1.0, 2.6, 1.0, 1.0, 5.0, 5.0],
        ];
        let want = crate::ranking::weighting::entropy_weights(&raw).unwrap();
        assert!(close(out.weights[0], want[0]) && close(out.weights[1], want[1]));
        assert!(!close(out.weights[0], 0.6));
    }

    #[test]
    fn a_criterion_without_any_value_excludes_everyone_without_error() {
        let mut scheme = zone_scheme();
        scheme.missing_policy = MissingPolicy::Worst;
        let mut input = zone_input(&scheme);
        input.criteria[1] = vec![None; 6];
        let out = rank(&input).unwrap();
        assert!(out.weights.is_empty());
        assert!(out.entries().all(|e| !e.included));
        assert_eq!(
            out.entry(0).excluded_because,
            Some("no entity has a value for criterion `energy_intensity`")
        );
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria[0] = vec![None; 6];
        let out = rank(&input).unwrap();
        assert!(out.entries().all(|e| !e.included && e.rank == 0));
    }

    #[test]
    fn group_ranks_use_the_same_tie_rule() {
        let scheme = zone_scheme();
        let out = rank(&zone_input(&scheme)).unwrap();
        let groups = |e: usize| out.entry(e).group_ranks().collect::<Vec<_>>();
        let pair = |k: &'static str, r: u32| (k, r);
        // region:410300 = Z0 1.0, Z3 .76, Z1 .68 → 1, 2, 3.
        // region:411700 = Z2 .76, Z4 .12 → 1, 2.
        // tag:四支撑 = Z0 1.0, Z2 .76, Z3 .76 → 1, 2, 2.
        assert_eq!(groups(0), [pair("region:410300", 1), pair("tag:四支撑", 1)]);
        assert_eq!(groups(1), [pair("region:410300", 3)]);
        assert_eq!(groups(2), [pair("region:411700", 1), pair("tag:四支撑", 2)]);
        assert_eq!(groups(3), [pair("region:410300", 2), pair("tag:四支撑", 2)]);
        assert_eq!(groups(4), [pair("region:411700", 2)]);
        assert!(groups(5).is_empty());
    }

    #[test]
    fn previous_rank_and_change() {
        let scheme = zone_scheme();
        let out = rank(&zone_input(&scheme)).unwrap();
        let changes: Vec<Option<i64>> = out.entries().map(|e| e.rank_change).collect();
        // previous 1, 5, 2, —, 6, 3; current 1, 4, 2, 2, 5, 6.
        assert_eq!(
            changes,
            [Some(0), Some(1), Some(0), None, Some(1), Some(-3)]
        );
        assert_eq!(out.entry(4).previous_score, Some(0.05));
    }

    #[test]
    fn input_shape_errors() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria.pop();
        assert_eq!(
            rank(&input).unwrap_err(),
            RankingError::CriterionCount {
                expected: 2,
                got: 1
            }
        );
        let mut input = zone_input(&scheme);
        input.criteria[1].pop();
        assert!(matches!(
            rank(&input).unwrap_err(),
            RankingError::ColumnLength { .. }
        ));
        let mut input = zone_input(&scheme);
        input.extras.remove("pollution");
        let err = rank(&input).unwrap_err();
        assert!(err.to_string().contains("`pollution`"), "{err}");
        assert!(err.to_string().contains("vetoes[0]"), "{err}");
        let mut bad = zone_scheme();
        bad.criteria[0].weight = -1.0;
        let err = rank(&zone_input(&bad)).unwrap_err();
        assert!(err.to_string().contains("criteria[0].weight"), "{err}");
    }

    #[test]
    fn gate_metric_may_be_a_criterion() {
        let mut scheme = zone_scheme();
        scheme.star_rules[1].gates = vec![Gate::parse("per_mu(tax) >= 100").unwrap()];
        let input = zone_input(&scheme);
        let out = rank(&input).unwrap();
        assert_eq!(out.entry(0).stars, 3);
    }
}
