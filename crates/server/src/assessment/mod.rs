//! AssessmentService: publication, objections and corrected versions, the final result;
//! standings across published periods, the lists, warnings and the policy export. Served by
//! the ranking process, which owns runs; every lifecycle write is one storage step that records
//! who took it.

mod wire;

use std::pin::Pin;

use prost::Message;
use tonic::{Request, Response, Status};
use zonerank_api::v1::{self, assessment_service_server::AssessmentService};
use zonerank_domain::{
    assessment::{
        AlertLevel, EntityFacts, ObjectionState, PeriodFacts, StandingEvent, StandingRow, alerts,
        standings, top_with_ties,
    },
    observation::normalize_value,
    period::Period,
};
use zonerank_storage::{
    AuditEvent, ObjectionFilter, ObjectionRow, ObservationInput, PublicationRow, UpsertCounts,
};

use crate::{
    audit::{method_path, resource, write_event},
    auth::Caller,
    convert::{self, timestamp_micros},
    error::ServiceError,
    paging::{decode_page_token, encode_page_token, page_size},
    ranking::{Ranking, decode, period, rand_suffix, required, run_not_found, scheme_not_found},
};
use wire::{objection_to_wire, publication_to_wire, refused};

/// The assessment service, over the ranking service's store, cache and metrics source.
#[derive(Clone, Debug)]
pub struct Assessment {
    ranking: Ranking,
}

impl Assessment {
    /// The service beside `ranking`.
    pub fn new(ranking: Ranking) -> Assessment {
        Assessment { ranking }
    }
}

/// The event of a successful AssessmentService `method` by `caller`: `counts` of the rows it
/// stored, the `entities` it concerns and the `resources` it stored or changed.
fn assessment_event(
    caller: &Caller,
    method: &str,
    counts: UpsertCounts,
    entities: impl IntoIterator<Item = (zonerank_domain::entity::EntityKind, String)>,
    resources: impl IntoIterator<Item = String>,
) -> AuditEvent {
    write_event(
        caller,
        &method_path("AssessmentService", method),
        counts,
        entities,
        resources,
    )
}

/// The resource name of the published ranking of (scheme, period).
fn publication_resource(scheme_id: &str, period: &str) -> String {
    resource("publications", &format!("{scheme_id}@{period}"))
}

const CREATED_ONE: UpsertCounts = UpsertCounts {
    created: 1,
    updated: 0,
    unchanged: 0,
};

const UPDATED_ONE: UpsertCounts = UpsertCounts {
    created: 0,
    updated: 1,
    unchanged: 0,
};

fn not_published(scheme_id: &str, period: &str) -> ServiceError {
    ServiceError::not_found(
        "zonerank.v1.Publication",
        format!("{scheme_id}@{period}"),
        format!("a published ranking of scheme {scheme_id:?} for {period}"),
    )
}

/// One published period read back: its publication and its entries in rank order.
struct Published {
    publication: PublicationRow,
    period: Period,
    entries: Vec<v1::RankingEntry>,
}

/// Disputed figures one objection may name.
const MAX_DISPUTED: usize = 1000;

type PolicyStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::PolicyListRow, Status>> + Send>>;

impl Assessment {
    fn store(&self) -> &zonerank_storage::Store {
        &self.ranking.store
    }

    /// Every published period of the scheme (current versions), oldest first.
    async fn published(&self, scheme_id: &str) -> Result<Vec<Published>, ServiceError> {
        let mut all = Vec::new();
        for publication in self.store().current_publications(scheme_id).await? {
            let period = Period::parse(&publication.period).map_err(|e| {
                ServiceError::Storage(zonerank_storage::StorageError::Corrupt(e.to_string()))
            })?;
            let entries = self.ranking.all_entries(&publication.run_id).await?;
            all.push(Published {
                publication,
                period,
                entries,
            });
        }
        all.sort_by_key(|p| p.period);
        Ok(all)
    }

    /// The standings of every entity over the scheme's published periods.
    async fn standings(
        &self,
        scheme_id: &str,
    ) -> Result<(Vec<Published>, Vec<StandingRow>), ServiceError> {
        let (_, checked) = self.ranking.scheme(scheme_id, 0).await?;
        let lifecycle = &checked.lifecycle;
        let published = self.published(scheme_id).await?;
        let facts: Vec<PeriodFacts> = published
            .iter()
            .map(|p| PeriodFacts {
                ranked: p.entries.iter().filter(|e| e.rank > 0).count() as u32,
                entities: p
                    .entries
                    .iter()
                    .map(|e| EntityFacts {
                        id: e.entity.as_ref().map(|r| r.id.clone()).unwrap_or_default(),
                        rank: e.rank.max(0) as u32,
                        score: e.score,
                        stars: e.stars.clamp(0, 6) as u8,
                        class_label: e.class_label.clone(),
                        failed_gate: lifecycle
                            .entry_gates
                            .iter()
                            .find(|g| !g.holds(e.extras.get(&g.metric).copied()))
                            .map(ToString::to_string),
                        disqualified: lifecycle
                            .disqualifying
                            .iter()
                            .find(|(m, _)| e.extras.get(m).is_some_and(|&v| v > 0.0))
                            .map(|(m, label)| {
                                if label.is_empty() {
                                    m.clone()
                                } else {
                                    label.clone()
                                }
                            }),
                    })
                    .collect(),
            })
            .collect();
        let rows = standings(&lifecycle.rules, &facts);
        Ok((published, rows))
    }
}

fn standing_to_wire(published: &[Published], row: &StandingRow) -> v1::Standing {
    let p = &published[row.period];
    let e = &p.entries[row.entity];
    v1::Standing {
        entity: e.entity.clone(),
        name: e.name.clone(),
        period: p.publication.period.clone(),
        rank: e.rank,
        score: e.score,
        stars: i32::from(row.stars),
        run_stars: e.stars,
        class_label: e.class_label.clone(),
        events: row
            .events
            .iter()
            .map(|&ev| v1::StandingEvent::from(ev) as i32)
            .collect(),
        first_time_promotion: row.first_time_promotion,
        note: row.note.clone(),
        publication_version: p.publication.version,
    }
}

#[tonic::async_trait]
impl AssessmentService for Assessment {
    async fn publish_ranking(
        &self,
        request: Request<v1::PublishRankingRequest>,
    ) -> Result<Response<v1::PublishRankingResponse>, Status> {
        let caller = Caller::of(&request);
        let by = caller.name().to_string();
        let request = crate::wire_check::checked(request)?;
        let run_id = required("run_id", &request.run_id)?;
        let notice_until = request
            .notice_until
            .as_ref()
            .map(timestamp_micros)
            .ok_or_else(|| ServiceError::invalid("notice_until", "must be set"))?;
        // A moment already past is allowed on purpose: it records a result whose public notice
        // happened before it was entered here (last year's, back-filled), final at once.
        let run = self
            .store()
            .run(&run_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| run_not_found(&run_id))?;
        let event = assessment_event(
            &caller,
            "PublishRanking",
            CREATED_ONE,
            [],
            [
                publication_resource(&run.scheme_id, &run.period),
                resource("runs", &run.run_id),
            ],
        );
        let publication = self
            .store()
            .publish_run(
                &run.scheme_id,
                &run.period,
                &run.run_id,
                notice_until,
                &by,
                Some(&event),
            )
            .await
            .map_err(ServiceError::from)?
            .map_err(|r| refused(r, &run.scheme_id, &run.period))?;
        self.ranking.official_runs_changed().await;
        tracing::info!(run = %run_id, scheme = %run.scheme_id, period = %run.period, by = %by, "ranking published");
        Ok(Response::new(v1::PublishRankingResponse {
            publication: Some(publication_to_wire(&publication)),
        }))
    }

    async fn finalize_ranking(
        &self,
        request: Request<v1::FinalizeRankingRequest>,
    ) -> Result<Response<v1::FinalizeRankingResponse>, Status> {
        let caller = Caller::of(&request);
        let by = caller.name().to_string();
        let request = crate::wire_check::checked(request)?;
        let scheme_id = required("scheme_id", &request.scheme_id)?;
        let period = period("period", &request.period)?.canonical();
        let event = assessment_event(
            &caller,
            "FinalizeRanking",
            UPDATED_ONE,
            [],
            [publication_resource(&scheme_id, &period)],
        );
        let publication = self
            .store()
            .finalize_publication(&scheme_id, &period, &by, Some(&event))
            .await
            .map_err(ServiceError::from)?
            .map_err(|r| refused(r, &scheme_id, &period))?;
        self.ranking.official_runs_changed().await;
        Ok(Response::new(v1::FinalizeRankingResponse {
            publication: Some(publication_to_wire(&publication)),
        }))
    }

    async fn list_publications(
        &self,
        request: Request<v1::ListPublicationsRequest>,
    ) -> Result<Response<v1::ListPublicationsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let scheme_id = required("scheme_id", &request.scheme_id)?;
        let period = period("period", &request.period)?.canonical();
        if self
            .store()
            .scheme(&scheme_id, None)
            .await
            .map_err(ServiceError::from)?
            .is_none()
        {
            return Err(scheme_not_found(&scheme_id).into());
        }
        let rows = self
            .store()
            .publications(&scheme_id, &period)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(v1::ListPublicationsResponse {
            publications: rows.iter().map(publication_to_wire).collect(),
        }))
    }

    async fn file_objection(
        &self,
        request: Request<v1::FileObjectionRequest>,
    ) -> Result<Response<v1::FileObjectionResponse>, Status> {
        let caller = Caller::of(&request);
        let by = caller.name().to_string();
        let request = crate::wire_check::checked(request)?;
        let run_id = required("run_id", &request.run_id)?;
        let entity = request
            .entity
            .ok_or_else(|| ServiceError::invalid("entity", "must be set"))?;
        let kind = convert::enum_field::<v1::EntityKind, zonerank_domain::entity::EntityKind>(
            "entity.kind",
            entity.kind,
        )?;
        let reason = required("reason", &request.reason)?;
        if request.disputed.is_empty() {
            return Err(ServiceError::invalid(
                "disputed",
                "name at least one disputed figure with the value claimed",
            )
            .into());
        }
        if request.disputed.len() > MAX_DISPUTED {
            return Err(ServiceError::invalid(
                "disputed",
                format!("at most {MAX_DISPUTED} figures per objection"),
            )
            .into());
        }
        // The claimed figures pass the checks a submitted figure passes (the indicator, the
        // period, a value the indicator can take, in its canonical unit): an accepted
        // objection writes them as revisions.
        let catalog = self.store().catalog().await.map_err(ServiceError::from)?;
        let mut disputed = Vec::with_capacity(request.disputed.len());
        for (i, d) in request.disputed.iter().enumerate() {
            let field = |f: &str| convert::item_field("disputed", i, f);
            let Some(indicator) = catalog.get(d.indicator.trim()) else {
                return Err(ServiceError::invalid(
                    field("indicator"),
                    format!("{:?} is not a catalog indicator", d.indicator),
                )
                .into());
            };
            let (p, value) =
                normalize_value(indicator, &d.period, d.claimed_value, "").map_err(|faults| {
                    let fault = &faults[0];
                    let name = if fault.field == "value" {
                        "claimed_value"
                    } else {
                        fault.field
                    };
                    ServiceError::invalid(field(name), fault.reason.clone())
                })?;
            disputed.push(v1::DisputedValue {
                indicator: d.indicator.trim().to_string(),
                period: p.canonical(),
                claimed_value: value,
            });
        }
        let run = self
            .store()
            .run(&run_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| run_not_found(&run_id))?;
        if self
            .store()
            .run_entry(&run_id, &entity.id)
            .await
            .map_err(ServiceError::from)?
            .is_none()
        {
            return Err(ServiceError::not_found(
                "zonerank.v1.RankingEntry",
                entity.id.clone(),
                format!("entity {:?} in run {run_id}", entity.id),
            )
            .into());
        }
        let now = zonerank_storage::now_micros();
        let row = ObjectionRow {
            id: format!("obj-{now:x}-{:08x}", rand_suffix()),
            run_id: run_id.clone(),
            scheme_id: run.scheme_id.clone(),
            period: run.period.clone(),
            entity_kind: kind.as_str().to_string(),
            entity_id: entity.id.clone(),
            reason,
            disputed: v1::DisputedValues { values: disputed }.encode_to_vec(),
            evidence: request.evidence.clone(),
            state: ObjectionState::Open,
            filed_by: by,
            filed_at: now,
            resolved_by: None,
            resolved_at: None,
            note: String::new(),
        };
        let event = assessment_event(
            &caller,
            "FileObjection",
            CREATED_ONE,
            [(kind, entity.id.clone())],
            [resource("objections", &row.id), resource("runs", &run_id)],
        );
        let row = self
            .store()
            .file_objection(row, now, Some(&event))
            .await
            .map_err(ServiceError::from)?
            .map_err(|r| refused(r, &run.scheme_id, &run.period))?;
        Ok(Response::new(v1::FileObjectionResponse {
            objection: Some(objection_to_wire(&row)?),
        }))
    }

    async fn list_objections(
        &self,
        request: Request<v1::ListObjectionsRequest>,
    ) -> Result<Response<v1::ListObjectionsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 50, 500)?;
        let after = decode_page_token(&request.page_token)?;
        let state = match request.state {
            0 => None,
            s => Some(convert::enum_field::<v1::ObjectionState, ObjectionState>(
                "state", s,
            )?),
        };
        let run_id = Some(request.run_id.trim().to_string()).filter(|s| !s.is_empty());
        // A run named is a run that exists: an empty list must mean "no objections".
        if let Some(run_id) = &run_id
            && self
                .store()
                .run(run_id)
                .await
                .map_err(ServiceError::from)?
                .is_none()
        {
            return Err(run_not_found(run_id).into());
        }
        let filter = ObjectionFilter {
            run_id,
            entity_id: Some(request.entity_id.trim().to_string()).filter(|s| !s.is_empty()),
            state,
        };
        let (rows, more) = self
            .store()
            .objections(&filter, after.as_deref(), limit)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = match rows.last() {
            Some(last) if more => encode_page_token(&last.id),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListObjectionsResponse {
            objections: rows
                .iter()
                .map(objection_to_wire)
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    async fn resolve_objection(
        &self,
        request: Request<v1::ResolveObjectionRequest>,
    ) -> Result<Response<v1::ResolveObjectionResponse>, Status> {
        let caller = Caller::of(&request);
        let by = caller.name().to_string();
        let request = crate::wire_check::checked(request)?;
        let id = required("id", &request.id)?;
        let accept = match v1::Resolution::try_from(request.resolution) {
            Ok(v1::Resolution::Accept) => true,
            Ok(v1::Resolution::Reject) => false,
            _ => {
                return Err(ServiceError::invalid("resolution", "must be ACCEPT or REJECT").into());
            }
        };
        let objection = self
            .store()
            .objection(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| {
                ServiceError::not_found(
                    "zonerank.v1.Objection",
                    id.clone(),
                    format!("objection {id:?}"),
                )
            })?;
        let (scheme_id, period_text) = (objection.scheme_id.clone(), objection.period.clone());
        let concerned = zonerank_domain::entity::EntityKind::parse(&objection.entity_kind)
            .ok()
            .map(|kind| (kind, objection.entity_id.clone()));
        if !accept {
            let event = assessment_event(
                &caller,
                "ResolveObjection",
                UPDATED_ONE,
                concerned,
                [resource("objections", &id)],
            );
            let row = self
                .store()
                .reject_objection(&id, &by, &request.note, Some(&event))
                .await
                .map_err(ServiceError::from)?
                .map_err(|r| refused(r, &scheme_id, &period_text))?;
            return Ok(Response::new(v1::ResolveObjectionResponse {
                objection: Some(objection_to_wire(&row)?),
                publication: None,
            }));
        }
        let kind =
            zonerank_domain::entity::EntityKind::parse(&objection.entity_kind).map_err(|_| {
                ServiceError::Storage(zonerank_storage::StorageError::Corrupt(
                    objection.entity_kind.clone(),
                ))
            })?;
        let disputed: v1::DisputedValues = decode("disputed values", &objection.disputed)?;
        let corrections = disputed
            .values
            .iter()
            .map(|d| {
                Ok(ObservationInput {
                    kind,
                    entity_id: objection.entity_id.clone(),
                    indicator: d.indicator.clone(),
                    period: Period::parse(&d.period).map_err(|e| {
                        ServiceError::Storage(zonerank_storage::StorageError::Corrupt(
                            e.to_string(),
                        ))
                    })?,
                    value: d.claimed_value,
                    source: format!("objection:{id}"),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        let current = self
            .store()
            .current_publication(&scheme_id, &period_text)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| not_published(&scheme_id, &period_text))?;
        // One event for the call, in the transaction of its first write (the corrections and
        // the objection's state): the recomputed run and the new version follow from it.
        let event = assessment_event(
            &caller,
            "ResolveObjection",
            UpsertCounts::default(),
            concerned,
            [
                resource("objections", &id),
                publication_resource(&scheme_id, &period_text),
            ],
        );
        let (row, _) = self
            .store()
            .accept_objection(&id, &by, &request.note, &corrections, Some(event))
            .await
            .map_err(ServiceError::from)?
            .map_err(|r| refused(r, &scheme_id, &period_text))?;
        // The same scheme version over the same cohort, at the moment after the corrections.
        let old = self
            .store()
            .run(&current.run_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| run_not_found(&current.run_id))?;
        let old_run: v1::RankingRun = decode("run", &old.run)?;
        let (wire, checked) = self
            .ranking
            .scheme(&old.scheme_id, old.scheme_version)
            .await?;
        let (run, _) = self
            .ranking
            .compute_and_store(
                &wire,
                &checked,
                &period("period", &old.period)?,
                old_run.cohort.unwrap_or_default(),
                None,
                None,
            )
            .await?;
        let publication = self
            .store()
            .republish(&current, &run.run_id, vec![id.clone()], &by, None)
            .await
            .map_err(ServiceError::from)?
            .map_err(|r| refused(r, &scheme_id, &period_text))?;
        self.ranking.official_runs_changed().await;
        tracing::info!(objection = %id, run = %run.run_id, version = publication.version, by = %by, "objection accepted; corrected ranking published");
        Ok(Response::new(v1::ResolveObjectionResponse {
            objection: Some(objection_to_wire(&row)?),
            publication: Some(publication_to_wire(&publication)),
        }))
    }

    async fn get_standings(
        &self,
        request: Request<v1::GetStandingsRequest>,
    ) -> Result<Response<v1::GetStandingsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let scheme_id = required("scheme_id", &request.scheme_id)?;
        let bound = |field: &str, text: &str| -> Result<Option<Period>, ServiceError> {
            if text.trim().is_empty() {
                Ok(None)
            } else {
                period(field, text).map(Some)
            }
        };
        let from = bound("from_period", &request.from_period)?;
        let to = bound("to_period", &request.to_period)?;
        if let (Some(from), Some(to)) = (&from, &to)
            && from > to
        {
            return Err(ServiceError::invalid(
                "to_period",
                format!(
                    "{} is before from_period {}",
                    to.canonical(),
                    from.canonical()
                ),
            )
            .into());
        }
        let (published, rows) = self.standings(&scheme_id).await?;
        let entity = request.entity_id.trim();
        let standings = rows
            .iter()
            .filter(|r| {
                let p = &published[r.period];
                from.is_none_or(|f| p.period >= f)
                    && to.is_none_or(|t| p.period <= t)
                    && (entity.is_empty()
                        || p.entries[r.entity]
                            .entity
                            .as_ref()
                            .is_some_and(|e| e.id == entity))
            })
            .map(|r| standing_to_wire(&published, r))
            .collect();
        Ok(Response::new(v1::GetStandingsResponse { standings }))
    }

    async fn get_top_lists(
        &self,
        request: Request<v1::GetTopListsRequest>,
    ) -> Result<Response<v1::GetTopListsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let scheme_id = required("scheme_id", &request.scheme_id)?;
        let period_value = period("period", &request.period)?;
        let n = match request.n {
            0 => 10,
            n if (1..=1000).contains(&n) => n as usize,
            _ => return Err(ServiceError::invalid("n", "must be 0 (10) to 1000").into()),
        };
        let (published, rows) = self.standings(&scheme_id).await?;
        let Some(index) = published.iter().position(|p| p.period == period_value) else {
            return Err(not_published(&scheme_id, &period_value.canonical()).into());
        };
        let here = &published[index];
        let previous_stars = |entity: usize| -> i32 {
            let id = here.entries[entity].entity.as_ref().map(|e| e.id.as_str());
            rows.iter()
                .rev()
                .filter(|r| r.period < index)
                .find(|r| {
                    published[r.period].entries[r.entity]
                        .entity
                        .as_ref()
                        .map(|e| e.id.as_str())
                        == id
                })
                .map_or(0, |r| i32::from(r.stars))
        };
        let listed = |entity: usize, stars: i32, tied: bool, note: String| {
            let e = &here.entries[entity];
            v1::ListedEntity {
                entity: e.entity.clone(),
                name: e.name.clone(),
                rank: e.rank,
                score: e.score,
                previous_rank: e.previous_rank,
                rank_change: e.rank_change,
                score_change: if e.previous_rank > 0 {
                    zonerank_domain::ranking::weighting::shown(e.score - e.previous_score)
                } else {
                    0.0
                },
                stars,
                previous_stars: previous_stars(entity),
                tied_at_cut: tied,
                note,
            }
        };
        let stars_here: Vec<i32> = {
            let mut s = vec![0; here.entries.len()];
            for r in rows.iter().filter(|r| r.period == index) {
                s[r.entity] = i32::from(r.stars);
            }
            s
        };
        let ranked: Vec<usize> = (0..here.entries.len())
            .filter(|&i| here.entries[i].rank > 0)
            .collect();
        let top = top_with_ties(ranked.clone(), n, |&i| here.entries[i].score.to_bits())
            .into_iter()
            .map(|(i, tied)| listed(i, stars_here[i], tied, String::new()))
            .collect();
        let mut movers: Vec<usize> = ranked
            .into_iter()
            .filter(|&i| here.entries[i].previous_rank > 0)
            .collect();
        let change = |i: usize| {
            let e = &here.entries[i];
            if request.fastest_by_score {
                e.score - e.previous_score
            } else {
                f64::from(e.rank_change)
            }
        };
        movers.sort_by(|&a, &b| {
            change(b)
                .total_cmp(&change(a))
                .then(here.entries[a].rank.cmp(&here.entries[b].rank))
        });
        let fastest = top_with_ties(movers, n, |&i| change(i).to_bits())
            .into_iter()
            .map(|(i, tied)| listed(i, stars_here[i], tied, String::new()))
            .collect();
        let with = |event: StandingEvent, first_time: bool| -> Vec<v1::ListedEntity> {
            rows.iter()
                .filter(|r| {
                    r.period == index
                        && r.events.contains(&event)
                        && (!first_time || r.first_time_promotion)
                })
                .map(|r| listed(r.entity, i32::from(r.stars), false, r.note.clone()))
                .collect()
        };
        Ok(Response::new(v1::GetTopListsResponse {
            publication: Some(publication_to_wire(&here.publication)),
            top,
            fastest,
            first_time_promotions: with(StandingEvent::Promoted, true),
            demotions: with(StandingEvent::Demoted, false),
            titles_lost: with(StandingEvent::TitleLost, false),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<v1::ListAlertsRequest>,
    ) -> Result<Response<v1::ListAlertsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let scheme_id = required("scheme_id", &request.scheme_id)?;
        let period = period("period", &request.period)?;
        let (wire, checked) = self.ranking.scheme(&scheme_id, 0).await?;
        let thresholds = &checked.lifecycle.thresholds;
        if thresholds.is_empty() {
            return Ok(Response::new(v1::ListAlertsResponse::default()));
        }
        let mut cohort = request.cohort.or(wire.cohort.clone()).unwrap_or_default();
        cohort.entity_kind = wire.entity_kind;
        let table = self
            .ranking
            .metrics
            .table(v1::StreamMetricsRequest {
                metrics: thresholds.iter().map(|t| t.metric.clone()).collect(),
                period: period.canonical(),
                cohort: Some(cohort),
                as_of: None,
                chunk_size: 0,
            })
            .await?;
        let columns: Vec<Vec<Option<f64>>> = (0..thresholds.len())
            .map(|j| {
                table
                    .rows
                    .iter()
                    .map(
                        |row| match row.values.get(j).and_then(|v| v.result.as_ref()) {
                            Some(v1::metric_value::Result::Value(v)) => Some(*v),
                            _ => None,
                        },
                    )
                    .collect()
            })
            .collect();
        let found = alerts(thresholds, &columns)
            .into_iter()
            .map(|a| {
                let row = &table.rows[a.entity];
                let t = &thresholds[a.threshold];
                v1::Alert {
                    entity: row.entity.clone(),
                    name: row.name.clone(),
                    metric: t.metric.clone(),
                    value: a.value,
                    threshold: a.bound,
                    level: v1::AlertLevel::from(a.level) as i32,
                    label: if t.label.is_empty() {
                        match a.level {
                            AlertLevel::Warning => "warning".to_string(),
                            AlertLevel::Excellent => "excellent".to_string(),
                        }
                    } else {
                        t.label.clone()
                    },
                }
            })
            .collect();
        Ok(Response::new(v1::ListAlertsResponse {
            alerts: found,
            data_version: table.data_version,
        }))
    }

    async fn export_policy_list(
        &self,
        request: Request<v1::ExportPolicyListRequest>,
    ) -> Result<Response<PolicyStream>, Status> {
        let request = crate::wire_check::checked(request)?;
        let run_id = required("run_id", &request.run_id)?;
        if self
            .store()
            .run(&run_id)
            .await
            .map_err(ServiceError::from)?
            .is_none()
        {
            return Err(run_not_found(&run_id).into());
        }
        let rows: Vec<Result<v1::PolicyListRow, Status>> = self
            .ranking
            .all_entries(&run_id)
            .await?
            .into_iter()
            .map(|e| {
                Ok(v1::PolicyListRow {
                    credit_code: e.entity.map(|r| r.id).unwrap_or_default(),
                    name: e.name,
                    class_label: e.class_label,
                    policies: e.policies,
                    rank: e.rank,
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(rows))))
    }
}
