//! zonerank: the all-in-one server (`serve`), migrations (`migrate`), CSV import (`import`),
//! the demo (`demo`), reports of stored runs (`report`) and signing keys and tokens (`auth`).

mod auth;
mod demo;
mod import;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zonerank_server::{DatabaseArgs, LogFormat, ServerArgs, Services};

/// mimalloc: cheaper than glibc's malloc for the many small allocations of an import's rows.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "zonerank: metrics and rankings of industrial zones, over gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run ingestion, metrics and ranking in one process (SQLite and an in-process cache by
    /// default; the database is created and migrated on first start).
    Serve(ServerArgs),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Load CSV files (regions, zones, observations) through the API.
    Import(import::ImportArgs),
    /// Serve the embedded default with a generated Henan dataset, rank it and print the result.
    Demo(demo::DemoArgs),
    /// Write a stored ranking run as a CSV, XLSX or HTML report (through ExportRanking).
    Report(report::ReportArgs),
    /// Signing keys and tokens for `--auth-jwks`.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
}

/// Flags of `zonerank migrate`.
#[derive(Debug, clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Log format.
    #[arg(long, env = "ZONERANK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => zonerank_server::process::serve(&args, Services::ALL_IN_ONE).await,
        Command::Migrate(args) => migrate(&args).await,
        Command::Import(args) => import::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Auth(command) => auth::run(command),
    }
}

async fn migrate(args: &MigrateArgs) -> ExitCode {
    let _telemetry = zonerank_telemetry::init(args.log_format, "zonerank");
    let args = &args.database;
    let result = async {
        let store = zonerank_storage::Store::connect(&args.database_url).await?;
        store.migrate().await?;
        store.data_version().await
    }
    .await;
    match result {
        Ok(version) => {
            tracing::info!(data_version = version, "database migrated");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "migration failed");
            ExitCode::FAILURE
        }
    }
}
