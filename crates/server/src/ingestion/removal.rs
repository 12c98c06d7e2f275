//! Removing zones, enterprises and targets. A zone or enterprise that figures refer to is only
//! removed with `force`, and then with what refers to it, in one transaction that bumps the data
//! version (so cached computations miss). Stored ranking runs keep their own entries and do not
//! change.

use zonerank_api::v1;
use zonerank_domain::{
    entity::{EntityKind, validate_id},
    metric::parse_metric,
    period::Period,
};
use zonerank_storage::{EnterpriseReferences, Store, UpsertCounts, ZoneReferences};

use crate::{
    audit::record_write,
    auth::{Caller, Scope},
    convert::resource_type,
    error::ServiceError,
    ingestion::entity_ref,
};

/// "12 observations, 1 target and 2 enterprises": the non-zero counts, in words.
fn listed(counts: &[(i64, &str, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    match parts.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn zone_dependents(r: &ZoneReferences) -> String {
    listed(&[
        (r.observations, "observation", "observations"),
        (r.targets, "target", "targets"),
        (r.enterprises, "enterprise", "enterprises"),
        (r.clusters, "cluster", "clusters"),
        (r.projects, "project", "projects"),
    ])
}

fn enterprise_dependents(r: &EnterpriseReferences) -> String {
    listed(&[
        (r.observations, "observation", "observations"),
        (r.targets, "target", "targets"),
    ])
}

fn refused(subject: String, dependents: &str, force_does: &str) -> ServiceError {
    let refer = if dependents.starts_with("1 ") && !dependents.contains(" and ") {
        "refers"
    } else {
        "refer"
    };
    ServiceError::failed_precondition(
        "REFERENCED",
        subject.clone(),
        format!("{subject}: {dependents} {refer} to it; pass force to {force_does}"),
    )
}

/// Removes a zone; with `force` also its observations, targets, tags and projects (with
/// theirs), and unlinks its enterprises and clusters.
pub async fn delete_zone(
    store: &Store,
    caller: &Caller,
    request: v1::DeleteZoneRequest,
) -> Result<v1::DeleteZoneResponse, ServiceError> {
    let id = validate_id(EntityKind::Zone, &request.zone_id)
        .map_err(|e| ServiceError::invalid("zone_id", e))?;
    let mut writes = store.begin_writes().await?;
    let references = writes.zone_references(&id).await?.ok_or_else(|| {
        ServiceError::not_found(resource_type(EntityKind::Zone), &id, format!("zone {id}"))
    })?;
    if references != ZoneReferences::default() && !request.force {
        return Err(refused(
            format!("zone {id}"),
            &zone_dependents(&references),
            "remove them (enterprises and clusters are kept, without the zone)",
        ));
    }
    let observations_removed = writes.remove_zone(&id).await?;
    let removed = [(EntityKind::Zone, id.clone())];
    record_write(
        &mut writes,
        caller,
        "DeleteZone",
        UpsertCounts::default(),
        removed,
    );
    writes.finish(false).await?;
    tracing::info!(zone = %id, observations_removed, "zone removed");
    Ok(v1::DeleteZoneResponse {
        observations_removed,
    })
}

/// Removes an enterprise; with `force` also its observations and targets.
pub async fn delete_enterprise(
    store: &Store,
    caller: &Caller,
    request: v1::DeleteEnterpriseRequest,
) -> Result<v1::DeleteEnterpriseResponse, ServiceError> {
    let code = validate_id(EntityKind::Enterprise, &request.credit_code)
        .map_err(|e| ServiceError::invalid("credit_code", e))?;
    let mut writes = store.begin_writes().await?;
    let references = writes.enterprise_references(&code).await?.ok_or_else(|| {
        ServiceError::not_found(
            resource_type(EntityKind::Enterprise),
            &code,
            format!("enterprise {code}"),
        )
    })?;
    if references != EnterpriseReferences::default() && !request.force {
        return Err(refused(
            format!("enterprise {code}"),
            &enterprise_dependents(&references),
            "remove them",
        ));
    }
    let observations_removed = writes.remove_enterprise(&code).await?;
    let removed = [(EntityKind::Enterprise, code.clone())];
    record_write(
        &mut writes,
        caller,
        "DeleteEnterprise",
        UpsertCounts::default(),
        removed,
    );
    writes.finish(false).await?;
    tracing::info!(enterprise = %code, observations_removed, "enterprise removed");
    Ok(v1::DeleteEnterpriseResponse {
        observations_removed,
    })
}

/// Removes one target, found by its entity, metric (in any spelling of it) and period.
pub async fn delete_target(
    store: &Store,
    caller: &Caller,
    request: v1::DeleteTargetRequest,
) -> Result<v1::DeleteTargetResponse, ServiceError> {
    let (kind, id) = entity_ref("entity", request.entity.as_ref())?;
    let period = Period::parse(&request.period)
        .map_err(|e| ServiceError::invalid("period", e))?
        .canonical();
    let mut writes = store.begin_writes().await?;
    Scope::of(caller, &writes)
        .await?
        .entities(&writes, &[("entity.id".into(), kind, id.clone())], true)
        .await?;
    let catalog = writes.catalog().await?;
    // Targets are stored under the metric's normalized spelling.
    let metric = parse_metric(&request.metric, &|code: &str| catalog.get(code).cloned())
        .map_err(|e| ServiceError::invalid("metric", e))?
        .text;
    if !writes.remove_target(kind, &id, &metric, &period).await? {
        let name = format!("{} {id} {metric} {period}", kind.as_str());
        return Err(ServiceError::not_found(
            "zonerank.v1.Target",
            name.clone(),
            format!("target {name}"),
        ));
    }
    record_write(
        &mut writes,
        caller,
        "DeleteTarget",
        UpsertCounts::default(),
        [(kind, id)],
    );
    writes.finish(false).await?;
    Ok(v1::DeleteTargetResponse {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_read_as_a_sentence() {
        let refs = ZoneReferences {
            observations: 12,
            targets: 1,
            enterprises: 2,
            clusters: 0,
            projects: 0,
        };
        assert_eq!(
            zone_dependents(&refs),
            "12 observations, 1 target and 2 enterprises"
        );
        let one = EnterpriseReferences {
            observations: 1,
            targets: 0,
        };
        let ServiceError::FailedPrecondition { message, .. } = refused(
            "enterprise X".into(),
            &enterprise_dependents(&one),
            "remove them",
        ) else {
            panic!("not a precondition failure");
        };
        assert_eq!(
            message,
            "enterprise X: 1 observation refers to it; pass force to remove them"
        );
    }
}
