//! zonerank-ranking: the ranking service alone, for its own pod.

/// mimalloc, as in the ingestion: a national computation builds and encodes hundreds of thousands of entries per run, and with glibc's malloc
/// its peak stayed above the 1 GiB bound at 500,000 enterprises (`bench/national.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    zonerank_server::process::service_main(zonerank_server::Services::RANKING)
}
