//! Metrics: expressions over indicators, their evaluation with a reason for every missing
//! value, the in-memory dataset they are evaluated over, target progress and scale tiers.

mod dataset;
mod eval;
mod expr;
mod sign;
mod target;
mod tier;

pub use dataset::Dataset;
pub use eval::{
    EntityIdx, MetricData, Missing, ProjectFigures, Requirements, evaluate, evaluate_expr,
    requirements,
};
pub use expr::{
    Expr, Function, LAND_AREA, MAX_CAGR_YEARS, MAX_DEPTH, Metric, MetricDefinition, MetricError,
    NamedMetric, metric_catalog, parse_metric,
};
pub use sign::negative_part;
pub use target::{Comparator, Progress, TargetStatus, evaluation_period, progress};
pub use tier::{DEFAULT_TIERS_WAN_YUAN, tier_counts};
