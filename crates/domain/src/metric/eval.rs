//! Evaluating metric expressions over a dataset: each value is a number or the reason it is
//! missing, never a silent 0 or NaN.

use std::collections::BTreeSet;

use crate::entity::ProjectStatus;
use crate::period::Period;

use super::expr::{Expr, Function, LAND_AREA, Metric, is_zones_total};
use crate::cluster::{location_quotient, shift_share};

/// An entity's position in a dataset; cheap to copy and to hash.
pub type EntityIdx = u32;

/// The figures and structure an evaluation reads.
pub trait MetricData {
    /// The value of `indicator` for `entity` over `period`, if known.
    fn value(&self, entity: EntityIdx, indicator: &str, period: &Period) -> Option<f64>;
    /// The region an entity lies in: a zone's county, a county's city.
    fn parent(&self, entity: EntityIdx) -> Option<EntityIdx>;
    /// The zones inside a region, at any depth; `None` when the entity is not a region.
    fn zones_within(&self, region: EntityIdx) -> Option<&[EntityIdx]>;
    /// What the projects of a zone holding `status` over `period` add up to (zero figures when
    /// it has none); `None` when the zone's projects were not read.
    fn projects(
        &self,
        _zone: EntityIdx,
        _status: ProjectStatus,
        _period: &Period,
    ) -> Option<ProjectFigures> {
        None
    }
}

/// What the projects of one zone at one status over one period add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProjectFigures {
    /// How many projects.
    pub count: f64,
    /// Their planned investment, 万元.
    pub planned_investment: f64,
    /// Their investment completed so far, 万元.
    pub completed_investment: f64,
}

impl ProjectFigures {
    /// Adds one project's figures.
    pub fn add(&mut self, planned_investment: f64, completed_investment: f64) {
        self.count += 1.0;
        self.planned_investment += planned_investment;
        self.completed_investment += completed_investment;
    }
}

/// Why a metric has no value for an entity and period.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Missing {
    /// The indicator has no figure for the period.
    #[error("no {indicator} figure for {period}")]
    NoData {
        /// The indicator code.
        indicator: String,
        /// The period asked for.
        period: Period,
    },
    /// The base period of a year-on-year or CAGR comparison has no figure.
    #[error("no figure for the base period {period}")]
    BaseMissing {
        /// The base period.
        period: Period,
    },
    /// The figure divided by is zero or negative, so a growth rate or share means nothing.
    #[error("the base figure for {period} is zero or negative")]
    NonPositiveBase {
        /// The period of that figure.
        period: Period,
    },
    /// The entity has no parent region to compare with.
    #[error("no parent region to compare with")]
    NoParent,
    /// The region compared with has no figure.
    #[error("no figure for the enclosing region in {period}")]
    NoParentFigure {
        /// The period asked for.
        period: Period,
    },
    /// No positive industrial land area to divide by.
    #[error("no industrial land area (land_area) for {period}")]
    NoLandArea {
        /// The period asked for.
        period: Period,
    },
    /// The divisor is zero.
    #[error("division by zero")]
    DivisionByZero,
    /// zones_total was asked of an entity that is not a region.
    #[error("zones_total applies to regions only")]
    NotARegion,
    /// No zone within the region has a figure.
    #[error("no zone in the region has a figure")]
    NoZones,
    /// The enclosing region did not change, so a contribution to its change means nothing.
    #[error("the enclosing region's figure did not change, so there is no growth to contribute to")]
    ZeroParentChange,
    /// A negative current figure has no compound growth rate.
    #[error("the figure for {period} is negative, so its compound growth rate is undefined")]
    NegativeValue {
        /// The period of that figure.
        period: Period,
    },
    /// The result overflows a floating-point number.
    #[error("the result is too large to represent")]
    NotFinite,
    /// The entity's region has no parent region to take the reference share from.
    #[error("the enclosing region has no parent region to compare with")]
    NoReferenceRegion,
    /// The projects of a zone were not read for the period.
    #[error("no project figures for {period}")]
    NoProjectData {
        /// The period asked for.
        period: Period,
    },
    /// The expression was built by hand with the wrong arguments; parsing never makes one.
    #[error("the metric expression is malformed")]
    Malformed,
}

impl Missing {
    /// A stable machine-readable code, e.g. "NO_DATA".
    pub fn code(&self) -> &'static str {
        match self {
            Missing::NoData { .. } => "NO_DATA",
            Missing::BaseMissing { .. } => "BASE_MISSING",
            Missing::NonPositiveBase { .. } => "NON_POSITIVE_BASE",
            Missing::NoParent => "NO_PARENT",
            Missing::NoParentFigure { .. } => "NO_PARENT_FIGURE",
            Missing::NoLandArea { .. } => "NO_LAND_AREA",
            Missing::DivisionByZero => "DIVISION_BY_ZERO",
            Missing::NotARegion => "NOT_A_REGION",
            Missing::NoZones => "NO_ZONES",
            Missing::ZeroParentChange => "ZERO_PARENT_CHANGE",
            Missing::NegativeValue { .. } => "NEGATIVE_VALUE",
            Missing::NotFinite => "NOT_FINITE",
            Missing::NoReferenceRegion => "NO_REFERENCE_REGION",
            Missing::NoProjectData { .. } => "NO_PROJECT_DATA",
            Missing::Malformed => "MALFORMED_EXPRESSION",
        }
    }
}

/// The value of `metric` for `entity` over `period`.
pub fn evaluate<D: MetricData + ?Sized>(
    metric: &Metric,
    data: &D,
    entity: EntityIdx,
    period: &Period,
) -> Result<f64, Missing> {
    evaluate_expr(&metric.expr, data, entity, period)
}

/// The value of an expression for `entity` over `period`.
pub fn evaluate_expr<D: MetricData + ?Sized>(
    expr: &Expr,
    data: &D,
    entity: EntityIdx,
    period: &Period,
) -> Result<f64, Missing> {
    let value = match expr {
        Expr::Indicator(code) => {
            data.value(entity, code, period)
                .ok_or_else(|| Missing::NoData {
                    indicator: code.clone(),
                    period: *period,
                })?
        }
        Expr::Number(value) => *value,
        Expr::Status(_) => return Err(Missing::Malformed),
        Expr::Named(metric) => return evaluate_expr(metric.definition(), data, entity, period),
        Expr::Call { function, args } => call(*function, args, data, entity, period)?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Missing::NotFinite)
    }
}

fn call<D: MetricData + ?Sized>(
    function: Function,
    args: &[Expr],
    data: &D,
    entity: EntityIdx,
    period: &Period,
) -> Result<f64, Missing> {
    let eval = |expr: &Expr, p: &Period| evaluate_expr(expr, data, entity, p);
    match (function, args) {
        (Function::Yoy, [x]) => growth(x, data, entity, period, 1),
        (Function::Cagr, [x, Expr::Number(years)]) => {
            let years = cagr_years(*years).ok_or(Missing::Malformed)?;
            growth(x, data, entity, period, years)
        }
        (Function::Share, [x]) => {
            let part = eval(x, period)?;
            let whole = whole(x, data, entity, period)?;
            if whole <= 0.0 {
                return Err(Missing::NonPositiveBase { period: *period });
            }
            Ok(part / whole * 100.0)
        }
        (Function::Contribution, [x]) => {
            let base_period = period.year_earlier();
            let change =
                eval(x, period)? - eval(x, &base_period).map_err(|e| at_base(e, base_period))?;
            let whole_change =
                whole(x, data, entity, period)? - whole(x, data, entity, &base_period)?;
            if whole_change == 0.0 {
                return Err(Missing::ZeroParentChange);
            }
            Ok(change / whole_change * 100.0)
        }
        (Function::PerMu, [x]) => {
            let value = eval(x, period)?;
            let land = data
                .value(entity, LAND_AREA, period)
                .filter(|area| *area > 0.0)
                .ok_or(Missing::NoLandArea { period: *period })?;
            Ok(value / land)
        }
        (Function::Ratio, [x, y]) => divide(eval(x, period)?, eval(y, period)?),
        (Function::Percent, [x, y]) => Ok(divide(eval(x, period)?, eval(y, period)?)? * 100.0),
        (Function::ZonesTotal, [x]) => {
            let zones = data.zones_within(entity).ok_or(Missing::NotARegion)?;
            // Zones without a figure are left out rather than failing the region's total.
            let mut values = zones
                .iter()
                .filter_map(|&zone| evaluate_expr(x, data, zone, period).ok())
                .peekable();
            if values.peek().is_none() {
                return Err(Missing::NoZones);
            }
            Ok(values.sum())
        }
        (Function::Lq, [x]) => {
            let region = data.parent(entity).ok_or(Missing::NoParent)?;
            let reference = data.parent(region).ok_or(Missing::NoReferenceRegion)?;
            let part = eval(x, period)?;
            let figure = |owner: EntityIdx| {
                evaluate_expr(x, data, owner, period)
                    .map_err(|_| Missing::NoParentFigure { period: *period })
            };
            let local_total = figure(region)?;
            let reference_total = figure(reference)?;
            let zones_total = Expr::Call {
                function: Function::ZonesTotal,
                args: vec![x.clone()],
            };
            let reference_part = evaluate_expr(&zones_total, data, reference, period)?;
            location_quotient(part, local_total, reference_part, reference_total)
                .ok_or(Missing::NonPositiveBase { period: *period })
        }
        (Function::ShiftShare, [x]) => {
            let base_period = period.year_earlier();
            let end = eval(x, period)?;
            let start = eval(x, &base_period).map_err(|e| at_base(e, base_period))?;
            let reference_end = whole(x, data, entity, period)?;
            let reference_start = whole(x, data, entity, &base_period)?;
            shift_share(start, end, reference_start, reference_end)
                .map(|s| s.differential)
                .ok_or(Missing::NonPositiveBase {
                    period: base_period,
                })
        }
        (
            Function::Projects | Function::ProjectInvestment | Function::ProjectCompletedInvestment,
            [Expr::Status(status)],
        ) => {
            // A zone's own projects; a region's are those of the zones within it.
            let zones = data
                .zones_within(entity)
                .unwrap_or(std::slice::from_ref(&entity));
            let mut total = 0.0;
            for &zone in zones {
                let figures = data
                    .projects(zone, *status, period)
                    .ok_or(Missing::NoProjectData { period: *period })?;
                total += match function {
                    Function::Projects => figures.count,
                    Function::ProjectInvestment => figures.planned_investment,
                    _ => figures.completed_investment,
                };
            }
            Ok(total)
        }
        _ => Err(Missing::Malformed),
    }
}

fn cagr_years(years: f64) -> Option<i32> {
    let whole = years as i32;
    (whole >= 1 && f64::from(whole) == years).then_some(whole)
}

fn divide(numerator: f64, denominator: f64) -> Result<f64, Missing> {
    if denominator == 0.0 {
        Err(Missing::DivisionByZero)
    } else {
        Ok(numerator / denominator)
    }
}

/// Compound growth per year over `years` years, in percent; yoy is the one-year case.
fn growth<D: MetricData + ?Sized>(
    x: &Expr,
    data: &D,
    entity: EntityIdx,
    period: &Period,
    years: i32,
) -> Result<f64, Missing> {
    let current = evaluate_expr(x, data, entity, period)?;
    let base_period = period.shift_years(-years);
    let base = evaluate_expr(x, data, entity, &base_period).map_err(|e| at_base(e, base_period))?;
    if base <= 0.0 {
        return Err(Missing::NonPositiveBase {
            period: base_period,
        });
    }
    if years == 1 {
        return Ok((current - base) / base * 100.0);
    }
    if current < 0.0 {
        return Err(Missing::NegativeValue { period: *period });
    }
    Ok(((current / base).powf(1.0 / f64::from(years)) - 1.0) * 100.0)
}

/// Names the base period when the base itself has no figure; other reasons (a zero divisor,
/// a missing parent figure, a deeper base) already say what is wrong and where.
fn at_base(error: Missing, base_period: Period) -> Missing {
    match error {
        Missing::NoData { .. } | Missing::NoZones => Missing::BaseMissing {
            period: base_period,
        },
        other => other,
    }
}

/// The whole a share or contribution is taken of: for `zones_total(y)` on a region, the
/// region's own figure y ("the zones' FAI is 40% of the city's"); otherwise the same
/// expression on the entity's parent region ("66% of the county's").
fn whole<D: MetricData + ?Sized>(
    x: &Expr,
    data: &D,
    entity: EntityIdx,
    period: &Period,
) -> Result<f64, Missing> {
    let (owner, expr) = match x {
        Expr::Call { args, .. } if is_zones_total(x) && args.len() == 1 => (entity, &args[0]),
        _ => (data.parent(entity).ok_or(Missing::NoParent)?, x),
    };
    evaluate_expr(expr, data, owner, period)
        .map_err(|_| Missing::NoParentFigure { period: *period })
}

/// What an evaluation reads, so the service loads just that in a few set-based queries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Every indicator read, on any entity.
    pub indicators: BTreeSet<String>,
    /// How many years before the period are read (1 for yoy, n for cagr, added when nested).
    pub years_back: i32,
    /// Whether parent regions' figures are read (share, contribution).
    pub parent: bool,
    /// Whether the zones within regions are read (zones_total, lq).
    pub zones: bool,
    /// Whether the parent regions' own parents are read, with the zones within them (lq).
    pub reference: bool,
    /// Whether the zones' projects are read (projects, project_investment, …).
    pub projects: bool,
}

/// What evaluating `metric` reads.
pub fn requirements(metric: &Metric) -> Requirements {
    let mut needs = Requirements::default();
    collect(&metric.expr, 0, &mut needs);
    needs
}

fn collect(expr: &Expr, years_back: i32, needs: &mut Requirements) {
    needs.years_back = needs.years_back.max(years_back);
    match expr {
        Expr::Indicator(code) => {
            needs.indicators.insert(code.clone());
        }
        Expr::Number(_) | Expr::Status(_) => {}
        Expr::Named(metric) => collect(metric.definition(), years_back, needs),
        Expr::Call { function, args } => {
            let shift = match (function, args.as_slice()) {
                (Function::Yoy | Function::Contribution | Function::ShiftShare, _) => 1,
                (Function::Cagr, [_, Expr::Number(years)]) => cagr_years(*years).unwrap_or(0),
                _ => 0,
            };
            match function {
                // A zone total's whole is the region's own figure, not its parent's.
                Function::Share | Function::Contribution | Function::ShiftShare
                    if !args.first().is_some_and(is_zones_total) =>
                {
                    needs.parent = true;
                }
                Function::PerMu => {
                    needs.indicators.insert(LAND_AREA.to_owned());
                }
                Function::ZonesTotal => needs.zones = true,
                Function::Lq => {
                    needs.parent = true;
                    needs.zones = true;
                    needs.reference = true;
                }
                Function::Projects
                | Function::ProjectInvestment
                | Function::ProjectCompletedInvestment => {
                    needs.zones = true;
                    needs.projects = true;
                }
                _ => {}
            }
            for arg in args {
                collect(arg, years_back.saturating_add(shift), needs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::catalog::builtin_indicator;
    use crate::metric::parse_metric;

    /// A hand-built dataset: values by (entity, indicator, period text).
    #[derive(Default)]
    struct Figures {
        values: HashMap<(EntityIdx, String, Period), f64>,
        parents: HashMap<EntityIdx, EntityIdx>,
        zones: HashMap<EntityIdx, Vec<EntityIdx>>,
    }

    impl Figures {
        fn set(&mut self, entity: EntityIdx, indicator: &str, period: &str, value: f64) {
            self.values
                .insert((entity, indicator.to_owned(), p(period)), value);
        }
    }

    impl MetricData for Figures {
        fn value(&self, entity: EntityIdx, indicator: &str, period: &Period) -> Option<f64> {
            self.values
                .get(&(entity, indicator.to_owned(), *period))
                .copied()
        }
        fn parent(&self, entity: EntityIdx) -> Option<EntityIdx> {
            self.parents.get(&entity).copied()
        }
        fn zones_within(&self, region: EntityIdx) -> Option<&[EntityIdx]> {
            self.zones.get(&region).map(Vec::as_slice)
        }
    }

    fn p(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    fn metric(text: &str) -> Metric {
        parse_metric(text, &builtin_indicator).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn eval(data: &Figures, text: &str, entity: EntityIdx, period: &str) -> Result<f64, Missing> {
        evaluate(&metric(text), data, entity, &p(period))
    }

    fn close(actual: Result<f64, Missing>, expected: f64) {
        let value = actual.unwrap_or_else(|m| panic!("expected {expected}, missing: {m}"));
        assert!(
            (value - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{value} != {expected}"
        );
    }

    const ZONE: EntityIdx = 0;
    const COUNTY: EntityIdx = 1;

    /// Queshan industrial agglomeration zone (411725-CJQ) in Queshan county, 2014-H1 (seed 002).
    fn queshan() -> Figures {
        let mut data = Figures::default();
        data.parents.insert(ZONE, COUNTY);
        data.set(ZONE, "output_value", "2014-H1", 532_000.0);
        data.set(ZONE, "output_value", "2013-H1", 532_000.0 / 1.225);
        data.set(ZONE, "fixed_asset_investment", "2014-H1", 401_000.0);
        data.set(
            COUNTY,
            "fixed_asset_investment",
            "2014-H1",
            401_000.0 / 0.66,
        );
        data.set(ZONE, "tax", "2014-H1", 11_400.0);
        data.set(COUNTY, "tax", "2014-H1", 11_400.0 / 0.49);
        data.set(ZONE, "leading_industry_output", "2014-H1", 357_000.0);
        data
    }

    #[test]
    fn queshan_figures_from_the_seed() {
        let data = queshan();
        close(eval(&data, "output_value", ZONE, "2014-H1"), 532_000.0);
        close(eval(&data, "yoy(output_value)", ZONE, "2014-H1"), 22.5);
        close(
            eval(&data, "share(fixed_asset_investment)", ZONE, "2014-H1"),
            66.0,
        );
        close(eval(&data, "share(tax)", ZONE, "2014-H1"), 49.0);
        let leading = eval(&data, "leading_industry_share", ZONE, "2014-H1").unwrap();
        // 357000 ÷ 532000 × 100 = 67.105263…, the seed's "67%".
        close(Ok(leading), 357_000.0 / 532_000.0 * 100.0);
        assert!((leading - 67.1).abs() < 0.01, "{leading}");
        // The same span spelled as a cumulative figure reads the same data.
        close(eval(&data, "yoy(output_value)", ZONE, "2014-06-YTD"), 22.5);
    }

    #[test]
    fn project_pipeline_of_a_zone_and_of_its_region() {
        use crate::entity::{EntityKind, ProjectStatus};
        use crate::metric::Dataset;
        let mut data = Dataset::new();
        let city = data.add_entity(EntityKind::Region, "410300");
        let parks: Vec<EntityIdx> = (0..3)
            .map(|i| data.add_entity(EntityKind::Zone, &format!("park-{i}")))
            .collect();
        data.set_zones_within(city, parks.clone());
        let year = p("2018");
        // Before the projects are read a figure is missing, never a silent 0.
        assert_eq!(
            evaluate(&metric("projects(started)"), &data, parks[0], &year),
            Err(Missing::NoProjectData { period: year })
        );
        data.mark_projects_read();
        // park-0: two under construction (10 + 20, 3 + 4 done) and one negotiating;
        // park-1: one under construction (30, 5 done); park-2: none.
        let uc = ProjectStatus::UnderConstruction;
        assert!(data.add_project(parks[0], uc, year, 10.0, 3.0));
        assert!(data.add_project(parks[0], uc, year, 20.0, 4.0));
        assert!(data.add_project(parks[0], ProjectStatus::Negotiating, year, 7.0, 0.0));
        assert!(data.add_project(parks[1], uc, year, 30.0, 5.0));
        // Another span of the year is another period.
        assert!(data.add_project(parks[1], uc, p("2018-H1"), 99.0, 9.0));
        let at = |text: &str, entity| evaluate(&metric(text), &data, entity, &year);
        close(at("projects(under_construction)", parks[0]), 2.0);
        close(at("project_investment(under_construction)", parks[0]), 30.0);
        close(
            at("project_completed_investment(under_construction)", parks[0]),
            7.0,
        );
        close(at("projects(negotiating)", parks[0]), 1.0);
        close(at("projects(under_construction)", parks[2]), 0.0);
        close(at("project_investment(started)", parks[2]), 0.0);
        // The city sums its parks.
        close(at("projects(under_construction)", city), 3.0);
        close(at("project_investment(under_construction)", city), 60.0);
        close(
            at("project_completed_investment(under_construction)", city),
            12.0,
        );
        close(
            evaluate(
                &metric("projects(under_construction)"),
                &data,
                city,
                &p("2018-H1"),
            ),
            1.0,
        );
        // A year-earlier base with no project is zero, so growth from it is undefined.
        assert_eq!(
            at("yoy(projects(under_construction))", parks[0]),
            Err(Missing::NonPositiveBase { period: p("2017") })
        );
        let needs = requirements(&metric("yoy(project_investment(signed))"));
        assert!(needs.projects && needs.zones);
        assert_eq!(needs.years_back, 1);
    }

    #[test]
    fn indicator_without_a_figure_is_no_data() {
        let data = queshan();
        assert_eq!(
            eval(&data, "revenue", ZONE, "2014-H1"),
            Err(Missing::NoData {
                indicator: "revenue".to_owned(),
                period: p("2014-H1")
            })
        );
        // Another span of the same year is not the span asked for.
        assert!(matches!(
            eval(&data, "output_value", ZONE, "2014"),
            Err(Missing::NoData { .. })
        ));
    }

    #[test]
    fn yoy_reasons() {
        let mut data = Figures::default();
        data.set(ZONE, "revenue", "2014", 150.0);
        data.set(ZONE, "revenue", "2013", 120.0);
        data.set(ZONE, "revenue", "2012", 0.0);
        data.set(ZONE, "revenue", "2011", 10.0);
        data.set(ZONE, "profit", "2014", 5.0);
        data.set(ZONE, "profit", "2013", -10.0);
        // (150 − 120) ÷ 120 × 100 = 25
        close(eval(&data, "yoy(revenue)", ZONE, "2014"), 25.0);
        // (0 − 10) ÷ 10 × 100 = −100
        close(eval(&data, "yoy(revenue)", ZONE, "2012"), -100.0);
        assert_eq!(
            eval(&data, "yoy(revenue)", ZONE, "2013"),
            Err(Missing::NonPositiveBase { period: p("2012") })
        );
        assert_eq!(
            eval(&data, "yoy(profit)", ZONE, "2014"),
            Err(Missing::NonPositiveBase { period: p("2013") })
        );
        assert_eq!(
            eval(&data, "yoy(revenue)", ZONE, "2011"),
            Err(Missing::BaseMissing { period: p("2010") })
        );
        assert_eq!(
            eval(&data, "yoy(revenue)", ZONE, "2015"),
            Err(Missing::NoData {
                indicator: "revenue".to_owned(),
                period: p("2015")
            })
        );
    }

    #[test]
    fn cagr_reasons() {
        let mut data = Figures::default();
        // 1.1^5 = 1.61051, so five years of 10% growth.
        data.set(ZONE, "revenue", "2014", 161.051);
        data.set(ZONE, "revenue", "2009", 100.0);
        data.set(ZONE, "revenue", "2013", 144.0);
        data.set(ZONE, "revenue", "2011", 100.0);
        data.set(ZONE, "profit", "2014", -1.0);
        data.set(ZONE, "profit", "2012", 4.0);
        data.set(ZONE, "profit", "2010", 0.0);
        close(eval(&data, "cagr(revenue, 5)", ZONE, "2014"), 10.0);
        // √(144 ÷ 100) − 1 = 20%
        close(eval(&data, "cagr(revenue, 2)", ZONE, "2013"), 20.0);
        // One year is plain year-on-year growth.
        close(
            eval(&data, "cagr(revenue, 1)", ZONE, "2014"),
            (161.051 / 144.0 - 1.0) * 100.0,
        );
        close(
            eval(&data, "cagr(revenue, 3)", ZONE, "2014"),
            (1.61051_f64.cbrt() - 1.0) * 100.0,
        );
        assert_eq!(
            eval(&data, "cagr(revenue, 4)", ZONE, "2014"),
            Err(Missing::BaseMissing { period: p("2010") })
        );
        assert_eq!(
            eval(&data, "cagr(profit, 2)", ZONE, "2014"),
            Err(Missing::NegativeValue { period: p("2014") })
        );
        assert_eq!(
            eval(&data, "cagr(profit, 2)", ZONE, "2012"),
            Err(Missing::NonPositiveBase { period: p("2010") })
        );
    }

    #[test]
    fn share_reasons() {
        let mut data = queshan();
        const ORPHAN: EntityIdx = 7;
        data.set(ORPHAN, "tax", "2014-H1", 10.0);
        assert_eq!(
            eval(&data, "share(tax)", ORPHAN, "2014-H1"),
            Err(Missing::NoParent)
        );
        assert_eq!(
            eval(&data, "share(output_value)", ZONE, "2014-H1"),
            Err(Missing::NoParentFigure {
                period: p("2014-H1")
            })
        );
        data.set(COUNTY, "output_value", "2014-H1", 0.0);
        assert_eq!(
            eval(&data, "share(output_value)", ZONE, "2014-H1"),
            Err(Missing::NonPositiveBase {
                period: p("2014-H1")
            })
        );
        // The entity's own figure is checked first.
        assert!(matches!(
            eval(&data, "share(revenue)", ZONE, "2014-H1"),
            Err(Missing::NoData { .. })
        ));
    }

    #[test]
    fn contribution_reasons() {
        let mut data = Figures::default();
        data.parents.insert(ZONE, COUNTY);
        data.set(ZONE, "revenue", "2014", 130.0);
        data.set(ZONE, "revenue", "2013", 100.0);
        data.set(COUNTY, "revenue", "2014", 560.0);
        data.set(COUNTY, "revenue", "2013", 500.0);
        // Δzone 30 of Δcounty 60 = 50%
        close(eval(&data, "contribution(revenue)", ZONE, "2014"), 50.0);
        data.set(COUNTY, "revenue", "2014", 500.0);
        assert_eq!(
            eval(&data, "contribution(revenue)", ZONE, "2014"),
            Err(Missing::ZeroParentChange)
        );
        data.set(ZONE, "tax", "2014", 3.0);
        assert_eq!(
            eval(&data, "contribution(tax)", ZONE, "2014"),
            Err(Missing::BaseMissing { period: p("2013") })
        );
        data.set(ZONE, "tax", "2013", 2.0);
        data.set(COUNTY, "tax", "2014", 9.0);
        assert_eq!(
            eval(&data, "contribution(tax)", ZONE, "2014"),
            Err(Missing::NoParentFigure { period: p("2013") })
        );
        data.set(COUNTY, "tax", "2013", 13.0);
        // Δzone +1 against Δcounty −4: the zone grew while the county shrank, −25%.
        close(eval(&data, "contribution(tax)", ZONE, "2014"), -25.0);
        data.parents.clear();
        assert_eq!(
            eval(&data, "contribution(tax)", ZONE, "2014"),
            Err(Missing::NoParent)
        );
    }

    #[test]
    fn per_mu_reasons() {
        let mut data = Figures::default();
        data.set(ZONE, "tax", "2014", 45_000.0);
        data.set(ZONE, "fixed_asset_investment", "2014", 900_000.0);
        data.set(ZONE, "land_area", "2014", 3_000.0);
        // 45000 万元 ÷ 3000 亩 = 15 万元/亩, the 亩均税收 benchmark of seed 001.
        close(eval(&data, "per_mu(tax)", ZONE, "2014"), 15.0);
        close(eval(&data, "investment_intensity", ZONE, "2014"), 300.0);
        data.set(ZONE, "tax", "2013", 36_000.0);
        assert_eq!(
            eval(&data, "per_mu(tax)", ZONE, "2013"),
            Err(Missing::NoLandArea { period: p("2013") })
        );
        data.set(ZONE, "land_area", "2013", 0.0);
        assert_eq!(
            eval(&data, "per_mu(tax)", ZONE, "2013"),
            Err(Missing::NoLandArea { period: p("2013") })
        );
        data.set(ZONE, "land_area", "2013", 3_000.0);
        // 12 → 15 万元/亩 is +25%.
        close(eval(&data, "yoy(per_mu(tax))", ZONE, "2014"), 25.0);
    }

    #[test]
    fn ratio_and_named_metric_reasons() {
        let mut data = Figures::default();
        data.set(ZONE, "energy_consumption", "2014", 9_500.0);
        data.set(ZONE, "value_added", "2014", 10_000.0);
        data.set(ZONE, "energy_consumption", "2013", 8_000.0);
        data.set(ZONE, "value_added", "2013", 8_000.0);
        data.set(ZONE, "employees", "2014", 400.0);
        data.set(ZONE, "rd_expenditure", "2014", 300.0);
        data.set(ZONE, "revenue", "2014", 12_000.0);
        close(eval(&data, "energy_intensity", ZONE, "2014"), 0.95);
        // 0.95 against 1.00 a year earlier: −5%.
        close(eval(&data, "energy_intensity_change", ZONE, "2014"), -5.0);
        close(eval(&data, "yoy(energy_intensity)", ZONE, "2014"), -5.0);
        close(
            eval(&data, "value_added_per_energy", ZONE, "2014"),
            10_000.0 / 9_500.0,
        );
        close(eval(&data, "labor_productivity", ZONE, "2014"), 25.0);
        close(eval(&data, "rd_intensity", ZONE, "2014"), 2.5);
        close(
            eval(&data, "ratio(value_added, employees)", ZONE, "2014"),
            25.0,
        );
        close(
            eval(&data, "percent(rd_expenditure, revenue)", ZONE, "2014"),
            2.5,
        );
        data.set(ZONE, "employees", "2013", 0.0);
        assert_eq!(
            eval(&data, "labor_productivity", ZONE, "2013"),
            Err(Missing::DivisionByZero)
        );
        assert_eq!(
            eval(&data, "rd_intensity", ZONE, "2013"),
            Err(Missing::NoData {
                indicator: "rd_expenditure".to_owned(),
                period: p("2013")
            })
        );
        data.set(ZONE, "rd_expenditure", "2013", 1.0);
        assert_eq!(
            eval(&data, "rd_intensity", ZONE, "2013"),
            Err(Missing::NoData {
                indicator: "revenue".to_owned(),
                period: p("2013")
            })
        );
        // A base that is itself a division by zero says so rather than "base missing".
        data.set(ZONE, "value_added", "2012", 0.0);
        data.set(ZONE, "energy_consumption", "2012", 1.0);
        assert_eq!(
            eval(&data, "energy_intensity_change", ZONE, "2013"),
            Err(Missing::DivisionByZero)
        );
        assert_eq!(
            eval(&data, "energy_intensity_change", ZONE, "2012"),
            Err(Missing::DivisionByZero)
        );
    }

    const CITY: EntityIdx = 10; // 410300 Luoyang
    const XINAN: EntityIdx = 11; // 410323 Xin'an county, under Luoyang
    const ZONE_A: EntityIdx = 12; // a zone in Xin'an county
    const ZONE_B: EntityIdx = 13; // a zone directly under the city
    const PROVINCE: EntityIdx = 14; // 410000 Henan

    /// Luoyang's zones: FAI 910亿 in 2012, +40% on 650亿, 40% of the city's 2275亿 (seed 000).
    fn luoyang() -> Figures {
        let mut data = Figures::default();
        data.parents.extend([
            (ZONE_A, XINAN),
            (XINAN, CITY),
            (ZONE_B, CITY),
            (CITY, PROVINCE),
        ]);
        data.zones.insert(CITY, vec![ZONE_A, ZONE_B]);
        data.zones.insert(XINAN, vec![ZONE_A]);
        data.zones.insert(PROVINCE, vec![ZONE_A, ZONE_B]);
        let fai = "fixed_asset_investment";
        data.set(ZONE_A, fai, "2012", 5_600_000.0);
        data.set(ZONE_B, fai, "2012", 3_500_000.0);
        data.set(ZONE_A, fai, "2011", 4_000_000.0);
        data.set(ZONE_B, fai, "2011", 2_500_000.0);
        data.set(CITY, fai, "2012", 22_750_000.0);
        data.set(CITY, fai, "2011", 19_750_000.0);
        data
    }

    #[test]
    fn luoyang_zone_totals() {
        let data = luoyang();
        close(
            eval(&data, "zones_total(fixed_asset_investment)", CITY, "2012"),
            9_100_000.0,
        );
        // 9,100,000 ÷ 6,500,000 = 1.4
        close(
            eval(
                &data,
                "yoy(zones_total(fixed_asset_investment))",
                CITY,
                "2012",
            ),
            40.0,
        );
        // 9,100,000 ÷ 22,750,000 = 40%: the city's own figure, not its province's.
        close(
            eval(
                &data,
                "share(zones_total(fixed_asset_investment))",
                CITY,
                "2012",
            ),
            40.0,
        );
        // Δzones 2,600,000 of Δcity 3,000,000.
        close(
            eval(
                &data,
                "contribution(zones_total(fixed_asset_investment))",
                CITY,
                "2012",
            ),
            2_600_000.0 / 3_000_000.0 * 100.0,
        );
        close(
            eval(&data, "zones_total(fixed_asset_investment)", XINAN, "2012"),
            5_600_000.0,
        );
        // Zone A's share of Xin'an county, which has no own figure.
        assert_eq!(
            eval(&data, "share(fixed_asset_investment)", ZONE_A, "2012"),
            Err(Missing::NoParentFigure { period: p("2012") })
        );
        // Zone B's share of the city, its direct parent.
        close(
            eval(&data, "share(fixed_asset_investment)", ZONE_B, "2012"),
            3_500_000.0 / 22_750_000.0 * 100.0,
        );
    }

    #[test]
    fn zone_total_reasons() {
        let mut data = luoyang();
        assert_eq!(
            eval(&data, "zones_total(fixed_asset_investment)", ZONE_A, "2012"),
            Err(Missing::NotARegion)
        );
        assert_eq!(
            eval(&data, "zones_total(fixed_asset_investment)", CITY, "2010"),
            Err(Missing::NoZones)
        );
        data.zones.insert(XINAN, Vec::new());
        assert_eq!(
            eval(&data, "zones_total(fixed_asset_investment)", XINAN, "2012"),
            Err(Missing::NoZones)
        );
        assert_eq!(
            eval(
                &data,
                "yoy(zones_total(fixed_asset_investment))",
                CITY,
                "2011"
            ),
            Err(Missing::BaseMissing { period: p("2010") })
        );
        // A zone without a figure is left out of the sum.
        data.set(ZONE_B, "tax", "2012", 7.0);
        close(eval(&data, "zones_total(tax)", CITY, "2012"), 7.0);
        assert_eq!(
            eval(&data, "share(zones_total(tax))", CITY, "2012"),
            Err(Missing::NoParentFigure { period: p("2012") })
        );
        data.set(CITY, "tax", "2012", -1.0);
        assert_eq!(
            eval(&data, "share(zones_total(tax))", CITY, "2012"),
            Err(Missing::NonPositiveBase { period: p("2012") })
        );
    }

    #[test]
    fn non_finite_results_are_reported() {
        let mut data = Figures::default();
        data.set(ZONE, "revenue", "2014", f64::MAX);
        data.set(ZONE, "employees", "2014", 1e-300);
        assert_eq!(
            eval(&data, "ratio(revenue, employees)", ZONE, "2014"),
            Err(Missing::NotFinite)
        );
    }

    #[test]
    fn hand_built_malformed_expressions_do_not_panic() {
        let data = queshan();
        for expr in [
            Expr::Call {
                function: Function::Ratio,
                args: vec![Expr::Indicator("tax".to_owned())],
            },
            Expr::Call {
                function: Function::Cagr,
                args: vec![Expr::Indicator("tax".to_owned()), Expr::Number(0.5)],
            },
        ] {
            assert_eq!(
                evaluate_expr(&expr, &data, ZONE, &p("2014-H1")),
                Err(Missing::Malformed)
            );
        }
    }

    #[test]
    fn missing_reasons_have_codes_and_messages() {
        let period = p("2014-H1");
        for (missing, code, message) in [
            (
                Missing::NoData {
                    indicator: "tax".to_owned(),
                    period,
                },
                "NO_DATA",
                "no tax figure for 2014-H1",
            ),
            (
                Missing::BaseMissing { period },
                "BASE_MISSING",
                "no figure for the base period 2014-H1",
            ),
            (
                Missing::NonPositiveBase { period },
                "NON_POSITIVE_BASE",
                "the base figure for 2014-H1 is zero or negative",
            ),
            (
                Missing::NoParent,
                "NO_PARENT",
                "no parent region to compare with",
            ),
            (
                Missing::NoParentFigure { period },
                "NO_PARENT_FIGURE",
                "no figure for the enclosing region in 2014-H1",
            ),
            (
                Missing::NoLandArea { period },
                "NO_LAND_AREA",
                "no industrial land area (land_area) for 2014-H1",
            ),
            (
                Missing::DivisionByZero,
                "DIVISION_BY_ZERO",
                "division by zero",
            ),
            (
                Missing::NotARegion,
                "NOT_A_REGION",
                "zones_total applies to regions only",
            ),
            (
                Missing::NoZones,
                "NO_ZONES",
                "no zone in the region has a figure",
            ),
            (
                Missing::ZeroParentChange,
                "ZERO_PARENT_CHANGE",
                "the enclosing region's figure did not change, so there is no growth to \
                 contribute to",
            ),
        ] {
            assert_eq!(missing.code(), code);
            assert_eq!(missing.to_string(), message);
        }
    }

    fn needs(text: &str) -> Requirements {
        requirements(&metric(text))
    }

    fn set(codes: &[&str]) -> BTreeSet<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn requirements_name_what_is_read() {
        assert_eq!(
            needs("revenue"),
            Requirements {
                indicators: set(&["revenue"]),
                years_back: 0,
                parent: false,
                zones: false,
                reference: false,
                projects: false
            }
        );
        assert_eq!(
            needs("yoy(per_mu(tax))"),
            Requirements {
                indicators: set(&["land_area", "tax"]),
                years_back: 1,
                parent: false,
                zones: false,
                reference: false,
                projects: false
            }
        );
        assert_eq!(
            needs("share(tax)"),
            Requirements {
                indicators: set(&["tax"]),
                years_back: 0,
                parent: true,
                zones: false,
                reference: false,
                projects: false
            }
        );
        assert_eq!(
            needs("share(zones_total(revenue))"),
            Requirements {
                indicators: set(&["revenue"]),
                years_back: 0,
                parent: false,
                zones: true,
                reference: false,
                projects: false
            }
        );
        assert_eq!(
            needs("contribution(revenue)"),
            Requirements {
                indicators: set(&["revenue"]),
                years_back: 1,
                parent: true,
                zones: false,
                reference: false,
                projects: false
            }
        );
        assert_eq!(needs("cagr(yoy(revenue), 5)").years_back, 6);
        assert_eq!(needs("cagr(revenue, 5)").years_back, 5);
        assert_eq!(
            needs("energy_intensity_change"),
            Requirements {
                indicators: set(&["energy_consumption", "value_added"]),
                years_back: 1,
                parent: false,
                zones: false,
                reference: false,
                projects: false
            }
        );
        assert_eq!(
            needs("investment_intensity").indicators,
            set(&["fixed_asset_investment", "land_area"])
        );
        assert!(needs("yoy(zones_total(fixed_asset_investment))").zones);
    }

    /// A zone and a second zone in one county of a city, employment 2014; REAT's figures.
    fn reat() -> Figures {
        const OTHER: EntityIdx = 2;
        const CITY: EntityIdx = 3;
        let mut data = Figures::default();
        data.parents.insert(ZONE, COUNTY);
        data.parents.insert(OTHER, COUNTY);
        data.parents.insert(COUNTY, CITY);
        data.zones.insert(CITY, vec![ZONE, OTHER]);
        data.set(ZONE, "employees", "2014", 1714.0);
        data.set(COUNTY, "employees", "2014", 79006.0);
        data.set(OTHER, "employees", "2014", 879_213.0 - 1714.0);
        data.set(CITY, "employees", "2014", 15_593_224.0);
        data
    }

    #[test]
    fn lq_of_a_zone_matches_reat() {
        let mut data = reat();
        // (1714 ÷ 79006) ÷ (879213 ÷ 15593224) = 0.3847623 (REAT::locq)
        let lq = eval(&data, "lq(employees)", ZONE, "2014").unwrap();
        assert!((lq - 0.384_762_3).abs() < 5e-8, "{lq}");
        assert_eq!(
            eval(&data, "lq(employees)", ZONE, "2013"),
            Err(Missing::NoData {
                indicator: "employees".to_owned(),
                period: p("2013")
            })
        );
        // The county is the top of this tree for its own lq.
        assert_eq!(
            eval(&data, "lq(employees)", COUNTY, "2014"),
            Err(Missing::NoReferenceRegion)
        );
        data.parents.remove(&COUNTY);
        assert_eq!(
            eval(&data, "lq(employees)", ZONE, "2014"),
            Err(Missing::NoReferenceRegion)
        );
        let needs = requirements(&metric("lq(employees)"));
        assert!(needs.parent && needs.zones && needs.reference);
        assert!(parse_metric("lq(yoy(tax))", &builtin_indicator).is_err());
    }

    #[test]
    fn shift_share_by_hand() {
        let mut data = Figures::default();
        data.parents.insert(ZONE, COUNTY);
        data.set(ZONE, "tax", "2013", 40.0);
        data.set(ZONE, "tax", "2014", 60.0);
        data.set(COUNTY, "tax", "2013", 200.0);
        data.set(COUNTY, "tax", "2014", 250.0);
        // Actual 60 − 40 = 20; expected 40 × 25% = 10; its own 10.
        close(eval(&data, "shift_share(tax)", ZONE, "2014"), 10.0);
        data.set(ZONE, "tax", "2014", 45.0);
        close(eval(&data, "shift_share(tax)", ZONE, "2014"), -5.0);
        assert_eq!(
            eval(&data, "shift_share(tax)", ZONE, "2015"),
            Err(Missing::NoData {
                indicator: "tax".to_owned(),
                period: p("2015")
            })
        );
        data.set(COUNTY, "tax", "2013", 0.0);
        assert_eq!(
            eval(&data, "shift_share(tax)", ZONE, "2014"),
            Err(Missing::NonPositiveBase { period: p("2013") })
        );
        let needs = requirements(&metric("shift_share(tax)"));
        assert!(needs.parent && needs.years_back == 1 && !needs.reference);
    }
}
