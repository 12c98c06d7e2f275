//! The audit log: every write and every refused call.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Microseconds since the epoch.
    pub at: i64,
    pub principal: String,
    /// The full gRPC method path.
    pub method: String,
    /// The gRPC code name (`OK`, `PERMISSION_DENIED`, …).
    pub outcome: String,
    pub message: String,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    /// Distinct entities touched (rows in `audit_event_entities`).
    pub entity_count: i64,
    /// The data version the write committed as; None for a refused call or a write that
    /// changed nothing.
    pub data_version: Option<i64>,
    pub request_id: String,
    /// For a summary of refusals not recorded one by one: how many it stands for.
    pub suppressed: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
