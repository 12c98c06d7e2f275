//! Configuration from flags and the environment, shared by every binary.

use std::net::SocketAddr;

use zonerank_telemetry::LogFormat;

use crate::{
    auth::AuthArgs,
    tls::{ClientTlsArgs, TlsArgs},
};

/// Where the database is.
#[derive(Clone, Debug, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://zonerank.db`, a file path, or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://zonerank.db?mode=rwc"
    )]
    pub database_url: String,
}

/// The settings of a server process.
#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on for gRPC.
    #[arg(long, env = "ZONERANK_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Redis URL for the result cache; unset means an in-process cache.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this deployment writes.
    #[arg(long, env = "ZONERANK_REDIS_PREFIX", default_value = "zonerank:")]
    pub redis_prefix: String,

    /// The metrics service, for services that call it (ranking); unset means in-process.
    #[arg(long, env = "ZONERANK_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Log format.
    #[arg(long, env = "ZONERANK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "ZONERANK_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Seconds any call may run when its client sets no shorter deadline (`grpc-timeout`).
    #[arg(long, env = "ZONERANK_MAX_CALL_SECS", default_value_t = 60)]
    pub max_call_secs: u64,

    /// Seconds any call may run on the server at all, whatever deadline its client sent: the
    /// bound of the calls `--max-call-secs` does not cover (a long import). 300 by default.
    #[arg(long, env = "ZONERANK_MAX_REQUEST_SECS", default_value_t = crate::limits::REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub max_request_secs: u64,

    /// Cohort entities one ComputeRanking or SimulateRanking may rank.
    #[arg(long, env = "ZONERANK_MAX_RANKING_ENTITIES", default_value_t = crate::budget::MAX_RANKING_ENTITIES)]
    pub max_ranking_entities: usize,

    /// Expressions × periods × cohort entities one metrics computation may evaluate (a
    /// ranking's metric tables included; set it on the metrics service too).
    #[arg(long, env = "ZONERANK_MAX_METRIC_CELLS", default_value_t = crate::budget::MAX_METRIC_CELLS)]
    pub max_metric_cells: usize,

    /// A JSON file setting the data-quality rules (on/off, tolerance, severity per rule);
    /// unset means the defaults. An unknown rule or an unusable tolerance stops the start.
    #[arg(long, env = "ZONERANK_QUALITY_RULES")]
    pub quality_rules: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// TLS of the calls to the metrics service (`--metrics-addr`).
    #[command(flatten)]
    pub metrics_tls: ClientTlsArgs,

    /// A second address serving only grpc.health.v1.Health, without TLS or tokens, for
    /// probes that cannot present either (kubelet's gRPC probes); unset means none.
    #[arg(long, env = "ZONERANK_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,

    /// Refused calls (UNAUTHENTICATED, PERMISSION_DENIED) recorded in the audit log per
    /// minute for each method and outcome; the rest are counted and summarised in one event.
    /// 0 records every one.
    #[arg(
        long,
        env = "ZONERANK_AUDIT_REFUSAL_RATE",
        default_value_t = crate::refusals::DEFAULT_PER_WINDOW
    )]
    pub audit_refusal_rate: u32,
}
