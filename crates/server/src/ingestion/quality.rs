//! The data-quality rules at ingestion: gathers what the pure rules of
//! `zonerank_domain::quality` compare — each row's parent entity, and the figures already stored
//! that the batch's rows are compared with (the other zones of a zone's region and the region's
//! own figure, an enterprise's zone, the other sub-periods of a row's year, the year before, the
//! value a row replaces), all in set queries — turns their findings into report warnings and
//! into the changes to the stored issues; and reads the rules' settings from a file.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use zonerank_api::v1;
use zonerank_domain::{
    catalog::{Catalog, IndicatorKind},
    entity::EntityKind,
    period::Period,
    quality::{
        BatchRow, Parent, QualityConfig, QualityRule, RowFinding, RuleConfig, Severity, assess,
    },
};
use zonerank_storage::{
    DataIssueFilter, IssueChanges, IssueKey, NewDataIssue, ObservationInput, Store, StoredDataIssue,
};

use crate::{
    error::ServiceError,
    paging::{decode_id_token, encode_id_token, page_size},
};

fn label(kind: EntityKind, id: &str) -> String {
    format!("{} {id}", kind.as_str())
}

/// What the rules made of a batch: the report's findings and what the ingestion does to the
/// stored issues when it commits.
#[derive(Debug, Default)]
pub struct Assessed {
    pub findings: Vec<RowFinding>,
    pub changes: IssueChanges,
}

/// One figure the rules see, by key.
type FigureKey = (EntityKind, String, String, Period);

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = ids.into_iter().collect();
    set.into_iter().collect()
}

/// Runs the enabled rules over the rows fit to write (`rows[i]` is the row number of
/// `good[i]`) and the stored figures they are compared with.
pub async fn assess_rows(
    store: &Store,
    catalog: &Catalog,
    config: &QualityConfig,
    good: &[ObservationInput],
    rows: &[i64],
) -> Result<Assessed, ServiceError> {
    if good.is_empty() || QualityRule::ALL.iter().all(|r| !config.rule(*r).enabled) {
        return Ok(Assessed::default());
    }
    let batch_ids = |kind: EntityKind| {
        sorted(
            good.iter()
                .filter(|o| o.kind == kind)
                .map(|o| o.entity_id.clone()),
        )
    };
    // Parents: the batch's zones' regions and enterprises' zones; and the complete groups a
    // sum compares — every zone of each region involved, every enterprise of each zone.
    let mut parents: HashMap<(EntityKind, String), Parent> = HashMap::new();
    let zone_parent = |region: &str| Parent {
        entity: label(EntityKind::Region, region),
        rule: QualityRule::RegionSum,
    };
    let enterprise_parent = |zone: &str| Parent {
        entity: label(EntityKind::Zone, zone),
        rule: QualityRule::EnterpriseOverZone,
    };
    let mut regions: BTreeSet<String> = batch_ids(EntityKind::Region).into_iter().collect();
    for zone in store.zones_by_id(&batch_ids(EntityKind::Zone)).await? {
        regions.insert(zone.region_code.clone());
        parents.insert((EntityKind::Zone, zone.id), zone_parent(&zone.region_code));
    }
    let mut zones: BTreeSet<String> = batch_ids(EntityKind::Zone).into_iter().collect();
    for enterprise in store
        .enterprises_by_code(&batch_ids(EntityKind::Enterprise))
        .await?
    {
        if let Some(zone) = enterprise.zone_id {
            zones.insert(zone.clone());
            parents.insert(
                (EntityKind::Enterprise, enterprise.credit_code),
                enterprise_parent(&zone),
            );
        }
    }
    let regions: Vec<String> = regions.into_iter().collect();
    for (zone, region) in store.zones_in_regions(&regions).await? {
        zones.insert(zone.clone());
        parents.insert((EntityKind::Zone, zone), zone_parent(&region));
    }
    let mut context: BTreeMap<EntityKind, BTreeSet<String>> = BTreeMap::new();
    context.insert(EntityKind::Region, regions.iter().cloned().collect());
    context.insert(EntityKind::Zone, zones.iter().cloned().collect());
    let zone_ids: Vec<String> = batch_ids(EntityKind::Zone);
    let enterprises = context.entry(EntityKind::Enterprise).or_default();
    for (enterprise, zone) in store.enterprises_in_zones(&zone_ids).await? {
        enterprises.insert(enterprise.clone());
        parents.insert(
            (EntityKind::Enterprise, enterprise),
            enterprise_parent(&zone),
        );
    }
    for o in good {
        context
            .entry(o.kind)
            .or_default()
            .insert(o.entity_id.clone());
    }
    // The stored figures of those entities in the batch's years and the year before each.
    let indicators = sorted(good.iter().map(|o| o.indicator.clone()));
    let first_year = good.iter().map(|o| o.period.year()).min().unwrap_or(0) - 1;
    let last_year = good.iter().map(|o| o.period.year()).max().unwrap_or(0);
    let span = |year: i32| Period::full_year(year).map_err(|e| ServiceError::invalid("period", e));
    let months = (
        span(first_year)?.start_ordinal(),
        span(last_year)?.end_ordinal(),
    );
    let mut stored: BTreeMap<FigureKey, f64> = BTreeMap::new();
    for (kind, ids) in &context {
        let ids: Vec<String> = ids.iter().cloned().collect();
        for (id, indicator, period, value) in store
            .served_figures(*kind, &ids, &indicators, months)
            .await?
        {
            // A stored period the domain cannot read would be a corrupt row; it is left out.
            if let Ok(period) = Period::parse(&period) {
                stored.insert((*kind, id, indicator, period), value);
            }
        }
    }

    let is_flow = |indicator: &str| {
        catalog
            .get(indicator)
            .is_some_and(|i| i.kind == IndicatorKind::Flow)
    };
    let mut keys: Vec<FigureKey> = Vec::with_capacity(good.len() + stored.len());
    let mut batch: Vec<BatchRow> = Vec::with_capacity(good.len() + stored.len());
    let mut row_of = |key: FigureKey, row: i64, value: f64, previous, is_stored| {
        let (kind, id, indicator, period) = &key;
        batch.push(BatchRow {
            row,
            entity: label(*kind, id),
            parent: parents.get(&(*kind, id.clone())).cloned(),
            cohort: kind.as_str().to_string(),
            indicator: indicator.clone(),
            flow: is_flow(indicator),
            period: *period,
            value,
            previous,
            stored: is_stored,
        });
        keys.push(key);
    };
    for (o, &row) in good.iter().zip(rows) {
        let key = (o.kind, o.entity_id.clone(), o.indicator.clone(), o.period);
        let previous = stored.get(&key).copied();
        row_of(key, row, o.value, previous, false);
    }
    for (key, value) in stored {
        row_of(key, 0, value, None, true);
    }

    let assessment = assess(&batch, config);
    let issue_key = |rule: QualityRule, subject: usize| {
        let (kind, id, indicator, period) = &keys[subject];
        IssueKey {
            rule: rule.code().to_string(),
            kind: *kind,
            entity_id: id.clone(),
            indicator: indicator.clone(),
            period: period.canonical(),
        }
    };
    let changes = IssueChanges {
        raised: assessment
            .findings
            .iter()
            .map(|f| NewDataIssue {
                key: issue_key(f.finding.rule, f.subject),
                severity: f.severity.code().to_string(),
                figures: f
                    .finding
                    .figures
                    .iter()
                    .map(|figure| (figure.label.clone(), figure.value))
                    .collect(),
                tolerance: f.finding.tolerance,
                message: f.finding.message.clone(),
                row: f.row,
            })
            .collect(),
        passed: assessment
            .passed
            .iter()
            .map(|&(rule, subject)| issue_key(rule, subject))
            .collect(),
    };
    Ok(Assessed {
        findings: assessment.findings,
        changes,
    })
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

/// The rule with this code, or why there is none.
fn rule_named(code: &str) -> Result<QualityRule, String> {
    QualityRule::from_code(code).ok_or_else(|| {
        let known: Vec<&str> = QualityRule::ALL.iter().map(|r| r.code()).collect();
        format!("unknown rule {code:?}; the rules are {}", known.join(", "))
    })
}

/// The severity with this code, or why there is none.
fn severity_named(code: &str) -> Result<Severity, String> {
    Severity::from_code(code).ok_or_else(|| format!("unknown severity {code:?}; warning or error"))
}

/// An optional filter of a listing: None when `text` is blank, else `parse`d, a fault naming
/// `field`.
fn optional<T>(
    field: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse(text)
        .map(Some)
        .map_err(|e| ServiceError::invalid(field, e))
}

/// ListDataIssues: the stored issues about a cohort's members, filtered and paged by id.
pub async fn list_data_issues(
    store: &Store,
    request: v1::ListDataIssuesRequest,
) -> Result<v1::ListDataIssuesResponse, ServiceError> {
    let limit = page_size(request.page_size, 100, 1000)?;
    let after = decode_id_token(&request.page_token)?;
    let rule = optional("rule", &request.rule, |r| rule_named(r).map(|r| r.code()))?;
    let severity = optional("severity", &request.severity, |s| {
        severity_named(s).map(|s| s.code())
    })?;
    let period = optional("period", &request.period, |p| {
        Period::parse(p)
            .map(|p| p.canonical())
            .map_err(|e| e.to_string())
    })?;
    let entities = match &request.cohort {
        None => None,
        Some(selector) => {
            let query = crate::metrics::cohort_query(Some(selector))?;
            let members = store
                .cohort(&query)
                .await?
                .map_err(crate::metrics::unknown_in_cohort)?;
            let kind = query.kind.unwrap_or(EntityKind::Zone);
            Some((kind, members.into_iter().map(|m| m.id).collect()))
        }
    };
    let filter = DataIssueFilter {
        rule: rule.map(str::to_string),
        severity: severity.map(str::to_string),
        period,
        entities,
        include_resolved: request.include_resolved,
    };
    let page = store.data_issues(&filter, after, limit).await?;
    Ok(v1::ListDataIssuesResponse {
        issues: page.items.into_iter().map(stored_issue_to_wire).collect(),
        next_page_token: page.next_after.map(encode_id_token).unwrap_or_default(),
    })
}

fn stored_issue_to_wire(stored: StoredDataIssue) -> v1::StoredDataIssue {
    let StoredDataIssue {
        id,
        issue,
        request_id,
        data_version,
        resolved,
        resolved_version,
    } = stored;
    v1::StoredDataIssue {
        id,
        entity: Some(v1::EntityRef {
            kind: crate::convert::entity_kind_to_wire(issue.key.kind) as i32,
            id: issue.key.entity_id,
        }),
        indicator: issue.key.indicator,
        period: issue.key.period,
        issue: Some(v1::DataIssue {
            row: issue.row,
            rule: issue.key.rule,
            severity: issue.severity,
            message: issue.message,
            figures: issue
                .figures
                .into_iter()
                .map(|(label, value)| v1::DataIssueFigure { label, value })
                .collect(),
            tolerance: issue.tolerance,
        }),
        request_id,
        data_version,
        status: if resolved { "resolved" } else { "open" }.to_string(),
        resolved_data_version: resolved_version.unwrap_or(0),
    }
}

/// The settings of one rule in a rules file; what is left out keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSettings {
    enabled: Option<bool>,
    tolerance: Option<f64>,
    severity: Option<String>,
}

/// A rules file: `{"rules": {"region_sum": {"tolerance": 0.02}, "growth_outlier":
/// {"enabled": false}}, "hb_u": 0.5, "hb_a": 0.05}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: BTreeMap<String, RuleSettings>,
    hb_u: Option<f64>,
    hb_a: Option<f64>,
}

/// The rules' settings from the JSON text of a rules file, over the defaults; an unknown rule,
/// field or severity, or a tolerance the rule cannot use, is refused, naming it.
pub fn parse_rules(text: &str) -> Result<QualityConfig, String> {
    let file: RulesFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut config = QualityConfig::default();
    for (name, settings) in file.rules {
        let rule = rule_named(&name)?;
        let current = config.rule(rule);
        let tolerance = settings.tolerance.unwrap_or(current.tolerance);
        let least = match rule {
            // a factor below 1 would flag every revision
            QualityRule::RevisionJump => 1.0,
            _ => 0.0,
        };
        if !tolerance.is_finite()
            || tolerance < least
            || (rule == QualityRule::GrowthOutlier && tolerance == 0.0)
        {
            return Err(format!(
                "rule {name}: tolerance {tolerance} is not usable (a finite number {} {least})",
                if rule == QualityRule::GrowthOutlier {
                    ">"
                } else {
                    ">="
                }
            ));
        }
        let severity = match settings.severity {
            None => current.severity,
            Some(code) => severity_named(&code).map_err(|e| format!("rule {name}: {e}"))?,
        };
        config.set_rule(
            rule,
            RuleConfig {
                enabled: settings.enabled.unwrap_or(current.enabled),
                tolerance,
                severity,
            },
        );
    }
    if let Some(u) = file.hb_u {
        if !(0.0..=1.0).contains(&u) {
            return Err(format!("hb_u {u} is outside 0..=1"));
        }
        config.hb_u = u;
    }
    if let Some(a) = file.hb_a {
        if !a.is_finite() || a < 0.0 {
            return Err(format!("hb_a {a} is not a finite number >= 0"));
        }
        config.hb_a = a;
    }
    Ok(config)
}

/// The rules' settings from the file at `path` (`--quality-rules`), or the defaults.
pub fn load_rules(path: Option<&std::path::Path>) -> Result<QualityConfig, String> {
    let Some(path) = path else {
        return Ok(QualityConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("quality rules {}: {e}", path.display()))?;
    parse_rules(&text).map_err(|e| format!("quality rules {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_overrides_the_defaults_it_names() {
        let config = parse_rules(
            r#"{"rules": {"region_sum": {"tolerance": 0.05, "severity": "error"},
                          "growth_outlier": {"enabled": false}}, "hb_u": 0.3}"#,
        )
        .unwrap();
        let sum = config.rule(QualityRule::RegionSum);
        assert_eq!(
            (sum.tolerance, sum.severity, sum.enabled),
            (0.05, Severity::Error, true)
        );
        assert!(!config.rule(QualityRule::GrowthOutlier).enabled);
        assert_eq!(config.hb_u, 0.3);
        let defaults = QualityConfig::default();
        assert_eq!(
            config.rule(QualityRule::RevisionJump),
            defaults.rule(QualityRule::RevisionJump)
        );
        assert_eq!(parse_rules("{}").unwrap(), defaults);
    }

    #[test]
    fn a_bad_rules_file_is_refused_naming_the_fault() {
        let refused = |text: &str| parse_rules(text).unwrap_err();
        assert!(
            refused(r#"{"rules": {"region_summ": {}}}"#).contains("unknown rule \"region_summ\"")
        );
        assert!(
            refused(r#"{"rules": {"region_sum": {"tolerance": -0.1}}}"#)
                .contains("rule region_sum: tolerance -0.1")
        );
        assert!(
            refused(r#"{"rules": {"revision_jump": {"tolerance": 0.5}}}"#)
                .contains("rule revision_jump")
        );
        assert!(
            refused(r#"{"rules": {"growth_outlier": {"tolerance": 0}}}"#)
                .contains("rule growth_outlier")
        );
        assert!(
            refused(r#"{"rules": {"ytd_falls": {"severity": "fatal"}}}"#)
                .contains("unknown severity \"fatal\"")
        );
        assert!(refused(r#"{"rules": {"ytd_falls": {"tolerence": 1}}}"#).contains("tolerence"));
        assert!(refused(r#"{"hb_u": 2}"#).contains("hb_u 2"));
    }
}
