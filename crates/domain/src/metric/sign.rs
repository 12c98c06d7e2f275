//! Which metrics can take negative values, read from the expression alone.
//!
//! Indicators are amounts, counts, areas and percentages, and count as never negative: the
//! catalog has no signed quantities (a loss reported as a negative profit is the exception,
//! and the ranking engine reports it with the entity's id when a method cannot take it).
//! Growth rates and contributions are differences between periods and go below zero whenever
//! the figure falls; shares, per-mu figures, ratios and totals keep their arguments' sign.

use super::expr::{Expr, Function};

/// The part of `expr` that can make it negative (`expr` itself, or the growth rate or change
/// inside it), or None when every value it can give is ≥ 0.
pub fn negative_part(expr: &Expr) -> Option<&Expr> {
    match expr {
        Expr::Indicator(_) | Expr::Number(_) | Expr::Status(_) => None,
        Expr::Named(metric) => negative_part(metric.definition()).map(|_| expr),
        Expr::Call { function, args } => match function {
            Function::Yoy | Function::Cagr | Function::Contribution | Function::ShiftShare => {
                Some(expr)
            }
            Function::Share
            | Function::PerMu
            | Function::Ratio
            | Function::Percent
            | Function::ZonesTotal
            | Function::Lq
            | Function::Projects
            | Function::ProjectInvestment
            | Function::ProjectCompletedInvestment => args.iter().find_map(negative_part),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin_indicator;
    use crate::metric::parse_metric;

    fn part(text: &str) -> Option<String> {
        let metric = parse_metric(text, &builtin_indicator).unwrap();
        negative_part(&metric.expr).map(ToString::to_string)
    }

    #[test]
    fn growth_and_change_can_be_negative_amounts_and_shares_cannot() {
        assert_eq!(part("yoy(revenue)").as_deref(), Some("yoy(revenue)"));
        assert_eq!(part("cagr(tax, 3)").as_deref(), Some("cagr(tax, 3)"));
        assert_eq!(
            part("contribution(revenue)").as_deref(),
            Some("contribution(revenue)")
        );
        assert_eq!(
            part("energy_intensity_change").as_deref(),
            Some("energy_intensity_change")
        );
        assert_eq!(
            part("ratio(yoy(revenue), employees)").as_deref(),
            Some("yoy(revenue)")
        );
        for text in [
            "revenue",
            "per_mu(tax)",
            "share(revenue)",
            "percent(tax, revenue)",
            "energy_intensity",
            "investment_intensity",
            "zones_total(fixed_asset_investment)",
            "sewage_treatment_rate",
        ] {
            assert_eq!(part(text), None, "{text}");
        }
    }
}
