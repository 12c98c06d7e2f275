//! Analytics end to end: the project pipeline metrics on the seeds' figures, park screening with
//! stored rules, and cluster strength.

use tonic_types::StatusExt;
use zonerank_api::v1::{
    self, ingestion_service_client::IngestionServiceClient, metric_value::Result as Value,
    metrics_service_client::MetricsServiceClient,
};
use zonerank_integration_tests::{
    RunningServer, import_csv_rows, seed_regions_and_zones, server_args,
};
use zonerank_server::Services;
use zonerank_storage::test_support::TestDatabase;

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Metrics = MetricsServiceClient<tonic::transport::Channel>;

fn zone(id: &str, region_code: &str, kind: v1::ZoneKind) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: format!("{id} 园区"),
        region_code: region_code.into(),
        kind: kind as i32,
        ..Default::default()
    }
}

async fn setup(client: &mut Ingestion, zones: Vec<v1::Zone>) {
    seed_regions_and_zones(client, zones).await;
}

/// `count` projects of `zone` at `status` in `period` whose planned and completed investments
/// (in 亿元) add up to `planned` and `completed` exactly: equal parts, the last taking the rest.
fn projects(
    zone: &str,
    status: v1::ProjectStatus,
    period: &str,
    count: usize,
    planned: f64,
    completed: f64,
) -> Vec<v1::Project> {
    // Whole 万元 avoid rounding: 105.6亿元 = 1,056,000万元.
    let planned = (planned * 10_000.0).round() as i64;
    let completed = (completed * 10_000.0).round() as i64;
    let share = |total: i64, i: usize| {
        let each = total / count as i64;
        if i + 1 == count {
            total - each * (count as i64 - 1)
        } else {
            each
        }
    };
    (0..count)
        .map(|i| v1::Project {
            id: format!("{zone}-{}-{period}-{i:03}", status.as_str_name()),
            name: format!("项目 {i}"),
            zone_id: zone.into(),
            status: status as i32,
            planned_investment: share(planned, i) as f64,
            unit: "万元".into(),
            period: period.into(),
            completed_investment: share(completed, i) as f64,
        })
        .collect()
}

async fn upsert_projects(client: &mut Ingestion, projects: Vec<v1::Project>) {
    client
        .upsert_projects(v1::UpsertProjectsRequest {
            projects,
            dry_run: false,
        })
        .await
        .expect("projects");
}

async fn table(
    client: &mut Metrics,
    metrics: &[&str],
    period: &str,
    kind: v1::EntityKind,
    ids: &[&str],
) -> v1::MetricTable {
    client
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: metrics.iter().map(|s| s.to_string()).collect(),
            period: period.into(),
            cohort: Some(v1::CohortSelector {
                entity_kind: kind as i32,
                ids: ids.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            as_of: None,
        })
        .await
        .expect("compute")
        .into_inner()
        .table
        .expect("table")
}

fn number(value: &v1::MetricValue) -> f64 {
    match &value.result {
        Some(Value::Value(v)) => *v,
        other => panic!("expected a number, got {other:?}"),
    }
}

/// The fields a status's BadRequest details name, in order.
fn violation_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

#[tokio::test]
async fn project_pipeline_metrics_give_the_seeds_figures_sqlite() {
    project_pipeline_metrics_give_the_seeds_figures(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn project_pipeline_metrics_give_the_seeds_figures_postgres() {
    project_pipeline_metrics_give_the_seeds_figures(
        TestDatabase::postgres().await.expect("postgres"),
    )
    .await;
}

async fn project_pipeline_metrics_give_the_seeds_figures(database: TestDatabase) {
    use v1::ProjectStatus::{Negotiating, Planned, Signed, Started, UnderConstruction};
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    let luoyang_parks = ["LY-1", "LY-2", "LY-3", "LY-4", "LY-5"];
    let mut zones = vec![zone(
        "411725-CJQ",
        "411725",
        v1::ZoneKind::AgglomerationZone,
    )];
    zones.extend(
        luoyang_parks
            .iter()
            .map(|id| zone(id, "410323", v1::ZoneKind::IndustrialPark)),
    );
    setup(&mut ingestion, zones).await;

    // Queshan 2014-H1 (seed 002): 28 signed (105.6亿), 30 negotiating (82.94亿), 10 started
    // (20.6亿).
    let mut queshan = projects("411725-CJQ", Signed, "2014-H1", 28, 105.6, 0.0);
    queshan.extend(projects(
        "411725-CJQ",
        Negotiating,
        "2014-H1",
        30,
        82.94,
        0.0,
    ));
    queshan.extend(projects(
        "411725-CJQ",
        Started,
        "2014-06-YTD",
        10,
        20.6,
        0.0,
    ));
    upsert_projects(&mut ingestion, queshan).await;
    // Luoyang's five parks 2018 (seed 003): 35 under construction (233.6亿, 48.6亿 done) and 115
    // planned (228.4亿), spread unevenly over the parks.
    let spread = [(10, 7), (8, 30), (7, 25), (6, 28), (4, 25)];
    let (mut uc_planned, mut uc_done, mut pl_planned) = (233.6, 48.6, 228.4);
    for (i, (park, (uc, planned))) in luoyang_parks.iter().zip(spread).enumerate() {
        let last = i + 1 == luoyang_parks.len();
        // Each park gets its count's share; the last the rest, so the city sums exactly.
        let part = |total: f64, n: usize, all: usize| {
            if last {
                total
            } else {
                (total * n as f64 / all as f64 * 100.0).round() / 100.0
            }
        };
        let (a, b, c) = (
            part(uc_planned, uc, 35),
            part(uc_done, uc, 35),
            part(pl_planned, planned, 115),
        );
        uc_planned -= a;
        uc_done -= b;
        pl_planned -= c;
        let mut batch = projects(park, UnderConstruction, "2018", uc, a, b);
        batch.extend(projects(park, Planned, "2018", planned, c, 0.0));
        upsert_projects(&mut ingestion, batch).await;
    }

    let wan = |yi: f64| yi * 10_000.0;
    let q = table(
        &mut metrics,
        &[
            "projects(signed)",
            "project_investment(signed)",
            "projects(negotiating)",
            "project_investment(negotiating)",
            "projects(started)",
            "project_investment(started)",
            "projects(completed)",
        ],
        "2014-H1",
        v1::EntityKind::Zone,
        &["411725-CJQ"],
    )
    .await;
    assert_eq!(q.metrics[0].unit, "个");
    assert_eq!(q.metrics[1].unit, "万元");
    let values: Vec<f64> = q.rows[0].values.iter().map(number).collect();
    close(values[0], 28.0);
    close(values[1], wan(105.6));
    close(values[2], 30.0);
    close(values[3], wan(82.94));
    close(values[4], 10.0);
    close(values[5], wan(20.6));
    close(values[6], 0.0);
    // Another period of the same zone has none of them.
    let other = table(
        &mut metrics,
        &["projects(signed)"],
        "2014",
        v1::EntityKind::Zone,
        &["411725-CJQ"],
    )
    .await;
    close(number(&other.rows[0].values[0]), 0.0);

    // Luoyang: the city (its parks lie in Xin'an county) sums the five parks.
    let pipeline = [
        "projects(under_construction)",
        "project_investment(under_construction)",
        "project_completed_investment(under_construction)",
        "projects(planned)",
        "project_investment(planned)",
    ];
    let city = table(
        &mut metrics,
        &pipeline,
        "2018",
        v1::EntityKind::Region,
        &["410300", "410323"],
    )
    .await;
    for row in &city.rows {
        let values: Vec<f64> = row.values.iter().map(number).collect();
        close(values[0], 35.0);
        close(values[1], wan(233.6));
        close(values[2], wan(48.6));
        close(values[3], 115.0);
        close(values[4], wan(228.4));
    }
    let parks = table(
        &mut metrics,
        &pipeline,
        "2018",
        v1::EntityKind::Zone,
        &luoyang_parks,
    )
    .await;
    let count: f64 = parks.rows.iter().map(|r| number(&r.values[0])).sum();
    close(count, 35.0);
    let first = parks
        .rows
        .iter()
        .find(|r| r.entity.as_ref().unwrap().id == "LY-1")
        .unwrap();
    close(number(&first.values[0]), 10.0);
    close(number(&first.values[3]), 7.0);

    // A project moving on keeps what it was: LY-1's first project completed in 2019.
    let mut moved = projects("LY-1", v1::ProjectStatus::Completed, "2019", 1, 5.0, 5.0);
    moved[0].id = "LY-1-PROJECT_STATUS_UNDER_CONSTRUCTION-2018-000".into();
    upsert_projects(&mut ingestion, moved).await;
    let later = table(
        &mut metrics,
        &["projects(completed)", "projects(under_construction)"],
        "2019",
        v1::EntityKind::Zone,
        &["LY-1"],
    )
    .await;
    close(number(&later.rows[0].values[0]), 1.0);
    close(number(&later.rows[0].values[1]), 0.0);
    let before = table(
        &mut metrics,
        &["projects(under_construction)"],
        "2018",
        v1::EntityKind::Region,
        &["410300"],
    )
    .await;
    close(number(&before.rows[0].values[0]), 35.0);

    // The catalog lists the pipeline functions.
    let listed = metrics
        .list_metrics(v1::ListMetricsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    for name in [
        "projects(status)",
        "project_investment(status)",
        "project_completed_investment(status)",
    ] {
        assert!(
            listed.metrics.iter().any(|m| m.name == name),
            "{name} is listed"
        );
    }

    // A bad period or amount is refused naming the row and field, and writes nothing.
    let mut bad = projects("LY-2", Signed, "2018-H3", 1, 1.0, 0.0);
    bad.extend(projects("LY-2", Signed, "2018", 1, 1.0, -1.0));
    bad[1].id = "LY-2-other".into();
    let status = ingestion
        .upsert_projects(v1::UpsertProjectsRequest {
            projects: bad,
            dry_run: false,
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = violation_fields(&status);
    assert_eq!(
        fields,
        ["projects[0].period", "projects[1].completed_investment"]
    );
    let signed = table(
        &mut metrics,
        &["projects(signed)"],
        "2018",
        v1::EntityKind::Zone,
        &["LY-2"],
    )
    .await;
    close(number(&signed.rows[0].values[0]), 0.0);
}

async fn import(client: &mut Ingestion, rows: &[String]) {
    let report = import_csv_rows(client, rows).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

async fn screen(client: &mut Metrics, rule_id: &str, period: &str) -> Vec<v1::FlaggedZone> {
    let mut zones = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .screen_zones(v1::ScreenZonesRequest {
                rule_id: rule_id.into(),
                period: period.into(),
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .expect("screen")
            .into_inner();
        assert_eq!(page.screened, 5);
        zones.extend(page.zones);
        if page.next_page_token.is_empty() {
            return zones;
        }
        page_token = page.next_page_token;
    }
}

fn ids(zones: &[v1::FlaggedZone]) -> Vec<&str> {
    zones
        .iter()
        .map(|z| z.entity.as_ref().unwrap().id.as_str())
        .collect()
}

#[tokio::test]
async fn screening_flags_the_expected_zones_of_a_hand_made_cohort_sqlite() {
    screening_flags_the_expected_zones_of_a_hand_made_cohort(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn screening_flags_the_expected_zones_of_a_hand_made_cohort_postgres() {
    screening_flags_the_expected_zones_of_a_hand_made_cohort(
        TestDatabase::postgres().await.expect("postgres"),
    )
    .await;
}

async fn screening_flags_the_expected_zones_of_a_hand_made_cohort(database: TestDatabase) {
    use v1::ZoneKind::IndustrialPark;
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    // Two city parks in Luoyang (410300), three county parks in Xin'an (410323).
    setup(
        &mut ingestion,
        vec![
            zone("CITY-LOW", "410300", IndustrialPark),
            zone("CITY-ONCE", "410300", IndustrialPark),
            zone("COUNTY-3", "410323", IndustrialPark),
            zone("COUNTY-LOW", "410323", IndustrialPark),
            zone("NO-LAND", "410323", IndustrialPark),
        ],
    )
    .await;
    // Tax per mu (万元/亩) over 1,000 mu in 2023 and 2024.
    let per_mu = [
        ("CITY-LOW", 3.0, 3.5),
        ("CITY-ONCE", 3.0, 5.0),
        ("COUNTY-3", 3.0, 3.0),
        ("COUNTY-LOW", 1.5, 1.0),
    ];
    let mut rows = Vec::new();
    for (id, y2023, y2024) in per_mu {
        rows.push(format!("ZONE,{id},land_area,2023,1000,亩"));
        rows.push(format!("ZONE,{id},land_area,2024,1000,亩"));
        rows.push(format!("ZONE,{id},tax,2023,{},万元", y2023 * 1000.0));
        rows.push(format!("ZONE,{id},tax,2024,{},万元", y2024 * 1000.0));
    }
    rows.push("ZONE,NO-LAND,tax,2023,100,万元".into());
    rows.push("ZONE,NO-LAND,tax,2024,100,万元".into());
    import(&mut ingestion, &rows).await;
    // COUNTY-LOW started a project in 2024, CITY-ONCE one in 2023 only.
    let mut started = projects(
        "COUNTY-LOW",
        v1::ProjectStatus::Started,
        "2024",
        1,
        1.0,
        0.0,
    );
    started.extend(projects(
        "CITY-ONCE",
        v1::ProjectStatus::Started,
        "2023",
        1,
        1.0,
        0.0,
    ));
    upsert_projects(&mut ingestion, started).await;

    // The built-in low-efficiency rule: < 4万元/亩 in city parks, < 2万元/亩 in county parks.
    let low = screen(&mut metrics, "low-efficiency", "2024").await;
    assert_eq!(ids(&low), ["CITY-LOW", "COUNTY-LOW"]);
    let county = &low[1].conditions[0];
    assert_eq!(county.metric, "per_mu(tax)");
    assert_eq!(county.unit, "万元/亩");
    assert_eq!(county.threshold, 2.0);
    assert!(county.met);
    assert_eq!(county.figures.len(), 1);
    assert_eq!(county.figures[0].period, "2024");
    close(number(county.figures[0].value.as_ref().unwrap()), 1.0);
    assert_eq!(low[0].conditions[0].threshold, 4.0);
    // In 2023 CITY-ONCE was below its 4万元 too.
    let low_2023 = screen(&mut metrics, "low-efficiency", "2023").await;
    assert_eq!(ids(&low_2023), ["CITY-LOW", "CITY-ONCE", "COUNTY-LOW"]);

    // Zombie parks: below the thresholds two years running and no project started in either.
    // CITY-ONCE met the tax condition in 2023 only; COUNTY-LOW started a project in 2024.
    let zombies = screen(&mut metrics, "zombie-park", "2024").await;
    assert_eq!(ids(&zombies), ["CITY-LOW"]);
    let conditions = &zombies[0].conditions;
    assert_eq!(conditions.len(), 2);
    assert_eq!(
        conditions[0]
            .figures
            .iter()
            .map(|f| f.period.as_str())
            .collect::<Vec<_>>(),
        ["2023", "2024"]
    );
    assert!(conditions.iter().all(|c| c.met));
    assert_eq!(conditions[1].metric, "projects(started)");

    // A stored rule: no project started two years running, or tax per mu missing or tiny.
    let rule = v1::ScreeningRule {
        id: "quiet-parks".into(),
        name: "空心园区 (no new projects)".into(),
        description: "No project started two years running.".into(),
        conditions: vec![v1::ScreeningCondition {
            metric: " projects( STARTED ) ".into(),
            comparison: v1::Comparison::Equal as i32,
            threshold: 0.0,
            periods: 2,
            thresholds: vec![],
        }],
        match_any: false,
        ..Default::default()
    };
    let stored = metrics
        .upsert_screening_rule(v1::UpsertScreeningRuleRequest {
            rule: Some(rule.clone()),
        })
        .await
        .expect("upsert")
        .into_inner();
    assert!(stored.created);
    let stored = stored.rule.unwrap();
    assert_eq!(stored.conditions[0].metric, "projects(started)");
    assert!(!stored.builtin);
    let again = metrics
        .upsert_screening_rule(v1::UpsertScreeningRuleRequest {
            rule: Some(rule.clone()),
        })
        .await
        .expect("upsert again")
        .into_inner();
    assert!(!again.created);
    let quiet = screen(&mut metrics, "quiet-parks", "2024").await;
    assert_eq!(ids(&quiet), ["CITY-LOW", "COUNTY-3", "NO-LAND"]);

    // Listing pages through the built-in and the stored rules by id.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = metrics
            .list_screening_rules(v1::ListScreeningRulesRequest {
                page_size: 2,
                page_token,
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.rules.len() <= 2);
        listed.extend(page.rules);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let listed: Vec<(&str, bool)> = listed.iter().map(|r| (r.id.as_str(), r.builtin)).collect();
    assert_eq!(
        listed,
        [
            ("low-efficiency", true),
            ("quiet-parks", false),
            ("zombie-park", true)
        ]
    );

    // A bad rule is refused naming every field at fault (undefined enum
    // numbers and non-finite numbers are refused by the request check before).
    let bad = v1::ScreeningRule {
        id: "zombie-park".into(),
        name: "mine".into(),
        conditions: vec![
            v1::ScreeningCondition {
                metric: "per_mu(taxes)".into(),
                comparison: v1::Comparison::Less as i32,
                threshold: 4.0,
                ..Default::default()
            },
            v1::ScreeningCondition {
                metric: "tax".into(),
                comparison: 0,
                threshold: 1.0,
                periods: 11,
                thresholds: vec![],
            },
        ],
        ..Default::default()
    };
    let status = metrics
        .upsert_screening_rule(v1::UpsertScreeningRuleRequest { rule: Some(bad) })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let mut fields: Vec<String> = violation_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "rule.conditions[1].comparison",
            "rule.conditions[1].periods",
        ]
    );
    // The domain's faults come first; the catalog and the built-in ids are checked after.
    let status = metrics
        .upsert_screening_rule(v1::UpsertScreeningRuleRequest {
            rule: Some(v1::ScreeningRule {
                id: "zombie-park".into(),
                name: "mine".into(),
                conditions: vec![v1::ScreeningCondition {
                    metric: "per_mu(taxes)".into(),
                    comparison: v1::Comparison::Less as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .expect_err("refused");
    let fields: Vec<String> = violation_fields(&status);
    assert_eq!(fields, ["rule.id", "rule.conditions[0].metric"]);
    let unknown = metrics
        .screen_zones(v1::ScreenZonesRequest {
            rule_id: "no-such-rule".into(),
            period: "2024".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown rule");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

fn strength_of<'a>(
    response: &'a v1::GetClusterStrengthResponse,
    id: &str,
) -> &'a v1::ClusterStrength {
    response
        .entities
        .iter()
        .find(|e| e.entity.as_ref().unwrap().id == id)
        .unwrap_or_else(|| panic!("{id} is listed"))
}

#[tokio::test]
async fn cluster_strength_against_hand_computations_and_reat_sqlite() {
    cluster_strength_against_hand_computations_and_reat(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn cluster_strength_against_hand_computations_and_reat_postgres() {
    cluster_strength_against_hand_computations_and_reat(
        TestDatabase::postgres().await.expect("postgres"),
    )
    .await;
}

async fn cluster_strength_against_hand_computations_and_reat(database: TestDatabase) {
    use v1::RegionLevel::City;
    use zonerank_integration_tests::region;
    let server = RunningServer::start(server_args(&database.url, None), Services::ALL_IN_ONE).await;
    let mut ingestion = IngestionServiceClient::new(server.channel().await);
    let mut metrics = MetricsServiceClient::new(server.channel().await);
    let park = v1::ZoneKind::IndustrialPark;
    setup(
        &mut ingestion,
        vec![
            zone("XA-1", "410323", park),
            zone("XA-2", "410323", park),
            zone("QS-1", "411725", park),
            zone("QS-2", "411725", park),
            zone("QS-3", "411725", park),
        ],
    )
    .await;
    ingestion
        .upsert_indicators(v1::UpsertIndicatorsRequest {
            indicators: vec![v1::Indicator {
                code: "establishments".into(),
                name_zh: "企业数".into(),
                name_en: "Establishments".into(),
                unit: "个".into(),
                kind: v1::IndicatorKind::Stock as i32,
                direction: v1::Direction::HigherIsBetter as i32,
                builtin: false,
            }],
            ..Default::default()
        })
        .await
        .expect("indicator");
    // Employment 2023 → 2024 and establishments 2024; Xin'an 800 → 1000 in Luoyang's 10,000,
    // Queshan 1600 → 2000 in Zhumadian's 8,000 (both counties grew 25%).
    let zones = [
        ("XA-1", 250, 300, 20),
        ("XA-2", 100, 100, 5),
        ("QS-1", 160, 200, 30),
        ("QS-2", 600, 600, 25),
        ("QS-3", 40, 50, 2),
    ];
    let mut rows = Vec::new();
    for (id, start, end, est) in zones {
        rows.push(format!("ZONE,{id},employees,2023,{start},人"));
        rows.push(format!("ZONE,{id},employees,2024,{end},人"));
        rows.push(format!("ZONE,{id},establishments,2024,{est},个"));
    }
    for (code, start, end) in [
        ("410323", 800, 1000),
        ("411725", 1600, 2000),
        ("410300", 9000, 10000),
        ("411700", 7000, 8000),
    ] {
        rows.push(format!("REGION,{code},employees,2023,{start},人"));
        rows.push(format!("REGION,{code},employees,2024,{end},人"));
    }
    import(&mut ingestion, &rows).await;

    let request = v1::GetClusterStrengthRequest {
        period: "2024".into(),
        establishments_indicator: "establishments".into(),
        ..Default::default()
    };
    let response = metrics
        .get_cluster_strength(request.clone())
        .await
        .expect("strength")
        .into_inner();
    assert_eq!(response.entities.len(), 5);
    // LQ = (zone ÷ county) ÷ (zones of the city ÷ city): Luoyang's zones hold 400 of 10,000,
    // Zhumadian's 850 of 8,000.
    let expected_lq = [
        ("XA-1", (300.0 / 1000.0) / (400.0 / 10_000.0)), // 7.5
        ("XA-2", (100.0 / 1000.0) / (400.0 / 10_000.0)), // 2.5
        ("QS-1", (200.0 / 2000.0) / (850.0 / 8000.0)),   // 0.941
        ("QS-2", (600.0 / 2000.0) / (850.0 / 8000.0)),   // 2.824
        ("QS-3", (50.0 / 2000.0) / (850.0 / 8000.0)),    // 0.235
    ];
    for (id, lq) in expected_lq {
        close(number(strength_of(&response, id).lq.as_ref().unwrap()), lq);
    }
    close(
        number(strength_of(&response, "XA-1").lq.as_ref().unwrap()),
        7.5,
    );
    // LQ P75 = 2.824 (QS-2's own), P90 = 5.629; employment P25 = 100, P90 = 480;
    // establishments P25 = 5; region shares 0.3 0.1 0.1 0.3 0.025, P90 = 0.3.
    // (id, strong, strong10, size, specialisation, focus, stars)
    let expected = [
        ("XA-1", true, true, false, true, true, 2),
        ("XA-2", false, false, false, true, false, 1),
        ("QS-1", false, false, false, false, false, 0),
        ("QS-2", true, false, true, true, true, 3),
        ("QS-3", false, false, false, false, false, 0),
    ];
    for (id, strong, strong10, size, spec, focus, stars) in expected {
        let s = strength_of(&response, id);
        assert_eq!(
            (
                s.strong,
                s.strong10,
                s.size_star,
                s.specialisation_star,
                s.focus_star,
                s.stars
            ),
            (strong, strong10, size, spec, focus, stars),
            "{id}"
        );
    }
    close(
        number(
            strength_of(&response, "XA-1")
                .region_share
                .as_ref()
                .unwrap(),
        ),
        30.0,
    );
    // Shift-share against the county's 25%: XA-1 expected 250 × 0.25 = 62.5, actual 50.
    let xa1 = strength_of(&response, "XA-1");
    close(number(xa1.reference_growth.as_ref().unwrap()), 25.0);
    close(number(xa1.expected_change.as_ref().unwrap()), 62.5);
    close(number(xa1.actual_change.as_ref().unwrap()), 50.0);
    close(number(xa1.differential.as_ref().unwrap()), -12.5);
    let qs2 = strength_of(&response, "QS-2");
    close(number(qs2.expected_change.as_ref().unwrap()), 150.0);
    close(number(qs2.differential.as_ref().unwrap()), -150.0);
    // The same LQs through the metric language.
    let lq = table(
        &mut metrics,
        &["lq(employees)"],
        "2024",
        v1::EntityKind::Zone,
        &["XA-2"],
    )
    .await;
    close(number(&lq.rows[0].values[0]), 2.5);

    // A national reference growth of 10%: XA-1 expected 25, so 25 of its own.
    let national_growth = metrics
        .get_cluster_strength(v1::GetClusterStrengthRequest {
            reference_growth: Some(10.0),
            ..request.clone()
        })
        .await
        .expect("strength")
        .into_inner();
    let xa1 = strength_of(&national_growth, "XA-1");
    close(number(xa1.expected_change.as_ref().unwrap()), 25.0);
    close(number(xa1.differential.as_ref().unwrap()), 25.0);

    // Paging by id.
    let first = metrics
        .get_cluster_strength(v1::GetClusterStrengthRequest {
            page_size: 2,
            ..request.clone()
        })
        .await
        .expect("page")
        .into_inner();
    let ids: Vec<&str> = first
        .entities
        .iter()
        .map(|e| e.entity.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, ["QS-1", "QS-2"]);
    assert!(!first.next_page_token.is_empty());

    // REAT::locq(1714, 79006, 879213, 15593224) = 0.3847623: a zone of 1,714 employees in a
    // city of 79,006 against the nation's 879,213 of 15,593,224.
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![region("410100", "郑州市", City, "410000")],
            ..Default::default()
        })
        .await
        .expect("region");
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("ZZ-1", "410100", park)],
            ..Default::default()
        })
        .await
        .expect("zone");
    import(
        &mut ingestion,
        &[
            "ZONE,ZZ-1,employees,2024,1714,人".into(),
            "ZONE,ZZ-1,establishments,2024,12,个".into(),
            "REGION,410100,employees,2024,79006,人".into(),
        ],
    )
    .await;
    let reat = metrics
        .get_cluster_strength(v1::GetClusterStrengthRequest {
            cohort: Some(v1::CohortSelector {
                ids: vec!["ZZ-1".into()],
                ..Default::default()
            }),
            national_employment: 879_213.0,
            national_total_employment: 15_593_224.0,
            ..request.clone()
        })
        .await
        .expect("reat")
        .into_inner();
    let lq = number(strength_of(&reat, "ZZ-1").lq.as_ref().unwrap());
    assert!((lq - 0.384_762_3).abs() < 5e-8, "{lq}");
    // No 2023 figure: the shift-share says why.
    let missing = strength_of(&reat, "ZZ-1").differential.clone().unwrap();
    assert!(matches!(missing.result, Some(Value::MissingReason(_))));

    // Half the national figures are refused.
    let status = metrics
        .get_cluster_strength(v1::GetClusterStrengthRequest {
            national_employment: 879_213.0,
            ..request.clone()
        })
        .await
        .expect_err("half");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
