//! AssessmentService end to end, as separate ingestion, metrics and ranking servers on
//! PostgreSQL and Redis: publication, an objection accepted and republished, finalization,
//! standings, the lists, alerts and the policy export.

use tonic::Code;
use zonerank_api::v1::{
    self, assessment_service_client::AssessmentServiceClient,
    ingestion_service_client::IngestionServiceClient,
};
use zonerank_integration_tests::{Deployment, numbered_zone_id, numbered_zones, seed_regions};

type Channel = tonic::transport::Channel;
type Ingestion = IngestionServiceClient<Channel>;
type Ranking = v1::ranking_service_client::RankingServiceClient<Channel>;
type Assessment = AssessmentServiceClient<Channel>;

const REGION: &str = "411725";

fn zone(i: usize) -> v1::EntityRef {
    v1::EntityRef {
        kind: v1::EntityKind::Zone as i32,
        id: numbered_zone_id(i),
    }
}

/// `revenue` (万元) and `safety_accidents`… of each zone by period, written as CSV.
async fn write(ingestion: &mut Ingestion, rows: &[(usize, &str, &str, f64)]) {
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for (i, indicator, period, value) in rows {
        csv.push_str(&format!(
            "ZONE,{},{indicator},{period},{value},\n",
            numbered_zone_id(*i)
        ));
    }
    let report = ingestion
        .import_csv(v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner();
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
}

async fn setup(ingestion: &mut Ingestion, zones: usize) {
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: numbered_zones(zones, REGION),
            ..Default::default()
        })
        .await
        .expect("zones");
}

/// Ranked by revenue alone (min-max, so the scores are 0 … 1); classes by score; stars at
/// 0.3, 0.6 and 0.9; classes A and D carry policies.
fn scheme(id: &str) -> v1::Scheme {
    v1::Scheme {
        id: id.into(),
        name: "revenue assessment".into(),
        entity_kind: v1::EntityKind::Zone as i32,
        cohort: Some(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: REGION.into(),
            ..Default::default()
        }),
        criteria: vec![v1::Criterion {
            metric: "revenue".into(),
            weight: 1.0,
            ..Default::default()
        }],
        normalization: v1::Normalization::MinMax as i32,
        weighting: v1::Weighting::Fixed as i32,
        aggregation: v1::Aggregation::WeightedSum as i32,
        missing_policy: v1::MissingPolicy::Worst as i32,
        star_rules: vec![
            v1::StarRule {
                level: 1,
                min_score: 0.3,
                gates: vec![],
            },
            v1::StarRule {
                level: 2,
                min_score: 0.6,
                gates: vec![],
            },
            v1::StarRule {
                level: 3,
                min_score: 0.9,
                gates: vec![],
            },
        ],
        class_cuts: ["A", "B", "C", "D"]
            .iter()
            .zip([0.7, 0.45, 0.2, 0.0])
            .map(|(label, min)| v1::ClassCut {
                label: label.to_string(),
                top_percent: 0.0,
                min_score: Some(min),
            })
            .collect(),
        max_star_step: 1,
        exit_rules: vec![v1::ExitRule {
            bottom: 2,
            times: 2,
            window: 3,
            label: "bottom 2 in 2 of the last 3".into(),
        }],
        thresholds: vec![v1::MetricThreshold {
            metric: "yoy(revenue)".into(),
            warn_below: Some(0.0),
            excellent_above: Some(0.1),
            label: String::new(),
            ..Default::default()
        }],
        class_policies: vec![
            v1::ClassPolicies {
                class_label: "A".into(),
                policies: vec![v1::Policy {
                    label: "land supply priority".into(),
                    kind: v1::PolicyKind::LandSupply as i32,
                    value: 1.0,
                    unit: String::new(),
                }],
            },
            v1::ClassPolicies {
                class_label: "D".into(),
                policies: vec![v1::Policy {
                    label: "差别化电价".into(),
                    kind: v1::PolicyKind::ElectricitySurcharge as i32,
                    value: 0.1,
                    unit: "元/千瓦时".into(),
                }],
            },
        ],
        ..Default::default()
    }
}

async fn compute(ranking: &mut Ranking, scheme_id: &str, period: &str) -> v1::RankingRun {
    ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: scheme_id.into(),
            period: period.into(),
            ..Default::default()
        })
        .await
        .expect("compute")
        .into_inner()
        .run
        .unwrap()
}

async fn publish(
    assessment: &mut Assessment,
    run_id: &str,
    notice_until: zonerank_api::prost_types::Timestamp,
) -> v1::Publication {
    assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: run_id.into(),
            notice_until: Some(notice_until),
        })
        .await
        .expect("publish")
        .into_inner()
        .publication
        .unwrap()
}

fn in_a_day(seconds: i64) -> zonerank_api::prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    zonerank_api::prost_types::Timestamp {
        seconds: now + seconds,
        nanos: 0,
    }
}

async fn by_period(ranking: &mut Ranking, scheme_id: &str, period: &str) -> v1::GetRankingResponse {
    ranking
        .get_ranking(v1::GetRankingRequest {
            scheme_id: scheme_id.into(),
            period: period.into(),
            page_size: 50,
            ..Default::default()
        })
        .await
        .expect("ranking")
        .into_inner()
}

async fn by_run(ranking: &mut Ranking, run_id: &str) -> v1::GetRankingResponse {
    ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run_id.into(),
            page_size: 50,
            ..Default::default()
        })
        .await
        .expect("ranking")
        .into_inner()
}

fn ranked_ids(page: &v1::GetRankingResponse) -> Vec<(String, i32)> {
    page.entries
        .iter()
        .map(|e| (e.entity.as_ref().unwrap().id.clone(), e.rank))
        .collect()
}

fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_precondition_failure()
        .and_then(|p| p.violations.into_iter().next())
        .map(|v| v.r#type)
        .unwrap_or_default()
}

#[tokio::test]
async fn publish_object_accept_republish_finalize() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    let mut assessment = AssessmentServiceClient::new(deployment.ranking.channel().await);
    setup(&mut ingestion, 5).await;
    // Revenue 2023 (万元): zone 0 … zone 4 → 110, 85, 60, 35, 10; scores 1, .75, .5, .25, 0.
    let revenue = [110.0, 85.0, 60.0, 35.0, 10.0];
    let rows: Vec<(usize, &str, &str, f64)> = revenue
        .iter()
        .enumerate()
        .map(|(i, &v)| (i, "revenue", "2023", v))
        .collect();
    write(&mut ingestion, &rows).await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("rev")),
        })
        .await
        .expect("scheme");
    let first = compute(&mut ranking, "rev", "2023").await;
    let published = publish(&mut assessment, &first.run_id, in_a_day(86_400)).await;
    assert_eq!(published.version, 1);
    assert_eq!(published.state, v1::PublicationState::PublicNotice as i32);
    assert_eq!(published.published_by, "anonymous");

    // A newer computed run does not replace the published one.
    let newer = compute(&mut ranking, "rev", "2023").await;
    assert_ne!(newer.run_id, first.run_id);
    let official = by_period(&mut ranking, "rev", "2023").await;
    assert_eq!(official.run.as_ref().unwrap().run_id, first.run_id);
    // Compared decoded: a client re-encoding the run's star_counts map may order it anew.
    let before = by_run(&mut ranking, &first.run_id).await;
    let expected: Vec<(String, i32)> = (0..5)
        .map(|i| (numbered_zone_id(i), i as i32 + 1))
        .collect();
    assert_eq!(ranked_ids(&official), expected);

    // Publishing the same (scheme, period) again is refused.
    let again = assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: newer.run_id.clone(),
            notice_until: Some(in_a_day(86_400)),
        })
        .await
        .expect_err("second publication");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "ALREADY_PUBLISHED");

    // An objection against an entity not in the run.
    let stranger = assessment
        .file_objection(v1::FileObjectionRequest {
            run_id: first.run_id.clone(),
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "Z-9999".into(),
            }),
            reason: "not ours".into(),
            disputed: vec![v1::DisputedValue {
                indicator: "revenue".into(),
                period: "2023".into(),
                claimed_value: 1.0,
            }],
            evidence: String::new(),
        })
        .await
        .expect_err("stranger");
    assert_eq!(stranger.code(), Code::NotFound);

    // Zone 4 says its revenue was 200, not 10: the statistics bureau's figure was wrong.
    let objection = assessment
        .file_objection(v1::FileObjectionRequest {
            run_id: first.run_id.clone(),
            entity: Some(zone(4)),
            reason: "the 2023 revenue omits the new plant".into(),
            disputed: vec![v1::DisputedValue {
                indicator: "revenue".into(),
                period: "2023".into(),
                claimed_value: 200.0,
            }],
            evidence: "county statistics bureau letter 2024-017".into(),
        })
        .await
        .expect("objection")
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(objection.state, v1::ObjectionState::Open as i32);
    assert_eq!(objection.filed_by, "anonymous");

    let listed = assessment
        .list_objections(v1::ListObjectionsRequest {
            run_id: first.run_id.clone(),
            state: v1::ObjectionState::Open as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.objections.len(), 1);
    assert_eq!(listed.objections[0].id, objection.id);

    // Finalizing is refused while the objection is open.
    let refused = assessment
        .finalize_ranking(v1::FinalizeRankingRequest {
            scheme_id: "rev".into(),
            period: "2023".into(),
        })
        .await
        .expect_err("open objection");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "OBJECTIONS_OPEN");

    // Accepted: the claimed value becomes a revision and the run is recomputed and republished.
    let resolved = assessment
        .resolve_objection(v1::ResolveObjectionRequest {
            id: objection.id.clone(),
            resolution: v1::Resolution::Accept as i32,
            note: "bureau confirmed".into(),
        })
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(
        resolved.objection.as_ref().unwrap().state,
        v1::ObjectionState::Accepted as i32
    );
    let corrected = resolved.publication.unwrap();
    assert_eq!(corrected.version, 2);
    assert_eq!(corrected.replaces, 1);
    assert_eq!(corrected.caused_by, vec![objection.id.clone()]);
    assert_ne!(corrected.run_id, first.run_id);

    let history = ingestion
        .get_observations(v1::GetObservationsRequest {
            entity: Some(zone(4)),
            indicator: "revenue".into(),
            include_revisions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let revisions: Vec<(f64, String)> = history
        .observations
        .iter()
        .map(|o| (o.value, o.source.clone()))
        .collect();
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    assert_eq!(revisions[1], (200.0, format!("objection:{}", objection.id)));

    // The corrected version answers by scheme and period: zone 4 first now.
    let official = by_period(&mut ranking, "rev", "2023").await;
    assert_eq!(official.run.as_ref().unwrap().run_id, corrected.run_id);
    let ids: Vec<String> = ranked_ids(&official)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        vec![
            numbered_zone_id(4),
            numbered_zone_id(0),
            numbered_zone_id(1),
            numbered_zone_id(2),
            numbered_zone_id(3),
        ]
    );
    // The old version is still readable, equal to what it was (entries and figures).
    assert_eq!(by_run(&mut ranking, &first.run_id).await, before);
    let versions = assessment
        .list_publications(v1::ListPublicationsRequest {
            scheme_id: "rev".into(),
            period: "2023".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .publications;
    let states: Vec<(i32, i32)> = versions.iter().map(|p| (p.version, p.state)).collect();
    assert_eq!(
        states,
        vec![
            (1, v1::PublicationState::Superseded as i32),
            (2, v1::PublicationState::PublicNotice as i32)
        ]
    );

    let done = assessment
        .finalize_ranking(v1::FinalizeRankingRequest {
            scheme_id: "rev".into(),
            period: "2023".into(),
        })
        .await
        .expect("finalize")
        .into_inner()
        .publication
        .unwrap();
    assert_eq!(done.state, v1::PublicationState::Final as i32);
    assert_eq!(done.version, 2);

    // An objection after the notice: 2022 published with a notice that already ended.
    write(
        &mut ingestion,
        &[(0, "revenue", "2022", 50.0), (1, "revenue", "2022", 40.0)],
    )
    .await;
    let old = compute(&mut ranking, "rev", "2022").await;
    publish(&mut assessment, &old.run_id, in_a_day(-60)).await;
    let late = assessment
        .file_objection(v1::FileObjectionRequest {
            run_id: old.run_id.clone(),
            entity: Some(zone(1)),
            reason: "late".into(),
            disputed: vec![v1::DisputedValue {
                indicator: "revenue".into(),
                period: "2022".into(),
                claimed_value: 60.0,
            }],
            evidence: String::new(),
        })
        .await
        .expect_err("late objection");
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "NOTICE_OVER");

    deployment.stop().await;
}
