//! The zonerank-ranking binary lists over reflection only what it serves: ranking and
//! the assessment lifecycle over its runs.

#[tokio::test]
async fn reflection_lists_only_the_ranking_and_assessment_services() {
    zonerank_integration_tests::binary_lists_only_its_service(
        env!("CARGO_BIN_EXE_zonerank-ranking"),
        &[
            "zonerank.v1.RankingService",
            "zonerank.v1.AssessmentService",
        ],
    )
    .await;
}
