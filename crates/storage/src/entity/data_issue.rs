//! A data-quality warning a committed ingestion produced, open or resolved.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_issues")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The rule's code (`region_sum`, …).
    pub rule: String,
    /// `warning` or `error`.
    pub severity: String,
    /// The figure the issue is about.
    pub entity_kind: String,
    pub entity_id: String,
    pub indicator: String,
    /// Canonical period spelling.
    pub period: String,
    /// The figures compared, a JSON array of `{"label", "value"}`.
    #[sea_orm(column_type = "Text")]
    pub figures: String,
    pub tolerance: f64,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    /// The row of the ingestion it was reported on.
    pub row_number: i64,
    pub request_id: String,
    /// The data version the ingestion committed as.
    pub data_version: i64,
    /// `open` or `resolved`.
    pub status: String,
    /// The data version of the ingestion that found the rule sound again.
    pub resolved_version: Option<i64>,
    pub resolved_request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
