//! RankingService: versioned schemes, stored and reproducible runs, explanations, most
//! improved, what-if simulation and rank robustness.

pub(crate) mod run;
pub mod scheme;
mod source;

use std::time::Duration;

use prost::Message;
use tonic::{Request, Response, Status};
use zonerank_api::page::RankingPage;
use zonerank_api::page_server::ranking_service_server::RankingService;
use zonerank_api::v1;
use zonerank_cache::{Cache, CacheKey};
use zonerank_domain::{
    entity::{EntityKind, RegionLevel, validate_id},
    period::Period,
    ranking::{
        ReportFormat, engine::rank, explain::explain_cancellable, improved::most_improved,
        robustness::rank_robustness_cancellable, weighting::shown,
    },
};
use zonerank_storage::{AuditEvent, RunFilter, RunRow, Store, UpsertCounts};

pub use source::MetricsSource;

use crate::{
    audit::{method_path, resource, write_event},
    auth::Caller,
    budget::{self, Call},
    convert::{self, micros_timestamp, timestamp_micros},
    error::ServiceError,
    metrics::Catalog,
    paging::{
        decode_offset_token, decode_page_token, encode_offset_token, encode_page_token,
        fingerprint, offset_page, page_size,
    },
    report,
};
use scheme::CheckedScheme;

/// The scheme of a stored run, checked, with its rank target.
struct StoredRun {
    checked: CheckedScheme,
    rank_target: i32,
}

/// Pages of finished runs stay cached this long; runs never change, so no version is needed.
/// A deleted run is never served from the cache: its existence is read from the store before
/// the cache is asked, and run ids are never reused.
const PAGE_TTL: Duration = Duration::from_secs(3600);

/// The official page of a scheme and period (GetRanking without a run id) is cached under the
/// current *generation* of official runs: a random number in the cache, replaced after every
/// write that can change which run answers a scheme and period (a run computed or deleted, a
/// scheme version created or archived, a ranking published, finalised or republished). A cached
/// official page is then served with two cache reads and no database read. The generation is
/// read before the store is, so a page resolved from data older than a write is filed under a
/// generation nobody reads any more. Where the generation cannot be read (the cache is down),
/// the run is resolved from the store as before.
///
/// Replicas of the ranking service share a generation only through a shared cache (Redis);
/// the in-process cache belongs to one process. This TTL bounds how long an official page can
/// lag a write whose generation could not be replaced (a cache failing at that moment). A
/// write made while Redis is marked down skips the store; the generation is therefore deleted
/// when Redis answers again, before the cache is used (`Cache::forget_after_outage`).
const OFFICIAL_PAGE_TTL: Duration = Duration::from_secs(60);

/// The generation outlives the pages filed under it; when it expires or is evicted a new
/// random one starts, which no old page can match.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// The cache key of the generation of official runs.
fn generation_key() -> CacheKey {
    CacheKey::new("ranking.official.generation", 0, b"")
}

/// Entries in ComputeRanking's answer.
const TOP_ENTRIES: usize = 20;

/// The stream ExportRanking answers with.
type ExportStream = std::pin::Pin<
    Box<
        dyn tokio_stream::Stream<Item = Result<v1::ExportRankingResponse, Status>> + Send + 'static,
    >,
>;

/// The ranking service.
#[derive(Clone, Debug)]
pub struct Ranking {
    pub(crate) store: Store,
    pub(crate) cache: Cache,
    pub(crate) metrics: MetricsSource,
}

impl Ranking {
    /// The service over `store`, asking `metrics` for tables and caching in `cache`.
    pub fn new(store: Store, cache: Cache, metrics: MetricsSource) -> Ranking {
        // The writes made while Redis is down cannot replace the generation; dropping it when
        // Redis is back starts a new one, so pages cached before the outage are not served.
        cache.forget_after_outage(&generation_key());
        Ranking {
            store,
            cache,
            metrics,
        }
    }
}

/// Stores the built-in example schemes as version 1 where their ids are free.
pub async fn ensure_builtin_schemes(store: &Store) -> Result<(), ServiceError> {
    let catalog = Catalog::load(store).await?;
    for wire in scheme::builtin_schemes() {
        if store.scheme(&wire.id, None).await?.is_none() {
            scheme::check("scheme", &wire, &catalog)?;
            store_scheme(store, wire, true, None).await?;
        }
    }
    Ok(())
}

/// The full path of a RankingService method.
fn ranking_method(name: &str) -> String {
    method_path("RankingService", name)
}

/// The event of a successful RankingService `method` by `caller` that stored `resources`.
fn ranking_event(
    caller: &Caller,
    method: &str,
    created: i64,
    resources: impl IntoIterator<Item = String>,
) -> AuditEvent {
    write_event(
        caller,
        &ranking_method(method),
        UpsertCounts {
            created,
            ..UpsertCounts::default()
        },
        [],
        resources,
    )
}

/// Stores a version of `wire`; with `caller`, the CreateScheme event is recorded with it.
async fn store_scheme(
    store: &Store,
    wire: v1::Scheme,
    first_only: bool,
    caller: Option<&Caller>,
) -> Result<v1::Scheme, ServiceError> {
    let kind = convert::entity_kind(wire.entity_kind).unwrap_or(EntityKind::Zone);
    let event = caller
        .map(|caller| ranking_event(caller, "CreateScheme", 1, [resource("schemes", &wire.id)]));
    let row = store
        .insert_scheme(
            &wire.id,
            &wire.name,
            kind.as_str(),
            first_only,
            |version, created_at| {
                let mut stored = wire.clone();
                stored.version = version;
                stored.created_at = Some(micros_timestamp(created_at));
                stored.encode_to_vec()
            },
            event.as_ref(),
        )
        .await?;
    decode_scheme(&row.definition)
}

/// A stored scheme version as answers show it: its definition and whether it is archived.
fn stored_scheme(row: &zonerank_storage::SchemeRow) -> Result<v1::Scheme, ServiceError> {
    let mut wire = decode_scheme(&row.definition)?;
    wire.archived = row.archived;
    Ok(wire)
}

fn decode_scheme(bytes: &[u8]) -> Result<v1::Scheme, ServiceError> {
    v1::Scheme::decode(bytes).map_err(|e| {
        ServiceError::Storage(zonerank_storage::StorageError::Corrupt(format!(
            "scheme: {e}"
        )))
    })
}

pub(crate) fn decode<M: Message + Default>(what: &str, bytes: &[u8]) -> Result<M, ServiceError> {
    M::decode(bytes).map_err(|e| {
        ServiceError::Storage(zonerank_storage::StorageError::Corrupt(format!(
            "{what}: {e}"
        )))
    })
}

/// The format of cached GetRanking pages, part of their keys: 1 since their page tokens are
/// offset tokens bound to the request (pages cached before hold tokens now refused).
const PAGE_FORMAT: u64 = 1;

/// The fingerprint an offset token of `request` is bound to: its encoding without the page
/// size and token, which may change from page to page (AIP-158).
fn request_fingerprint<M: Message + Clone>(request: &M, unpaged: impl FnOnce(&mut M)) -> u64 {
    let mut bare = request.clone();
    unpaged(&mut bare);
    fingerprint(&[&bare.encode_to_vec()])
}

/// A name the request must give, trimmed.
pub(crate) fn required(field: &str, value: &str) -> Result<String, ServiceError> {
    match value.trim() {
        "" => Err(ServiceError::invalid(field, "must be set")),
        name => Ok(name.to_string()),
    }
}

pub(crate) fn scheme_not_found(id: &str) -> ServiceError {
    ServiceError::not_found("zonerank.v1.Scheme", id, format!("scheme {id:?}"))
}

pub(crate) fn run_not_found(run_id: &str) -> ServiceError {
    ServiceError::not_found(
        "zonerank.v1.RankingRun",
        run_id,
        format!("ranking run {run_id:?}"),
    )
}

/// The scheme's runs are reached by scheme and period, and none was computed for the period.
fn never_computed(scheme_id: &str, period: &str) -> ServiceError {
    ServiceError::NotFound {
        resource_type: "zonerank.v1.RankingRun".to_string(),
        resource_name: format!("{scheme_id}@{period}"),
        message: format!(
            "no ranking of scheme {scheme_id:?} for {period}: the scheme exists but was never \
             computed for that period; call ComputeRanking with this scheme_id and period"
        ),
    }
}

pub(crate) fn period(field: &str, text: &str) -> Result<Period, ServiceError> {
    if text.trim().is_empty() {
        return Err(ServiceError::invalid(field, "must be set, e.g. 2024"));
    }
    Period::parse(text).map_err(|e| ServiceError::invalid(field, e))
}

impl Ranking {
    pub(crate) async fn scheme(
        &self,
        id: &str,
        version: i32,
    ) -> Result<(v1::Scheme, CheckedScheme), ServiceError> {
        if id.trim().is_empty() {
            return Err(ServiceError::invalid("scheme_id", "must be set"));
        }
        if version < 0 {
            return Err(ServiceError::invalid(
                "scheme_version",
                format!("{version}: versions count from 1; 0 means the latest"),
            ));
        }
        let row = self
            .store
            .scheme(id.trim(), (version > 0).then_some(version))
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(
                    "zonerank.v1.Scheme",
                    id.trim(),
                    if version > 0 {
                        format!("scheme {id:?} version {version}")
                    } else {
                        format!("scheme {id:?}")
                    },
                )
            })?;
        let wire = stored_scheme(&row)?;
        let catalog = Catalog::load(&self.store).await?;
        let checked = scheme::check("scheme", &wire, &catalog)?;
        Ok((wire, checked))
    }

    /// Computes a run of `wire` for `period` over `cohort` at `as_of` (the last commit when
    /// unset or later) and stores it: ComputeRanking and the recomputation after an accepted
    /// objection. With `caller`, the ComputeRanking event (the scheme and the run; its entries
    /// created) is stored with the run. Returns the run and its first [`TOP_ENTRIES`] entries.
    pub(crate) async fn compute_and_store(
        &self,
        wire: &v1::Scheme,
        checked: &CheckedScheme,
        period: &Period,
        cohort: v1::CohortSelector,
        as_of: Option<&prost_types::Timestamp>,
        caller: Option<&Caller>,
    ) -> Result<(v1::RankingRun, Vec<v1::RankingEntry>), Status> {
        // A run is pinned to the moment asked for, or the stamp of the last commit it can see
        // when none was or the moment is later: the revision history then reproduces it
        // exactly, whatever is written later. The data version is the one shown at that moment.
        let pinned = self
            .store
            .pin(as_of.map(timestamp_micros))
            .await
            .map_err(ServiceError::from)?;
        let as_of = micros_timestamp(pinned.as_of);
        let parents = self.region_parents().await?;
        let known_previous = self
            .reusable_previous(wire, period, &cohort, pinned.version)
            .await?;
        let (input, outcome) = run::compute(
            &self.metrics,
            checked,
            period,
            &cohort,
            Some(as_of),
            &parents,
            known_previous,
        )
        .await?;
        let (encoded, top) =
            run::encoded_entries(&input, checked, &outcome, wire.rank_target, TOP_ENTRIES);
        let included = outcome.included_count() as i64;
        let mut star_counts = std::collections::HashMap::new();
        for e in outcome.entries().filter(|e| e.stars > 0) {
            *star_counts.entry(i32::from(e.stars)).or_insert(0) += 1;
        }
        let computed_at = zonerank_storage::now_micros();
        let run_id = format!("run-{computed_at:x}-{:08x}", rand_suffix());
        let run = v1::RankingRun {
            run_id: run_id.clone(),
            scheme_id: wire.id.clone(),
            scheme_version: wire.version,
            period: period.canonical(),
            cohort: Some(cohort.clone()),
            as_of: Some(as_of),
            computed_at: Some(micros_timestamp(computed_at)),
            data_version: pinned.version,
            entity_count: included,
            excluded_count: encoded.len() as i64 - included,
            weights: outcome.weights.iter().copied().map(shown).collect(),
            meeting_rank_target: (0..outcome.len())
                .filter(|&i| run::meets_rank_target(&outcome, wire.rank_target, i))
                .count() as i64,
            star_counts,
        };
        let event = caller.map(|caller| {
            ranking_event(
                caller,
                "ComputeRanking",
                encoded.len() as i64,
                [resource("schemes", &wire.id), resource("runs", &run_id)],
            )
        });
        self.store
            .insert_run(
                RunRow {
                    run_id: run_id.clone(),
                    scheme_id: wire.id.clone(),
                    scheme_version: wire.version,
                    period: period.canonical(),
                    run: run.encode_to_vec(),
                    computed_at,
                },
                encoded,
                event.as_ref(),
            )
            .await
            .map_err(ServiceError::from)?;
        self.official_runs_changed().await;
        zonerank_telemetry::instruments()
            .rankings_computed
            .add(1, &[]);
        tracing::info!(run = %run_id, scheme = %wire.id, period = %period, entities = included, "ranking computed");
        Ok((run, top))
    }

    /// The previous period's ranks from its latest stored run, when that run is of the same
    /// scheme version and cohort and saw the same data version as this one: every write
    /// (figures, reference data, corrections) moves the data version, so an equal version
    /// means the same input, and ranking it again would give the same ranks and scores.
    /// None when there is no such run: the previous period is then ranked again.
    async fn reusable_previous(
        &self,
        wire: &v1::Scheme,
        period: &Period,
        cohort: &v1::CohortSelector,
        data_version: i64,
    ) -> Result<Option<run::PreviousRanks>, ServiceError> {
        let previous_period = period.year_earlier().canonical();
        let Some(row) = self
            .store
            .runs_of(&wire.id, &previous_period, 1)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let stored: v1::RankingRun = decode("run", &row.run)?;
        let same = row.scheme_version == wire.version
            && stored.data_version == data_version
            && stored.cohort.as_ref() == Some(cohort);
        if !same {
            return Ok(None);
        }
        let mut ranks = run::PreviousRanks::new();
        for (entity_id, bytes) in self.store.run_entries_by_entity(&row.run_id).await? {
            let entry: run::StoredRank = decode("entry", &bytes)?;
            if entry.rank > 0 {
                ranks.insert(entity_id, (entry.rank as u32, entry.score));
            }
        }
        tracing::debug!(run = %row.run_id, period = %previous_period, "previous period's ranks from its stored run");
        Ok(Some(ranks))
    }

    async fn region_parents(&self) -> Result<run::RegionParents, ServiceError> {
        Ok(self.store.region_tree().await?)
    }

    /// The current generation of official runs (see [`OFFICIAL_PAGE_TTL`]), starting a new
    /// one when the cache has none; None when the cache cannot be read or written.
    async fn generation(&self) -> Option<u64> {
        let key = generation_key();
        match self.cache.get(&key).await {
            Ok(Some(bytes)) => Some(u64::from_le_bytes(bytes.as_slice().try_into().ok()?)),
            Ok(None) => {
                let generation = random_u64();
                self.cache
                    .put(&key, &generation.to_le_bytes(), GENERATION_TTL)
                    .await
                    .ok()?;
                Some(generation)
            }
            Err(_) => None,
        }
    }

    /// Called after every committed write that can change which run answers a scheme and
    /// period: official pages cached before it are no longer looked up.
    pub(crate) async fn official_runs_changed(&self) {
        let generation = random_u64().to_le_bytes();
        if let Err(e) = self
            .cache
            .put(&generation_key(), &generation, GENERATION_TTL)
            .await
        {
            tracing::warn!(
                error = %e,
                "the generation of official runs could not be replaced; cached official pages \
                 may lag this write until they expire"
            );
        }
    }

    async fn resolve_run(
        &self,
        run_id: &str,
        scheme_id: &str,
        period_text: &str,
    ) -> Result<RunRow, ServiceError> {
        let run_id = run_id.trim();
        if !run_id.is_empty() {
            return self
                .store
                .run(run_id)
                .await?
                .ok_or_else(|| run_not_found(run_id));
        }
        let period = period("period", period_text)?.canonical();
        let scheme_id = scheme_id.trim();
        if scheme_id.is_empty() {
            return Err(ServiceError::invalid(
                "run_id",
                "give a run_id, or scheme_id and period",
            ));
        }
        if self.store.scheme(scheme_id, None).await?.is_none() {
            return Err(scheme_not_found(scheme_id));
        }
        self.official_run(scheme_id, &period)
            .await?
            .ok_or_else(|| never_computed(scheme_id, &period))
    }

    /// The run that answers "the ranking of this scheme for this period": the current
    /// published version once one exists (a newer computed run does not replace it), else the
    /// newest one computed with the scheme's latest version over its own cohort, else the newest over its
    /// own cohort, else the newest. Runs over another cohort are reached by run_id.
    async fn official_run(
        &self,
        scheme_id: &str,
        period: &str,
    ) -> Result<Option<RunRow>, ServiceError> {
        if let Some(published) = self.store.current_publication(scheme_id, period).await?
            && let Some(run) = self.store.run(&published.run_id).await?
        {
            return Ok(Some(run));
        }
        let runs = self.store.runs_of(scheme_id, period, 50).await?;
        let Some(latest) = self.store.scheme(scheme_id, None).await? else {
            return Ok(runs.into_iter().next());
        };
        let scheme = decode_scheme(&latest.definition)?;
        let mut cohort = scheme.cohort.clone().unwrap_or_default();
        cohort.entity_kind = scheme.entity_kind;
        let mut own_cohort = None;
        for run in &runs {
            let stored: v1::RankingRun = decode("run", &run.run)?;
            if stored.cohort.as_ref() == Some(&cohort) {
                if stored.scheme_version == scheme.version {
                    return Ok(Some(run.clone()));
                }
                own_cohort.get_or_insert(run);
            }
        }
        // No run of the latest version yet: the newest over the scheme's own cohort.
        Ok(own_cohort.cloned().or_else(|| runs.into_iter().next()))
    }

    /// A stored run read back: its scheme, its entries, and the engine input rebuilt from them.
    async fn stored(
        &self,
        run: &RunRow,
    ) -> Result<(StoredRun, Vec<v1::RankingEntry>, run::RunInput), ServiceError> {
        let (wire, checked) = self.scheme(&run.scheme_id, run.scheme_version).await?;
        let entries = self.all_entries(&run.run_id).await?;
        let input = run::input_from_entries(&checked, &entries);
        let scheme = StoredRun {
            checked,
            rank_target: wire.rank_target,
        };
        Ok((scheme, entries, input))
    }

    pub(crate) async fn all_entries(
        &self,
        run_id: &str,
    ) -> Result<Vec<v1::RankingEntry>, ServiceError> {
        self.store
            .run_entries(run_id, 0, u64::MAX >> 1)
            .await?
            .into_iter()
            .map(|(_, bytes)| decode("entry", &bytes))
            .collect()
    }

    async fn page(
        &self,
        request: &v1::GetRankingRequest,
        run: &RunRow,
    ) -> Result<v1::GetRankingResponse, ServiceError> {
        let limit = page_size(request.page_size, 50, 1000)?;
        // Bound to the run and the group (the request names its run by now), so a token
        // cannot page another listing from the middle.
        let print = request_fingerprint(request, |r| {
            r.page_size = 0;
            r.page_token.clear();
        });
        let from =
            i32::try_from(decode_offset_token(&request.page_token, print)?).map_err(|_| {
                ServiceError::invalid("page_token", "not a token this service handed out")
            })?;
        let (entries, next) = if request.group.trim().is_empty() {
            let mut rows = self.store.run_entries(&run.run_id, from, limit + 1).await?;
            let next = (rows.len() as u64 > limit).then(|| rows[limit as usize].0);
            rows.truncate(limit as usize);
            let entries = rows
                .into_iter()
                .map(|(_, b)| decode("entry", &b))
                .collect::<Result<Vec<v1::RankingEntry>, _>>()?;
            (entries, next)
        } else {
            // Group pages filter the run; positions still page them.
            let group = request.group.trim();
            let mut selected = Vec::new();
            let mut next = None;
            for (position, e) in self.all_entries(&run.run_id).await?.into_iter().enumerate() {
                if (position as i32) < from || !e.group_ranks.iter().any(|g| g.group == group) {
                    continue;
                }
                if selected.len() as u64 == limit {
                    next = Some(position as i32);
                    break;
                }
                selected.push(e);
            }
            (selected, next)
        };
        Ok(v1::GetRankingResponse {
            run: Some(decode("run", &run.run)?),
            entries,
            next_page_token: next
                .map(|p| encode_offset_token(p as u64, print))
                .unwrap_or_default(),
        })
    }
}

impl Ranking {
    /// What a report of a stored run shows: the run, its scheme, its entries and the cities.
    async fn report_data(&self, run: &RunRow) -> Result<report::ReportData, ServiceError> {
        let (scheme, _) = self.scheme(&run.scheme_id, run.scheme_version).await?;
        let entries = self.all_entries(&run.run_id).await?;
        let cities = self
            .store
            .regions()
            .await?
            .into_iter()
            .filter(|r| r.level == RegionLevel::City)
            .map(|r| (r.code, r.name))
            .collect();
        Ok(report::ReportData {
            run: decode("run", &run.run)?,
            scheme,
            entries,
            cities,
        })
    }
}

#[tonic::async_trait]
impl RankingService for Ranking {
    async fn export_ranking(
        &self,
        request: Request<v1::ExportRankingRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let request = crate::wire_check::checked(request)?;
        let format: ReportFormat =
            convert::enum_field::<v1::ReportFormat, _>("format", request.format)?;
        let run_id = required("run_id", &request.run_id)?;
        let run = self
            .store
            .run(&run_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| run_not_found(&run_id))?;
        let data = self.report_data(&run).await?;
        let bytes = tokio::task::spawn_blocking(move || report::build(format, &data))
            .await
            .map_err(|e| ServiceError::Internal(format!("building the report: {e}")))??;
        let mut first = Some((
            report::file_name(&run.run_id, format),
            format.content_type().to_owned(),
        ));
        let messages: Vec<Result<v1::ExportRankingResponse, Status>> = bytes
            .chunks(report::CHUNK_BYTES)
            .map(|chunk| {
                let (file_name, content_type) = first.take().unwrap_or_default();
                Ok(v1::ExportRankingResponse {
                    chunk: chunk.to_vec(),
                    file_name,
                    content_type,
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn create_scheme(
        &self,
        request: Request<v1::CreateSchemeRequest>,
    ) -> Result<Response<v1::CreateSchemeResponse>, Status> {
        let caller = Caller::of(&request);
        let wire = crate::wire_check::checked(request)?
            .scheme
            .ok_or_else(|| ServiceError::invalid("scheme", "must be set"))?;
        validate_id(EntityKind::Zone, &wire.id)
            .map_err(|e| ServiceError::invalid("scheme.id", e))?;
        if wire.name.trim().is_empty() {
            return Err(ServiceError::invalid("scheme.name", "must not be empty").into());
        }
        let catalog = Catalog::load(&self.store).await?;
        let (_, plan) = scheme::check_new("scheme", &wire, &catalog)?;
        let mut notes = plan.notes;
        // A new version brings an archived scheme back (the store un-archives every version).
        if let Some(previous) = self
            .store
            .scheme(&wire.id, None)
            .await
            .map_err(ServiceError::from)?
            && previous.archived
        {
            notes.push(format!(
                "scheme {:?} was archived; this version brings it back into ListSchemes and \
                 ComputeRanking",
                wire.id
            ));
        }
        let stored = store_scheme(&self.store, wire, false, Some(&caller)).await?;
        self.official_runs_changed().await;
        tracing::info!(scheme = %stored.id, version = stored.version, "scheme stored");
        Ok(Response::new(v1::CreateSchemeResponse {
            scheme: Some(stored),
            weights_used: plan.weights,
            notes,
        }))
    }

    async fn get_scheme(
        &self,
        request: Request<v1::GetSchemeRequest>,
    ) -> Result<Response<v1::GetSchemeResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let row = self
            .store
            .scheme(
                request.scheme_id.trim(),
                (request.version > 0).then_some(request.version),
            )
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| {
                if request.version > 0 {
                    ServiceError::not_found(
                        "zonerank.v1.Scheme",
                        request.scheme_id.trim(),
                        format!(
                            "scheme {:?} version {}",
                            request.scheme_id.trim(),
                            request.version
                        ),
                    )
                } else {
                    scheme_not_found(request.scheme_id.trim())
                }
            })?;
        Ok(Response::new(v1::GetSchemeResponse {
            scheme: Some(stored_scheme(&row)?),
        }))
    }

    async fn list_schemes(
        &self,
        request: Request<v1::ListSchemesRequest>,
    ) -> Result<Response<v1::ListSchemesResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 50, 500)?;
        let after = decode_page_token(&request.page_token)?;
        let (rows, more) = self
            .store
            .latest_schemes(after.as_deref(), limit, request.show_archived)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = if more {
            rows.last()
                .map(|r| encode_page_token(&r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListSchemesResponse {
            schemes: rows.iter().map(stored_scheme).collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    async fn compute_ranking(
        &self,
        request: Request<v1::ComputeRankingRequest>,
    ) -> Result<Response<v1::ComputeRankingResponse>, Status> {
        let caller = Caller::of(&request);
        let request = crate::wire_check::checked(request)?;
        let (wire, checked) = self
            .scheme(&request.scheme_id, request.scheme_version)
            .await?;
        if wire.archived {
            return Err(ServiceError::failed_precondition(
                "ARCHIVED",
                format!("scheme {}", wire.id),
                format!(
                    "scheme {:?} is archived: its versions and runs stay readable, but it is not \
                     computed again; CreateScheme with this id makes a new version and brings it \
                     back",
                    wire.id
                ),
            )
            .into());
        }
        let period = period("period", &request.period)?;
        let mut cohort = request.cohort.or(wire.cohort.clone()).unwrap_or_default();
        cohort.entity_kind = wire.entity_kind;
        let (run, entries) = self
            .compute_and_store(
                &wire,
                &checked,
                &period,
                cohort,
                request.as_of.as_ref(),
                Some(&caller),
            )
            .await?;
        Ok(Response::new(v1::ComputeRankingResponse {
            run: Some(run),
            top: entries,
        }))
    }

    async fn get_ranking(
        &self,
        request: Request<v1::GetRankingRequest>,
    ) -> Result<Response<RankingPage>, Status> {
        let mut request = crate::wire_check::checked(request)?;
        run::check_group(&request.group)?;
        let official = if request.run_id.trim().is_empty() {
            self.generation().await.map(|generation| {
                let mut print = request.encode_to_vec();
                print.extend_from_slice(&generation.to_le_bytes());
                CacheKey::new("ranking.official.page", PAGE_FORMAT, &print)
            })
        } else {
            None
        };
        if let Some(key) = &official
            && let Ok(Some(bytes)) = self.cache.get(key).await
        {
            // Sent as the cache holds it: only this service writes these keys, with
            // `encode_to_vec` of a page.
            return Ok(Response::new(RankingPage::Encoded(bytes.into())));
        }
        let run = self
            .resolve_run(&request.run_id, &request.scheme_id, &request.period)
            .await?;
        request.run_id = run.run_id.clone();
        request.scheme_id.clear();
        request.period.clear();
        let key = CacheKey::new("ranking.page", PAGE_FORMAT, &request.encode_to_vec());
        let (bytes, _) = self
            .cache
            .get_or_compute(&key, PAGE_TTL, || async {
                Ok::<_, ServiceError>(self.page(&request, &run).await?.encode_to_vec())
            })
            .await?;
        if let Some(key) = &official
            && let Err(e) = self.cache.put(key, &bytes, OFFICIAL_PAGE_TTL).await
        {
            tracing::warn!(error = %e, "official ranking page not cached");
        }
        Ok(Response::new(RankingPage::Encoded(bytes.into())))
    }

    async fn explain_ranking(
        &self,
        request: Request<v1::ExplainRankingRequest>,
    ) -> Result<Response<v1::ExplainRankingResponse>, Status> {
        let call = Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        let entity = request
            .entity
            .ok_or_else(|| ServiceError::invalid("entity", "must be set"))?;
        let run = self.resolve_run(&request.run_id, "", "").await?;
        let (stored, entries, input) = call.run(self.stored(&run)).await?;
        let checked = &stored.checked;
        let Some(index) = entries
            .iter()
            .position(|e| e.entity.as_ref().is_some_and(|r| r.id == entity.id))
        else {
            return Err(ServiceError::not_found(
                "zonerank.v1.RankingEntry",
                entity.id.clone(),
                format!("entity {:?} in run {}", entity.id, run.run_id),
            )
            .into());
        };
        let metrics: Vec<String> = checked
            .scheme
            .criteria
            .iter()
            .map(|c| c.metric.clone())
            .collect();
        let ranked = entries.iter().filter(|e| e.rank > 0).count();
        budget::explain(ranked, metrics.len())?;
        // The search re-runs the engine up to 80 times per criterion (about 10 ms over 200
        // entities, 0.3 s over 5,000 in a release build), so it runs off the async workers.
        let explanation = call
            .blocking(move |cancel| {
                let engine_input = input.as_input(&stored.checked);
                Ok(match rank(&engine_input) {
                    Ok(outcome) => Ok(explain_cancellable(&engine_input, &outcome, index, cancel)?),
                    Err(e) => Err(ServiceError::invalid("scheme", e)),
                })
            })
            .await??;
        let above = explanation.as_ref().and_then(|x| x.above);
        Ok(Response::new(v1::ExplainRankingResponse {
            entry: Some(entries[index].clone()),
            next_above: above.map(|a| entries[a].clone()),
            score_gap: explanation.as_ref().map_or(0.0, |x| x.score_gap),
            gaps: explanation
                .map(|x| {
                    x.gaps
                        .into_iter()
                        .map(|g| v1::CriterionGap {
                            metric: metrics[g.criterion].clone(),
                            raw_gap: g.raw_gap,
                            score_gap: g.score_gap,
                            normalized_gap: g.normalized_gap,
                            raw_target: g.raw_target,
                            rank_with_target: g.rank_with_target.map_or(0, |r| r as i32),
                            note: g.note.unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    async fn get_most_improved(
        &self,
        request: Request<v1::GetMostImprovedRequest>,
    ) -> Result<Response<v1::GetMostImprovedResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let size = page_size(request.page_size, 10, 1000)?;
        let print = request_fingerprint(&request, |r| {
            r.page_size = 0;
            r.page_token.clear();
        });
        let offset = decode_offset_token(&request.page_token, print)?;
        let run = self
            .resolve_run("", &request.scheme_id, &request.period)
            .await?;
        let (stored, _, mut input) = self.stored(&run).await?;
        let checked = &stored.checked;
        if !request.previous_period.trim().is_empty() {
            // Against the latest run of another period instead of the year before.
            let other = self
                .resolve_run("", &request.scheme_id, &request.previous_period)
                .await?;
            let before = run::previous_ranks(self.all_entries(&other.run_id).await?);
            input.previous = input
                .entities
                .iter()
                .map(|e| before.get(&e.id).copied())
                .collect();
        }
        let outcome = input.rank(checked)?;
        let ordered = most_improved(&outcome, usize::MAX, request.by_score);
        let (chosen, next_page_token) = offset_page(ordered, offset, size, print);
        let refreshed = run::entries(&input, checked, &outcome, stored.rank_target);
        let mut by_id: std::collections::HashMap<String, v1::RankingEntry> = refreshed
            .into_iter()
            .map(|e| (e.entity.clone().unwrap_or_default().id, e))
            .collect();
        Ok(Response::new(v1::GetMostImprovedResponse {
            entries: chosen
                .into_iter()
                .filter_map(|i| by_id.remove(&input.entities[i].id))
                .collect(),
            next_page_token,
        }))
    }

    async fn simulate_ranking(
        &self,
        request: Request<v1::SimulateRankingRequest>,
    ) -> Result<Response<v1::SimulateRankingResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let size = page_size(request.page_size, 100, 1000)?;
        let print = request_fingerprint(&request, |r| {
            r.page_size = 0;
            r.page_token.clear();
        });
        let offset = decode_offset_token(&request.page_token, print)?;
        let wire = request
            .scheme
            .ok_or_else(|| ServiceError::invalid("scheme", "must be set"))?;
        let catalog = Catalog::load(&self.store).await?;
        let (checked, _) = scheme::check_new("scheme", &wire, &catalog)?;
        let period = period("period", &request.period)?;
        let mut cohort = request.cohort.or(wire.cohort.clone()).unwrap_or_default();
        cohort.entity_kind = wire.entity_kind;
        let parents = self.region_parents().await?;
        let (input, outcome) = run::compute(
            &self.metrics,
            &checked,
            &period,
            &cohort,
            request.as_of,
            &parents,
            None,
        )
        .await?;
        let entries = run::entries(&input, &checked, &outcome, wire.rank_target);
        let entity_count = outcome.included_count() as i64;
        let (entries, next_page_token) = offset_page(entries, offset, size, print);
        Ok(Response::new(v1::SimulateRankingResponse {
            entries,
            next_page_token,
            entity_count,
        }))
    }

    async fn get_rank_robustness(
        &self,
        request: Request<v1::GetRankRobustnessRequest>,
    ) -> Result<Response<v1::GetRankRobustnessResponse>, Status> {
        let call = Call::start(&request);
        let request = crate::wire_check::checked(request)?;
        let samples = match request.samples {
            n if n < 0 => {
                return Err(ServiceError::invalid("samples", "must not be negative").into());
            }
            0 => 1000,
            n => (n as usize).min(100_000),
        };
        let spread = if request.spread == 0.0 {
            0.2
        } else {
            request.spread
        };
        if !(0.0..1.0).contains(&spread) {
            return Err(
                ServiceError::invalid("spread", "a relative perturbation in [0, 1)").into(),
            );
        }
        let size = page_size(request.page_size, 100, 1000)?;
        let run = self.resolve_run(&request.run_id, "", "").await?;
        let print = fingerprint(&[
            run.run_id.as_bytes(),
            &(samples as u64).to_be_bytes(),
            &spread.to_bits().to_be_bytes(),
            &request.seed.to_be_bytes(),
        ]);
        let offset = decode_offset_token(&request.page_token, print)?;
        let (stored, _, input) = call.run(self.stored(&run)).await?;
        let outcome = input.rank(&stored.checked)?;
        budget::robustness(samples, outcome.included_count())?;
        let seed = request.seed;
        let (intervals, input) = call
            .blocking(move |cancel| {
                let engine_input = input.as_input(&stored.checked);
                let intervals = rank_robustness_cancellable(
                    &engine_input,
                    &outcome,
                    samples,
                    spread,
                    seed,
                    cancel,
                )?;
                Ok((intervals, input))
            })
            .await?;
        // Stored entries are in rank order, so the included ones page in rank order.
        let ranked = input
            .entities
            .iter()
            .zip(intervals)
            .filter_map(|(entity, interval)| {
                interval.map(|i| v1::RankInterval {
                    entity: Some(entity.clone()),
                    rank: i.rank as i32,
                    p5: i.p5 as i32,
                    p50: i.p50 as i32,
                    p95: i.p95 as i32,
                })
            });
        let (entities, next_page_token) = offset_page(ranked, offset, size, print);
        Ok(Response::new(v1::GetRankRobustnessResponse {
            entities,
            next_page_token,
        }))
    }

    async fn list_runs(
        &self,
        request: Request<v1::ListRunsRequest>,
    ) -> Result<Response<v1::ListRunsResponse>, Status> {
        let request = crate::wire_check::checked(request)?;
        let limit = page_size(request.page_size, 100, 1000)?;
        let after = match decode_page_token(&request.page_token)? {
            None => None,
            Some(key) => Some(run_key(&key).ok_or_else(|| {
                ServiceError::invalid("page_token", "not a token this service handed out")
            })?),
        };
        let scheme_id = Some(request.scheme_id.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(id) = &scheme_id
            && self
                .store
                .scheme(id, None)
                .await
                .map_err(ServiceError::from)?
                .is_none()
        {
            return Err(scheme_not_found(id).into());
        }
        let filter = RunFilter {
            scheme_id,
            period: if request.period.trim().is_empty() {
                None
            } else {
                Some(period("period", &request.period)?.canonical())
            },
        };
        let (rows, more) = self
            .store
            .runs(
                &filter,
                after.as_ref().map(|(at, id)| (*at, id.as_str())),
                limit,
            )
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = match rows.last() {
            Some(last) if more => {
                encode_page_token(&format!("{}/{}", last.computed_at, last.run_id))
            }
            _ => String::new(),
        };
        Ok(Response::new(v1::ListRunsResponse {
            runs: rows
                .iter()
                .map(|r| decode("run", &r.run))
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    async fn delete_run(
        &self,
        request: Request<v1::DeleteRunRequest>,
    ) -> Result<Response<v1::DeleteRunResponse>, Status> {
        let caller = Caller::of(&request);
        let run_id = required("run_id", &crate::wire_check::checked(request)?.run_id)?;
        // Published runs are immutable: every version stays readable.
        if let Some(published) = self
            .store
            .publication_of_run(&run_id)
            .await
            .map_err(ServiceError::from)?
        {
            return Err(ServiceError::failed_precondition(
                "PUBLISHED",
                format!("run {run_id}"),
                format!(
                    "run {run_id} is version {} of the published ranking of scheme {:?} for {}; \
                     published runs are kept",
                    published.version, published.scheme_id, published.period
                ),
            )
            .into());
        }
        let event = ranking_event(&caller, "DeleteRun", 0, [resource("runs", &run_id)]);
        if !self
            .store
            .delete_run(&run_id, Some(&event))
            .await
            .map_err(ServiceError::from)?
        {
            return Err(run_not_found(&run_id).into());
        }
        self.official_runs_changed().await;
        tracing::info!(run = %run_id, "ranking run deleted");
        Ok(Response::new(v1::DeleteRunResponse {}))
    }

    async fn archive_scheme(
        &self,
        request: Request<v1::ArchiveSchemeRequest>,
    ) -> Result<Response<v1::ArchiveSchemeResponse>, Status> {
        let caller = Caller::of(&request);
        let id = required("scheme_id", &crate::wire_check::checked(request)?.scheme_id)?;
        let event = ranking_event(&caller, "ArchiveScheme", 0, [resource("schemes", &id)]);
        if !self
            .store
            .archive_scheme(&id, Some(&event))
            .await
            .map_err(ServiceError::from)?
        {
            return Err(scheme_not_found(&id).into());
        }
        self.official_runs_changed().await;
        let row = self
            .store
            .scheme(&id, None)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| scheme_not_found(&id))?;
        tracing::info!(scheme = %id, "scheme archived");
        Ok(Response::new(v1::ArchiveSchemeResponse {
            scheme: Some(stored_scheme(&row)?),
        }))
    }
}

/// The key a ListRuns page token stands for: the last run's computation time and id.
fn run_key(key: &str) -> Option<(i64, String)> {
    let (at, id) = key.split_once('/')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// A random suffix so two runs computed in the same microsecond get different ids.
pub(crate) fn rand_suffix() -> u32 {
    random_u64() as u32
}

/// 64 random bits from std's per-process randomly keyed SipHash over the current time (ids and
/// cache generations need uniqueness, not secrecy, so no extra RNG crate).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(zonerank_storage::now_micros());
    hasher.finish()
}
