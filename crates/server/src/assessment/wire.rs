//! Lifecycle rows on the wire, and the stored state's refusals as the caller can act on them.

use zonerank_api::v1;
use zonerank_storage::{ObjectionRow, PublicationRow, Refusal};

use crate::{convert::micros_timestamp, error::ServiceError, ranking::decode};

pub fn publication_to_wire(row: &PublicationRow) -> v1::Publication {
    v1::Publication {
        scheme_id: row.scheme_id.clone(),
        period: row.period.clone(),
        version: row.version,
        run_id: row.run_id.clone(),
        state: v1::PublicationState::from(row.state) as i32,
        notice_until: Some(micros_timestamp(row.notice_until)),
        replaces: row.replaces,
        caused_by: row.caused_by.clone(),
        published_by: row.published_by.clone(),
        published_at: Some(micros_timestamp(row.published_at)),
        finalized_by: row.finalized_by.clone().unwrap_or_default(),
        finalized_at: row.finalized_at.map(micros_timestamp),
    }
}

pub fn objection_to_wire(row: &ObjectionRow) -> Result<v1::Objection, ServiceError> {
    let disputed: v1::DisputedValues = decode("disputed values", &row.disputed)?;
    let kind = zonerank_domain::entity::EntityKind::parse(&row.entity_kind).map_or(
        v1::EntityKind::Unspecified,
        crate::convert::entity_kind_to_wire,
    );
    Ok(v1::Objection {
        id: row.id.clone(),
        run_id: row.run_id.clone(),
        scheme_id: row.scheme_id.clone(),
        period: row.period.clone(),
        entity: Some(v1::EntityRef {
            kind: kind as i32,
            id: row.entity_id.clone(),
        }),
        reason: row.reason.clone(),
        disputed: disputed.values,
        evidence: row.evidence.clone(),
        state: v1::ObjectionState::from(row.state) as i32,
        filed_by: row.filed_by.clone(),
        filed_at: Some(micros_timestamp(row.filed_at)),
        resolved_by: row.resolved_by.clone().unwrap_or_default(),
        resolved_at: row.resolved_at.map(micros_timestamp),
        note: row.note.clone(),
    })
}

/// A refusal of the stored state for (scheme, period).
pub fn refused(refusal: Refusal, scheme_id: &str, period: &str) -> ServiceError {
    let subject = format!("{scheme_id}@{period}");
    let (kind, message) = match refusal {
        Refusal::AlreadyPublished(current) => (
            "ALREADY_PUBLISHED",
            format!(
                "scheme {scheme_id:?} for {period} is already published (version {}, run {}); \
                 a corrected result comes from an accepted objection",
                current.version, current.run_id
            ),
        ),
        Refusal::NotPublished => {
            return ServiceError::not_found(
                "zonerank.v1.Publication",
                subject,
                format!("a published ranking of scheme {scheme_id:?} for {period}"),
            );
        }
        Refusal::NotInNotice(state) => (
            "NOT_IN_NOTICE",
            format!(
                "the published ranking of scheme {scheme_id:?} for {period} is {}, not in its \
                 public notice (objections go against the current version while its notice is open)",
                state.as_str()
            ),
        ),
        Refusal::NoticeOver(until) => (
            "NOTICE_OVER",
            format!(
                "the public notice of scheme {scheme_id:?} for {period} ended at {}",
                micros_timestamp(until)
            ),
        ),
        Refusal::OpenObjections(ids) => (
            "OBJECTIONS_OPEN",
            format!(
                "{} objection(s) against scheme {scheme_id:?} for {period} are open ({}); \
                 resolve them with ResolveObjection first",
                ids.len(),
                ids.join(", ")
            ),
        ),
        Refusal::NoObjection => {
            return ServiceError::not_found(
                "zonerank.v1.Objection",
                subject,
                "the objection".to_string(),
            );
        }
        Refusal::Resolved(state) => (
            "ALREADY_RESOLVED",
            format!("the objection was already resolved: {}", state.as_str()),
        ),
    };
    ServiceError::failed_precondition(kind, subject, message)
}
