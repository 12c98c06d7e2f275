//! `zonerank import FILE.csv…`: loads CSV files through the API, each by its header: regions
//! (`code,name,…,level,parent_code`), zones (`id,name,region_code,kind,…`), enterprises
//! (`credit_code,name,zone_id,industry_code,above_scale`) or observations in
//! long format, streamed to IngestObservations in batches with a progress bar while the file is
//! still being read. The server checks everything; the client only splits lines and numbers,
//! and a line it cannot read cancels the call, so nothing is written and every such line is
//! reported. With `--dry-run` every file is checked by the server and what it would do is
//! printed; nothing is written.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;
use tonic_types::StatusExt;
use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};
use zonerank_server::{
    client::Bearer,
    ingestion::{csv, incoming_from_csv},
    limits,
};

/// Flags of `zonerank import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// CSV files, loaded in order: regions (code,name,name_en,level,parent_code), zones
    /// (id,name,region_code,kind,tags,leading_industries; lists separated by |), enterprises
    /// (credit_code,name,zone_id,industry_code,above_scale) or observations
    /// (entity_kind,entity_id,indicator,period,value,unit[,source]).
    #[arg(required = true)]
    files: Vec<PathBuf>,
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
    /// Check every file and report what would happen, writing nothing. Files are checked
    /// against what is stored: zones of a regions file checked in the same dry run are not
    /// there yet.
    #[arg(long)]
    dry_run: bool,
    /// Observations per streamed message.
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    /// Source recorded for rows without a source column.
    #[arg(long, default_value = "")]
    source: String,
    /// Bearer token for a server with auth (`zonerank auth token`).
    #[arg(long, env = "ZONERANK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    tls: zonerank_server::tls::ClientTlsArgs,
}

pub async fn run(args: ImportArgs) -> ExitCode {
    let mut failed = false;
    for (i, file) in args.files.iter().enumerate() {
        if import_file(&args, file).await == ExitCode::SUCCESS {
            continue;
        }
        failed = true;
        if !args.dry_run {
            // Later files may build on this one (zones on regions): stop here.
            return ExitCode::FAILURE;
        }
        if i > 0 {
            eprintln!(
                "  (dry run: the files before {} were checked, not written, so what they \
                 would create is not there for it)",
                file.display()
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What a reference-data file did, or would do on a dry run.
fn describe_counts(file: &Path, counts: &v1::UpsertCounts, dry_run: bool) -> String {
    if dry_run {
        format!(
            "{}: would create {}, update {}, leave {} unchanged (dry run: nothing written)",
            file.display(),
            counts.created,
            counts.updated,
            counts.unchanged
        )
    } else {
        format!(
            "{}: created {}, updated {}, unchanged {}",
            file.display(),
            counts.created,
            counts.updated,
            counts.unchanged
        )
    }
}

async fn import_file(args: &ImportArgs, file: &Path) -> ExitCode {
    let content = match std::fs::read(file) {
        Ok(content) => content,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let header = header_of(&content);
    let has = |c: &str| header.iter().any(|h| h == c);
    let result = if has("entity_kind") && has("indicator") {
        return import_observations(args, file, content).await;
    } else if has("code") && has("level") {
        upsert_regions(args, &content).await
    } else if has("id") && has("region_code") && has("kind") {
        upsert_zones(args, &content).await
    } else if has("credit_code") {
        upsert_enterprises(args, &content).await
    } else {
        Err(format!(
            "{}: header {header:?} is neither observations, regions, zones nor enterprises",
            file.display()
        ))
    };
    match result {
        Ok((counts, dry_run)) => {
            println!("{}", describe_counts(file, &counts, dry_run));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn header_of(content: &[u8]) -> Vec<String> {
    let content = content
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(content);
    ::csv::Reader::from_reader(content)
        .headers()
        .map(|h| h.iter().map(|c| c.trim().to_lowercase()).collect())
        .unwrap_or_default()
}

/// The records of a reference-data file as header → cell maps.
fn records(content: &[u8]) -> Result<Vec<std::collections::HashMap<String, String>>, String> {
    let content = content
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(content);
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .from_reader(content);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.map_err(|e| e.to_string())?;
            Ok(header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect())
        })
        .collect()
}

/// The wire value of an enum cell: 0 (UNSPECIFIED: keep the stored value) when blank, and a
/// value no enum has when misspelt, so the server names the field instead of the upsert
/// silently keeping what is stored.
fn enum_cell(cell: &str, prefix: &str, by_name: impl Fn(&str) -> Option<i32>) -> i32 {
    if cell.trim().is_empty() {
        return 0;
    }
    by_name(&format!("{prefix}{}", cell.trim().to_uppercase())).unwrap_or(-1)
}

fn list(cell: Option<&String>) -> Vec<String> {
    cell.map(|c| {
        c.split(['|', ';'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

type Client = IngestionServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

async fn client(args: &ImportArgs) -> Result<Client, String> {
    let tls = zonerank_server::tls::client_config(&args.tls).map_err(|e| e.to_string())?;
    let bearer = Bearer::new(args.token.as_deref())?;
    zonerank_server::client::connect(args.server.clone(), tls.as_ref())
        .await
        .map(|channel| {
            IngestionServiceClient::with_interceptor(channel, bearer)
                .max_encoding_message_size(limits::INGESTION_REQUEST_BYTES)
                .max_decoding_message_size(limits::RESPONSE_BYTES)
        })
        .map_err(|e| format!("cannot reach {}: {e}", args.server))
}

/// What an upsert answered: its counts and whether it was a dry run.
type Upserted = (v1::UpsertCounts, bool);

/// The counts and dry-run flag of an upsert's answer, or its error described.
fn upserted<R>(
    answer: Result<tonic::Response<R>, tonic::Status>,
    parts: impl FnOnce(R) -> (Option<v1::UpsertCounts>, bool),
) -> Result<Upserted, String> {
    let (counts, dry_run) = parts(answer.map_err(|s| describe(&s))?.into_inner());
    Ok((counts.unwrap_or_default(), dry_run))
}

async fn upsert_regions(args: &ImportArgs, content: &[u8]) -> Result<Upserted, String> {
    let regions = records(content)?
        .into_iter()
        .map(|r| {
            let cell = |k: &str| r.get(k).cloned().unwrap_or_default();
            v1::Region {
                code: cell("code"),
                name: cell("name"),
                name_en: cell("name_en"),
                level: enum_cell(&cell("level"), "REGION_LEVEL_", |name| {
                    v1::RegionLevel::from_str_name(name).map(|l| l as i32)
                }),
                parent_code: cell("parent_code"),
            }
        })
        .collect();
    let request = v1::UpsertRegionsRequest {
        regions,
        dry_run: args.dry_run,
        ..Default::default()
    };
    upserted(client(args).await?.upsert_regions(request).await, |r| {
        (r.counts, r.dry_run)
    })
}

async fn upsert_zones(args: &ImportArgs, content: &[u8]) -> Result<Upserted, String> {
    let zones = records(content)?
        .into_iter()
        .map(|r| {
            let cell = |k: &str| r.get(k).cloned().unwrap_or_default();
            v1::Zone {
                id: cell("id"),
                name: cell("name"),
                region_code: cell("region_code"),
                kind: enum_cell(&cell("kind"), "ZONE_KIND_", |name| {
                    v1::ZoneKind::from_str_name(name).map(|k| k as i32)
                }),
                tags: list(r.get("tags")),
                leading_industries: list(r.get("leading_industries")),
            }
        })
        .collect();
    let request = v1::UpsertZonesRequest {
        zones,
        dry_run: args.dry_run,
        ..Default::default()
    };
    upserted(client(args).await?.upsert_zones(request).await, |r| {
        (r.counts, r.dry_run)
    })
}

/// Enterprises per UpsertEnterprises request, under the servers' limit on a request's list.
const ENTERPRISES_PER_REQUEST: usize = 100_000;

/// An enterprises file in requests of [`ENTERPRISES_PER_REQUEST`]. A file of more than one
/// request is first checked whole (every request as a dry run), so a bad row anywhere writes
/// nothing; each request is its own transaction after that.
async fn upsert_enterprises(args: &ImportArgs, content: &[u8]) -> Result<Upserted, String> {
    let enterprises = records(content)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let cell = |k: &str| r.get(k).cloned().unwrap_or_default();
            Ok(v1::Enterprise {
                credit_code: cell("credit_code"),
                name: cell("name"),
                zone_id: cell("zone_id"),
                industry_code: cell("industry_code"),
                // Row 1 is the header.
                above_scale: bool_cell(&cell("above_scale"))
                    .map_err(|e| format!("row {}: {e}", i + 2))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut client = client(args).await?;
    let chunks: Vec<&[v1::Enterprise]> = enterprises.chunks(ENTERPRISES_PER_REQUEST).collect();
    let passes: &[bool] = if chunks.len() > 1 && !args.dry_run {
        &[true, false]
    } else {
        &[args.dry_run]
    };
    let mut total = (v1::UpsertCounts::default(), args.dry_run);
    for &dry_run in passes {
        total.0 = v1::UpsertCounts::default();
        for (i, chunk) in chunks.iter().enumerate() {
            let request = v1::UpsertEnterprisesRequest {
                enterprises: chunk.to_vec(),
                dry_run,
                ..Default::default()
            };
            let (counts, _) = upserted(client.upsert_enterprises(request).await, |r| {
                (r.counts, r.dry_run)
            })
            .map_err(|e| {
                let first = i * ENTERPRISES_PER_REQUEST;
                // enterprises[k] of this request is row first + k + 2 of the file.
                format!("in rows {}–{}: {e}", first + 2, first + chunk.len() + 1)
            })?;
            total.0.created += counts.created;
            total.0.updated += counts.updated;
            total.0.unchanged += counts.unchanged;
        }
    }
    Ok(total)
}

/// A yes/no cell: `true`/`false`, `1`/`0`, `是`/`否`, blank for false; anything else is
/// refused rather than guessed.
fn bool_cell(cell: &str) -> Result<bool, String> {
    match cell.trim().to_lowercase().as_str() {
        "" | "false" | "0" | "no" | "否" => Ok(false),
        "true" | "1" | "yes" | "是" => Ok(true),
        other => Err(format!("above_scale: {other:?} is not true or false")),
    }
}

async fn import_observations(args: &ImportArgs, file: &Path, content: Vec<u8>) -> ExitCode {
    match import(args, file, content).await {
        Ok(report) => {
            print_report(file, &report);
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

/// Batches split ahead of the stream: the file is read while the server checks what came
/// before, and at most this many batches wait in memory.
const BATCHES_AHEAD: usize = 4;

/// What the reading thread needs of the flags.
struct Reading {
    batch_size: usize,
    allow_partial: bool,
    dry_run: bool,
    source: String,
}

type Batches = tokio::sync::mpsc::Sender<v1::IngestObservationsRequest>;

/// Set by the reading thread before it stops sending on a line it cannot read: from then on
/// the stream of batches never ends (see [`batch_stream`]).
type Aborted = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// The batches as the call's request stream. Once `aborted` is set it never ends: an ended
/// stream is one the server commits, so an aborted import must only ever be cancelled (the
/// call dropped), whichever of the client's tasks runs first.
fn batch_stream(
    batches: tokio::sync::mpsc::Receiver<v1::IngestObservationsRequest>,
    aborted: Aborted,
) -> impl tokio_stream::Stream<Item = v1::IngestObservationsRequest> {
    futures::stream::unfold((batches, aborted), |(mut batches, aborted)| async move {
        match batches.recv().await {
            Some(batch) => Some((batch, (batches, aborted))),
            None if aborted.load(std::sync::atomic::Ordering::SeqCst) => {
                std::future::pending().await
            }
            None => None,
        }
    })
}

/// Splits `content` into observations and sends them in batches as it goes. A line it cannot
/// read is collected; unless partial imports are allowed it stops the sending at once (setting
/// `aborted` first, then signalling `abort`) and reads on only to name every bad line. A
/// file-level fault aborts the same way.
fn read_batches(
    content: &[u8],
    reading: &Reading,
    batches: Batches,
    aborted: &Aborted,
    abort: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<v1::RowError>, String> {
    let mut errors = Vec::new();
    let mut sending = Some(batches);
    let mut abort = Some(abort);
    let mut stop = |sending: &mut Option<Batches>| {
        aborted.store(true, std::sync::atomic::Ordering::SeqCst);
        *sending = None;
        if let Some(abort) = abort.take() {
            let _ = abort.send(());
        }
    };
    let mut batch: Vec<v1::Observation> = Vec::with_capacity(reading.batch_size);
    let mut first = true;
    let mut send = |batch: &mut Vec<v1::Observation>, sending: &mut Option<Batches>| {
        let request = v1::IngestObservationsRequest {
            observations: std::mem::replace(batch, Vec::with_capacity(reading.batch_size)),
            allow_partial: first && reading.allow_partial,
            dry_run: first && reading.dry_run,
            strict: false,
        };
        first = false;
        // The receiver is gone when the call ended early; its answer says why.
        if let Some(batches) = sending
            && batches.blocking_send(request).is_err()
        {
            *sending = None;
        }
    };
    let read = csv::each_row(content, |row| {
        let fault = match row {
            Err(e) => Some(v1::RowError {
                row: e.line,
                field: "row".into(),
                reason: e.reason,
            }),
            Ok(row) => {
                let line = row.line;
                let incoming = incoming_from_csv(row, &reading.source);
                match incoming.value {
                    // Read on after the sending stopped only to find the other bad lines.
                    Ok(_) if sending.is_none() => None,
                    Ok(value) => {
                        batch.push(v1::Observation {
                            // The kind travels as written; the server names a bad one with
                            // its row.
                            entity: Some(v1::EntityRef {
                                kind: incoming.kind.map(wire_kind).unwrap_or(0),
                                id: incoming.entity_id,
                            }),
                            indicator: incoming.indicator,
                            period: incoming.period,
                            value,
                            unit: incoming.unit,
                            source: incoming.source,
                            row: line,
                            ..Default::default()
                        });
                        None
                    }
                    Err(reason) => Some(v1::RowError {
                        row: line,
                        field: "value".into(),
                        reason,
                    }),
                }
            }
        };
        if let Some(fault) = fault {
            errors.push(fault);
            if !reading.allow_partial {
                stop(&mut sending);
                batch.clear();
            }
        }
        if batch.len() >= reading.batch_size && sending.is_some() {
            send(&mut batch, &mut sending);
        }
    });
    if let Err(e) = read {
        stop(&mut sending);
        return Err(e.to_string());
    }
    if !batch.is_empty() && sending.is_some() {
        send(&mut batch, &mut sending);
    }
    Ok(errors)
}

/// Streams the file's observations to IngestObservations while they are read, in bounded
/// memory. A line the client cannot read cancels the call (the server then writes nothing)
/// unless `--allow-partial` is given; every such line is reported.
async fn import(
    args: &ImportArgs,
    file: &Path,
    content: Vec<u8>,
) -> Result<v1::IngestReport, String> {
    let lines = content.iter().filter(|&&b| b == b'\n').count() as u64;
    let reading = Reading {
        batch_size: args.batch_size.max(1),
        allow_partial: args.allow_partial,
        dry_run: args.dry_run,
        source: args.source.clone(),
    };
    let (batches, stream) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let (abort, on_abort) = tokio::sync::oneshot::channel();
    let aborted = Aborted::default();
    let stream = batch_stream(stream, aborted.clone());
    let reader = tokio::task::spawn_blocking(move || {
        read_batches(&content, &reading, batches, &aborted, abort)
    });
    let unreadable = |mut errors: Vec<v1::RowError>| {
        errors.sort_by_key(|e| e.row);
        let mut message = format!(
            "{} line(s) cannot be read; nothing written:\n",
            errors.len()
        );
        for e in &errors {
            message.push_str(&format!("  row {} {}: {}\n", e.row, e.field, e.reason));
        }
        message
    };
    let read = |joined: Result<Result<Vec<v1::RowError>, String>, tokio::task::JoinError>| {
        joined
            .map_err(|e| format!("{}: reading stopped: {e}", file.display()))?
            .map_err(|e| format!("{}: {e}", file.display()))
    };
    let mut client = match client(args).await {
        Ok(client) => client,
        Err(message) => {
            // No server to send to: a file with bad lines is still reported as such.
            drop(stream);
            let local = read(reader.await)?;
            return Err(if local.is_empty() || args.allow_partial {
                message
            } else {
                unreadable(local)
            });
        }
    };
    let progress = ProgressBar::new(lines.saturating_sub(1)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} lines sent ({per_sec}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let bar = progress.clone();
    let sent = stream.map(move |batch| {
        bar.inc(batch.observations.len() as u64);
        batch
    });
    enum Ended {
        Answered(Result<tonic::Response<v1::IngestReport>, tonic::Status>),
        // The call is dropped (cancelled); its stream never ends.
        Cancelled,
    }
    let ended = tokio::select! {
        answer = client.ingest_observations(sent) => Ended::Answered(answer),
        Ok(()) = on_abort => Ended::Cancelled,
    };
    progress.finish_and_clear();
    let local = read(reader.await);
    match ended {
        Ended::Cancelled => Err(unreadable(local?)),
        Ended::Answered(Err(status)) => Err(describe(&status)),
        Ended::Answered(Ok(report)) => {
            let local = local?;
            let mut report = report.into_inner();
            report.rejected += local.len() as i64;
            report.errors.extend(local);
            report.errors.sort_by_key(|e| e.row);
            Ok(report)
        }
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

fn print_report(file: &Path, report: &v1::IngestReport) {
    if report.dry_run {
        println!(
            "{}: would accept {}, update {}, leave {} unchanged, reject {} \
             (dry run: nothing written; data version stays {})",
            file.display(),
            report.accepted,
            report.updated,
            report.unchanged,
            report.rejected,
            report.data_version
        );
    } else {
        println!(
            "{}: accepted {}, updated {}, unchanged {}, rejected {}; data version {}",
            file.display(),
            report.accepted,
            report.updated,
            report.unchanged,
            report.rejected,
            report.data_version
        );
    }
    for e in &report.errors {
        println!("  row {} {}: {}", e.row, e.field, e.reason);
    }
}
