//! The audit log's server side: the events handlers append to their writes, the refusals the
//! guard records, and AuditService, which lists them.

use tonic::{Request, Response, Status};
use zonerank_api::v1::{self, audit_service_server::AuditService};
use zonerank_domain::entity::EntityKind;
use zonerank_storage::{AuditEvent, AuditFilter, Store, UpsertCounts, Writes};

use crate::{
    auth::{Caller, Role, needed_role},
    convert::{self, micros_timestamp, timestamp_micros},
    error::ServiceError,
    ingestion::entity_ref,
    paging::{decode_id_token, encode_id_token, page_size},
};

/// The full path of method `name` of zonerank service `service` (`RankingService`).
pub fn method_path(service: &str, name: &str) -> String {
    format!("/zonerank.v1.{service}/{name}")
}

/// The full path of an IngestionService method.
pub fn ingestion_method(name: &str) -> String {
    method_path("IngestionService", name)
}

/// An event of `caller` calling `method` (a full path) with `outcome`, now.
pub fn event(caller: &Caller, method: &str, outcome: &str) -> AuditEvent {
    AuditEvent::new(
        caller.name(),
        method,
        outcome,
        &zonerank_telemetry::request_id(),
    )
}

/// The event of a successful write by `caller` of `method` (a full path): its counts, the
/// entities it touched and the other resources it stored (see [`resource`]).
pub fn write_event(
    caller: &Caller,
    method: &str,
    counts: UpsertCounts,
    entities: impl IntoIterator<Item = (EntityKind, String)>,
    resources: impl IntoIterator<Item = String>,
) -> AuditEvent {
    let mut event = event(caller, method, "OK");
    event.created = counts.created;
    event.updated = counts.updated;
    event.unchanged = counts.unchanged;
    event.entities = entities
        .into_iter()
        .filter(|(_, id)| !id.is_empty())
        .collect();
    event.resources = resources.into_iter().collect();
    event
}

/// The name an audit event gives a stored resource that is not an entity: `schemes/ID`,
/// `runs/ID`, `publications/SCHEME@PERIOD`, `objections/ID`.
pub fn resource(collection: &str, id: &str) -> String {
    format!("{collection}/{id}")
}

/// Appends the event of a successful upsert or removal of IngestionService `method` to
/// `writes`, in its transaction.
pub fn record_write(
    writes: &mut Writes,
    caller: &Caller,
    method: &str,
    counts: UpsertCounts,
    entities: impl IntoIterator<Item = (EntityKind, String)>,
) {
    writes.audit(write_event(
        caller,
        &ingestion_method(method),
        counts,
        entities,
        [],
    ));
}

/// Whether `path` stores something: its successful calls are audited by their handlers, its
/// failed ones by the guard. (Listing the audit log is an admin's read.)
pub fn is_write(path: &str) -> bool {
    (needed_role(path) != Role::Viewer || VIEWER_WRITES.contains(&path))
        && !path.starts_with("/zonerank.v1.AuditService/")
}

/// Methods a viewer may call that store something: any reader of a published ranking may
/// object to it.
const VIEWER_WRITES: [&str; 1] = ["/zonerank.v1.AssessmentService/FileObjection"];

/// Whether a call of `path` that ended with `code` is audited by the guard: every refusal of a
/// caller, and every failed write.
pub fn audits_failure(path: &str, code: tonic::Code) -> bool {
    code != tonic::Code::Ok
        && (is_write(path)
            || matches!(
                code,
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ))
}

/// The gRPC code name of `code` (`PERMISSION_DENIED`).
pub fn code_name(code: tonic::Code) -> String {
    let words = format!("{code:?}");
    let mut name = String::new();
    for (i, c) in words.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    match name.as_str() {
        "OK" | "O_K" => "OK".into(),
        _ => name,
    }
}

/// AuditService over a store.
#[derive(Clone, Debug)]
pub struct Audit {
    store: Store,
}

impl Audit {
    pub fn new(store: Store) -> Audit {
        Audit { store }
    }
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn list_audit_events(
        &self,
        request: Request<v1::ListAuditEventsRequest>,
    ) -> Result<Response<v1::ListAuditEventsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 100, 1000)?;
        let before = decode_id_token(&request.page_token)?;
        let entity = match &request.entity {
            Some(_) => Some(entity_ref("entity", request.entity.as_ref())?),
            None => None,
        };
        let method = optional(&request.method).map(|m| {
            if m.starts_with('/') {
                m
            } else if m.contains('/') {
                // `zonerank.v1.IngestionService/UpsertZones`, as some clients print it.
                format!("/{m}")
            } else {
                // A bare name: the service that has it.
                crate::auth::method_path(&m).unwrap_or(m)
            }
        });
        let filter = AuditFilter {
            principal: optional(&request.principal),
            method,
            entity,
            resource: optional(&request.resource),
            from: request.start_time.as_ref().map(timestamp_micros),
            to: request.end_time.as_ref().map(timestamp_micros),
        };
        let page = self
            .store
            .audit_events(&filter, before, limit)
            .await
            .map_err(ServiceError::from)?;
        let events = page
            .items
            .into_iter()
            .map(|e| v1::AuditEvent {
                id: e.id,
                time: Some(micros_timestamp(e.event.at)),
                principal: e.event.principal,
                method: e.event.method,
                outcome: e.event.outcome,
                message: e.event.message,
                counts: Some(v1::UpsertCounts {
                    created: e.event.created,
                    updated: e.event.updated,
                    unchanged: e.event.unchanged,
                }),
                rejected: e.event.rejected,
                entities: e
                    .event
                    .entities
                    .into_iter()
                    .map(|(kind, id)| v1::EntityRef {
                        kind: convert::entity_kind_to_wire(kind) as i32,
                        id,
                    })
                    .collect(),
                entity_count: e.entity_count,
                resources: e.event.resources.into_iter().collect(),
                data_version: e.data_version.unwrap_or_default(),
                request_id: e.event.request_id,
                suppressed: e.event.suppressed,
            })
            .collect();
        Ok(Response::new(v1::ListAuditEventsResponse {
            events,
            next_page_token: page.next_after.map(encode_id_token).unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_grpc_code_names() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            code_name(tonic::Code::PermissionDenied),
            "PERMISSION_DENIED"
        );
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::Unauthenticated), "UNAUTHENTICATED");
    }

    #[test]
    fn writes_are_the_methods_a_viewer_may_not_call() {
        assert!(is_write("/zonerank.v1.IngestionService/ImportCsv"));
        assert!(is_write("/zonerank.v1.RankingService/CreateScheme"));
        assert!(!is_write("/zonerank.v1.RankingService/GetRanking"));
        assert!(!is_write("/zonerank.v1.AuditService/ListAuditEvents"));
        assert!(is_write("/zonerank.v1.AssessmentService/FileObjection"));
        assert!(is_write("/zonerank.v1.AssessmentService/PublishRanking"));
        assert!(!is_write("/zonerank.v1.AssessmentService/GetStandings"));
        assert!(audits_failure(
            "/zonerank.v1.RankingService/GetRanking",
            tonic::Code::Unauthenticated
        ));
        assert!(!audits_failure(
            "/zonerank.v1.RankingService/GetRanking",
            tonic::Code::InvalidArgument
        ));
        assert!(audits_failure(
            "/zonerank.v1.IngestionService/ImportCsv",
            tonic::Code::InvalidArgument
        ));
    }
}
