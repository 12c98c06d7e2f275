//! MetricsService. Its RPCs answer UNIMPLEMENTED until the metrics work lands (issue 3).

use zonerank_api::v1::metrics_service_server::MetricsService;

/// The metrics service.
#[derive(Clone, Debug, Default)]
pub struct Metrics;

impl MetricsService for Metrics {}
