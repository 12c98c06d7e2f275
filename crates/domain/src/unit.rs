//! Units of measure and their dimensions.
//!
//! Every figure is stored in its dimension's canonical unit (万元, 亩, …) so that values
//! reported as 亿元 by one source and 元 by another can be summed and ranked together.
//! Currencies are separate dimensions because the system does no exchange-rate conversion.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;

/// What a unit measures; values convert only within one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Money in Chinese yuan.
    Cny,
    /// Money in US dollars.
    Usd,
    /// Land area.
    Area,
    /// Headcount.
    People,
    /// Energy, in standard-coal equivalent.
    Energy,
    /// A percentage, 66 meaning 66%.
    Percent,
    /// A number of things (projects, firms, …).
    Count,
    /// Money in yuan per mu of land (亩均).
    CnyPerMu,
}

impl Dimension {
    /// Every dimension, for listings.
    pub const ALL: [Dimension; 8] = [
        Dimension::Cny,
        Dimension::Usd,
        Dimension::Area,
        Dimension::People,
        Dimension::Energy,
        Dimension::Percent,
        Dimension::Count,
        Dimension::CnyPerMu,
    ];

    /// A lower-case English description for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Cny => "money in CNY",
            Dimension::Usd => "money in USD",
            Dimension::Area => "area",
            Dimension::People => "people",
            Dimension::Energy => "energy",
            Dimension::Percent => "percentage",
            Dimension::Count => "count",
            Dimension::CnyPerMu => "money in CNY per mu",
        }
    }

    /// The unit every value of this dimension is stored in.
    pub fn canonical_unit(self) -> &'static Unit {
        match self {
            Dimension::Cny => &WAN_YUAN,
            Dimension::Usd => &WAN_USD,
            Dimension::Area => &MU,
            Dimension::People => &PERSON,
            Dimension::Energy => &TCE,
            Dimension::Percent => &PERCENT,
            Dimension::Count => &GE,
            Dimension::CnyPerMu => &WAN_YUAN_PER_MU,
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A unit of measure: its symbol, dimension and factor to the dimension's canonical unit.
#[derive(Debug, PartialEq)]
pub struct Unit {
    /// The Chinese symbol shown to users, e.g. 亿元.
    pub symbol: &'static str,
    /// What the unit measures.
    pub dimension: Dimension,
    /// Multiply a value in this unit by `factor` to get the canonical unit; a decimal, so that
    /// conversions are the decimal arithmetic users expect.
    pub factor: Decimal,
}

/// Why a unit was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// No unit was given.
    #[error("the unit is missing; accepted: {}", accepted_units())]
    Empty,
    /// The spelling matches no known unit.
    #[error("unknown unit '{unit}'; accepted: {}", accepted_units())]
    Unknown {
        /// The spelling given, trimmed.
        unit: String,
    },
    /// The unit is known but measures something else than the indicator.
    #[error(
        "unit {unit} measures {}, but this indicator is measured in {} ({}){}",
        .found.name(),
        .expected.canonical_unit().symbol,
        .expected.name(),
        currency_hint(*.found, *.expected)
    )]
    WrongDimension {
        /// The unit's symbol.
        unit: &'static str,
        /// What the unit measures.
        found: Dimension,
        /// What the indicator needs.
        expected: Dimension,
    },
}

fn currency_hint(found: Dimension, expected: Dimension) -> &'static str {
    match (found, expected) {
        (Dimension::Cny, Dimension::Usd) | (Dimension::Usd, Dimension::Cny) => {
            "; currencies are not converted"
        }
        _ => "",
    }
}

static YUAN: Unit = unit("元", Dimension::Cny, 1, 4);
static WAN_YUAN: Unit = unit("万元", Dimension::Cny, 1, 0);
static YI_YUAN: Unit = unit("亿元", Dimension::Cny, 10_000, 0);
static USD: Unit = unit("美元", Dimension::Usd, 1, 4);
static WAN_USD: Unit = unit("万美元", Dimension::Usd, 1, 0);
static YI_USD: Unit = unit("亿美元", Dimension::Usd, 10_000, 0);
static MU: Unit = unit("亩", Dimension::Area, 1, 0);
static WAN_MU: Unit = unit("万亩", Dimension::Area, 10_000, 0);
static HECTARE: Unit = unit("公顷", Dimension::Area, 15, 0);
static SQUARE_KM: Unit = unit("平方公里", Dimension::Area, 1_500, 0);
static PERSON: Unit = unit("人", Dimension::People, 1, 0);
static WAN_PERSON: Unit = unit("万人", Dimension::People, 10_000, 0);
static TCE: Unit = unit("吨标准煤", Dimension::Energy, 1, 0);
static WAN_TCE: Unit = unit("万吨标准煤", Dimension::Energy, 10_000, 0);
static PERCENT: Unit = unit("%", Dimension::Percent, 1, 0);
static GE: Unit = unit("个", Dimension::Count, 1, 0);
static WAN_YUAN_PER_MU: Unit = unit("万元/亩", Dimension::CnyPerMu, 1, 0);
static YUAN_PER_MU: Unit = unit("元/亩", Dimension::CnyPerMu, 1, 4);

/// A unit whose factor is `digits` × 10^-`scale`.
const fn unit(symbol: &'static str, dimension: Dimension, digits: u32, scale: u32) -> Unit {
    Unit {
        symbol,
        dimension,
        factor: Decimal::from_parts(digits, 0, 0, false, scale),
    }
}

/// Each unit with the other spellings users write for it; ASCII ones match in any case.
static SPELLINGS: &[(&Unit, &[&str])] = &[
    (&YUAN, &["CNY", "人民币元"]),
    (&WAN_YUAN, &["CNY_10K", "万元人民币"]),
    (&YI_YUAN, &["CNY_100M", "亿元人民币"]),
    (&USD, &["USD"]),
    (&WAN_USD, &["USD_10K"]),
    (&YI_USD, &["USD_100M"]),
    (&MU, &["mu"]),
    (&WAN_MU, &["10k_mu"]),
    (&HECTARE, &["ha", "hectare", "hectares"]),
    (&SQUARE_KM, &["km2", "km²", "sq_km", "平方千米"]),
    (&PERSON, &["person", "persons", "people"]),
    (&WAN_PERSON, &["10k_persons", "10k_people"]),
    (&TCE, &["tce", "吨标煤"]),
    (&WAN_TCE, &["10k_tce", "万吨标煤"]),
    (&PERCENT, &["pct", "percent", "百分比", "％"]),
    (&GE, &["家", "项", "count", "items", "item"]),
    (
        &WAN_YUAN_PER_MU,
        &["万元／亩", "CNY_10K/mu", "CNY_10K_per_mu"],
    ),
    (&YUAN_PER_MU, &["元／亩", "CNY/mu", "CNY_per_mu"]),
];

/// The accepted spellings, grouped by unit, for "unknown unit" messages.
pub fn accepted_units() -> String {
    SPELLINGS
        .iter()
        .map(|(unit, aliases)| format!("{} ({})", unit.symbol, aliases.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Unit {
    /// Looks up a unit by symbol or alias, ignoring surrounding whitespace and ASCII case.
    pub fn parse(s: &str) -> Result<&'static Unit, UnitError> {
        let wanted = s.trim();
        if wanted.is_empty() {
            return Err(UnitError::Empty);
        }
        SPELLINGS
            .iter()
            .find(|(unit, aliases)| {
                std::iter::once(&unit.symbol)
                    .chain(aliases.iter())
                    .any(|spelling| spelling.eq_ignore_ascii_case(wanted))
            })
            .map(|(unit, _)| *unit)
            .ok_or_else(|| UnitError::Unknown {
                unit: wanted.to_owned(),
            })
    }

    /// Every known unit.
    pub fn all() -> impl Iterator<Item = &'static Unit> {
        SPELLINGS.iter().map(|(unit, _)| *unit)
    }

    /// Whether this is the unit its dimension is stored in.
    pub fn is_canonical(&self) -> bool {
        std::ptr::eq(self, self.dimension.canonical_unit())
    }

    /// Converts a value in this unit to the dimension's canonical unit.
    pub fn to_canonical(&self, value: f64) -> f64 {
        scale(value, self.factor, false)
    }

    /// Converts a value in the dimension's canonical unit to this unit.
    pub fn from_canonical(&self, value: f64) -> f64 {
        scale(value, self.factor, true)
    }
}

/// Multiplies (or divides) by a unit factor as decimal arithmetic would: users type decimals,
/// and 8.2 平方公里 must be 12300 亩, not the 12299.999999999998 that `8.2 * 1500.0` gives.
///
/// The value's shortest decimal spelling (what the user typed, for any figure with at most 17
/// significant digits) is split into its mantissa and power of ten; the mantissa, below 10 in
/// magnitude, is scaled in decimal — exactly when multiplying, to 28 digits when dividing — and
/// the result, with the power of ten put back, parses to the nearest binary number. Splitting
/// the power of ten off keeps every magnitude within the decimal type's 28 digits.
fn scale(value: f64, factor: Decimal, inverse: bool) -> f64 {
    let binary = || {
        let factor = f64::from_str(&factor.to_string()).unwrap_or(f64::NAN);
        if inverse {
            value / factor
        } else {
            value * factor
        }
    };
    if factor == Decimal::ONE {
        return value;
    }
    if !value.is_finite() || value == 0.0 {
        return binary();
    }
    let text = format!("{value:e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return binary();
    };
    let scaled = Decimal::from_str(mantissa).ok().and_then(|m| {
        if inverse {
            m.checked_div(factor)
        } else {
            m.checked_mul(factor)
        }
    });
    match scaled {
        Some(scaled) => format!("{scaled}e{exponent}")
            .parse()
            .unwrap_or_else(|_| binary()),
        None => binary(),
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol)
    }
}

/// Converts `value` given in `unit` to the canonical unit of `expected`, rejecting units
/// of another dimension; a blank unit means the value is already canonical.
pub fn convert_to(value: f64, unit: &str, expected: Dimension) -> Result<f64, UnitError> {
    let unit = if unit.trim().is_empty() {
        expected.canonical_unit()
    } else {
        Unit::parse(unit)?
    };
    if unit.dimension != expected {
        return Err(UnitError::WrongDimension {
            unit: unit.symbol,
            found: unit.dimension,
            expected,
        });
    }
    Ok(unit.to_canonical(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn every_dimension_has_a_canonical_unit_with_factor_one() {
        let expected = [
            (Dimension::Cny, "万元"),
            (Dimension::Usd, "万美元"),
            (Dimension::Area, "亩"),
            (Dimension::People, "人"),
            (Dimension::Energy, "吨标准煤"),
            (Dimension::Percent, "%"),
            (Dimension::Count, "个"),
            (Dimension::CnyPerMu, "万元/亩"),
        ];
        for (dimension, symbol) in expected {
            let unit = dimension.canonical_unit();
            assert_eq!(unit.symbol, symbol);
            assert_eq!(unit.dimension, dimension);
            assert_eq!(unit.factor, Decimal::ONE);
            assert!(unit.is_canonical());
        }
        assert_eq!(Dimension::ALL.len(), expected.len());
    }

    #[test]
    fn parses_symbols_and_aliases() {
        let cases = [
            ("元", "元"),
            ("CNY", "元"),
            ("人民币元", "元"),
            ("万元", "万元"),
            ("CNY_10K", "万元"),
            ("万元人民币", "万元"),
            ("亿元", "亿元"),
            ("CNY_100M", "亿元"),
            ("美元", "美元"),
            ("USD", "美元"),
            ("万美元", "万美元"),
            ("USD_10K", "万美元"),
            ("亿美元", "亿美元"),
            ("USD_100M", "亿美元"),
            ("亩", "亩"),
            ("mu", "亩"),
            ("公顷", "公顷"),
            ("ha", "公顷"),
            ("hectare", "公顷"),
            ("平方公里", "平方公里"),
            ("km2", "平方公里"),
            ("km²", "平方公里"),
            ("人", "人"),
            ("person", "人"),
            ("persons", "人"),
            ("people", "人"),
            ("万人", "万人"),
            ("10k_persons", "万人"),
            ("吨标准煤", "吨标准煤"),
            ("tce", "吨标准煤"),
            ("万吨标准煤", "万吨标准煤"),
            ("10k_tce", "万吨标准煤"),
            ("%", "%"),
            ("pct", "%"),
            ("percent", "%"),
            ("百分比", "%"),
            ("个", "个"),
            ("家", "个"),
            ("项", "个"),
            ("count", "个"),
            ("items", "个"),
            ("万元/亩", "万元/亩"),
            ("元/亩", "元/亩"),
        ];
        for (input, symbol) in cases {
            assert_eq!(Unit::parse(input).unwrap().symbol, symbol, "{input}");
        }
    }

    #[test]
    fn parse_ignores_ascii_case_and_whitespace() {
        assert_eq!(Unit::parse("cny_100m").unwrap().symbol, "亿元");
        assert_eq!(Unit::parse("Cny_10k").unwrap().symbol, "万元");
        assert_eq!(Unit::parse("MU").unwrap().symbol, "亩");
        assert_eq!(Unit::parse("KM2").unwrap().symbol, "平方公里");
        assert_eq!(Unit::parse("TCE").unwrap().symbol, "吨标准煤");
        assert_eq!(Unit::parse("  亿元 \t").unwrap().symbol, "亿元");
        assert_eq!(Unit::parse(" PCT ").unwrap().symbol, "%");
    }

    #[test]
    fn parse_rejects_unknown_and_empty_units() {
        let err = Unit::parse("xx").unwrap_err();
        assert_eq!(
            err,
            UnitError::Unknown {
                unit: "xx".to_owned()
            }
        );
        let message = err.to_string();
        assert!(
            message.starts_with("unknown unit 'xx'; accepted: "),
            "{message}"
        );
        assert!(message.contains("亿元 (CNY_100M"), "{message}");
        assert!(message.contains("km2"), "{message}");
        assert!(
            Unit::parse(" bogus ")
                .unwrap_err()
                .to_string()
                .starts_with("unknown unit 'bogus'; accepted: ")
        );
        assert!(Unit::parse("千元").is_err());
        assert!(Unit::parse("亿").is_err());
        assert_eq!(Unit::parse(""), Err(UnitError::Empty));
        assert_eq!(Unit::parse("  "), Err(UnitError::Empty));
        assert!(UnitError::Empty.to_string().contains("missing"));
    }

    #[test]
    fn converts_to_and_from_canonical() {
        let yi = Unit::parse("亿元").unwrap();
        assert_eq!(yi.to_canonical(53.2), 532_000.0);
        assert!(close(yi.from_canonical(532_000.0), 53.2));
        assert_eq!(Unit::parse("平方公里").unwrap().to_canonical(2.0), 3_000.0);
        assert_eq!(Unit::parse("公顷").unwrap().to_canonical(10.0), 150.0);
        assert_eq!(
            Unit::parse("万人").unwrap().to_canonical(480.0),
            4_800_000.0
        );
        assert_eq!(
            Unit::parse("万吨标准煤").unwrap().to_canonical(1.5),
            15_000.0
        );
        assert_eq!(Unit::parse("万元").unwrap().to_canonical(8200.0), 8200.0);
        // Sub-units divide by an exact integer rather than multiply by an inexact 0.0001.
        assert_eq!(Unit::parse("元").unwrap().to_canonical(12_345.0), 1.2345);
        assert_eq!(Unit::parse("元").unwrap().from_canonical(1.2345), 12_345.0);
        assert_eq!(Unit::parse("元/亩").unwrap().to_canonical(150_000.0), 15.0);
        assert_eq!(Unit::parse("美元").unwrap().to_canonical(15e8), 150_000.0);
        for unit in Unit::all() {
            assert!(
                close(unit.from_canonical(unit.to_canonical(123.456)), 123.456),
                "{unit}"
            );
        }
    }

    #[test]
    fn convert_to_applies_the_unit_table() {
        assert_eq!(convert_to(900.0, "亿元", Dimension::Cny), Ok(9_000_000.0));
        assert_eq!(
            convert_to(3758.0, "平方公里", Dimension::Area),
            Ok(5_637_000.0)
        );
        assert_eq!(convert_to(4.0, "ha", Dimension::Area), Ok(60.0));
        assert_eq!(convert_to(15.0, "USD_100M", Dimension::Usd), Ok(150_000.0));
        assert_eq!(convert_to(66.0, "%", Dimension::Percent), Ok(66.0));
        assert_eq!(convert_to(28.0, "个", Dimension::Count), Ok(28.0));
        assert_eq!(convert_to(7.5, "", Dimension::Cny), Ok(7.5));
        assert_eq!(convert_to(7.5, "  ", Dimension::Area), Ok(7.5));
    }

    #[test]
    fn convert_to_rejects_a_unit_of_another_dimension() {
        let err = convert_to(5.0, "亩", Dimension::Cny).unwrap_err();
        assert_eq!(
            err,
            UnitError::WrongDimension {
                unit: "亩",
                found: Dimension::Area,
                expected: Dimension::Cny
            }
        );
        assert_eq!(
            err.to_string(),
            "unit 亩 measures area, but this indicator is measured in 万元 (money in CNY)"
        );
        assert_eq!(
            convert_to(15.0, "亿美元", Dimension::Cny)
                .unwrap_err()
                .to_string(),
            "unit 亿美元 measures money in USD, but this indicator is measured in 万元 \
             (money in CNY); currencies are not converted"
        );
        assert!(convert_to(1.0, "%", Dimension::Count).is_err());
        assert!(convert_to(1.0, "万元", Dimension::CnyPerMu).is_err());
        assert_eq!(
            convert_to(1.0, "xx", Dimension::Cny),
            Err(UnitError::Unknown {
                unit: "xx".to_owned()
            })
        );
    }

    #[test]
    fn spellings_are_unambiguous() {
        let mut seen = std::collections::HashSet::new();
        for (unit, aliases) in SPELLINGS {
            for spelling in std::iter::once(&unit.symbol).chain(aliases.iter()) {
                assert!(
                    seen.insert(spelling.to_lowercase()),
                    "{spelling} listed twice"
                );
                assert!(std::ptr::eq(Unit::parse(spelling).unwrap(), *unit));
            }
        }
    }

    #[test]
    fn decimal_figures_convert_without_binary_noise() {
        let yi = Unit::parse("亿元").unwrap();
        assert_eq!(yi.to_canonical(1.14), 11400.0);
        assert_eq!(yi.to_canonical(53.2), 532000.0);
        assert_eq!(yi.to_canonical(82.94), 829400.0);
        assert_eq!(yi.from_canonical(11400.0), 1.14);
        let yuan = Unit::parse("元").unwrap();
        assert_eq!(yuan.to_canonical(12345.0), 1.2345);
        assert_eq!(yuan.to_canonical(-0.5), -0.00005);
        let km2 = Unit::parse("平方公里").unwrap();
        assert_eq!(km2.to_canonical(2.0), 3000.0);
        assert_eq!(km2.to_canonical(8.2), 12300.0);
        assert_eq!(km2.from_canonical(12300.0), 8.2);
        assert_eq!(Unit::parse("公顷").unwrap().to_canonical(3.3), 49.5);
        assert_eq!(Unit::parse("公顷").unwrap().to_canonical(0.7), 10.5);
        assert_eq!(yi.to_canonical(0.1), 1000.0);
        assert!(yi.to_canonical(f64::NAN).is_nan());
        assert_eq!(yi.to_canonical(f64::INFINITY), f64::INFINITY);
        assert_eq!(yi.to_canonical(-0.0), 0.0);
        // Magnitudes far outside the decimal type's 28 digits keep their precision.
        assert_eq!(km2.to_canonical(8.2e-30), 1.23e-26);
        assert_eq!(km2.to_canonical(8.2e250), 1.23e254);
        assert_eq!(km2.to_canonical(1e308), f64::INFINITY);
    }

    /// Every figure with up to four decimals, converted by every unit, is the decimal product
    /// (or quotient) rounded once to the nearest binary number.
    #[test]
    fn conversions_equal_decimal_arithmetic_rounded_once() {
        for unit in Unit::all() {
            for cents in (1..200_000).step_by(37) {
                let typed = Decimal::new(cents, 4);
                let value: f64 = typed.to_string().parse().unwrap();
                let product: f64 = (typed * unit.factor).to_string().parse().unwrap();
                assert_eq!(unit.to_canonical(value), product, "{typed} {unit}");
                let quotient: f64 = (typed / unit.factor).to_string().parse().unwrap();
                assert_eq!(unit.from_canonical(value), quotient, "{typed} {unit}");
            }
        }
    }
}
