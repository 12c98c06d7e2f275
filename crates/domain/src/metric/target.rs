//! Target progress: "half the year gone, half the task done" (时间过半任务过半).
//!
//! A cumulative target (investment, output over the year) is pro-rated by the elapsed share
//! of its period; a level target (a growth rate, a share, a ratio, a stock) is judged as it
//! stands, since half a year of 40% growth is still 40%, not 20%.

use std::fmt;

use crate::period::Period;

/// How the actual value must compare with the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// The actual value must reach the target (investment ≥ 900亿).
    AtLeast,
    /// The actual value must stay within the target (energy use ≤ a cap).
    AtMost,
}

impl Comparator {
    /// Both comparators.
    pub const ALL: [Comparator; 2] = [Comparator::AtLeast, Comparator::AtMost];

    /// The upper-case API name, e.g. "AT_LEAST".
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::AtLeast => "AT_LEAST",
            Comparator::AtMost => "AT_MOST",
        }
    }

    /// Reads `AT_LEAST`, `at-least`, `COMPARATOR_AT_LEAST`, `>=` or `≥` (and the AT_MOST forms).
    pub fn parse(s: &str) -> Option<Comparator> {
        let name: String = s
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        let name = name.strip_prefix("COMPARATOR_").unwrap_or(&name);
        match name {
            ">=" | "≥" => Some(Comparator::AtLeast),
            "<=" | "≤" => Some(Comparator::AtMost),
            _ => Self::ALL.into_iter().find(|c| c.as_str() == name),
        }
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetStatus {
    /// The target is met for good.
    Achieved,
    /// The period is not over and progress keeps pace with the time elapsed.
    OnTrack,
    /// Progress lags the time elapsed, or the period ended short of the target.
    Behind,
    /// There is no actual value to judge.
    NoData,
}

impl TargetStatus {
    /// The upper-case API name, e.g. "ON_TRACK".
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Achieved => "ACHIEVED",
            TargetStatus::OnTrack => "ON_TRACK",
            TargetStatus::Behind => "BEHIND",
            TargetStatus::NoData => "NO_DATA",
        }
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The progress of one target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Where the target stands.
    pub status: TargetStatus,
    /// How much of the target is attained, as a fraction (0.533 = 53.3%); `None` without an
    /// actual value or when the target is not positive, where a ratio means nothing.
    pub attainment: Option<f64>,
    /// Share of the target period elapsed, 0.0 to 1.0.
    pub elapsed_share: f64,
}

/// Judges `actual` against `target` when `elapsed_share` of the target period has passed;
/// `cumulative` says whether the metric accumulates over the period (see `Metric::cumulative`).
pub fn progress(
    comparator: Comparator,
    target: f64,
    actual: Option<f64>,
    elapsed_share: f64,
    cumulative: bool,
) -> Progress {
    let elapsed = if elapsed_share.is_nan() {
        0.0
    } else {
        elapsed_share.clamp(0.0, 1.0)
    };
    let Some(actual) = actual.filter(|a| a.is_finite()) else {
        return Progress {
            status: TargetStatus::NoData,
            attainment: None,
            elapsed_share: elapsed,
        };
    };
    let over = elapsed >= 1.0;
    let (status, attainment) = match comparator {
        Comparator::AtLeast => {
            let attainment = (target > 0.0).then(|| actual / target);
            let status = if actual >= target {
                // Reaching a cumulative target early is final: the sum cannot fall back.
                if cumulative || over {
                    TargetStatus::Achieved
                } else {
                    TargetStatus::OnTrack
                }
            } else if cumulative && !over && attainment.is_some_and(|a| a >= elapsed) {
                TargetStatus::OnTrack
            } else {
                TargetStatus::Behind
            };
            (status, attainment)
        }
        Comparator::AtMost => {
            let attainment = (target > 0.0 && actual > 0.0).then(|| target / actual);
            let status = if actual > target {
                // A cap already exceeded cannot be met any more.
                TargetStatus::Behind
            } else if over {
                TargetStatus::Achieved
            } else if !cumulative || target <= 0.0 || actual <= target * elapsed {
                TargetStatus::OnTrack
            } else {
                TargetStatus::Behind
            };
            (status, attainment)
        }
    };
    Progress {
        status,
        attainment,
        elapsed_share: elapsed,
    }
}

/// The span a target is judged on as of `through`: from the target period's start to the end
/// of `through` while `through` ends inside it (target 2012, through 2012-H1 → January–June
/// 2012, the 1–6月累计 figure), else the whole target period.
pub fn evaluation_period(target_period: &Period, through: &Period) -> Period {
    let end = through.end_ordinal();
    if end < target_period.start_ordinal() || end >= target_period.end_ordinal() {
        return *target_period;
    }
    // `through` ends inside the target period, so in its year and not before its start.
    Period::new(
        target_period.year(),
        target_period.start_month(),
        through.end_month(),
    )
    .unwrap_or(*target_period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    const LUOYANG_FAI_TARGET: f64 = 9_000_000.0; // 900亿 in 万元

    fn fai(actual: f64, through: &str) -> Progress {
        let target_period = p("2012");
        let elapsed = target_period.elapsed_share(&p(through));
        progress(
            Comparator::AtLeast,
            LUOYANG_FAI_TARGET,
            Some(actual),
            elapsed,
            true,
        )
    }

    #[test]
    fn cumulative_at_least_is_pro_rated() {
        let mid = fai(4_800_000.0, "2012-H1");
        assert_eq!(mid.status, TargetStatus::OnTrack);
        assert_eq!(mid.elapsed_share, 0.5);
        // 480亿 of 900亿 = 0.5333…, ahead of half the year.
        assert!((mid.attainment.unwrap() - 4.8 / 9.0).abs() < 1e-12);
        let lagging = fai(4_000_000.0, "2012-H1");
        assert_eq!(lagging.status, TargetStatus::Behind);
        assert!((lagging.attainment.unwrap() - 4.0 / 9.0).abs() < 1e-12);
        assert_eq!(fai(9_100_000.0, "2012").status, TargetStatus::Achieved);
        assert_eq!(fai(8_900_000.0, "2012").status, TargetStatus::Behind);
        // Exactly on pace, and exactly on target.
        assert_eq!(fai(4_500_000.0, "2012-H1").status, TargetStatus::OnTrack);
        assert_eq!(fai(9_000_000.0, "2012").status, TargetStatus::Achieved);
        // Met before the year is out: a sum that cannot fall back.
        assert_eq!(fai(9_000_000.0, "2012-Q3").status, TargetStatus::Achieved);
        // Evaluated after the period: the whole year counts.
        assert_eq!(fai(8_900_000.0, "2013-H1").status, TargetStatus::Behind);
        assert_eq!(fai(8_900_000.0, "2013-H1").elapsed_share, 1.0);
    }

    #[test]
    fn level_targets_are_not_pro_rated() {
        let growth = |actual: f64, elapsed: f64| {
            progress(Comparator::AtLeast, 40.0, Some(actual), elapsed, false).status
        };
        assert_eq!(growth(42.0, 0.5), TargetStatus::OnTrack);
        assert_eq!(growth(38.0, 1.0), TargetStatus::Behind);
        assert_eq!(growth(42.0, 1.0), TargetStatus::Achieved);
        // 21% growth mid-year is not "half of 40%, on pace".
        assert_eq!(growth(21.0, 0.5), TargetStatus::Behind);
        let p = progress(Comparator::AtLeast, 40.0, Some(42.0), 0.5, false);
        assert!((p.attainment.unwrap() - 1.05).abs() < 1e-12);
    }

    #[test]
    fn at_most_mirrors_at_least() {
        let cap = |actual: f64, elapsed: f64, cumulative: bool| {
            progress(Comparator::AtMost, 100.0, Some(actual), elapsed, cumulative)
        };
        // A cumulative budget of 100 half spent by mid-year is on pace.
        assert_eq!(cap(50.0, 0.5, true).status, TargetStatus::OnTrack);
        assert_eq!(cap(60.0, 0.5, true).status, TargetStatus::Behind);
        assert_eq!(cap(101.0, 0.5, true).status, TargetStatus::Behind);
        assert_eq!(cap(95.0, 1.0, true).status, TargetStatus::Achieved);
        assert_eq!(cap(105.0, 1.0, true).status, TargetStatus::Behind);
        // Within the cap is never achieved before the period is over.
        assert_eq!(cap(10.0, 0.5, true).status, TargetStatus::OnTrack);
        // A level cap (energy intensity ≤ target) is judged as it stands.
        assert_eq!(cap(90.0, 0.5, false).status, TargetStatus::OnTrack);
        assert_eq!(cap(110.0, 0.5, false).status, TargetStatus::Behind);
        assert_eq!(cap(90.0, 1.0, false).status, TargetStatus::Achieved);
        assert!((cap(80.0, 1.0, false).attainment.unwrap() - 1.25).abs() < 1e-12);
        assert_eq!(cap(0.0, 1.0, false).attainment, None);
    }

    #[test]
    fn targets_that_are_not_positive_compare_directly() {
        // Energy intensity change ≤ −4 (a 4% decline, seed 001).
        let decline = |actual: f64, elapsed: f64| {
            progress(Comparator::AtMost, -4.0, Some(actual), elapsed, false)
        };
        assert_eq!(decline(-5.0, 1.0).status, TargetStatus::Achieved);
        assert_eq!(decline(-5.0, 0.5).status, TargetStatus::OnTrack);
        assert_eq!(decline(-3.0, 1.0).status, TargetStatus::Behind);
        assert_eq!(decline(-5.0, 1.0).attainment, None);
        let at_least_zero = progress(Comparator::AtLeast, 0.0, Some(-1.0), 0.5, true);
        assert_eq!(at_least_zero.status, TargetStatus::Behind);
        assert_eq!(at_least_zero.attainment, None);
        let reached = progress(Comparator::AtLeast, 0.0, Some(0.0), 0.5, true);
        assert_eq!(reached.status, TargetStatus::Achieved);
    }

    #[test]
    fn no_actual_is_no_data() {
        for actual in [None, Some(f64::NAN)] {
            let p = progress(Comparator::AtLeast, 1.0, actual, 0.25, true);
            assert_eq!(p.status, TargetStatus::NoData);
            assert_eq!(p.attainment, None);
            assert_eq!(p.elapsed_share, 0.25);
        }
    }

    #[test]
    fn elapsed_share_is_clamped() {
        let p = progress(Comparator::AtLeast, 10.0, Some(1.0), 3.0, true);
        assert_eq!((p.status, p.elapsed_share), (TargetStatus::Behind, 1.0));
        let p = progress(Comparator::AtLeast, 10.0, Some(0.0), -1.0, true);
        assert_eq!((p.status, p.elapsed_share), (TargetStatus::OnTrack, 0.0));
    }

    #[test]
    fn evaluation_period_is_year_to_date_inside_the_target() {
        assert_eq!(evaluation_period(&p("2012"), &p("2012-H1")), p("2012-H1"));
        assert_eq!(evaluation_period(&p("2012"), &p("2012-Q1")), p("2012-Q1"));
        assert_eq!(
            evaluation_period(&p("2012"), &p("2012-08")),
            p("2012-08-YTD")
        );
        assert_eq!(evaluation_period(&p("2012"), &p("2012-Q4")), p("2012"));
        assert_eq!(evaluation_period(&p("2012"), &p("2013-H1")), p("2012"));
        assert_eq!(
            evaluation_period(&p("2012-H2"), &p("2012-Q3")),
            p("2012-Q3")
        );
        assert_eq!(
            evaluation_period(&p("2012-H2"), &p("2012-08")),
            p("2012-07..08")
        );
        // Before the target period starts nothing has elapsed; the whole period is named.
        assert_eq!(evaluation_period(&p("2015"), &p("2012")), p("2015"));
        assert_eq!(
            evaluation_period(&p("2012-H2"), &p("2012-03")),
            p("2012-H2")
        );
    }

    #[test]
    fn names_round_trip() {
        for comparator in Comparator::ALL {
            assert_eq!(Comparator::parse(comparator.as_str()), Some(comparator));
        }
        assert_eq!(
            Comparator::parse("comparator_at_most"),
            Some(Comparator::AtMost)
        );
        assert_eq!(Comparator::parse(" at-least "), Some(Comparator::AtLeast));
        assert_eq!(Comparator::parse("≥"), Some(Comparator::AtLeast));
        assert_eq!(Comparator::parse("<="), Some(Comparator::AtMost));
        assert_eq!(Comparator::parse("equal"), None);
        assert_eq!(TargetStatus::OnTrack.to_string(), "ON_TRACK");
    }
}
