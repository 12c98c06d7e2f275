//! The data-quality rules at ingestion: gathers what the pure rules of
//! `zonerank_domain::quality` compare (each row's parent entity, the value a row replaces) and
//! turns their findings into report warnings.

use std::collections::HashMap;

use zonerank_api::v1;
use zonerank_domain::{
    catalog::{Catalog, IndicatorKind},
    entity::EntityKind,
    quality::{BatchRow, Parent, QualityConfig, QualityRule, RowFinding, assess_batch},
};
use zonerank_storage::{ObservationInput, Store};

use crate::error::ServiceError;

fn label(kind: EntityKind, id: &str) -> String {
    format!("{} {id}", kind.as_str())
}

/// Runs the enabled rules over the rows fit to write (`rows[i]` is the row number of
/// `good[i]`), reading the zones' regions, the enterprises' zones and the served values in set
/// queries.
pub async fn assess(
    store: &Store,
    catalog: &Catalog,
    config: &QualityConfig,
    good: &[ObservationInput],
    rows: &[i64],
) -> Result<Vec<RowFinding>, ServiceError> {
    let ids = |kind: EntityKind| {
        let mut ids: Vec<String> = good
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.entity_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut parents: HashMap<(EntityKind, String), Parent> = HashMap::new();
    for zone in store.zones_by_id(&ids(EntityKind::Zone)).await? {
        parents.insert(
            (EntityKind::Zone, zone.id),
            Parent {
                entity: label(EntityKind::Region, &zone.region_code),
                rule: QualityRule::RegionSum,
            },
        );
    }
    for enterprise in store
        .enterprises_by_code(&ids(EntityKind::Enterprise))
        .await?
    {
        if let Some(zone) = enterprise.zone_id {
            parents.insert(
                (EntityKind::Enterprise, enterprise.credit_code),
                Parent {
                    entity: label(EntityKind::Zone, &zone),
                    rule: QualityRule::EnterpriseOverZone,
                },
            );
        }
    }
    let previous = if config.rule(QualityRule::RevisionJump).enabled {
        store.served_values(good).await?
    } else {
        vec![None; good.len()]
    };
    let batch: Vec<BatchRow> = good
        .iter()
        .zip(rows)
        .zip(previous)
        .map(|((o, &row), previous)| BatchRow {
            row,
            entity: label(o.kind, &o.entity_id),
            parent: parents.get(&(o.kind, o.entity_id.clone())).cloned(),
            cohort: o.kind.as_str().to_string(),
            indicator: o.indicator.clone(),
            flow: catalog
                .get(&o.indicator)
                .is_some_and(|i| i.kind == IndicatorKind::Flow),
            period: o.period,
            value: o.value,
            previous,
        })
        .collect();
    Ok(assess_batch(&batch, config))
}

/// The wire form of a finding.
pub fn issue_to_wire(f: &RowFinding) -> v1::DataIssue {
    v1::DataIssue {
        row: f.row,
        rule: f.finding.rule.code().to_string(),
        severity: f.severity.code().to_string(),
        message: f.finding.message.clone(),
        figures: f
            .finding
            .figures
            .iter()
            .map(|figure| v1::DataIssueFigure {
                label: figure.label.clone(),
                value: figure.value,
            })
            .collect(),
        tolerance: f.finding.tolerance,
    }
}
