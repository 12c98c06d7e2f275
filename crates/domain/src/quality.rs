//! Data-quality rules: plausibility checks on figures that are individually valid.
//!
//! A rule never rejects on its own: it produces a [`Finding`] (a warning with a severity) that
//! names the rule, the figures compared and the tolerance used. Ingestion reports findings and
//! stores them; a caller asking for strict ingestion turns them into a rejection. Everything
//! here is pure: the caller gathers the figures (from the request and the store) and passes them
//! in.

use std::{collections::BTreeSet, fmt};

use crate::period::Period;

/// The rules, each checked independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QualityRule {
    /// For an additive flow, the zones' figures summed within a region exceed the region's own.
    RegionSum,
    /// An enterprise's figure exceeds the figure of the zone it belongs to.
    EnterpriseOverZone,
    /// Sub-periods that tile a span (Q1 + Q2 against H1, the months against the year) disagree
    /// with the figure for the span.
    PeriodParts,
    /// A year-to-date series of a cumulative flow falls from one month to a later one.
    YtdFalls,
    /// Growth that is an outlier within its cohort by the Hidiroglou–Berthelot rule.
    GrowthOutlier,
    /// A revision that differs from the previous value by more than a configured factor.
    RevisionJump,
}

impl QualityRule {
    /// Every rule.
    pub const ALL: [QualityRule; 6] = [
        QualityRule::RegionSum,
        QualityRule::EnterpriseOverZone,
        QualityRule::PeriodParts,
        QualityRule::YtdFalls,
        QualityRule::GrowthOutlier,
        QualityRule::RevisionJump,
    ];

    /// The stable code used in storage, flags and reports.
    pub fn code(self) -> &'static str {
        match self {
            QualityRule::RegionSum => "region_sum",
            QualityRule::EnterpriseOverZone => "enterprise_over_zone",
            QualityRule::PeriodParts => "period_parts",
            QualityRule::YtdFalls => "ytd_falls",
            QualityRule::GrowthOutlier => "growth_outlier",
            QualityRule::RevisionJump => "revision_jump",
        }
    }

    /// The rule with this code.
    pub fn from_code(code: &str) -> Option<QualityRule> {
        QualityRule::ALL
            .into_iter()
            .find(|rule| rule.code() == code)
    }
}

impl fmt::Display for QualityRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How much a finding matters to the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look; often explained by definitions or timing.
    Warning,
    /// Almost certainly a mistake in the data.
    Error,
}

impl Severity {
    /// The stable code used in storage and reports.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The severity with this code.
    pub fn from_code(code: &str) -> Option<Severity> {
        [Severity::Warning, Severity::Error]
            .into_iter()
            .find(|severity| severity.code() == code)
    }
}

/// The settings of one rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleConfig {
    /// Whether the rule runs at all.
    pub enabled: bool,
    /// The rule's tolerance: a relative share for the comparisons (0.01 = 1%), the factor for
    /// [`QualityRule::RevisionJump`], and `C` for [`QualityRule::GrowthOutlier`].
    pub tolerance: f64,
    /// The severity of the findings it produces.
    pub severity: Severity,
}

/// The parameters of the Hidiroglou–Berthelot rule besides `C` (which is the rule's tolerance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HbParams {
    /// The magnitude exponent `U` in 0..=1: how much more weight large units get.
    pub u: f64,
    /// The floor `A` on the spread as a share of the median effect, so that a cohort whose
    /// growth is nearly identical does not flag tiny differences.
    pub a: f64,
    /// The width `C` of the acceptance interval in spreads.
    pub c: f64,
}

impl Default for HbParams {
    /// The defaults of Statistics Norway's `Hb()`: U = 0.5, A = 0.05, C = 20.
    fn default() -> HbParams {
        HbParams {
            u: 0.5,
            a: 0.05,
            c: 20.0,
        }
    }
}

/// The settings of every rule.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityConfig {
    rules: [RuleConfig; 6],
    /// `U` and `A` of the Hidiroglou–Berthelot rule (`C` is the rule's tolerance).
    pub hb_u: f64,
    /// See [`HbParams::a`].
    pub hb_a: f64,
}

impl Default for QualityConfig {
    fn default() -> QualityConfig {
        let hb = HbParams::default();
        let rule = |tolerance: f64, severity: Severity| RuleConfig {
            enabled: true,
            tolerance,
            severity,
        };
        QualityConfig {
            rules: [
                // statistical offices round and count late entries differently: 1%
                rule(0.01, Severity::Warning),
                rule(0.0, Severity::Error),
                rule(0.01, Severity::Warning),
                rule(0.0, Severity::Error),
                rule(hb.c, Severity::Warning),
                // a tenfold change between revisions is usually a unit mistake (万元 vs 元)
                rule(10.0, Severity::Warning),
            ],
            hb_u: hb.u,
            hb_a: hb.a,
        }
    }
}

impl QualityConfig {
    /// The settings of `rule`.
    pub fn rule(&self, rule: QualityRule) -> RuleConfig {
        self.rules[Self::index(rule)]
    }

    /// Replaces the settings of `rule`.
    pub fn set_rule(&mut self, rule: QualityRule, config: RuleConfig) {
        self.rules[Self::index(rule)] = config;
    }

    /// The Hidiroglou–Berthelot parameters, `C` taken from the rule's tolerance.
    pub fn hb_params(&self) -> HbParams {
        HbParams {
            u: self.hb_u,
            a: self.hb_a,
            c: self.rule(QualityRule::GrowthOutlier).tolerance,
        }
    }

    fn index(rule: QualityRule) -> usize {
        QualityRule::ALL
            .iter()
            .position(|r| *r == rule)
            .expect("every rule is listed in ALL")
    }
}

/// One figure a finding compared, with a label saying what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// What the figure is ("region 410300", "sum of 3 zones", "2024-Q1").
    pub label: String,
    /// The value in the indicator's canonical unit.
    pub value: f64,
}

impl Figure {
    /// A labelled figure.
    pub fn new(label: impl Into<String>, value: f64) -> Figure {
        Figure {
            label: label.into(),
            value,
        }
    }
}

/// What a rule found: the rule, the figures it compared and the tolerance it allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule that fired.
    pub rule: QualityRule,
    /// The figures compared, the checked one first.
    pub figures: Vec<Figure>,
    /// The tolerance applied (see [`RuleConfig::tolerance`]).
    pub tolerance: f64,
    /// What is wrong, in words for the user.
    pub message: String,
}

fn exceeds(value: f64, limit: f64, tolerance: f64) -> bool {
    value > limit + tolerance * limit.abs()
}

fn fmt_value(value: f64) -> String {
    // at most 4 decimals, trailing zeros dropped, so messages stay readable
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// An additive flow summed over the parts of a whole (zones within a region) against the
/// whole's own figure: fires when the sum exceeds the whole by more than `tolerance` (a share).
/// Parts may legitimately cover less than the whole, so a smaller sum never fires.
pub fn check_parts_sum(
    rule: QualityRule,
    whole: Figure,
    parts: &[Figure],
    tolerance: f64,
) -> Option<Finding> {
    let sum: f64 = parts.iter().map(|p| p.value).sum();
    if !exceeds(sum, whole.value, tolerance) {
        return None;
    }
    let message = format!(
        "the sum of {} parts ({}) exceeds {} ({}) by more than {}%",
        parts.len(),
        fmt_value(sum),
        whole.label,
        fmt_value(whole.value),
        fmt_value(tolerance * 100.0)
    );
    let mut figures = vec![Figure::new(format!("sum of {} parts", parts.len()), sum)];
    figures.push(whole);
    figures.extend(parts.iter().cloned());
    Some(Finding {
        rule,
        figures,
        tolerance,
        message,
    })
}

/// One figure (an enterprise's) that must not exceed another (its zone's) by more than
/// `tolerance` (a share).
pub fn check_not_above(
    rule: QualityRule,
    part: Figure,
    whole: Figure,
    tolerance: f64,
) -> Option<Finding> {
    if !exceeds(part.value, whole.value, tolerance) {
        return None;
    }
    let message = format!(
        "{} ({}) exceeds {} ({}) by more than {}%",
        part.label,
        fmt_value(part.value),
        whole.label,
        fmt_value(whole.value),
        fmt_value(tolerance * 100.0)
    );
    Some(Finding {
        rule,
        figures: vec![part, whole],
        tolerance,
        message,
    })
}

/// Compares every span in `series` (one entity and flow indicator) with the sub-spans that tile
/// it, by halves, quarters or months, when all of them are present: fires when the sum differs
/// from the span's figure by more than `tolerance` (a share of the span's figure).
pub fn check_period_parts(series: &[(Period, f64)], tolerance: f64) -> Vec<Finding> {
    let lookup = |period: &Period| {
        series
            .iter()
            .find(|(p, _)| p == period)
            .map(|(_, value)| *value)
    };
    let mut findings = Vec::new();
    for (whole, whole_value) in series {
        for step in [6u8, 3, 1] {
            let months = whole.months() as u8;
            if months <= step
                || !months.is_multiple_of(step)
                || !(whole.start_month() - 1).is_multiple_of(step)
            {
                continue;
            }
            let parts: Option<Vec<(Period, f64)>> = (0..months / step)
                .map(|i| {
                    let start = whole.start_month() + i * step;
                    let part = Period::new(whole.year(), start, start + step - 1).ok()?;
                    lookup(&part).map(|value| (part, value))
                })
                .collect();
            let Some(parts) = parts else { continue };
            let sum: f64 = parts.iter().map(|(_, value)| value).sum();
            if (sum - whole_value).abs() <= tolerance * whole_value.abs() {
                continue;
            }
            let names: Vec<String> = parts.iter().map(|(p, _)| p.canonical()).collect();
            let mut figures = vec![
                Figure::new(names.join(" + "), sum),
                Figure::new(whole.canonical(), *whole_value),
            ];
            figures.extend(
                parts
                    .iter()
                    .map(|(p, value)| Figure::new(p.canonical(), *value)),
            );
            findings.push(Finding {
                rule: QualityRule::PeriodParts,
                message: format!(
                    "{} = {} differs from {} = {} by more than {}%",
                    names.join(" + "),
                    fmt_value(sum),
                    whole.canonical(),
                    fmt_value(*whole_value),
                    fmt_value(tolerance * 100.0)
                ),
                figures,
                tolerance,
            });
        }
    }
    findings
}

/// Checks that a cumulative flow's year-to-date figures (spans starting in January) never fall
/// within a year by more than `tolerance` (a share): returns one finding per fall, naming the
/// earlier and the later span.
pub fn check_ytd_series(series: &[(Period, f64)], tolerance: f64) -> Vec<Finding> {
    let mut ytd: Vec<(Period, f64)> = series
        .iter()
        .filter(|(p, _)| p.start_month() == 1)
        .copied()
        .collect();
    ytd.sort_by_key(|(p, _)| (p.year(), p.end_month()));
    ytd.dedup_by_key(|(p, _)| *p);
    ytd.windows(2)
        .filter(|pair| pair[0].0.year() == pair[1].0.year())
        .filter(|pair| exceeds(pair[0].1, pair[1].1, tolerance))
        .map(|pair| {
            let ((earlier, before), (later, after)) = (pair[0], pair[1]);
            Finding {
                rule: QualityRule::YtdFalls,
                figures: vec![
                    Figure::new(later.canonical(), after),
                    Figure::new(earlier.canonical(), before),
                ],
                tolerance,
                message: format!(
                    "the year-to-date figure falls from {} ({}) to {} ({}), but the flow only accumulates",
                    earlier.canonical(),
                    fmt_value(before),
                    later.canonical(),
                    fmt_value(after)
                ),
            }
        })
        .collect()
}

/// A new revision against the value it replaces: fires when either is more than `factor` times
/// the other. Zero or negative values are left alone (a ratio says nothing there).
pub fn check_revision(previous: f64, revised: f64, factor: f64) -> Option<Finding> {
    if previous <= 0.0 || revised <= 0.0 {
        return None;
    }
    let ratio = revised / previous;
    if ratio <= factor && ratio * factor >= 1.0 {
        return None;
    }
    Some(Finding {
        rule: QualityRule::RevisionJump,
        figures: vec![
            Figure::new("revised", revised),
            Figure::new("previous", previous),
        ],
        tolerance: factor,
        message: format!(
            "the revision ({}) is {}× the previous value ({}), beyond the allowed factor {}",
            fmt_value(revised),
            fmt_value(ratio),
            fmt_value(previous),
            fmt_value(factor)
        ),
    })
}

/// One unit of a cohort for the Hidiroglou–Berthelot rule: the figure a period earlier and now.
#[derive(Clone, Debug, PartialEq)]
pub struct HbUnit<K> {
    /// Whatever identifies the unit to the caller.
    pub key: K,
    /// The figure of the earlier period.
    pub previous: f64,
    /// The figure of the current period.
    pub current: f64,
}

/// The Hidiroglou–Berthelot verdict on one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct HbScore<K> {
    /// The unit.
    pub key: K,
    /// Its growth ratio `current / previous`.
    pub ratio: f64,
    /// Its effect `E`.
    pub effect: f64,
    /// The acceptance interval `[E_med − C·d_Q1, E_med + C·d_Q3]`.
    pub lower: f64,
    /// See `lower`.
    pub upper: f64,
}

impl<K> HbScore<K> {
    /// Whether the effect lies outside the acceptance interval.
    pub fn is_outlier(&self) -> bool {
        self.effect < self.lower || self.effect > self.upper
    }
}

/// The quantile at `p` of sorted values with linear interpolation between order statistics
/// (R's default, type 7).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let low = h.floor() as usize;
    let high = h.ceil() as usize;
    sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
}

/// Scores every unit of a cohort by the Hidiroglou–Berthelot rule (Hidiroglou & Berthelot 1986):
///
/// 1. the ratio `r_i = current_i / previous_i` and its median `r_med`;
/// 2. centering: `S_i = 1 − r_med / r_i` when `r_i < r_med`, else `r_i / r_med − 1`, so that
///    halving and doubling are equally far from the median;
/// 3. magnitude: `E_i = S_i · max(previous_i, current_i)^U`, so large units weigh more;
/// 4. the quartiles `E_Q1, E_med, E_Q3` of the effects (type-7 quantiles) and the spreads
///    `d_Q1 = max(E_med − E_Q1, |A·E_med|)`, `d_Q3 = max(E_Q3 − E_med, |A·E_med|)`;
/// 5. a unit is an outlier when `E_i` is outside `[E_med − C·d_Q1, E_med + C·d_Q3]`.
///
/// Units whose figures are not both positive have no ratio and are left out; a cohort of fewer
/// than three scored units gives no scores (no meaningful quartiles).
pub fn hidiroglou_berthelot<K: Clone>(units: &[HbUnit<K>], params: HbParams) -> Vec<HbScore<K>> {
    let scored: Vec<&HbUnit<K>> = units
        .iter()
        .filter(|u| u.previous > 0.0 && u.current > 0.0)
        .collect();
    if scored.len() < 3 {
        return Vec::new();
    }
    let ratios: Vec<f64> = scored.iter().map(|u| u.current / u.previous).collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let r_med = quantile(&sorted, 0.5);
    let effects: Vec<f64> = scored
        .iter()
        .zip(&ratios)
        .map(|(unit, &r)| {
            let centered = if r < r_med {
                1.0 - r_med / r
            } else {
                r / r_med - 1.0
            };
            centered * unit.previous.max(unit.current).powf(params.u)
        })
        .collect();
    let mut sorted = effects.clone();
    sorted.sort_by(f64::total_cmp);
    let (e_q1, e_med, e_q3) = (
        quantile(&sorted, 0.25),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.75),
    );
    let floor = (params.a * e_med).abs();
    let d_q1 = (e_med - e_q1).max(floor);
    let d_q3 = (e_q3 - e_med).max(floor);
    let (lower, upper) = (e_med - params.c * d_q1, e_med + params.c * d_q3);
    scored
        .iter()
        .zip(ratios.iter().zip(&effects))
        .map(|(unit, (&ratio, &effect))| HbScore {
            key: unit.key.clone(),
            ratio,
            effect,
            lower,
            upper,
        })
        .collect()
}

/// The outliers of a cohort as findings, keyed by unit: the figures are the current and the
/// earlier value, the effect and the interval bounds; the tolerance is `C`.
pub fn growth_outliers<K: Clone>(units: &[HbUnit<K>], params: HbParams) -> Vec<(K, Finding)> {
    hidiroglou_berthelot(units, params)
        .into_iter()
        .filter(HbScore::is_outlier)
        .map(|score| {
            let finding = Finding {
                rule: QualityRule::GrowthOutlier,
                figures: vec![
                    Figure::new("growth ratio", score.ratio),
                    Figure::new("effect E", score.effect),
                    Figure::new("lower bound", score.lower),
                    Figure::new("upper bound", score.upper),
                ],
                tolerance: params.c,
                message: format!(
                    "growth ×{} is an outlier in its cohort: effect {} outside [{}, {}] (Hidiroglou–Berthelot, U={}, A={}, C={})",
                    fmt_value(score.ratio),
                    fmt_value(score.effect),
                    fmt_value(score.lower),
                    fmt_value(score.upper),
                    fmt_value(params.u),
                    fmt_value(params.a),
                    fmt_value(params.c)
                ),
            };
            (score.key, finding)
        })
        .collect()
}

/// Where a row's entity sits: the entity one level up and which rule compares them.
#[derive(Clone, Debug, PartialEq)]
pub struct Parent {
    /// The parent entity as named in messages and matched against other rows ("ZONE z1").
    pub entity: String,
    /// [`QualityRule::RegionSum`] (children summed against the parent) or
    /// [`QualityRule::EnterpriseOverZone`] (each child against the parent).
    pub rule: QualityRule,
}

/// One row the batch rules see: a row of the ingestion batch, or a figure already stored that
/// the batch's rows are compared with.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRow {
    /// The row number reported back to the caller (unused for a stored figure).
    pub row: i64,
    /// The entity as named in messages ("ZONE z1"); rows of one entity share it.
    pub entity: String,
    /// The entity one level up, when a rule compares them.
    pub parent: Option<Parent>,
    /// Rows whose growth is compared with each other (e.g. the entity kind).
    pub cohort: String,
    /// The indicator's code.
    pub indicator: String,
    /// Whether the indicator is an additive flow (the sum and period rules apply only to flows).
    pub flow: bool,
    /// The period.
    pub period: Period,
    /// The value in the canonical unit.
    pub value: f64,
    /// The value this row replaces, when one is stored.
    pub previous: Option<f64>,
    /// A figure already stored, not part of the batch: it is compared with, never reported
    /// on. A stored row whose (entity, indicator, period) the batch also carries is ignored.
    pub stored: bool,
}

/// A finding attributed to the row it is reported on.
#[derive(Clone, Debug, PartialEq)]
pub struct RowFinding {
    /// The batch row it is reported on: the row of the figure it is about, or, when that
    /// figure is a stored one, the first batch row it compared.
    pub row: i64,
    /// The figure the finding is about, as an index into the rows assessed: the region of a
    /// sum, the enterprise above its zone, the span of disagreeing sub-periods, the later
    /// year-to-date figure, the outlying or jumping row.
    pub subject: usize,
    /// The severity configured for the rule.
    pub severity: Severity,
    /// What was found.
    pub finding: Finding,
}

/// What the rules made of a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    /// The findings that involve a batch row, sorted by row.
    pub findings: Vec<RowFinding>,
    /// The (rule, subject) pairs an enabled rule checked with at least one batch row involved
    /// and found sound: an issue stored earlier for one of them no longer holds.
    pub passed: BTreeSet<(QualityRule, usize)>,
}

/// [`assess`], the findings only.
pub fn assess_batch(rows: &[BatchRow], config: &QualityConfig) -> Vec<RowFinding> {
    assess(rows, config).findings
}

/// Runs every enabled rule over a batch and the stored figures given with it: sums and
/// sub-periods compare figures of one region, zone or year with each other, growth compares a
/// batch row with the same entity's figure a year earlier within its cohort (the batch's rows
/// of that cohort), and a revision compares a row with the value it replaces. A comparison that
/// involves stored figures only is not made: it is not this batch's doing.
pub fn assess(rows: &[BatchRow], config: &QualityConfig) -> Assessment {
    use std::collections::BTreeMap;
    type Key = (String, String, Period);
    let key = |r: &BatchRow| (r.entity.clone(), r.indicator.clone(), r.period);
    let in_batch: BTreeSet<Key> = rows.iter().filter(|r| !r.stored).map(key).collect();
    // The rows that count: the batch's, and the stored ones it does not replace.
    let live: Vec<usize> = (0..rows.len())
        .filter(|&i| !rows[i].stored || !in_batch.contains(&key(&rows[i])))
        .collect();
    let index_of: BTreeMap<Key, usize> = live.iter().map(|&i| (key(&rows[i]), i)).collect();
    let on = |rule: QualityRule| config.rule(rule).enabled;

    let mut findings = Vec::new();
    let mut checked: BTreeSet<(QualityRule, usize)> = BTreeSet::new();
    let mut failed: BTreeSet<(QualityRule, usize)> = BTreeSet::new();
    // Reports `finding` about `subject` on the first batch row of `involved` (the subject
    // first); a comparison of stored figures alone is left out.
    let mut report = |subject: usize, involved: &[usize], finding: Finding| {
        failed.insert((finding.rule, subject));
        let reported = std::iter::once(subject)
            .chain(involved.iter().copied())
            .find(|&i| !rows[i].stored);
        if let Some(i) = reported {
            findings.push(RowFinding {
                row: rows[i].row,
                subject,
                severity: config.rule(finding.rule).severity,
                finding,
            });
        }
    };
    let touches_batch = |involved: &[usize]| involved.iter().any(|&i| !rows[i].stored);

    let mut children: BTreeMap<(String, String, Period, QualityRule), Vec<usize>> = BTreeMap::new();
    for &i in live.iter().filter(|&&i| rows[i].flow) {
        let r = &rows[i];
        if let Some(parent) = &r.parent {
            children
                .entry((
                    parent.entity.clone(),
                    r.indicator.clone(),
                    r.period,
                    parent.rule,
                ))
                .or_default()
                .push(i);
        }
    }
    for ((parent, indicator, period, rule), kids) in children {
        let Some(&whole) = index_of.get(&(parent.clone(), indicator, period)) else {
            continue;
        };
        if !on(rule) {
            continue;
        }
        let tolerance = config.rule(rule).tolerance;
        let whole_figure = Figure::new(parent, rows[whole].value);
        if rule == QualityRule::EnterpriseOverZone {
            for kid in kids {
                if !touches_batch(&[kid, whole]) {
                    continue;
                }
                checked.insert((rule, kid));
                let part = Figure::new(rows[kid].entity.clone(), rows[kid].value);
                if let Some(f) = check_not_above(rule, part, whole_figure.clone(), tolerance) {
                    report(kid, &[whole], f);
                }
            }
        } else {
            let mut involved = kids.clone();
            involved.push(whole);
            if !touches_batch(&involved) {
                continue;
            }
            checked.insert((rule, whole));
            let parts: Vec<Figure> = kids
                .iter()
                .map(|&kid| Figure::new(rows[kid].entity.clone(), rows[kid].value))
                .collect();
            if let Some(f) = check_parts_sum(rule, whole_figure, &parts, tolerance) {
                report(whole, &kids, f);
            }
        }
    }

    // Both period rules compare spans within one year.
    let mut series: BTreeMap<(String, String, i32), Vec<usize>> = BTreeMap::new();
    for &i in live.iter().filter(|&&i| rows[i].flow) {
        let r = &rows[i];
        series
            .entry((r.entity.clone(), r.indicator.clone(), r.period.year()))
            .or_default()
            .push(i);
    }
    for ((entity, indicator, _), members) in &series {
        if !touches_batch(members) {
            continue;
        }
        let points: Vec<(Period, f64)> = members
            .iter()
            .map(|&i| (rows[i].period, rows[i].value))
            .collect();
        let member_of = |label: &str| {
            members
                .iter()
                .copied()
                .find(|&i| rows[i].period.canonical() == label)
        };
        // The finding is about the period its figure `subject` names, and compared the
        // periods its figures from `others` on name.
        let mut judge = |rule: QualityRule, found: Vec<Finding>, subject: usize, others: usize| {
            if !on(rule) {
                return;
            }
            checked.extend(members.iter().map(|&i| (rule, i)));
            for mut f in found {
                let Some(about) = member_of(&f.figures[subject].label) else {
                    continue;
                };
                let involved: Vec<usize> = f.figures[others..]
                    .iter()
                    .filter_map(|figure| member_of(&figure.label))
                    .collect();
                f.message = format!("{entity} {indicator}: {}", f.message);
                report(about, &involved, f);
            }
        };
        let parts_tolerance = config.rule(QualityRule::PeriodParts).tolerance;
        let ytd_tolerance = config.rule(QualityRule::YtdFalls).tolerance;
        // The span is figure 1 of a sub-period finding, its parts follow; the later
        // year-to-date figure is figure 0, the earlier figure 1.
        judge(
            QualityRule::PeriodParts,
            check_period_parts(&points, parts_tolerance),
            1,
            2,
        );
        judge(
            QualityRule::YtdFalls,
            check_ytd_series(&points, ytd_tolerance),
            0,
            1,
        );
    }

    if on(QualityRule::GrowthOutlier) {
        let mut cohorts: BTreeMap<(String, String, Period), Vec<HbUnit<usize>>> = BTreeMap::new();
        for &i in live.iter().filter(|&&i| !rows[i].stored) {
            let r = &rows[i];
            let earlier = (
                r.entity.clone(),
                r.indicator.clone(),
                r.period.year_earlier(),
            );
            if let Some(&before) = index_of.get(&earlier) {
                cohorts
                    .entry((r.cohort.clone(), r.indicator.clone(), r.period))
                    .or_default()
                    .push(HbUnit {
                        key: i,
                        previous: rows[before].value,
                        current: r.value,
                    });
            }
        }
        for units in cohorts.values() {
            let scored: Vec<usize> = hidiroglou_berthelot(units, config.hb_params())
                .into_iter()
                .map(|s| s.key)
                .collect();
            checked.extend(scored.iter().map(|&i| (QualityRule::GrowthOutlier, i)));
            for (i, mut f) in growth_outliers(units, config.hb_params()) {
                let r = &rows[i];
                f.message = format!("{} {} {}: {}", r.entity, r.indicator, r.period, f.message);
                f.figures
                    .insert(0, Figure::new(r.period.canonical(), r.value));
                report(i, &[], f);
            }
        }
    }

    if on(QualityRule::RevisionJump) {
        let factor = config.rule(QualityRule::RevisionJump).tolerance;
        for &i in live.iter().filter(|&&i| !rows[i].stored) {
            let r = &rows[i];
            let Some(previous) = r.previous else { continue };
            if previous > 0.0 && r.value > 0.0 {
                checked.insert((QualityRule::RevisionJump, i));
            }
            if let Some(f) = check_revision(previous, r.value, factor) {
                report(i, &[], f);
            }
        }
    }
    findings.sort_by_key(|f| f.row);
    Assessment {
        findings,
        passed: checked.difference(&failed).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    fn row(
        row: i64,
        entity: &str,
        parent: Option<(&str, QualityRule)>,
        period: &str,
        value: f64,
    ) -> BatchRow {
        BatchRow {
            row,
            entity: entity.to_string(),
            parent: parent.map(|(entity, rule)| Parent {
                entity: entity.to_string(),
                rule,
            }),
            cohort: entity.split(' ').next().unwrap().to_string(),
            indicator: "tax".to_string(),
            flow: true,
            period: p(period),
            value,
            previous: None,
            stored: false,
        }
    }

    #[test]
    fn batch_rules_fire_on_their_rows_and_stay_quiet_on_clean_data() {
        let region = Some(("REGION 410300", QualityRule::RegionSum));
        let zone = Some(("ZONE z1", QualityRule::EnterpriseOverZone));
        let clean = vec![
            row(1, "REGION 410300", None, "2024", 100.0),
            row(2, "ZONE z1", region, "2024", 60.0),
            row(3, "ZONE z2", region, "2024", 40.0),
            row(4, "ENTERPRISE e1", zone, "2024", 59.0),
        ];
        let config = QualityConfig::default();
        assert_eq!(assess_batch(&clean, &config), vec![]);

        let mut bad = clean.clone();
        bad[2].value = 45.0; // 105 > 100 + 1%
        bad[3].value = 61.0; // enterprise above its zone
        bad.push(row(5, "ZONE z1", region, "2024-Q1", 10.0));
        bad.push(row(6, "ZONE z1", region, "2024-Q2", 10.0));
        bad.push(row(7, "ZONE z1", region, "2024-H1", 30.0)); // Q1 + Q2 = 20
        bad.push(row(8, "ZONE z1", region, "2024-09-YTD", 25.0)); // below H1 = 30
        let mut revised = row(9, "ZONE z9", None, "2023", 500.0);
        revised.previous = Some(5.0);
        bad.push(revised);
        let found: Vec<(i64, QualityRule)> = assess_batch(&bad, &config)
            .into_iter()
            .map(|f| (f.row, f.finding.rule))
            .collect();
        assert_eq!(
            found,
            vec![
                (1, QualityRule::RegionSum),
                (4, QualityRule::EnterpriseOverZone),
                (7, QualityRule::PeriodParts),
                (8, QualityRule::YtdFalls),
                (9, QualityRule::RevisionJump),
            ]
        );
        // switched off, a rule says nothing
        let mut off = config.clone();
        let mut rule = off.rule(QualityRule::RegionSum);
        rule.enabled = false;
        off.set_rule(QualityRule::RegionSum, rule);
        assert!(
            assess_batch(&bad, &off)
                .iter()
                .all(|f| f.finding.rule != QualityRule::RegionSum)
        );
    }

    #[test]
    fn batch_growth_outlier_in_its_cohort() {
        let mut rows = Vec::new();
        for (i, current) in [110.0, 105.0, 100.0, 108.0, 300.0].into_iter().enumerate() {
            let entity = format!("ZONE z{i}");
            rows.push(row(2 * i as i64 + 1, &entity, None, "2023", 100.0));
            rows.push(row(2 * i as i64 + 2, &entity, None, "2024", current));
        }
        let mut config = QualityConfig {
            hb_u: 0.0,
            ..QualityConfig::default()
        };
        let mut rule = config.rule(QualityRule::GrowthOutlier);
        rule.tolerance = 4.0;
        config.set_rule(QualityRule::GrowthOutlier, rule);
        let found = assess_batch(&rows, &config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].row, 10);
        assert_eq!(found[0].finding.rule, QualityRule::GrowthOutlier);
        assert_eq!(found[0].finding.figures[0], Figure::new("2024", 300.0));
    }

    #[test]
    fn codes_round_trip() {
        for rule in QualityRule::ALL {
            assert_eq!(QualityRule::from_code(rule.code()), Some(rule));
        }
        assert_eq!(QualityRule::from_code("nope"), None);
        assert_eq!(Severity::from_code("error"), Some(Severity::Error));
    }

    #[test]
    fn config_defaults_and_override() {
        let mut config = QualityConfig::default();
        assert_eq!(config.rule(QualityRule::RevisionJump).tolerance, 10.0);
        assert_eq!(config.hb_params(), HbParams::default());
        let mut rule = config.rule(QualityRule::GrowthOutlier);
        rule.tolerance = 4.0;
        config.set_rule(QualityRule::GrowthOutlier, rule);
        assert_eq!(config.hb_params().c, 4.0);
        assert!(config.rule(QualityRule::RegionSum).enabled);
    }

    #[test]
    fn zones_summed_beyond_the_region_fire() {
        let region = Figure::new("region 410300", 1000.0);
        let zones = [Figure::new("zone a", 600.0), Figure::new("zone b", 420.0)];
        let finding =
            check_parts_sum(QualityRule::RegionSum, region.clone(), &zones, 0.01).unwrap();
        assert_eq!(finding.figures[0], Figure::new("sum of 2 parts", 1020.0));
        assert_eq!(finding.figures[1], region);
        assert_eq!(finding.tolerance, 0.01);
        assert!(finding.message.contains("1020"), "{}", finding.message);
        // within 2%: quiet; less than the region: quiet
        assert!(check_parts_sum(QualityRule::RegionSum, region.clone(), &zones, 0.02).is_none());
        let small = [Figure::new("zone a", 600.0)];
        assert!(check_parts_sum(QualityRule::RegionSum, region, &small, 0.0).is_none());
    }

    #[test]
    fn enterprise_above_zone_fires() {
        let zone = Figure::new("zone z", 50.0);
        let firm = Figure::new("enterprise e", 50.5);
        let finding = check_not_above(
            QualityRule::EnterpriseOverZone,
            firm.clone(),
            zone.clone(),
            0.0,
        )
        .unwrap();
        assert_eq!(finding.figures, vec![firm.clone(), zone.clone()]);
        assert!(check_not_above(QualityRule::EnterpriseOverZone, firm, zone, 0.01).is_none());
    }

    #[test]
    fn quarters_against_the_half_year() {
        let series = [
            (p("2024-Q1"), 40.0),
            (p("2024-Q2"), 70.0),
            (p("2024-H1"), 100.0),
        ];
        let findings = check_period_parts(&series, 0.01);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].figures[0].value, 110.0);
        assert_eq!(findings[0].figures[1], Figure::new("2024-H1", 100.0));
        let clean = [
            (p("2024-Q1"), 40.0),
            (p("2024-Q2"), 60.5),
            (p("2024-H1"), 100.0),
        ];
        assert!(check_period_parts(&clean, 0.01).is_empty());
        // a missing part: nothing to compare
        assert!(check_period_parts(&series[1..], 0.0).is_empty());
    }

    #[test]
    fn months_against_the_year() {
        let mut series: Vec<(Period, f64)> = (1..=12)
            .map(|m| (Period::month(2023, m).unwrap(), 10.0))
            .collect();
        series.push((p("2023"), 120.0));
        assert!(check_period_parts(&series, 0.0).is_empty());
        series.last_mut().unwrap().1 = 130.0;
        let findings = check_period_parts(&series, 0.01);
        // the months tile the year; the quarters and halves are absent
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].figures[0].value, 120.0);
        assert_eq!(findings[0].figures.len(), 14);
    }

    #[test]
    fn falling_ytd_fires() {
        let series = [
            (p("2024-03-YTD"), 30.0),
            (p("2024-06-YTD"), 25.0),
            (p("2024-09-YTD"), 40.0),
            (p("2024-Q3"), 1.0),
        ];
        let findings = check_ytd_series(&series, 0.0);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].figures,
            vec![Figure::new("2024-H1", 25.0), Figure::new("2024-Q1", 30.0)]
        );
        let clean = [(p("2024-03-YTD"), 30.0), (p("2024-06-YTD"), 31.0)];
        assert!(check_ytd_series(&clean, 0.0).is_empty());
        // different years never compare
        let years = [(p("2023"), 300.0), (p("2024-03-YTD"), 30.0)];
        assert!(check_ytd_series(&years, 0.0).is_empty());
    }

    #[test]
    fn revision_jump_both_ways() {
        assert!(check_revision(100.0, 900.0, 10.0).is_none());
        let up = check_revision(100.0, 10_000.0, 10.0).unwrap();
        assert_eq!(up.figures[0].value, 10_000.0);
        assert!(up.message.contains("100×"), "{}", up.message);
        assert!(check_revision(10_000.0, 100.0, 10.0).is_some());
        assert!(check_revision(0.0, 100.0, 10.0).is_none());
    }

    /// Hand computation with U = 0, A = 0.05, C = 4 over five units growing from 100 to
    /// 110, 105, 100, 108 and 300:
    /// r = 1.1, 1.05, 1.0, 1.08, 3.0, r_med = 1.08;
    /// E = S = 1.1/1.08 − 1 = 0.0185185, 1 − 1.08/1.05 = −0.0285714, 1 − 1.08 = −0.08, 0,
    ///     3/1.08 − 1 = 1.7777778;
    /// sorted E: −0.08, −0.0285714, 0, 0.0185185, 1.7777778 → E_Q1 = −0.0285714 (position 2),
    /// E_med = 0, E_Q3 = 0.0185185 (position 4); |A·E_med| = 0, so d_Q1 = 0.0285714,
    /// d_Q3 = 0.0185185; the interval is [−0.1142857, 0.0740741]: only the unit at 300 is out.
    #[test]
    fn hidiroglou_berthelot_by_hand() {
        let units: Vec<HbUnit<&str>> = [
            ("a", 110.0),
            ("b", 105.0),
            ("c", 100.0),
            ("d", 108.0),
            ("e", 300.0),
        ]
        .into_iter()
        .map(|(key, current)| HbUnit {
            key,
            previous: 100.0,
            current,
        })
        .collect();
        let params = HbParams {
            u: 0.0,
            a: 0.05,
            c: 4.0,
        };
        let scores = hidiroglou_berthelot(&units, params);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(scores[0].effect, 0.0185185), "{}", scores[0].effect);
        assert!(close(scores[1].effect, -0.0285714));
        assert!(close(scores[2].effect, -0.08));
        assert!(close(scores[3].effect, 0.0));
        assert!(close(scores[4].effect, 1.7777778));
        assert!(close(scores[0].lower, -0.1142857), "{}", scores[0].lower);
        assert!(close(scores[0].upper, 0.0740741), "{}", scores[0].upper);
        let outliers: Vec<&str> = scores
            .iter()
            .filter(|s| s.is_outlier())
            .map(|s| s.key)
            .collect();
        assert_eq!(outliers, vec!["e"]);
        let findings = growth_outliers(&units, params);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].0, "e");
        assert_eq!(findings[0].1.tolerance, 4.0);
    }

    /// With U = 1 the magnitude matters: E = S · max(x). Units (prev → cur) 10 → 11, 20 → 22,
    /// 30 → 30, 40 → 40, 50 → 45: r = 1.1, 1.1, 1, 1, 0.9, r_med = 1;
    /// E = 0.1·11 = 1.1, 0.1·22 = 2.2, 0, 0, (1 − 1/0.9)·50 = −5.5556;
    /// sorted: −5.5556, 0, 0, 1.1, 2.2 → E_Q1 = 0, E_med = 0, E_Q3 = 1.1;
    /// d_Q1 = max(0, 0) = 0, so with C = 2 the lower bound is 0 and the fall is flagged,
    /// upper = 2.2: 2.2 is on the bound, not outside.
    #[test]
    fn hidiroglou_berthelot_magnitude() {
        let units: Vec<HbUnit<u32>> = [
            (10.0, 11.0),
            (20.0, 22.0),
            (30.0, 30.0),
            (40.0, 40.0),
            (50.0, 45.0),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (previous, current))| HbUnit {
            key: i as u32,
            previous,
            current,
        })
        .collect();
        let params = HbParams {
            u: 1.0,
            a: 0.05,
            c: 2.0,
        };
        let scores = hidiroglou_berthelot(&units, params);
        assert!((scores[4].effect + 5.555_555_6).abs() < 1e-6);
        assert!((scores[0].upper - 2.2).abs() < 1e-9);
        let outliers: Vec<u32> = scores
            .iter()
            .filter(|s| s.is_outlier())
            .map(|s| s.key)
            .collect();
        assert_eq!(outliers, vec![4]);
    }

    #[test]
    fn hidiroglou_berthelot_skips_small_and_zero() {
        let units = vec![
            HbUnit {
                key: 1,
                previous: 0.0,
                current: 5.0,
            },
            HbUnit {
                key: 2,
                previous: 5.0,
                current: 5.0,
            },
            HbUnit {
                key: 3,
                previous: 5.0,
                current: 50.0,
            },
        ];
        assert!(hidiroglou_berthelot(&units, HbParams::default()).is_empty());
    }

    #[test]
    fn stored_figures_are_compared_with_never_reported_on() {
        let region = Some(("REGION 410300", QualityRule::RegionSum));
        let stored = |mut r: BatchRow| {
            r.stored = true;
            r.row = 0;
            r
        };
        let config = QualityConfig::default();
        // a zone arriving alone: its stored sibling and it exceed the stored region
        let rows = vec![
            row(2, "ZONE z1", region, "2024", 70.0),
            stored(row(0, "REGION 410300", None, "2024", 100.0)),
            stored(row(0, "ZONE z2", region, "2024", 45.0)),
            // replaced by the batch's row: ignored
            stored(row(0, "ZONE z1", region, "2024", 50.0)),
        ];
        let found = assess(&rows, &config);
        assert_eq!(found.findings.len(), 1);
        let f = &found.findings[0];
        assert_eq!(
            (f.row, f.subject, f.finding.rule),
            (2, 1, QualityRule::RegionSum)
        );
        assert_eq!(f.finding.figures[0].value, 115.0);
        assert!(!found.passed.contains(&(QualityRule::RegionSum, 1)));

        // stored figures alone that disagree are not this batch's doing
        let rows = vec![
            row(2, "ZONE z9", None, "2023", 1.0),
            stored(row(0, "REGION 410300", None, "2024", 100.0)),
            stored(row(0, "ZONE z2", region, "2024", 145.0)),
        ];
        let found = assess(&rows, &config);
        assert!(found.findings.is_empty(), "{:?}", found.findings);
        assert!(!found.passed.contains(&(QualityRule::RegionSum, 1)));

        // a corrected region passes the sum: the pair is reported sound
        let rows = vec![
            row(2, "REGION 410300", None, "2024", 200.0),
            stored(row(0, "ZONE z2", region, "2024", 145.0)),
        ];
        let found = assess(&rows, &config);
        assert!(found.findings.is_empty());
        assert!(found.passed.contains(&(QualityRule::RegionSum, 0)));

        // a half-year arriving that, with the stored other half, contradicts the stored year
        let rows = vec![
            row(3, "ZONE z3", None, "2024-H2", 30.0),
            stored(row(0, "ZONE z3", None, "2024-H1", 20.0)),
            stored(row(0, "ZONE z3", None, "2024", 45.0)),
        ];
        let found = assess(&rows, &config);
        assert_eq!(found.findings.len(), 1);
        let f = &found.findings[0];
        assert_eq!(
            (f.row, f.subject, f.finding.rule),
            (3, 2, QualityRule::PeriodParts)
        );
        assert!(!found.passed.contains(&(QualityRule::PeriodParts, 2)));
        assert!(found.passed.contains(&(QualityRule::YtdFalls, 2)));
    }
}
