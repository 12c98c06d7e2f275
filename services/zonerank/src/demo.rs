//! `zonerank demo`: the embedded default with a realistic, deterministic dataset — Henan's 18
//! cities with their real codes, about 180 zones with group tags, three years of the core
//! indicators, some enterprises — ingested through the API, ranked, printed, then served.

use std::{collections::BTreeMap, process::ExitCode};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::transport::Channel;
use unicode_width::UnicodeWidthStr;
use zonerank_api::v1::{
    self, assessment_service_client::AssessmentServiceClient,
    ingestion_service_client::IngestionServiceClient, ranking_service_client::RankingServiceClient,
};
use zonerank_domain::entity::credit_code_check_char;
use zonerank_server::{ServerArgs, Services};

/// Henan's regions (GB/T 2260), as in the shared fixture.
const REGIONS: &str = include_str!("../data/henan-cities.csv");

/// Years of data the demo generates.
const YEARS: [i32; 3] = [2021, 2022, 2023];

/// The seed of the demo dataset: the same data, the same ranking, every time.
const SEED: u64 = 20_121_180;

/// Flags of `zonerank demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    server: ServerArgs,
}

struct Dataset {
    regions: Vec<v1::Region>,
    zones: Vec<v1::Zone>,
    enterprises: Vec<v1::Enterprise>,
    observations: Vec<v1::Observation>,
}

fn observation(
    kind: v1::EntityKind,
    id: &str,
    indicator: &str,
    year: i32,
    value: f64,
    unit: &str,
) -> v1::Observation {
    v1::Observation {
        entity: Some(v1::EntityRef {
            kind: kind as i32,
            id: id.to_string(),
        }),
        indicator: indicator.into(),
        period: year.to_string(),
        // Two decimals, as statistical yearbooks print them.
        value: (value * 100.0).round() / 100.0,
        unit: unit.into(),
        source: "zonerank demo".into(),
        ..Default::default()
    }
}

fn dataset() -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut regions = Vec::new();
    for line in REGIONS.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() < 5 {
            continue;
        }
        regions.push(v1::Region {
            code: cells[0].into(),
            name: cells[1].into(),
            name_en: cells[2].into(),
            level: v1::RegionLevel::from(
                zonerank_domain::entity::RegionLevel::parse(cells[3])
                    .expect("the demo regions name their levels"),
            ) as i32,
            parent_code: cells[4].into(),
        });
    }
    let cities: Vec<v1::Region> = regions
        .iter()
        .filter(|r| r.level == v1::RegionLevel::City as i32)
        .cloned()
        .collect();
    let kinds = [
        ("产业集聚区", v1::ZoneKind::AgglomerationZone),
        ("高新技术产业开发区", v1::ZoneKind::HighTechZone),
        ("经济技术开发区", v1::ZoneKind::EconomicDevelopmentZone),
    ];
    let industries = [
        "装备制造",
        "新材料",
        "食品加工",
        "电子信息",
        "现代化工",
        "汽车及零部件",
        "纺织服装",
        "生物医药",
    ];
    let mut zones = Vec::new();
    let mut observations = Vec::new();
    let mut enterprises = Vec::new();
    for city in &cities {
        // Zhengzhou and Luoyang have the most zones; 180 in all.
        let count = match city.code.as_str() {
            "410100" => 17,
            "410300" => 17,
            "419001" => 4,
            _ => 9 + (city.code.as_bytes()[3] % 3) as usize,
        };
        let mut city_revenue = [0.0; 3];
        for n in 1..=count {
            let id = format!("{}-Z{n:02}", city.code);
            let (suffix, kind) = kinds[if n == 1 {
                1
            } else if n == 2 {
                2
            } else {
                0
            }];
            let region_code = if city.code == "410300" && n == 3 {
                "410323".to_string()
            } else if city.code == "411700" && n == 3 {
                "411725".to_string()
            } else {
                city.code.clone()
            };
            let mut tags = Vec::new();
            if city.code == "410300" {
                tags.push(
                    if n <= 13 {
                        "一中心五组团"
                    } else {
                        "四支撑"
                    }
                    .to_string(),
                );
            }
            if matches!(
                city.code.as_str(),
                "410100" | "410200" | "410700" | "410800" | "411000"
            ) {
                tags.push("郑州都市圈".to_string());
            }
            zones.push(v1::Zone {
                id: id.clone(),
                name: format!(
                    "{}{}{}",
                    city.name.trim_end_matches('市'),
                    if n > 2 {
                        format!("第{n}")
                    } else {
                        String::new()
                    },
                    suffix
                ),
                region_code,
                kind: kind as i32,
                tags,
                leading_industries: vec![
                    industries[rng.random_range(0..industries.len())].to_string(),
                    industries[rng.random_range(0..industries.len())].to_string(),
                ],
            });
            // A zone's scale (亿元 of revenue) and its yearly growth path.
            let scale: f64 = 40.0 * (rng.random::<f64>() * 3.6).exp();
            let land_mu: f64 = 3000.0 + rng.random::<f64>() * 30_000.0;
            let mut revenue = scale;
            let mut energy_per_value_added = 0.35 + rng.random::<f64>() * 0.6;
            // Each zone keeps its own pace and its own tax and investment habits, so ranks
            // move year to year but do not jump about at random.
            let trend: f64 = rng.random_range(0.0..0.22);
            let tax_rate: f64 = rng.random_range(0.025..0.06);
            let investment_rate: f64 = rng.random_range(0.25..0.6);
            for (y, &year) in YEARS.iter().enumerate() {
                let growth = 1.0 + trend + rng.random_range(-0.04..0.04);
                revenue *= growth;
                city_revenue[y] += revenue;
                energy_per_value_added *= 1.0 - rng.random_range(-0.02..0.08);
                let value_added = revenue * rng.random_range(0.22..0.3);
                let zone = v1::EntityKind::Zone;
                observations.push(observation(zone, &id, "revenue", year, revenue, "亿元"));
                observations.push(observation(
                    zone,
                    &id,
                    "output_value",
                    year,
                    revenue * rng.random_range(1.02..1.12),
                    "亿元",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "value_added",
                    year,
                    value_added,
                    "亿元",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "tax",
                    year,
                    revenue * tax_rate * rng.random_range(0.95..1.05),
                    "亿元",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "fixed_asset_investment",
                    year,
                    revenue * investment_rate * rng.random_range(0.9..1.1),
                    "亿元",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "energy_consumption",
                    year,
                    value_added * energy_per_value_added,
                    "万吨标准煤",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "land_area",
                    year,
                    land_mu * (1.0 + 0.03 * y as f64),
                    "亩",
                ));
                observations.push(observation(
                    zone,
                    &id,
                    "employees",
                    year,
                    revenue * rng.random_range(60.0..140.0),
                    "人",
                ));
            }
            // A few enterprises in the larger zones.
            if n <= 2 {
                for e in 0..6 {
                    let first17 = format!(
                        "91{}MA{:04}{:03}",
                        city.code,
                        n * 10 + e,
                        rng.random_range(100..999)
                    );
                    let Ok(check) = credit_code_check_char(&first17) else {
                        continue;
                    };
                    let code = format!("{first17}{check}");
                    enterprises.push(v1::Enterprise {
                        credit_code: code.clone(),
                        name: format!(
                            "{}{}有限公司",
                            city.name.trim_end_matches('市'),
                            industries[(n + e) % industries.len()]
                        ),
                        zone_id: id.clone(),
                        industry_code: "C34".into(),
                        above_scale: true,
                    });
                    let firm = v1::EntityKind::Enterprise;
                    let revenue: f64 = 2.0 + rng.random::<f64>() * 40.0;
                    let land: f64 = 50.0 + rng.random::<f64>() * 600.0;
                    let year = 2023;
                    observations.push(observation(firm, &code, "revenue", year, revenue, "亿元"));
                    observations.push(observation(
                        firm,
                        &code,
                        "tax",
                        year,
                        revenue * rng.random_range(0.01..0.08) * 10_000.0,
                        "万元",
                    ));
                    observations.push(observation(
                        firm,
                        &code,
                        "value_added",
                        year,
                        revenue * rng.random_range(0.18..0.32),
                        "亿元",
                    ));
                    observations.push(observation(firm, &code, "land_area", year, land, "亩"));
                    observations.push(observation(
                        firm,
                        &code,
                        "employees",
                        year,
                        revenue * rng.random_range(40.0..120.0),
                        "人",
                    ));
                    observations.push(observation(
                        firm,
                        &code,
                        "rd_expenditure",
                        year,
                        revenue * rng.random_range(0.005..0.05) * 10_000.0,
                        "万元",
                    ));
                    // Some firms report no energy figure: the cohort-mean policy fills them.
                    if rng.random::<f64>() < 0.85 {
                        observations.push(observation(
                            firm,
                            &code,
                            "energy_consumption",
                            year,
                            revenue * rng.random_range(0.1..0.6),
                            "万吨标准煤",
                        ));
                    }
                    let accidents = if rng.random::<f64>() < 0.05 { 1.0 } else { 0.0 };
                    observations.push(observation(
                        firm,
                        &code,
                        "major_safety_accidents",
                        year,
                        accidents,
                        "个",
                    ));
                }
            }
        }
        // The city's own figure, of which its zones make up about 60–75%.
        for (y, &year) in YEARS.iter().enumerate() {
            let own = city_revenue[y] / rng.random_range(0.6..0.75);
            observations.push(observation(
                v1::EntityKind::Region,
                &city.code,
                "revenue",
                year,
                own,
                "亿元",
            ));
        }
    }
    Dataset {
        regions,
        zones,
        enterprises,
        observations,
    }
}

async fn load(channel: Channel, data: Dataset) -> Result<v1::IngestReport, tonic::Status> {
    let mut ingestion = IngestionServiceClient::new(channel)
        .max_encoding_message_size(zonerank_server::limits::INGESTION_REQUEST_BYTES)
        .max_decoding_message_size(zonerank_server::limits::RESPONSE_BYTES);
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: data.regions,
            ..Default::default()
        })
        .await?;
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: data.zones,
            ..Default::default()
        })
        .await?;
    ingestion
        .upsert_enterprises(v1::UpsertEnterprisesRequest {
            enterprises: data.enterprises,
            ..Default::default()
        })
        .await?;
    let batches: Vec<v1::IngestObservationsRequest> = data
        .observations
        .chunks(2000)
        .map(|chunk| v1::IngestObservationsRequest {
            observations: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    Ok(ingestion
        .ingest_observations(tokio_stream::iter(batches))
        .await?
        .into_inner())
}

/// `text` padded with spaces to `width` terminal columns (CJK characters take two), on the
/// left or the right; text wider than `width` is left as it is.
fn pad(text: &str, width: usize, right_align: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(UnicodeWidthStr::width(text)));
    if right_align {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

/// Columns of the zone name in the demo's tables.
const NAME_COLUMNS: usize = 30;

fn print_top(run: &v1::RankingRun, entries: &[v1::RankingEntry]) {
    println!(
        "\n河南省产业集聚区考核排序 {} — {} zones ranked (run {})",
        run.period, run.entity_count, run.run_id
    );
    println!(
        "{:>4}  {} {:>7}  {} {:>6}",
        "rank",
        pad("zone", NAME_COLUMNS, false),
        "score",
        pad("stars", 6, false),
        "change"
    );
    for e in entries {
        let change = match (e.previous_rank, e.rank_change) {
            (0, _) => "new".to_string(),
            (_, 0) => "=".to_string(),
            (_, c) if c > 0 => format!("↑{c}"),
            (_, c) => format!("↓{}", -c),
        };
        println!(
            "{:>4}  {} {:>7.2}  {} {:>6}",
            e.rank,
            pad(&e.name, NAME_COLUMNS, false),
            e.score,
            pad(&"★".repeat(e.stars.max(0) as usize), 6, false),
            change
        );
    }
}

/// Per city, its zones inside the scheme's rank target (进入全省前N) and the zones that crossed
/// the line since the previous period.
fn print_rank_target(target: i32, entries: &[v1::RankingEntry], cities: &BTreeMap<String, String>) {
    let city_of = |e: &v1::RankingEntry| {
        e.group_ranks
            .iter()
            .filter_map(|g| g.group.strip_prefix("region:"))
            .find(|code| cities.contains_key(*code))
            .map(str::to_string)
            .unwrap_or_default()
    };
    // city → (zones ranked, zones inside the target, best rank)
    let mut by_city: BTreeMap<String, (usize, usize, i32)> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.rank > 0) {
        let tally = by_city.entry(city_of(e)).or_insert((0, 0, i32::MAX));
        tally.0 += 1;
        if e.meets_rank_target {
            tally.1 += 1;
        }
        tally.2 = tally.2.min(e.rank);
    }
    let mut cities_in: Vec<(&String, &(usize, usize, i32))> =
        by_city.iter().filter(|(_, t)| t.1 > 0).collect();
    cities_in.sort_by_key(|(code, t)| (std::cmp::Reverse(t.1), t.2, (*code).clone()));
    let name = |code: &str| {
        cities
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    };
    println!(
        "\n进入全省前{target} (the scheme's rank target): zones of {} of {} cities",
        cities_in.len(),
        by_city.len()
    );
    for (code, (ranked, inside, best)) in &cities_in {
        println!(
            "  {} {inside:>2} of {ranked:>2} zones, best #{best}",
            pad(&name(code), 10, false)
        );
    }
    let outside: Vec<String> = by_city
        .iter()
        .filter(|(_, t)| t.1 == 0)
        .map(|(code, _)| name(code))
        .collect();
    if !outside.is_empty() {
        println!("  none yet: {}", outside.join("、"));
    }
    let entered: Vec<String> = entries
        .iter()
        .filter(|e| e.meets_rank_target && (e.previous_rank == 0 || e.previous_rank > target))
        .map(|e| format!("{} #{} (was #{})", e.name, e.rank, e.previous_rank))
        .collect();
    let left: Vec<String> = entries
        .iter()
        .filter(|e| !e.meets_rank_target && e.previous_rank > 0 && e.previous_rank <= target)
        .map(|e| format!("{} #{} (was #{})", e.name, e.rank, e.previous_rank))
        .collect();
    println!(
        "  {} entered since the year before: {}",
        entered.len(),
        list_or_none(&entered)
    );
    println!("  {} dropped out: {}", left.len(), list_or_none(&left));
}

/// The first few items of a list and how many more there are.
fn list_or_none(items: &[String]) -> String {
    const SHOWN: usize = 5;
    match items.len() {
        0 => "none".to_string(),
        n if n <= SHOWN => items.join(", "),
        n => format!("{}, and {} more", items[..SHOWN].join(", "), n - SHOWN),
    }
}

/// Runs the demo: serve, load, rank, print, keep serving until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> ExitCode {
    let _telemetry = zonerank_telemetry::init(args.server.log_format, "zonerank");
    let listener = match tokio::net::TcpListener::bind(args.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.server.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server_args = args.server.clone();
    let server = tokio::spawn(async move {
        zonerank_server::run(
            &server_args,
            Services::ALL_IN_ONE,
            listener,
            zonerank_server::shutdown_signal(),
        )
        .await
    });
    match show(&address).await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("\nServing on {address}. Try:");
    println!("  grpcurl -plaintext {address} list");
    println!(
        "  grpcurl -plaintext -d '{{\"scheme_id\": \"henan-zone-assessment\", \"period\": \"2023\", \"group\": \"region:410300\"}}' {address} zonerank.v1.RankingService/GetRanking"
    );
    println!(
        "  grpcurl -plaintext -d '{{\"metrics\": [\"yoy(revenue)\", \"per_mu(tax)\", \"share(revenue)\"], \"period\": \"2023\", \"cohort\": {{\"entity_kind\": \"ENTITY_KIND_ZONE\", \"region_code\": \"410300\"}}}}' {address} zonerank.v1.MetricsService/ComputeMetrics"
    );
    println!(
        "  grpcurl -plaintext -d '{{\"scheme_id\": \"enterprise-per-mu\", \"period\": \"2023\"}}' {address} zonerank.v1.RankingService/ComputeRanking"
    );
    println!("Ctrl-C stops the server.");
    match server.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

async fn show(address: &str) -> Result<(), String> {
    let url = format!("http://{address}");
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(c) = zonerank_server::client::connect(url.clone(), None).await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let channel = channel.ok_or("the server did not start")?;
    let data = dataset();
    let cities: BTreeMap<String, String> = data
        .regions
        .iter()
        .filter(|r| r.level == v1::RegionLevel::City as i32)
        .map(|r| (r.code.clone(), r.name.clone()))
        .collect();
    println!(
        "Loading {} regions, {} zones, {} enterprises and {} observations through the API…",
        data.regions.len(),
        data.zones.len(),
        data.enterprises.len(),
        data.observations.len()
    );
    let report = load(channel.clone(), data)
        .await
        .map_err(|s| s.message().to_string())?;
    println!(
        "accepted {}, updated {}, unchanged {}, rejected {}",
        report.accepted, report.updated, report.unchanged, report.rejected
    );
    let lifecycle_channel = channel.clone();
    let mut ranking = RankingServiceClient::new(channel)
        .max_encoding_message_size(zonerank_server::limits::REQUEST_BYTES)
        .max_decoding_message_size(zonerank_server::limits::RESPONSE_BYTES);
    let computed = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "henan-zone-assessment".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let run = computed.run.unwrap_or_default();
    print_top(&run, &computed.top);
    let improved = ranking
        .get_most_improved(v1::GetMostImprovedRequest {
            scheme_id: "henan-zone-assessment".into(),
            period: "2023".into(),
            page_size: 10,
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    println!("\n全省十快 — the ten most improved since 2022:");
    for e in improved.entries {
        println!(
            "  {} {:>4} → {:<4} (↑{})",
            pad(&e.name, NAME_COLUMNS, false),
            e.previous_rank,
            e.rank,
            e.rank_change
        );
    }
    let stars: BTreeMap<i32, i64> = run.star_counts.clone().into_iter().collect();
    println!("\nStar levels:");
    for (level, count) in stars.iter().rev() {
        println!(
            "  {} {count} zones",
            pad(&"★".repeat(*level as usize), 6, false)
        );
    }
    let whole = ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run.run_id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let scheme = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: run.scheme_id.clone(),
            version: run.scheme_version,
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .scheme
        .unwrap_or_default();
    if scheme.rank_target > 0 {
        print_rank_target(scheme.rank_target, &whole.entries, &cities);
    }
    lifecycle(lifecycle_channel, &run, &whole.entries)
        .await
        .map_err(|s| s.message().to_string())?;

    let firms = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "enterprise-per-mu".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let firm_run = firms.run.unwrap_or_default();
    let all = ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: firm_run.run_id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for e in &all.entries {
        *classes.entry(e.class_label.clone()).or_default() += 1;
    }
    println!(
        "\n工业企业亩均效益综合评价 2023 — {} enterprises: {}",
        firm_run.entity_count,
        classes
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The assessment cycle in a few lines: publish 2023 for its public notice, the last zone
/// objects to its revenue and the objection is accepted (a corrected version), the result is
/// made final, and the lists.
async fn lifecycle(
    channel: Channel,
    run: &v1::RankingRun,
    entries: &[v1::RankingEntry],
) -> Result<(), tonic::Status> {
    let mut assessment = AssessmentServiceClient::new(channel.clone());
    let mut ingestion = IngestionServiceClient::new(channel.clone());
    // Last year's result, published and final, so 2023 has standings to move from.
    let before = RankingServiceClient::new(channel)
        .max_decoding_message_size(zonerank_server::limits::RESPONSE_BYTES)
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: run.scheme_id.clone(),
            period: "2022".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .run
        .unwrap_or_default();
    assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: before.run_id,
            notice_until: before.computed_at,
        })
        .await?;
    assessment
        .finalize_ranking(v1::FinalizeRankingRequest {
            scheme_id: run.scheme_id.clone(),
            period: "2022".into(),
        })
        .await?;
    let notice_until = zonerank_api::prost_types::Timestamp {
        seconds: run.computed_at.as_ref().map_or(0, |t| t.seconds) + 5 * 86_400,
        nanos: 0,
    };
    let published = assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: run.run_id.clone(),
            notice_until: Some(notice_until),
        })
        .await?
        .into_inner()
        .publication
        .unwrap_or_default();
    println!(
        "\n公示 — {} {} published as version {}, open for objections for 5 days",
        published.scheme_id, published.period, published.version
    );
    let Some(last) = entries.iter().rev().find(|e| e.rank > 0) else {
        return Ok(());
    };
    let entity = last.entity.clone().unwrap_or_default();
    let revenue = ingestion
        .get_observations(v1::GetObservationsRequest {
            entity: Some(entity.clone()),
            indicator: "revenue".into(),
            from_period: "2023".into(),
            to_period: "2023".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .observations
        .first()
        .map_or(0.0, |o| o.value);
    let objection = assessment
        .file_objection(v1::FileObjectionRequest {
            run_id: run.run_id.clone(),
            entity: Some(entity),
            reason: "2023 revenue omits the new plant".into(),
            disputed: vec![v1::DisputedValue {
                indicator: "revenue".into(),
                period: "2023".into(),
                claimed_value: revenue * 1.5,
            }],
            evidence: "county statistics bureau letter".into(),
        })
        .await?
        .into_inner()
        .objection
        .unwrap_or_default();
    let corrected = assessment
        .resolve_objection(v1::ResolveObjectionRequest {
            id: objection.id.clone(),
            resolution: v1::Resolution::Accept as i32,
            note: "bureau confirmed".into(),
        })
        .await?
        .into_inner()
        .publication
        .unwrap_or_default();
    println!(
        "申诉 — {} (rank {}) objected to its revenue; accepted: version {} replaces version {}",
        last.name, last.rank, corrected.version, corrected.replaces
    );
    let done = assessment
        .finalize_ranking(v1::FinalizeRankingRequest {
            scheme_id: run.scheme_id.clone(),
            period: run.period.clone(),
        })
        .await?
        .into_inner()
        .publication
        .unwrap_or_default();
    println!("终 — version {} is final", done.version);
    let lists = assessment
        .get_top_lists(v1::GetTopListsRequest {
            scheme_id: run.scheme_id.clone(),
            period: run.period.clone(),
            n: 10,
            fastest_by_score: false,
        })
        .await?
        .into_inner();
    let names = |list: &[v1::ListedEntity]| {
        list_or_none(&list.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
    };
    println!("十强: {}", names(&lists.top));
    println!("十快: {}", names(&lists.fastest));
    println!(
        "first-time promotions: {}",
        names(&lists.first_time_promotions)
    );
    Ok(())
}
