//! The zonerank-ingestion binary lists over reflection only what it serves.

#[tokio::test]
async fn reflection_lists_only_the_ingestion_service() {
    zonerank_integration_tests::binary_lists_only_its_service(
        env!("CARGO_BIN_EXE_zonerank-ingestion"),
        &["zonerank.v1.IngestionService", "zonerank.v1.AuditService"],
    )
    .await;
}
