//! The indicator catalog: what can be measured, in which unit, and which way is better.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::unit::{Dimension, Unit, UnitError};

/// Longest indicator code, so codes fit comfortably in metric expressions and column names.
pub const MAX_CODE_LEN: usize = 64;

/// Why an indicator, or one of its attributes, was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The indicator code breaks the `[a-z][a-z0-9_]{0,63}` rule.
    #[error(
        "indicator code '{code}' is invalid: {problem}; a code starts with a lower-case letter \
         and has at most {MAX_CODE_LEN} lower-case letters, digits and underscores"
    )]
    InvalidCode {
        /// The code given.
        code: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Neither a Chinese nor an English name was given.
    #[error("indicator '{code}' needs a name in Chinese or English")]
    MissingName {
        /// The indicator code.
        code: String,
    },
    /// The unit is not its dimension's canonical unit.
    #[error(
        "indicator '{code}' must be stored in {canonical}, the canonical unit of {}, not in {unit}",
        .dimension.name()
    )]
    NonCanonicalUnit {
        /// The indicator code.
        code: String,
        /// The unit given.
        unit: &'static str,
        /// The unit it should be.
        canonical: &'static str,
        /// What both measure.
        dimension: Dimension,
    },
    /// A rate indicator whose unit is not a percentage.
    #[error("indicator '{code}' is a RATE, so it must be measured in %, not in {unit}")]
    RateNotPercent {
        /// The indicator code.
        code: String,
        /// The unit given.
        unit: &'static str,
    },
    /// A percentage indicator that is not a rate.
    #[error(
        "indicator '{code}' is measured in %, so its kind must be RATE, not {kind}; percentages cannot be summed"
    )]
    PercentNotRate {
        /// The indicator code.
        code: String,
        /// The kind given.
        kind: IndicatorKind,
    },
    /// The unit could not be read.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// The indicator kind is not FLOW, STOCK or RATE.
    #[error("unknown indicator kind '{input}'; expected FLOW, STOCK or RATE")]
    UnknownKind {
        /// The text given.
        input: String,
    },
    /// The direction is not higher or lower is better.
    #[error("unknown direction '{input}'; expected HIGHER_IS_BETTER or LOWER_IS_BETTER")]
    UnknownDirection {
        /// The text given.
        input: String,
    },
}

/// How an indicator's values combine over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorKind {
    /// Accumulates over the period (output, investment): months add up.
    Flow,
    /// A level read at the end of the period (employees, land area).
    Stock,
    /// A percentage bounded by 0 and 100.
    Rate,
}

impl IndicatorKind {
    /// Every kind.
    pub const ALL: [IndicatorKind; 3] = [
        IndicatorKind::Flow,
        IndicatorKind::Stock,
        IndicatorKind::Rate,
    ];

    /// The upper-case API name, e.g. "FLOW".
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Flow => "FLOW",
            IndicatorKind::Stock => "STOCK",
            IndicatorKind::Rate => "RATE",
        }
    }

    /// Reads `FLOW`, `flow` or the protobuf name `INDICATOR_KIND_FLOW`.
    pub fn parse(s: &str) -> Result<IndicatorKind, CatalogError> {
        let name = enum_name(s, "INDICATOR_KIND_");
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| CatalogError::UnknownKind {
                input: s.trim().to_owned(),
            })
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndicatorKind {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IndicatorKind::parse(s)
    }
}

/// Which way an indicator improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// More is better (output, tax).
    HigherIsBetter,
    /// Less is better (energy consumption).
    LowerIsBetter,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::HigherIsBetter, Direction::LowerIsBetter];

    /// The upper-case API name, e.g. "HIGHER_IS_BETTER".
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "HIGHER_IS_BETTER",
            Direction::LowerIsBetter => "LOWER_IS_BETTER",
        }
    }

    /// Reads `HIGHER_IS_BETTER`, `higher-is-better`, `higher`, or `DIRECTION_HIGHER_IS_BETTER`.
    pub fn parse(s: &str) -> Result<Direction, CatalogError> {
        let name = enum_name(s, "DIRECTION_");
        match name.as_str() {
            "HIGHER" => Some(Direction::HigherIsBetter),
            "LOWER" => Some(Direction::LowerIsBetter),
            _ => Self::ALL
                .into_iter()
                .find(|direction| direction.as_str() == name),
        }
        .ok_or_else(|| CatalogError::UnknownDirection {
            input: s.trim().to_owned(),
        })
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Direction::parse(s)
    }
}

/// Upper-cases an enum spelling, unifies `-` and spaces to `_`, and drops its protobuf prefix.
fn enum_name(s: &str, prefix: &str) -> String {
    let upper: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    match upper.strip_prefix(prefix) {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// An entry of the indicator catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    /// Stable identifier used in metric expressions, e.g. `fixed_asset_investment`.
    pub code: String,
    /// Chinese name, e.g. 固定资产投资.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// The canonical unit values are stored in.
    pub unit: &'static Unit,
    /// How values combine over time.
    pub kind: IndicatorKind,
    /// Which way is better.
    pub direction: Direction,
}

impl Indicator {
    /// Builds an indicator, checking its code, names, and that `unit` is canonical and fits `kind`.
    pub fn new(
        code: &str,
        name_zh: &str,
        name_en: &str,
        unit: &'static Unit,
        kind: IndicatorKind,
        direction: Direction,
    ) -> Result<Indicator, CatalogError> {
        let code = code.trim();
        validate_indicator_code(code)?;
        let (name_zh, name_en) = (name_zh.trim(), name_en.trim());
        if name_zh.is_empty() && name_en.is_empty() {
            return Err(CatalogError::MissingName {
                code: code.to_owned(),
            });
        }
        let canonical = unit.dimension.canonical_unit();
        if !unit.is_canonical() {
            return Err(CatalogError::NonCanonicalUnit {
                code: code.to_owned(),
                unit: unit.symbol,
                canonical: canonical.symbol,
                dimension: unit.dimension,
            });
        }
        match (kind, unit.dimension) {
            (IndicatorKind::Rate, Dimension::Percent) => {}
            (IndicatorKind::Rate, _) => {
                return Err(CatalogError::RateNotPercent {
                    code: code.to_owned(),
                    unit: unit.symbol,
                });
            }
            (kind, Dimension::Percent) => {
                return Err(CatalogError::PercentNotRate {
                    code: code.to_owned(),
                    kind,
                });
            }
            _ => {}
        }
        Ok(Indicator {
            code: code.to_owned(),
            name_zh: name_zh.to_owned(),
            name_en: name_en.to_owned(),
            unit,
            kind,
            direction,
        })
    }

    /// Builds a user-defined indicator from any unit spelling, storing it in that unit's
    /// canonical unit (an indicator defined in 亿元 is kept in 万元).
    pub fn define(
        code: &str,
        name_zh: &str,
        name_en: &str,
        unit: &str,
        kind: IndicatorKind,
        direction: Direction,
    ) -> Result<Indicator, CatalogError> {
        let unit = Unit::parse(unit)?.dimension.canonical_unit();
        Indicator::new(code, name_zh, name_en, unit, kind, direction)
    }

    /// What the indicator measures.
    pub fn dimension(&self) -> Dimension {
        self.unit.dimension
    }

    /// Whether a value below 0 is impossible by the indicator's definition (an area, a head
    /// count, an amount spent); user-defined indicators make no such promise.
    pub fn non_negative(&self) -> bool {
        NON_NEGATIVE_INDICATORS.contains(&self.code.as_str())
    }
}

/// The indicator catalog by code, each entry with whether it is built in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog(BTreeMap<String, (Indicator, bool)>);

impl Catalog {
    /// The catalog of these entries (a later entry of a code replaces an earlier one).
    pub fn new(entries: impl IntoIterator<Item = (Indicator, bool)>) -> Catalog {
        Catalog(
            entries
                .into_iter()
                .map(|(i, builtin)| (i.code.clone(), (i, builtin)))
                .collect(),
        )
    }

    /// The indicator with this code.
    pub fn get(&self, code: &str) -> Option<&Indicator> {
        self.0.get(code).map(|(i, _)| i)
    }

    /// Every entry with its built-in flag, in the byte order of the codes.
    pub fn entries(&self) -> impl Iterator<Item = (&Indicator, bool)> {
        self.0.values().map(|(i, builtin)| (i, *builtin))
    }

    /// How many indicators the catalog holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The built-in indicators that cannot be negative by definition. Left out on purpose: profit,
/// value added and tax (losses, negative value added and refunds happen), paid-in foreign
/// investment (disinvestment nets it below 0) and built-up area added (a net change); rates
/// have their own 0–100% range.
pub const NON_NEGATIVE_INDICATORS: [&str; 18] = [
    "output_value",
    "revenue",
    "fixed_asset_investment",
    "infrastructure_investment",
    "employees",
    "new_employees",
    "energy_consumption",
    "land_area",
    "built_area",
    "rd_expenditure",
    "leading_industry_output",
    "domestic_capital",
    "projects_signed",
    "projects_negotiating",
    "projects_started_over_100m",
    "projects_under_construction",
    "planned_area",
    "major_safety_accidents",
];

/// Checks an indicator code against `[a-z][a-z0-9_]{0,63}`.
pub fn validate_indicator_code(code: &str) -> Result<(), CatalogError> {
    let invalid = |problem: String| CatalogError::InvalidCode {
        code: code.to_owned(),
        problem,
    };
    let mut chars = code.chars();
    match chars.next() {
        None => return Err(invalid("it is empty".to_owned())),
        Some(first) if !first.is_ascii_lowercase() => {
            return Err(invalid(format!(
                "it starts with '{first}' instead of a lower-case letter"
            )));
        }
        Some(_) => {}
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if let Some((index, found)) = code.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        return Err(invalid(format!(
            "'{found}' at position {} is not allowed",
            index + 1
        )));
    }
    let length = code.chars().count();
    if length > MAX_CODE_LEN {
        return Err(invalid(format!("it has {length} characters")));
    }
    Ok(())
}

/// The indicators every installation starts with, as the seed reports use them.
pub fn builtin_indicators() -> Vec<Indicator> {
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};
    use IndicatorKind::{Flow, Rate, Stock};
    let cny = Dimension::Cny;
    // One line per indicator reads as the catalog table it is.
    #[rustfmt::skip]
    let table: [(&str, &str, &str, Dimension, IndicatorKind, Direction); 28] = [
        ("output_value", "总产值", "Gross output value", cny, Flow, Higher),
        ("value_added", "工业增加值", "Industrial value added", cny, Flow, Higher),
        ("revenue", "主营业务收入", "Main business revenue", cny, Flow, Higher),
        ("fixed_asset_investment", "固定资产投资", "Fixed-asset investment", cny, Flow, Higher),
        ("infrastructure_investment", "基础设施投资", "Infrastructure investment", cny, Flow, Higher),
        ("tax", "税收收入", "Tax revenue", cny, Flow, Higher),
        ("profit", "利润总额", "Total profit", cny, Flow, Higher),
        ("employees", "从业人员", "Employees", Dimension::People, Stock, Higher),
        ("new_employees", "新增就业人数", "New jobs", Dimension::People, Flow, Higher),
        ("energy_consumption", "综合能耗", "Total energy consumption", Dimension::Energy, Flow, Lower),
        ("land_area", "工业用地面积", "Industrial land area", Dimension::Area, Stock, Higher),
        ("built_area", "建成区面积", "Built-up area", Dimension::Area, Stock, Higher),
        ("rd_expenditure", "研发经费支出", "R&D expenditure", cny, Flow, Higher),
        ("leading_industry_output", "主导产业产值", "Leading-industry output value", cny, Flow, Higher),
        ("fdi_actual", "实际利用外资", "Foreign direct investment, paid in", Dimension::Usd, Flow, Higher),
        ("domestic_capital", "引进内资", "Domestic capital attracted", cny, Flow, Higher),
        ("sewage_treatment_rate", "污水处理率", "Sewage treatment rate", Dimension::Percent, Rate, Higher),
        ("solid_waste_utilization_rate", "固体废物综合利用率", "Solid-waste utilization rate", Dimension::Percent, Rate, Higher),
        ("emission_compliance_rate", "污染物排放达标率", "Emission compliance rate", Dimension::Percent, Rate, Higher),
        ("intelligent_transformation_rate", "智能化改造覆盖率", "Intelligent-manufacturing transformation rate", Dimension::Percent, Rate, Higher),
        ("leading_industry_tax", "主导产业税收", "Leading-industry tax revenue", cny, Flow, Higher),
        ("projects_signed", "签约项目数", "Projects signed", Dimension::Count, Stock, Higher),
        ("projects_negotiating", "在谈项目数", "Projects under negotiation", Dimension::Count, Stock, Higher),
        ("projects_started_over_100m", "开工亿元以上项目数", "Projects over 100 million yuan started", Dimension::Count, Stock, Higher),
        ("projects_under_construction", "在建项目数", "Projects under construction", Dimension::Count, Stock, Higher),
        ("built_area_added", "新增建成区面积", "Built-up area added", Dimension::Area, Flow, Higher),
        ("planned_area", "规划面积", "Planned area", Dimension::Area, Stock, Higher),
        ("major_safety_accidents", "重大安全事故", "Major safety accidents", Dimension::Count, Flow, Lower),
    ];
    table
        .into_iter()
        .map(
            |(code, name_zh, name_en, dimension, kind, direction)| Indicator {
                code: code.to_owned(),
                name_zh: name_zh.to_owned(),
                name_en: name_en.to_owned(),
                unit: dimension.canonical_unit(),
                kind,
                direction,
            },
        )
        .collect()
}

/// The built-in indicator with this code, if any.
pub fn builtin_indicator(code: &str) -> Option<Indicator> {
    builtin_indicators()
        .into_iter()
        .find(|indicator| indicator.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(code: &str) -> Indicator {
        builtin_indicator(code).unwrap_or_else(|| panic!("{code} is not built in"))
    }

    #[test]
    fn kind_and_direction_names_round_trip() {
        for kind in IndicatorKind::ALL {
            assert_eq!(IndicatorKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        for direction in Direction::ALL {
            assert_eq!(Direction::parse(direction.as_str()), Ok(direction));
            assert_eq!(direction.to_string(), direction.as_str());
        }
    }

    #[test]
    fn kind_accepts_common_spellings() {
        assert_eq!(IndicatorKind::parse("flow"), Ok(IndicatorKind::Flow));
        assert_eq!(IndicatorKind::parse(" Stock "), Ok(IndicatorKind::Stock));
        assert_eq!(
            IndicatorKind::parse("INDICATOR_KIND_RATE"),
            Ok(IndicatorKind::Rate)
        );
        assert_eq!("rate".parse::<IndicatorKind>(), Ok(IndicatorKind::Rate));
        assert_eq!(
            IndicatorKind::parse("level").unwrap_err().to_string(),
            "unknown indicator kind 'level'; expected FLOW, STOCK or RATE"
        );
        assert!(IndicatorKind::parse("").is_err());
        assert!(IndicatorKind::parse("INDICATOR_KIND_UNSPECIFIED").is_err());
    }

    #[test]
    fn direction_accepts_common_spellings() {
        for spelling in [
            "HIGHER_IS_BETTER",
            "higher_is_better",
            "higher-is-better",
            "higher is better",
            "DIRECTION_HIGHER_IS_BETTER",
            "higher",
        ] {
            assert_eq!(
                Direction::parse(spelling),
                Ok(Direction::HigherIsBetter),
                "{spelling}"
            );
        }
        assert_eq!(
            Direction::parse("direction_lower_is_better"),
            Ok(Direction::LowerIsBetter)
        );
        assert_eq!("LOWER".parse::<Direction>(), Ok(Direction::LowerIsBetter));
        assert_eq!(
            Direction::parse("up").unwrap_err().to_string(),
            "unknown direction 'up'; expected HIGHER_IS_BETTER or LOWER_IS_BETTER"
        );
        assert!(Direction::parse("DIRECTION_UNSPECIFIED").is_err());
    }

    #[test]
    fn accepts_valid_codes() {
        for code in [
            "a",
            "tax",
            "per_mu_tax",
            "output_value_2",
            "x1_",
            &"a".repeat(64),
        ] {
            assert_eq!(validate_indicator_code(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn rejects_invalid_codes_saying_why() {
        let cases = [
            ("", "it is empty"),
            ("1tax", "it starts with '1' instead of a lower-case letter"),
            ("_tax", "it starts with '_' instead of a lower-case letter"),
            ("Tax", "it starts with 'T' instead of a lower-case letter"),
            ("output-value", "'-' at position 7 is not allowed"),
            ("outputValue", "'V' at position 7 is not allowed"),
            ("tax rate", "' ' at position 4 is not allowed"),
            ("税收", "it starts with '税' instead of a lower-case letter"),
        ];
        for (code, problem) in cases {
            assert_eq!(
                validate_indicator_code(code),
                Err(CatalogError::InvalidCode {
                    code: code.to_owned(),
                    problem: problem.to_owned()
                }),
                "{code}"
            );
        }
        let long = "a".repeat(65);
        assert!(
            validate_indicator_code(&long)
                .unwrap_err()
                .to_string()
                .contains("it has 65 characters")
        );
        assert_eq!(
            validate_indicator_code("Tax").unwrap_err().to_string(),
            "indicator code 'Tax' is invalid: it starts with 'T' instead of a lower-case letter; \
             a code starts with a lower-case letter and has at most 64 lower-case letters, digits \
             and underscores"
        );
    }

    #[test]
    fn builtins_are_valid_and_unique() {
        let indicators = builtin_indicators();
        let mut codes = std::collections::HashSet::new();
        for indicator in &indicators {
            assert!(
                codes.insert(indicator.code.clone()),
                "{} twice",
                indicator.code
            );
            let rebuilt = Indicator::new(
                &indicator.code,
                &indicator.name_zh,
                &indicator.name_en,
                indicator.unit,
                indicator.kind,
                indicator.direction,
            );
            assert_eq!(rebuilt.as_ref(), Ok(indicator));
            assert!(!indicator.name_zh.is_empty() && !indicator.name_en.is_empty());
        }
    }

    #[test]
    fn builtins_cover_the_design_and_the_seed_fixture() {
        let expected = [
            ("output_value", "万元", IndicatorKind::Flow),
            ("value_added", "万元", IndicatorKind::Flow),
            ("revenue", "万元", IndicatorKind::Flow),
            ("fixed_asset_investment", "万元", IndicatorKind::Flow),
            ("infrastructure_investment", "万元", IndicatorKind::Flow),
            ("tax", "万元", IndicatorKind::Flow),
            ("profit", "万元", IndicatorKind::Flow),
            ("employees", "人", IndicatorKind::Stock),
            ("new_employees", "人", IndicatorKind::Flow),
            ("energy_consumption", "吨标准煤", IndicatorKind::Flow),
            ("land_area", "亩", IndicatorKind::Stock),
            ("built_area", "亩", IndicatorKind::Stock),
            ("rd_expenditure", "万元", IndicatorKind::Flow),
            ("leading_industry_output", "万元", IndicatorKind::Flow),
            ("fdi_actual", "万美元", IndicatorKind::Flow),
            ("domestic_capital", "万元", IndicatorKind::Flow),
            ("sewage_treatment_rate", "%", IndicatorKind::Rate),
            ("solid_waste_utilization_rate", "%", IndicatorKind::Rate),
            ("emission_compliance_rate", "%", IndicatorKind::Rate),
            ("intelligent_transformation_rate", "%", IndicatorKind::Rate),
            ("leading_industry_tax", "万元", IndicatorKind::Flow),
            ("projects_signed", "个", IndicatorKind::Stock),
            ("projects_negotiating", "个", IndicatorKind::Stock),
            ("projects_started_over_100m", "个", IndicatorKind::Stock),
            ("projects_under_construction", "个", IndicatorKind::Stock),
            ("built_area_added", "亩", IndicatorKind::Flow),
            ("planned_area", "亩", IndicatorKind::Stock),
            ("major_safety_accidents", "个", IndicatorKind::Flow),
        ];
        for (code, unit, kind) in expected {
            let indicator = builtin(code);
            assert_eq!(
                (indicator.unit.symbol, indicator.kind),
                (unit, kind),
                "{code}"
            );
        }
        assert_eq!(builtin_indicators().len(), expected.len());
        assert_eq!(
            builtin("energy_consumption").direction,
            Direction::LowerIsBetter
        );
        assert_eq!(builtin("tax").direction, Direction::HigherIsBetter);
        assert_eq!(builtin("output_value").name_zh, "总产值");
        assert_eq!(builtin("land_area").dimension(), Dimension::Area);
        assert!(builtin_indicator("star_level").is_none());
    }

    #[test]
    fn new_requires_the_canonical_unit() {
        let yi = Unit::parse("亿元").unwrap();
        let err = Indicator::new(
            "zone_gdp",
            "园区生产总值",
            "Zone GDP",
            yi,
            IndicatorKind::Flow,
            Direction::HigherIsBetter,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "indicator 'zone_gdp' must be stored in 万元, the canonical unit of money in CNY, not in 亿元"
        );
    }

    #[test]
    fn new_ties_rates_to_percent() {
        let percent = Dimension::Percent.canonical_unit();
        let wan = Dimension::Cny.canonical_unit();
        assert_eq!(
            Indicator::new(
                "x_rate",
                "",
                "X rate",
                wan,
                IndicatorKind::Rate,
                Direction::HigherIsBetter
            ),
            Err(CatalogError::RateNotPercent {
                code: "x_rate".to_owned(),
                unit: "万元"
            })
        );
        let err = Indicator::new(
            "x_share",
            "",
            "X share",
            percent,
            IndicatorKind::Stock,
            Direction::HigherIsBetter,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "indicator 'x_share' is measured in %, so its kind must be RATE, not STOCK; percentages cannot be summed"
        );
    }

    #[test]
    fn new_requires_a_name_and_a_valid_code() {
        let wan = Dimension::Cny.canonical_unit();
        assert_eq!(
            Indicator::new(
                "x",
                " ",
                "",
                wan,
                IndicatorKind::Flow,
                Direction::HigherIsBetter
            ),
            Err(CatalogError::MissingName {
                code: "x".to_owned()
            })
        );
        assert!(matches!(
            Indicator::new(
                "X",
                "某",
                "",
                wan,
                IndicatorKind::Flow,
                Direction::HigherIsBetter
            ),
            Err(CatalogError::InvalidCode { .. })
        ));
        let trimmed = Indicator::new(
            " x ",
            " 某 ",
            "",
            wan,
            IndicatorKind::Flow,
            Direction::HigherIsBetter,
        )
        .unwrap();
        assert_eq!(
            (trimmed.code.as_str(), trimmed.name_zh.as_str()),
            ("x", "某")
        );
    }

    #[test]
    fn define_maps_any_unit_to_its_canonical_unit() {
        let cases = [
            ("亿元", "万元"),
            ("CNY", "万元"),
            ("亿美元", "万美元"),
            ("平方公里", "亩"),
            ("ha", "亩"),
            ("万人", "人"),
            ("10k_tce", "吨标准煤"),
            ("家", "个"),
            ("元/亩", "万元/亩"),
        ];
        for (unit, canonical) in cases {
            let kind = IndicatorKind::Flow;
            let indicator = Indicator::define(
                "custom",
                "自定义",
                "Custom",
                unit,
                kind,
                Direction::HigherIsBetter,
            )
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
            assert_eq!(indicator.unit.symbol, canonical, "{unit}");
            assert!(indicator.unit.is_canonical());
        }
        let rate = Indicator::define(
            "green_rate",
            "绿化率",
            "",
            "pct",
            IndicatorKind::Rate,
            Direction::HigherIsBetter,
        )
        .unwrap();
        assert_eq!(rate.unit.symbol, "%");
    }

    #[test]
    fn define_reports_unknown_units() {
        let err = Indicator::define(
            "c",
            "某",
            "",
            "斤",
            IndicatorKind::Flow,
            Direction::HigherIsBetter,
        )
        .unwrap_err();
        assert!(matches!(err, CatalogError::Unit(UnitError::Unknown { .. })));
        assert!(err.to_string().starts_with("unknown unit '斤'; accepted: "));
        assert!(matches!(
            Indicator::define(
                "c",
                "某",
                "",
                "",
                IndicatorKind::Flow,
                Direction::HigherIsBetter
            ),
            Err(CatalogError::Unit(UnitError::Empty))
        ));
    }
}
