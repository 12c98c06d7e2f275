//! "Why am I ranked here?": the gap to the nearest entity above and, per criterion, the raw
//! value that alone gains a rank, found by re-running the engine.
//!
//! Changing one raw value moves more than the entity's own normalised value: min-max bounds,
//! means and standard deviations, vector norms, cohort-mean benchmarks, percentiles, entropy and
//! CRITIC weights and the TOPSIS ideals all follow it. So the advice is not an inverse of the
//! normalisation but a search over that one raw value, each probe a full [`rank`] over the run's
//! own input (missing-data policy, weights, bonuses and deductions as the run applied them).

use super::Weighting;
use super::engine::{Groups, RankingInput, RankingOutcome, rank};
use super::scheme::nearly_equal;
use crate::cancel::{Cancel, Cancelled, NEVER};
use crate::catalog::Direction;

/// At most this many engine runs per criterion, each a whole `rank` over the cohort: an
/// explanation of 5 criteria over 200 entities takes about 7 ms, over 5,000 about 0.25 s
/// (release build; BENCHMARKS.md).
pub const RUNS_PER_CRITERION: usize = 80;
/// Beyond 5,000 entities the runs per criterion shrink so that runs × entities stays at this,
/// down to [`MIN_RUNS_PER_CRITERION`].
const ENTITY_RUNS_PER_CRITERION: usize = 400_000;
/// The fewest runs per criterion, whatever the cohort: over 500,000 entities an explanation of
/// 5 criteria still takes 16–22 s.
const MIN_RUNS_PER_CRITERION: usize = 8;

/// How one criterion's engine runs are spent (24 + 12 + 40 + 4 at the full budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    /// Candidates among the other entities' values (spread evenly over them when there are more).
    others: usize,
    /// Candidates beyond the cohort's best value, ever further out.
    beyond: usize,
    /// Halvings of the bracket around the first candidate that gains the rank.
    bisections: usize,
    /// Checks of the rounded value, each one decimal finer than the last.
    roundings: usize,
}

impl Budget {
    fn for_cohort(entities: usize) -> Budget {
        let runs = (ENTITY_RUNS_PER_CRITERION / entities.max(1))
            .clamp(MIN_RUNS_PER_CRITERION, RUNS_PER_CRITERION);
        let roundings = (runs / 20).max(1);
        let others = (runs * 3 / 10).max(2);
        let beyond = (runs * 3 / 20).max(2);
        Budget {
            others,
            beyond,
            bisections: runs - others - beyond - roundings,
            roundings,
        }
    }

    fn runs(self) -> usize {
        self.others + self.beyond + self.bisections + self.roundings
    }
}

/// What one criterion alone would take to gain a rank.
#[derive(Clone, Debug, PartialEq)]
pub struct CriterionGap {
    /// The criterion's index in the scheme.
    pub criterion: usize,
    /// The above entity's contribution minus this one's, in the run (negative where this one is
    /// ahead).
    pub score_gap: f64,
    /// The change of this entity's normalised value that `raw_target` brings, as the re-run
    /// normalises it (0 when there is no target).
    pub normalized_gap: f64,
    /// The raw value that, alone, gains at least one rank; a re-run with it confirmed
    /// `rank_with_target`. None when no value of the criterion alone does (see `note`).
    pub raw_target: Option<f64>,
    /// `raw_target` minus the current raw value (negative when lower is better; None when the
    /// value is missing or there is no target).
    pub raw_gap: Option<f64>,
    /// The entity's rank in the re-run with `raw_target`.
    pub rank_with_target: Option<u32>,
    /// Why there is no target, or what to know about it (a missing value, a moved scale).
    pub note: Option<String>,
}

/// The gap from one entity to the nearest entity ranked above it.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The entity explained (input index).
    pub entity: usize,
    /// The entity with the smallest score strictly above (None for the top).
    pub above: Option<usize>,
    /// The score difference to `above` (0 for the top).
    pub score_gap: f64,
    /// Per criterion, what alone would gain a rank (empty for the top).
    pub gaps: Vec<CriterionGap>,
}

/// The run's input with one cell replaced at a time; groups and previous ranks are dropped, as
/// a probe only needs the entity's rank.
struct Probe<'a> {
    input: RankingInput<'a>,
    entity: usize,
    /// Engine runs allowed per criterion.
    budget: Budget,
    /// Engine runs so far.
    runs: usize,
    /// Once set, probes stop running the engine and the explanation is abandoned.
    cancel: &'a Cancel,
}

/// What one engine run gave the entity.
#[derive(Clone, Copy, Debug)]
struct Trial {
    rank: u32,
    normalized: f64,
}

impl Probe<'_> {
    /// The entity's rank and normalised value with criterion `j` set to `value` (None when the
    /// engine refuses the input, e.g. entropy weighting of a negative value).
    fn run(&mut self, j: usize, value: f64) -> Option<Trial> {
        self.runs += 1;
        if self.cancel.is_cancelled() {
            return None;
        }
        let kept = self.input.criteria[j][self.entity].replace(value);
        let outcome = rank(&self.input);
        self.input.criteria[j][self.entity] = kept;
        let outcome = outcome.ok()?;
        if self.entity >= outcome.len() {
            return None;
        }
        let entry = outcome.entry(self.entity);
        entry.included.then(|| Trial {
            rank: entry.rank,
            normalized: entry.normalized(j),
        })
    }
}

/// A raw value that gains a rank, as the search found it.
struct Found {
    value: f64,
    trial: Trial,
    /// The closest value known not to gain, when the budget ran out before the bracket
    /// narrowed to 1e-9 relative.
    short_of: Option<f64>,
}

/// Searches criterion `j` for the value closest to `anchor`, in the better direction, that
/// brings the entity to a rank better than `rank_now`; `column` holds the rest of the cohort's
/// present values of the criterion. Err carries the farthest value tried.
///
/// The rank as a function of one raw value need not be monotone (entropy and CRITIC weights and
/// TOPSIS ideals move with it), so the search first scans candidates in order of distance: the
/// other entities' values on the criterion (where percentiles and scales change) and then
/// points ever further beyond the cohort's best. Between the last candidate that does not gain
/// and the first that does it bisects (to 1e-9 relative), then rounds the value outward to five
/// significant digits of the change and re-runs the engine to confirm the rounded value; if it
/// does not hold, a finer rounding, and finally the bisected value itself, is used. A gain
/// between two scanned candidates that do not gain can be missed.
/// `check_anchor` also tries `anchor` itself (used for a missing value, where the anchor is the
/// cohort's worst value rather than the entity's own). A lower-is-better criterion whose
/// values are all ≥ 0 is searched down to 0, not below.
fn search(
    probe: &mut Probe<'_>,
    column: &[f64],
    j: usize,
    direction: Direction,
    anchor: f64,
    check_anchor: bool,
    rank_now: u32,
) -> Result<Found, f64> {
    let sign = match direction {
        Direction::HigherIsBetter => 1.0,
        Direction::LowerIsBetter => -1.0,
    };
    let budget = probe.budget;
    let at = |t: f64| anchor + sign * t;
    let (lo, hi) = column
        .iter()
        .fold((anchor, anchor), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let floor_distance = (sign < 0.0 && lo >= 0.0).then_some(anchor);
    let spread = if hi > lo {
        hi - lo
    } else if anchor != 0.0 {
        anchor.abs()
    } else {
        1.0
    };

    let mut ahead: Vec<f64> = column
        .iter()
        .map(|&v| sign * (v - anchor))
        .filter(|&t| t > 0.0)
        .collect();
    ahead.sort_by(f64::total_cmp);
    ahead.dedup();
    let farthest = ahead.last().copied().unwrap_or(0.0);
    // Trying the anchor itself takes one of the scan's runs.
    let mut candidates = evenly(&ahead, budget.others - usize::from(check_anchor));
    match floor_distance {
        // Halving the way to 0, then 0 itself.
        Some(floor) => {
            let mut half = 1.0;
            for _ in 1..budget.beyond {
                half /= 2.0;
                candidates.push(floor - (floor - farthest) * half);
            }
            candidates.push(floor);
            candidates.retain(|&t| t <= floor);
        }
        // Out to 4^11 spreads past the best value (×4 a step at the full budget).
        None => {
            let growth = 4f64.powf(11.0 / (budget.beyond - 1) as f64);
            let mut step = spread;
            for _ in 0..budget.beyond {
                candidates.push(farthest + step);
                step *= growth;
            }
        }
    }
    candidates.dedup();
    candidates.retain(|&t| t > 0.0);
    if check_anchor {
        candidates.insert(0, 0.0);
    }

    let gains = |trial: Option<Trial>| trial.filter(|t| t.rank < rank_now);
    // The bracket is narrow enough at 1e-9 of the values' magnitude.
    let narrow =
        |fail: f64, t_hi: f64| t_hi - fail <= 1e-9 * anchor.abs().max(at(t_hi).abs()).max(spread);
    let mut fail = 0.0;
    let mut success = None;
    for &t in &candidates {
        if let Some(trial) = gains(probe.run(j, at(t))) {
            success = Some((t, trial));
            break;
        }
        fail = t;
    }
    let Some((mut t_hi, mut trial_hi)) = success else {
        return Err(at(candidates.last().copied().unwrap_or(0.0)));
    };
    if t_hi > 0.0 {
        for _ in 0..budget.bisections {
            if narrow(fail, t_hi) {
                break;
            }
            let mid = fail + (t_hi - fail) / 2.0;
            match gains(probe.run(j, at(mid))) {
                Some(trial) => (t_hi, trial_hi) = (mid, trial),
                None => fail = mid,
            }
        }
    }
    let exact = at(t_hi);
    let short_of = (t_hi > 0.0 && !narrow(fail, t_hi)).then(|| at(fail));
    if t_hi == 0.0 {
        return Ok(Found {
            value: exact,
            trial: trial_hi,
            short_of,
        });
    }
    let decimals = 4 - (t_hi.log10().floor() as i32);
    for finer in 0..budget.roundings as i32 {
        let Some(rounded) =
            round_outward(exact, sign, decimals + finer, floor_distance.map(|_| 0.0))
        else {
            break;
        };
        if let Some(trial) = gains(probe.run(j, rounded)) {
            return Ok(Found {
                value: rounded,
                trial,
                short_of,
            });
        }
    }
    Ok(Found {
        value: exact,
        trial: trial_hi,
        short_of,
    })
}

/// Whether `value` is strictly better than `than` in `direction`.
fn beyond(value: f64, than: f64, direction: Direction) -> bool {
    match direction {
        Direction::HigherIsBetter => value > than,
        Direction::LowerIsBetter => value < than,
    }
}

/// At most `count` of the sorted `values`, spread evenly over them (first and last kept).
fn evenly(values: &[f64], count: usize) -> Vec<f64> {
    if values.len() <= count {
        return values.to_vec();
    }
    let last = values.len() - 1;
    let mut picked: Vec<f64> = (0..count).map(|i| values[i * last / (count - 1)]).collect();
    picked.dedup();
    picked
}

/// `value` rounded away from the current value (up for `sign` > 0) at `decimals` decimals, and
/// one step further if that leaves it unchanged, so the printed value keeps a margin; not
/// below `floor`. None when the rounding is finer than the value's precision.
fn round_outward(value: f64, sign: f64, decimals: i32, floor: Option<f64>) -> Option<f64> {
    let scale = 10f64.powi(decimals);
    let scaled = value * scale;
    if !scaled.is_finite() || scaled.abs() >= 2f64.powi(52) {
        return None;
    }
    let mut steps = if sign > 0.0 {
        scaled.ceil()
    } else {
        scaled.floor()
    };
    if steps == scaled {
        steps += sign;
    }
    let rounded = steps / scale;
    Some(floor.map_or(rounded, |f| rounded.max(f)))
}

/// A number for a note: at most six significant digits.
fn shown(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    let decimals = (5 - value.abs().log10().floor() as i32).max(0);
    let text = format!("{value:.*}", decimals as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Explains an included entity's position; None when it is unknown or excluded.
///
/// `above` is the entity with the smallest score strictly above. For each criterion the advice
/// is the raw value closest to the current one, in the criterion's better direction, with
/// which a re-run of the whole ranking puts the entity at a better rank (see [`search`]; at
/// most [`RUNS_PER_CRITERION`] engine runs each, fewer over cohorts beyond 5,000 entities).
/// A missing value (filled by the policy) is searched from the cohort's worst value, so the
/// advice is the least good value to record.
pub fn explain(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    entity: usize,
) -> Option<Explanation> {
    match explain_cancellable(input, outcome, entity, &NEVER) {
        Ok(explanation) => explanation,
        Err(Cancelled) => unreachable!("NEVER is never set"),
    }
}

/// [`explain`] that gives up with `Err(Cancelled)` soon after `cancel` is set: it is polled
/// before every engine run.
pub fn explain_cancellable(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    entity: usize,
    cancel: &Cancel,
) -> Result<Option<Explanation>, Cancelled> {
    let cohort = outcome.included_count();
    let explanation = explain_within(input, outcome, entity, Budget::for_cohort(cohort), cancel);
    cancel.check()?;
    Ok(explanation)
}

/// [`explain`] with a given budget of engine runs per criterion.
fn explain_within(
    input: &RankingInput<'_>,
    outcome: &RankingOutcome,
    entity: usize,
    budget: Budget,
    cancel: &Cancel,
) -> Option<Explanation> {
    if entity >= outcome.len() {
        return None;
    }
    let entry = Some(outcome.entry(entity)).filter(|e| e.included)?;
    let above = outcome
        .entries()
        .enumerate()
        .filter(|(_, e)| e.included && e.score > entry.score && !nearly_equal(e.score, entry.score))
        .min_by(|(i, a), (j, b)| a.score.total_cmp(&b.score).then(i.cmp(j)))
        .map(|(i, _)| i);
    let Some(above) = above else {
        return Some(Explanation {
            entity,
            above: None,
            score_gap: 0.0,
            gaps: Vec::new(),
        });
    };
    let scheme = input.scheme;
    let above_entry = outcome.entry(above);
    let mut probe = Probe {
        input: RankingInput {
            groups: Groups::new(),
            previous: Vec::new(),
            ..input.clone()
        },
        entity,
        budget,
        runs: 0,
        cancel,
    };
    let cohort = outcome.included_count();
    let gaps = scheme
        .criteria
        .iter()
        .enumerate()
        .map(|(j, criterion)| {
            let metric = criterion.metric.as_str();
            let mut gap = CriterionGap {
                criterion: j,
                score_gap: above_entry.contribution(j) - entry.contribution(j),
                normalized_gap: 0.0,
                raw_target: None,
                raw_gap: None,
                rank_with_target: None,
                note: None,
            };
            if scheme.weighting == Weighting::Fixed && outcome.weights[j] == 0.0 {
                gap.note = Some(format!(
                    "no value of {metric} alone gains a rank: its weight is 0"
                ));
                return gap;
            }
            let direction = criterion.direction;
            // The present values of the rest of the cohort, and the best and worst of them.
            let raw = &input.criteria[j];
            let others: Vec<f64> = outcome
                .cohort
                .iter()
                .filter(|&&e| e != entity)
                .filter_map(|&e| raw[e].filter(|v| v.is_finite()))
                .collect();
            let pick = |better: bool| {
                others.iter().copied().reduce(|a, b| {
                    if beyond(b, a, direction) == better {
                        b
                    } else {
                        a
                    }
                })
            };
            let (best_other, worst_other) = (pick(true), pick(false));
            let current = input.criteria[j][entity].filter(|v| v.is_finite());
            let Some(anchor) = current.or(worst_other) else {
                return gap;
            };
            let runs_before = probe.runs;
            let searched = search(
                &mut probe,
                &others,
                j,
                direction,
                anchor,
                current.is_none(),
                entry.rank,
            );
            debug_assert!(probe.runs - runs_before <= budget.runs());
            match searched {
                Ok(found) => {
                    gap.raw_target = Some(found.value);
                    gap.raw_gap = current.map(|c| found.value - c);
                    gap.rank_with_target = Some(found.trial.rank);
                    gap.normalized_gap = found.trial.normalized - entry.normalized(j);
                    let mut notes = Vec::new();
                    if current.is_none() {
                        notes.push(format!(
                            "{metric} is missing and was scored by the missing-data policy; \
                             a value of {} gains the rank",
                            shown(found.value)
                        ));
                    }
                    if let Some(best) = best_other.filter(|&b| beyond(found.value, b, direction)) {
                        notes.push(format!(
                            "past the cohort's best {metric}, {}: the scale, and with it the \
                             others' scores, moves",
                            shown(best)
                        ));
                    }
                    if let Some(short) = found.short_of {
                        notes.push(format!(
                            "the smallest change that gains lies between {} and {}: over {} \
                             entities the search has {} engine runs",
                            shown(short),
                            shown(found.value),
                            cohort,
                            budget.runs()
                        ));
                    }
                    gap.note = (!notes.is_empty()).then(|| notes.join("; "));
                }
                Err(tried) => {
                    let leads: Vec<&str> = scheme
                        .criteria
                        .iter()
                        .enumerate()
                        .filter(|&(k, _)| k != j)
                        .filter(|&(k, _)| {
                            let (a, b) = (above_entry.contribution(k), entry.contribution(k));
                            a > b && !nearly_equal(a, b)
                        })
                        .map(|(_, c)| c.metric.as_str())
                        .collect();
                    let way = match direction {
                        Direction::HigherIsBetter => "up",
                        Direction::LowerIsBetter => "down",
                    };
                    let why = if leads.is_empty() {
                        String::new()
                    } else {
                        format!(": the entity above leads on {}", leads.join(", "))
                    };
                    gap.note = Some(format!(
                        "no value of {metric} alone gains a rank (tried {way} to {}){why}",
                        shown(tried)
                    ));
                }
            }
            gap
        })
        .collect();

    Some(Explanation {
        entity,
        above: Some(above),
        score_gap: above_entry.score - entry.score,
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ranking::engine::tests::{zone_input, zone_scheme};
    use crate::ranking::scheme::{Criterion, Scheme};
    use crate::ranking::{Aggregation, MissingPolicy, Normalization};

    /// The entity's rank with one raw value replaced.
    fn rank_with(input: &RankingInput<'_>, entity: usize, j: usize, value: f64) -> u32 {
        let mut input = input.clone();
        input.criteria[j][entity] = Some(value);
        rank(&input).unwrap().rank[entity]
    }

    /// Explains `entity` and checks every advice by writing it into the input and re-running
    /// the engine: the entity gains a rank, the one the explanation says. Where `minimal`,
    /// half the change and 99.9% of it do not gain.
    fn advice_holds(input: &RankingInput<'_>, entity: usize, minimal: bool) -> Explanation {
        let outcome = rank(input).unwrap();
        let now = outcome.rank[entity];
        let x = explain(input, &outcome, entity).unwrap();
        if now == 1 {
            assert!(x.gaps.is_empty() && x.above.is_none());
            return x;
        }
        assert_eq!(x.gaps.len(), input.scheme.criteria.len());
        for g in &x.gaps {
            let Some(target) = g.raw_target else {
                assert!(
                    g.note.as_deref().unwrap().starts_with("no value of"),
                    "{g:?}"
                );
                assert_eq!((g.raw_gap, g.rank_with_target), (None, None));
                continue;
            };
            let rerun = rank_with(input, entity, g.criterion, target);
            assert!(rerun < now, "{g:?}: rank {rerun}, was {now}");
            assert_eq!(g.rank_with_target, Some(rerun), "{g:?}");
            let Some(current) = input.criteria[g.criterion][entity] else {
                continue;
            };
            assert_eq!(g.raw_gap, Some(target - current));
            let better = match input.scheme.criteria[g.criterion].direction {
                Direction::HigherIsBetter => target > current,
                Direction::LowerIsBetter => target < current,
            };
            assert!(better, "{g:?} from {current}");
            if minimal {
                for share in [0.5, 0.999] {
                    let short = current + (target - current) * share;
                    let rank = rank_with(input, entity, g.criterion, short);
                    assert!(rank >= now, "{g:?}: {short} already gives rank {rank}");
                }
            }
        }
        x
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    fn criterion(metric: &str, weight: f64, direction: Direction) -> Criterion {
        Criterion {
            metric: metric.to_owned(),
            weight,
            direction,
            benchmark: None,
        }
    }

    /// Three criteria (tax per mu up, energy intensity down, output per worker up) and no
    /// stars, classes or adjustments beyond the defaults.
    fn three_criteria(
        normalization: Normalization,
        weighting: Weighting,
        aggregation: Aggregation,
    ) -> Scheme {
        Scheme {
            criteria: vec![
                criterion("per_mu(tax)", 0.5, Direction::HigherIsBetter),
                criterion("energy_intensity", 0.3, Direction::LowerIsBetter),
                criterion("output_per_worker", 0.2, Direction::HigherIsBetter),
            ],
            normalization,
            weighting,
            aggregation,
            missing_policy: MissingPolicy::Exclude,
            star_rules: vec![],
            adjustments: vec![],
            vetoes: vec![],
            ..zone_scheme()
        }
    }

    /// Eight zones with positive values (entropy reads them as proportions).
    fn eight_zones(scheme: &Scheme) -> RankingInput<'_> {
        let col = |v: [f64; 8]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        RankingInput {
            scheme,
            criteria: vec![
                col([3.2, 2.5, 4.1, 1.8, 2.9, 3.6, 1.2, 2.2]),
                col([0.8, 1.1, 1.6, 0.6, 0.9, 1.3, 2.0, 0.7]),
                col([41.0, 55.0, 38.0, 47.0, 30.0, 62.0, 35.0, 50.0]),
            ],
            extras: HashMap::new(),
            groups: Groups::new(),
            previous: vec![],
        }
    }

    #[test]
    fn weighted_sum_min_max_advice_is_the_exact_inverse_inside_the_range() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        // Z1 (.68, rank 4): nearest above is .76, shared by Z2 and Z3 → the lower index, Z2.
        let x = advice_holds(&input, 1, true);
        assert_eq!(x.above, Some(2));
        assert!(close(x.score_gap, 0.08, 1e-12));
        // per_mu(tax): .08 ÷ .6 = .1333… on top of .8 → 93.333…, rounded up at five
        // significant digits of the change (13.333) → 93.334, which ties Z2 and Z3 at rank 2.
        let g = &x.gaps[0];
        assert_eq!(g.criterion, 0);
        assert_eq!(g.raw_target, Some(93.334));
        assert!(close(g.raw_gap.unwrap(), 13.334, 1e-9));
        assert_eq!(g.rank_with_target, Some(2));
        assert!(close(g.normalized_gap, 0.13334, 1e-9));
        assert_eq!(g.note, None);
        // Contributions: Z2 .36 vs Z1 .48 → −.12.
        assert!(close(g.score_gap, -0.12, 1e-12));
        // energy_intensity (lower better): .08 ÷ .4 = .2 on top of .5 → 5 − .7 × 4 = 2.2.
        let g = &x.gaps[1];
        assert!(close(g.raw_target.unwrap(), 2.2, 2e-5), "{g:?}");
        assert!(g.raw_target.unwrap() <= 2.2);
        assert_eq!(g.rank_with_target, Some(2));
        assert!(close(g.score_gap, 0.2, 1e-12));
    }

    #[test]
    fn advice_beyond_the_cohort_best_moves_the_scale() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        // Z4 (20, 5; .12, rank 5) → Z1 (.68). Past the cohort's best tax per mu, 100, Z4's own
        // value stays 1 while everyone else's shrinks: Z1 = .6 × 80 ÷ x + .2 meets Z4's .6 at
        // x = 120 — out of reach for an inverse that holds the column's max.
        let x = advice_holds(&input, 4, true);
        assert_eq!(x.above, Some(1));
        let g = &x.gaps[0];
        let target = g.raw_target.unwrap();
        assert!(target > 120.0 && close(target, 120.0, 0.011), "{g:?}");
        assert_eq!(g.rank_with_target, Some(4));
        assert!(close(g.normalized_gap, 0.8, 1e-12));
        assert_eq!(
            g.note.as_deref(),
            Some(
                "past the cohort's best per_mu(tax), 100: the scale, and with it the others' scores, moves"
            )
        );
        // Energy alone cannot: even at 0, Z1 keeps .48 + .4 × 2 ÷ 5 = .64 > Z4's .12 + .4.
        let g = &x.gaps[1];
        assert_eq!(g.raw_target, None);
        assert_eq!(g.normalized_gap, 0.0);
        assert_eq!(
            g.note.as_deref(),
            Some(
                "no value of energy_intensity alone gains a rank (tried down to 0): the entity \
                 above leads on per_mu(tax)"
            )
        );
    }

    #[test]
    fn no_single_criterion_can_gain_the_rank() {
        // Equal quarters over min-max: E1 (0, 0, 0, 0) trails E2 (5, 5, 5, 5) and E0 (10, …).
        // One criterion alone gives E1 at most ¼; passing E2 on it drops E2 to 0 there, but E2
        // keeps ¾ × ½ from the other three.
        let mut scheme = three_criteria(
            Normalization::MinMax,
            Weighting::Equal,
            Aggregation::WeightedSum,
        );
        scheme.criteria[1].direction = Direction::HigherIsBetter;
        scheme
            .criteria
            .push(criterion("patents", 0.0, Direction::HigherIsBetter));
        let col = |v: [f64; 3]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        let input = RankingInput {
            criteria: vec![col([10.0, 0.0, 5.0]); 4],
            ..eight_zones(&scheme)
        };
        let x = advice_holds(&input, 1, true);
        assert_eq!(x.above, Some(2));
        for g in &x.gaps {
            assert_eq!(g.raw_target, None, "{g:?}");
            let note = g.note.as_deref().unwrap();
            assert!(note.contains("(tried up to "), "{note}");
            let others: Vec<&str> = (0..4)
                .filter(|&k| k != g.criterion)
                .map(|k| scheme.criteria[k].metric.as_str())
                .collect();
            assert!(
                note.ends_with(&format!(
                    "): the entity above leads on {}",
                    others.join(", ")
                )),
                "{note}"
            );
        }
    }

    #[test]
    fn a_zero_weight_is_said_at_once() {
        let mut scheme = zone_scheme();
        scheme.criteria[1].weight = 0.0;
        let input = zone_input(&scheme);
        let x = advice_holds(&input, 4, true);
        assert_eq!(
            x.gaps[1].note.as_deref(),
            Some("no value of energy_intensity alone gains a rank: its weight is 0")
        );
        assert!(x.gaps[0].raw_target.is_some());
    }

    #[test]
    fn topsis_with_entropy_weights_advice_holds() {
        let scheme = three_criteria(
            Normalization::MinMax,
            Weighting::Entropy,
            Aggregation::Topsis,
        );
        let input = eight_zones(&scheme);
        let mut found = 0;
        for entity in 0..8 {
            let x = advice_holds(&input, entity, true);
            found += x.gaps.iter().filter(|g| g.raw_target.is_some()).count();
        }
        assert!(found >= 10, "{found}");
    }

    #[test]
    fn topsis_vector_critic_advice_holds() {
        let scheme = three_criteria(
            Normalization::Vector,
            Weighting::Critic,
            Aggregation::Topsis,
        );
        let input = eight_zones(&scheme);
        for entity in 0..8 {
            advice_holds(&input, entity, true);
        }
    }

    #[test]
    fn geometric_mean_advice_holds() {
        for normalization in [Normalization::Efficacy, Normalization::PercentileRank] {
            for weighting in [Weighting::Fixed, Weighting::Entropy] {
                let scheme = three_criteria(normalization, weighting, Aggregation::GeometricMean);
                let input = eight_zones(&scheme);
                for entity in 0..8 {
                    advice_holds(&input, entity, true);
                }
            }
        }
    }

    #[test]
    fn weighted_sum_advice_holds_for_every_normalization_and_weighting() {
        for normalization in [
            Normalization::MinMax,
            Normalization::ZScore,
            Normalization::Efficacy,
            Normalization::Vector,
            Normalization::BenchmarkRatio,
            Normalization::PercentileRank,
        ] {
            for weighting in [
                Weighting::Fixed,
                Weighting::Equal,
                Weighting::Entropy,
                Weighting::Critic,
            ] {
                let scheme = three_criteria(normalization, weighting, Aggregation::WeightedSum);
                let input = eight_zones(&scheme);
                for entity in 0..8 {
                    advice_holds(&input, entity, true);
                }
            }
        }
    }

    #[test]
    fn percentile_rank_advice_lands_on_another_entitys_value() {
        let scheme = three_criteria(
            Normalization::PercentileRank,
            Weighting::Fixed,
            Aggregation::WeightedSum,
        );
        let input = eight_zones(&scheme);
        let x = advice_holds(&input, 1, true);
        // A percentile only moves where the value passes another entity's, so the advice is
        // one of the cohort's values (rounded outward by a hair).
        let values: Vec<f64> = input.criteria[0].iter().map(|v| v.unwrap()).collect();
        let target = x.gaps[0].raw_target.unwrap();
        assert!(
            values
                .iter()
                .any(|&v| target >= v && close(target, v, 1e-3)),
            "{target}"
        );
    }

    #[test]
    fn benchmark_ratio_with_a_fixed_benchmark_and_a_cohort_mean() {
        let mut scheme = three_criteria(
            Normalization::BenchmarkRatio,
            Weighting::Fixed,
            Aggregation::WeightedSum,
        );
        scheme.criteria[0].benchmark = Some(3.0);
        let input = eight_zones(&scheme);
        // Fixed benchmark: the score is linear in the value, .5 × x ÷ 3.
        let outcome = rank(&input).unwrap();
        let x = advice_holds(&input, 1, true);
        let above = x.above.unwrap();
        let exact = 2.5 + x.score_gap / 0.5 * 3.0;
        let target = x.gaps[0].raw_target.unwrap();
        assert!(
            target >= exact && close(target, exact, 1e-3),
            "{target} vs {exact}"
        );
        assert!(outcome.score[above] > outcome.score[1]);
    }

    #[test]
    fn missing_values_and_deductions_as_the_run_applied_them() {
        for policy in [MissingPolicy::Worst, MissingPolicy::CohortMean] {
            let mut scheme = zone_scheme();
            scheme.missing_policy = policy;
            scheme.weighting = Weighting::Entropy;
            scheme.aggregation = Aggregation::Topsis;
            let mut input = zone_input(&scheme);
            // Z3's energy is missing (filled by the policy) and Z2 carries a deduction.
            input.criteria[1][3] = None;
            input.extras.get_mut("accidents").unwrap()[2] = Some(0.05);
            let outcome = rank(&input).unwrap();
            assert!(outcome.bonus[2] < 0.0);
            for entity in 0..6 {
                advice_holds(&input, entity, true);
            }
            let x = explain(&input, &outcome, 3).unwrap();
            let g = &x.gaps[1];
            assert_eq!(g.raw_gap, None);
            // The advice is a value to record: with it the entity gains the rank said.
            let target = g.raw_target.unwrap();
            assert_eq!(Some(rank_with(&input, 3, 1, target)), g.rank_with_target);
            assert!(g.rank_with_target.unwrap() < outcome.rank[3]);
            assert!(
                g.note
                    .as_deref()
                    .unwrap()
                    .starts_with("energy_intensity is missing"),
                "{policy:?}: {g:?}"
            );
        }
    }

    #[test]
    fn top_excluded_and_unknown_entities() {
        let scheme = zone_scheme();
        let mut input = zone_input(&scheme);
        input.criteria[0][5] = None;
        let outcome = rank(&input).unwrap();
        let top = explain(&input, &outcome, 0).unwrap();
        assert_eq!((top.above, top.score_gap), (None, 0.0));
        assert!(top.gaps.is_empty());
        assert_eq!(explain(&input, &outcome, 5), None);
        assert_eq!(explain(&input, &outcome, 99), None);
    }

    #[test]
    fn a_set_flag_abandons_the_explanation() {
        let scheme = zone_scheme();
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        let cancel = Cancel::new();
        assert_eq!(
            explain_cancellable(&input, &outcome, 3, &cancel),
            Ok(explain(&input, &outcome, 3))
        );
        cancel.cancel();
        assert_eq!(
            explain_cancellable(&input, &outcome, 3, &cancel),
            Err(Cancelled)
        );
    }

    #[test]
    fn the_budget_shrinks_over_large_cohorts() {
        let full = Budget::for_cohort(200);
        assert_eq!(
            full,
            Budget {
                others: 24,
                beyond: 12,
                bisections: 40,
                roundings: 4
            }
        );
        assert_eq!(Budget::for_cohort(5_000).runs(), 80);
        assert_eq!(Budget::for_cohort(20_000).runs(), 20);
        assert_eq!(Budget::for_cohort(500_000).runs(), 8);
        assert_eq!(Budget::for_cohort(0).runs(), 80);
    }

    #[test]
    fn a_small_budget_still_gives_advice_that_holds_and_says_how_close_it_is() {
        let mut scheme = zone_scheme();
        scheme.weighting = Weighting::Entropy;
        scheme.aggregation = Aggregation::Topsis;
        let input = zone_input(&scheme);
        let outcome = rank(&input).unwrap();
        let budget = Budget::for_cohort(1_000_000);
        let mut bracketed = 0;
        for entity in 1..6 {
            let now = outcome.rank[entity];
            if now == 1 {
                continue;
            }
            let x = explain_within(&input, &outcome, entity, budget, &NEVER).unwrap();
            for g in x.gaps.iter().filter(|g| g.raw_target.is_some()) {
                let target = g.raw_target.unwrap();
                assert!(
                    rank_with(&input, entity, g.criterion, target) < now,
                    "{g:?}"
                );
                let note = g.note.as_deref().unwrap_or_default();
                let Some(rest) = note
                    .split("; ")
                    .find_map(|n| n.strip_prefix("the smallest change that gains lies between "))
                else {
                    continue;
                };
                assert!(rest.ends_with("over 6 entities the search has 8 engine runs"));
                let short: f64 = rest.split(' ').next().unwrap().parse().unwrap();
                assert!(
                    rank_with(&input, entity, g.criterion, short) >= now,
                    "{note}"
                );
                bracketed += 1;
            }
        }
        assert!(bracketed > 0);
    }

    #[test]
    fn rounding_goes_outward_and_keeps_a_margin() {
        assert_eq!(round_outward(2.887_462, 1.0, 5, None), Some(2.88747));
        assert_eq!(round_outward(2.887_462, -1.0, 5, None), Some(2.88746));
        // Already on the grid: one step further.
        assert_eq!(round_outward(2.5, 1.0, 2, None), Some(2.51));
        assert_eq!(round_outward(0.0, -1.0, 2, Some(0.0)), Some(0.0));
        assert_eq!(round_outward(1e6, 1.0, 12, None), None);
        assert_eq!(shown(4_194_304.0 * 3.0), "12582912");
        assert_eq!(shown(0.000_123_456_78), "0.000123457");
        assert_eq!(shown(120.0), "120");
    }
}
