//! An investment project in a zone.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub zone_id: String,
    pub status: String,
    /// 万元
    pub planned_investment: f64,
    /// The period the status holds for (canonical spelling); empty when none was given.
    pub period: String,
    /// 万元
    pub completed_investment: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
