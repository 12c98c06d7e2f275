//! Who may call what: the role each method needs.

use crate::error::ServiceError;

/// What a caller may do, from the token's `zonerank_roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Every read, and every computation that stores nothing.
    Viewer,
    /// Viewer, and writes of zones, enterprises, clusters, projects, targets and observations.
    Submitter,
    /// Viewer, and schemes and ranking runs.
    Assessor,
    /// Everything, including regions, indicators and deletions.
    Admin,
}

impl Role {
    /// The role named `name` in a token (`viewer`, `submitter`, `assessor`, `admin`).
    pub fn from_claim(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "submitter" => Some(Role::Submitter),
            "assessor" => Some(Role::Assessor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The name of the role in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Submitter => "submitter",
            Role::Assessor => "assessor",
            Role::Admin => "admin",
        }
    }

    /// Whether holding this role allows what `needed` allows.
    pub fn grants(self, needed: Role) -> bool {
        self == Role::Admin || self == needed || needed == Role::Viewer
    }
}

/// The role each method of the zonerank services needs, by full method path.
const METHOD_ROLES: &[(&str, Role)] = &[
    ("/zonerank.v1.IngestionService/UpsertRegions", Role::Admin),
    ("/zonerank.v1.IngestionService/UpsertZones", Role::Submitter),
    (
        "/zonerank.v1.IngestionService/UpsertEnterprises",
        Role::Submitter,
    ),
    (
        "/zonerank.v1.IngestionService/UpsertClusters",
        Role::Submitter,
    ),
    (
        "/zonerank.v1.IngestionService/UpsertProjects",
        Role::Submitter,
    ),
    (
        "/zonerank.v1.IngestionService/UpsertIndicators",
        Role::Admin,
    ),
    ("/zonerank.v1.IngestionService/ListIndicators", Role::Viewer),
    ("/zonerank.v1.IngestionService/ListRegions", Role::Viewer),
    ("/zonerank.v1.IngestionService/ListZones", Role::Viewer),
    (
        "/zonerank.v1.IngestionService/IngestObservations",
        Role::Submitter,
    ),
    ("/zonerank.v1.IngestionService/ImportCsv", Role::Submitter),
    (
        "/zonerank.v1.IngestionService/GetObservations",
        Role::Viewer,
    ),
    (
        "/zonerank.v1.IngestionService/UpsertTargets",
        Role::Submitter,
    ),
    ("/zonerank.v1.IngestionService/ListTargets", Role::Viewer),
    (
        "/zonerank.v1.IngestionService/ListEnterprises",
        Role::Viewer,
    ),
    ("/zonerank.v1.IngestionService/DeleteZone", Role::Admin),
    (
        "/zonerank.v1.IngestionService/DeleteEnterprise",
        Role::Admin,
    ),
    (
        "/zonerank.v1.IngestionService/DeleteTarget",
        Role::Submitter,
    ),
    ("/zonerank.v1.IngestionService/ListDataIssues", Role::Viewer),
    ("/zonerank.v1.MetricsService/ListMetrics", Role::Viewer),
    ("/zonerank.v1.MetricsService/ComputeMetrics", Role::Viewer),
    ("/zonerank.v1.MetricsService/StreamMetrics", Role::Viewer),
    ("/zonerank.v1.MetricsService/GetMetricSeries", Role::Viewer),
    (
        "/zonerank.v1.MetricsService/GetTargetProgress",
        Role::Viewer,
    ),
    ("/zonerank.v1.MetricsService/GetTierCounts", Role::Viewer),
    (
        "/zonerank.v1.MetricsService/UpsertScreeningRule",
        Role::Assessor,
    ),
    (
        "/zonerank.v1.MetricsService/ListScreeningRules",
        Role::Viewer,
    ),
    ("/zonerank.v1.MetricsService/ScreenZones", Role::Viewer),
    (
        "/zonerank.v1.MetricsService/GetClusterStrength",
        Role::Viewer,
    ),
    ("/zonerank.v1.RankingService/ExportRanking", Role::Viewer),
    ("/zonerank.v1.RankingService/CreateScheme", Role::Assessor),
    ("/zonerank.v1.RankingService/GetScheme", Role::Viewer),
    ("/zonerank.v1.RankingService/ListSchemes", Role::Viewer),
    ("/zonerank.v1.RankingService/ComputeRanking", Role::Assessor),
    ("/zonerank.v1.RankingService/GetRanking", Role::Viewer),
    ("/zonerank.v1.RankingService/ExplainRanking", Role::Viewer),
    ("/zonerank.v1.RankingService/GetMostImproved", Role::Viewer),
    ("/zonerank.v1.RankingService/SimulateRanking", Role::Viewer),
    (
        "/zonerank.v1.RankingService/GetRankRobustness",
        Role::Viewer,
    ),
    ("/zonerank.v1.RankingService/ListRuns", Role::Viewer),
    ("/zonerank.v1.RankingService/DeleteRun", Role::Assessor),
    ("/zonerank.v1.RankingService/ArchiveScheme", Role::Assessor),
    ("/zonerank.v1.AuditService/ListAuditEvents", Role::Admin),
    (
        "/zonerank.v1.AssessmentService/PublishRanking",
        Role::Assessor,
    ),
    (
        "/zonerank.v1.AssessmentService/FinalizeRanking",
        Role::Assessor,
    ),
    (
        "/zonerank.v1.AssessmentService/ListPublications",
        Role::Viewer,
    ),
    // Any caller may object (a firm or zone reading its own result holds viewer or
    // submitter); resolving is the assessor's.
    ("/zonerank.v1.AssessmentService/FileObjection", Role::Viewer),
    (
        "/zonerank.v1.AssessmentService/ListObjections",
        Role::Viewer,
    ),
    (
        "/zonerank.v1.AssessmentService/ResolveObjection",
        Role::Assessor,
    ),
    ("/zonerank.v1.AssessmentService/GetStandings", Role::Viewer),
    ("/zonerank.v1.AssessmentService/GetTopLists", Role::Viewer),
    ("/zonerank.v1.AssessmentService/ListAlerts", Role::Viewer),
    (
        "/zonerank.v1.AssessmentService/ExportPolicyList",
        Role::Viewer,
    ),
];

/// The full path of the method named `name` (`ImportCsv`), when one service has it.
pub fn method_path(name: &str) -> Option<String> {
    METHOD_ROLES
        .iter()
        .map(|(path, _)| *path)
        .find(|path| path.rsplit('/').next() == Some(name))
        .map(str::to_string)
}

/// Whether `path` is a method of the zonerank services (a caller can send any path).
pub fn is_known_method(path: &str) -> bool {
    METHOD_ROLES.iter().any(|(method, _)| *method == path)
}

/// The role `path` (`/zonerank.v1.RankingService/CreateScheme`) needs; a method missing from
/// the table needs admin, so a new method is closed until it is classified.
pub fn needed_role(path: &str) -> Role {
    METHOD_ROLES
        .iter()
        .find(|(method, _)| *method == path)
        .map_or(Role::Admin, |(_, role)| *role)
}

/// Whether `principal` may call `path`: PERMISSION_DENIED naming the role it lacks.
pub fn authorize(principal: &super::Principal, path: &str) -> Result<(), ServiceError> {
    let needed = needed_role(path);
    if principal.roles.iter().any(|role| role.grants(needed)) {
        return Ok(());
    }
    let method = path.rsplit('/').next().unwrap_or(path);
    Err(ServiceError::PermissionDenied {
        reason: "ROLE_REQUIRED".into(),
        message: format!(
            "{} may not call {method}: it needs the {} role",
            principal.subject,
            needed.as_str()
        ),
        metadata: vec![
            ("principal".into(), principal.subject.clone()),
            ("needed_role".into(), needed.as_str().into()),
        ],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost_reflect::DescriptorPool;

    use super::*;

    #[test]
    fn every_method_of_the_services_is_in_the_table_and_nothing_else() {
        let pool = DescriptorPool::decode(zonerank_api::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut methods = BTreeSet::new();
        for service in pool.services() {
            if service.package_name() != "zonerank.v1" {
                continue;
            }
            for method in service.methods() {
                methods.insert(format!("/{}/{}", service.full_name(), method.name()));
            }
        }
        assert_eq!(
            pool.services()
                .filter(|s| s.package_name() == "zonerank.v1")
                .count(),
            5
        );
        let table: BTreeSet<String> = METHOD_ROLES.iter().map(|(m, _)| m.to_string()).collect();
        assert_eq!(table.len(), METHOD_ROLES.len(), "a method is listed twice");
        let missing: Vec<_> = methods.difference(&table).collect();
        let unknown: Vec<_> = table.difference(&methods).collect();
        assert!(missing.is_empty(), "methods without a role: {missing:?}");
        assert!(
            unknown.is_empty(),
            "roles for methods that do not exist: {unknown:?}"
        );
    }

    #[test]
    fn roles_grant_what_the_model_says() {
        use Role::*;
        assert!(Submitter.grants(Viewer) && Assessor.grants(Viewer) && Admin.grants(Assessor));
        assert!(!Viewer.grants(Submitter) && !Submitter.grants(Assessor));
        assert!(!Assessor.grants(Submitter) && !Submitter.grants(Admin));
        assert_eq!(
            needed_role("/zonerank.v1.IngestionService/ImportCsv"),
            Submitter
        );
        assert_eq!(
            needed_role("/zonerank.v1.IngestionService/UpsertRegions"),
            Admin
        );
        assert_eq!(
            needed_role("/zonerank.v1.RankingService/CreateScheme"),
            Assessor
        );
        assert_eq!(
            needed_role("/zonerank.v1.RankingService/NotYetClassified"),
            Admin
        );
    }
}
