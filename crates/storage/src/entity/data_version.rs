//! The data version: one row, bumped by every ingestion commit; cache keys carry it. Writers
//! lock it for their whole transaction.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_version")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub version: i64,
    /// The commit stamp of `version` (microseconds since the epoch), written with its
    /// `data_commits` row as the last statement of that commit.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
