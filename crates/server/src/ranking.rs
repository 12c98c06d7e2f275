//! RankingService. Its RPCs answer UNIMPLEMENTED until the ranking work lands (issue 4).

use zonerank_api::v1::ranking_service_server::RankingService;

/// The ranking service.
#[derive(Clone, Debug, Default)]
pub struct Ranking;

impl RankingService for Ranking {}
