//! An enterprise, keyed by its unified social credit code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "enterprises")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub credit_code: String,
    pub name: String,
    pub zone_id: Option<String>,
    pub industry_code: String,
    pub above_scale: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
