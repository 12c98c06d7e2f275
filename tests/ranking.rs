//! RankingService end to end, against PostgreSQL and Redis, with the ranking service asking a
//! separate metrics server over gRPC.

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{Deployment, henan_two_cities};

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Ranking = v1::ranking_service_client::RankingServiceClient<tonic::transport::Channel>;

/// Eight zones in two cities; per zone: revenue 2022 and 2023, tax and land area 2023.
/// (id, city, tags, revenue 2022, revenue 2023, tax 2023, land 2023) — 亿元, 亿元, 万元, 亩.
const ZONES: [(&str, &str, &str, f64, f64, f64, f64); 8] = [
    (
        "LY-1",
        "410300",
        "一中心五组团",
        100.0,
        130.0,
        30_000.0,
        10_000.0,
    ),
    (
        "LY-2",
        "410300",
        "一中心五组团",
        200.0,
        220.0,
        50_000.0,
        20_000.0,
    ),
    ("LY-3", "410300", "四支撑", 80.0, 120.0, 12_000.0, 8_000.0),
    ("LY-4", "410300", "四支撑", 150.0, 150.0, 20_000.0, 16_000.0),
    ("ZZ-1", "410100", "", 300.0, 330.0, 90_000.0, 30_000.0),
    ("ZZ-2", "410100", "", 120.0, 108.0, 15_000.0, 12_000.0),
    ("ZZ-3", "410100", "", 90.0, 117.0, 25_000.0, 9_000.0),
    ("ZZ-4", "410100", "", 60.0, 66.0, 6_000.0, 6_000.0),
];

async fn setup(client: &mut Ingestion) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: henan_two_cities(),
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: ZONES
                .iter()
                .map(|(id, city, tag, ..)| v1::Zone {
                    id: id.to_string(),
                    name: format!("{id} zone"),
                    region_code: city.to_string(),
                    kind: v1::ZoneKind::AgglomerationZone as i32,
                    tags: if tag.is_empty() {
                        vec![]
                    } else {
                        vec![tag.to_string()]
                    },
                    leading_industries: vec![],
                })
                .collect(),
            ..Default::default()
        })
        .await
        .expect("zones");
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for (i, (id, _, _, r22, r23, tax, land)) in ZONES.into_iter().enumerate() {
        // 2021, so 2022 ranks too and ranks can change.
        let r21 = r22 / (1.3 - 0.05 * i as f64);
        csv.push_str(&format!("ZONE,{id},revenue,2021,{r21},亿元\n"));
        csv.push_str(&format!(
            "ZONE,{id},revenue,2022,{r22},亿元\nZONE,{id},revenue,2023,{r23},亿元\n"
        ));
        csv.push_str(&format!(
            "ZONE,{id},tax,2023,{tax},万元\nZONE,{id},land_area,2023,{land},亩\n"
        ));
        csv.push_str(&format!(
            "ZONE,{id},tax,2022,{},万元\nZONE,{id},land_area,2022,{land},亩\n",
            tax * 0.9
        ));
    }
    let report = client
        .import_csv(v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

fn scheme(id: &str, growth_weight: f64) -> v1::Scheme {
    v1::Scheme {
        id: id.into(),
        name: "test assessment".into(),
        entity_kind: v1::EntityKind::Zone as i32,
        cohort: Some(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: "410000".into(),
            ..Default::default()
        }),
        criteria: vec![
            v1::Criterion {
                metric: "yoy(revenue)".into(),
                weight: growth_weight,
                ..Default::default()
            },
            v1::Criterion {
                metric: "per_mu(tax)".into(),
                weight: 1.0 - growth_weight,
                ..Default::default()
            },
        ],
        normalization: v1::Normalization::MinMax as i32,
        weighting: v1::Weighting::Fixed as i32,
        aggregation: v1::Aggregation::WeightedSum as i32,
        missing_policy: v1::MissingPolicy::Worst as i32,
        star_rules: vec![v1::StarRule {
            level: 1,
            min_score: 0.5,
            gates: vec!["revenue >= 1000000".into()],
        }],
        rank_target: 3,
        ..Default::default()
    }
}

/// Every entry of a run, in rank order (the runs here have 8).
async fn run_entries(ranking: &mut Ranking, run_id: &str) -> Vec<v1::RankingEntry> {
    ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run_id.to_string(),
            page_size: 8,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn ids(entries: &[v1::RankingEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.entity.as_ref().unwrap().id.clone())
        .collect()
}

#[tokio::test]
async fn a_ranking_is_computed_paged_explained_recomputed_and_the_old_run_stays() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    setup(&mut ingestion).await;

    // The built-in examples are there from the start.
    let schemes = ranking
        .list_schemes(v1::ListSchemesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = schemes.schemes.iter().map(|s| s.id.clone()).collect();
    assert!(
        names.contains(&"henan-zone-assessment".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"enterprise-per-mu".to_string()),
        "{names:?}"
    );

    // A bad scheme is refused with the fields at fault.
    let mut bad = scheme("bad", 0.5);
    bad.criteria[0].weight = -1.0;
    bad.criteria[1].metric = "per_mu(taxx)".into();
    let status = ranking
        .create_scheme(v1::CreateSchemeRequest { scheme: Some(bad) })
        .await
        .expect_err("bad scheme");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(
        fields.contains(&"scheme.criteria[1].metric".to_string()),
        "{fields:?}"
    );

    let created = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("test-assessment", 0.5)),
        })
        .await
        .expect("scheme")
        .into_inner()
        .scheme
        .unwrap();
    assert_eq!(created.version, 1);

    let first = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("compute")
        .into_inner();
    let run = first.run.unwrap();
    assert_eq!(run.entity_count, 8);
    assert_eq!(run.scheme_version, 1);
    assert_eq!(run.meeting_rank_target, 3);

    // Paged through: three pages of 3, 3 and 2, ranks in order, every zone once.
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = ranking
            .get_ranking(v1::GetRankingRequest {
                run_id: run.run_id.clone(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        paged.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(paged.len(), 8);
    // A token continues its own run and group only; the page size may change.
    let first = ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run.run_id.clone(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let resized = ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run.run_id.clone(),
            page_size: 10,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("the same listing, larger pages")
        .into_inner();
    assert_eq!(ids(&resized.entries), ids(&paged[3..]));
    for (group, token) in [
        ("region:410300", first.next_page_token.clone()),
        ("", "35".to_string()),
    ] {
        let refused = ranking
            .get_ranking(v1::GetRankingRequest {
                run_id: run.run_id.clone(),
                group: group.into(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect_err("a token of another listing");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{group:?}");
        assert!(refused.message().starts_with("page_token"), "{refused:?}");
    }
    // A group filter must name a region by its code or a tag.
    for group in ["nonsense", "region:999", "region:", "tag:", "city:410300"] {
        let refused = ranking
            .get_ranking(v1::GetRankingRequest {
                run_id: run.run_id.clone(),
                group: group.into(),
                ..Default::default()
            })
            .await
            .expect_err("an ill-formed group");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{group:?}");
        assert!(refused.message().starts_with("group"), "{refused:?}");
    }
    let ranks: Vec<i32> = paged.iter().map(|e| e.rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    let mut seen = ids(&paged);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8);
    // The scores are what the scheme says: 0.5 × min-max(yoy) + 0.5 × min-max(tax per mu).
    let yoy: Vec<f64> = ZONES.iter().map(|z| (z.4 / z.3 - 1.0) * 100.0).collect();
    let per_mu: Vec<f64> = ZONES.iter().map(|z| z.5 / z.6).collect();
    let minmax = |v: &[f64], x: f64| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        (x - lo) / (hi - lo)
    };
    for e in &paged {
        let i = ZONES
            .iter()
            .position(|z| z.0 == e.entity.as_ref().unwrap().id)
            .unwrap();
        let expected = 0.5 * minmax(&yoy, yoy[i]) + 0.5 * minmax(&per_mu, per_mu[i]);
        assert!(
            (e.score - expected).abs() < 1e-9,
            "{}: {} vs {expected}",
            ZONES[i].0,
            e.score
        );
        assert_eq!(e.criteria.len(), 2);
        assert!((e.criteria[0].raw.unwrap() - yoy[i]).abs() < 1e-9);
    }
    // ZZ-1 (330亿, top on tax per mu) passes the 100亿 gate; small zones cannot have a star.
    let zz4 = paged
        .iter()
        .find(|e| e.entity.as_ref().unwrap().id == "ZZ-4")
        .unwrap();
    assert_eq!(zz4.stars, 0);

    // A group page: Luoyang only, ranked within the province and within the city.
    let luoyang = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            group: "region:410300".into(),
            ..Default::default()
        })
        .await
        .expect("group")
        .into_inner();
    assert_eq!(
        luoyang.run.as_ref().unwrap().run_id,
        run.run_id,
        "latest run by scheme and period"
    );
    assert!(ids(&luoyang.entries).iter().all(|id| id.starts_with("LY-")));
    assert_eq!(luoyang.entries.len(), 4);
    let city_ranks: Vec<i32> = luoyang
        .entries
        .iter()
        .map(|e| {
            e.group_ranks
                .iter()
                .find(|g| g.group == "region:410300")
                .unwrap()
                .rank
        })
        .collect();
    assert_eq!(city_ranks, [1, 2, 3, 4]);

    // Explained: the second is told the first and how far it is.
    let second = paged[1].clone();
    let explanation = ranking
        .explain_ranking(v1::ExplainRankingRequest {
            run_id: run.run_id.clone(),
            entity: second.entity.clone(),
        })
        .await
        .expect("explain")
        .into_inner();
    let above = explanation.next_above.expect("someone is above");
    assert_eq!(above.entity, paged[0].entity);
    assert!((explanation.score_gap - (paged[0].score - second.score)).abs() < 1e-9);
    assert_eq!(explanation.gaps.len(), 2);
    // Each advised value, alone, gives a better rank (the engine was re-run with it); inside
    // the column's range a weighted sum of min-max columns moves by score gap ÷ weight (0.5).
    for (j, gap) in explanation.gaps.iter().enumerate() {
        let Some(target) = gap.raw_target else {
            assert!(gap.note.starts_with("no value of"), "{gap:?}");
            continue;
        };
        assert!(
            gap.rank_with_target >= 1 && gap.rank_with_target < second.rank,
            "{gap:?}"
        );
        let raw = second.criteria[j].raw.unwrap();
        assert!(target > raw, "{gap:?}");
        assert!((gap.raw_gap.unwrap() - (target - raw)).abs() < 1e-9);
        let column: Vec<f64> = if j == 0 { yoy.clone() } else { per_mu.clone() };
        if target < column.iter().copied().fold(f64::MIN, f64::max) {
            let needed = explanation.score_gap / 0.5;
            assert!(
                gap.normalized_gap >= needed && gap.normalized_gap < needed * 1.001,
                "{gap:?}"
            );
        }
    }

    // Robustness: seeded and reproducible; intervals contain the median.
    let robust = |seed| {
        let mut ranking = ranking.clone();
        let run_id = run.run_id.clone();
        async move {
            ranking
                .get_rank_robustness(v1::GetRankRobustnessRequest {
                    run_id,
                    samples: 200,
                    spread: 0.3,
                    seed,
                    ..Default::default()
                })
                .await
                .expect("robustness")
                .into_inner()
                .entities
        }
    };
    let (a, b) = (robust(7).await, robust(7).await);
    assert_eq!(a, b, "the same seed gives the same answer");
    assert_eq!(a.len(), 8);
    assert!(a.iter().all(|i| i.p5 <= i.p50 && i.p50 <= i.p95));

    // A new ingestion, a new run with new numbers; the old run reads back unchanged.
    let report = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: "entity_kind,entity_id,indicator,period,value,unit\nZONE,ZZ-4,revenue,2023,120,亿元\n"
                .as_bytes()
                .to_vec(),
            ..Default::default()
        })
        .await
        .expect("revision")
        .into_inner();
    assert_eq!(report.updated, 1);
    let second_run = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("recompute")
        .into_inner()
        .run
        .unwrap();
    assert_ne!(second_run.run_id, run.run_id);
    let new_top = run_entries(&mut ranking, &second_run.run_id).await;
    let zz4_now = new_top
        .iter()
        .find(|e| e.entity.as_ref().unwrap().id == "ZZ-4")
        .unwrap();
    assert!(
        (zz4_now.criteria[0].raw.unwrap() - 100.0).abs() < 1e-9,
        "yoy 60→120 is +100%"
    );
    assert_ne!(zz4_now.score, zz4.score);
    let old = run_entries(&mut ranking, &run.run_id).await;
    assert_eq!(old, paged, "the old run reads back unchanged");

    // A run over another cohort is kept but does not replace the scheme's own ranking.
    let luoyang_only = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            cohort: Some(v1::CohortSelector {
                entity_kind: v1::EntityKind::Zone as i32,
                region_code: "410300".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("custom cohort")
        .into_inner()
        .run
        .unwrap();
    assert_eq!(luoyang_only.entity_count, 4);
    let official = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(official.run.unwrap().run_id, second_run.run_id);

    // Editing a scheme makes a new version; the old version stays readable.
    let v2 = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("test-assessment", 0.8)),
        })
        .await
        .unwrap()
        .into_inner()
        .scheme
        .unwrap();
    assert_eq!(v2.version, 2);
    let v1_again = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "test-assessment".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .scheme
        .unwrap();
    assert!((v1_again.criteria[0].weight - 0.5).abs() < 1e-12);

    // What-if: other weights, nothing stored.
    let simulated = ranking
        .simulate_ranking(v1::SimulateRankingRequest {
            scheme: Some(scheme("what-if", 1.0)),
            period: "2023".into(),
            page_size: 8,
            ..Default::default()
        })
        .await
        .expect("simulate")
        .into_inner()
        .entries;
    assert_eq!(
        simulated[0].entity.as_ref().unwrap().id,
        "ZZ-4",
        "growth alone: ZZ-4's +100% leads"
    );
    let latest = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        latest.run.unwrap().run_id,
        second_run.run_id,
        "simulation stored no run"
    );

    // 十快: ranked by rank improvement over 2022.
    let improved = ranking
        .get_most_improved(v1::GetMostImprovedRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .expect("most improved")
        .into_inner()
        .entries;
    assert_eq!(improved.len(), 3);
    let changes: Vec<i32> = improved.iter().map(|e| e.rank_change).collect();
    assert!(changes[0] > 0, "{changes:?}");
    for e in &improved {
        assert_eq!(e.rank_change, e.previous_rank - e.rank);
        assert_eq!(
            e.meets_rank_target,
            e.rank <= 3,
            "the scheme's top-3 target"
        );
    }
    assert!(changes.windows(2).all(|w| w[0] >= w[1]), "{changes:?}");

    // Recomputed as of the first run's moment: the first run's data and data version.
    assert!(second_run.data_version > run.data_version);
    let client = ranking.clone();
    let rerun = |as_of: prost_types::Timestamp| {
        let mut ranking = client.clone();
        async move {
            ranking
                .compute_ranking(v1::ComputeRankingRequest {
                    scheme_id: "test-assessment".into(),
                    scheme_version: 1,
                    period: "2023".into(),
                    as_of: Some(as_of),
                    ..Default::default()
                })
                .await
                .expect("compute as of")
                .into_inner()
                .run
                .unwrap()
        }
    };
    let replay = rerun(run.as_of.unwrap()).await;
    assert_eq!(replay.as_of, run.as_of);
    assert_eq!(replay.data_version, run.data_version);
    let replayed = run_entries(&mut ranking, &replay.run_id).await;
    let scores = |entries: &[v1::RankingEntry]| {
        entries
            .iter()
            .map(|e| (e.entity.as_ref().unwrap().id.clone(), e.rank, e.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&replayed), scores(&paged));
    // A moment later than the last commit is pinned to that commit, with its version.
    let mut later = second_run.as_of.unwrap();
    later.seconds += 3600;
    let pinned = rerun(later).await;
    assert_eq!(pinned.as_of, second_run.as_of);
    assert_eq!(pinned.data_version, second_run.data_version);
    deployment.stop().await;
}

/// The zone's rank in a fresh run of `scheme_id` for 2023.
async fn rank_now(
    ranking: &mut v1::ranking_service_client::RankingServiceClient<tonic::transport::Channel>,
    scheme_id: &str,
    zone: &str,
) -> i32 {
    let run = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: scheme_id.into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("compute")
        .into_inner()
        .run
        .unwrap();
    ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run.run_id,
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("ranking")
        .into_inner()
        .entries
        .into_iter()
        .find(|e| e.entity.as_ref().unwrap().id == zone)
        .expect("ranked")
        .rank
}

/// Records the zone's 2023 tax so that its tax per mu becomes `per_mu`.
async fn record_tax_per_mu(ingestion: &mut Ingestion, zone: &str, per_mu: f64) {
    let land = ZONES.iter().find(|z| z.0 == zone).unwrap().6;
    let request = v1::IngestObservationsRequest {
        observations: vec![v1::Observation {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: zone.into(),
            }),
            indicator: "tax".into(),
            period: "2023".into(),
            value: per_mu * land,
            unit: "万元".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let report = ingestion
        .ingest_observations(tokio_stream::iter([request]))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(report.updated, 1, "{report:?}");
}

#[tokio::test]
async fn explained_advice_written_as_data_gains_the_rank_under_topsis_and_entropy() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    setup(&mut ingestion).await;
    // Entropy weights and TOPSIS ideals both move with every value, so no inverse of the
    // normalisation can say what tax per mu gains a rank; only a re-run of the engine can.
    let mut topsis = scheme("topsis-entropy", 0.5);
    topsis.criteria[0].metric = "revenue".into();
    topsis.weighting = v1::Weighting::Entropy as i32;
    topsis.aggregation = v1::Aggregation::Topsis as i32;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(topsis),
        })
        .await
        .expect("scheme");
    let run = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "topsis-entropy".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("compute")
        .into_inner();
    let third = run
        .top
        .iter()
        .find(|e| e.rank == 3)
        .expect("a third")
        .clone();
    let zone = third.entity.as_ref().unwrap().id.clone();

    let explanation = ranking
        .explain_ranking(v1::ExplainRankingRequest {
            run_id: run.run.unwrap().run_id,
            entity: third.entity.clone(),
        })
        .await
        .expect("explain")
        .into_inner();
    let gap = explanation
        .gaps
        .iter()
        .find(|g| g.metric == "per_mu(tax)")
        .unwrap();
    let target = gap.raw_target.expect("tax per mu alone can gain the rank");
    let raw = third.criteria[1].raw.unwrap();
    assert!(target > raw, "{gap:?}");
    assert!(gap.rank_with_target < 3, "{gap:?}");

    // Half the advised change is not enough …
    record_tax_per_mu(&mut ingestion, &zone, raw + (target - raw) / 2.0).await;
    assert_eq!(rank_now(&mut ranking, "topsis-entropy", &zone).await, 3);
    // … the advised value, recorded as data and ranked afresh, gains the rank it said.
    record_tax_per_mu(&mut ingestion, &zone, target).await;
    assert_eq!(
        rank_now(&mut ranking, "topsis-entropy", &zone).await,
        gap.rank_with_target
    );
    deployment.stop().await;
}

#[tokio::test]
async fn two_ranking_pods_starting_together_seed_each_built_in_scheme_once() {
    use zonerank_integration_tests::{RunningServer, server_args};
    use zonerank_server::Services;
    use zonerank_storage::test_support::TestDatabase;

    let database = TestDatabase::postgres().await.expect("database");
    database.migrated_store().await.expect("migrate");
    let args = server_args(&database.url, None);
    let (a, b) = tokio::join!(
        RunningServer::start(args.clone(), Services::RANKING),
        RunningServer::start(args.clone(), Services::RANKING),
    );
    let mut ranking =
        zonerank_api::v1::ranking_service_client::RankingServiceClient::new(a.channel().await);
    let first = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "henan-zone-assessment".into(),
            version: 0,
        })
        .await
        .expect("seeded")
        .into_inner()
        .scheme
        .unwrap();
    assert_eq!(first.version, 1, "one version, not one per pod");
    tokio::join!(a.stop(), b.stop());
    database.drop().await.unwrap();
}

/// A deployment with the zones and figures of `setup` and the scheme `test-assessment`.
async fn deployed() -> (Deployment, Ingestion, Ranking) {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    setup(&mut ingestion).await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("test-assessment", 0.5)),
        })
        .await
        .expect("scheme");
    (deployment, ingestion, ranking)
}

async fn compute(ranking: &mut Ranking, period: &str) -> v1::RankingRun {
    ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "test-assessment".into(),
            period: period.into(),
            ..Default::default()
        })
        .await
        .expect("compute")
        .into_inner()
        .run
        .unwrap()
}

/// The code is NOT_FOUND and ResourceInfo names the missing thing: (type, name).
fn missing(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let info = status.get_details_resource_info().expect("ResourceInfo");
    (info.resource_type, info.resource_name)
}

/// What a refused call's NOT_FOUND names: (type, name).
async fn not_found<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> (String, String) {
    missing(&call.await.err().expect("refused"))
}

/// The fields of an INVALID_ARGUMENT's violations with their descriptions.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[tokio::test]
async fn unknown_schemes_runs_periods_regions_kinds_ids_and_entities_are_not_found() {
    let (deployment, _ingestion, mut ranking) = deployed().await;
    let run = compute(&mut ranking, "2023").await;

    assert_eq!(
        not_found(ranking.get_scheme(v1::GetSchemeRequest {
            scheme_id: "no-such-scheme".into(),
            version: 0,
        }))
        .await,
        pair("zonerank.v1.Scheme", "no-such-scheme")
    );
    assert_eq!(
        not_found(ranking.compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "no-such-scheme".into(),
            period: "2023".into(),
            ..Default::default()
        }))
        .await,
        pair("zonerank.v1.Scheme", "no-such-scheme")
    );
    assert_eq!(
        not_found(ranking.get_ranking(v1::GetRankingRequest {
            scheme_id: "no-such-scheme".into(),
            period: "2023".into(),
            ..Default::default()
        }))
        .await,
        pair("zonerank.v1.Scheme", "no-such-scheme")
    );

    // A known scheme never computed for the period is told apart from an unknown scheme.
    let status = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2021".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        missing(&status),
        pair("zonerank.v1.RankingRun", "test-assessment@2021")
    );
    assert!(
        status.message().contains("never computed") && status.message().contains("ComputeRanking"),
        "{}",
        status.message()
    );
    assert_eq!(
        not_found(ranking.get_ranking(v1::GetRankingRequest {
            run_id: "run-0-0".into(),
            ..Default::default()
        }))
        .await,
        pair("zonerank.v1.RankingRun", "run-0-0")
    );

    // Cohorts naming what does not exist, in runs and simulations alike.
    let with_cohort = |cohort: v1::CohortSelector| v1::ComputeRankingRequest {
        scheme_id: "test-assessment".into(),
        period: "2023".into(),
        cohort: Some(cohort),
        ..Default::default()
    };
    assert_eq!(
        not_found(ranking.compute_ranking(with_cohort(v1::CohortSelector {
            region_code: "419900".into(),
            ..Default::default()
        })))
        .await,
        pair("zonerank.v1.Region", "419900")
    );
    assert_eq!(
        not_found(ranking.compute_ranking(with_cohort(v1::CohortSelector {
            zone_kind: 42,
            ..Default::default()
        })))
        .await,
        pair("zonerank.v1.ZoneKind", "42")
    );
    assert_eq!(
        not_found(ranking.compute_ranking(with_cohort(v1::CohortSelector {
            ids: vec!["LY-1".into(), "LY-9".into()],
            ..Default::default()
        })))
        .await,
        pair("zonerank.v1.Zone", "LY-9")
    );
    assert_eq!(
        not_found(ranking.simulate_ranking(v1::SimulateRankingRequest {
            scheme: Some(scheme("what-if", 0.5)),
            period: "2023".into(),
            cohort: Some(v1::CohortSelector {
                region_code: "419900".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await,
        pair("zonerank.v1.Region", "419900")
    );

    let status = ranking
        .explain_ranking(v1::ExplainRankingRequest {
            run_id: run.run_id.clone(),
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "XX-1".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(missing(&status).1, "XX-1");
    deployment.stop().await;
}

#[tokio::test]
async fn create_scheme_refuses_what_would_fail_or_never_apply_and_says_what_weights_a_run_uses() {
    let (deployment, mut ingestion, mut ranking) = deployed().await;
    let client = ranking.clone();
    let create = move |scheme: v1::Scheme| {
        let mut ranking = client.clone();
        async move {
            ranking
                .create_scheme(v1::CreateSchemeRequest {
                    scheme: Some(scheme),
                })
                .await
        }
    };

    // Entropy over a growth rate: refused at once, the criterion named.
    let mut entropy = scheme("entropy-growth", 0.5);
    entropy.weighting = v1::Weighting::Entropy as i32;
    entropy.criteria.push(v1::Criterion {
        metric: "energy_intensity_change".into(),
        ..Default::default()
    });
    let found = violations(&create(entropy.clone()).await.unwrap_err());
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["scheme.criteria[0].metric", "scheme.criteria[2].metric"]
    );
    assert!(
        found[0].1.contains("`yoy(revenue)` can be negative"),
        "{found:?}"
    );
    let status = ranking
        .simulate_ranking(v1::SimulateRankingRequest {
            scheme: Some(entropy),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "scheme.criteria[0].metric");

    // Thresholds no score of the scheme can reach.
    let mut topsis = scheme("topsis", 0.5);
    topsis.aggregation = v1::Aggregation::Topsis as i32;
    topsis.star_rules[0].min_score = 40.0;
    assert_eq!(
        violations(&create(topsis).await.unwrap_err()),
        [pair(
            "scheme.star_rules[0].min_score",
            "40 is outside the scores this scheme can give (0–1 with TOPSIS)"
        )]
    );
    let mut efficacy = scheme("efficacy", 0.5);
    efficacy.normalization = v1::Normalization::Efficacy as i32;
    efficacy.star_rules[0].min_score = 76.0;
    efficacy.class_cuts = vec![
        v1::ClassCut {
            label: "A".into(),
            min_score: Some(90.0),
            ..Default::default()
        },
        v1::ClassCut {
            label: "B".into(),
            min_score: Some(0.5),
            ..Default::default()
        },
    ];
    assert_eq!(
        violations(&create(efficacy.clone()).await.unwrap_err()),
        [pair(
            "scheme.class_cuts[1].min_score",
            "0.5 is outside the scores this scheme can give (60–100 with EFFICACY and WEIGHTED_SUM)"
        )]
    );
    efficacy.class_cuts[1].min_score = Some(60.0);
    create(efficacy).await.expect("in range");

    // Weights not summing to 1 are taken and scaled, and the answer says so.
    let mut heavy = scheme("heavy", 0.5);
    heavy.criteria[0].weight = 0.8;
    heavy.criteria[1].weight = 0.4;
    let answer = create(heavy).await.expect("accepted").into_inner();
    assert_eq!(answer.weights_used, [0.666666666666667, 0.333333333333333]);
    assert_eq!(
        answer.notes,
        ["weights sum to 1.2; a run divides each by 1.2 so they sum to 1"]
    );
    // Weights shown without float noise, in the answer and in the run.
    let mut tenths = scheme("tenths", 0.5);
    tenths.criteria = [
        "yoy(revenue)",
        "per_mu(tax)",
        "revenue",
        "tax",
        "land_area",
        "per_mu(revenue)",
    ]
    .into_iter()
    .zip([0.2, 0.2, 0.2, 0.15, 0.15, 0.1])
    .map(|(metric, weight)| v1::Criterion {
        metric: metric.into(),
        weight,
        ..Default::default()
    })
    .collect();
    let answer = create(tenths).await.expect("tenths").into_inner();
    assert_eq!(answer.weights_used, [0.2, 0.2, 0.2, 0.15, 0.15, 0.1]);
    assert!(answer.notes.is_empty(), "{:?}", answer.notes);
    let run = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "tenths".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(
        run.run.as_ref().unwrap().weights,
        [0.2, 0.2, 0.2, 0.15, 0.15, 0.1],
        "{:?}",
        run.top.first().map(|e| &e.excluded_reason)
    );
    assert_eq!(run.top[0].criteria[0].weight, 0.2);

    // Data a stored scheme cannot take is named by the entity's id, not its position.
    let report = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: ZONES
                .iter()
                .map(|z| {
                    let profit = if z.0 == "ZZ-2" {
                        -5.0
                    } else {
                        10.0 + z.4 / 10.0
                    };
                    format!("ZONE,{},profit,2023,{profit},亿元\n", z.0)
                })
                .fold(
                    "entity_kind,entity_id,indicator,period,value,unit\n".to_string(),
                    |csv, row| csv + &row,
                )
                .into_bytes(),
            ..Default::default()
        })
        .await
        .expect("profit")
        .into_inner();
    assert_eq!(report.rejected, 0);
    let mut by_profit = scheme("entropy-profit", 0.5);
    by_profit.weighting = v1::Weighting::Entropy as i32;
    by_profit.criteria[0].metric = "profit".into();
    let answer = create(by_profit)
        .await
        .expect("profit is an amount")
        .into_inner();
    assert!(
        answer.weights_used.is_empty(),
        "entropy weights come from the data"
    );
    let status = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "entropy-profit".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found[0].0, "scheme.criteria[0].metric");
    assert!(
        found[0].1.contains("`profit` of zone ZZ-2 is -50000"),
        "{found:?}"
    );
    deployment.stop().await;
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_a_deleted_run_is_gone_even_from_the_cache() {
    let (deployment, _ingestion, mut ranking) = deployed().await;
    let older = compute(&mut ranking, "2023").await;
    let of_2022 = compute(&mut ranking, "2022").await;
    let newer = compute(&mut ranking, "2023").await;

    let client = ranking.clone();
    let list = move |scheme_id: &str, period: &str, page_size: i32, page_token: String| {
        let mut ranking = client.clone();
        let request = v1::ListRunsRequest {
            scheme_id: scheme_id.into(),
            period: period.into(),
            page_size,
            page_token,
        };
        async move { ranking.list_runs(request).await }
    };
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = list("", "", 2, token).await.expect("list").into_inner();
        assert!(page.runs.len() <= 2);
        listed.extend(page.runs.into_iter().map(|r| r.run_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        listed,
        [
            newer.run_id.clone(),
            of_2022.run_id.clone(),
            older.run_id.clone()
        ],
        "every run once, newest first"
    );
    let of_2023: Vec<String> = list("test-assessment", "2023", 0, String::new())
        .await
        .unwrap()
        .into_inner()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(of_2023, [newer.run_id.clone(), older.run_id.clone()]);
    let status = list("no-such-scheme", "", 0, String::new())
        .await
        .unwrap_err();
    assert_eq!(
        missing(&status),
        pair("zonerank.v1.Scheme", "no-such-scheme")
    );

    // A page read (and cached), then the run deleted: it is not served again.
    let client = ranking.clone();
    let page = move |run_id: &str| {
        let mut ranking = client.clone();
        let request = v1::GetRankingRequest {
            run_id: run_id.into(),
            page_size: 3,
            ..Default::default()
        };
        async move { ranking.get_ranking(request).await }
    };
    let first = page(&newer.run_id).await.expect("page").into_inner();
    assert_eq!(
        first,
        page(&newer.run_id).await.expect("again").into_inner()
    );
    ranking
        .delete_run(v1::DeleteRunRequest {
            run_id: newer.run_id.clone(),
        })
        .await
        .expect("delete");
    let status = page(&newer.run_id).await.unwrap_err();
    assert_eq!(
        missing(&status),
        pair("zonerank.v1.RankingRun", &newer.run_id)
    );
    assert_eq!(
        not_found(ranking.delete_run(v1::DeleteRunRequest {
            run_id: newer.run_id.clone(),
        }))
        .await,
        pair("zonerank.v1.RankingRun", &newer.run_id)
    );
    // The scheme's ranking for 2023 is the remaining run, with its entries.
    let official = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .expect("the older run")
        .into_inner();
    assert_eq!(official.run.unwrap().run_id, older.run_id);
    assert_eq!(official.entries.len(), 3);
    let remaining: Vec<String> = list("", "", 0, String::new())
        .await
        .unwrap()
        .into_inner()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(remaining, [of_2022.run_id.clone(), older.run_id.clone()]);
    deployment.stop().await;
}

#[tokio::test]
async fn an_archived_scheme_is_hidden_refuses_runs_stays_readable_and_a_new_version_brings_it_back()
{
    let (deployment, _ingestion, mut ranking) = deployed().await;
    let run = compute(&mut ranking, "2023").await;
    let client = ranking.clone();
    let listed = move |show_archived: bool| {
        let mut ranking = client.clone();
        async move {
            ranking
                .list_schemes(v1::ListSchemesRequest {
                    show_archived,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .schemes
                .into_iter()
                .map(|s| (s.id, s.archived))
                .collect::<Vec<_>>()
        }
    };
    let archived = ranking
        .archive_scheme(v1::ArchiveSchemeRequest {
            scheme_id: "test-assessment".into(),
        })
        .await
        .expect("archive")
        .into_inner()
        .scheme
        .unwrap();
    assert!(archived.archived);
    assert!(
        !listed(false)
            .await
            .iter()
            .any(|(id, _)| id == "test-assessment")
    );
    assert!(
        listed(true)
            .await
            .contains(&("test-assessment".to_string(), true))
    );

    let status = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let violation = &status
        .get_details_precondition_failure()
        .expect("PreconditionFailure")
        .violations[0];
    assert_eq!(violation.r#type, "ARCHIVED");
    assert_eq!(violation.subject, "scheme test-assessment");
    // Its versions and runs stay readable.
    let read = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "test-assessment".into(),
            version: 1,
        })
        .await
        .expect("readable")
        .into_inner()
        .scheme
        .unwrap();
    assert!(read.archived);
    let page = ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("its runs")
        .into_inner();
    assert_eq!(page.run.unwrap().run_id, run.run_id);
    assert_eq!(
        not_found(ranking.archive_scheme(v1::ArchiveSchemeRequest {
            scheme_id: "no-such-scheme".into(),
        }))
        .await,
        pair("zonerank.v1.Scheme", "no-such-scheme")
    );

    // Creating the id again makes version 2 and brings the scheme back.
    let answer = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("test-assessment", 0.6)),
        })
        .await
        .expect("new version")
        .into_inner();
    let back = answer.scheme.unwrap();
    assert_eq!((back.version, back.archived), (2, false));
    assert!(
        answer.notes.iter().any(|n| n.contains("was archived")),
        "{:?}",
        answer.notes
    );
    assert!(
        listed(false)
            .await
            .contains(&("test-assessment".to_string(), false))
    );
    compute(&mut ranking, "2023").await;
    deployment.stop().await;
}

/// Every page of a paged call, following next_page_token until it is empty.
async fn all_pages<T, F, Fut>(page_size: i32, mut call: F) -> (Vec<T>, usize)
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let (mut items, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let (page, next) = call(page_size, token).await;
        assert!(page.len() <= page_size as usize);
        items.extend(page);
        pages += 1;
        if next.is_empty() {
            return (items, pages);
        }
        token = next;
    }
}

#[tokio::test]
async fn robustness_simulations_and_most_improved_page_every_item_once_bound_to_their_request() {
    let (deployment, _ingestion, mut ranking) = deployed().await;
    compute(&mut ranking, "2022").await;
    let run = compute(&mut ranking, "2023").await;

    let client = ranking.clone();
    let robustness = move |seed: u64, page_size: i32, page_token: String| {
        let mut ranking = client.clone();
        let request = v1::GetRankRobustnessRequest {
            run_id: run.run_id.clone(),
            samples: 100,
            spread: 0.3,
            seed,
            page_size,
            page_token,
        };
        async move { ranking.get_rank_robustness(request).await }
    };
    let whole = robustness(7, 0, String::new()).await.unwrap().into_inner();
    assert!(whole.next_page_token.is_empty());
    assert_eq!(whole.entities.len(), 8);
    let ranks: Vec<i32> = whole.entities.iter().map(|i| i.rank).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "rank order: {ranks:?}"
    );
    let (paged, pages) = all_pages(3, |size, token| {
        let call = robustness(7, size, token);
        async move {
            let page = call.await.expect("page").into_inner();
            (page.entities, page.next_page_token)
        }
    })
    .await;
    assert_eq!((paged, pages), (whole.entities, 3));
    let second = robustness(7, 3, String::new())
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let status = robustness(8, 3, second).await.unwrap_err();
    assert_eq!(violations(&status)[0].0, "page_token");

    let client = ranking.clone();
    let simulate = move |growth: f64, page_size: i32, page_token: String| {
        let mut ranking = client.clone();
        let request = v1::SimulateRankingRequest {
            scheme: Some(scheme("what-if", growth)),
            period: "2023".into(),
            page_size,
            page_token,
            ..Default::default()
        };
        async move { ranking.simulate_ranking(request).await }
    };
    let first = simulate(0.7, 3, String::new()).await.unwrap().into_inner();
    assert_eq!(first.entity_count, 8);
    let (simulated, pages) = all_pages(3, |size, token| {
        let call = simulate(0.7, size, token);
        async move {
            let page = call.await.expect("page").into_inner();
            (page.entries, page.next_page_token)
        }
    })
    .await;
    assert_eq!(pages, 3);
    let mut seen = ids(&simulated);
    assert_eq!(seen.len(), 8);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "every zone once");
    assert_eq!(
        simulated,
        simulate(0.7, 8, String::new())
            .await
            .unwrap()
            .into_inner()
            .entries
    );
    let status = simulate(0.2, 3, first.next_page_token).await.unwrap_err();
    assert_eq!(violations(&status)[0].0, "page_token");

    let client = ranking.clone();
    let improved = move |by_score: bool, page_size: i32, page_token: String| {
        let mut ranking = client.clone();
        let request = v1::GetMostImprovedRequest {
            scheme_id: "test-assessment".into(),
            period: "2023".into(),
            by_score,
            page_size,
            page_token,
            ..Default::default()
        };
        async move { ranking.get_most_improved(request).await }
    };
    let everyone = improved(false, 100, String::new())
        .await
        .unwrap()
        .into_inner();
    assert!(everyone.next_page_token.is_empty());
    assert_eq!(everyone.entries.len(), 8, "every zone has a 2022 rank");
    let (paged, pages) = all_pages(3, |size, token| {
        let call = improved(false, size, token);
        async move {
            let page = call.await.expect("page").into_inner();
            (page.entries, page.next_page_token)
        }
    })
    .await;
    assert_eq!((paged, pages), (everyone.entries, 3));
    let token = improved(false, 3, String::new())
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let status = improved(true, 3, token).await.unwrap_err();
    assert_eq!(violations(&status)[0].0, "page_token");
    deployment.stop().await;
}

/// Rewrites the stored entry of `entity` in `run_id` with `rank` as its rank: a stored run the
/// data could not have produced, to see whether a computation reads it.
async fn overwrite_stored_rank(database_url: &str, run_id: &str, entity: &str, rank: i32) {
    use prost::Message;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    use zonerank_storage::entity::ranking_entry;
    let store = zonerank_storage::Store::connect(database_url)
        .await
        .expect("store");
    let stored = ranking_entry::Entity::find()
        .filter(ranking_entry::Column::RunId.eq(run_id))
        .filter(ranking_entry::Column::EntityId.eq(entity))
        .one(store.connection())
        .await
        .expect("read entry")
        .expect("entry stored");
    let mut entry = v1::RankingEntry::decode(stored.entry.as_slice()).expect("decode");
    entry.rank = rank;
    let mut row: ranking_entry::ActiveModel = stored.into();
    row.entry = Set(entry.encode_to_vec());
    row.update(store.connection()).await.expect("overwrite");
}

fn previous_rank_of(entries: &[v1::RankingEntry], entity: &str) -> i32 {
    entries
        .iter()
        .find(|e| e.entity.as_ref().unwrap().id == entity)
        .expect("entity ranked")
        .previous_rank
}

#[tokio::test]
async fn the_previous_period_comes_from_its_stored_run_while_the_data_is_unchanged() {
    let (deployment, mut ingestion, mut ranking) = deployed().await;
    // No 2022 run yet: 2022 is ranked again for the rank changes.
    let without = compute(&mut ranking, "2023").await;
    let expected = run_entries(&mut ranking, &without.run_id).await;
    assert!(expected.iter().all(|e| e.previous_rank > 0), "{expected:?}");

    let run_2022 = compute(&mut ranking, "2022").await;
    let with = compute(&mut ranking, "2023").await;
    assert_eq!(with.data_version, run_2022.data_version);
    assert_eq!(
        run_entries(&mut ranking, &with.run_id).await,
        expected,
        "the stored run gives the same ranks and scores as ranking 2022 again"
    );

    // The stored run is what is read: a rank it holds shows up as the previous rank.
    overwrite_stored_rank(&deployment.database.url, &run_2022.run_id, "ZZ-4", 99).await;
    let read = compute(&mut ranking, "2023").await;
    let read = run_entries(&mut ranking, &read.run_id).await;
    assert_eq!(previous_rank_of(&read, "ZZ-4"), 99);

    // Once the data moves on, the stored run is stale and 2022 is ranked again.
    let request = v1::IngestObservationsRequest {
        observations: vec![v1::Observation {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "ZZ-4".into(),
            }),
            indicator: "tax".into(),
            period: "2023".into(),
            value: 6_100.0,
            unit: "万元".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    ingestion
        .ingest_observations(tokio_stream::iter([request]))
        .await
        .expect("ingest");
    let after = compute(&mut ranking, "2023").await;
    assert!(after.data_version > run_2022.data_version);
    let after = run_entries(&mut ranking, &after.run_id).await;
    assert_eq!(
        previous_rank_of(&after, "ZZ-4"),
        previous_rank_of(&expected, "ZZ-4")
    );
    deployment.stop().await;
}

/// The scheme's official run for `period` as `ranking` answers it (GetRanking without a run id).
async fn official_run(ranking: &mut Ranking, period: &str) -> String {
    ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: "test-assessment".into(),
            period: period.into(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .expect("the official ranking")
        .into_inner()
        .run
        .unwrap()
        .run_id
}

#[tokio::test]
async fn a_second_ranking_pod_serves_the_official_run_each_write_on_the_first_makes_official() {
    use zonerank_api::v1::assessment_service_client::AssessmentServiceClient;
    use zonerank_cache::{Cache, CacheKey};
    use zonerank_integration_tests::{RunningServer, redis_url, server_args};
    use zonerank_server::Services;

    let (deployment, _ingestion, mut writer) = deployed().await;
    // A second ranking pod over the same database and Redis: it caches official pages, and
    // every write is made on the first pod.
    let mut args = server_args(&deployment.database.url, Some(&deployment.redis.prefix));
    args.metrics_addr = Some(deployment.metrics.url.clone());
    let other = RunningServer::start(args, Services::RANKING).await;
    let mut reader = v1::ranking_service_client::RankingServiceClient::new(other.channel().await);
    let shared = Cache::redis(&redis_url(), &deployment.redis.prefix)
        .await
        .expect("redis");
    let generation_key = CacheKey::new("ranking.official.generation", 0, b"");
    let generation = || async { shared.get(&generation_key).await.expect("redis") };

    let first = compute(&mut writer, "2023").await;
    assert_eq!(official_run(&mut reader, "2023").await, first.run_id);
    let cached_under = generation()
        .await
        .expect("a generation in the shared cache");
    assert_eq!(official_run(&mut reader, "2023").await, first.run_id);

    // A newer run of the same version becomes official on the other pod at once.
    let second = compute(&mut writer, "2023").await;
    assert_ne!(
        generation().await,
        Some(cached_under),
        "the write replaced it"
    );
    assert_eq!(official_run(&mut reader, "2023").await, second.run_id);

    // A new scheme version: until it has a run, the newest run stays official; its first run
    // then takes over.
    writer
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("test-assessment", 0.3)),
        })
        .await
        .expect("version 2");
    assert_eq!(official_run(&mut reader, "2023").await, second.run_id);
    let third = compute(&mut writer, "2023").await;
    assert_eq!(third.scheme_version, 2);
    assert_eq!(official_run(&mut reader, "2023").await, third.run_id);

    // Deleted, it is official no more.
    writer
        .delete_run(v1::DeleteRunRequest {
            run_id: third.run_id.clone(),
        })
        .await
        .expect("delete");
    assert_eq!(official_run(&mut reader, "2023").await, second.run_id);

    // Published, the first run is official whatever is computed after it.
    let mut assessment = AssessmentServiceClient::new(deployment.ranking.channel().await);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: first.run_id.clone(),
            notice_until: Some(zonerank_api::prost_types::Timestamp {
                seconds: now + 86_400,
                nanos: 0,
            }),
        })
        .await
        .expect("publish");
    assert_eq!(official_run(&mut reader, "2023").await, first.run_id);
    compute(&mut writer, "2023").await;
    assert_eq!(official_run(&mut reader, "2023").await, first.run_id);

    other.stop().await;
    deployment.stop().await;
}
