//! Ranking: composite scores over a cohort. Columnar: every criterion is one
//! column of values over the cohort, and the inner loops run over plain slices.

pub mod aggregate;
pub mod engine;
pub mod explain;
pub mod groups;
pub mod improved;
pub mod normalize;
pub mod outcome;
pub mod robustness;
mod scale;
pub mod scheme;
pub mod weighting;

/// How raw criterion values become comparable scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Normalization {
    /// (x − min) ÷ (max − min); a constant column is 1.
    MinMax,
    /// (x − mean) ÷ standard deviation.
    ZScore,
    /// 功效系数: 60 + 40 × min-max.
    Efficacy,
    /// x ÷ ‖x‖ (lower is better: 1 − x ÷ ‖x‖).
    Vector,
    /// x ÷ benchmark, the benchmark a fixed value or the cohort mean.
    BenchmarkRatio,
    /// The share of the cohort at or below the value.
    PercentileRank,
}

/// How criterion weights are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weighting {
    /// As the scheme gives them (normalized to sum 1).
    Fixed,
    /// 1 ÷ criteria.
    Equal,
    /// Shannon entropy of the raw values as proportions.
    Entropy,
    /// CRITIC: contrast × conflict.
    Critic,
}

/// How weighted, normalized values become one score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregation {
    /// Σ w × n.
    WeightedSum,
    /// Π n^w.
    GeometricMean,
    /// Relative closeness to the ideal solution.
    Topsis,
}

/// What happens to an entity missing a criterion's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MissingPolicy {
    /// The entity is left out of the ranking (and reported).
    Exclude,
    /// The criterion is scored as the cohort's worst.
    Worst,
    /// The criterion is scored as the cohort's mean score.
    CohortMean,
}

/// The file formats a stored ranking run is exported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    /// Comma-separated values, UTF-8 with a byte-order mark.
    Csv,
    /// An Excel workbook.
    Xlsx,
    /// One self-contained HTML page.
    Html,
}

impl ReportFormat {
    /// The file name extension, e.g. "xlsx".
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Html => "html",
        }
    }

    /// The media type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ReportFormat::Html => "text/html; charset=utf-8",
        }
    }
}
