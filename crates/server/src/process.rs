//! The life of a service process: flags and environment, logs, the listener, the run.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;

use crate::{ServerArgs, Services, run, shutdown_signal};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A zonerank gRPC service; every flag can also be set from the environment."
)]
struct ServiceCli {
    #[command(flatten)]
    server: ServerArgs,
}

/// The `main` of a single-service binary.
pub fn service_main(services: Services) -> ExitCode {
    let cli = ServiceCli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(&cli.server, services))
}

/// Binds the configured address and serves until Ctrl-C or SIGTERM.
pub async fn serve(args: &ServerArgs, services: Services) -> ExitCode {
    // Held to the end: dropping it flushes the last spans and metrics.
    let _telemetry = zonerank_telemetry::init(args.log_format, services.process_name());
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(address = %args.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match run(args, services, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "zonerank stopped");
            ExitCode::FAILURE
        }
    }
}
