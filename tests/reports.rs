//! Cluster strength through ComputeMetrics, and ExportRanking's reports read back: the CSV and
//! the workbook equal to the run, the HTML page rendered by headless Chromium.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use calamine::{Data, Reader, Xlsx};
use tokio_stream::StreamExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_integration_tests::{Deployment, henan_two_cities, seed_regions};

type Ingestion = IngestionServiceClient<tonic::transport::Channel>;
type Ranking = v1::ranking_service_client::RankingServiceClient<tonic::transport::Channel>;

async fn import(client: &mut Ingestion, csv: String) {
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

fn zone(id: &str, name: &str, region: &str) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: name.into(),
        region_code: region.into(),
        kind: v1::ZoneKind::AgglomerationZone as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn lq_of_a_zone_reads_the_region_one_level_up() {
    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .unwrap();
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![
                zone("411725-CJQ", "确山县产业集聚区", "411725"),
                zone("411700-B", "驿城区园区", "411700"),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    // REAT::locq(1714, 79006, 879213, 15593224) = 0.3847623: the zone's 1714 of its county's
    // 79006 against the city's zones' 879213 of the city's 15593224.
    import(
        &mut ingestion,
        format!(
            "entity_kind,entity_id,indicator,period,value,unit\n\
             ZONE,411725-CJQ,employees,2014,1714,人\nREGION,411725,employees,2014,79006,人\n\
             ZONE,411700-B,employees,2014,{},人\nREGION,411700,employees,2014,15593224,人\n\
             ZONE,411725-CJQ,tax,2013,40,万元\nZONE,411725-CJQ,tax,2014,60,万元\n\
             REGION,411725,tax,2013,200,万元\nREGION,411725,tax,2014,250,万元\n",
            879_213 - 1714
        ),
    )
    .await;
    let table = deployment
        .metrics_client()
        .await
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: vec!["lq(employees)".into(), "shift_share(tax)".into()],
            period: "2014".into(),
            cohort: Some(v1::CohortSelector {
                entity_kind: v1::EntityKind::Zone as i32,
                region_code: "411700".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .table
        .unwrap();
    let row = |id: &str| {
        table
            .rows
            .iter()
            .find(|r| r.entity.as_ref().unwrap().id == id)
            .unwrap()
            .values
            .iter()
            .map(|v| v.result.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let queshan = row("411725-CJQ");
    let v1::metric_value::Result::Value(lq) = queshan[0] else {
        panic!("{queshan:?}")
    };
    assert!((lq - 0.384_762_3).abs() < 5e-8, "{lq}");
    // Actual 60 − 40 = 20 against 40 × 25% = 10 at the county's rate.
    assert_eq!(queshan[1], v1::metric_value::Result::Value(10.0));
    // The other zone lies in the city itself: its reference is the province, which has no
    // employment figure.
    assert!(
        matches!(&row("411700-B")[0], v1::metric_value::Result::MissingReason(r) if !r.is_empty())
    );
    deployment.stop().await;
}

/// Six zones in two cities with Chinese names; revenue 2021–2023 and tax 2022–2023.
const ZONES: [(&str, &str, &str, f64, f64); 6] = [
    ("LY-1", "洛阳高新技术产业开发区", "410300", 100.0, 30_000.0),
    ("LY-2", "洛阳经济技术开发区", "410300", 200.0, 50_000.0),
    ("LY-3", "偃师产业集聚区", "410300", 80.0, 12_000.0),
    (
        "ZZ-1",
        "郑州航空港经济综合实验区",
        "410100",
        300.0,
        90_000.0,
    ),
    ("ZZ-2", "郑州经济技术开发区", "410100", 120.0, 15_000.0),
    ("ZZ-3", "新密产业集聚区", "410100", 90.0, 25_000.0),
];

async fn ranked_run(deployment: &Deployment) -> (String, Vec<v1::RankingEntry>, v1::Scheme) {
    let mut ingestion = deployment.ingestion_client().await;
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: henan_two_cities(),
            ..Default::default()
        })
        .await
        .unwrap();
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: ZONES
                .iter()
                .map(|(id, name, city, ..)| zone(id, name, city))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for (i, (id, _, _, revenue, tax)) in ZONES.into_iter().enumerate() {
        let growth = 1.05 + 0.04 * i as f64;
        for (year, factor) in [
            (2021, 1.0),
            (2022, growth),
            (2023, growth * (1.2 - 0.05 * i as f64)),
        ] {
            csv.push_str(&format!(
                "ZONE,{id},revenue,{year},{},亿元\n",
                revenue * factor
            ));
            csv.push_str(&format!("ZONE,{id},tax,{year},{},万元\n", tax * factor));
        }
    }
    import(&mut ingestion, csv).await;
    let mut ranking = deployment.ranking_client().await;
    let scheme = v1::Scheme {
        star_rules: vec![v1::StarRule {
            level: 1,
            min_score: 0.4,
            gates: vec![],
        }],
        ..zonerank_integration_tests::zone_scheme(
            "report-test",
            "园区综合评价",
            "410000",
            &[("yoy(revenue)", 0.5), ("tax", 0.5)],
        )
    };
    let scheme = ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme),
        })
        .await
        .unwrap()
        .into_inner()
        .scheme
        .unwrap();
    let mut run_id = String::new();
    for period in ["2022", "2023"] {
        run_id = ranking
            .compute_ranking(v1::ComputeRankingRequest {
                scheme_id: scheme.id.clone(),
                period: period.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap()
            .run_id;
    }
    let entries = ranking
        .get_ranking(v1::GetRankingRequest {
            run_id: run_id.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(entries.len(), ZONES.len());
    assert!(entries.iter().any(|e| e.previous_rank > 0));
    (run_id, entries, scheme)
}

async fn export(
    ranking: &mut Ranking,
    run_id: &str,
    format: v1::ReportFormat,
) -> (Vec<u8>, String) {
    let mut stream = ranking
        .export_ranking(v1::ExportRankingRequest {
            run_id: run_id.into(),
            format: format as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut bytes, mut name) = (Vec::new(), String::new());
    while let Some(message) = stream.next().await {
        let message = message.unwrap();
        assert!(message.chunk.len() <= 64 * 1024);
        if name.is_empty() {
            name = message.file_name;
        }
        bytes.extend(message.chunk);
    }
    (bytes, name)
}

fn city(id: &str) -> &'static str {
    if id.starts_with("LY") {
        "洛阳市"
    } else {
        "郑州市"
    }
}

#[tokio::test]
async fn csv_and_xlsx_read_back_equal_to_the_run() {
    let deployment = Deployment::postgres_and_redis().await;
    let (run_id, entries, scheme) = ranked_run(&deployment).await;
    let mut ranking = deployment.ranking_client().await;

    let (csv, name) = export(&mut ranking, &run_id, v1::ReportFormat::Csv).await;
    assert!(name.ends_with(".csv"), "{name}");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark");
    let mut reader = csv::Reader::from_reader(&csv[3..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[..6],
        ["rank", "entity_kind", "entity_id", "name", "city", "score"]
    );
    assert_eq!(header.len(), 12 + 2 * scheme.criteria.len());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), entries.len());
    for (row, entry) in rows.iter().zip(&entries) {
        let id = &entry.entity.as_ref().unwrap().id;
        assert_eq!(row[2], *id);
        assert_eq!(row[3], entry.name);
        assert_eq!(row[4], *city(id));
        assert_eq!(row[0].parse::<i32>().unwrap(), entry.rank);
        assert_eq!(row[5].parse::<f64>().unwrap(), entry.score);
        assert_eq!(row[7].parse::<i32>().unwrap(), entry.stars);
        assert_eq!(
            row[12].parse::<f64>().unwrap(),
            entry.criteria[0].raw.unwrap()
        );
        assert_eq!(
            row[15].parse::<f64>().unwrap(),
            entry.criteria[1].contribution
        );
    }

    let (xlsx, name) = export(&mut ranking, &run_id, v1::ReportFormat::Xlsx).await;
    assert!(name.ends_with(".xlsx"), "{name}");
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(xlsx)).unwrap();
    assert_eq!(
        workbook.sheet_names(),
        ["Ranking", "郑州市", "洛阳市", "Scheme"]
    );
    let sheet = workbook.worksheet_range("Ranking").unwrap();
    let cells: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(cells.len(), entries.len() + 1);
    assert_eq!(cells[0][0], Data::String("rank".into()));
    for (row, entry) in cells[1..].iter().zip(&entries) {
        assert_eq!(row[0], Data::Float(f64::from(entry.rank)));
        assert_eq!(
            row[2],
            Data::String(entry.entity.as_ref().unwrap().id.clone())
        );
        assert_eq!(row[3], Data::String(entry.name.clone()));
        assert_eq!(row[5], Data::Float(entry.score));
        assert_eq!(row[12], Data::Float(entry.criteria[0].raw.unwrap()));
    }
    let per_city: HashMap<&str, usize> = ["郑州市", "洛阳市"]
        .into_iter()
        .map(|c| (c, workbook.worksheet_range(c).unwrap().rows().count() - 1))
        .collect();
    assert_eq!(per_city, HashMap::from([("郑州市", 3), ("洛阳市", 3)]));
    let scheme_sheet = workbook.worksheet_range("Scheme").unwrap();
    let lines: Vec<(String, String)> = scheme_sheet
        .rows()
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    assert!(
        lines.contains(&("name".into(), "园区综合评价".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("normalization".into(), "MIN_MAX".into())),
        "{lines:?}"
    );
    deployment.stop().await;
}

/// Chromium's binary, installing Debian's package when it is missing; None only when it cannot
/// be installed.
fn chromium() -> Option<String> {
    let found = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(path) = found("chromium").or_else(|| found("chromium-browser")) {
        return Some(path);
    }
    eprintln!("chromium is missing: installing Debian's chromium and fonts-noto-cjk");
    let _ = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
             chromium fonts-noto-cjk",
        ])
        .status();
    found("chromium")
}

fn headless(chromium: &str, dir: &Path, args: &[&str], page: &Path) -> std::process::Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium")
}

#[tokio::test]
async fn the_html_report_renders_its_table_and_charts_in_chromium() {
    let deployment = Deployment::postgres_and_redis().await;
    let (run_id, entries, _) = ranked_run(&deployment).await;
    let mut ranking = deployment.ranking_client().await;
    let (html, name) = export(&mut ranking, &run_id, v1::ReportFormat::Html).await;
    deployment.stop().await;
    assert!(name.ends_with(".html"), "{name}");
    let text = String::from_utf8(html).unwrap();
    // Self-contained: nothing is fetched.
    assert!(!text.contains("src=") && !text.contains("href=") && !text.contains("@import"));
    assert!(text.contains("洛阳高新技术产业开发区"));

    let Some(chromium) = chromium() else {
        eprintln!(
            "\n\n!!!!! SKIPPED: chromium cannot be installed here; the HTML report was not \
             rendered !!!!!\n\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &text).unwrap();

    let dom = headless(&chromium, dir.path(), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<tr class=\"entry\">").count(),
        entries.len(),
        "{dom}"
    );
    assert_eq!(
        dom.matches("<circle class=\"point\"").count(),
        entries.len()
    );
    // The scorecard and one small multiple per city.
    assert_eq!(dom.matches("<svg").count(), 3);
    assert_eq!(dom.matches("class=\"median\"").count(), 2);

    let shot = dir.path().join("shot.png");
    let out = headless(
        &chromium,
        dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
            "--hide-scrollbars",
        ],
        &page,
    );
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Ok(keep) = std::env::var("ZONERANK_KEEP_REPORT") {
        std::fs::copy(&shot, format!("{keep}.png")).unwrap();
        std::fs::write(format!("{keep}.html"), &text).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let painted = pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| px.iter().take(3).any(|&c| c < 235))
        .count();
    let total = (info.width * info.height) as usize;
    // Text, table borders, bars and points: well over 1% of the page is not white.
    assert!(painted * 100 > total, "{painted} of {total} pixels painted");
}
