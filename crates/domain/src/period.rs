//! Reporting periods: spans of whole months inside one calendar year.
//!
//! Chinese statistics are reported for a year, a half, a quarter, a single month or a
//! cumulative "January to month m" (1–6月累计); all of them are one `Period`, so that
//! `2024-H1` and `2024-06-YTD` compare equal and year-on-year bases line up.

use std::fmt;
use std::str::FromStr;

/// Earliest year accepted, well before any Chinese zone statistics.
pub const MIN_YEAR: i32 = 1900;
/// Latest year accepted, far enough ahead for long-range planning targets.
pub const MAX_YEAR: i32 = 2200;

/// The spellings listed to a user whose period could not be read.
pub const ACCEPTED_FORMS: &str = "2024 (whole year), 2024-H1 or 2024-H2 (half), 2024-Q1 to 2024-Q4 \
     (quarter), 2024-06 (one month), 2024-06-YTD (January to June), 2024-02..04 (February to April), \
     or Chinese forms such as 2024年, 2024年上半年, 2024年1-6月, 2024年6月, 2024年第二季度";

/// What is wrong with the parts of a period, independent of how it was spelled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeriodProblem {
    /// The text matches none of the accepted forms.
    #[error("this is not a recognised way to write a period")]
    Unrecognized,
    /// The year lies outside the supported range.
    #[error("year {year} is out of range; expected a year from {MIN_YEAR} to {MAX_YEAR}")]
    YearOutOfRange {
        /// The year given.
        year: i32,
    },
    /// A month number is not 1 to 12.
    #[error("month {month} does not exist; expected a month from 1 to 12")]
    MonthOutOfRange {
        /// The month given.
        month: u8,
    },
    /// A quarter number is not 1 to 4.
    #[error("quarter Q{quarter} does not exist; expected Q1 to Q4")]
    QuarterOutOfRange {
        /// The quarter given.
        quarter: u8,
    },
    /// A half-year number is not 1 or 2.
    #[error("half-year H{half} does not exist; expected H1 or H2")]
    HalfOutOfRange {
        /// The half given.
        half: u8,
    },
    /// The span ends before it starts.
    #[error(
        "the span starts in month {start} but ends in month {end}; the start must not be after the end"
    )]
    ReversedSpan {
        /// First month of the span.
        start: u8,
        /// Last month of the span.
        end: u8,
    },
}

/// Why a period could not be built or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// No period was given at all.
    #[error("the period is missing; accepted forms: {ACCEPTED_FORMS}")]
    Empty,
    /// The text given could not be read as a period.
    #[error("invalid period '{input}': {problem}; accepted forms: {ACCEPTED_FORMS}")]
    Invalid {
        /// The text given, trimmed.
        input: String,
        /// What is wrong with it.
        problem: PeriodProblem,
    },
    /// Numeric parts given directly (not as text) do not form a period.
    #[error("invalid period: {0}")]
    Span(PeriodProblem),
}

/// A span of whole months (1..=12, inclusive) inside one calendar year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    start_month: u8,
    end_month: u8,
}

impl Period {
    /// Builds the span `start_month..=end_month` of `year`.
    pub fn new(year: i32, start_month: u8, end_month: u8) -> Result<Period, PeriodError> {
        Self::checked(year, start_month, end_month).map_err(PeriodError::Span)
    }

    /// The whole calendar year.
    pub fn full_year(year: i32) -> Result<Period, PeriodError> {
        Self::new(year, 1, 12)
    }

    /// A single month.
    pub fn month(year: i32, month: u8) -> Result<Period, PeriodError> {
        Self::new(year, month, month)
    }

    /// January through `month`, the cumulative year-to-date figure (1–m月累计).
    pub fn year_to_date(year: i32, month: u8) -> Result<Period, PeriodError> {
        Self::new(year, 1, month)
    }

    fn checked(year: i32, start_month: u8, end_month: u8) -> Result<Period, PeriodProblem> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(PeriodProblem::YearOutOfRange { year });
        }
        for month in [start_month, end_month] {
            if !(1..=12).contains(&month) {
                return Err(PeriodProblem::MonthOutOfRange { month });
            }
        }
        if start_month > end_month {
            return Err(PeriodProblem::ReversedSpan {
                start: start_month,
                end: end_month,
            });
        }
        Ok(Period {
            year,
            start_month,
            end_month,
        })
    }

    /// Reads any accepted spelling (see [`ACCEPTED_FORMS`]); surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Result<Period, PeriodError> {
        let input = s.trim();
        if input.is_empty() {
            return Err(PeriodError::Empty);
        }
        parse_trimmed(input).map_err(|problem| PeriodError::Invalid {
            input: input.to_owned(),
            problem,
        })
    }

    /// The calendar year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// First month of the span, 1..=12.
    pub fn start_month(&self) -> u8 {
        self.start_month
    }

    /// Last month of the span, 1..=12.
    pub fn end_month(&self) -> u8 {
        self.end_month
    }

    /// Number of months in the span.
    pub fn months(&self) -> u32 {
        u32::from(self.end_month - self.start_month) + 1
    }

    /// Months since year 0 of the first month, so spans compare across years.
    pub fn start_ordinal(&self) -> i64 {
        ordinal(self.year, self.start_month)
    }

    /// Months since year 0 of the last month, so spans compare across years.
    pub fn end_ordinal(&self) -> i64 {
        ordinal(self.year, self.end_month)
    }

    /// Whether every month of `other` lies inside this span.
    pub fn contains(&self, other: &Period) -> bool {
        self.start_ordinal() <= other.start_ordinal() && other.end_ordinal() <= self.end_ordinal()
    }

    /// Whether the span is the whole calendar year.
    pub fn is_full_year(&self) -> bool {
        self.start_month == 1 && self.end_month == 12
    }

    /// The one spelling of this span that [`Display`](fmt::Display) produces and `parse` reads back.
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// The same span one year earlier: the base of a year-on-year comparison.
    pub fn year_earlier(&self) -> Period {
        self.shift_years(-1)
    }

    /// The same span `n` years later (earlier when `n` is negative).
    ///
    /// The result is not range-checked: a base year outside 1900..=2200 is still a
    /// meaningful lookup key (it simply finds no data), and failing here would force
    /// every caller of a YoY computation to handle an error that cannot matter.
    pub fn shift_years(&self, n: i32) -> Period {
        Period {
            year: self.year.saturating_add(n),
            ..*self
        }
    }

    /// Share of this span's months that have passed by the end of `through`: 0.0 before it
    /// starts, 1.0 once it is over ("half the year gone, half the task done").
    pub fn elapsed_share(&self, through: &Period) -> f64 {
        let elapsed = through.end_ordinal() - self.start_ordinal() + 1;
        let months = i64::from(self.months());
        // Months are at most 12, so the conversions to f64 are exact.
        elapsed.clamp(0, months) as f64 / months as f64
    }
}

fn ordinal(year: i32, month: u8) -> i64 {
    i64::from(year) * 12 + i64::from(month) - 1
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, start, end) = (self.year, self.start_month, self.end_month);
        match (start, end) {
            (1, 12) => write!(f, "{year}"),
            (1, 6) => write!(f, "{year}-H1"),
            (7, 12) => write!(f, "{year}-H2"),
            (s, e) if e == s + 2 && s % 3 == 1 => write!(f, "{year}-Q{}", s / 3 + 1),
            (s, e) if s == e => write!(f, "{year}-{s:02}"),
            (1, e) => write!(f, "{year}-{e:02}-YTD"),
            (s, e) => write!(f, "{year}-{s:02}..{e:02}"),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::parse(s)
    }
}

fn parse_trimmed(s: &str) -> Result<Period, PeriodProblem> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    // Two-digit years ("24") are ambiguous across centuries, so only four digits are read.
    if digits != 4 {
        return Err(PeriodProblem::Unrecognized);
    }
    let (year_text, rest) = s.split_at(4);
    let year: i32 = year_text.parse().map_err(|_| PeriodProblem::Unrecognized)?;
    if let Some(chinese) = rest.trim_start().strip_prefix('年') {
        let compact: String = chinese.chars().filter(|c| !c.is_whitespace()).collect();
        return parse_chinese(year, &compact);
    }
    if rest.is_empty() {
        return Period::checked(year, 1, 12);
    }
    let rest = rest
        .strip_prefix('-')
        .ok_or(PeriodProblem::Unrecognized)?
        .to_ascii_uppercase();
    if let Some(half) = rest.strip_prefix('H') {
        return match one_digit(half)? {
            1 => Period::checked(year, 1, 6),
            2 => Period::checked(year, 7, 12),
            half => Err(PeriodProblem::HalfOutOfRange { half }),
        };
    }
    if let Some(quarter) = rest.strip_prefix('Q') {
        return quarter_span(year, one_digit(quarter)?);
    }
    if let Some(month) = rest.strip_suffix("-YTD") {
        return Period::checked(year, 1, month_number(month)?);
    }
    if let Some((start, end)) = rest.split_once("..") {
        return Period::checked(year, month_number(start)?, month_number(end)?);
    }
    let month = month_number(&rest)?;
    Period::checked(year, month, month)
}

/// Separators seen between month numbers in Chinese spans such as 1-6月 or 1—6月.
const SPAN_SEPARATORS: &[char] = &['-', '—', '–', '－', '~', '～', '至', '到'];

fn parse_chinese(year: i32, rest: &str) -> Result<Period, PeriodProblem> {
    match rest {
        "" | "度" | "全年" => return Period::checked(year, 1, 12),
        "上半年" => return Period::checked(year, 1, 6),
        "下半年" => return Period::checked(year, 7, 12),
        _ => {}
    }
    let rest = rest.strip_suffix("累计").unwrap_or(rest);
    if let Some(quarter) = rest.strip_suffix("季度") {
        if let Some(count) = quarter.strip_prefix('前') {
            // 前三季度 is the cumulative January–September figure.
            let count = chinese_digit(count)?;
            quarter_span(year, count)?;
            return Period::checked(year, 1, count * 3);
        }
        let quarter = quarter.strip_prefix('第').unwrap_or(quarter);
        return quarter_span(year, chinese_digit(quarter)?);
    }
    let months = strip_month_suffix(rest).ok_or(PeriodProblem::Unrecognized)?;
    match months.split_once(SPAN_SEPARATORS) {
        Some((start, end)) => {
            let start = strip_month_suffix(start).unwrap_or(start);
            let end = end.trim_start_matches(SPAN_SEPARATORS);
            Period::checked(year, month_number(start)?, month_number(end)?)
        }
        None => {
            let month = month_number(months)?;
            Period::checked(year, month, month)
        }
    }
}

fn strip_month_suffix(s: &str) -> Option<&str> {
    let s = s.strip_suffix('份').unwrap_or(s);
    s.strip_suffix('月')
}

fn quarter_span(year: i32, quarter: u8) -> Result<Period, PeriodProblem> {
    if !(1..=4).contains(&quarter) {
        return Err(PeriodProblem::QuarterOutOfRange { quarter });
    }
    let start = quarter * 3 - 2;
    Period::checked(year, start, start + 2)
}

fn one_digit(s: &str) -> Result<u8, PeriodProblem> {
    match s.as_bytes() {
        [d] if d.is_ascii_digit() => Ok(d - b'0'),
        _ => Err(PeriodProblem::Unrecognized),
    }
}

fn chinese_digit(s: &str) -> Result<u8, PeriodProblem> {
    match s {
        "一" => Ok(1),
        "二" => Ok(2),
        "三" => Ok(3),
        "四" => Ok(4),
        _ => one_digit(s),
    }
}

fn month_number(s: &str) -> Result<u8, PeriodProblem> {
    let month: u8 = match s.as_bytes() {
        [d] if d.is_ascii_digit() => d - b'0',
        [t, d] if t.is_ascii_digit() && d.is_ascii_digit() => (t - b'0') * 10 + (d - b'0'),
        _ => return Err(PeriodProblem::Unrecognized),
    };
    if (1..=12).contains(&month) {
        Ok(month)
    } else {
        Err(PeriodProblem::MonthOutOfRange { month })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn span(year: i32, start: u8, end: u8) -> Period {
        Period::new(year, start, end).unwrap()
    }

    #[test]
    fn parses_the_ascii_forms() {
        assert_eq!(p("2024"), span(2024, 1, 12));
        assert_eq!(p("2024-H1"), span(2024, 1, 6));
        assert_eq!(p("2024-H2"), span(2024, 7, 12));
        assert_eq!(p("2024-Q1"), span(2024, 1, 3));
        assert_eq!(p("2024-Q2"), span(2024, 4, 6));
        assert_eq!(p("2024-Q3"), span(2024, 7, 9));
        assert_eq!(p("2024-Q4"), span(2024, 10, 12));
        assert_eq!(p("2024-06"), span(2024, 6, 6));
        assert_eq!(p("2024-6"), span(2024, 6, 6));
        assert_eq!(p("2024-12"), span(2024, 12, 12));
        assert_eq!(p("2024-06-YTD"), span(2024, 1, 6));
        assert_eq!(p("2024-6-YTD"), span(2024, 1, 6));
        assert_eq!(p("2024-02..04"), span(2024, 2, 4));
        assert_eq!(p("2024-2..4"), span(2024, 2, 4));
        assert_eq!(p("2024-03..03"), span(2024, 3, 3));
    }

    #[test]
    fn parse_ignores_case_and_surrounding_whitespace() {
        assert_eq!(p("2024-h1"), span(2024, 1, 6));
        assert_eq!(p("2024-q3"), span(2024, 7, 9));
        assert_eq!(p("2024-06-ytd"), span(2024, 1, 6));
        assert_eq!(p("2024-06-Ytd"), span(2024, 1, 6));
        assert_eq!(p("  2024-Q2\t\n"), span(2024, 4, 6));
        assert_eq!("2014-H1".parse::<Period>().unwrap(), span(2014, 1, 6));
    }

    #[test]
    fn parses_chinese_spellings() {
        assert_eq!(p("2024年"), span(2024, 1, 12));
        assert_eq!(p("2024年度"), span(2024, 1, 12));
        assert_eq!(p("2024年全年"), span(2024, 1, 12));
        assert_eq!(p("2024年上半年"), span(2024, 1, 6));
        assert_eq!(p("2024年下半年"), span(2024, 7, 12));
        assert_eq!(p("2024年1-6月"), span(2024, 1, 6));
        assert_eq!(p("2024年1—6月"), span(2024, 1, 6));
        assert_eq!(p("2024年1–6月"), span(2024, 1, 6));
        assert_eq!(p("2024年1～6月"), span(2024, 1, 6));
        assert_eq!(p("2024年1月至6月"), span(2024, 1, 6));
        assert_eq!(p("2024年1-6月累计"), span(2024, 1, 6));
        assert_eq!(p("2024年3-5月"), span(2024, 3, 5));
        assert_eq!(p("2024年6月"), span(2024, 6, 6));
        assert_eq!(p("2024年06月"), span(2024, 6, 6));
        assert_eq!(p("2024年6月份"), span(2024, 6, 6));
        assert_eq!(p("2024 年 6 月"), span(2024, 6, 6));
        assert_eq!(p("2024年第二季度"), span(2024, 4, 6));
        assert_eq!(p("2024年第2季度"), span(2024, 4, 6));
        assert_eq!(p("2024年一季度"), span(2024, 1, 3));
        assert_eq!(p("2024年前三季度"), span(2024, 1, 9));
    }

    #[test]
    fn rejects_bad_spellings_with_the_problem_and_the_accepted_forms() {
        let cases = [
            ("24", PeriodProblem::Unrecognized),
            ("20245", PeriodProblem::Unrecognized),
            ("abc", PeriodProblem::Unrecognized),
            ("2024-", PeriodProblem::Unrecognized),
            ("2024/06", PeriodProblem::Unrecognized),
            ("2024-006", PeriodProblem::Unrecognized),
            ("2024-Q", PeriodProblem::Unrecognized),
            ("2024-H12", PeriodProblem::Unrecognized),
            ("2024-06-YTDX", PeriodProblem::Unrecognized),
            ("2024-13", PeriodProblem::MonthOutOfRange { month: 13 }),
            ("2024-00", PeriodProblem::MonthOutOfRange { month: 0 }),
            ("2024-Q5", PeriodProblem::QuarterOutOfRange { quarter: 5 }),
            ("2024-Q0", PeriodProblem::QuarterOutOfRange { quarter: 0 }),
            ("2024-H3", PeriodProblem::HalfOutOfRange { half: 3 }),
            ("2024-00-YTD", PeriodProblem::MonthOutOfRange { month: 0 }),
            ("2024-13-YTD", PeriodProblem::MonthOutOfRange { month: 13 }),
            (
                "2024-05..03",
                PeriodProblem::ReversedSpan { start: 5, end: 3 },
            ),
            ("1899", PeriodProblem::YearOutOfRange { year: 1899 }),
            ("2201-H1", PeriodProblem::YearOutOfRange { year: 2201 }),
            ("2024年13月", PeriodProblem::MonthOutOfRange { month: 13 }),
            (
                "2024年6-1月",
                PeriodProblem::ReversedSpan { start: 6, end: 1 },
            ),
            ("2024年第五季度", PeriodProblem::Unrecognized),
            (
                "2024年第5季度",
                PeriodProblem::QuarterOutOfRange { quarter: 5 },
            ),
            ("2024年中", PeriodProblem::Unrecognized),
        ];
        for (input, problem) in cases {
            let err = Period::parse(input).unwrap_err();
            assert_eq!(
                err,
                PeriodError::Invalid {
                    input: input.to_owned(),
                    problem
                },
                "{input}"
            );
            let message = err.to_string();
            assert!(message.contains(input), "{message}");
            assert!(message.contains("2024-06-YTD"), "{message}");
        }
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            Period::parse("2024-13").unwrap_err().to_string(),
            format!(
                "invalid period '2024-13': month 13 does not exist; expected a month from 1 to 12; \
                 accepted forms: {ACCEPTED_FORMS}"
            )
        );
        assert!(
            Period::parse("2024-Q5")
                .unwrap_err()
                .to_string()
                .contains("quarter Q5 does not exist; expected Q1 to Q4")
        );
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(Period::parse(""), Err(PeriodError::Empty));
        assert_eq!(Period::parse("   "), Err(PeriodError::Empty));
        assert!(PeriodError::Empty.to_string().contains("missing"));
    }

    #[test]
    fn new_checks_its_parts() {
        assert_eq!(
            Period::new(1899, 1, 12),
            Err(PeriodError::Span(PeriodProblem::YearOutOfRange {
                year: 1899
            }))
        );
        assert!(Period::new(1900, 1, 12).is_ok());
        assert!(Period::new(2200, 12, 12).is_ok());
        assert!(Period::new(2201, 1, 1).is_err());
        assert_eq!(
            Period::new(2024, 0, 3),
            Err(PeriodError::Span(PeriodProblem::MonthOutOfRange {
                month: 0
            }))
        );
        assert_eq!(
            Period::new(2024, 3, 13),
            Err(PeriodError::Span(PeriodProblem::MonthOutOfRange {
                month: 13
            }))
        );
        assert_eq!(
            Period::new(2024, 4, 3),
            Err(PeriodError::Span(PeriodProblem::ReversedSpan {
                start: 4,
                end: 3
            }))
        );
        assert_eq!(
            Period::new(2024, 4, 3).unwrap_err().to_string(),
            "invalid period: the span starts in month 4 but ends in month 3; \
             the start must not be after the end"
        );
    }

    #[test]
    fn convenience_constructors() {
        assert_eq!(Period::full_year(2012).unwrap(), span(2012, 1, 12));
        assert_eq!(Period::month(2012, 6).unwrap(), span(2012, 6, 6));
        assert_eq!(Period::year_to_date(2012, 9).unwrap(), span(2012, 1, 9));
        assert!(Period::month(2012, 13).is_err());
    }

    #[test]
    fn canonical_prefers_the_shortest_conventional_name() {
        let cases = [
            ("2024", "2024"),
            ("2024-12-YTD", "2024"),
            ("2024-H1", "2024-H1"),
            ("2024-06-YTD", "2024-H1"),
            ("2024年1-6月", "2024-H1"),
            ("2024-H2", "2024-H2"),
            ("2024-03-YTD", "2024-Q1"),
            ("2024-Q2", "2024-Q2"),
            ("2024-07..09", "2024-Q3"),
            ("2024-Q4", "2024-Q4"),
            ("2024-01-YTD", "2024-01"),
            ("2024-6", "2024-06"),
            ("2024-09-YTD", "2024-09-YTD"),
            ("2024-02-YTD", "2024-02-YTD"),
            ("2024-02..04", "2024-02..04"),
            ("2024-7..12", "2024-H2"),
            ("2024-10..11", "2024-10..11"),
        ];
        for (input, canonical) in cases {
            assert_eq!(p(input).canonical(), canonical, "{input}");
            assert_eq!(p(input).to_string(), canonical, "{input}");
        }
        assert_eq!(p("2024-H1"), p("2024-06-YTD"));
    }

    #[test]
    fn every_span_round_trips_through_its_canonical_form() {
        for start in 1..=12 {
            for end in start..=12 {
                let period = span(2024, start, end);
                assert_eq!(p(&period.canonical()), period, "{period}");
            }
        }
    }

    #[test]
    fn accessors_and_ordinals() {
        let h1 = p("2024-H1");
        assert_eq!(h1.year(), 2024);
        assert_eq!(h1.start_month(), 1);
        assert_eq!(h1.end_month(), 6);
        assert_eq!(h1.months(), 6);
        assert_eq!(p("2024").months(), 12);
        assert_eq!(p("2024-05").months(), 1);
        assert_eq!(h1.start_ordinal(), 2024 * 12);
        assert_eq!(h1.end_ordinal(), 2024 * 12 + 5);
        assert_eq!(p("2023-12").end_ordinal() + 1, p("2024-01").start_ordinal());
        assert!(p("2024").is_full_year());
        assert!(!h1.is_full_year());
    }

    #[test]
    fn contains_compares_month_ranges() {
        let year = p("2024");
        assert!(year.contains(&p("2024-H1")));
        assert!(year.contains(&year));
        assert!(p("2024-H1").contains(&p("2024-Q2")));
        assert!(p("2024-H1").contains(&p("2024-06")));
        assert!(!p("2024-H1").contains(&p("2024-07")));
        assert!(!p("2024-Q2").contains(&p("2024-H1")));
        assert!(!year.contains(&p("2023-12")));
        assert!(!year.contains(&p("2025-01")));
    }

    #[test]
    fn ordering_is_by_year_then_start_then_end() {
        assert!(p("2023") < p("2024-01"));
        assert!(p("2024-H1") < p("2024-H2"));
        assert!(p("2024-01") < p("2024-H1"));
    }

    #[test]
    fn year_on_year_base_keeps_the_span() {
        assert_eq!(p("2014-H1").year_earlier(), p("2013-H1"));
        assert_eq!(p("2024-02..04").year_earlier(), p("2023-02..04"));
        assert_eq!(p("2012").shift_years(3), p("2015"));
        assert_eq!(p("2012-Q3").shift_years(-2), p("2010-Q3"));
        assert_eq!(p("2012-Q3").shift_years(0), p("2012-Q3"));
        // Leaving the parseable range still yields a usable key rather than an error.
        assert_eq!(p("1900").year_earlier().year(), 1899);
    }

    #[test]
    fn elapsed_share_measures_time_gone() {
        let year = p("2012");
        assert_eq!(year.elapsed_share(&p("2012-H1")), 0.5);
        assert_eq!(year.elapsed_share(&p("2012-06")), 0.5);
        assert_eq!(year.elapsed_share(&p("2012-Q1")), 0.25);
        assert_eq!(year.elapsed_share(&p("2012")), 1.0);
        assert_eq!(year.elapsed_share(&p("2013-Q1")), 1.0);
        assert_eq!(year.elapsed_share(&p("2011")), 0.0);
        assert_eq!(year.elapsed_share(&p("2011-12")), 0.0);
        assert_eq!(p("2012-H2").elapsed_share(&p("2012-09")), 0.5);
        assert_eq!(p("2012-H2").elapsed_share(&p("2012-H1")), 0.0);
        assert_eq!(p("2012-03").elapsed_share(&p("2012-03")), 1.0);
    }
}
