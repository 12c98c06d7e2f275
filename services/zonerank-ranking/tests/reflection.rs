//! The zonerank-ranking binary lists over reflection only what it serves.

#[tokio::test]
async fn reflection_lists_only_the_ranking_service() {
    zonerank_integration_tests::binary_lists_only_its_service(
        env!("CARGO_BIN_EXE_zonerank-ranking"),
        "zonerank.v1.RankingService",
    )
    .await;
}
