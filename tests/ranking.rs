//! RankingService end to end, against PostgreSQL and Redis, with the ranking service asking a
//! separate metrics server over gRPC.

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{Deployment, region};

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
            regions: vec![
                region("410000", "河南省", v1::RegionLevel::Province, ""),
                region("410100", "郑州市", v1::RegionLevel::City, "410000"),
                region("410300", "洛阳市", v1::RegionLevel::City, "410000"),
            ],
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
    // Weighted sum: the normalized gap of a criterion alone is score gap ÷ weight (0.5), and
    // the raw target inverts min-max over the cohort's column.
    for (j, gap) in explanation.gaps.iter().enumerate() {
        assert!(
            (gap.normalized_gap - explanation.score_gap / 0.5).abs() < 1e-9,
            "{gap:?}"
        );
        if let (Some(target), Some(raw)) = (gap.raw_target, second.criteria[j].raw) {
            let column: Vec<f64> = if j == 0 { yoy.clone() } else { per_mu.clone() };
            let (lo, hi) = column
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let needed = second.criteria[j].normalized + gap.normalized_gap;
            assert!((target - (lo + needed * (hi - lo))).abs() < 1e-6, "{gap:?}");
            assert!((gap.raw_gap.unwrap() - (target - raw)).abs() < 1e-6);
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
