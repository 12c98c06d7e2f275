//! Data issues: the data-quality warnings of committed ingestions, written in the ingestion's
//! own transaction ([`crate::ObservationImport::finish`]), and the figures the rules
//! compare a batch with, read in set queries.
//!
//! An issue is about one figure (rule, entity, indicator, period). An ingestion that commits
//! raises the issues of its findings and resolves the open issues of the (rule, figure) pairs
//! it checked and found sound; a figure still failing a rule keeps one open issue, the latest
//! finding's (the earlier open one is replaced).

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use zonerank_domain::entity::EntityKind;

use crate::{
    Page, StorageError, Store,
    entity::{data_issue, enterprise, observation, zone},
    reference::rows_per_statement,
};

/// The figure an issue is about, under one rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueKey {
    /// The rule's code.
    pub rule: String,
    pub kind: EntityKind,
    pub entity_id: String,
    pub indicator: String,
    /// Canonical period spelling.
    pub period: String,
}

/// A finding to store as an open issue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDataIssue {
    pub key: IssueKey,
    /// `warning` or `error`.
    pub severity: String,
    /// The figures compared, labelled.
    pub figures: Vec<(String, f64)>,
    pub tolerance: f64,
    pub message: String,
    /// The row of the ingestion it is reported on.
    pub row: i64,
}

/// What one ingestion does to the stored issues when it commits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IssueChanges {
    /// Findings, stored open.
    pub raised: Vec<NewDataIssue>,
    /// (rule, figure) pairs found sound: their open issues are resolved.
    pub passed: Vec<IssueKey>,
}

/// An issue as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDataIssue {
    pub id: i64,
    pub issue: NewDataIssue,
    pub request_id: String,
    pub data_version: i64,
    /// Whether a later ingestion found the rule sound for the figure.
    pub resolved: bool,
    pub resolved_version: Option<i64>,
}

/// Which issues to list.
#[derive(Clone, Debug, Default)]
pub struct DataIssueFilter {
    pub rule: Option<String>,
    pub severity: Option<String>,
    /// Canonical period spelling.
    pub period: Option<String>,
    /// Issues about these entities only (a cohort's members), all of one kind.
    pub entities: Option<(EntityKind, Vec<String>)>,
    /// Resolved issues too, not only open ones.
    pub include_resolved: bool,
}

const OPEN: &str = "open";
const RESOLVED: &str = "resolved";

fn key_of(m: &data_issue::Model) -> Result<IssueKey, StorageError> {
    Ok(IssueKey {
        rule: m.rule.clone(),
        kind: EntityKind::parse(&m.entity_kind).map_err(|_| {
            StorageError::Corrupt(format!(
                "data issue {} names entity kind {:?}",
                m.id, m.entity_kind
            ))
        })?,
        entity_id: m.entity_id.clone(),
        indicator: m.indicator.clone(),
        period: m.period.clone(),
    })
}

/// The open issues (id and key) among the keys `named`: one query per kind and chunk of ids.
async fn open_issues_named<C: ConnectionTrait>(
    db: &C,
    named: &BTreeSet<&IssueKey>,
) -> Result<Vec<(i64, IssueKey)>, StorageError> {
    use data_issue::Column as C;
    let mut ids_by_kind: HashMap<EntityKind, BTreeSet<&str>> = HashMap::new();
    for key in named {
        ids_by_kind
            .entry(key.kind)
            .or_default()
            .insert(key.entity_id.as_str());
    }
    let mut open: Vec<(i64, IssueKey)> = Vec::new();
    for (kind, ids) in ids_by_kind {
        let ids: Vec<&str> = ids.into_iter().collect();
        for chunk in ids.chunks(rows_per_statement(1).saturating_sub(2).max(1)) {
            let rows = data_issue::Entity::find()
                .filter(C::Status.eq(OPEN))
                .filter(C::EntityKind.eq(kind.as_str()))
                .filter(C::EntityId.is_in(chunk.iter().copied()))
                .all(db)
                .await?;
            for row in rows {
                let key = key_of(&row)?;
                if named.contains(&key) {
                    open.push((row.id, key));
                }
            }
        }
    }
    Ok(open)
}

/// Applies `changes` of the ingestion committing as `data_version` within `db` (its
/// transaction): a set query for the open issues of the figures named, then set updates,
/// deletes and inserts.
pub(crate) async fn apply_issue_changes<C: ConnectionTrait>(
    db: &C,
    changes: &IssueChanges,
    data_version: i64,
    request_id: &str,
) -> Result<(), StorageError> {
    use data_issue::Column as C;
    let named: BTreeSet<&IssueKey> = changes
        .raised
        .iter()
        .map(|i| &i.key)
        .chain(&changes.passed)
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let open = open_issues_named(db, &named).await?;
    let passed: BTreeSet<&IssueKey> = changes.passed.iter().collect();
    let raised: BTreeSet<&IssueKey> = changes.raised.iter().map(|i| &i.key).collect();
    let resolve: Vec<i64> = open
        .iter()
        .filter(|(_, k)| passed.contains(k) && !raised.contains(k))
        .map(|(id, _)| *id)
        .collect();
    let replace: Vec<i64> = open
        .iter()
        .filter(|(_, k)| raised.contains(k))
        .map(|(id, _)| *id)
        .collect();
    for chunk in resolve.chunks(rows_per_statement(1).saturating_sub(3).max(1)) {
        data_issue::Entity::update_many()
            .col_expr(C::Status, Expr::value(RESOLVED))
            .col_expr(C::ResolvedVersion, Expr::value(data_version))
            .col_expr(C::ResolvedRequestId, Expr::value(request_id))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    for chunk in replace.chunks(rows_per_statement(1)) {
        data_issue::Entity::delete_many()
            .filter(C::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let rows: Vec<data_issue::ActiveModel> = changes
        .raised
        .iter()
        .map(|i| data_issue::ActiveModel {
            rule: Set(i.key.rule.clone()),
            severity: Set(i.severity.clone()),
            entity_kind: Set(i.key.kind.as_str().to_string()),
            entity_id: Set(i.key.entity_id.clone()),
            indicator: Set(i.key.indicator.clone()),
            period: Set(i.key.period.clone()),
            figures: Set(figures_json(&i.figures)),
            tolerance: Set(i.tolerance),
            message: Set(i.message.clone()),
            row_number: Set(i.row),
            request_id: Set(request_id.to_string()),
            data_version: Set(data_version),
            status: Set(OPEN.to_string()),
            resolved_version: Set(None),
            resolved_request_id: Set(None),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(rows_per_statement(15)) {
        data_issue::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

fn figures_json(figures: &[(String, f64)]) -> String {
    serde_json::Value::Array(
        figures
            .iter()
            .map(|(label, value)| serde_json::json!({ "label": label, "value": value }))
            .collect(),
    )
    .to_string()
}

fn figures_from_json(id: i64, text: &str) -> Result<Vec<(String, f64)>, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("data issue {id} has figures {text:?}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    value
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|f| {
            Some((
                f.get("label")?.as_str()?.to_string(),
                f.get("value")?.as_f64()?,
            ))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(corrupt)
}

/// A served figure: (entity id, indicator, canonical period, value).
pub type ServedFigure = (String, String, String, f64);

impl Store {
    /// Whether any issue is open: when none is, no figure's soundness needs remembering.
    pub async fn any_open_data_issue(&self) -> Result<bool, StorageError> {
        use data_issue::Column as C;
        Ok(data_issue::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(C::Status.eq(OPEN))
            .limit(1)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The keys among `keys` that have an open issue. An ingestion keeps only these of the
    /// (rule, figure) pairs it found sound, so what it holds until it commits is bounded by the
    /// open issues, not by its rows.
    pub async fn open_data_issues_among(
        &self,
        keys: Vec<IssueKey>,
    ) -> Result<Vec<IssueKey>, StorageError> {
        let named: BTreeSet<&IssueKey> = keys.iter().collect();
        if named.is_empty() {
            return Ok(Vec::new());
        }
        let open = open_issues_named(&self.db, &named).await?;
        Ok(open.into_iter().map(|(_, key)| key).collect())
    }

    /// Issues in id order (oldest first), after the id `after` (the previous page's last), at
    /// most `limit`.
    pub async fn data_issues(
        &self,
        filter: &DataIssueFilter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Page<StoredDataIssue, i64>, StorageError> {
        use data_issue::Column as C;
        let mut select = data_issue::Entity::find();
        if !filter.include_resolved {
            select = select.filter(C::Status.eq(OPEN));
        }
        if let Some(rule) = &filter.rule {
            select = select.filter(C::Rule.eq(rule.as_str()));
        }
        if let Some(severity) = &filter.severity {
            select = select.filter(C::Severity.eq(severity.as_str()));
        }
        if let Some(period) = &filter.period {
            select = select.filter(C::Period.eq(period.as_str()));
        }
        if let Some((kind, ids)) = &filter.entities {
            select = select
                .filter(C::EntityKind.eq(kind.as_str()))
                .filter(C::EntityId.is_in(ids.iter().map(String::as_str)));
        }
        if let Some(after) = after {
            select = select.filter(C::Id.gt(after));
        }
        let rows = select
            .order_by_asc(C::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let items = rows
            .into_iter()
            .map(|m| {
                Ok(StoredDataIssue {
                    id: m.id,
                    issue: NewDataIssue {
                        key: key_of(&m)?,
                        severity: m.severity.clone(),
                        figures: figures_from_json(m.id, &m.figures)?,
                        tolerance: m.tolerance,
                        message: m.message.clone(),
                        row: m.row_number,
                    },
                    request_id: m.request_id,
                    data_version: m.data_version,
                    resolved: m.status == RESOLVED,
                    resolved_version: m.resolved_version,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Page::of(items, limit, |i: &StoredDataIssue| i.id))
    }

    /// The zones of each of these regions (directly, not of their subregions), as
    /// (zone id, region code).
    pub async fn zones_in_regions(
        &self,
        codes: &[String],
    ) -> Result<Vec<(String, String)>, StorageError> {
        let mut found = Vec::new();
        for chunk in codes.chunks(rows_per_statement(1)) {
            let rows: Vec<(String, String)> = zone::Entity::find()
                .select_only()
                .column(zone::Column::Id)
                .column(zone::Column::RegionCode)
                .filter(zone::Column::RegionCode.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// The enterprises of each of these zones, as (credit code, zone id).
    pub async fn enterprises_in_zones(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StorageError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(rows_per_statement(1)) {
            let rows: Vec<(String, Option<String>)> = enterprise::Entity::find()
                .select_only()
                .column(enterprise::Column::CreditCode)
                .column(enterprise::Column::ZoneId)
                .filter(enterprise::Column::ZoneId.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(
                rows.into_iter()
                    .filter_map(|(code, zone)| Some((code, zone?))),
            );
        }
        Ok(found)
    }

    /// The figures served now for entities `ids` of `kind` and `indicators` whose spans lie
    /// within the months `from..=to` (ordinals: year × 12 + month − 1).
    pub async fn served_figures(
        &self,
        kind: EntityKind,
        ids: &[String],
        indicators: &[String],
        (from, to): (i64, i64),
    ) -> Result<Vec<ServedFigure>, StorageError> {
        use observation::Column as C;
        let mut found = Vec::new();
        let chunk = rows_per_statement(1)
            .saturating_sub(indicators.len() + 3)
            .max(1);
        for ids in ids.chunks(chunk) {
            let rows: Vec<ServedFigure> = observation::Entity::find()
                .select_only()
                .columns([C::EntityId, C::Indicator, C::Period, C::Value])
                .filter(C::EntityKind.eq(kind.as_str()))
                .filter(C::EntityId.is_in(ids.iter().map(String::as_str)))
                .filter(C::Indicator.is_in(indicators.iter().map(String::as_str)))
                .filter(C::PeriodStart.gte(from as i32))
                .filter(C::PeriodEnd.lte(to as i32))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }
}
