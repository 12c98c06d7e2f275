//! The value of each observation key that is served now (its latest revision).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observations")]
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
