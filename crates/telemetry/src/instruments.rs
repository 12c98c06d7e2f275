//! The OpenTelemetry instruments zonerank records: per-RPC counts and durations and the domain
//! counters. They bind to the global meter provider, a no-op until OTLP export is configured.

use std::sync::OnceLock;

use opentelemetry::{
    global,
    metrics::{Counter, Histogram},
};

/// Every instrument, created once.
pub struct Instruments {
    /// `rpc.server.requests`: RPCs served, by rpc.service, rpc.method, rpc.grpc.status_code.
    pub rpc_requests: Counter<u64>,
    /// `rpc.server.duration` in milliseconds, by the same attributes.
    pub rpc_duration: Histogram<f64>,
    /// `rpc.client.duration` in milliseconds, for calls between services.
    pub rpc_client_duration: Histogram<f64>,
    /// `zonerank.observations.accepted`: observations written (new or revised).
    pub observations_accepted: Counter<u64>,
    /// `zonerank.observations.rejected`: rows rejected by checks.
    pub observations_rejected: Counter<u64>,
    /// `zonerank.rankings.computed`: ranking runs stored.
    pub rankings_computed: Counter<u64>,
}

/// The instruments (created on first use from the global meter provider).
pub fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = global::meter("zonerank");
        Instruments {
            rpc_requests: meter
                .u64_counter("rpc.server.requests")
                .with_description("RPCs served")
                .build(),
            rpc_duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Time to serve an RPC")
                .build(),
            rpc_client_duration: meter
                .f64_histogram("rpc.client.duration")
                .with_unit("ms")
                .with_description("Time of an RPC to another zonerank service")
                .build(),
            observations_accepted: meter
                .u64_counter("zonerank.observations.accepted")
                .with_description("Observations written, new or revised")
                .build(),
            observations_rejected: meter
                .u64_counter("zonerank.observations.rejected")
                .with_description("Observations rejected by checks")
                .build(),
            rankings_computed: meter
                .u64_counter("zonerank.rankings.computed")
                .with_description("Ranking runs computed and stored")
                .build(),
        }
    })
}
