//! Assessment schemes: criteria, how they are combined, and the rules that turn a
//! score into stars and classes. A scheme is plain data; `validate` lists every fault at once so
//! an editor can show them all, each named by the field path the API uses.

use std::collections::HashMap;
use std::fmt;

use super::weighting::{planned_weights, shown};
use super::{Aggregation, MissingPolicy, Normalization, Weighting};
use crate::catalog::Direction;

/// One scored criterion: a metric, its weight and which way it improves.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    /// The metric text, e.g. `per_mu(tax)`.
    pub metric: String,
    /// The fixed weight (used by `Weighting::Fixed`; normalised to sum 1).
    pub weight: f64,
    /// Whether more or less is better.
    pub direction: Direction,
    /// The fixed benchmark for `BenchmarkRatio` (None: the cohort mean).
    pub benchmark: Option<f64>,
}

/// How a gate compares a metric's value with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateComparator {
    /// `>=` or `≥`.
    Ge,
    /// `>`.
    Gt,
    /// `<=` or `≤`.
    Le,
    /// `<`.
    Lt,
    /// `==` or `=`.
    Eq,
}

impl GateComparator {
    /// The ASCII operator, e.g. `>=`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateComparator::Ge => ">=",
            GateComparator::Gt => ">",
            GateComparator::Le => "<=",
            GateComparator::Lt => "<",
            GateComparator::Eq => "==",
        }
    }

    /// Whether `value` passes against `threshold`.
    ///
    /// Equality is within 1e-12 relative, the tolerance the ranking uses for ties, so a
    /// computed 999999.9999999999 meets `>= 1000000`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        let equal = nearly_equal(value, threshold);
        match self {
            GateComparator::Ge => value > threshold || equal,
            GateComparator::Gt => value > threshold && !equal,
            GateComparator::Le => value < threshold || equal,
            GateComparator::Lt => value < threshold && !equal,
            GateComparator::Eq => equal,
        }
    }
}

impl fmt::Display for GateComparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Equal within 1e-12 relative (exactly equal when both are zero).
pub(crate) fn nearly_equal(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// A hard condition such as `revenue >= 1000000` (a star needs every gate to hold).
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// The metric text, e.g. `yoy(revenue)`.
    pub metric: String,
    /// The comparison.
    pub comparator: GateComparator,
    /// The threshold, in the metric's canonical unit.
    pub value: f64,
}

/// Why a gate's text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GateParseError {
    /// No comparison operator was found.
    #[error(
        "gate `{input}` has no comparison; write it as `metric >= value` (operators: >= > <= < == ≥ ≤)"
    )]
    NoComparator {
        /// The text given.
        input: String,
    },
    /// Nothing stands before the operator.
    #[error("gate `{input}` names no metric before `{operator}`")]
    EmptyMetric {
        /// The text given.
        input: String,
        /// The operator found.
        operator: String,
    },
    /// The threshold after the operator is not a finite number.
    #[error("gate `{input}`: threshold `{threshold}` after `{operator}` is not a finite number")]
    BadThreshold {
        /// The text given.
        input: String,
        /// The operator found.
        operator: String,
        /// The text after the operator.
        threshold: String,
    },
}

impl Gate {
    /// Reads `metric <op> number`, e.g. `revenue >= 1000000`; operators `>= > <= < == = ≥ ≤`.
    ///
    /// The text is split on the last operator, so metric text such as `ratio(a, b)` may hold
    /// anything but an operator.
    pub fn parse(text: &str) -> Result<Gate, GateParseError> {
        let input = text.trim();
        let mut last: Option<(usize, usize, GateComparator)> = None;
        let mut chars = input.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let next_is_eq = matches!(chars.peek(), Some((_, '=')));
            let token = match c {
                '>' if next_is_eq => Some((2, GateComparator::Ge)),
                '<' if next_is_eq => Some((2, GateComparator::Le)),
                '=' if next_is_eq => Some((2, GateComparator::Eq)),
                '>' => Some((1, GateComparator::Gt)),
                '<' => Some((1, GateComparator::Lt)),
                '=' => Some((1, GateComparator::Eq)),
                '≥' => Some((c.len_utf8(), GateComparator::Ge)),
                '≤' => Some((c.len_utf8(), GateComparator::Le)),
                _ => None,
            };
            if let Some((len, comparator)) = token {
                if len == 2 {
                    chars.next();
                }
                last = Some((at, len, comparator));
            }
        }
        let Some((at, len, comparator)) = last else {
            return Err(GateParseError::NoComparator {
                input: input.to_owned(),
            });
        };
        let operator = input[at..at + len].to_owned();
        let metric = input[..at].trim();
        if metric.is_empty() {
            return Err(GateParseError::EmptyMetric {
                input: input.to_owned(),
                operator,
            });
        }
        let threshold = input[at + len..].trim();
        let value = threshold
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| GateParseError::BadThreshold {
                input: input.to_owned(),
                operator,
                threshold: threshold.to_owned(),
            })?;
        Ok(Gate {
            metric: metric.to_owned(),
            comparator,
            value,
        })
    }

    /// Whether a metric value passes the gate (a missing value never does).
    pub fn holds(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| v.is_finite() && self.comparator.holds(v, self.value))
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.comparator, self.value)
    }
}

/// A star level: reached with at least `min_score` and every gate holding.
#[derive(Clone, Debug, PartialEq)]
pub struct StarRule {
    /// The level, 1 to 6.
    pub level: u8,
    /// The lowest score (bonuses included) that earns the level.
    pub min_score: f64,
    /// Hard conditions that must all hold as well.
    pub gates: Vec<Gate>,
}

/// A class: the top `top_percent` of the ranking, or every score from `min_score` when given.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassCut {
    /// The class name, e.g. `A`.
    pub label: String,
    /// The cumulative share of the cohort, from the top, that this class reaches (0–100].
    pub top_percent: f64,
    /// When given, the class is by score instead: every score at or above it (top_percent ignored).
    pub min_score: Option<f64>,
}

/// The default A/B/C/D cuts: A top 20%, B to 60%, C to 95%, D the last 5%.
pub fn default_class_cuts() -> Vec<ClassCut> {
    [("A", 20.0), ("B", 60.0), ("C", 95.0), ("D", 100.0)]
        .into_iter()
        .map(|(label, top_percent)| ClassCut {
            label: label.to_owned(),
            top_percent,
            min_score: None,
        })
        .collect()
}

/// A bonus or deduction: `points_per_event` × the metric's count of events, added to the score.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjustment {
    /// The metric counting events, e.g. major safety accidents.
    pub metric: String,
    /// Points per event; negative for a deduction.
    pub points_per_event: f64,
    /// What the item is called in reports.
    pub label: String,
}

/// An event that bars stars and/or class A whenever the metric's value is above 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Veto {
    /// The metric counting the event.
    pub metric: String,
    /// What the veto is called in reports.
    pub label: String,
    /// Whether a vetoed entity gets no stars.
    pub bars_stars: bool,
    /// Whether a vetoed entity falls from the first class to the second.
    pub bars_class_a: bool,
}

/// An assessment definition: criteria, methods and the star, class, bonus and veto rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheme {
    /// The scored criteria, in order.
    pub criteria: Vec<Criterion>,
    /// How raw values become comparable.
    pub normalization: Normalization,
    /// How weights are set.
    pub weighting: Weighting,
    /// How normalised values combine into a score.
    pub aggregation: Aggregation,
    /// What a missing criterion value does.
    pub missing_policy: MissingPolicy,
    /// Star levels (any order).
    pub star_rules: Vec<StarRule>,
    /// Classes from best to worst.
    pub class_cuts: Vec<ClassCut>,
    /// Bonus and deduction items.
    pub adjustments: Vec<Adjustment>,
    /// Vetoes.
    pub vetoes: Vec<Veto>,
}

/// One thing wrong with a scheme, named by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemeFault {
    /// The field path, e.g. `criteria[2].weight`.
    pub field: String,
    /// Why it is refused, in words a scheme author can act on.
    pub reason: String,
}

impl fmt::Display for SchemeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Collects faults with their field paths.
struct Faults(Vec<SchemeFault>);

impl Faults {
    fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(SchemeFault {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn empty_text(&mut self, field: String, text: &str, what: &str) {
        if text.trim().is_empty() {
            self.add(field, format!("{what} must not be empty"));
        }
    }
}

/// Every fault in the scheme, or Ok when it can be run (metric names are checked elsewhere).
pub fn validate(scheme: &Scheme) -> Result<(), Vec<SchemeFault>> {
    let mut faults = Faults(Vec::new());
    validate_criteria(scheme, &mut faults);
    validate_stars(scheme, &mut faults);
    validate_classes(scheme, &mut faults);
    for (i, adjustment) in scheme.adjustments.iter().enumerate() {
        faults.empty_text(
            format!("adjustments[{i}].metric"),
            &adjustment.metric,
            "the metric",
        );
        faults.empty_text(
            format!("adjustments[{i}].label"),
            &adjustment.label,
            "the label",
        );
        if !adjustment.points_per_event.is_finite() {
            faults.add(
                format!("adjustments[{i}].points_per_event"),
                "points per event must be a finite number",
            );
        }
    }
    for (i, veto) in scheme.vetoes.iter().enumerate() {
        faults.empty_text(format!("vetoes[{i}].metric"), &veto.metric, "the metric");
        faults.empty_text(format!("vetoes[{i}].label"), &veto.label, "the label");
    }
    if faults.0.is_empty() {
        Ok(())
    } else {
        Err(faults.0)
    }
}

fn validate_criteria(scheme: &Scheme, faults: &mut Faults) {
    if scheme.criteria.is_empty() {
        faults.add("criteria", "a scheme needs at least one criterion");
    }
    for (i, criterion) in scheme.criteria.iter().enumerate() {
        faults.empty_text(
            format!("criteria[{i}].metric"),
            &criterion.metric,
            "the metric",
        );
        if !criterion.weight.is_finite() {
            faults.add(
                format!("criteria[{i}].weight"),
                "the weight must be a finite number",
            );
        } else if criterion.weight < 0.0 {
            faults.add(
                format!("criteria[{i}].weight"),
                format!(
                    "the weight {} is negative; use LOWER_IS_BETTER to reward less",
                    criterion.weight
                ),
            );
        }
        if let Some(benchmark) = criterion.benchmark
            && !(benchmark.is_finite() && benchmark > 0.0)
        {
            faults.add(
                format!("criteria[{i}].benchmark"),
                format!(
                    "the benchmark {benchmark} must be a positive number (values are divided by it)"
                ),
            );
        }
    }
    if scheme.weighting == Weighting::Fixed
        && !scheme.criteria.is_empty()
        && scheme.criteria.iter().all(|c| c.weight == 0.0)
    {
        faults.add(
            "criteria",
            "every weight is zero; FIXED weighting needs at least one positive weight",
        );
    }
    if scheme.aggregation == Aggregation::GeometricMean {
        // A weighted geometric mean multiplies n^w: a zero collapses the whole score to 0 and a
        // negative value has no real power, so only normalisations that stay above 0 fit.
        let why = match scheme.normalization {
            Normalization::Efficacy | Normalization::PercentileRank => None,
            Normalization::MinMax => Some("MIN_MAX gives the cohort's worst value 0"),
            Normalization::ZScore => Some("Z_SCORE gives every below-mean value a negative score"),
            Normalization::Vector => Some(
                "VECTOR gives 0 to a zero value (and to the only non-zero value when lower is better)",
            ),
            Normalization::BenchmarkRatio => {
                Some("BENCHMARK_RATIO gives 0 or less to zero or negative values")
            }
        };
        if let Some(why) = why {
            faults.add(
                "aggregation",
                format!(
                    "GEOMETRIC_MEAN needs normalised values above 0, but {why}, which makes the \
                     product 0 or undefined; use EFFICACY or PERCENTILE_RANK, or WEIGHTED_SUM"
                ),
            );
        }
    }
}

fn validate_stars(scheme: &Scheme, faults: &mut Faults) {
    let mut seen: HashMap<u8, usize> = HashMap::new();
    for (i, rule) in scheme.star_rules.iter().enumerate() {
        if !(1..=6).contains(&rule.level) {
            faults.add(
                format!("star_rules[{i}].level"),
                format!("star level {} is outside 1 to 6", rule.level),
            );
        } else if let Some(first) = seen.insert(rule.level, i) {
            seen.insert(rule.level, first);
            faults.add(
                format!("star_rules[{i}].level"),
                format!(
                    "star level {} is already defined by star_rules[{first}]",
                    rule.level
                ),
            );
        }
        if !rule.min_score.is_finite() {
            faults.add(
                format!("star_rules[{i}].min_score"),
                "the minimum score must be a finite number",
            );
        }
        for (k, gate) in rule.gates.iter().enumerate() {
            faults.empty_text(
                format!("star_rules[{i}].gates[{k}].metric"),
                &gate.metric,
                "the metric",
            );
            if !gate.value.is_finite() {
                faults.add(
                    format!("star_rules[{i}].gates[{k}].value"),
                    "the threshold must be a finite number",
                );
            }
        }
    }
}

fn validate_classes(scheme: &Scheme, faults: &mut Faults) {
    let cuts = &scheme.class_cuts;
    if cuts.is_empty() {
        faults.add(
            "class_cuts",
            "at least one class is needed (the default is A 20%, B 60%, C 95%, D 100%)",
        );
        return;
    }
    let mut labels: HashMap<&str, usize> = HashMap::new();
    let mut previous_percent: Option<(usize, f64)> = None;
    let mut previous_score: Option<(usize, f64)> = None;
    for (i, cut) in cuts.iter().enumerate() {
        faults.empty_text(format!("class_cuts[{i}].label"), &cut.label, "the label");
        if !cut.label.trim().is_empty()
            && let Some(first) = labels.insert(cut.label.trim(), i)
        {
            labels.insert(cut.label.trim(), first);
            faults.add(
                format!("class_cuts[{i}].label"),
                format!(
                    "class `{}` is already defined by class_cuts[{first}]",
                    cut.label
                ),
            );
        }
        match cut.min_score {
            Some(min) if !min.is_finite() => faults.add(
                format!("class_cuts[{i}].min_score"),
                "the minimum score must be a finite number",
            ),
            Some(min) => {
                // Classes are tried best first, so a lower class with a higher bar is unreachable.
                if let Some((j, before)) = previous_score
                    && min >= before
                {
                    faults.add(
                        format!("class_cuts[{i}].min_score"),
                        format!(
                            "minimum score {min} must be below class_cuts[{j}]'s {before}: classes go from best to worst"
                        ),
                    );
                }
                previous_score = Some((i, min));
            }
            None => {
                let pct = cut.top_percent;
                if !(pct.is_finite() && pct > 0.0 && pct <= 100.0) {
                    faults.add(
                        format!("class_cuts[{i}].top_percent"),
                        format!("top percent {pct} must be above 0 and at most 100"),
                    );
                } else if let Some((j, before)) = previous_percent
                    && pct <= before
                {
                    faults.add(
                        format!("class_cuts[{i}].top_percent"),
                        format!(
                            "top percent {pct} must be greater than class_cuts[{j}]'s {before}: each class reaches further down the ranking"
                        ),
                    );
                }
                previous_percent = Some((i, pct));
            }
        }
    }
    let last = cuts.len() - 1;
    if cuts[last].min_score.is_none() && cuts[last].top_percent != 100.0 {
        faults.add(
            format!("class_cuts[{last}].top_percent"),
            format!(
                "the last class must reach 100 percent so every entity gets a class, not {}",
                cuts[last].top_percent
            ),
        );
    }
}

/// What a scheme's metrics can do that its methods care about, read from their expressions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSigns {
    /// Per criterion, the part of its metric that can be negative (e.g. `yoy(revenue)`).
    pub criteria: Vec<Option<String>>,
    /// Per adjustment, whether its metric can be negative.
    pub adjustments: Vec<bool>,
}

impl MetricSigns {
    fn criterion_may_be_negative(&self, j: usize) -> bool {
        self.criteria.get(j).is_some_and(Option::is_some)
    }
}

/// The scores a scheme can give, bonuses and deductions included: each end is None when it
/// is unbounded.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRange {
    /// The lowest score possible.
    pub low: Option<f64>,
    /// The highest score possible.
    pub high: Option<f64>,
    /// The methods that bound it, e.g. `TOPSIS` or `EFFICACY and WEIGHTED_SUM`.
    pub method: String,
}

impl ScoreRange {
    /// Whether a threshold of `score` can be met and missed (ends included).
    pub fn contains(&self, score: f64) -> bool {
        let above_low = self
            .low
            .is_none_or(|low| score > low || nearly_equal(score, low));
        let below_high = self
            .high
            .is_none_or(|high| score < high || nearly_equal(score, high));
        above_low && below_high
    }
}

impl fmt::Display for ScoreRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.low, self.high) {
            (Some(low), Some(high)) => write!(f, "{low}–{high}")?,
            (Some(low), None) => write!(f, "{low} or more")?,
            (None, Some(high)) => write!(f, "at most {high}")?,
            (None, None) => f.write_str("any score")?,
        }
        write!(f, " with {}", self.method)
    }
}

fn normalization_name(n: Normalization) -> &'static str {
    match n {
        Normalization::MinMax => "MIN_MAX",
        Normalization::ZScore => "Z_SCORE",
        Normalization::Efficacy => "EFFICACY",
        Normalization::Vector => "VECTOR",
        Normalization::BenchmarkRatio => "BENCHMARK_RATIO",
        Normalization::PercentileRank => "PERCENTILE_RANK",
    }
}

fn aggregation_name(a: Aggregation) -> &'static str {
    match a {
        Aggregation::WeightedSum => "WEIGHTED_SUM",
        Aggregation::GeometricMean => "GEOMETRIC_MEAN",
        Aggregation::Topsis => "TOPSIS",
    }
}

fn weighting_name(w: Weighting) -> &'static str {
    match w {
        Weighting::Fixed => "FIXED",
        Weighting::Equal => "EQUAL",
        Weighting::Entropy => "ENTROPY",
        Weighting::Critic => "CRITIC",
    }
}

/// The normalised values one criterion can take (see `normalize`): None for an unbounded end.
fn normalized_range(
    method: Normalization,
    direction: Direction,
    may_be_negative: bool,
) -> (Option<f64>, Option<f64>) {
    match method {
        Normalization::MinMax | Normalization::PercentileRank => (Some(0.0), Some(1.0)),
        Normalization::Efficacy => (Some(60.0), Some(100.0)),
        Normalization::ZScore => (None, None),
        // x ÷ ‖x‖ lies in [−1, 1], and in [0, 1] for values ≥ 0; 1 − x ÷ ‖x‖ mirrors it.
        Normalization::Vector if !may_be_negative => (Some(0.0), Some(1.0)),
        Normalization::Vector => match direction {
            Direction::HigherIsBetter => (Some(-1.0), Some(1.0)),
            Direction::LowerIsBetter => (Some(0.0), Some(2.0)),
        },
        Normalization::BenchmarkRatio if !may_be_negative => (Some(0.0), None),
        Normalization::BenchmarkRatio => (None, None),
    }
}

/// The scores `scheme` can give: TOPSIS closeness is 0–1; a weighted sum or weighted geometric
/// mean (weights ≥ 0 summing to 1) stays between the lowest and highest normalised value of the
/// criteria that carry weight; bonus points lift the top end without bound and deductions the
/// bottom end.
pub fn score_range(scheme: &Scheme, signs: &MetricSigns) -> ScoreRange {
    let (mut low, mut high, mut method) = if scheme.aggregation == Aggregation::Topsis {
        (Some(0.0), Some(1.0), "TOPSIS".to_owned())
    } else {
        let weighted =
            |j: usize| scheme.weighting != Weighting::Fixed || scheme.criteria[j].weight > 0.0;
        let (mut low, mut high) = (Some(f64::INFINITY), Some(f64::NEG_INFINITY));
        for (j, criterion) in scheme
            .criteria
            .iter()
            .enumerate()
            .filter(|(j, _)| weighted(*j))
        {
            let (lo, hi) = normalized_range(
                scheme.normalization,
                criterion.direction,
                signs.criterion_may_be_negative(j),
            );
            low = low.zip(lo).map(|(a, b)| a.min(b));
            high = high.zip(hi).map(|(a, b)| a.max(b));
        }
        let method = format!(
            "{} and {}",
            normalization_name(scheme.normalization),
            aggregation_name(scheme.aggregation)
        );
        (
            low.filter(|l| l.is_finite()),
            high.filter(|h| h.is_finite()),
            method,
        )
    };
    let (mut bonuses, mut deductions) = (false, false);
    for (i, adjustment) in scheme.adjustments.iter().enumerate() {
        let either_way = signs.adjustments.get(i).copied().unwrap_or(false);
        bonuses |= adjustment.points_per_event > 0.0 || either_way;
        deductions |= adjustment.points_per_event < 0.0 || either_way;
    }
    if bonuses {
        high = None;
        method.push_str(" and its bonuses");
    }
    if deductions {
        low = None;
        method.push_str(if bonuses {
            " and deductions"
        } else {
            " and its deductions"
        });
    }
    ScoreRange { low, high, method }
}

/// Faults a new scheme is refused for on top of `validate`: an ENTROPY weighting over a metric
/// that can be negative, and star or class thresholds no score of the scheme can reach or miss.
/// Kept out of `validate`, which every run applies, so schemes stored before these checks keep
/// running (the engine still refuses a negative value for entropy, naming the entity).
pub fn authoring_faults(scheme: &Scheme, signs: &MetricSigns) -> Vec<SchemeFault> {
    let mut faults = Faults(Vec::new());
    if scheme.weighting == Weighting::Entropy {
        for (j, criterion) in scheme.criteria.iter().enumerate() {
            let Some(Some(part)) = signs.criteria.get(j) else {
                continue;
            };
            let which = if part.trim() == criterion.metric.trim() {
                format!("`{part}`")
            } else {
                format!("`{}` (through `{part}`)", criterion.metric)
            };
            faults.add(
                format!("criteria[{j}].metric"),
                format!(
                    "{which} can be negative: a change between periods is below 0 whenever the \
                     figure falls, and ENTROPY weighting takes values as proportions of their \
                     sum, which must be ≥ 0; use CRITIC, EQUAL or FIXED weighting, or a metric \
                     that cannot be negative"
                ),
            );
        }
    }
    let range = score_range(scheme, signs);
    for (i, rule) in scheme.star_rules.iter().enumerate() {
        if rule.min_score.is_finite() && !range.contains(rule.min_score) {
            faults.add(
                format!("star_rules[{i}].min_score"),
                format!(
                    "{} is outside the scores this scheme can give ({range})",
                    rule.min_score
                ),
            );
        }
    }
    for (i, cut) in scheme.class_cuts.iter().enumerate() {
        if let Some(min) = cut.min_score
            && min.is_finite()
            && !range.contains(min)
        {
            faults.add(
                format!("class_cuts[{i}].min_score"),
                format!("{min} is outside the scores this scheme can give ({range})"),
            );
        }
    }
    faults.0
}

/// The weights a run of a scheme uses, when they do not depend on the data, and what its
/// author should know about them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightPlan {
    /// Per criterion, shown to 15 significant digits; empty for ENTROPY and CRITIC.
    pub weights: Vec<f64>,
    /// What the run does with the weights given, where that is not simply using them.
    pub notes: Vec<String>,
}

/// The weight plan of a valid scheme.
pub fn weight_plan(scheme: &Scheme) -> WeightPlan {
    let given: Vec<f64> = scheme.criteria.iter().map(|c| c.weight).collect();
    let weights: Vec<f64> = planned_weights(scheme.weighting, &given)
        .and_then(Result::ok)
        .unwrap_or_default()
        .into_iter()
        .map(shown)
        .collect();
    let mut notes = Vec::new();
    let method = weighting_name(scheme.weighting);
    let any_given = given.iter().any(|&w| w != 0.0);
    match scheme.weighting {
        Weighting::Fixed => {
            let sum: f64 = given.iter().sum();
            if (sum - 1.0).abs() > 1e-9 {
                let sum = shown(sum);
                notes.push(format!(
                    "weights sum to {sum}; a run divides each by {sum} so they sum to 1"
                ));
            }
            for (j, criterion) in scheme.criteria.iter().enumerate() {
                if criterion.weight == 0.0 {
                    notes.push(format!(
                        "criteria[{j}] (`{}`) has weight 0: its values are read and shown in \
                         each entry, but it does not count toward the score",
                        criterion.metric
                    ));
                }
            }
        }
        Weighting::Equal => {
            if any_given && given.iter().any(|&w| w != given[0]) {
                notes.push(format!(
                    "EQUAL weighting gives each of the {} criteria the same weight; the weights \
                     given are ignored",
                    given.len()
                ));
            }
        }
        Weighting::Entropy | Weighting::Critic => {
            if any_given {
                notes.push(format!(
                    "{method} weighting derives the weights from each run's data; the weights \
                     given are ignored"
                ));
            }
        }
    }
    WeightPlan { weights, notes }
}

/// Metric texts the scheme reads besides its criteria (gates, adjustments, vetoes), deduplicated.
///
/// First occurrence first. A text that is also a criterion is left out: the engine reads it
/// from the criterion's column.
pub fn extra_metrics(scheme: &Scheme) -> Vec<String> {
    let gates = scheme
        .star_rules
        .iter()
        .flat_map(|rule| rule.gates.iter().map(|gate| gate.metric.as_str()));
    let adjustments = scheme.adjustments.iter().map(|a| a.metric.as_str());
    let vetoes = scheme.vetoes.iter().map(|v| v.metric.as_str());
    let mut out: Vec<String> = Vec::new();
    for metric in gates.chain(adjustments).chain(vetoes).map(str::trim) {
        let is_criterion = scheme.criteria.iter().any(|c| c.metric.trim() == metric);
        if !is_criterion && !out.iter().any(|m| m == metric) {
            out.push(metric.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criterion(metric: &str, weight: f64) -> Criterion {
        Criterion {
            metric: metric.to_owned(),
            weight,
            direction: Direction::HigherIsBetter,
            benchmark: None,
        }
    }

    fn scheme() -> Scheme {
        Scheme {
            criteria: vec![criterion("revenue", 0.6), criterion("per_mu(tax)", 0.4)],
            normalization: Normalization::MinMax,
            weighting: Weighting::Fixed,
            aggregation: Aggregation::WeightedSum,
            missing_policy: MissingPolicy::Exclude,
            star_rules: vec![StarRule {
                level: 1,
                min_score: 0.5,
                gates: vec![Gate::parse("revenue >= 1000000").unwrap()],
            }],
            class_cuts: default_class_cuts(),
            adjustments: vec![Adjustment {
                metric: "accidents".to_owned(),
                points_per_event: -1.0,
                label: "safety".to_owned(),
            }],
            vetoes: vec![Veto {
                metric: "pollution_incidents".to_owned(),
                label: "pollution".to_owned(),
                bars_stars: true,
                bars_class_a: true,
            }],
        }
    }

    fn fields(scheme: &Scheme) -> Vec<String> {
        validate(scheme)
            .unwrap_err()
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn parses_gates_on_the_last_operator() {
        let gate = Gate::parse("revenue >= 1000000").unwrap();
        assert_eq!(
            gate,
            Gate {
                metric: "revenue".to_owned(),
                comparator: GateComparator::Ge,
                value: 1_000_000.0
            }
        );
        let gate = Gate::parse("  yoy(revenue) > 10 ").unwrap();
        assert_eq!(gate.metric, "yoy(revenue)");
        assert_eq!(gate.comparator, GateComparator::Gt);
        assert_eq!(gate.value, 10.0);
        let gate = Gate::parse("ratio(tax, land_area)≤-2.5").unwrap();
        assert_eq!(gate.metric, "ratio(tax, land_area)");
        assert_eq!(gate.comparator, GateComparator::Le);
        assert_eq!(gate.value, -2.5);
        assert_eq!(
            Gate::parse("per_mu(tax) ≥ 15").unwrap().comparator,
            GateComparator::Ge
        );
        assert_eq!(Gate::parse("a<1").unwrap().comparator, GateComparator::Lt);
        assert_eq!(
            Gate::parse("a == 1").unwrap().comparator,
            GateComparator::Eq
        );
        assert_eq!(Gate::parse("a = 1").unwrap().comparator, GateComparator::Eq);
        assert_eq!(Gate::parse("a <= 1").unwrap().to_string(), "a <= 1");
    }

    #[test]
    fn gate_errors_are_clear() {
        let err = Gate::parse("revenue 100").unwrap_err();
        assert!(matches!(err, GateParseError::NoComparator { .. }));
        assert!(err.to_string().contains("metric >= value"));
        assert!(matches!(
            Gate::parse(">= 5").unwrap_err(),
            GateParseError::EmptyMetric { .. }
        ));
        let err = Gate::parse("revenue >= lots").unwrap_err();
        assert!(err.to_string().contains("`lots`"), "{err}");
        assert!(matches!(
            Gate::parse("revenue >= inf").unwrap_err(),
            GateParseError::BadThreshold { .. }
        ));
        assert!(matches!(
            Gate::parse("revenue >=").unwrap_err(),
            GateParseError::BadThreshold { .. }
        ));
    }

    #[test]
    fn gates_compare_with_tolerance_and_fail_on_missing() {
        let gate = Gate::parse("revenue >= 1000000").unwrap();
        assert!(gate.holds(Some(1_000_000.0)));
        assert!(gate.holds(Some(999_999.999_999_999_9)));
        assert!(!gate.holds(Some(999_999.0)));
        assert!(!gate.holds(None));
        assert!(!gate.holds(Some(f64::NAN)));
        let gt = Gate::parse("x > 1").unwrap();
        assert!(!gt.holds(Some(1.0)));
        assert!(gt.holds(Some(1.5)));
        let lt = Gate::parse("x < 1").unwrap();
        assert!(lt.holds(Some(0.5)));
        assert!(!lt.holds(Some(1.0)));
    }

    #[test]
    fn default_cuts_are_a_b_c_d() {
        let cuts = default_class_cuts();
        let pairs: Vec<(&str, f64)> = cuts
            .iter()
            .map(|c| (c.label.as_str(), c.top_percent))
            .collect();
        assert_eq!(pairs, [("A", 20.0), ("B", 60.0), ("C", 95.0), ("D", 100.0)]);
        assert!(cuts.iter().all(|c| c.min_score.is_none()));
    }

    #[test]
    fn a_sound_scheme_validates() {
        assert_eq!(validate(&scheme()), Ok(()));
    }

    #[test]
    fn empty_criteria_is_a_fault() {
        let mut s = scheme();
        s.criteria.clear();
        assert_eq!(fields(&s), ["criteria"]);
    }

    #[test]
    fn negative_and_non_finite_weights_are_faults() {
        let mut s = scheme();
        s.criteria[0].weight = -0.1;
        s.criteria[1].weight = f64::NAN;
        assert_eq!(fields(&s), ["criteria[0].weight", "criteria[1].weight"]);
        for infinite in [f64::INFINITY, f64::NEG_INFINITY] {
            let mut s = scheme();
            s.criteria[1].weight = infinite;
            assert_eq!(fields(&s), ["criteria[1].weight"]);
        }
        // Huge and tiny finite weights are fine: the weighting scales them before summing.
        let mut s = scheme();
        s.criteria[0].weight = f64::MAX;
        s.criteria[1].weight = f64::MIN_POSITIVE;
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn all_zero_weights_fault_only_under_fixed() {
        let mut s = scheme();
        s.criteria[0].weight = 0.0;
        s.criteria[1].weight = 0.0;
        let faults = validate(&s).unwrap_err();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].field, "criteria");
        assert!(faults[0].reason.contains("FIXED"));
        s.weighting = Weighting::Entropy;
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn geometric_mean_needs_positive_normalisation() {
        let mut s = scheme();
        s.aggregation = Aggregation::GeometricMean;
        for (normalization, word) in [
            (Normalization::MinMax, "MIN_MAX"),
            (Normalization::ZScore, "Z_SCORE"),
            (Normalization::Vector, "VECTOR"),
            (Normalization::BenchmarkRatio, "BENCHMARK_RATIO"),
        ] {
            s.normalization = normalization;
            let faults = validate(&s).unwrap_err();
            assert_eq!(faults.len(), 1, "{normalization:?}");
            assert_eq!(faults[0].field, "aggregation");
            assert!(faults[0].reason.contains(word), "{}", faults[0].reason);
            assert!(faults[0].reason.contains("above 0"), "{}", faults[0].reason);
        }
        for normalization in [Normalization::Efficacy, Normalization::PercentileRank] {
            s.normalization = normalization;
            assert_eq!(validate(&s), Ok(()), "{normalization:?}");
        }
    }

    #[test]
    fn star_levels_must_be_1_to_6_and_distinct() {
        let mut s = scheme();
        let rule = |level| StarRule {
            level,
            min_score: 0.5,
            gates: vec![],
        };
        s.star_rules = vec![rule(0), rule(7), rule(2), rule(2)];
        assert_eq!(
            fields(&s),
            [
                "star_rules[0].level",
                "star_rules[1].level",
                "star_rules[3].level"
            ]
        );
        s.star_rules = vec![StarRule {
            level: 1,
            min_score: f64::INFINITY,
            gates: vec![Gate {
                metric: " ".to_owned(),
                comparator: GateComparator::Ge,
                value: f64::NAN,
            }],
        }];
        assert_eq!(
            fields(&s),
            [
                "star_rules[0].min_score",
                "star_rules[0].gates[0].metric",
                "star_rules[0].gates[0].value"
            ]
        );
    }

    #[test]
    fn class_cuts_must_increase_and_end_at_100() {
        let mut s = scheme();
        s.class_cuts[1].top_percent = 15.0; // B below A
        s.class_cuts[3].top_percent = 99.0; // D not reaching 100
        assert_eq!(
            fields(&s),
            ["class_cuts[1].top_percent", "class_cuts[3].top_percent"]
        );
        let mut s = scheme();
        s.class_cuts[0].top_percent = 0.0;
        assert_eq!(fields(&s), ["class_cuts[0].top_percent"]);
        let mut s = scheme();
        s.class_cuts.clear();
        assert_eq!(fields(&s), ["class_cuts"]);
    }

    #[test]
    fn class_cuts_by_score_must_decrease() {
        let mut s = scheme();
        s.class_cuts[0].min_score = Some(80.0);
        s.class_cuts[1].min_score = Some(85.0);
        s.class_cuts[2].min_score = Some(f64::NAN);
        assert_eq!(
            fields(&s),
            ["class_cuts[1].min_score", "class_cuts[2].min_score"]
        );
        let mut s = scheme();
        for (cut, min) in s.class_cuts.iter_mut().zip([90.0, 75.0, 60.0, 0.0]) {
            cut.min_score = Some(min);
            cut.top_percent = 0.0; // ignored when by score
        }
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn empty_labels_are_faults() {
        let mut s = scheme();
        s.class_cuts[2].label = String::new();
        s.adjustments[0].label = " ".to_owned();
        s.vetoes[0].label = String::new();
        s.class_cuts[3].label = "A".to_owned();
        assert_eq!(
            fields(&s),
            [
                "class_cuts[2].label",
                "class_cuts[3].label",
                "adjustments[0].label",
                "vetoes[0].label"
            ]
        );
    }

    #[test]
    fn benchmark_must_be_positive() {
        let mut s = scheme();
        s.criteria[0].benchmark = Some(0.0);
        s.criteria[1].benchmark = Some(-15.0);
        assert_eq!(
            fields(&s),
            ["criteria[0].benchmark", "criteria[1].benchmark"]
        );
        s.criteria[0].benchmark = Some(15.0);
        s.criteria[1].benchmark = None;
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn other_faults_are_named_by_field() {
        let mut s = scheme();
        s.criteria[1].metric = String::new();
        s.adjustments[0].points_per_event = f64::NAN;
        s.vetoes[0].metric = String::new();
        assert_eq!(
            fields(&s),
            [
                "criteria[1].metric",
                "adjustments[0].points_per_event",
                "vetoes[0].metric"
            ]
        );
    }

    fn no_signs() -> MetricSigns {
        MetricSigns::default()
    }

    #[test]
    fn score_ranges_follow_normalization_aggregation_and_adjustments() {
        let mut s = scheme();
        s.adjustments.clear();
        let range = |s: &Scheme, signs: &MetricSigns| {
            let r = score_range(s, signs);
            (r.low, r.high, r.to_string())
        };
        assert_eq!(
            range(&s, &no_signs()),
            (
                Some(0.0),
                Some(1.0),
                "0–1 with MIN_MAX and WEIGHTED_SUM".to_owned()
            )
        );
        s.aggregation = Aggregation::Topsis;
        s.normalization = Normalization::Efficacy;
        assert_eq!(range(&s, &no_signs()).2, "0–1 with TOPSIS");
        s.aggregation = Aggregation::GeometricMean;
        assert_eq!(
            range(&s, &no_signs()).2,
            "60–100 with EFFICACY and GEOMETRIC_MEAN"
        );
        s.aggregation = Aggregation::WeightedSum;
        s.normalization = Normalization::ZScore;
        assert_eq!(range(&s, &no_signs()).0, None);
        assert!(score_range(&s, &no_signs()).contains(1e9));
        s.normalization = Normalization::BenchmarkRatio;
        assert_eq!(
            range(&s, &no_signs()).2,
            "0 or more with BENCHMARK_RATIO and WEIGHTED_SUM"
        );
        s.normalization = Normalization::Vector;
        assert_eq!(range(&s, &no_signs()).2, "0–1 with VECTOR and WEIGHTED_SUM");
        let growth = MetricSigns {
            criteria: vec![Some("yoy(revenue)".to_owned()), None],
            adjustments: vec![],
        };
        assert_eq!(range(&s, &growth).2, "-1–1 with VECTOR and WEIGHTED_SUM");
        // A weightless criterion does not widen the range.
        s.criteria[0].weight = 0.0;
        assert_eq!(range(&s, &growth).2, "0–1 with VECTOR and WEIGHTED_SUM");
        // Deductions open the bottom end, bonuses the top.
        let mut s = scheme();
        assert_eq!(
            range(&s, &no_signs()).2,
            "at most 1 with MIN_MAX and WEIGHTED_SUM and its deductions"
        );
        s.adjustments[0].points_per_event = 2.0;
        assert_eq!(
            range(&s, &no_signs()).2,
            "0 or more with MIN_MAX and WEIGHTED_SUM and its bonuses"
        );
    }

    #[test]
    fn new_schemes_are_refused_thresholds_out_of_range_and_entropy_over_growth() {
        let mut s = scheme();
        s.adjustments.clear();
        s.aggregation = Aggregation::Topsis;
        s.star_rules[0].min_score = 40.0;
        s.class_cuts[0].min_score = Some(1.0);
        s.class_cuts[1].min_score = Some(-0.5);
        let faults = authoring_faults(&s, &no_signs());
        let found: Vec<(String, String)> =
            faults.into_iter().map(|f| (f.field, f.reason)).collect();
        assert_eq!(
            found,
            [
                (
                    "star_rules[0].min_score".to_owned(),
                    "40 is outside the scores this scheme can give (0–1 with TOPSIS)".to_owned()
                ),
                (
                    "class_cuts[1].min_score".to_owned(),
                    "-0.5 is outside the scores this scheme can give (0–1 with TOPSIS)".to_owned()
                ),
            ]
        );
        let mut s = scheme();
        s.weighting = Weighting::Entropy;
        s.criteria.push(criterion("energy_intensity_change", 0.0));
        let signs = MetricSigns {
            criteria: vec![None, None, Some("energy_intensity_change".to_owned())],
            adjustments: vec![false],
        };
        let faults = authoring_faults(&s, &signs);
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].field, "criteria[2].metric");
        assert!(
            faults[0]
                .reason
                .starts_with("`energy_intensity_change` can be negative")
        );
        s.weighting = Weighting::Critic;
        assert_eq!(authoring_faults(&s, &signs), []);
    }

    #[test]
    fn weight_plans_say_what_a_run_does_with_the_weights() {
        let mut s = scheme();
        assert_eq!(
            weight_plan(&s),
            WeightPlan {
                weights: vec![0.6, 0.4],
                notes: vec![]
            }
        );
        s.criteria[0].weight = 0.8;
        s.criteria[1].weight = 0.4;
        let plan = weight_plan(&s);
        assert_eq!(plan.weights, [0.666666666666667, 0.333333333333333]);
        assert_eq!(
            plan.notes,
            ["weights sum to 1.2; a run divides each by 1.2 so they sum to 1"]
        );
        s.criteria[1].weight = 0.0;
        let plan = weight_plan(&s);
        assert_eq!(plan.weights, [1.0, 0.0]);
        assert!(
            plan.notes[1].starts_with("criteria[1] (`per_mu(tax)`) has weight 0"),
            "{plan:?}"
        );
        s.weighting = Weighting::Equal;
        let plan = weight_plan(&s);
        assert_eq!(plan.weights, [0.5, 0.5]);
        assert!(plan.notes[0].contains("ignored"));
        s.weighting = Weighting::Entropy;
        let plan = weight_plan(&s);
        assert!(plan.weights.is_empty());
        assert_eq!(
            plan.notes,
            [
                "ENTROPY weighting derives the weights from each run's data; the weights given are ignored"
            ]
        );
    }

    #[test]
    fn extra_metrics_are_deduplicated_and_skip_criteria() {
        let mut s = scheme();
        s.star_rules.push(StarRule {
            level: 2,
            min_score: 0.8,
            gates: vec![
                Gate::parse("yoy(revenue) > 10").unwrap(),
                Gate::parse("revenue >= 5000000").unwrap(),
            ],
        });
        s.adjustments.push(Adjustment {
            metric: "yoy(revenue)".to_owned(),
            points_per_event: 0.1,
            label: "growth".to_owned(),
        });
        s.vetoes.push(Veto {
            metric: "accidents".to_owned(),
            label: "accident".to_owned(),
            bars_stars: true,
            bars_class_a: false,
        });
        assert_eq!(
            extra_metrics(&s),
            ["yoy(revenue)", "accidents", "pollution_incidents"]
        );
    }
}
