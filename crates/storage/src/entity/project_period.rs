//! What a project was in one period: its status and investment then, and the zone it was in.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "project_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    /// Canonical period spelling.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// The period's first and last month as `Period::start_ordinal` / `end_ordinal` count them.
    pub start_ordinal: i64,
    pub end_ordinal: i64,
    pub zone_id: String,
    pub status: String,
    /// 万元
    pub planned_investment: f64,
    /// 万元
    pub completed_investment: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
