//! Checking a batch of incoming observations — from a CSV file or a stream — and writing it:
//! every bad row is reported with its row number, field and reason, and a batch with a bad row
//! writes nothing unless the caller allows partial acceptance.

use std::collections::{HashMap, HashSet};

use zonerank_api::v1;
use zonerank_domain::{
    catalog::Catalog,
    entity::{EntityKind, validate_id},
    observation::normalize_value,
    quality::QualityConfig,
};
use zonerank_storage::{IssueChanges, ObservationImport, ObservationInput, Store};

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
    catalog: &Catalog,
    caller: &Caller,
    rows: Vec<IncomingObservation>,
) -> Result<CheckedBatch, ServiceError> {
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

/// Rows checked and staged at a time: what the ingestion holds of a request, however long.
pub const CHUNK_ROWS: usize = 10_000;

/// Row errors (and warnings) a report carries at most; the counts stay exact.
pub const REPORTED_LIMIT: usize = 10_000;

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
    let mut ingest = Ingest::begin(store, caller, method, flags, quality).await?;
    ingest.unreadable(unreadable);
    let mut rows = rows.into_iter();
    loop {
        let chunk: Vec<IncomingObservation> = rows.by_ref().take(CHUNK_ROWS).collect();
        if chunk.is_empty() {
            break;
        }
        ingest.push(chunk).await?;
    }
    ingest.finish().await
}

/// An ingestion under way: rows are checked a chunk at a time and the good ones staged in the
/// one transaction that writes them all when the request ends (or nothing, when a row is
/// refused without partial acceptance). Memory holds one chunk, not the request.
pub struct Ingest<'a> {
    store: &'a Store,
    caller: &'a Caller,
    method: String,
    flags: IngestFlags,
    quality: &'a QualityConfig,
    /// Read once per request: every chunk is checked against the same catalog.
    catalog: Catalog,
    import: ObservationImport,
    /// The data-quality issues the rows raise and resolve, stored with them.
    issues: IssueChanges,
    /// Whether any issue was open when the request began: the sound (rule, figure) pairs are
    /// kept only for open issues, so none are kept when there were none.
    open_issues: bool,
    /// Set when strict left warned rows out: the rows written are then not the rows assessed,
    /// so the stored issues are left as they are.
    issues_void: bool,
    total: i64,
    rejected: i64,
    errors: Vec<v1::RowError>,
    warnings: Vec<v1::DataIssue>,
}

impl<'a> Ingest<'a> {
    /// Opens the transaction the rows are staged in.
    pub async fn begin(
        store: &'a Store,
        caller: &'a Caller,
        method: &str,
        flags: IngestFlags,
        quality: &'a QualityConfig,
    ) -> Result<Ingest<'a>, ServiceError> {
        Ok(Ingest {
            store,
            caller,
            method: method.to_string(),
            flags,
            quality,
            catalog: store.catalog().await?,
            import: store.begin_observation_import().await?,
            issues: IssueChanges::default(),
            open_issues: store.any_open_data_issue().await?,
            issues_void: false,
            total: 0,
            rejected: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// The request's flags.
    pub fn flags(&self) -> IngestFlags {
        self.flags
    }

    fn reject(&mut self, rows: i64, errors: impl IntoIterator<Item = v1::RowError>) {
        self.rejected += rows;
        let room = REPORTED_LIMIT.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    /// Rows refused before they could be parsed.
    pub fn unreadable(&mut self, errors: Vec<v1::RowError>) {
        self.total += errors.len() as i64;
        self.reject(errors.len() as i64, errors);
    }

    /// Checks a chunk of rows and stages the good ones.
    pub async fn push(&mut self, rows: Vec<IncomingObservation>) -> Result<(), ServiceError> {
        self.total += rows.len() as i64;
        let mut batch = check(self.store, &self.catalog, self.caller, rows).await?;
        let super::quality::Assessed { findings, changes } = super::quality::assess_rows(
            self.store,
            &self.catalog,
            self.quality,
            &batch.good,
            &batch.good_rows,
        )
        .await?;
        self.issues.raised.extend(changes.raised);
        if self.open_issues {
            let open = self.store.open_data_issues_among(changes.passed).await?;
            self.issues.passed.extend(open);
        }
        let room = REPORTED_LIMIT.saturating_sub(self.warnings.len());
        self.warnings.extend(
            findings
                .iter()
                .take(room)
                .map(super::quality::issue_to_wire),
        );
        if self.flags.strict && !findings.is_empty() {
            self.issues_void = true;
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
        self.reject(batch.rejected, batch.errors);
        // Staged even when a refusal is certain, so that keys repeated across chunks are
        // reported with the other faults.
        self.import.stage(&batch.good, &batch.good_rows).await?;
        Ok(())
    }

    /// Ends the request: refuses it whole when a row was refused without partial acceptance,
    /// and otherwise writes (or, dry, counts) what was staged.
    pub async fn finish(mut self) -> Result<v1::IngestReport, ServiceError> {
        // Keys repeated across chunks (a chunk's own repeats are found by `check`).
        let room = REPORTED_LIMIT.saturating_sub(self.errors.len()) as u64;
        let (repeats, listed) = self.import.take_duplicates(room).await?;
        self.reject(
            repeats,
            listed.into_iter().map(|d| {
                row_error(
                    d.row,
                    "period",
                    format!(
                        "duplicate of row {}: {} {} {} {} appears twice in this request",
                        d.first_row, d.kind, d.entity_id, d.indicator, d.period
                    ),
                )
            }),
        );
        let IngestFlags {
            allow_partial,
            dry_run,
            ..
        } = self.flags;
        self.errors.sort_by_key(|e| e.row);
        // A dry run answers OK with the rows' faults in the report: a rejection's details
        // carry only the first few.
        if !self.errors.is_empty() && !allow_partial && !dry_run {
            self.import.rollback().await?;
            zonerank_telemetry::instruments()
                .observations_rejected
                .add(self.rejected as u64, &[]);
            let first = &self.errors[0];
            return Err(ServiceError::InvalidArgument {
                message: format!(
                    "{} of {} rows rejected, nothing written; first: row {} field {}: {}",
                    self.rejected, self.total, first.row, first.field, first.reason
                ),
                violations: self
                    .errors
                    .iter()
                    .map(|e| Violation::new(format!("rows[{}].{}", e.row, e.field), &e.reason))
                    .collect(),
            });
        }
        let mut event = crate::audit::event(self.caller, &self.method, "OK");
        event.rejected = self.rejected;
        let issues = if self.issues_void {
            IssueChanges::default()
        } else {
            std::mem::take(&mut self.issues)
        };
        let summary = self.import.finish(dry_run, event, &issues).await?;
        let counters = zonerank_telemetry::instruments();
        if !dry_run {
            counters
                .observations_accepted
                .add((summary.accepted + summary.updated) as u64, &[]);
        }
        counters
            .observations_rejected
            .add(self.rejected as u64, &[]);
        Ok(v1::IngestReport {
            accepted: summary.accepted,
            updated: summary.updated,
            unchanged: summary.unchanged,
            rejected: self.rejected,
            errors: self.errors,
            data_version: summary.data_version,
            dry_run,
            warnings: self.warnings,
        })
    }
}
