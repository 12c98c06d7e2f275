//! zonerank-ingestion: the ingestion service alone, for its own pod.

fn main() -> std::process::ExitCode {
    zonerank_server::process::service_main(zonerank_server::Services::INGESTION)
}
