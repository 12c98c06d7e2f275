//! zonerank-ingestion: the ingestion service alone, for its own pod.

/// mimalloc: an import checks and stages millions of small rows, which glibc's malloc made a
/// third of the process's CPU (`bench/national.sh --perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    zonerank_server::process::service_main(zonerank_server::Services::INGESTION)
}
