//! MetricsService: metric tables for cohorts, series, target progress and tier counts, cached
//! under keys that carry the data version.

mod cluster;
mod compute;
mod screening;

pub(crate) use compute::unknown_in_cohort;

use std::time::Duration;

use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use zonerank_api::{
    convert::{WireEnumError, enum_value},
    v1::{self, metrics_service_server::MetricsService},
};
use zonerank_cache::{Cache, CacheKey};
use zonerank_domain::{
    catalog::Direction,
    entity::{EntityKind, ZoneKind},
    metric::{self, Metric, Missing, TargetStatus},
    period::Period,
    unit::Unit,
};
use zonerank_storage::{CohortQuery, Store};

pub use compute::{Catalog, Computed, compute, compute_within};

use crate::{
    convert::{self, timestamp_micros},
    error::ServiceError,
    ingestion::entity_ref,
    paging::{decode_page_token, encode_page_token, page_size},
};

/// Finished tables are kept this long; a new data version makes them unreachable sooner.
const CACHE_TTL: Duration = Duration::from_secs(3600);

/// The stream StreamMetrics answers with.
type MetricsStream = std::pin::Pin<
    Box<
        dyn tokio_stream::Stream<Item = Result<v1::StreamMetricsResponse, Status>> + Send + 'static,
    >,
>;

/// Rows per streamed message unless the request says otherwise.
const DEFAULT_CHUNK_ROWS: usize = 10_000;

/// The metrics service over a store and a cache.
#[derive(Clone, Debug)]
pub struct Metrics {
    store: Store,
    cache: Cache,
}

impl Metrics {
    /// The service over `store`, caching in `cache`.
    pub fn new(store: Store, cache: Cache) -> Metrics {
        Metrics { store, cache }
    }
}

/// The storage form of a wire cohort; an unset selector means every zone.
pub fn cohort_query(cohort: Option<&v1::CohortSelector>) -> Result<CohortQuery, ServiceError> {
    let Some(c) = cohort else {
        return Ok(CohortQuery {
            kind: Some(EntityKind::Zone),
            ..Default::default()
        });
    };
    let zone_kind = match enum_value::<v1::ZoneKind, ZoneKind>(c.zone_kind) {
        Ok(kind) => Some(kind),
        Err(WireEnumError::Unspecified { .. }) => None,
        Err(WireEnumError::Undefined { .. }) => {
            return Err(ServiceError::not_found(
                "zonerank.v1.ZoneKind",
                c.zone_kind.to_string(),
                format!("zone kind {}", c.zone_kind),
            ));
        }
    };
    Ok(CohortQuery {
        kind: Some(convert::entity_kind(c.entity_kind).unwrap_or(EntityKind::Zone)),
        region_code: Some(c.region_code.trim().to_string()).filter(|s| !s.is_empty()),
        zone_kind,
        tags: c.tags.iter().map(|t| t.trim().to_string()).collect(),
        ids: c.ids.iter().map(|t| t.trim().to_string()).collect(),
    })
}

fn period(field: &str, text: &str) -> Result<Period, ServiceError> {
    if text.trim().is_empty() {
        return Err(ServiceError::invalid(
            field,
            "must be set, e.g. 2024 or 2024-H1",
        ));
    }
    Period::parse(text).map_err(|e| ServiceError::invalid(field, e))
}

fn direction_to_wire(direction: Direction) -> i32 {
    match direction {
        Direction::HigherIsBetter => v1::Direction::HigherIsBetter as i32,
        Direction::LowerIsBetter => v1::Direction::LowerIsBetter as i32,
    }
}

/// The column header of a metric.
pub fn column(metric: &Metric) -> v1::MetricColumn {
    v1::MetricColumn {
        expression: metric.text.clone(),
        unit: metric.unit.clone(),
        direction: direction_to_wire(metric.direction),
    }
}

/// The wire form of a value or its reason.
pub fn value_to_wire(value: &Result<f64, Missing>) -> v1::MetricValue {
    v1::MetricValue {
        result: Some(match value {
            Ok(v) => v1::metric_value::Result::Value(*v),
            Err(missing) => v1::metric_value::Result::MissingReason(missing.to_string()),
        }),
    }
}

/// The wire rows of `computed`'s members in `range`, at its `period_index`th period.
fn rows_to_wire(
    computed: &Computed,
    period_index: usize,
    range: std::ops::Range<usize>,
) -> Vec<v1::MetricRow> {
    computed.members[range.clone()]
        .iter()
        .zip(&computed.values[range])
        .map(|(m, values)| v1::MetricRow {
            entity: Some(v1::EntityRef {
                kind: convert::entity_kind_to_wire(m.kind) as i32,
                id: m.id.clone(),
            }),
            values: values
                .get(period_index)
                .map(|vs| vs.iter().map(value_to_wire).collect())
                .unwrap_or_default(),
            name: m.name.clone(),
            region_code: m.region_code.clone().unwrap_or_default(),
            tags: m.tags.clone(),
        })
        .collect()
}

impl Metrics {
    /// The metrics of one period over a cohort: the table's header (no rows yet) and the
    /// computed values, which the caller turns into wire rows all at once or chunk by chunk.
    async fn computed(
        &self,
        call: &crate::budget::Call,
        metrics: &[String],
        period_text: &str,
        cohort: Option<&v1::CohortSelector>,
        as_of: Option<&prost_types::Timestamp>,
    ) -> Result<(v1::MetricTable, Computed), ServiceError> {
        let period = period("period", period_text)?;
        let cohort = cohort_query(cohort)?;
        let catalog = Catalog::load(&self.store).await?;
        let parsed = catalog.parse_all("metrics", metrics)?;
        let data_version = self.store.data_version().await?;
        let computed = compute_within(
            call,
            &self.store,
            &catalog,
            &parsed,
            &[period],
            &cohort,
            as_of.map(timestamp_micros),
        )
        .await?;
        let table = v1::MetricTable {
            metrics: parsed.iter().map(column).collect(),
            rows: Vec::new(),
            period: period.canonical(),
            data_version,
        };
        Ok((table, computed))
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn list_metrics(
        &self,
        request: Request<v1::ListMetricsRequest>,
    ) -> Result<Response<v1::ListMetricsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 100, 1000)? as usize;
        let after = decode_page_token(&request.page_token)?;
        let mut definitions: Vec<v1::MetricDefinition> = metric::metric_catalog()
            .into_iter()
            .map(|d| v1::MetricDefinition {
                name: d.name.to_string(),
                formula: d.formula.to_string(),
                unit: d.unit.to_string(),
                direction: d.direction.map_or(0, direction_to_wire),
                description: d.description.to_string(),
            })
            .collect();
        // Every indicator is a metric too.
        let catalog = self.store.catalog().await.map_err(ServiceError::from)?;
        definitions.extend(catalog.entries().map(|(i, _)| v1::MetricDefinition {
            formula: format!("{} ({})", i.code, i.name_zh),
            unit: i.unit.symbol.to_string(),
            direction: direction_to_wire(i.direction),
            description: i.name_en.clone(),
            name: i.code.clone(),
        }));
        definitions.sort_by(|a, b| a.name.cmp(&b.name));
        let mut page: Vec<_> = definitions
            .into_iter()
            .filter(|d| after.as_ref().is_none_or(|a| d.name.as_str() > a.as_str()))
            .take(limit + 1)
            .collect();
        let next_page_token = if page.len() > limit {
            page.truncate(limit);
            page.last()
                .map(|d| encode_page_token(&d.name))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListMetricsResponse {
            metrics: page,
            next_page_token,
        }))
    }

    async fn compute_metrics(
        &self,
        request: Request<v1::ComputeMetricsRequest>,
    ) -> Result<Response<v1::ComputeMetricsResponse>, Status> {
        let call = crate::budget::Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        let data_version = self
            .store
            .data_version()
            .await
            .map_err(ServiceError::from)?;
        let key = CacheKey::new(
            "metrics.compute",
            data_version as u64,
            &request.encode_to_vec(),
        );
        let (bytes, cached) = self
            .cache
            .get_or_compute(&key, CACHE_TTL, || async {
                let (mut table, computed) = self
                    .computed(
                        &call,
                        &request.metrics,
                        &request.period,
                        request.cohort.as_ref(),
                        request.as_of.as_ref(),
                    )
                    .await?;
                table.rows = rows_to_wire(&computed, 0, 0..computed.members.len());
                Ok::<_, ServiceError>(table.encode_to_vec())
            })
            .await?;
        let table = v1::MetricTable::decode(bytes.as_slice())
            .map_err(|e| ServiceError::Internal(format!("cached table does not decode: {e}")))?;
        Ok(Response::new(v1::ComputeMetricsResponse {
            table: Some(table),
            cached,
        }))
    }

    async fn stream_metrics(
        &self,
        request: Request<v1::StreamMetricsRequest>,
    ) -> Result<Response<MetricsStream>, Status> {
        let call = crate::budget::Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        let chunk = match request.chunk_size {
            n if n < 0 => {
                return Err(ServiceError::invalid("chunk_size", "must not be negative").into());
            }
            0 => DEFAULT_CHUNK_ROWS,
            n => n as usize,
        };
        let (table, computed) = self
            .computed(
                &call,
                &request.metrics,
                &request.period,
                request.cohort.as_ref(),
                request.as_of.as_ref(),
            )
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut header = Some(table.metrics);
            // Wire rows are made a chunk at a time: a national table never exists twice.
            let (mut at, count) = (0, computed.members.len());
            // An empty cohort still answers one message with the header.
            while header.is_some() || at < count {
                let end = count.min(at + chunk);
                let message = v1::StreamMetricsResponse {
                    metrics: header.take().unwrap_or_default(),
                    rows: rows_to_wire(&computed, 0, at..end),
                    data_version: table.data_version,
                };
                at = end;
                // The client went away: stop computing messages nobody reads.
                if tx.send(Ok(message)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_metric_series(
        &self,
        request: Request<v1::GetMetricSeriesRequest>,
    ) -> Result<Response<v1::GetMetricSeriesResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let (kind, id) = entity_ref("entity", request.entity.as_ref())?;
        let from = period("from_period", &request.from_period)?;
        let to = if request.to_period.trim().is_empty() {
            from
        } else {
            period("to_period", &request.to_period)?
        };
        if to.end_ordinal() < from.start_ordinal() {
            return Err(
                ServiceError::invalid("to_period", "ends before from_period starts").into(),
            );
        }
        // Periods of from's shape, stepping by its length, while they end by `to`.
        let mut periods = Vec::new();
        let mut p = from;
        while p.end_ordinal() <= to.end_ordinal() && periods.len() < 1200 {
            periods.push(p);
            p = step(&p);
        }
        let catalog = Catalog::load(&self.store).await?;
        let metric = catalog.parse("metric", &request.metric)?;
        let cohort = CohortQuery {
            kind: Some(kind),
            ids: vec![id.clone()],
            ..Default::default()
        };
        let computed = compute(
            &self.store,
            &catalog,
            std::slice::from_ref(&metric),
            &periods,
            &cohort,
            request.as_of.as_ref().map(timestamp_micros),
        )
        .await?;
        let Some(values) = computed.values.first() else {
            return Err(ServiceError::not_found(
                crate::convert::resource_type(kind),
                id.clone(),
                format!("{} {id:?}", kind.as_str().to_lowercase()),
            )
            .into());
        };
        Ok(Response::new(v1::GetMetricSeriesResponse {
            metric: Some(column(&metric)),
            points: periods
                .iter()
                .zip(values)
                .map(|(p, v)| v1::MetricPoint {
                    period: p.canonical(),
                    value: Some(value_to_wire(&v[0])),
                })
                .collect(),
        }))
    }

    async fn get_target_progress(
        &self,
        request: Request<v1::GetTargetProgressRequest>,
    ) -> Result<Response<v1::GetTargetProgressResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let (kind, id) = entity_ref("entity", request.entity.as_ref())?;
        let through = period("through_period", &request.through_period)?;
        let catalog = Catalog::load(&self.store).await?;
        let targets = self
            .store
            .targets(kind, &id, None)
            .await
            .map_err(ServiceError::from)?;
        let cohort = CohortQuery {
            kind: Some(kind),
            ids: vec![id.clone()],
            ..Default::default()
        };
        let mut progress = Vec::with_capacity(targets.len());
        for target in targets {
            let Ok(target_period) = Period::parse(&target.period) else {
                continue;
            };
            let metric = catalog.parse("targets.metric", &target.metric)?;
            let evaluated = metric::evaluation_period(&target_period, &through);
            let elapsed = target_period.elapsed_share(&through);
            let actual = if through.end_ordinal() < target_period.start_ordinal() {
                Err(Missing::NoData {
                    indicator: metric.text.clone(),
                    period: target_period,
                })
            } else {
                compute(
                    &self.store,
                    &catalog,
                    std::slice::from_ref(&metric),
                    &[evaluated],
                    &cohort,
                    request.as_of.as_ref().map(timestamp_micros),
                )
                .await?
                .values
                .first()
                .map(|v| v[0][0].clone())
                .unwrap_or(Err(Missing::NoData {
                    indicator: metric.text.clone(),
                    period: evaluated,
                }))
            };
            let comparator = target.comparator;
            let goal = in_metric_unit(target.value, &target.unit, &metric.unit);
            let result = metric::progress(
                comparator,
                goal,
                actual.as_ref().ok().copied(),
                elapsed,
                metric.cumulative,
            );
            progress.push(v1::TargetProgress {
                target: Some(crate::ingestion::target_to_wire(target)),
                actual: Some(value_to_wire(&actual)),
                attainment: result.attainment.unwrap_or(0.0),
                elapsed_share: result.elapsed_share,
                status: match result.status {
                    TargetStatus::Achieved => v1::TargetStatus::Achieved,
                    TargetStatus::OnTrack => v1::TargetStatus::OnTrack,
                    TargetStatus::Behind => v1::TargetStatus::Behind,
                    TargetStatus::NoData => v1::TargetStatus::NoData,
                } as i32,
            });
        }
        Ok(Response::new(v1::GetTargetProgressResponse { progress }))
    }

    async fn upsert_screening_rule(
        &self,
        request: Request<v1::UpsertScreeningRuleRequest>,
    ) -> Result<Response<v1::UpsertScreeningRuleResponse>, Status> {
        let caller = crate::auth::Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        Ok(Response::new(
            screening::upsert(&self.store, &caller, request).await?,
        ))
    }

    async fn list_screening_rules(
        &self,
        request: Request<v1::ListScreeningRulesRequest>,
    ) -> Result<Response<v1::ListScreeningRulesResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        Ok(Response::new(screening::list(&self.store, request).await?))
    }

    async fn screen_zones(
        &self,
        request: Request<v1::ScreenZonesRequest>,
    ) -> Result<Response<v1::ScreenZonesResponse>, Status> {
        let call = crate::budget::Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        Ok(Response::new(
            screening::screen(&self.store, &call, request).await?,
        ))
    }

    async fn get_cluster_strength(
        &self,
        request: Request<v1::GetClusterStrengthRequest>,
    ) -> Result<Response<v1::GetClusterStrengthResponse>, Status> {
        let call = crate::budget::Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        Ok(Response::new(
            cluster::strength(&self.store, &call, request).await?,
        ))
    }

    async fn get_tier_counts(
        &self,
        request: Request<v1::GetTierCountsRequest>,
    ) -> Result<Response<v1::GetTierCountsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let kind = match convert::entity_kind(request.entity_kind) {
            None => EntityKind::Zone,
            Some(k @ (EntityKind::Zone | EntityKind::Cluster)) => k,
            Some(_) => {
                return Err(
                    ServiceError::invalid("entity_kind", "tiers count zones or clusters").into(),
                );
            }
        };
        let period = period("period", &request.period)?;
        let thresholds = if request.thresholds.is_empty() {
            metric::DEFAULT_TIERS_WAN_YUAN.to_vec()
        } else {
            request.thresholds.clone()
        };
        let catalog = Catalog::load(&self.store).await?;
        let revenue = catalog.parse("metric", "revenue")?;
        let root = Some(request.region_code.trim().to_string()).filter(|r| !r.is_empty());
        let cohort = CohortQuery {
            kind: Some(kind),
            region_code: root.clone(),
            ..Default::default()
        };
        let computed = compute(
            &self.store,
            &catalog,
            std::slice::from_ref(&revenue),
            &[period],
            &cohort,
            request.as_of.as_ref().map(timestamp_micros),
        )
        .await?;
        // A zone counts for its own region and every region above it.
        let tree = self.store.region_tree().await.map_err(ServiceError::from)?;
        let within = root.as_deref().map(|root| tree.subtree(root));
        let mut values_by_region: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for (member, values) in computed.members.iter().zip(&computed.values) {
            let Ok(value) = values[0][0] else { continue };
            let Some(region) = &member.region_code else {
                continue;
            };
            for code in tree.ancestors(region) {
                if within.as_ref().is_none_or(|w| w.contains(code)) {
                    values_by_region
                        .entry(code.to_string())
                        .or_default()
                        .push(value);
                }
            }
        }
        Ok(Response::new(v1::GetTierCountsResponse {
            regions: values_by_region
                .into_iter()
                .map(|(region_code, values)| v1::RegionTierCounts {
                    tiers: thresholds
                        .iter()
                        .zip(metric::tier_counts(&values, &thresholds))
                        .map(|(&threshold, count)| v1::TierCount {
                            threshold,
                            count: count as i64,
                        })
                        .collect(),
                    region_code,
                })
                .collect(),
        }))
    }
}

/// The next period of the same length.
fn step(p: &Period) -> Period {
    let months = p.months() as i64;
    let start = p.start_ordinal() + months;
    let end = p.end_ordinal() + months;
    let year = start.div_euclid(12) as i32;
    if end.div_euclid(12) as i32 != year {
        // A span that would cross a year boundary restarts at the next January.
        return Period::new(year + 1, 1, months as u8).unwrap_or(p.shift_years(1));
    }
    Period::new(
        year,
        (start.rem_euclid(12) + 1) as u8,
        (end.rem_euclid(12) + 1) as u8,
    )
    .unwrap_or(p.shift_years(1))
}

/// A target value given in `unit`, in the metric's unit when both are known units of one
/// dimension (a 900亿元 target compared with a figure in 万元).
fn in_metric_unit(value: f64, unit: &str, metric_unit: &str) -> f64 {
    match (Unit::parse(unit), Unit::parse(metric_unit)) {
        (Ok(from), Ok(to)) if from.dimension == to.dimension => {
            to.from_canonical(from.to_canonical(value))
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_step_by_the_span_length() {
        let p = |s: &str| Period::parse(s).unwrap();
        assert_eq!(step(&p("2012")), p("2013"));
        assert_eq!(step(&p("2012-H1")), p("2012-H2"));
        assert_eq!(step(&p("2012-H2")), p("2013-H1"));
        assert_eq!(step(&p("2012-Q4")), p("2013-Q1"));
        assert_eq!(step(&p("2012-12")), p("2013-01"));
    }

    #[test]
    fn targets_in_yi_compare_with_figures_in_wan() {
        assert_eq!(in_metric_unit(900.0, "亿元", "万元"), 9_000_000.0);
        assert_eq!(in_metric_unit(40.0, "%", "%"), 40.0);
        assert_eq!(in_metric_unit(15.0, "万元/亩", "万元/亩"), 15.0);
    }
}
