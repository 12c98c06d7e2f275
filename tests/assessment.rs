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
            excellent_above: Some(15.0),
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
        ..zonerank_integration_tests::zone_scheme(
            id,
            "revenue assessment",
            REGION,
            &[("revenue", 1.0)],
        )
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

    // A claimed figure passes the checks a submitted one does: no negative land area.
    let negative = assessment
        .file_objection(v1::FileObjectionRequest {
            run_id: first.run_id.clone(),
            entity: Some(zone(4)),
            reason: "typo".into(),
            disputed: vec![v1::DisputedValue {
                indicator: "land_area".into(),
                period: "2023".into(),
                claimed_value: -5.0,
            }],
            evidence: String::new(),
        })
        .await
        .expect_err("a negative land area");
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert!(
        negative.message().contains("disputed[0].claimed_value"),
        "{negative:?}"
    );
    // Objections of a run that does not exist are not an empty list.
    let unknown = assessment
        .list_objections(v1::ListObjectionsRequest {
            run_id: "run-nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown run");
    assert_eq!(unknown.code(), Code::NotFound);

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

fn standing_summary(
    standings: &[v1::Standing],
    id: &str,
) -> Vec<(String, i32, Vec<v1::StandingEvent>, bool)> {
    standings
        .iter()
        .filter(|s| s.entity.as_ref().unwrap().id == id)
        .map(|s| {
            (
                s.period.clone(),
                s.stars,
                s.events
                    .iter()
                    .map(|&e| v1::StandingEvent::try_from(e).unwrap())
                    .collect(),
                s.first_time_promotion,
            )
        })
        .collect()
}

fn listed_ids(list: &[v1::ListedEntity]) -> Vec<(String, bool)> {
    list.iter()
        .map(|l| (l.entity.as_ref().unwrap().id.clone(), l.tied_at_cut))
        .collect()
}

#[tokio::test]
async fn standings_over_four_periods_lists_alerts_and_the_policy_export() {
    use v1::StandingEvent::{Demoted, Entered, Promoted, TitleLost};
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    let mut assessment = AssessmentServiceClient::new(deployment.ranking.channel().await);
    setup(&mut ingestion, 5).await;
    // Revenue (万元) = 10 + 100 × score, so each year's min-max scores are exact:
    //        zone 0  zone 1  zone 2  zone 3  zone 4
    // 2020    .5      1       .75     .4      0
    // 2021    1       .75     .6      0       .45
    // 2022    1       .9      .6      .5      0
    // 2023    0       1       .6      .9      .6
    let scores = [
        ("2020", [0.5, 1.0, 0.75, 0.4, 0.0]),
        ("2021", [1.0, 0.75, 0.6, 0.0, 0.45]),
        ("2022", [1.0, 0.9, 0.6, 0.5, 0.0]),
        ("2023", [0.0, 1.0, 0.6, 0.9, 0.6]),
    ];
    let mut rows = Vec::new();
    for (period, year) in &scores {
        for (i, s) in year.iter().enumerate() {
            rows.push((i, "revenue", *period, (10.0_f64 + 100.0 * s).round()));
        }
    }
    write(&mut ingestion, &rows).await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme("rev")),
        })
        .await
        .expect("scheme");
    let mut runs = Vec::new();
    for (period, _) in &scores {
        let run = compute(&mut ranking, "rev", period).await;
        publish(&mut assessment, &run.run_id, in_a_day(86_400)).await;
        runs.push(run);
    }

    let standings = assessment
        .get_standings(v1::GetStandingsRequest {
            scheme_id: "rev".into(),
            ..Default::default()
        })
        .await
        .expect("standings")
        .into_inner()
        .standings;
    let y = |p: &str, stars: i32, events: &[v1::StandingEvent], first: bool| {
        (p.to_string(), stars, events.to_vec(), first)
    };
    // Stars 1 at .3, 2 at .6, 3 at .9; one level up a period; bottom 2 in 2 of the last 3
    // takes the title.
    // zone 0: 1 → 2 (the run said 3) → 3, both first-time; then last: demoted to 0.
    assert_eq!(
        standing_summary(&standings, &numbered_zone_id(0)),
        vec![
            y("2020", 1, &[Entered], false),
            y("2021", 2, &[Promoted], true),
            y("2022", 3, &[Promoted], true),
            y("2023", 0, &[Demoted], false),
        ]
    );
    // zone 1: 3 → 2 (demoted) → 3 again, not for the first time.
    assert_eq!(
        standing_summary(&standings, &numbered_zone_id(1)),
        vec![
            y("2020", 3, &[Entered], false),
            y("2021", 2, &[Demoted], false),
            y("2022", 3, &[Promoted], false),
            y("2023", 3, &[], false),
        ]
    );
    // zone 3: 4th of 5 in 2020 and last in 2021 → title lost; bottom again in 2022 (no
    // stars to lose); 2nd in 2023: back to one star, a level it held before.
    assert_eq!(
        standing_summary(&standings, &numbered_zone_id(3)),
        vec![
            y("2020", 1, &[Entered], false),
            y("2021", 0, &[TitleLost], false),
            y("2022", 0, &[], false),
            y("2023", 1, &[Promoted], false),
        ]
    );
    // zone 4: last, 4th and last: the rule keeps it at 0; 3rd (tied) in 2023: one star for
    // the first time.
    assert_eq!(
        standing_summary(&standings, &numbered_zone_id(4)),
        vec![
            y("2020", 0, &[Entered], false),
            y("2021", 0, &[], false),
            y("2022", 0, &[], false),
            y("2023", 1, &[Promoted], true),
        ]
    );
    let lost = standings
        .iter()
        .find(|s| s.events.contains(&(TitleLost as i32)))
        .unwrap();
    assert_eq!(lost.note, "bottom 2 in 2 of the last 3");

    // 十强 of 2023 with n = 3: zones 2 and 4 tie for 3rd at .6; both are listed and flagged.
    let lists = assessment
        .get_top_lists(v1::GetTopListsRequest {
            scheme_id: "rev".into(),
            period: "2023".into(),
            n: 3,
            fastest_by_score: false,
        })
        .await
        .expect("lists")
        .into_inner();
    let z = |i: usize, tied: bool| (numbered_zone_id(i), tied);
    assert_eq!(
        listed_ids(&lists.top),
        vec![z(1, false), z(3, false), z(2, true), z(4, true)]
    );
    assert_eq!(lists.top[2].rank, 3);
    assert_eq!(lists.top[3].rank, 3);
    // 十快: rank gains 4→2 (zone 3), 5→3 (zone 4), 2→1 (zone 1).
    assert_eq!(
        listed_ids(&lists.fastest),
        vec![z(3, false), z(4, false), z(1, false)]
    );
    assert_eq!(lists.fastest[0].rank_change, 2);
    assert_eq!(listed_ids(&lists.first_time_promotions), vec![z(4, false)]);
    assert_eq!(listed_ids(&lists.demotions), vec![z(0, false)]);
    assert!(lists.titles_lost.is_empty());
    let lists_2021 = assessment
        .get_top_lists(v1::GetTopListsRequest {
            scheme_id: "rev".into(),
            period: "2021".into(),
            n: 3,
            fastest_by_score: false,
        })
        .await
        .expect("lists 2021")
        .into_inner();
    assert_eq!(listed_ids(&lists_2021.titles_lost), vec![z(3, false)]);
    assert_eq!(lists_2021.titles_lost[0].previous_stars, 1);

    // 预警: revenue growth 2023 below 0 warns, above 15 % is excellent (yoy is in percent).
    let alerts = assessment
        .list_alerts(v1::ListAlertsRequest {
            scheme_id: "rev".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("alerts")
        .into_inner()
        .alerts;
    let mut found: Vec<(String, i32, f64)> = alerts
        .iter()
        .map(|a| (a.entity.as_ref().unwrap().id.clone(), a.level, a.threshold))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let warning = v1::AlertLevel::Warning as i32;
    let excellent = v1::AlertLevel::Excellent as i32;
    assert_eq!(
        found,
        vec![
            (numbered_zone_id(0), warning, 0.0),
            (numbered_zone_id(3), excellent, 15.0),
            (numbered_zone_id(4), excellent, 15.0),
        ]
    );
    let zone0 = alerts
        .iter()
        .find(|a| a.entity.as_ref().unwrap().id == numbered_zone_id(0))
        .unwrap();
    assert!(
        (zone0.value - (10.0 / 110.0 - 1.0) * 100.0).abs() < 1e-9,
        "{}",
        zone0.value
    );
    assert_eq!(zone0.metric, "yoy(revenue)");

    // The policy list of the 2023 run: classes by score (A ≥ .7, B ≥ .45, C ≥ .2, D).
    let mut stream = assessment
        .export_policy_list(v1::ExportPolicyListRequest {
            run_id: runs[3].run_id.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(row) = stream.message().await.expect("row") {
        exported.push((
            row.credit_code.clone(),
            row.class_label.clone(),
            row.policies
                .iter()
                .map(|p| p.label.clone())
                .collect::<Vec<_>>(),
        ));
    }
    let land = vec!["land supply priority".to_string()];
    assert_eq!(
        exported,
        vec![
            (numbered_zone_id(1), "A".to_string(), land.clone()),
            (numbered_zone_id(3), "A".to_string(), land),
            (numbered_zone_id(2), "B".to_string(), vec![]),
            (numbered_zone_id(4), "B".to_string(), vec![]),
            (
                numbered_zone_id(0),
                "D".to_string(),
                vec!["差别化电价".to_string()]
            ),
        ]
    );

    deployment.stop().await;
}
