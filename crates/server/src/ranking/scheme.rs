//! Schemes on the wire and in the domain: checking a wire scheme names every fault by its field,
//! and the built-in example schemes follow the seeds.

use zonerank_api::v1;
use zonerank_domain::{
    assessment::{ExitRule, PolicyKind, StandingRules, Threshold},
    metric::negative_part,
    ranking::{
        Aggregation, MissingPolicy, Normalization, Weighting,
        scheme::{
            Adjustment, ClassCut, Criterion, Gate, MetricSigns, Scheme, SchemeFault, StarRule,
            Veto, WeightPlan, authoring_faults, default_class_cuts, validate, weight_plan,
        },
    },
};

use crate::{
    convert,
    error::{ServiceError, Violation},
    metrics::Catalog,
};

/// A checked scheme: the domain form plus what the run needs around it.
#[derive(Clone, Debug)]
pub struct CheckedScheme {
    pub scheme: Scheme,
    /// Every metric the run reads: criteria first, then gates, adjustments and vetoes.
    pub metrics: Vec<String>,
    /// Which criteria and adjustments can be negative, from their expressions.
    pub signs: MetricSigns,
    /// The standing rules, thresholds and class policies of the lifecycle.
    pub lifecycle: Lifecycle,
}

/// What a scheme says about standings across periods, warnings and class policies.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    pub entry_gates: Vec<Gate>,
    /// (metric, label) of each disqualifying event.
    pub disqualifying: Vec<(String, String)>,
    pub rules: StandingRules,
    pub thresholds: Vec<Threshold>,
    pub class_policies: Vec<v1::ClassPolicies>,
}

impl Lifecycle {
    /// The policies `class_label` carries.
    pub fn policies(&self, class_label: &str) -> Vec<v1::Policy> {
        self.class_policies
            .iter()
            .filter(|c| c.class_label == class_label)
            .flat_map(|c| c.policies.iter().cloned())
            .collect()
    }
}

/// The lifecycle parts of a wire scheme, every fault named by its field under `prefix`.
fn lifecycle(
    prefix: &str,
    wire: &v1::Scheme,
    metric: &mut dyn FnMut(String, &str) -> Option<String>,
    faults: &mut Vec<Violation>,
) -> Lifecycle {
    let mut out = Lifecycle::default();
    for (i, g) in wire.entry_gates.iter().enumerate() {
        let field = format!("{prefix}.entry_gates[{i}]");
        match Gate::parse(g) {
            Ok(mut gate) => {
                if let Some(m) = metric(field, &gate.metric) {
                    gate.metric = m;
                    out.entry_gates.push(gate);
                }
            }
            Err(e) => faults.push(Violation::new(field, e)),
        }
    }
    for (i, d) in wire.disqualifying_events.iter().enumerate() {
        if let Some(m) = metric(
            format!("{prefix}.disqualifying_events[{i}].indicator"),
            &d.indicator,
        ) {
            out.disqualifying.push((m, d.label.clone()));
        }
    }
    for (i, r) in wire.exit_rules.iter().enumerate() {
        let field = |f: &str| format!("{prefix}.exit_rules[{i}].{f}");
        if r.bottom < 1 {
            faults.push(Violation::new(field("bottom"), "must be at least 1"));
        }
        if r.times < 1 {
            faults.push(Violation::new(field("times"), "must be at least 1"));
        }
        if r.window < r.times.max(1) {
            faults.push(Violation::new(
                field("window"),
                format!("must be at least times ({})", r.times),
            ));
        }
        let label = if r.label.trim().is_empty() {
            format!(
                "bottom {} in {} of the last {} periods",
                r.bottom, r.times, r.window
            )
        } else {
            r.label.clone()
        };
        out.rules.exit_rules.push(ExitRule {
            bottom: r.bottom.max(0) as u32,
            times: r.times.max(0) as u32,
            window: r.window.max(0) as u32,
            label,
        });
    }
    match u8::try_from(wire.max_star_step) {
        Ok(0) => {}
        Ok(step) if step <= 6 => out.rules.max_star_step = Some(step),
        _ => faults.push(Violation::new(
            format!("{prefix}.max_star_step"),
            "must be 0 (no limit) to 6",
        )),
    }
    for (i, t) in wire.thresholds.iter().enumerate() {
        let field = |f: &str| format!("{prefix}.thresholds[{i}].{f}");
        let Some(m) = metric(field("metric"), &t.metric) else {
            continue;
        };
        if t.warn_below.is_none() && t.warn_above.is_none() && t.excellent_above.is_none() {
            faults.push(Violation::new(
                field("metric"),
                "set warn_below, warn_above or excellent_above",
            ));
        }
        for (name, bound) in [
            ("warn_below", t.warn_below),
            ("warn_above", t.warn_above),
            ("excellent_above", t.excellent_above),
        ] {
            if bound.is_some_and(|b| !b.is_finite()) {
                faults.push(Violation::new(field(name), "must be a finite number"));
            }
        }
        out.thresholds.push(Threshold {
            metric: m,
            warn_below: t.warn_below,
            warn_above: t.warn_above,
            excellent_above: t.excellent_above,
            label: t.label.clone(),
        });
    }
    for (i, c) in wire.class_policies.iter().enumerate() {
        if c.class_label.trim().is_empty() {
            faults.push(Violation::new(
                format!("{prefix}.class_policies[{i}].class_label"),
                "must be set, e.g. \"A\"",
            ));
        }
        for (j, p) in c.policies.iter().enumerate() {
            let field = |f: &str| format!("{prefix}.class_policies[{i}].policies[{j}].{f}");
            if p.label.trim().is_empty() {
                faults.push(Violation::new(field("label"), "must be set"));
            }
            if let Err(e) = zonerank_api::convert::enum_value::<v1::PolicyKind, PolicyKind>(p.kind)
            {
                faults.push(Violation::new(field("kind"), e));
            }
            if !p.value.is_finite() {
                faults.push(Violation::new(field("value"), "must be a finite number"));
            }
        }
    }
    out.class_policies = wire.class_policies.clone();
    out
}

fn normalization(n: i32) -> Normalization {
    match v1::Normalization::try_from(n).unwrap_or_default() {
        v1::Normalization::ZScore => Normalization::ZScore,
        v1::Normalization::Efficacy => Normalization::Efficacy,
        v1::Normalization::Vector => Normalization::Vector,
        v1::Normalization::BenchmarkRatio => Normalization::BenchmarkRatio,
        v1::Normalization::PercentileRank => Normalization::PercentileRank,
        v1::Normalization::MinMax | v1::Normalization::Unspecified => Normalization::MinMax,
    }
}

fn weighting(w: i32) -> Weighting {
    match v1::Weighting::try_from(w).unwrap_or_default() {
        v1::Weighting::Equal => Weighting::Equal,
        v1::Weighting::Entropy => Weighting::Entropy,
        v1::Weighting::Critic => Weighting::Critic,
        v1::Weighting::Fixed | v1::Weighting::Unspecified => Weighting::Fixed,
    }
}

fn aggregation(a: i32) -> Aggregation {
    match v1::Aggregation::try_from(a).unwrap_or_default() {
        v1::Aggregation::GeometricMean => Aggregation::GeometricMean,
        v1::Aggregation::Topsis => Aggregation::Topsis,
        v1::Aggregation::WeightedSum | v1::Aggregation::Unspecified => Aggregation::WeightedSum,
    }
}

fn missing_policy(m: i32) -> MissingPolicy {
    match v1::MissingPolicy::try_from(m).unwrap_or_default() {
        v1::MissingPolicy::Exclude => MissingPolicy::Exclude,
        v1::MissingPolicy::CohortMean => MissingPolicy::CohortMean,
        v1::MissingPolicy::Worst | v1::MissingPolicy::Unspecified => MissingPolicy::Worst,
    }
}

/// Checks a wire scheme against the catalog and the domain rules; every fault is reported with
/// its field under `prefix` (e.g. "scheme").
pub fn check(
    prefix: &str,
    wire: &v1::Scheme,
    catalog: &Catalog,
) -> Result<CheckedScheme, ServiceError> {
    crate::budget::scheme(prefix, wire)?;
    let mut faults: Vec<Violation> = Vec::new();
    let metric = |field: String, text: &str, faults: &mut Vec<Violation>| match catalog
        .parse(&field, text)
    {
        Ok(m) => Some(m),
        Err(ServiceError::InvalidArgument { violations, .. }) => {
            faults.extend(violations);
            None
        }
        Err(_) => None,
    };
    let mut criteria = Vec::with_capacity(wire.criteria.len());
    let mut signs = MetricSigns::default();
    for (i, c) in wire.criteria.iter().enumerate() {
        let Some(m) = metric(
            format!("{prefix}.criteria[{i}].metric"),
            &c.metric,
            &mut faults,
        ) else {
            continue;
        };
        signs
            .criteria
            .push(negative_part(&m.expr).map(ToString::to_string));
        criteria.push(Criterion {
            direction: convert::direction(c.direction).unwrap_or(m.direction),
            metric: m.text,
            weight: c.weight,
            benchmark: (c.benchmark != 0.0).then_some(c.benchmark),
        });
    }
    let mut star_rules = Vec::with_capacity(wire.star_rules.len());
    for (i, r) in wire.star_rules.iter().enumerate() {
        let mut gates = Vec::new();
        for (j, g) in r.gates.iter().enumerate() {
            let field = format!("{prefix}.star_rules[{i}].gates[{j}]");
            match Gate::parse(g) {
                Ok(mut gate) => {
                    if let Some(m) = metric(field, &gate.metric, &mut faults) {
                        gate.metric = m.text;
                        gates.push(gate);
                    }
                }
                Err(e) => faults.push(Violation::new(field, e)),
            }
        }
        star_rules.push(StarRule {
            level: u8::try_from(r.level).unwrap_or(0),
            min_score: r.min_score,
            gates,
        });
    }
    let mut adjustments = Vec::new();
    for (i, a) in wire.adjustments.iter().enumerate() {
        if let Some(m) = metric(
            format!("{prefix}.adjustments[{i}].indicator"),
            &a.indicator,
            &mut faults,
        ) {
            signs.adjustments.push(negative_part(&m.expr).is_some());
            adjustments.push(Adjustment {
                metric: m.text,
                points_per_event: a.points_per_event,
                label: a.label.clone(),
            });
        }
    }
    let mut vetoes = Vec::new();
    for (i, v) in wire.vetoes.iter().enumerate() {
        if let Some(m) = metric(
            format!("{prefix}.vetoes[{i}].indicator"),
            &v.indicator,
            &mut faults,
        ) {
            vetoes.push(Veto {
                metric: m.text,
                label: v.label.clone(),
                bars_stars: v.bars_stars,
                bars_class_a: v.bars_class_a,
            });
        }
    }
    let class_cuts = if wire.class_cuts.is_empty() {
        default_class_cuts()
    } else {
        wire.class_cuts
            .iter()
            .map(|c| ClassCut {
                label: c.label.clone(),
                top_percent: c.top_percent,
                min_score: c.min_score,
            })
            .collect()
    };
    let mut lifecycle_faults = Vec::new();
    let lifecycle = lifecycle(
        prefix,
        wire,
        &mut |field, text| metric(field, text, &mut faults).map(|m| m.text),
        &mut lifecycle_faults,
    );
    faults.extend(lifecycle_faults);
    let scheme = Scheme {
        criteria,
        normalization: normalization(wire.normalization),
        weighting: weighting(wire.weighting),
        aggregation: aggregation(wire.aggregation),
        missing_policy: missing_policy(wire.missing_policy),
        star_rules,
        class_cuts,
        adjustments,
        vetoes,
    };
    if faults.is_empty()
        && let Err(domain_faults) = validate(&scheme)
    {
        faults.extend(prefixed(prefix, domain_faults));
    }
    if !faults.is_empty() {
        return Err(refused(faults));
    }
    let mut metrics: Vec<String> = scheme.criteria.iter().map(|c| c.metric.clone()).collect();
    for extra in zonerank_domain::ranking::scheme::extra_metrics(&scheme) {
        if !metrics.contains(&extra) {
            metrics.push(extra);
        }
    }
    // Entry gates and disqualifying events are read with the run, into the entries' extras.
    for extra in lifecycle
        .entry_gates
        .iter()
        .map(|g| g.metric.clone())
        .chain(lifecycle.disqualifying.iter().map(|(m, _)| m.clone()))
    {
        if !metrics.contains(&extra) {
            metrics.push(extra);
        }
    }
    Ok(CheckedScheme {
        scheme,
        metrics,
        signs,
        lifecycle,
    })
}

/// A scheme about to be stored or simulated: `check`, then what only a new scheme is refused
/// for (entropy over a metric that can be negative, thresholds outside its score range), and
/// the weights a run of it uses.
pub fn check_new(
    prefix: &str,
    wire: &v1::Scheme,
    catalog: &Catalog,
) -> Result<(CheckedScheme, WeightPlan), ServiceError> {
    let checked = check(prefix, wire, catalog)?;
    let faults: Vec<Violation> =
        prefixed(prefix, authoring_faults(&checked.scheme, &checked.signs)).collect();
    if !faults.is_empty() {
        return Err(refused(faults));
    }
    let plan = weight_plan(&checked.scheme);
    Ok((checked, plan))
}

fn prefixed(prefix: &str, faults: Vec<SchemeFault>) -> impl Iterator<Item = Violation> + '_ {
    faults
        .into_iter()
        .map(move |f| Violation::new(format!("{prefix}.{}", f.field), f.reason))
}

fn refused(faults: Vec<Violation>) -> ServiceError {
    ServiceError::InvalidArgument {
        message: format!(
            "{} fault(s) in the scheme; first: {}: {}",
            faults.len(),
            faults[0].field,
            faults[0].reason
        ),
        violations: faults,
    }
}

fn criterion(metric: &str, weight: f64) -> v1::Criterion {
    v1::Criterion {
        metric: metric.into(),
        weight,
        direction: 0,
        benchmark: 0.0,
    }
}

/// The built-in example schemes, stored as version 1 when absent.
pub fn builtin_schemes() -> Vec<v1::Scheme> {
    vec![
        v1::Scheme {
            id: "henan-zone-assessment".into(),
            name: "河南省产业集聚区考核排序 (provincial zone assessment)".into(),
            description: "Growth, per-mu output and tax, investment intensity, energy intensity \
                          change and share of the region, efficacy-scored (60 + 40 × min-max) and \
                          weighted; one to three stars with revenue gates; the top-60 target of \
                          Luoyang's zones."
                .into(),
            entity_kind: v1::EntityKind::Zone as i32,
            cohort: Some(v1::CohortSelector {
                entity_kind: v1::EntityKind::Zone as i32,
                region_code: "410000".into(),
                ..Default::default()
            }),
            criteria: vec![
                criterion("yoy(revenue)", 0.2),
                criterion("per_mu(output_value)", 0.2),
                criterion("per_mu(tax)", 0.2),
                criterion("investment_intensity", 0.15),
                criterion("energy_intensity_change", 0.15),
                criterion("share(revenue)", 0.1),
            ],
            normalization: v1::Normalization::Efficacy as i32,
            weighting: v1::Weighting::Fixed as i32,
            aggregation: v1::Aggregation::WeightedSum as i32,
            missing_policy: v1::MissingPolicy::Worst as i32,
            star_rules: vec![
                v1::StarRule {
                    level: 1,
                    min_score: 76.0,
                    gates: vec![],
                },
                v1::StarRule {
                    level: 2,
                    min_score: 80.0,
                    gates: vec!["revenue >= 1000000".into()],
                },
                v1::StarRule {
                    level: 3,
                    min_score: 84.0,
                    gates: vec!["revenue >= 5000000".into()],
                },
            ],
            rank_target: 60,
            ..Default::default()
        },
        v1::Scheme {
            id: "enterprise-per-mu".into(),
            name: "工业企业亩均效益综合评价 (enterprise per-mu evaluation)".into(),
            description: "Tax and value added per mu, labour productivity, R&D intensity and \
                          energy intensity against the cohort mean; firms without a figure get \
                          the cohort mean score; A/B/C/D by 20/60/95/100%; a major safety \
                          accident deducts a point and bars class A."
                .into(),
            entity_kind: v1::EntityKind::Enterprise as i32,
            cohort: Some(v1::CohortSelector {
                entity_kind: v1::EntityKind::Enterprise as i32,
                ..Default::default()
            }),
            criteria: vec![
                criterion("per_mu(tax)", 0.4),
                criterion("per_mu(value_added)", 0.2),
                criterion("labor_productivity", 0.15),
                criterion("rd_intensity", 0.1),
                criterion("energy_intensity", 0.15),
            ],
            normalization: v1::Normalization::BenchmarkRatio as i32,
            weighting: v1::Weighting::Fixed as i32,
            aggregation: v1::Aggregation::WeightedSum as i32,
            missing_policy: v1::MissingPolicy::CohortMean as i32,
            adjustments: vec![v1::Adjustment {
                indicator: "major_safety_accidents".into(),
                points_per_event: -1.0,
                label: "重大安全事故".into(),
            }],
            vetoes: vec![v1::Veto {
                indicator: "major_safety_accidents".into(),
                label: "重大安全事故一票否决".into(),
                bars_stars: true,
                bars_class_a: true,
            }],
            ..Default::default()
        },
    ]
}
