//! Stored screening rules. A rule is not data a metric reads: writing one audits the call but
//! keeps the data version.

use sea_orm::{EntityTrait, QueryOrder, Set, sea_query::OnConflict};

use crate::{StorageError, Store, Writes, entity::screening_rule};

/// A stored screening rule; `definition` is the encoded `zonerank.v1.ScreeningRule`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScreeningRuleRow {
    pub id: String,
    pub name: String,
    pub definition: Vec<u8>,
    pub updated_by: String,
    /// Microseconds since the Unix epoch.
    pub updated_at: i64,
}

impl From<screening_rule::Model> for ScreeningRuleRow {
    fn from(m: screening_rule::Model) -> ScreeningRuleRow {
        ScreeningRuleRow {
            id: m.id,
            name: m.name,
            definition: m.definition,
            updated_by: m.updated_by,
            updated_at: m.updated_at,
        }
    }
}

impl Writes {
    /// Creates or replaces the rule `row.id`; true when it did not exist.
    pub async fn put_screening_rule(
        &mut self,
        row: &ScreeningRuleRow,
    ) -> Result<bool, StorageError> {
        let existed = screening_rule::Entity::find_by_id(row.id.clone())
            .one(self.txn())
            .await?
            .is_some();
        screening_rule::Entity::insert(screening_rule::ActiveModel {
            id: Set(row.id.clone()),
            name: Set(row.name.clone()),
            definition: Set(row.definition.clone()),
            updated_by: Set(row.updated_by.clone()),
            updated_at: Set(row.updated_at),
        })
        .on_conflict(
            OnConflict::column(screening_rule::Column::Id)
                .update_columns([
                    screening_rule::Column::Name,
                    screening_rule::Column::Definition,
                    screening_rule::Column::UpdatedBy,
                    screening_rule::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(self.txn())
        .await?;
        Ok(!existed)
    }
}

impl Store {
    /// Every stored rule, by id.
    pub async fn screening_rules(&self) -> Result<Vec<ScreeningRuleRow>, StorageError> {
        Ok(screening_rule::Entity::find()
            .order_by_asc(screening_rule::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The stored rule `id`, if any.
    pub async fn screening_rule(&self, id: &str) -> Result<Option<ScreeningRuleRow>, StorageError> {
        Ok(screening_rule::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(Into::into))
    }
}
