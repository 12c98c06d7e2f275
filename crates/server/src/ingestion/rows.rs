//! Checking a batch of incoming observations — from a CSV file or a stream — and writing it:
//! every bad row is reported with its row number, field and reason, and a batch with a bad row
//! writes nothing unless the caller allows partial acceptance.

use std::collections::{HashMap, HashSet};

use zonerank_api::v1;
use zonerank_domain::{
    entity::{EntityKind, validate_id},
    observation::normalize_value,
    quality::QualityConfig,
};
use zonerank_storage::{ObservationInput, Store};

use crate::{
    auth::{Caller, Scope, scope::EntityRow},
    error::{ServiceError, Violation},
};

/// One observation as it arrived, before any check.
#[derive(Clone, Debug)]
pub struct IncomingObservation {
    /// The CSV line or the position in the stream (1-based).
    pub row: i64,
    pub kind: Result<EntityKind, String>,
    pub entity_id: String,
    pub indicator: String,
    pub period: String,
    pub value: Result<f64, String>,
    pub unit: String,
    pub source: String,
}

/// A batch after checking: the rows fit to write and the faults of the others.
#[derive(Debug, Default)]
pub struct CheckedBatch {
    pub good: Vec<ObservationInput>,
    /// The row number of each of `good`.
    pub good_rows: Vec<i64>,
    pub errors: Vec<v1::RowError>,
    pub rejected: i64,
}

fn row_error(row: i64, field: &str, reason: impl ToString) -> v1::RowError {
    v1::RowError {
        row,
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks every row against the domain rules, the catalog and the stored entities.
pub async fn check(
    store: &Store,
    caller: &Caller,
    rows: Vec<IncomingObservation>,
) -> Result<CheckedBatch, ServiceError> {
    let catalog = store.catalog().await?;
    let mut batch = CheckedBatch::default();
    let mut candidates: Vec<(i64, ObservationInput)> = Vec::with_capacity(rows.len());
    let mut first_row_of_key: HashMap<(EntityKind, String, String, String), i64> = HashMap::new();
    // Every row naming a well-formed entity, whatever its other faults: one outside the
    // caller's scope refuses the whole request, even with partial acceptance.
    let mut named: Vec<EntityRow> = Vec::new();
    for row in rows {
        let mut errors = Vec::new();
        let kind = row
            .kind
            .map_err(|e| errors.push(row_error(row.row, "entity_kind", e)))
            .ok();
        let entity_id = kind.and_then(|kind| {
            validate_id(kind, &row.entity_id)
                .map_err(|e| errors.push(row_error(row.row, "entity_id", e)))
                .ok()
        });
        if let (Some(kind), Some(id)) = (kind, &entity_id) {
            named.push((format!("rows[{}].entity_id", row.row), kind, id.clone()));
        }
        let value = row
            .value
            .map_err(|e| errors.push(row_error(row.row, "value", e)))
            .ok();
        // The other fields are checked by their own parsers; the source is free text (from a
        // CSV cell, or a stream already checked as a message).
        if let Some(reason) = crate::wire_check::text_fault("source", &row.source) {
            errors.push(row_error(row.row, "source", reason));
        }
        let normalized = match catalog.get(row.indicator.trim()) {
            None => {
                errors.push(row_error(
                    row.row,
                    "indicator",
                    format!(
                        "unknown indicator {:?}; ListIndicators shows the catalog",
                        row.indicator
                    ),
                ));
                None
            }
            Some(indicator) => {
                // A bad number is already reported; check the rest of the row with a stand-in.
                match normalize_value(indicator, &row.period, value.unwrap_or(0.0), &row.unit) {
                    Ok(ok) => Some(ok),
                    Err(faults) => {
                        errors.extend(
                            faults
                                .into_iter()
                                .filter(|f| value.is_some() || f.field != "value")
                                .map(|f| row_error(row.row, f.field, f.reason)),
                        );
                        None
                    }
                }
            }
        };
        if let (Some(kind), Some(entity_id), Some((period, value)), true) =
            (kind, entity_id.clone(), normalized, errors.is_empty())
        {
            let key = (
                kind,
                entity_id.clone(),
                row.indicator.trim().to_string(),
                period.canonical(),
            );
            if let Some(first) = first_row_of_key.get(&key) {
                errors.push(row_error(
                    row.row,
                    "period",
                    format!(
                        "duplicate of row {first}: {} {} {} {} appears twice in this request",
                        kind.as_str(),
                        key.1,
                        key.2,
                        key.3
                    ),
                ));
            } else {
                first_row_of_key.insert(key, row.row);
                candidates.push((
                    row.row,
                    ObservationInput {
                        kind,
                        entity_id,
                        indicator: row.indicator.trim().to_string(),
                        period,
                        value,
                        source: row.source,
                    },
                ));
            }
        }
        if !errors.is_empty() {
            batch.rejected += 1;
            batch.errors.extend(errors);
        }
    }
    // Permission before existence: an unknown entity and one outside the scope are refused
    // alike.
    Scope::of(caller, store)
        .await?
        .entities(store, &named, true)
        .await?;
    // Entities are checked in bulk: one query per kind and chunk, not one per row.
    let mut ids_by_kind: HashMap<EntityKind, Vec<String>> = HashMap::new();
    for (_, c) in &candidates {
        ids_by_kind
            .entry(c.kind)
            .or_default()
            .push(c.entity_id.clone());
    }
    let mut known: HashMap<EntityKind, HashSet<String>> = HashMap::new();
    for (kind, mut ids) in ids_by_kind {
        ids.sort();
        ids.dedup();
        known.insert(kind, store.existing_entities(kind, &ids).await?);
    }
    for (row, c) in candidates {
        if known.get(&c.kind).is_some_and(|k| k.contains(&c.entity_id)) {
            batch.good.push(c);
            batch.good_rows.push(row);
        } else {
            batch.rejected += 1;
            batch.errors.push(row_error(
                row,
                "entity_id",
                format!(
                    "unknown {} {:?}; create it first (Upsert{}s)",
                    c.kind.as_str().to_lowercase(),
                    c.entity_id,
                    title(c.kind)
                ),
            ));
        }
    }
    Ok(batch)
}

fn title(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Region => "Region",
        EntityKind::Zone => "Zone",
        EntityKind::Enterprise => "Enterprise",
        EntityKind::Cluster => "Cluster",
        EntityKind::Project => "Project",
    }
}

/// How a batch is written: the request's flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestFlags {
    /// Write the good rows when some are rejected.
    pub allow_partial: bool,
    /// Check and count, write nothing.
    pub dry_run: bool,
    /// Data-quality warnings reject their rows.
    pub strict: bool,
}

/// Checks and writes a batch in one transaction and reports what happened. `unreadable` are
/// rows rejected before they could be parsed (a malformed CSV line); they count like any other.
pub async fn ingest(
    store: &Store,
    caller: &Caller,
    method: &str,
    rows: Vec<IncomingObservation>,
    unreadable: Vec<v1::RowError>,
    flags: IngestFlags,
    quality: &QualityConfig,
) -> Result<v1::IngestReport, ServiceError> {
    let IngestFlags {
        allow_partial,
        dry_run,
        strict,
    } = flags;
    let total = rows.len() + unreadable.len();
    let mut batch = check(store, caller, rows).await?;
    batch.rejected += unreadable.len() as i64;
    batch.errors.extend(unreadable);
    let super::quality::Assessed {
        findings,
        mut changes,
    } = super::quality::assess_rows(
        store,
        &store.catalog().await?,
        quality,
        &batch.good,
        &batch.good_rows,
    )
    .await?;
    let warnings: Vec<v1::DataIssue> = findings.iter().map(super::quality::issue_to_wire).collect();
    if strict && !findings.is_empty() {
        // The rows written are not the rows assessed: a strict ingestion that drops warned
        // rows leaves the stored issues as they are.
        changes = Default::default();
        // Strict: a warned row is a rejected row, under the usual all-or-nothing rule.
        let warned: HashSet<i64> = findings.iter().map(|f| f.row).collect();
        batch.rejected += warned.len() as i64;
        batch.errors.extend(findings.iter().map(|f| {
            row_error(
                f.row,
                "value",
                format!(
                    "{} ({}): {}",
                    f.finding.rule,
                    f.severity.code(),
                    f.finding.message
                ),
            )
        }));
        let (good, rows): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.good)
            .into_iter()
            .zip(std::mem::take(&mut batch.good_rows))
            .filter(|(_, row)| !warned.contains(row))
            .unzip();
        batch.good = good;
        batch.good_rows = rows;
    }
    batch.errors.sort_by_key(|e| e.row);
    // A dry run answers OK with every row's fault in the report, however many: a rejection's
    // details carry only the first few.
    if !batch.errors.is_empty() && !allow_partial && !dry_run {
        zonerank_telemetry::instruments()
            .observations_rejected
            .add(batch.rejected as u64, &[]);
        let first = &batch.errors[0];
        return Err(ServiceError::InvalidArgument {
            message: format!(
                "{} of {} rows rejected, nothing written; first: row {} field {}: {}",
                batch.rejected, total, first.row, first.field, first.reason
            ),
            violations: batch
                .errors
                .iter()
                .map(|e| Violation::new(format!("rows[{}].{}", e.row, e.field), &e.reason))
                .collect(),
        });
    }
    let mut event = crate::audit::event(caller, method, "OK");
    event.rejected = batch.rejected;
    let (summary, _) = store
        .write_observations_with_issues(&batch.good, dry_run, event, &changes)
        .await?;
    let counters = zonerank_telemetry::instruments();
    if !dry_run {
        counters
            .observations_accepted
            .add((summary.accepted + summary.updated) as u64, &[]);
    }
    counters
        .observations_rejected
        .add(batch.rejected as u64, &[]);
    Ok(v1::IngestReport {
        accepted: summary.accepted,
        updated: summary.updated,
        unchanged: summary.unchanged,
        rejected: batch.rejected,
        errors: batch.errors,
        data_version: summary.data_version,
        dry_run,
        warnings,
    })
}
