//! Every revision of an observation key that a later one superseded, kept for as-of reads and
//! listings of every revision (the served one is in `observations`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observation_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub entity_kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub entity_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    /// Canonical period spelling.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i32,
    /// First month of the span as year × 12 + month − 1.
    pub period_start: i32,
    /// Last month of the span as year × 12 + month − 1.
    pub period_end: i32,
    /// In the indicator's canonical unit.
    pub value: f64,
    pub source: String,
    /// The data version of the transaction that wrote it; `data_commits` has its commit stamp.
    pub version: i64,
    /// The principal that sent it (`anonymous` with auth off, and for history before
    /// attribution).
    pub recorded_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
