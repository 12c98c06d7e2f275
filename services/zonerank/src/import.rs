//! `zonerank import FILE.csv`: reads the file, streams it to IngestObservations in batches with a
//! progress bar, and prints the report. The server checks everything; the client only splits
//! lines and numbers, so a file it cannot read is reported before anything is sent.

use std::{path::PathBuf, process::ExitCode};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_server::ingestion::{csv, incoming_from_csv};

/// Flags of `zonerank import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV file: entity_kind,entity_id,indicator,period,value,unit[,source].
    file: PathBuf,
    /// The ingestion service (or the all-in-one server).
    #[arg(
        long,
        env = "ZONERANK_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Write the good rows and report the bad ones instead of rejecting the file.
    #[arg(long)]
    allow_partial: bool,
    /// Check the file and report what would happen, writing nothing.
    #[arg(long)]
    dry_run: bool,
    /// Observations per streamed message.
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    /// Source recorded for rows without a source column.
    #[arg(long, default_value = "")]
    source: String,
}

pub async fn run(args: ImportArgs) -> ExitCode {
    match import(&args).await {
        Ok(report) => {
            print_report(&report);
            if report.rejected > 0 && !args.allow_partial {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn import(args: &ImportArgs) -> Result<v1::IngestReport, String> {
    let content = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let (rows, line_errors) =
        csv::parse(&content).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut local_errors: Vec<v1::RowError> = line_errors
        .into_iter()
        .map(|e| v1::RowError {
            row: e.line,
            field: "row".into(),
            reason: e.reason,
        })
        .collect();
    let mut observations = Vec::with_capacity(rows.len());
    for row in rows {
        let incoming = incoming_from_csv(row.clone(), &args.source);
        let value = match incoming.value {
            Ok(v) => v,
            Err(reason) => {
                local_errors.push(v1::RowError {
                    row: row.line,
                    field: "value".into(),
                    reason,
                });
                continue;
            }
        };
        observations.push(v1::Observation {
            // The kind travels as written; the server names a bad one with its row.
            entity: Some(v1::EntityRef {
                kind: incoming.kind.map(wire_kind).unwrap_or(0),
                id: incoming.entity_id,
            }),
            indicator: incoming.indicator,
            period: incoming.period,
            value,
            unit: incoming.unit,
            source: incoming.source,
            row: row.line,
            ..Default::default()
        });
    }
    if !local_errors.is_empty() && !args.allow_partial {
        local_errors.sort_by_key(|e| e.row);
        let mut message = format!(
            "{} line(s) cannot be read; nothing sent:\n",
            local_errors.len()
        );
        for e in &local_errors {
            message.push_str(&format!("  row {} {}: {}\n", e.row, e.field, e.reason));
        }
        return Err(message);
    }

    let mut client = IngestionServiceClient::connect(args.server.clone())
        .await
        .map_err(|e| format!("cannot reach {}: {e}", args.server))?;
    let progress = ProgressBar::new(observations.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} observations sent ({per_sec}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let batches: Vec<v1::IngestObservationsRequest> = observations
        .chunks(args.batch_size.max(1))
        .enumerate()
        .map(|(i, chunk)| v1::IngestObservationsRequest {
            observations: chunk.to_vec(),
            allow_partial: i == 0 && args.allow_partial,
            dry_run: i == 0 && args.dry_run,
        })
        .collect();
    let bar = progress.clone();
    let stream = tokio_stream::iter(batches).map(move |batch| {
        bar.inc(batch.observations.len() as u64);
        batch
    });
    let answer = client.ingest_observations(stream).await;
    progress.finish_and_clear();
    match answer {
        Ok(report) => {
            let mut report = report.into_inner();
            report.rejected += local_errors.len() as i64;
            report.errors.extend(local_errors);
            report.errors.sort_by_key(|e| e.row);
            Ok(report)
        }
        Err(status) => Err(describe(&status)),
    }
}

fn wire_kind(kind: zonerank_domain::entity::EntityKind) -> i32 {
    zonerank_server::convert::entity_kind_to_wire(kind) as i32
}

/// The status with its field violations, one per line.
fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            text.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    text
}

fn print_report(report: &v1::IngestReport) {
    println!(
        "{}accepted {}, updated {}, unchanged {}, rejected {}; data version {}",
        if report.dry_run { "dry run: " } else { "" },
        report.accepted,
        report.updated,
        report.unchanged,
        report.rejected,
        report.data_version
    );
    for e in &report.errors {
        println!("  row {} {}: {}", e.row, e.field, e.reason);
    }
}
