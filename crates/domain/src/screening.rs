//! Screening rules that flag zones: zombie parks (僵尸园区), hollow parks (空心园区) and
//! low-efficiency land (低效园区).
//!
//! A rule is a named list of conditions, each a metric expression compared with a threshold in
//! every one of N consecutive periods that end with the period screened (the same span, a year
//! apart: "two years running"). A threshold may depend on the zone's kind and on the level of
//! the region it lies in (city parks against county parks). A zone is flagged when every
//! condition holds, or any one when the rule says so; a missing figure never meets a condition.
//!
//! The metric values are evaluated by the caller; this module decides what they mean.

use std::fmt;

use crate::entity::{MAX_FREE_ID_LEN, RegionLevel, ZoneKind};
use crate::metric::Missing;
use crate::period::Period;

/// Most consecutive periods a condition may span.
pub const MAX_PERIODS: u32 = 10;
/// Most conditions a rule may have.
pub const MAX_CONDITIONS: usize = 20;

/// How a figure is compared with a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
}

impl Comparison {
    /// Whether `value` stands in this relation to `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::Greater => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Equal => value == threshold,
        }
    }

    /// The symbol, e.g. "<".
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "≤",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => "≥",
            Comparison::Equal => "=",
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A threshold for the zones of one kind and/or in regions of one level; `None` matches any.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub zone_kind: Option<ZoneKind>,
    pub region_level: Option<RegionLevel>,
    pub threshold: f64,
}

/// One condition: `metric comparison threshold` in each of `periods` consecutive periods.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// A metric expression, e.g. "per_mu(tax)".
    pub metric: String,
    pub comparison: Comparison,
    /// In the metric's unit.
    pub threshold: f64,
    /// 1 to [`MAX_PERIODS`].
    pub periods: u32,
    /// The first that matches a zone replaces `threshold` for it.
    pub thresholds: Vec<Threshold>,
}

/// A screening rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// `[A-Za-z0-9._-]{1,64}`
    pub id: String,
    pub name: String,
    pub description: String,
    pub conditions: Vec<Condition>,
    /// Flag when any condition holds rather than all.
    pub match_any: bool,
}

/// What a zone is, as per-kind and per-level thresholds read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneProfile {
    pub kind: Option<ZoneKind>,
    /// The level of the region the zone lies in.
    pub region_level: Option<RegionLevel>,
}

impl Condition {
    /// The threshold that applies to `zone`.
    pub fn threshold_for(&self, zone: &ZoneProfile) -> f64 {
        self.thresholds
            .iter()
            .find(|t| {
                t.zone_kind.is_none_or(|k| zone.kind == Some(k))
                    && t.region_level.is_none_or(|l| zone.region_level == Some(l))
            })
            .map_or(self.threshold, |t| t.threshold)
    }

    /// The periods the condition reads for `period`, oldest first: the same span in each of the
    /// `periods` years ending with it.
    pub fn periods_ending(&self, period: Period) -> Vec<Period> {
        let n = self.periods.clamp(1, MAX_PERIODS) as i32;
        (0..n).rev().map(|back| period.shift_years(-back)).collect()
    }

    /// How the condition goes for `zone` given its values in [`Condition::periods_ending`]
    /// order.
    pub fn outcome(&self, zone: &ZoneProfile, values: &[Result<f64, Missing>]) -> Outcome {
        let threshold = self.threshold_for(zone);
        let met = !values.is_empty()
            && values
                .iter()
                .all(|v| matches!(v, Ok(v) if self.comparison.holds(*v, threshold)));
        Outcome { threshold, met }
    }
}

/// The result of one condition for one zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// The threshold applied.
    pub threshold: f64,
    /// Whether it held in every period.
    pub met: bool,
}

impl Rule {
    /// Whether conditions that went as `met` flag the zone.
    pub fn flags(&self, met: &[bool]) -> bool {
        if met.is_empty() {
            return false;
        }
        if self.match_any {
            met.iter().any(|m| *m)
        } else {
            met.iter().all(|m| *m)
        }
    }

    /// Every fault of the rule that can be seen without the catalog, as (field, reason): the
    /// metric expressions are parsed by the caller, which holds the catalog.
    pub fn faults(&self) -> Vec<(String, String)> {
        let mut faults = Vec::new();
        let mut fault = |field: String, reason: &str| faults.push((field, reason.to_owned()));
        let id = self.id.trim();
        let id_ok = (1..=MAX_FREE_ID_LEN).contains(&id.chars().count())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            fault(
                "rule.id".into(),
                "must be 1 to 64 of the characters A–Z, a–z, 0–9, '.', '_' and '-'",
            );
        }
        if self.name.trim().is_empty() {
            fault("rule.name".into(), "must be set");
        }
        if self.conditions.is_empty() {
            fault("rule.conditions".into(), "name at least one condition");
        }
        if self.conditions.len() > MAX_CONDITIONS {
            fault("rule.conditions".into(), "at most 20 conditions");
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let field = |name: &str| format!("rule.conditions[{i}].{name}");
            if c.metric.trim().is_empty() {
                fault(field("metric"), "must be set, e.g. per_mu(tax)");
            }
            if !c.threshold.is_finite() {
                fault(field("threshold"), "must be a finite number");
            }
            if !(1..=MAX_PERIODS).contains(&c.periods) {
                fault(field("periods"), "must be 1 to 10 consecutive periods");
            }
            for (j, t) in c.thresholds.iter().enumerate() {
                if !t.threshold.is_finite() {
                    fault(
                        format!("rule.conditions[{i}].thresholds[{j}].threshold"),
                        "must be a finite number",
                    );
                }
            }
        }
        faults
    }
}

/// The id of the built-in low-efficiency rule.
pub const LOW_EFFICIENCY_RULE: &str = "low-efficiency";
/// The id of the built-in zombie-park rule.
pub const ZOMBIE_PARK_RULE: &str = "zombie-park";

/// Tax per mu below 4万元 in city parks and 2万元 in county parks, as Hengyang screens
/// low-efficiency parks.
fn per_mu_tax_below(periods: u32) -> Condition {
    Condition {
        metric: "per_mu(tax)".into(),
        comparison: Comparison::Less,
        threshold: 4.0,
        periods,
        thresholds: vec![
            Threshold {
                zone_kind: None,
                region_level: Some(RegionLevel::City),
                threshold: 4.0,
            },
            Threshold {
                zone_kind: None,
                region_level: Some(RegionLevel::County),
                threshold: 2.0,
            },
        ],
    }
}

/// The rules shipped with zonerank; stored rules cannot take their ids.
pub fn builtin_rules() -> Vec<Rule> {
    vec![
        Rule {
            id: LOW_EFFICIENCY_RULE.into(),
            name: "低效园区 (low-efficiency parks)".into(),
            description: "Tax per mu of industrial land below 4万元/亩 in city-level parks and \
                          below 2万元/亩 in county parks (Hengyang's thresholds)."
                .into(),
            conditions: vec![per_mu_tax_below(1)],
            match_any: false,
        },
        Rule {
            id: ZOMBIE_PARK_RULE.into(),
            name: "僵尸园区 (zombie parks)".into(),
            description: "Tax per mu below the low-efficiency thresholds two years running, and \
                          no project started in either year."
                .into(),
            conditions: vec![
                per_mu_tax_below(2),
                Condition {
                    metric: "projects(started)".into(),
                    comparison: Comparison::Equal,
                    threshold: 0.0,
                    periods: 2,
                    thresholds: vec![],
                },
            ],
            match_any: false,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    const CITY_PARK: ZoneProfile = ZoneProfile {
        kind: Some(ZoneKind::IndustrialPark),
        region_level: Some(RegionLevel::City),
    };
    const COUNTY_PARK: ZoneProfile = ZoneProfile {
        kind: Some(ZoneKind::IndustrialPark),
        region_level: Some(RegionLevel::County),
    };

    #[test]
    fn thresholds_follow_the_zones_kind_and_level() {
        let condition = per_mu_tax_below(1);
        assert_eq!(condition.threshold_for(&CITY_PARK), 4.0);
        assert_eq!(condition.threshold_for(&COUNTY_PARK), 2.0);
        // A zone matching none of them takes the condition's own threshold.
        assert_eq!(condition.threshold_for(&ZoneProfile::default()), 4.0);
        let by_kind = Condition {
            thresholds: vec![Threshold {
                zone_kind: Some(ZoneKind::HighTechZone),
                region_level: Some(RegionLevel::County),
                threshold: 9.0,
            }],
            ..per_mu_tax_below(1)
        };
        assert_eq!(by_kind.threshold_for(&COUNTY_PARK), 4.0);
        let high_tech = ZoneProfile {
            kind: Some(ZoneKind::HighTechZone),
            ..COUNTY_PARK
        };
        assert_eq!(by_kind.threshold_for(&high_tech), 9.0);
    }

    #[test]
    fn a_condition_must_hold_in_every_period() {
        let condition = per_mu_tax_below(2);
        assert_eq!(condition.periods_ending(p("2024")), [p("2023"), p("2024")]);
        assert_eq!(
            condition.periods_ending(p("2024-H1")),
            [p("2023-H1"), p("2024-H1")]
        );
        let below = condition.outcome(&COUNTY_PARK, &[Ok(1.5), Ok(1.9)]);
        assert_eq!(
            below,
            Outcome {
                threshold: 2.0,
                met: true
            }
        );
        // One year below only is not two years running.
        assert!(!condition.outcome(&COUNTY_PARK, &[Ok(2.5), Ok(1.9)]).met);
        // Exactly at the threshold is not below it.
        assert!(!condition.outcome(&COUNTY_PARK, &[Ok(2.0), Ok(1.0)]).met);
        // The same figures in a city park are below its 4万元.
        assert!(condition.outcome(&CITY_PARK, &[Ok(2.5), Ok(1.9)]).met);
        // A missing figure meets nothing.
        let missing = Err(Missing::NoLandArea { period: p("2023") });
        assert!(!condition.outcome(&CITY_PARK, &[missing, Ok(1.0)]).met);
        assert!(!condition.outcome(&CITY_PARK, &[]).met);
    }

    #[test]
    fn rules_flag_on_all_or_any() {
        let mut rule = builtin_rules().remove(1);
        assert_eq!(rule.id, ZOMBIE_PARK_RULE);
        assert!(rule.flags(&[true, true]));
        assert!(!rule.flags(&[true, false]));
        rule.match_any = true;
        assert!(rule.flags(&[false, true]));
        assert!(!rule.flags(&[false, false]));
        assert!(!rule.flags(&[]));
    }

    #[test]
    fn comparisons() {
        use Comparison::*;
        for (comparison, value, holds) in [
            (Less, 1.0, true),
            (Less, 2.0, false),
            (LessOrEqual, 2.0, true),
            (Greater, 2.0, false),
            (Greater, 3.0, true),
            (GreaterOrEqual, 2.0, true),
            (Equal, 2.0, true),
            (Equal, 2.5, false),
        ] {
            assert_eq!(
                comparison.holds(value, 2.0),
                holds,
                "{value} {comparison} 2"
            );
        }
    }

    #[test]
    fn faults_name_the_field() {
        assert!(builtin_rules().iter().all(|r| r.faults().is_empty()));
        let rule = Rule {
            id: "bad id".into(),
            name: " ".into(),
            description: String::new(),
            conditions: vec![Condition {
                metric: String::new(),
                comparison: Comparison::Less,
                threshold: f64::NAN,
                periods: 11,
                thresholds: vec![Threshold {
                    zone_kind: None,
                    region_level: None,
                    threshold: f64::INFINITY,
                }],
            }],
            match_any: false,
        };
        let fields: Vec<String> = rule.faults().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "rule.id",
                "rule.name",
                "rule.conditions[0].metric",
                "rule.conditions[0].threshold",
                "rule.conditions[0].periods",
                "rule.conditions[0].thresholds[0].threshold",
            ]
        );
        let empty = Rule {
            conditions: vec![],
            ..builtin_rules().remove(0)
        };
        assert_eq!(empty.faults()[0].0, "rule.conditions");
    }
}
