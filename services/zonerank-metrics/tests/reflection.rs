//! The zonerank-metrics binary lists over reflection only what it serves.

#[tokio::test]
async fn reflection_lists_only_the_metrics_service() {
    zonerank_integration_tests::binary_lists_only_its_service(
        env!("CARGO_BIN_EXE_zonerank-metrics"),
        &["zonerank.v1.MetricsService"],
    )
    .await;
}
