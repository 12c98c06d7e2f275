//! Bounded work, end to end against PostgreSQL and Redis: every expensive call is refused up
//! front over its budget (RESOURCE_EXHAUSTED naming the budget in QuotaFailure), a call past
//! its client's deadline answers DEADLINE_EXCEEDED, and a call the client abandons stops using
//! the CPU.

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{Deployment, numbered_zone_id, numbered_zones, region};

/// The tests of this file one at a time: the CPU test reads the whole process's CPU time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Ranking = v1::ranking_service_client::RankingServiceClient<tonic::transport::Channel>;

/// `zones` zones under one city, each with revenue, tax and land area for 2023.
async fn seed(client: &mut Ingestion, zones: usize) {
    client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![
                region("410000", "河南省", v1::RegionLevel::Province, ""),
                region("410100", "郑州市", v1::RegionLevel::City, "410000"),
            ],
            ..Default::default()
        })
        .await
        .expect("regions");
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: numbered_zones(zones, "410100"),
            ..Default::default()
        })
        .await
        .expect("zones");
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for i in 0..zones {
        // Values that differ from zone to zone and between the criteria, so ranks spread.
        let (revenue, tax, land) = (
            100.0 + (i * 37 % 1000) as f64,
            1000.0 + (i * 53 % 977) as f64,
            500.0 + (i * 71 % 911) as f64,
        );
        csv.push_str(&format!(
            "ZONE,{z},revenue,2023,{revenue},亿元\nZONE,{z},tax,2023,{tax},万元\n\
             ZONE,{z},land_area,2023,{land},亩\n",
            z = numbered_zone_id(i)
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

/// A scheme over every zone of the province ranking `metrics` with equal weights.
fn scheme(id: &str, metrics: &[String]) -> v1::Scheme {
    v1::Scheme {
        id: id.into(),
        name: "budget test".into(),
        entity_kind: v1::EntityKind::Zone as i32,
        cohort: Some(v1::CohortSelector {
            entity_kind: v1::EntityKind::Zone as i32,
            region_code: "410000".into(),
            ..Default::default()
        }),
        criteria: metrics
            .iter()
            .map(|m| v1::Criterion {
                metric: m.clone(),
                weight: 1.0,
                ..Default::default()
            })
            .collect(),
        normalization: v1::Normalization::MinMax as i32,
        weighting: v1::Weighting::Equal as i32,
        aggregation: v1::Aggregation::WeightedSum as i32,
        missing_policy: v1::MissingPolicy::Worst as i32,
        ..Default::default()
    }
}

/// Seventeen different metrics of revenue, tax and land area, all with values.
fn seventeen_metrics() -> Vec<String> {
    let names = ["revenue", "tax", "land_area"];
    let mut metrics: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    metrics.extend(["per_mu(revenue)".into(), "per_mu(tax)".into()]);
    for a in names {
        for b in names.iter().filter(|&&b| b != a) {
            metrics.push(format!("ratio({a}, {b})"));
            metrics.push(format!("percent({a}, {b})"));
        }
    }
    assert_eq!(metrics.len(), 17);
    metrics
}

/// `status` is RESOURCE_EXHAUSTED for `subject`, its message carrying `numbers`.
#[track_caller]
fn refused(status: tonic::Status, subject: &str, numbers: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let quota = status.get_details_quota_failure().expect("QuotaFailure");
    assert_eq!(quota.violations.len(), 1, "{quota:?}");
    assert_eq!(quota.violations[0].subject, subject);
    assert!(status.message().contains(numbers), "{}", status.message());
}

async fn create_and_compute(
    ranking: &mut Ranking,
    wire: v1::Scheme,
) -> Result<String, tonic::Status> {
    let id = wire.id.clone();
    ranking
        .create_scheme(v1::CreateSchemeRequest { scheme: Some(wire) })
        .await
        .expect("scheme within its budget");
    Ok(ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: id,
            period: "2023".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .run
        .unwrap()
        .run_id)
}

#[tokio::test]
async fn every_expensive_call_is_refused_over_its_budget_with_the_numbers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut metrics = deployment.metrics_client().await;
    let mut ranking = deployment.ranking_client().await;
    // 30,000 zones: 17 criteria are 510,000 entities × criteria, over the explain budget of
    // 500,000 and within the metrics budget of 1,000,000 cells.
    seed(&mut ingestion, 30_000).await;

    // ComputeMetrics and StreamMetrics: the number of expressions, then expressions × entities.
    let many: Vec<String> = (1..=101).map(|n| format!("cagr(revenue, {n})")).collect();
    let status = metrics
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: many.clone(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(
        status,
        "expressions",
        "expressions = 101 exceeds the budget of 100",
    );
    let wide: Vec<String> = many[..34].to_vec();
    let cohort = Some(v1::CohortSelector {
        entity_kind: v1::EntityKind::Zone as i32,
        ..Default::default()
    });
    let status = metrics
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: wide.clone(),
            period: "2023".into(),
            cohort: cohort.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(
        status,
        "expressions × cohort entities",
        "= 1,020,000 exceeds the budget of 1,000,000",
    );
    let status = metrics
        .stream_metrics(v1::StreamMetricsRequest {
            metrics: wide.clone(),
            period: "2023".into(),
            cohort,
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(status, "expressions × cohort entities", "1,020,000");

    // Schemes: 51 criteria at CreateScheme and SimulateRanking, 21 gates of a star rule.
    let mut huge = scheme(
        "huge",
        &(1..=51)
            .map(|n| format!("cagr(tax, {n})"))
            .collect::<Vec<_>>(),
    );
    let status = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(huge.clone()),
        })
        .await
        .unwrap_err();
    refused(
        status,
        "scheme.criteria",
        "scheme.criteria = 51 exceeds the budget of 50",
    );
    let status = ranking
        .simulate_ranking(v1::SimulateRankingRequest {
            scheme: Some(huge.clone()),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(status, "scheme.criteria", "51");
    huge.criteria.truncate(2);
    huge.star_rules = vec![v1::StarRule {
        level: 1,
        min_score: 0.5,
        gates: (0..21).map(|n| format!("revenue >= {n}")).collect(),
    }];
    let status = ranking
        .create_scheme(v1::CreateSchemeRequest { scheme: Some(huge) })
        .await
        .unwrap_err();
    refused(
        status,
        "scheme.star_rules[0].gates",
        "= 21 exceeds the budget of 20",
    );

    // ComputeRanking and SimulateRanking: the metrics the cohort needs, 34 × 30,000 cells.
    let status = create_and_compute(&mut ranking, scheme("wide", &wide))
        .await
        .unwrap_err();
    refused(status, "expressions × cohort entities", "1,020,000");
    let status = ranking
        .simulate_ranking(v1::SimulateRankingRequest {
            scheme: Some(scheme("wide", &wide)),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(status, "expressions × cohort entities", "1,020,000");

    // A run within every budget, which ExplainRanking and GetRankRobustness then refuse.
    let run_id = create_and_compute(&mut ranking, scheme("deep", &seventeen_metrics()))
        .await
        .expect("17 criteria over 30,000 zones is within the budgets");
    let status = ranking
        .explain_ranking(v1::ExplainRankingRequest {
            run_id: run_id.clone(),
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: numbered_zone_id(7),
            }),
        })
        .await
        .unwrap_err();
    refused(
        status,
        "entities × criteria",
        "entities × criteria = 510,000 exceeds the budget of 500,000",
    );
    let status = ranking
        .get_rank_robustness(v1::GetRankRobustnessRequest {
            run_id: run_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused(
        status,
        "samples × entities",
        "samples × entities = 30,000,000 exceeds the budget of 10,000,000; ask for fewer \
         samples (at most 333 for this run)",
    );
    // As the message says, 333 samples are answered.
    let answered = ranking
        .get_rank_robustness(v1::GetRankRobustnessRequest {
            run_id,
            samples: 333,
            page_size: 5,
            ..Default::default()
        })
        .await
        .expect("within the budget")
        .into_inner();
    assert_eq!(answered.entities.len(), 5);
    deployment.stop().await;
}

/// The CPU time (user + system) this process has used, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // In USER_HZ, which Linux fixes at 100 for /proc whatever the kernel tick.
    Duration::from_millis(ticks * 10)
}

/// CPU seconds per wall-clock second over the next `span`.
async fn cpu_rate(span: Duration) -> f64 {
    let (cpu, wall) = (process_cpu(), Instant::now());
    tokio::time::sleep(span).await;
    (process_cpu() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_or_abandoned_stops_its_work() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    let mut ranking = deployment.ranking_client().await;
    seed(&mut ingestion, 150).await;
    let metrics = ["revenue".to_string(), "per_mu(tax)".to_string()];
    let run_id = create_and_compute(&mut ranking, scheme("small", &metrics))
        .await
        .expect("run");
    // 150 entities × 66,666 samples: within the budget, and seconds of CPU.
    let large = v1::GetRankRobustnessRequest {
        run_id,
        samples: 66_666,
        spread: 0.3,
        seed: 1,
        page_size: 1,
        ..Default::default()
    };

    // An abandoned call: busy while it runs, idle soon after the client goes. The machine
    // may be shared, so the idle rate is compared with the busy one rather than with a core.
    let call = tokio::spawn({
        let mut ranking = ranking.clone();
        let large = large.clone();
        async move { ranking.get_rank_robustness(large).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = cpu_rate(Duration::from_millis(700)).await;
    assert!(!call.is_finished(), "the call should take seconds");
    call.abort();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = cpu_rate(Duration::from_secs(1)).await;
    assert!(
        busy > 0.1,
        "the uncancelled call uses the CPU: {busy:.2} s/s"
    );
    assert!(
        idle < busy / 4.0,
        "the abandoned call stopped: {idle:.2} s/s after, {busy:.2} s/s before"
    );

    // The client's deadline: DEADLINE_EXCEEDED, promptly, and the work stops.
    let mut request = tonic::Request::new(large.clone());
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = ranking.get_rank_robustness(request).await.unwrap_err();
    let took = started.elapsed();
    // Our own budget answers DEADLINE_EXCEEDED; when tonic's grpc-timeout timer, set to the
    // same instant, fires first on a loaded machine, it answers CANCELLED "Timeout expired".
    // Either way the call ends at its deadline and the work stops (checked below).
    assert!(
        status.code() == Code::DeadlineExceeded
            || (status.code() == Code::Cancelled && status.message() == "Timeout expired"),
        "{status:?}"
    );
    assert!(took < Duration::from_millis(800), "{took:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = cpu_rate(Duration::from_millis(500)).await;
    assert!(
        after < busy / 4.0,
        "still computing after the deadline: {after:.2} s/s"
    );
    deployment.stop().await;
}
