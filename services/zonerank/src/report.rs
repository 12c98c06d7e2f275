//! `zonerank report RUN_ID --format csv|xlsx|html --out FILE`: asks the server's ExportRanking
//! for a stored run's report and writes the streamed bytes to a file. The server builds the
//! report (crates/server/src/report), so the CLI and other callers get the same file.

use std::{path::PathBuf, process::ExitCode};

use tokio_stream::StreamExt;
use zonerank_api::v1::{self, ranking_service_client::RankingServiceClient};
use zonerank_server::{client::Bearer, limits};

/// A report's file format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// UTF-8 with a byte-order mark, for Excel.
    Csv,
    /// An Excel workbook: entries, a sheet per city, the scheme.
    Xlsx,
    /// One self-contained page with the table and charts.
    Html,
}

/// Flags of `zonerank report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The stored run (`ComputeRanking` answers its id; `ListRuns` lists them).
    run_id: String,
    /// The file format.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    format: Format,
    /// Where to write the report.
    #[arg(long)]
    out: PathBuf,
    /// The ranking service (or the all-in-one server).
    #[arg(
        long,
        env = "ZONERANK_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    addr: String,
    /// Bearer token for a server with auth (`zonerank auth token`).
    #[arg(long, env = "ZONERANK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    tls: zonerank_server::tls::ClientTlsArgs,
}

pub async fn run(args: ReportArgs) -> ExitCode {
    match export(&args).await {
        Ok(bytes) => {
            println!("{}: {bytes} bytes", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn export(args: &ReportArgs) -> Result<usize, String> {
    let tls = zonerank_server::tls::client_config(&args.tls).map_err(|e| e.to_string())?;
    let bearer = Bearer::new(args.token.as_deref())?;
    let channel = zonerank_server::client::connect(args.addr.clone(), tls.as_ref())
        .await
        .map_err(|e| format!("cannot reach {}: {e}", args.addr))?;
    let mut client = RankingServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(limits::RESPONSE_BYTES);
    let format = match args.format {
        Format::Csv => v1::ReportFormat::Csv,
        Format::Xlsx => v1::ReportFormat::Xlsx,
        Format::Html => v1::ReportFormat::Html,
    };
    let mut stream = client
        .export_ranking(v1::ExportRankingRequest {
            run_id: args.run_id.clone(),
            format: format as i32,
        })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = stream.next().await {
        bytes.extend(message.map_err(|s| s.message().to_owned())?.chunk);
    }
    std::fs::write(&args.out, &bytes).map_err(|e| format!("{}: {e}", args.out.display()))?;
    Ok(bytes.len())
}
