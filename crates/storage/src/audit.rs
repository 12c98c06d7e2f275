//! The audit log. A write's event is inserted in the write's own transaction
//! ([`Writes::audit`], [`Store::write_observations_audited`]), so none is lost and none describes
//! a write that did not happen; a refused call's event is an insert of its own
//! ([`Store::record_refusal`]).

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use zonerank_domain::entity::EntityKind;

use crate::{
    Page, StorageError, Store, Writes,
    entity::{audit_event, audit_event_entity},
    reference::rows_per_statement,
};

/// Entities of one event listed when it is read back; `entity_count` says how many it touched.
pub const LISTED_ENTITIES: usize = 100;

/// The kind under which an event's resources (schemes, runs, publications, objections: what is
/// not an entity) are stored beside its entities.
const RESOURCE_KIND: &str = "RESOURCE";

/// One event of the audit log, as a caller builds it (the store adds the data version).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// Microseconds since the epoch.
    pub at: i64,
    /// The principal (`anonymous` with auth off).
    pub principal: String,
    /// The full gRPC method path (`/zonerank.v1.IngestionService/ImportCsv`).
    pub method: String,
    /// The gRPC code name: `OK`, `PERMISSION_DENIED`, …
    pub outcome: String,
    /// What was refused, for a refusal; empty for a write.
    pub message: String,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    /// The entities the call touched (or, refused, named).
    pub entities: BTreeSet<(EntityKind, String)>,
    /// The other resources it stored, by resource name (`schemes/henan-zone-assessment`,
    /// `runs/run-…`, `publications/SCHEME@PERIOD`, `objections/obj-…`).
    pub resources: BTreeSet<String>,
    /// The request id of the call (the trace id when tracing is on).
    pub request_id: String,
    /// A summary of refusals beyond the audit log's rate: how many calls it stands for (their
    /// method and outcome are the event's). 0 for an event of one call.
    pub suppressed: i64,
}

impl AuditEvent {
    /// An event of `method` called by `principal` with `outcome`, now.
    pub fn new(principal: &str, method: &str, outcome: &str, request_id: &str) -> AuditEvent {
        AuditEvent {
            at: crate::now_micros(),
            principal: principal.to_string(),
            method: method.to_string(),
            outcome: outcome.to_string(),
            request_id: request_id.to_string(),
            ..AuditEvent::default()
        }
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditEvent {
    pub id: i64,
    pub event: AuditEvent,
    /// Distinct entities and resources touched; `event.entities` and `event.resources` hold
    /// the first [`LISTED_ENTITIES`].
    pub entity_count: i64,
    pub data_version: Option<i64>,
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub method: Option<String>,
    pub entity: Option<(EntityKind, String)>,
    /// Only events that stored this resource (`runs/run-…`).
    pub resource: Option<String>,
    /// Microseconds since the epoch, inclusive.
    pub from: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub to: Option<i64>,
}

/// Inserts `event` with `data_version` through `db` (a transaction or the pool).
pub(crate) async fn insert_event<C: ConnectionTrait>(
    db: &C,
    event: &AuditEvent,
    data_version: Option<i64>,
) -> Result<i64, StorageError> {
    let stored = audit_event::ActiveModel {
        at: Set(event.at),
        principal: Set(event.principal.clone()),
        method: Set(event.method.clone()),
        outcome: Set(event.outcome.clone()),
        message: Set(event.message.clone()),
        created: Set(event.created),
        updated: Set(event.updated),
        unchanged: Set(event.unchanged),
        rejected: Set(event.rejected),
        entity_count: Set((event.entities.len() + event.resources.len()) as i64),
        data_version: Set(data_version),
        request_id: Set(event.request_id.clone()),
        suppressed: Set(event.suppressed),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let rows: Vec<audit_event_entity::ActiveModel> = event
        .entities
        .iter()
        .map(|(kind, id)| audit_event_entity::ActiveModel {
            event_id: Set(stored.id),
            entity_kind: Set(kind.as_str().to_string()),
            entity_id: Set(id.clone()),
        })
        .chain(
            event
                .resources
                .iter()
                .map(|name| audit_event_entity::ActiveModel {
                    event_id: Set(stored.id),
                    entity_kind: Set(RESOURCE_KIND.to_string()),
                    entity_id: Set(name.clone()),
                }),
        )
        .collect();
    for chunk in rows.chunks(rows_per_statement(3)) {
        audit_event_entity::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(stored.id)
}

/// Adds the distinct (entity_kind, entity_id) pairs of `table` (a table of the transaction
/// `db`, e.g. an import's changed rows) to the entities of event `id`, set-wise in the
/// database: an import of the whole country names its 500,000 entities without holding them.
pub(crate) async fn add_event_entities_from<C: ConnectionTrait>(
    db: &C,
    id: i64,
    table: &str,
) -> Result<(), StorageError> {
    let backend = db.get_database_backend();
    let p = |n| crate::import::bind(backend, n);
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint; the event may
    // already name some of them.
    let added = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO audit_event_entities (event_id, entity_kind, entity_id) \
                 SELECT DISTINCT CAST({} AS BIGINT), entity_kind, entity_id FROM {table} \
                 WHERE true ON CONFLICT DO NOTHING",
                p(1)
            ),
            [id.into()],
        ))
        .await?
        .rows_affected();
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE audit_events SET entity_count = entity_count + {} WHERE id = {}",
            p(1),
            p(2)
        ),
        [(added as i64).into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Inserts `event`, if any, in `txn` (without a data version: the write changed no figure)
/// and commits: a write of a scheme, run or lifecycle step and its audit event commit together.
pub(crate) async fn commit_with_event(
    txn: sea_orm::DatabaseTransaction,
    event: Option<&AuditEvent>,
) -> Result<(), StorageError> {
    if let Some(event) = event {
        insert_event(&txn, event, None).await?;
    }
    txn.commit().await?;
    Ok(())
}

impl Writes {
    /// Records `event` to be inserted in this transaction when it commits, with the data
    /// version it commits as: the one way code appends an audit event to a write. A dry run or
    /// a write dropped unfinished leaves no event.
    pub fn audit(&mut self, event: AuditEvent) {
        self.audit = Some(event);
    }
}

impl Store {
    /// Appends the event of a refused call (or a failed write), in its own insert.
    pub async fn record_refusal(&self, event: &AuditEvent) -> Result<(), StorageError> {
        insert_event(&self.db, event, None).await.map(|_| ())
    }

    /// Events newest first, after the event id `before` (the previous page's last), at most
    /// `limit`.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Page<StoredAuditEvent, i64>, StorageError> {
        use audit_event::Column as C;
        let mut select = audit_event::Entity::find();
        if let Some(principal) = &filter.principal {
            select = select.filter(C::Principal.eq(principal.as_str()));
        }
        if let Some(method) = &filter.method {
            select = select.filter(C::Method.eq(method.as_str()));
        }
        if let Some(from) = filter.from {
            select = select.filter(C::At.gte(from));
        }
        if let Some(to) = filter.to {
            select = select.filter(C::At.lt(to));
        }
        if let Some(before) = before {
            select = select.filter(C::Id.lt(before));
        }
        let touched = filter
            .entity
            .iter()
            .map(|(kind, id)| (kind.as_str(), id.as_str()))
            .chain(
                filter
                    .resource
                    .iter()
                    .map(|name| (RESOURCE_KIND, name.as_str())),
            );
        for (kind, id) in touched {
            let events = sea_orm::sea_query::Query::select()
                .column(audit_event_entity::Column::EventId)
                .from(audit_event_entity::Entity)
                .and_where(audit_event_entity::Column::EntityKind.eq(kind))
                .and_where(audit_event_entity::Column::EntityId.eq(id))
                .to_owned();
            select = select.filter(C::Id.in_subquery(events));
        }
        let rows = select
            .order_by_desc(C::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = rows.iter().take(limit as usize).map(|r| r.id).collect();
        let mut entities: HashMap<i64, BTreeSet<(EntityKind, String)>> = HashMap::new();
        let mut resources: HashMap<i64, BTreeSet<String>> = HashMap::new();
        for id in ids {
            let listed: Vec<(String, String)> = audit_event_entity::Entity::find()
                .select_only()
                .column(audit_event_entity::Column::EntityKind)
                .column(audit_event_entity::Column::EntityId)
                .filter(audit_event_entity::Column::EventId.eq(id))
                .order_by_asc(audit_event_entity::Column::EntityKind)
                .order_by_asc(audit_event_entity::Column::EntityId)
                .limit(LISTED_ENTITIES as u64)
                .into_tuple()
                .all(&self.db)
                .await?;
            let set = entities.entry(id).or_default();
            for (kind, entity) in listed {
                if kind == RESOURCE_KIND {
                    resources.entry(id).or_default().insert(entity);
                    continue;
                }
                let kind = EntityKind::parse(&kind).map_err(|_| {
                    StorageError::Corrupt(format!("audit event {id} names entity kind {kind:?}"))
                })?;
                set.insert((kind, entity));
            }
        }
        let items = rows
            .into_iter()
            .map(|r| StoredAuditEvent {
                id: r.id,
                entity_count: r.entity_count,
                data_version: r.data_version,
                event: AuditEvent {
                    at: r.at,
                    principal: r.principal,
                    method: r.method,
                    outcome: r.outcome,
                    message: r.message,
                    created: r.created,
                    updated: r.updated,
                    unchanged: r.unchanged,
                    rejected: r.rejected,
                    entities: entities.remove(&r.id).unwrap_or_default(),
                    resources: resources.remove(&r.id).unwrap_or_default(),
                    request_id: r.request_id,
                    suppressed: r.suppressed,
                },
            })
            .collect();
        Ok(Page::of(items, limit, |e: &StoredAuditEvent| e.id))
    }
}
