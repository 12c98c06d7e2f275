//! An objection against a published run; `disputed` is the encoded
//! `zonerank.v1.DisputedValues`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "objections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub run_id: String,
    pub scheme_id: String,
    pub period: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub reason: String,
    pub disputed: Vec<u8>,
    pub evidence: String,
    pub state: String,
    pub filed_by: String,
    pub filed_at: i64,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub note: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
