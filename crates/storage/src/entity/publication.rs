//! A published version of a (scheme, period): the run it makes official and its state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "publications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scheme_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub run_id: String,
    pub state: String,
    pub notice_until: i64,
    pub replaces: i32,
    /// Objection ids, comma-separated.
    pub caused_by: String,
    pub published_by: String,
    pub published_at: i64,
    pub finalized_by: Option<String>,
    pub finalized_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
