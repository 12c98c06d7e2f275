//! The project pipeline by period: what each project was (status, planned and completed
//! investment, zone) in every period it was reported for, and the reads of the pipeline metrics.

use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};
use zonerank_domain::{entity::ProjectStatus, period::Period};

use crate::{
    ProjectRecord, StorageError, Store,
    entity::project_period,
    reference::{rows_per_statement, stored_name},
};

/// One project's standing in one period, as the pipeline metrics read it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectPeriodRow {
    pub project_id: String,
    pub zone_id: String,
    pub period: Period,
    pub status: ProjectStatus,
    /// 万元
    pub planned_investment: f64,
    /// 万元
    pub completed_investment: f64,
}

/// The history rows of the records that carry a period.
pub(crate) fn period_models(rows: &[&ProjectRecord]) -> Vec<project_period::ActiveModel> {
    rows.iter()
        .filter_map(|p| {
            let period = p.period?;
            Some(project_period::ActiveModel {
                project_id: Set(p.id.clone()),
                period: Set(period.canonical()),
                start_ordinal: Set(period.start_ordinal()),
                end_ordinal: Set(period.end_ordinal()),
                zone_id: Set(p.zone_id.clone()),
                status: Set(p.status.as_str().to_string()),
                planned_investment: Set(p.planned_investment),
                completed_investment: Set(p.completed_investment),
            })
        })
        .collect()
}

/// Writing a project's period again replaces what it was then.
pub(crate) fn period_conflict() -> OnConflict {
    OnConflict::columns([
        project_period::Column::ProjectId,
        project_period::Column::Period,
    ])
    .update_columns([
        project_period::Column::ZoneId,
        project_period::Column::Status,
        project_period::Column::PlannedInvestment,
        project_period::Column::CompletedInvestment,
    ])
    .to_owned()
}

/// Removes the history of the given projects.
pub(crate) async fn remove_periods(
    txn: &DatabaseTransaction,
    projects: &[String],
) -> Result<(), StorageError> {
    for chunk in projects.chunks(rows_per_statement(1)) {
        project_period::Entity::delete_many()
            .filter(project_period::Column::ProjectId.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// The standing of the projects of `zones` (every zone when `None`) in the periods lying
    /// within months `from_ordinal..=to_ordinal`, by zone, period and project.
    pub async fn project_periods(
        &self,
        zones: Option<&[String]>,
        from_ordinal: i64,
        to_ordinal: i64,
    ) -> Result<Vec<ProjectPeriodRow>, StorageError> {
        let query = || {
            project_period::Entity::find()
                .filter(project_period::Column::StartOrdinal.gte(from_ordinal))
                .filter(project_period::Column::EndOrdinal.lte(to_ordinal))
                .order_by_asc(project_period::Column::ZoneId)
                .order_by_asc(project_period::Column::StartOrdinal)
                .order_by_asc(project_period::Column::ProjectId)
        };
        let mut models = Vec::new();
        match zones {
            None => models = query().all(&self.db).await?,
            Some(zones) => {
                for chunk in zones.chunks(rows_per_statement(1)) {
                    models.extend(
                        query()
                            .filter(project_period::Column::ZoneId.is_in(chunk.iter().cloned()))
                            .all(&self.db)
                            .await?,
                    );
                }
            }
        }
        models.into_iter().map(row).collect()
    }
}

fn row(m: project_period::Model) -> Result<ProjectPeriodRow, StorageError> {
    let owner = format!("project {} in {}", m.project_id, m.period);
    Ok(ProjectPeriodRow {
        period: stored_name(|s| Period::parse(s).ok(), "period", &owner, &m.period)?,
        status: stored_name(
            |s| ProjectStatus::parse(s).ok(),
            "status",
            &owner,
            &m.status,
        )?,
        project_id: m.project_id,
        zone_id: m.zone_id,
        planned_investment: m.planned_investment,
        completed_investment: m.completed_investment,
    })
}
