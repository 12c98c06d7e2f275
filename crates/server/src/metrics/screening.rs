//! Park screening: stored rules (and the built-in ones) and ScreenZones, which evaluates a rule's
//! metrics with the same computation as ComputeMetrics and lets the domain decide what they
//! flag.

use std::collections::HashMap;

use prost::Message;
use zonerank_api::{
    convert::{WireEnumError, enum_value},
    v1,
};
use zonerank_domain::{
    entity::{EntityKind, RegionLevel, ZoneKind},
    period::Period,
    screening::{self, Comparison, Condition, Rule, Threshold, ZoneProfile},
};
use zonerank_storage::{ScreeningRuleRow, Store};

use super::{Catalog, compute_within, value_to_wire};
use crate::{
    auth::Caller,
    budget::Call,
    convert::timestamp_micros,
    error::{ServiceError, Violation},
    paging::{decode_page_token, key_page, page_size},
};

const UPSERT_METHOD: &str = "/zonerank.v1.MetricsService/UpsertScreeningRule";

/// An optional wire enum: UNSPECIFIED is `None`, an undefined number a violation.
fn optional_enum<W, D>(violations: &mut Vec<Violation>, field: String, value: i32) -> Option<D>
where
    W: zonerank_api::convert::WireEnum,
    D: TryFrom<W, Error = WireEnumError>,
{
    match enum_value::<W, D>(value) {
        Ok(v) => Some(v),
        Err(WireEnumError::Unspecified { .. }) => None,
        Err(e) => {
            violations.push(Violation::new(field, e));
            None
        }
    }
}

/// The domain rule a wire rule describes, or every fault of it (metrics are not parsed here).
fn rule_from_wire(wire: &v1::ScreeningRule) -> Result<Rule, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut conditions = Vec::with_capacity(wire.conditions.len());
    for (i, c) in wire.conditions.iter().enumerate() {
        let field = |name: &str| format!("rule.conditions[{i}].{name}");
        let comparison = match enum_value::<v1::Comparison, Comparison>(c.comparison) {
            Ok(comparison) => comparison,
            Err(e) => {
                violations.push(Violation::new(field("comparison"), e));
                Comparison::Less
            }
        };
        let thresholds = c
            .thresholds
            .iter()
            .enumerate()
            .map(|(j, t)| Threshold {
                zone_kind: optional_enum::<v1::ZoneKind, ZoneKind>(
                    &mut violations,
                    format!("rule.conditions[{i}].thresholds[{j}].zone_kind"),
                    t.zone_kind,
                ),
                region_level: optional_enum::<v1::RegionLevel, RegionLevel>(
                    &mut violations,
                    format!("rule.conditions[{i}].thresholds[{j}].region_level"),
                    t.region_level,
                ),
                threshold: t.threshold,
            })
            .collect();
        conditions.push(Condition {
            metric: c.metric.trim().to_string(),
            comparison,
            threshold: c.threshold,
            // 0 means one period; a negative count is refused by the domain's check.
            periods: match c.periods {
                0 => 1,
                n => u32::try_from(n).unwrap_or(u32::MAX),
            },
            thresholds,
        });
    }
    let rule = Rule {
        id: wire.id.trim().to_string(),
        name: wire.name.trim().to_string(),
        description: wire.description.trim().to_string(),
        conditions,
        match_any: wire.match_any,
    };
    violations.extend(
        rule.faults()
            .into_iter()
            .map(|(field, reason)| Violation::new(field, reason)),
    );
    if violations.is_empty() {
        Ok(rule)
    } else {
        Err(violations)
    }
}

/// The wire form of a rule.
fn rule_to_wire(rule: &Rule, builtin: bool, updated_by: &str) -> v1::ScreeningRule {
    v1::ScreeningRule {
        id: rule.id.clone(),
        name: rule.name.clone(),
        description: rule.description.clone(),
        conditions: rule
            .conditions
            .iter()
            .map(|c| v1::ScreeningCondition {
                metric: c.metric.clone(),
                comparison: v1::Comparison::from(c.comparison) as i32,
                threshold: c.threshold,
                periods: c.periods as i32,
                thresholds: c
                    .thresholds
                    .iter()
                    .map(|t| v1::ScreeningThreshold {
                        zone_kind: t.zone_kind.map_or(0, |k| v1::ZoneKind::from(k) as i32),
                        region_level: t
                            .region_level
                            .map_or(0, |l| v1::RegionLevel::from(l) as i32),
                        threshold: t.threshold,
                    })
                    .collect(),
            })
            .collect(),
        match_any: rule.match_any,
        builtin,
        updated_by: updated_by.to_string(),
    }
}

fn invalid(violations: Vec<Violation>) -> ServiceError {
    ServiceError::InvalidArgument {
        message: format!("{}: {}", violations[0].field, violations[0].reason),
        violations,
    }
}

/// A stored rule's domain form; a definition that no longer decodes is the store's fault.
fn stored_rule(row: &ScreeningRuleRow) -> Result<Rule, ServiceError> {
    let corrupt =
        || ServiceError::Internal(format!("stored screening rule {:?} is unreadable", row.id));
    let wire = v1::ScreeningRule::decode(row.definition.as_slice()).map_err(|_| corrupt())?;
    rule_from_wire(&wire).map_err(|_| corrupt())
}

/// Checks a rule (metrics against the catalog, normalizing their spelling) and stores it.
pub async fn upsert(
    store: &Store,
    caller: &Caller,
    request: v1::UpsertScreeningRuleRequest,
) -> Result<v1::UpsertScreeningRuleResponse, ServiceError> {
    let Some(wire) = request.rule else {
        return Err(ServiceError::invalid("rule", "must be set"));
    };
    let catalog = Catalog::load(store).await?;
    let mut rule = rule_from_wire(&wire).map_err(invalid)?;
    let mut violations = Vec::new();
    if screening::builtin_rules().iter().any(|b| b.id == rule.id) {
        violations.push(Violation::new(
            "rule.id",
            format!(
                "{:?} is a built-in rule; store yours under another id",
                rule.id
            ),
        ));
    }
    for (i, condition) in rule.conditions.iter_mut().enumerate() {
        match catalog.parse(&format!("rule.conditions[{i}].metric"), &condition.metric) {
            Ok(metric) => condition.metric = metric.text,
            Err(ServiceError::InvalidArgument { violations: v, .. }) => violations.extend(v),
            Err(other) => return Err(other),
        }
    }
    if !violations.is_empty() {
        return Err(invalid(violations));
    }
    let definition = rule_to_wire(&rule, false, "").encode_to_vec();
    let row = ScreeningRuleRow {
        id: rule.id.clone(),
        name: rule.name.clone(),
        definition,
        updated_by: caller.name().to_string(),
        updated_at: zonerank_storage::now_micros(),
    };
    let mut writes = store.begin_writes().await?;
    let created = writes.put_screening_rule(&row).await?;
    let mut event = crate::audit::event(caller, UPSERT_METHOD, "OK");
    event.created = i64::from(created);
    event.updated = i64::from(!created);
    writes.audit(event);
    writes.finish(false).await?;
    Ok(v1::UpsertScreeningRuleResponse {
        rule: Some(rule_to_wire(&rule, false, caller.name())),
        created,
    })
}

/// Every rule, built-in and stored, by id.
async fn all_rules(store: &Store) -> Result<Vec<v1::ScreeningRule>, ServiceError> {
    let mut rules: Vec<v1::ScreeningRule> = screening::builtin_rules()
        .iter()
        .map(|r| rule_to_wire(r, true, ""))
        .collect();
    for row in store.screening_rules().await? {
        rules.push(rule_to_wire(&stored_rule(&row)?, false, &row.updated_by));
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rules)
}

/// One page of the rules.
pub async fn list(
    store: &Store,
    request: v1::ListScreeningRulesRequest,
) -> Result<v1::ListScreeningRulesResponse, ServiceError> {
    let limit = page_size(request.page_size, 50, 500)?;
    let after = decode_page_token(&request.page_token)?;
    let (rules, next_page_token) =
        key_page(all_rules(store).await?, after.as_deref(), limit, |r| {
            r.id.clone()
        });
    Ok(v1::ListScreeningRulesResponse {
        rules,
        next_page_token,
    })
}

async fn find_rule(store: &Store, id: &str) -> Result<Rule, ServiceError> {
    if let Some(rule) = screening::builtin_rules().into_iter().find(|r| r.id == id) {
        return Ok(rule);
    }
    match store.screening_rule(id).await? {
        Some(row) => stored_rule(&row),
        None => Err(ServiceError::not_found(
            "zonerank.v1.ScreeningRule",
            id,
            format!("screening rule {id:?}"),
        )),
    }
}

/// The zones of the cohort a rule flags, one page of them.
pub async fn screen(
    store: &Store,
    call: &Call,
    request: v1::ScreenZonesRequest,
) -> Result<v1::ScreenZonesResponse, ServiceError> {
    let rule_id = request.rule_id.trim();
    if rule_id.is_empty() {
        return Err(ServiceError::invalid("rule_id", "must be set"));
    }
    let period = super::period("period", &request.period)?;
    let cohort = super::cohort_query(request.cohort.as_ref())?;
    if cohort.kind != Some(EntityKind::Zone) {
        return Err(ServiceError::invalid(
            "cohort.entity_kind",
            "screening flags zones; leave it unset or ENTITY_KIND_ZONE",
        ));
    }
    let limit = page_size(request.page_size, 100, 1000)?;
    let after = decode_page_token(&request.page_token)?;
    let rule = find_rule(store, rule_id).await?;
    let catalog = Catalog::load(store).await?;
    let metrics = rule
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| catalog.parse(&format!("rule.conditions[{i}].metric"), &c.metric))
        .collect::<Result<Vec<_>, _>>()?;
    // Every condition reads the same span in consecutive years; the longest reads them all.
    let longest = rule
        .conditions
        .iter()
        .max_by_key(|c| c.periods)
        .map(|c| c.periods_ending(period))
        .unwrap_or_else(|| vec![period]);
    let data_version = store.data_version().await?;
    let computed = compute_within(
        call,
        store,
        &catalog,
        &metrics,
        &longest,
        &cohort,
        request.as_of.as_ref().map(timestamp_micros),
    )
    .await?;
    let ids: Vec<String> = computed.members.iter().map(|m| m.id.clone()).collect();
    let kinds: HashMap<String, ZoneKind> = store
        .zones_by_id(&ids)
        .await?
        .into_iter()
        .map(|z| (z.id, z.kind))
        .collect();
    let tree = store.region_tree().await?;
    let mut flagged = Vec::new();
    for (member, values) in computed.members.iter().zip(&computed.values) {
        let profile = ZoneProfile {
            kind: kinds.get(&member.id).copied(),
            region_level: member.region_code.as_deref().and_then(|r| tree.level(r)),
        };
        let mut met = Vec::with_capacity(rule.conditions.len());
        let mut outcomes = Vec::with_capacity(rule.conditions.len());
        for (i, (condition, metric)) in rule.conditions.iter().zip(&metrics).enumerate() {
            let read = condition.periods_ending(period);
            // Its periods are the last of the longest list.
            let skip = longest.len() - read.len();
            let figures: Vec<_> = values[skip..].iter().map(|v| v[i].clone()).collect();
            let outcome = condition.outcome(&profile, &figures);
            met.push(outcome.met);
            outcomes.push(v1::ConditionOutcome {
                index: i as i32,
                metric: metric.text.clone(),
                unit: metric.unit.clone(),
                comparison: v1::Comparison::from(condition.comparison) as i32,
                threshold: outcome.threshold,
                met: outcome.met,
                figures: read
                    .iter()
                    .zip(&figures)
                    .map(|(p, v): (&Period, _)| v1::MetricPoint {
                        period: p.canonical(),
                        value: Some(value_to_wire(v)),
                    })
                    .collect(),
            });
        }
        if rule.flags(&met) {
            flagged.push(v1::FlaggedZone {
                entity: Some(v1::EntityRef {
                    kind: v1::EntityKind::Zone as i32,
                    id: member.id.clone(),
                }),
                name: member.name.clone(),
                region_code: member.region_code.clone().unwrap_or_default(),
                conditions: outcomes,
            });
        }
    }
    let screened = computed.members.len() as i64;
    let id_of = |z: &v1::FlaggedZone| z.entity.as_ref().map(|e| e.id.clone()).unwrap_or_default();
    flagged.sort_by_key(id_of);
    let (zones, next_page_token) = key_page(flagged, after.as_deref(), limit, id_of);
    Ok(v1::ScreenZonesResponse {
        zones,
        next_page_token,
        screened,
        data_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_rules_round_trip_through_the_wire_form() {
        for rule in screening::builtin_rules() {
            let wire = rule_to_wire(&rule, true, "");
            assert!(wire.builtin);
            // What is stored decodes to the same rule.
            let stored = ScreeningRuleRow {
                id: rule.id.clone(),
                name: rule.name.clone(),
                definition: rule_to_wire(&rule, false, "").encode_to_vec(),
                updated_by: "test".into(),
                updated_at: 0,
            };
            assert_eq!(rule_from_wire(&wire).unwrap(), rule);
            assert_eq!(stored_rule(&stored).unwrap(), rule);
        }
        let low = rule_to_wire(&screening::builtin_rules()[0], true, "");
        let county = &low.conditions[0].thresholds[1];
        assert_eq!(county.region_level, v1::RegionLevel::County as i32);
        assert_eq!(county.zone_kind, 0);
        assert_eq!(county.threshold, 2.0);
    }

    #[test]
    fn zero_periods_mean_one_and_unset_enums_mean_any() {
        let wire = v1::ScreeningRule {
            id: "r".into(),
            name: "r".into(),
            conditions: vec![v1::ScreeningCondition {
                metric: "tax".into(),
                comparison: v1::Comparison::Greater as i32,
                thresholds: vec![v1::ScreeningThreshold::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let rule = rule_from_wire(&wire).unwrap();
        assert_eq!(rule.conditions[0].periods, 1);
        assert_eq!(rule.conditions[0].thresholds[0].zone_kind, None);
        assert_eq!(rule.conditions[0].thresholds[0].region_level, None);
        let negative = v1::ScreeningRule {
            conditions: vec![v1::ScreeningCondition {
                periods: -2,
                ..wire.conditions[0].clone()
            }],
            ..wire
        };
        let faults = rule_from_wire(&negative).unwrap_err();
        assert_eq!(faults[0].field, "rule.conditions[0].periods");
    }
}
