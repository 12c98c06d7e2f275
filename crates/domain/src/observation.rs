//! Checking and normalising one incoming statistic before it is stored.
//!
//! Ingestion reports every problem of a row at once, so that a user fixing a spreadsheet
//! does not have to resubmit it once per mistake.

use std::fmt;

use crate::catalog::{Indicator, IndicatorKind};
use crate::period::Period;
use crate::unit::{Unit, UnitError};

/// One problem with one field of an incoming row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field at fault, as named in the API ("period", "unit", "value").
    pub field: &'static str,
    /// What is wrong, in words for the user.
    pub reason: String,
}

impl FieldError {
    /// Wraps an error as the reason a field was rejected.
    pub fn new(field: &'static str, reason: impl fmt::Display) -> FieldError {
        FieldError {
            field,
            reason: reason.to_string(),
        }
    }
}

/// Why a value itself was rejected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// NaN or infinity was given.
    #[error("value {value} is not a finite number")]
    NotFinite {
        /// The value given.
        value: f64,
    },
    /// The value overflows when converted to the canonical unit.
    #[error("value {value} {unit} is too large to store in {canonical}")]
    Overflow {
        /// The value given.
        value: f64,
        /// The unit it was given in.
        unit: &'static str,
        /// The unit it is stored in.
        canonical: &'static str,
    },
    /// A negative value of an indicator that cannot be negative.
    #[error("{code} cannot be negative, but the value is {value}")]
    Negative {
        /// The indicator's code.
        code: String,
        /// The value given.
        value: f64,
    },
    /// A rate outside 0 to 100 percent.
    #[error("rate {value}% is outside 0–100%")]
    RateOutOfRange {
        /// The value after conversion to percent.
        value: f64,
    },
}

/// Checks one row's period, value and unit against `indicator`, returning the period and
/// the value in the indicator's canonical unit, or every problem found; a blank unit
/// means the value is already in the canonical unit.
pub fn normalize_value(
    indicator: &Indicator,
    period: &str,
    value: f64,
    unit: &str,
) -> Result<(Period, f64), Vec<FieldError>> {
    let mut errors = Vec::new();
    let period = Period::parse(period)
        .map_err(|err| errors.push(FieldError::new("period", err)))
        .ok();
    let unit = resolve_unit(indicator, unit)
        .map_err(|err| errors.push(FieldError::new("unit", err)))
        .ok();
    let value = check_value(indicator, value, unit)
        .map_err(|err| errors.push(FieldError::new("value", err)))
        .ok();
    match (period, value) {
        (Some(period), Some(Some(value))) if errors.is_empty() => Ok((period, value)),
        _ => Err(errors),
    }
}

fn resolve_unit(indicator: &Indicator, unit: &str) -> Result<&'static Unit, UnitError> {
    if unit.trim().is_empty() {
        return Ok(indicator.unit);
    }
    let unit = Unit::parse(unit)?;
    if unit.dimension != indicator.unit.dimension {
        return Err(UnitError::WrongDimension {
            unit: unit.symbol,
            found: unit.dimension,
            expected: indicator.unit.dimension,
        });
    }
    Ok(unit)
}

/// The value in the indicator's unit, or `None` when the unit is unusable so nothing can
/// be said about the value beyond its being finite.
fn check_value(
    indicator: &Indicator,
    value: f64,
    unit: Option<&'static Unit>,
) -> Result<Option<f64>, ValueError> {
    if !value.is_finite() {
        return Err(ValueError::NotFinite { value });
    }
    let Some(unit) = unit else {
        return Ok(None);
    };
    let converted = indicator.unit.from_canonical(unit.to_canonical(value));
    if !converted.is_finite() {
        return Err(ValueError::Overflow {
            value,
            unit: unit.symbol,
            canonical: indicator.unit.symbol,
        });
    }
    if converted < 0.0 && indicator.non_negative() {
        return Err(ValueError::Negative {
            code: indicator.code.clone(),
            value,
        });
    }
    if indicator.kind == IndicatorKind::Rate && !(0.0..=100.0).contains(&converted) {
        return Err(ValueError::RateOutOfRange { value: converted });
    }
    Ok(Some(converted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin_indicator;

    fn indicator(code: &str) -> Indicator {
        builtin_indicator(code).unwrap()
    }

    fn fields(errors: &[FieldError]) -> Vec<&'static str> {
        errors.iter().map(|error| error.field).collect()
    }

    #[test]
    fn converts_the_seed_rows() {
        let output = indicator("output_value");
        assert_eq!(
            normalize_value(&output, "2014-H1", 53.2, "亿元"),
            Ok((Period::parse("2014-H1").unwrap(), 532_000.0))
        );
        assert_eq!(
            normalize_value(
                &indicator("leading_industry_tax"),
                "2014-H1",
                8200.0,
                "万元"
            ),
            Ok((Period::parse("2014-H1").unwrap(), 8200.0))
        );
        assert_eq!(
            normalize_value(&indicator("built_area_added"), "2015", 2.0, "平方公里"),
            Ok((Period::parse("2015").unwrap(), 3000.0))
        );
        assert_eq!(
            normalize_value(&indicator("employees"), "2018", 480.0, "万人"),
            Ok((Period::parse("2018").unwrap(), 4_800_000.0))
        );
        assert_eq!(
            normalize_value(&indicator("fdi_actual"), "2011", 15.0, "亿美元"),
            Ok((Period::parse("2011").unwrap(), 150_000.0))
        );
        assert_eq!(
            normalize_value(&indicator("projects_signed"), "2014-H1", 28.0, "个"),
            Ok((Period::parse("2014-H1").unwrap(), 28.0))
        );
    }

    #[test]
    fn blank_unit_means_canonical() {
        let tax = indicator("tax");
        assert_eq!(
            normalize_value(&tax, "2024-06-YTD", 11_400.0, ""),
            Ok((Period::parse("2024-H1").unwrap(), 11_400.0))
        );
        assert_eq!(
            normalize_value(&tax, "2024", 1.0, "  ").map(|(_, v)| v),
            Ok(1.0)
        );
    }

    #[test]
    fn accepts_rates_within_bounds() {
        let rate = indicator("sewage_treatment_rate");
        for value in [0.0, 66.0, 100.0] {
            assert_eq!(
                normalize_value(&rate, "2012", value, "%").map(|(_, v)| v),
                Ok(value)
            );
        }
        assert_eq!(
            normalize_value(&rate, "2012", 100.0, "pct").map(|(_, v)| v),
            Ok(100.0)
        );
    }

    #[test]
    fn rejects_rates_out_of_bounds() {
        let rate = indicator("emission_compliance_rate");
        for value in [-0.5, 100.5, 6600.0] {
            let errors = normalize_value(&rate, "2012", value, "%").unwrap_err();
            assert_eq!(fields(&errors), ["value"], "{value}");
        }
        let errors = normalize_value(&rate, "2012", 120.0, "").unwrap_err();
        assert_eq!(errors[0].to_string(), "value: rate 120% is outside 0–100%");
    }

    #[test]
    fn reports_a_bad_period() {
        let errors = normalize_value(&indicator("tax"), "2024-13", 1.0, "万元").unwrap_err();
        assert_eq!(fields(&errors), ["period"]);
        assert!(
            errors[0]
                .reason
                .starts_with("invalid period '2024-13': month 13 does not exist")
        );
        let errors = normalize_value(&indicator("tax"), "", 1.0, "万元").unwrap_err();
        assert_eq!(fields(&errors), ["period"]);
    }

    #[test]
    fn reports_a_unit_of_the_wrong_dimension() {
        let errors = normalize_value(&indicator("tax"), "2024", 5.0, "亩").unwrap_err();
        assert_eq!(
            errors,
            [FieldError {
                field: "unit",
                reason:
                    "unit 亩 measures area, but this indicator is measured in 万元 (money in CNY)"
                        .to_owned()
            }]
        );
        let errors = normalize_value(&indicator("fdi_actual"), "2011", 15.0, "亿元").unwrap_err();
        assert_eq!(fields(&errors), ["unit"]);
    }

    #[test]
    fn reports_an_unknown_unit() {
        let errors = normalize_value(&indicator("tax"), "2024", 5.0, "xx").unwrap_err();
        assert_eq!(fields(&errors), ["unit"]);
        assert!(
            errors[0]
                .reason
                .starts_with("unknown unit 'xx'; accepted: ")
        );
    }

    #[test]
    fn reports_non_finite_values() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let errors = normalize_value(&indicator("tax"), "2024", value, "万元").unwrap_err();
            assert_eq!(fields(&errors), ["value"]);
        }
        let errors = normalize_value(&indicator("tax"), "2024", f64::NAN, "").unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "value: value NaN is not a finite number"
        );
    }

    #[test]
    fn reports_overflow_on_conversion() {
        let errors = normalize_value(&indicator("tax"), "2024", f64::MAX, "亿元").unwrap_err();
        assert_eq!(fields(&errors), ["value"]);
        assert!(errors[0].reason.contains("too large to store in 万元"));
    }

    #[test]
    fn collects_every_problem_of_a_row() {
        let errors = normalize_value(&indicator("tax"), "2024-Q5", f64::NAN, "亩").unwrap_err();
        assert_eq!(fields(&errors), ["period", "unit", "value"]);
        let rate = indicator("sewage_treatment_rate");
        let errors = normalize_value(&rate, "abc", 150.0, "%").unwrap_err();
        assert_eq!(fields(&errors), ["period", "value"]);
        // With an unusable unit the rate bound cannot be judged, so only the unit is reported.
        let errors = normalize_value(&rate, "2012", 150.0, "万元").unwrap_err();
        assert_eq!(fields(&errors), ["unit"]);
    }

    #[test]
    fn works_for_user_defined_indicators() {
        let custom = Indicator::define(
            "tax_per_mu",
            "亩均税收",
            "Tax per mu",
            "万元/亩",
            IndicatorKind::Stock,
            crate::catalog::Direction::HigherIsBetter,
        )
        .unwrap();
        assert_eq!(
            normalize_value(&custom, "2021", 150_000.0, "元/亩").map(|(_, v)| v),
            Ok(15.0)
        );
    }

    #[test]
    fn refuses_negatives_only_where_they_are_impossible() {
        use crate::catalog::{NON_NEGATIVE_INDICATORS, builtin_indicators};
        let refused: Vec<String> = builtin_indicators()
            .into_iter()
            .filter(|i| i.kind != IndicatorKind::Rate)
            .filter(|i| normalize_value(i, "2020", -1.0, "").is_err())
            .map(|i| i.code)
            .collect();
        assert_eq!(
            refused,
            [
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
            ]
        );
        assert_eq!(refused.len(), NON_NEGATIVE_INDICATORS.len());
        for may_be_negative in [
            "profit",
            "value_added",
            "tax",
            "leading_industry_tax",
            "fdi_actual",
            "built_area_added",
        ] {
            assert!(normalize_value(&indicator(may_be_negative), "2020", -1.0, "").is_ok());
        }
        let errors =
            normalize_value(&indicator("land_area"), "2020", -0.5, "平方公里").unwrap_err();
        assert_eq!(fields(&errors), ["value"]);
        assert!(
            errors[0].reason.contains("land_area cannot be negative"),
            "{errors:?}"
        );
        assert!(normalize_value(&indicator("land_area"), "2020", 0.0, "").is_ok());
    }
}
