//! IngestionService: reference data, the indicator catalog, observations and targets.

pub mod csv;
mod mask;
pub mod quality;
mod reference;
mod removal;
pub mod rows;

pub use reference::target_to_wire;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use zonerank_api::v1::{self, ingestion_service_server::IngestionService};
use zonerank_domain::{
    entity::{EntityKind, validate_id},
    period::Period,
    quality::QualityConfig,
};
use zonerank_storage::{ObservationPosition, ObservationQuery, Store, UpsertCounts};

use crate::{
    auth::Caller,
    convert::{self, micros_timestamp, timestamp_micros},
    error::ServiceError,
    ingestion::rows::IncomingObservation,
    paging::{decode_key_token, decode_page_token, encode_key_token, encode_page_token, page_size},
};

/// The ingestion service over a store.
#[derive(Clone, Debug)]
pub struct Ingestion {
    store: Store,
    quality: std::sync::Arc<QualityConfig>,
}

impl Ingestion {
    /// The service over `store`, with the default data-quality rules.
    pub fn new(store: Store) -> Ingestion {
        Ingestion::with_quality(store, QualityConfig::default())
    }

    /// The service over `store`, running the data-quality rules as `quality` sets them.
    pub fn with_quality(store: Store, quality: QualityConfig) -> Ingestion {
        Ingestion {
            store,
            quality: std::sync::Arc::new(quality),
        }
    }
}

/// The wire form of an incoming observation at stream position `row`.
fn incoming_from_wire(row: i64, o: v1::Observation) -> IncomingObservation {
    let entity = o.entity.unwrap_or_default();
    IncomingObservation {
        row,
        kind: convert::entity_kind(entity.kind)
            .ok_or_else(|| "entity.kind must be set (ENTITY_KIND_ZONE, …)".to_string()),
        entity_id: entity.id,
        indicator: o.indicator,
        period: o.period,
        value: Ok(o.value),
        unit: o.unit,
        source: o.source,
    }
}

/// The incoming form of a CSV row.
pub fn incoming_from_csv(row: csv::CsvRow, default_source: &str) -> IncomingObservation {
    IncomingObservation {
        row: row.line,
        kind: EntityKind::parse(&row.entity_kind).map_err(|e| e.to_string()),
        entity_id: row.entity_id,
        indicator: row.indicator,
        period: row.period,
        value: csv::parse_number(&row.value),
        unit: row.unit,
        source: if row.source.is_empty() {
            default_source.to_string()
        } else {
            row.source
        },
    }
}

fn parse_optional_period(field: &str, text: &str) -> Result<Option<Period>, ServiceError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Period::parse(text)
        .map(Some)
        .map_err(|e| ServiceError::invalid(field, e))
}

/// The wire form of what an upsert did (or would do), logged on the way out.
fn upsert_counts(what: &str, counts: UpsertCounts, dry_run: bool) -> Option<v1::UpsertCounts> {
    tracing::info!(
        what,
        created = counts.created,
        updated = counts.updated,
        unchanged = counts.unchanged,
        dry_run,
        "upserted"
    );
    Some(v1::UpsertCounts {
        created: counts.created,
        updated: counts.updated,
        unchanged: counts.unchanged,
    })
}

/// A validated entity reference.
pub(crate) fn entity_ref(
    field: &str,
    entity: Option<&v1::EntityRef>,
) -> Result<(EntityKind, String), ServiceError> {
    let entity = entity.ok_or_else(|| ServiceError::invalid(field, "must be set"))?;
    let kind = convert::entity_kind(entity.kind)
        .ok_or_else(|| ServiceError::invalid(format!("{field}.kind"), "must be set"))?;
    let id = validate_id(kind, &entity.id)
        .map_err(|e| ServiceError::invalid(format!("{field}.id"), e))?;
    Ok((kind, id))
}

#[tonic::async_trait]
impl IngestionService for Ingestion {
    async fn upsert_regions(
        &self,
        request: Request<v1::UpsertRegionsRequest>,
    ) -> Result<Response<v1::UpsertRegionsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts = reference::upsert_regions(
            &self.store,
            &caller,
            request.regions,
            request.update_mask.as_ref(),
            dry_run,
        )
        .await?;
        Ok(Response::new(v1::UpsertRegionsResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("regions", counts, dry_run),
        }))
    }

    async fn upsert_zones(
        &self,
        request: Request<v1::UpsertZonesRequest>,
    ) -> Result<Response<v1::UpsertZonesResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts = reference::upsert_zones(
            &self.store,
            &caller,
            request.zones,
            request.update_mask.as_ref(),
            dry_run,
        )
        .await?;
        Ok(Response::new(v1::UpsertZonesResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("zones", counts, dry_run),
        }))
    }

    async fn upsert_enterprises(
        &self,
        request: Request<v1::UpsertEnterprisesRequest>,
    ) -> Result<Response<v1::UpsertEnterprisesResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts = reference::upsert_enterprises(
            &self.store,
            &caller,
            request.enterprises,
            request.update_mask.as_ref(),
            dry_run,
        )
        .await?;
        Ok(Response::new(v1::UpsertEnterprisesResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("enterprises", counts, dry_run),
        }))
    }

    async fn upsert_clusters(
        &self,
        request: Request<v1::UpsertClustersRequest>,
    ) -> Result<Response<v1::UpsertClustersResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts =
            reference::upsert_clusters(&self.store, &caller, request.clusters, dry_run).await?;
        Ok(Response::new(v1::UpsertClustersResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("clusters", counts, dry_run),
        }))
    }

    async fn upsert_projects(
        &self,
        request: Request<v1::UpsertProjectsRequest>,
    ) -> Result<Response<v1::UpsertProjectsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts =
            reference::upsert_projects(&self.store, &caller, request.projects, dry_run).await?;
        Ok(Response::new(v1::UpsertProjectsResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("projects", counts, dry_run),
        }))
    }

    async fn upsert_indicators(
        &self,
        request: Request<v1::UpsertIndicatorsRequest>,
    ) -> Result<Response<v1::UpsertIndicatorsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts =
            reference::upsert_indicators(&self.store, &caller, request.indicators, dry_run).await?;
        Ok(Response::new(v1::UpsertIndicatorsResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("indicators", counts, dry_run),
        }))
    }

    async fn list_indicators(
        &self,
        request: Request<v1::ListIndicatorsRequest>,
    ) -> Result<Response<v1::ListIndicatorsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 100, 1000)? as usize;
        let after = decode_page_token(&request.page_token)?;
        // Page tokens compare bytes: the catalog is in that order, whatever the collation.
        let catalog = self.store.catalog().await.map_err(ServiceError::from)?;
        let mut page: Vec<_> = catalog
            .entries()
            .filter(|(i, _)| after.as_ref().is_none_or(|a| i.code.as_str() > a.as_str()))
            .take(limit + 1)
            .collect();
        let next_page_token = if page.len() > limit {
            page.truncate(limit);
            page.last()
                .map(|(i, _)| encode_page_token(&i.code))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListIndicatorsResponse {
            indicators: page
                .into_iter()
                .map(|(i, builtin)| convert::indicator_to_wire(i, builtin))
                .collect(),
            next_page_token,
        }))
    }

    async fn list_regions(
        &self,
        request: Request<v1::ListRegionsRequest>,
    ) -> Result<Response<v1::ListRegionsResponse>, Status> {
        Ok(Response::new(
            reference::list_regions(&self.store, crate::wire_check::checked(request)?).await?,
        ))
    }

    async fn list_zones(
        &self,
        request: Request<v1::ListZonesRequest>,
    ) -> Result<Response<v1::ListZonesResponse>, Status> {
        Ok(Response::new(
            reference::list_zones(&self.store, crate::wire_check::checked(request)?).await?,
        ))
    }

    async fn ingest_observations(
        &self,
        request: Request<Streaming<v1::IngestObservationsRequest>>,
    ) -> Result<Response<v1::IngestReport>, Status> {
        let caller = Caller::of(&request);
        let mut stream = request.into_inner();
        let method = crate::audit::ingestion_method("IngestObservations");
        // All or nothing without holding the stream: rows are checked and staged a chunk at a
        // time in the one transaction that writes them when the stream ends.
        let mut ingest: Option<rows::Ingest<'_>> = None;
        let mut pending: Vec<IncomingObservation> = Vec::new();
        let mut position = 0i64;
        let mut index = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            crate::wire_check::check_batch(&batch, index)?;
            index += 1;
            let ingest = match &mut ingest {
                Some(ingest) => {
                    // The flags are read from the first batch; a dry run asked for later must
                    // not turn into a write.
                    if batch.dry_run && !ingest.flags().dry_run {
                        return Err(ServiceError::invalid(
                            "dry_run",
                            "set on a later batch only; set it on the first batch of the stream",
                        )
                        .into());
                    }
                    ingest
                }
                None => ingest.insert(
                    rows::Ingest::begin(
                        &self.store,
                        &caller,
                        &method,
                        rows::IngestFlags {
                            allow_partial: batch.allow_partial,
                            dry_run: batch.dry_run,
                            strict: batch.strict,
                        },
                        &self.quality,
                    )
                    .await?,
                ),
            };
            for o in batch.observations {
                position += 1;
                let row = if o.row > 0 { o.row } else { position };
                pending.push(incoming_from_wire(row, o));
            }
            if pending.len() >= rows::CHUNK_ROWS {
                ingest.push(std::mem::take(&mut pending)).await?;
            }
        }
        let mut ingest = match ingest {
            Some(ingest) => ingest,
            None => {
                rows::Ingest::begin(
                    &self.store,
                    &caller,
                    &method,
                    rows::IngestFlags::default(),
                    &self.quality,
                )
                .await?
            }
        };
        if !pending.is_empty() {
            ingest.push(pending).await?;
        }
        let report = ingest.finish().await?;
        tracing::info!(
            accepted = report.accepted,
            updated = report.updated,
            unchanged = report.unchanged,
            rejected = report.rejected,
            data_version = report.data_version,
            "observations ingested"
        );
        Ok(Response::new(report))
    }

    async fn import_csv(
        &self,
        request: Request<v1::ImportCsvRequest>,
    ) -> Result<Response<v1::IngestReport>, Status> {
        // The file (up to 64 MiB) is checked row by row as it is read (numbers, ids, the
        // source's text); the reflective check sees the other fields only, so the file is not
        // copied twice to be walked.
        let caller = Caller::of(&request);
        let mut request = request.into_inner();
        let content = std::mem::take(&mut request.content);
        crate::wire_check::check(&request)?;
        request.content = content;
        let (parsed, line_errors) = csv::parse(&request.content)?;
        let rows: Vec<_> = parsed
            .into_iter()
            .map(|row| incoming_from_csv(row, &request.source))
            .collect();
        let unreadable = line_errors
            .into_iter()
            .map(|e| v1::RowError {
                row: e.line,
                field: "row".into(),
                reason: e.reason,
            })
            .collect();
        let report = rows::ingest(
            &self.store,
            &caller,
            &crate::audit::ingestion_method("ImportCsv"),
            rows,
            unreadable,
            rows::IngestFlags {
                allow_partial: request.allow_partial,
                dry_run: request.dry_run,
                strict: request.strict,
            },
            &self.quality,
        )
        .await?;
        tracing::info!(
            accepted = report.accepted,
            updated = report.updated,
            unchanged = report.unchanged,
            rejected = report.rejected,
            data_version = report.data_version,
            "csv imported"
        );
        Ok(Response::new(report))
    }

    async fn get_observations(
        &self,
        request: Request<v1::GetObservationsRequest>,
    ) -> Result<Response<v1::GetObservationsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let (kind, entity_id) = entity_ref("entity", request.entity.as_ref())?;
        let limit = page_size(request.page_size, 1000, 10_000)?;
        let after = decode_key_token::<3>(&request.page_token)?
            .map(|[indicator, period, revision]| {
                Ok::<_, ServiceError>(ObservationPosition {
                    indicator,
                    period,
                    revision: revision.parse().map_err(|_| {
                        ServiceError::invalid("page_token", "not a token this service handed out")
                    })?,
                })
            })
            .transpose()?;
        let query = ObservationQuery {
            kind,
            entity_id,
            indicator: Some(request.indicator.trim().to_string()).filter(|s| !s.is_empty()),
            from: parse_optional_period("from_period", &request.from_period)?,
            to: parse_optional_period("to_period", &request.to_period)?,
            as_of: request.as_of.as_ref().map(timestamp_micros),
            include_revisions: request.include_revisions,
        };
        let data_version = self
            .store
            .data_version()
            .await
            .map_err(ServiceError::from)?;
        let catalog = self.store.catalog().await.map_err(ServiceError::from)?;
        let page = self
            .store
            .observations_page(&query, after.as_ref(), Some(limit))
            .await
            .map_err(ServiceError::from)?;
        let observations = page
            .items
            .into_iter()
            .map(|r| v1::Observation {
                entity: Some(v1::EntityRef {
                    kind: convert::entity_kind_to_wire(r.kind) as i32,
                    id: r.entity_id,
                }),
                unit: catalog
                    .get(&r.indicator)
                    .map(|i| i.unit.symbol.to_string())
                    .unwrap_or_default(),
                indicator: r.indicator,
                period: r.period,
                value: r.value,
                source: r.source,
                recorded_at: Some(micros_timestamp(r.recorded_at)),
                revision: r.revision,
                recorded_by: r.recorded_by,
                row: 0,
            })
            .collect();
        let next_page_token = page
            .next_after
            .map(|p| encode_key_token(&[&p.indicator, &p.period, &p.revision.to_string()]))
            .unwrap_or_default();
        Ok(Response::new(v1::GetObservationsResponse {
            observations,
            data_version,
            next_page_token,
        }))
    }

    async fn upsert_targets(
        &self,
        request: Request<v1::UpsertTargetsRequest>,
    ) -> Result<Response<v1::UpsertTargetsResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let dry_run = request.dry_run;
        let counts =
            reference::upsert_targets(&self.store, &caller, request.targets, dry_run).await?;
        Ok(Response::new(v1::UpsertTargetsResponse {
            upserted: counts.total(),
            dry_run,
            counts: upsert_counts("targets", counts, dry_run),
        }))
    }

    async fn list_targets(
        &self,
        request: Request<v1::ListTargetsRequest>,
    ) -> Result<Response<v1::ListTargetsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let (kind, id) = entity_ref("entity", request.entity.as_ref())?;
        let period = parse_optional_period("period", &request.period)?.map(|p| p.canonical());
        let limit = page_size(request.page_size, 100, 1000)?;
        let after = decode_key_token::<2>(&request.page_token)?.map(|[p, m]| (p, m));
        let page = self
            .store
            .targets_page(kind, &id, period.as_deref(), after.as_ref(), Some(limit))
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(v1::ListTargetsResponse {
            targets: page
                .items
                .into_iter()
                .map(reference::target_to_wire)
                .collect(),
            next_page_token: page
                .next_after
                .map(|(p, m)| encode_key_token(&[&p, &m]))
                .unwrap_or_default(),
        }))
    }

    async fn list_enterprises(
        &self,
        request: Request<v1::ListEnterprisesRequest>,
    ) -> Result<Response<v1::ListEnterprisesResponse>, Status> {
        Ok(Response::new(
            reference::list_enterprises(&self.store, crate::wire_check::checked(request)?).await?,
        ))
    }

    async fn delete_zone(
        &self,
        request: Request<v1::DeleteZoneRequest>,
    ) -> Result<Response<v1::DeleteZoneResponse>, Status> {
        Ok(Response::new({
            let caller = Caller::of(&request);
            removal::delete_zone(&self.store, &caller, crate::wire_check::checked(request)?).await?
        }))
    }

    async fn delete_enterprise(
        &self,
        request: Request<v1::DeleteEnterpriseRequest>,
    ) -> Result<Response<v1::DeleteEnterpriseResponse>, Status> {
        Ok(Response::new({
            let caller = Caller::of(&request);
            removal::delete_enterprise(&self.store, &caller, crate::wire_check::checked(request)?)
                .await?
        }))
    }

    async fn delete_target(
        &self,
        request: Request<v1::DeleteTargetRequest>,
    ) -> Result<Response<v1::DeleteTargetResponse>, Status> {
        Ok(Response::new({
            let caller = Caller::of(&request);
            removal::delete_target(&self.store, &caller, crate::wire_check::checked(request)?)
                .await?
        }))
    }

    async fn list_data_issues(
        &self,
        request: Request<v1::ListDataIssuesRequest>,
    ) -> Result<Response<v1::ListDataIssuesResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        Ok(Response::new(
            quality::list_data_issues(&self.store, request).await?,
        ))
    }
}
