//! Trust end to end on real servers over PostgreSQL: TLS and mTLS with certificates of a test
//! CA, bearer tokens and roles with keys made inside each test.

use std::{path::PathBuf, time::Duration};

use futures::StreamExt;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use zonerank_api::v1::{
    self, assessment_service_client::AssessmentServiceClient,
    audit_service_client::AuditServiceClient, ingestion_service_client::IngestionServiceClient,
    metrics_service_client::MetricsServiceClient, ranking_service_client::RankingServiceClient,
};
use zonerank_integration_tests::{
    RunningServer, henan_two_cities, numbered_zone_id, numbered_zones, seed_regions, server_args,
};
use zonerank_server::{
    ServerArgs, Services,
    auth::keys::{KeyKind, SigningKey, TokenClaims},
    client::Bearer,
};
use zonerank_storage::test_support::TestDatabase;

/// A certificate authority made for one test.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and its key, in PEM, for `names` and `purpose`.
    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }

    fn server_cert(&self) -> (String, String) {
        self.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client_cert(&self) -> (String, String) {
        self.issue(&["ranking.zonerank"], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// Files of one test: certificates and keys written where the server reads them.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("temporary directory"))
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }
}

/// Server settings over a fresh PostgreSQL database, serving TLS with `ca`'s certificate.
async fn tls_server_args(files: &Files, ca: &TestCa) -> (ServerArgs, TestDatabase) {
    let database = TestDatabase::postgres().await.expect("test database");
    let mut args = server_args(&database.url, None);
    let (cert, key) = ca.server_cert();
    args.tls.tls_cert = Some(files.write("server.pem", &cert));
    args.tls.tls_key = Some(files.write("server.key", &key));
    (args, database)
}

fn trusting(ca: &TestCa) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost")
}

/// Whether a health check of `url` over `tls` answers.
async fn health_answers(url: &str, tls: Option<&ClientTlsConfig>) -> bool {
    let Ok(channel) = zonerank_server::client::connect(url.to_string(), tls).await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

/// A plaintext HTTP/2 client of `url`, as `grpcurl -plaintext` would be.
async fn plaintext_answers(url: &str) -> bool {
    let Ok(channel) = Channel::from_shared(url.to_string())
        .expect("url")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_over_tls_and_a_plaintext_client_is_refused() {
    let files = Files::new();
    let ca = TestCa::new("zonerank test CA");
    let (args, database) = tls_server_args(&files, &ca).await;
    let server =
        RunningServer::start_with_tls(args, Services::ALL_IN_ONE, Some(trusting(&ca))).await;

    let mut client = IngestionServiceClient::new(server.channel().await);
    let counts = client
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions over TLS")
        .into_inner()
        .counts
        .expect("counts");
    assert_eq!(counts.created, seed_regions().len() as i64);

    assert!(
        !plaintext_answers(&server.url).await,
        "a plaintext client must not be served by a TLS server"
    );
    let other = TestCa::new("another CA");
    assert!(
        !health_answers(&server.url, Some(&trusting(&other))).await,
        "a client trusting another CA must refuse the server's certificate"
    );

    server.stop().await;
    database.drop().await.expect("drop");
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_are_served() {
    let files = Files::new();
    let ca = TestCa::new("zonerank test CA");
    let (mut args, database) = tls_server_args(&files, &ca).await;
    args.tls.tls_client_ca = Some(files.write("clients-ca.pem", &ca.pem));
    let (cert, key) = ca.client_cert();
    let with_cert = trusting(&ca).identity(Identity::from_pem(&cert, &key));
    let server =
        RunningServer::start_with_tls(args, Services::ALL_IN_ONE, Some(with_cert.clone())).await;

    assert!(health_answers(&server.url, Some(&with_cert)).await);
    assert!(
        !health_answers(&server.url, Some(&trusting(&ca))).await,
        "a client without a certificate must be refused"
    );
    let stranger = TestCa::new("a stranger's CA");
    let (cert, key) = stranger.client_cert();
    let foreign = trusting(&ca).identity(Identity::from_pem(&cert, &key));
    assert!(
        !health_answers(&server.url, Some(&foreign)).await,
        "a client certificate from another CA must be refused"
    );

    server.stop().await;
    database.drop().await.expect("drop");
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_without_a_restart() {
    let files = Files::new();
    let old_ca = TestCa::new("old CA");
    let (args, database) = tls_server_args(&files, &old_ca).await;
    let cert_path = args.tls.tls_cert.clone().expect("cert");
    let key_path = args.tls.tls_key.clone().expect("key");
    let server =
        RunningServer::start_with_tls(args, Services::ALL_IN_ONE, Some(trusting(&old_ca))).await;
    let new_ca = TestCa::new("new CA");
    assert!(!health_answers(&server.url, Some(&trusting(&new_ca))).await);

    // As cert-manager does: the files are replaced in place.
    let (cert, key) = new_ca.server_cert();
    std::fs::write(&key_path, key).expect("key");
    std::fs::write(&cert_path, cert).expect("cert");
    let mut rotated = false;
    for _ in 0..40 {
        if health_answers(&server.url, Some(&trusting(&new_ca))).await {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new certificate was never served");
    assert!(!health_answers(&server.url, Some(&trusting(&old_ca))).await);

    server.stop().await;
    database.drop().await.expect("drop");
}

#[tokio::test]
async fn ranking_calls_the_metrics_service_over_mtls() {
    let files = Files::new();
    let ca = TestCa::new("zonerank test CA");
    let (mut args, database) = tls_server_args(&files, &ca).await;
    database.migrated_store().await.expect("migrate");
    args.tls.tls_client_ca = Some(files.write("clients-ca.pem", &ca.pem));
    let (cert, key) = ca.client_cert();
    let client_cert = files.write("client.pem", &cert);
    let client_key = files.write("client.key", &key);
    let as_client = trusting(&ca).identity(Identity::from_pem(&cert, &key));

    let metrics =
        RunningServer::start_with_tls(args.clone(), Services::METRICS, Some(as_client.clone()))
            .await;
    let mut ranking_args = args.clone();
    ranking_args.metrics_addr = Some(metrics.url.replace("127.0.0.1", "localhost"));
    ranking_args.metrics_tls.ca_cert = Some(files.write("ca.pem", &ca.pem));
    let mut without_cert = ranking_args.clone();
    ranking_args.metrics_tls.client_cert = Some(client_cert);
    ranking_args.metrics_tls.client_key = Some(client_key);
    without_cert.metrics_tls.client_cert = None;
    let ranking =
        RunningServer::start_with_tls(ranking_args, Services::RANKING, Some(as_client.clone()))
            .await;
    // Without a client certificate the metrics service is out of reach, so this ranking server
    // never reports SERVING (its readiness follows the metrics service).
    let refused =
        RunningServer::start_unready(without_cert, Services::RANKING, Some(as_client)).await;

    // Nothing is stored, so the run ranks no one; it could run only by reaching the metrics
    // service with the certificate.
    let run = compute(&ranking)
        .await
        .expect("ranked through mTLS")
        .into_inner();
    assert_eq!(run.run.expect("run").entity_count, 0);
    // Without a client certificate the TLS 1.3 handshake completes and the server's alert
    // arrives with the first request: a transport error.
    let status = compute(&refused).await.expect_err("metrics must refuse");
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown
        ),
        "{status:?}"
    );

    refused.stop().await;
    ranking.stop().await;
    metrics.stop().await;
    database.drop().await.expect("drop");
}

async fn compute(
    server: &RunningServer,
) -> Result<tonic::Response<v1::ComputeRankingResponse>, tonic::Status> {
    RankingServiceClient::new(server.channel().await)
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "enterprise-per-mu".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
}

// ---- Callers: tokens and roles ----

const ISSUER: &str = "https://id.zonerank.test";
const AUDIENCE: &str = "zonerank";

/// A server over a fresh PostgreSQL database that checks tokens against `key`'s key set.
struct AuthServer {
    server: RunningServer,
    database: TestDatabase,
    key: SigningKey,
    files: Files,
}

impl AuthServer {
    async fn start() -> AuthServer {
        AuthServer::start_with(|_| {}).await
    }

    /// A server whose settings `adjust` changes first.
    async fn start_with(adjust: impl FnOnce(&mut ServerArgs)) -> AuthServer {
        let files = Files::new();
        let key = SigningKey::generate(KeyKind::Ed25519).expect("key");
        let jwks = serde_json::to_string(&key.jwks()).expect("jwks");
        let database = TestDatabase::postgres().await.expect("test database");
        let mut args = server_args(&database.url, None);
        args.auth.auth_jwks = Some(files.write("jwks.json", &jwks));
        args.auth.auth_issuer = Some(ISSUER.into());
        args.auth.auth_audience = Some(AUDIENCE.into());
        adjust(&mut args);
        let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
        AuthServer {
            server,
            database,
            key,
            files,
        }
    }

    fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.scoped_token(sub, roles, &[])
    }

    /// A token whose `zonerank_regions` are `regions`.
    fn scoped_token(&self, sub: &str, roles: &[&str], regions: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        self.key
            .sign(
                &TokenClaims {
                    subject: sub,
                    roles: &roles,
                    regions: &regions,
                    issuer: ISSUER,
                    audience: AUDIENCE,
                    ttl_secs: 3600,
                }
                .to_json(),
            )
            .expect("token")
    }

    async fn ingestion(&self, token: Option<&str>) -> IngestionServiceClient<Authorized> {
        IngestionServiceClient::with_interceptor(
            self.server.channel().await,
            Bearer::new(token).expect("bearer"),
        )
    }

    async fn audit(&self, token: &str) -> AuditServiceClient<Authorized> {
        AuditServiceClient::with_interceptor(
            self.server.channel().await,
            Bearer::new(Some(token)).expect("bearer"),
        )
    }

    async fn metrics(&self, token: &str) -> MetricsServiceClient<Authorized> {
        MetricsServiceClient::with_interceptor(
            self.server.channel().await,
            Bearer::new(Some(token)).expect("bearer"),
        )
    }

    async fn ranking(&self, token: &str) -> RankingServiceClient<Authorized> {
        RankingServiceClient::with_interceptor(
            self.server.channel().await,
            Bearer::new(Some(token)).expect("bearer"),
        )
    }

    async fn assessment(&self, token: &str) -> AssessmentServiceClient<Authorized> {
        AssessmentServiceClient::with_interceptor(
            self.server.channel().await,
            Bearer::new(Some(token)).expect("bearer"),
        )
    }

    async fn stop(self) {
        self.server.stop().await;
        self.database.drop().await.expect("drop");
    }
}

type Authorized = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// What ListRegions answers with `authorization` set to exactly `header` (or none).
async fn list_regions_with(server: &AuthServer, header: Option<&str>) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(v1::ListRegionsRequest::default());
    if let Some(header) = header {
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("ascii"));
    }
    IngestionServiceClient::new(server.server.channel().await)
        .list_regions(request)
        .await
        .map(|_| ())
}

fn claims(
    sub: &str,
    exp_from_now: i64,
    nbf_from_now: i64,
    iss: &str,
    aud: &str,
) -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    serde_json::json!({
        "sub": sub, "iss": iss, "aud": aud,
        "exp": now + exp_from_now, "nbf": now + nbf_from_now,
        "zonerank_roles": ["viewer"],
    })
}

#[tokio::test]
async fn tokens_are_checked_and_every_bad_one_is_unauthenticated() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let server = AuthServer::start().await;
    let bearer = |token: String| format!("Bearer {token}");

    let valid = server
        .key
        .sign(&claims("alice", 3600, 0, ISSUER, AUDIENCE))
        .unwrap();
    list_regions_with(&server, Some(&bearer(valid.clone())))
        .await
        .expect("a valid token is served");

    let other_key = SigningKey::generate(KeyKind::Ed25519).unwrap();
    // Another key with the kid of ours: the signature, not the kid, decides.
    let forged = {
        let token = other_key
            .sign(&claims("mallory", 3600, 0, ISSUER, AUDIENCE))
            .unwrap();
        let ours = server.key.jwk().common.key_id.unwrap();
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": ours}).to_string());
        let (_, rest) = token.split_once('.').unwrap();
        format!("{header}.{rest}")
    };
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(claims("mallory", 3600, 0, ISSUER, AUDIENCE).to_string());
        format!("{header}.{payload}.")
    };
    // HMAC keyed with our public key, as if the verifier took the JWK for a shared secret.
    let hmac_with_public_key = {
        let jwk = server.key.jwk();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = jwk.common.key_id.clone();
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(public) = &jwk.algorithm else {
            panic!("an Ed25519 key")
        };
        let secret = URL_SAFE_NO_PAD.decode(&public.x).unwrap();
        jsonwebtoken::encode(
            &header,
            &claims("mallory", 3600, 0, ISSUER, AUDIENCE),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap()
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "HMAC with the public key",
            Some(bearer(hmac_with_public_key)),
        ),
        (
            "expired",
            Some(bearer(
                server
                    .key
                    .sign(&claims("alice", -3600, -7200, ISSUER, AUDIENCE))
                    .unwrap(),
            )),
        ),
        (
            "not yet valid",
            Some(bearer(
                server
                    .key
                    .sign(&claims("alice", 7200, 3600, ISSUER, AUDIENCE))
                    .unwrap(),
            )),
        ),
        (
            "wrong issuer",
            Some(bearer(
                server
                    .key
                    .sign(&claims("alice", 3600, 0, "https://evil.test", AUDIENCE))
                    .unwrap(),
            )),
        ),
        (
            "wrong audience",
            Some(bearer(
                server
                    .key
                    .sign(&claims("alice", 3600, 0, ISSUER, "other-app"))
                    .unwrap(),
            )),
        ),
        (
            "another key",
            Some(bearer(
                other_key
                    .sign(&claims("mallory", 3600, 0, ISSUER, AUDIENCE))
                    .unwrap(),
            )),
        ),
        ("another key under our kid", Some(bearer(forged))),
        ("alg none", Some(bearer(unsigned))),
        ("garbage", Some(bearer("not.a.jwt".into()))),
        ("not bearer", Some(format!("Basic {valid}"))),
        ("missing", None),
    ];
    for (case, header) in cases {
        let status = list_regions_with(&server, header.as_deref())
            .await
            .expect_err(case);
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{case}: {status:?}"
        );
    }

    // Health and reflection answer without a token.
    let channel = server.server.channel().await;
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health without a token");
    let listed = zonerank_integration_tests::reflection_v1_services(channel).await;
    assert!(
        listed.contains(&"zonerank.v1.RankingService".to_string()),
        "reflection without a token: {listed:?}"
    );
    server.stop().await;
}

fn needed_role(status: &tonic::Status) -> (String, String) {
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().expect("ErrorInfo");
    (
        info.metadata.get("principal").cloned().unwrap_or_default(),
        info.metadata
            .get("needed_role")
            .cloned()
            .unwrap_or_default(),
    )
}

/// The admin writes the seed regions and `submitter` the Xin'an county zone 410323-XA; the
/// submitter's ingestion client.
async fn xinan_zone_by(
    server: &AuthServer,
    admin: &str,
    submitter: &str,
) -> IngestionServiceClient<Authorized> {
    server
        .ingestion(Some(admin))
        .await
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("admin writes regions");
    let mut client = server.ingestion(Some(submitter)).await;
    client
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("410323-XA", "410323")],
            ..Default::default()
        })
        .await
        .expect("submitter writes a zone of its city's county");
    client
}

#[tokio::test]
async fn each_role_may_do_what_the_model_says_and_nothing_more() {
    let server = AuthServer::start().await;
    let admin = server.token("root", &["admin"]);
    let viewer = server.token("reader", &["viewer"]);
    let submitter = server.scoped_token("bureau-luoyang", &["submitter"], &["410300"]);
    let assessor = server.token("commerce-dept", &["assessor"]);

    // A submitter writes zones and observations, but not regions or schemes.
    let mut as_submitter = xinan_zone_by(&server, &admin, &submitter).await;
    let figures =
        "entity_kind,entity_id,indicator,period,value,unit\nZONE,410323-XA,tax,2023,11400,万元\n";
    let imported = as_submitter
        .import_csv(v1::ImportCsvRequest {
            content: figures.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect("submitter imports")
        .into_inner();
    assert!(!imported.dry_run);
    let status = as_submitter
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect_err("submitter may not write regions");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        needed_role(&status),
        ("bureau-luoyang".into(), "admin".into())
    );

    let builtin = server
        .ranking(&viewer)
        .await
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "enterprise-per-mu".into(),
            ..Default::default()
        })
        .await
        .expect("viewer reads schemes")
        .into_inner()
        .scheme
        .expect("scheme");
    let mut scheme = builtin.clone();
    scheme.id = "trust-assessment".into();
    let status = server
        .ranking(&submitter)
        .await
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme.clone()),
        })
        .await
        .expect_err("submitter may not create schemes");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(needed_role(&status).1, "assessor");

    // A viewer computes metrics but cannot import.
    let computed = server
        .metrics(&viewer)
        .await
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: vec!["tax".into()],
            period: "2023".into(),
            cohort: Some(v1::CohortSelector {
                entity_kind: v1::EntityKind::Zone as i32,
                region_code: "410300".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("viewer computes metrics")
        .into_inner();
    assert_eq!(computed.table.expect("table").rows.len(), 1);
    let status = server
        .ingestion(Some(&viewer))
        .await
        .import_csv(v1::ImportCsvRequest {
            content: figures.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("viewer may not import");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(needed_role(&status), ("reader".into(), "submitter".into()));

    // An assessor creates schemes and computes runs, but writes no figures.
    let mut as_assessor = server.ranking(&assessor).await;
    let created = as_assessor
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(scheme),
        })
        .await
        .expect("assessor creates schemes")
        .into_inner();
    assert_eq!(created.scheme.expect("scheme").id, "trust-assessment");
    as_assessor
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "enterprise-per-mu".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("assessor computes a run");
    let status = server
        .ingestion(Some(&assessor))
        .await
        .import_csv(v1::ImportCsvRequest {
            content: figures.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("assessor may not import");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // A token without a known role reads nothing.
    let nobody = server.token("nobody", &["superuser"]);
    let status = server
        .ingestion(Some(&nobody))
        .await
        .list_regions(v1::ListRegionsRequest::default())
        .await
        .expect_err("no role");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    server.stop().await;
}

#[tokio::test]
async fn the_ranking_service_calls_the_metrics_service_with_the_callers_token() {
    let files = Files::new();
    let key = SigningKey::generate(KeyKind::P256).expect("key");
    let database = TestDatabase::postgres().await.expect("test database");
    database.migrated_store().await.expect("migrate");
    let mut args = server_args(&database.url, None);
    args.auth.auth_jwks = Some(files.write(
        "jwks.json",
        &serde_json::to_string(&key.jwks()).expect("jwks"),
    ));
    args.auth.auth_issuer = Some(ISSUER.into());
    args.auth.auth_audience = Some(AUDIENCE.into());
    let metrics = RunningServer::start(args.clone(), Services::METRICS).await;
    let mut ranking_args = args;
    ranking_args.metrics_addr = Some(metrics.url.clone());
    let ranking = RunningServer::start(ranking_args, Services::RANKING).await;

    let token = key
        .sign(
            &TokenClaims {
                subject: "commerce-dept",
                roles: &["assessor".to_string()],
                regions: &[],
                issuer: ISSUER,
                audience: AUDIENCE,
                ttl_secs: 600,
            }
            .to_json(),
        )
        .expect("token");
    let run = RankingServiceClient::with_interceptor(
        ranking.channel().await,
        Bearer::new(Some(&token)).expect("bearer"),
    )
    .compute_ranking(v1::ComputeRankingRequest {
        scheme_id: "enterprise-per-mu".into(),
        period: "2023".into(),
        ..Default::default()
    })
    .await
    .expect("the metrics service accepted the forwarded ES256 token")
    .into_inner();
    assert_eq!(run.run.expect("run").scheme_id, "enterprise-per-mu");
    // The ranking process holds no credential of its own: a call that reached metrics without
    // the caller's token would be refused like this one.
    let status = MetricsServiceClient::new(metrics.channel().await)
        .compute_metrics(v1::ComputeMetricsRequest {
            metrics: vec!["tax".into()],
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect_err("metrics without a token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    ranking.stop().await;
    metrics.stop().await;
    database.drop().await.expect("drop");
}

#[tokio::test]
async fn a_rotated_key_set_is_read_without_a_restart() {
    let server = AuthServer::start().await;
    let next = SigningKey::generate(KeyKind::P256).expect("key");
    let token = next
        .sign(&claims("alice", 3600, 0, ISSUER, AUDIENCE))
        .expect("token");
    let header = format!("Bearer {token}");
    let status = list_regions_with(&server, Some(&header))
        .await
        .expect_err("a key not yet in the set");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // The key set now holds the new key alone.
    server.files.write(
        "jwks.json",
        &serde_json::to_string(&next.jwks()).expect("jwks"),
    );
    let mut accepted = false;
    for _ in 0..40 {
        if list_regions_with(&server, Some(&header)).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the new key was never accepted");
    let old = server.token("alice", &["viewer"]);
    let status = list_regions_with(&server, Some(&format!("Bearer {old}")))
        .await
        .expect_err("the removed key");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    server.stop().await;
}

fn zone(id: &str, region: &str) -> v1::Zone {
    v1::Zone {
        id: id.into(),
        name: format!("zone {id}"),
        region_code: region.into(),
        kind: v1::ZoneKind::AgglomerationZone as i32,
        ..Default::default()
    }
}

/// The ErrorInfo of a scope refusal: its reason and metadata.
fn scope_refusal(status: &tonic::Status) -> (String, std::collections::HashMap<String, String>) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    (info.reason, info.metadata)
}

async fn zone_tax(server: &AuthServer, token: &str, zone: &str) -> Vec<f64> {
    server
        .ingestion(Some(token))
        .await
        .get_observations(v1::GetObservationsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: zone.into(),
            }),
            indicator: "tax".into(),
            ..Default::default()
        })
        .await
        .expect("observations")
        .into_inner()
        .observations
        .into_iter()
        .map(|o| o.value)
        .collect()
}

#[tokio::test]
async fn a_submitter_writes_only_inside_its_regions_and_a_refused_request_writes_nothing() {
    let server = AuthServer::start().await;
    let admin = server.token("root", &["admin"]);
    let luoyang = server.scoped_token("bureau-luoyang", &["submitter"], &["410300"]);
    let mut as_admin = server.ingestion(Some(&admin)).await;
    as_admin
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions()
                .into_iter()
                .chain(henan_two_cities())
                .map(|r| (r.code.clone(), r))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_values()
                .collect(),
            ..Default::default()
        })
        .await
        .expect("admin writes regions");
    // Zhengzhou's zone, written by the admin (who is not bound to any region).
    as_admin
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("410100-ZZ", "410100")],
            ..Default::default()
        })
        .await
        .expect("admin writes anywhere");

    let mut as_luoyang = server.ingestion(Some(&luoyang)).await;
    // Xin'an county lies under Luoyang: its zone and figures are the bureau's to write.
    as_luoyang
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("410323-XA", "410323")],
            ..Default::default()
        })
        .await
        .expect("a county zone of the city");
    let ok =
        "entity_kind,entity_id,indicator,period,value,unit\nZONE,410323-XA,tax,2023,11400,万元\n";
    let report = as_luoyang
        .import_csv(v1::ImportCsvRequest {
            content: ok.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect("figures of the county zone")
        .into_inner();
    assert_eq!(report.accepted, 1);

    // A Zhengzhou zone in the same request as a Xin'an one: refused whole, naming the row.
    let status = as_luoyang
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("410323-XB", "410323"), zone("410100-ZB", "410100")],
            ..Default::default()
        })
        .await
        .expect_err("a Zhengzhou zone");
    let (reason, metadata) = scope_refusal(&status);
    assert_eq!(reason, "REGION_OUT_OF_SCOPE");
    assert_eq!(metadata["principal"], "bureau-luoyang");
    assert_eq!(metadata["region"], "410100");
    assert_eq!(metadata["field"], "zones[1].region_code");
    let listed = as_admin
        .list_zones(v1::ListZonesRequest::default())
        .await
        .expect("zones")
        .into_inner()
        .zones
        .into_iter()
        .map(|z| z.id)
        .collect::<Vec<_>>();
    assert_eq!(
        listed,
        ["410100-ZZ", "410323-XA"],
        "nothing of the refused request"
    );

    // Moving Zhengzhou's zone into Luoyang is a write of Zhengzhou's zone.
    let status = as_luoyang
        .upsert_zones(v1::UpsertZonesRequest {
            zones: vec![zone("410100-ZZ", "410323")],
            ..Default::default()
        })
        .await
        .expect_err("taking over a Zhengzhou zone");
    assert_eq!(scope_refusal(&status).1["field"], "zones[0].id");

    // A CSV with one Zhengzhou row among Luoyang's: refused whole, even with partial
    // acceptance, and nothing written.
    let mixed = "entity_kind,entity_id,indicator,period,value,unit\n\
                 ZONE,410323-XA,tax,2023,99999,万元\n\
                 ZONE,410100-ZZ,tax,2023,12345,万元\n";
    for allow_partial in [false, true] {
        let status = as_luoyang
            .import_csv(v1::ImportCsvRequest {
                content: mixed.as_bytes().to_vec(),
                allow_partial,
                ..Default::default()
            })
            .await
            .expect_err("a Zhengzhou row");
        let (reason, metadata) = scope_refusal(&status);
        assert_eq!(reason, "REGION_OUT_OF_SCOPE");
        assert_eq!(metadata["field"], "rows[3].entity_id");
        assert!(
            !metadata.contains_key("region"),
            "the zone's region is not told"
        );
    }
    assert_eq!(zone_tax(&server, &admin, "410323-XA").await, [11400.0]);
    assert!(zone_tax(&server, &admin, "410100-ZZ").await.is_empty());

    // Permission before existence: a zone that does not exist is refused like Zhengzhou's.
    let unknown =
        "entity_kind,entity_id,indicator,period,value,unit\nZONE,NO-SUCH-ZONE,tax,2023,1,万元\n";
    let status = as_luoyang
        .import_csv(v1::ImportCsvRequest {
            content: unknown.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("an unknown zone");
    assert_eq!(scope_refusal(&status).0, "REGION_OUT_OF_SCOPE");

    // The stream and the other reference writes follow the same scope.
    let stream = tokio_stream::iter([v1::IngestObservationsRequest {
        observations: vec![v1::Observation {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "410100-ZZ".into(),
            }),
            indicator: "tax".into(),
            period: "2024".into(),
            value: 1.0,
            unit: "万元".into(),
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let status = as_luoyang
        .ingest_observations(stream)
        .await
        .expect_err("a streamed Zhengzhou figure");
    assert_eq!(scope_refusal(&status).1["field"], "rows[1].entity_id");
    let status = as_luoyang
        .upsert_projects(v1::UpsertProjectsRequest {
            projects: vec![v1::Project {
                id: "P-ZZ".into(),
                name: "a Zhengzhou project".into(),
                zone_id: "410100-ZZ".into(),
                status: v1::ProjectStatus::Negotiating as i32,
                unit: "元".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect_err("a project in a Zhengzhou zone");
    assert_eq!(scope_refusal(&status).1["field"], "projects[0].zone_id");
    let status = as_luoyang
        .upsert_clusters(v1::UpsertClustersRequest {
            clusters: vec![v1::Cluster {
                id: "C-ZZ".into(),
                name: "a Zhengzhou cluster".into(),
                region_code: "410100".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect_err("a Zhengzhou cluster");
    assert_eq!(scope_refusal(&status).1["region"], "410100");

    // Regions are the admin's: the submitter is refused by role, not by scope.
    let status = as_luoyang
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect_err("regions");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(needed_role(&status).1, "admin");

    server.stop().await;
}

async fn audit_events(
    server: &AuthServer,
    token: &str,
    request: v1::ListAuditEventsRequest,
) -> v1::ListAuditEventsResponse {
    server
        .audit(token)
        .await
        .list_audit_events(request)
        .await
        .expect("audit events")
        .into_inner()
}

#[tokio::test]
async fn every_revision_names_its_sender_and_the_audit_log_lists_writes_and_refusals() {
    let server = AuthServer::start().await;
    let admin = server.token("root", &["admin"]);
    let luoyang = server.scoped_token("bureau-luoyang", &["submitter"], &["410300"]);
    let viewer = server.token("reader", &["viewer"]);
    let mut as_luoyang = xinan_zone_by(&server, &admin, &luoyang).await;
    let csv = |value: &str| {
        format!("entity_kind,entity_id,indicator,period,value,unit\nZONE,410323-XA,tax,2023,{value},万元\n")
            .into_bytes()
    };
    let first = as_luoyang
        .import_csv(v1::ImportCsvRequest {
            content: csv("11400"),
            ..Default::default()
        })
        .await
        .expect("first import")
        .into_inner();
    // The admin corrects the figure: a second revision, recorded by the admin.
    let second = server
        .ingestion(Some(&admin))
        .await
        .import_csv(v1::ImportCsvRequest {
            content: csv("11500"),
            ..Default::default()
        })
        .await
        .expect("correction")
        .into_inner();
    assert_eq!((first.accepted, second.updated), (1, 1));
    let revisions = as_luoyang
        .get_observations(v1::GetObservationsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "410323-XA".into(),
            }),
            include_revisions: true,
            ..Default::default()
        })
        .await
        .expect("revisions")
        .into_inner()
        .observations;
    let senders: Vec<(i32, f64, &str)> = revisions
        .iter()
        .map(|o| (o.revision, o.value, o.recorded_by.as_str()))
        .collect();
    assert_eq!(
        senders,
        [(1, 11400.0, "bureau-luoyang"), (2, 11500.0, "root")]
    );

    // Refused: a figure of a zone outside Luoyang, and a call without a token.
    as_luoyang
        .import_csv(v1::ImportCsvRequest {
            content:
                "entity_kind,entity_id,indicator,period,value,unit\nZONE,NOT-OURS,tax,2023,1,万元\n"
                    .as_bytes()
                    .to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("out of scope");
    server
        .ingestion(None)
        .await
        .import_csv(v1::ImportCsvRequest {
            content: csv("1"),
            ..Default::default()
        })
        .await
        .expect_err("no token");

    // The bureau's imports, newest first: the refusal, then the accepted file.
    let imports = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            principal: "bureau-luoyang".into(),
            method: "ImportCsv".into(),
            ..Default::default()
        },
    )
    .await
    .events;
    let outcomes: Vec<(&str, &str)> = imports
        .iter()
        .map(|e| (e.method.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "/zonerank.v1.IngestionService/ImportCsv",
                "PERMISSION_DENIED"
            ),
            ("/zonerank.v1.IngestionService/ImportCsv", "OK"),
        ]
    );
    let accepted = &imports[1];
    assert_eq!(accepted.counts.expect("counts").created, 1);
    assert_eq!(accepted.data_version, first.data_version);
    assert_eq!(accepted.entity_count, 1);
    assert_eq!(accepted.entities[0].id, "410323-XA");
    assert!(!accepted.request_id.is_empty());
    assert!(imports[0].message.contains("outside its regions"));
    assert_eq!(imports[0].data_version, 0);

    let anonymous = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            principal: "anonymous".into(),
            ..Default::default()
        },
    )
    .await
    .events;
    assert_eq!(anonymous.len(), 1);
    assert_eq!(anonymous[0].outcome, "UNAUTHENTICATED");

    // By entity: the zone's creation and both imports of its figure.
    let of_zone = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "410323-XA".into(),
            }),
            ..Default::default()
        },
    )
    .await
    .events;
    let methods: Vec<(&str, &str)> = of_zone
        .iter()
        .map(|e| (e.principal.as_str(), e.method.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(
        methods,
        [
            ("root", "ImportCsv"),
            ("bureau-luoyang", "ImportCsv"),
            ("bureau-luoyang", "UpsertZones")
        ]
    );

    // Paging walks the whole log one event at a time, newest first, each once.
    let everything = audit_events(&server, &admin, v1::ListAuditEventsRequest::default())
        .await
        .events;
    assert_eq!(everything.len(), 6, "{everything:?}");
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = audit_events(
            &server,
            &admin,
            v1::ListAuditEventsRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        paged.extend(page.events.into_iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, everything.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(paged.windows(2).all(|w| w[0] > w[1]));

    // A time range: before the first event, nothing.
    let first_time = everything.last().unwrap().time.unwrap();
    let before = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            end_time: Some(first_time),
            ..Default::default()
        },
    )
    .await
    .events;
    assert!(before.is_empty());
    let from_first = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            start_time: Some(first_time),
            ..Default::default()
        },
    )
    .await
    .events;
    assert_eq!(from_first.len(), everything.len());

    // Only an admin reads the log; the viewer's attempt is itself an event.
    let status = server
        .audit(&viewer)
        .await
        .list_audit_events(v1::ListAuditEventsRequest::default())
        .await
        .expect_err("viewer");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let refused = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            principal: "reader".into(),
            ..Default::default()
        },
    )
    .await
    .events;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].outcome, "PERMISSION_DENIED");

    server.stop().await;
}

#[tokio::test]
async fn an_rs256_token_passes_and_a_tampered_one_is_refused() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use rsa::{
        RsaPrivateKey,
        pkcs8::{EncodePrivateKey, LineEnding},
        traits::PublicKeyParts,
    };
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let public = private.to_public_key();
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }]});
    let pem = private.to_pkcs8_pem(LineEnding::LF).expect("PEM");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("signing key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims("rsa-user", 3600, 0, ISSUER, AUDIENCE),
        &key,
    )
    .expect("token");
    // The same signature over a payload naming someone else.
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims("rsa-admin", 3600, 0, ISSUER, AUDIENCE)).expect("json"));
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);

    let files = Files::new();
    let database = TestDatabase::postgres().await.expect("test database");
    let mut args = server_args(&database.url, None);
    args.auth.auth_jwks = Some(files.write("jwks.json", &jwks.to_string()));
    args.auth.auth_issuer = Some(ISSUER.into());
    args.auth.auth_audience = Some(AUDIENCE.into());
    let server = RunningServer::start(args, Services::ALL_IN_ONE).await;
    let call = |token: String| {
        let server = &server;
        async move {
            let mut request = tonic::Request::new(v1::ListRegionsRequest::default());
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii"),
            );
            IngestionServiceClient::new(server.channel().await)
                .list_regions(request)
                .await
                .map(|_| ())
        }
    };
    call(token).await.expect("a valid RS256 token");
    let status = call(tampered).await.expect_err("a tampered RS256 token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("bad signature"), "{status:?}");
    server.stop().await;
    database.drop().await.expect("drop");
}

#[tokio::test]
async fn a_replaced_client_ca_is_read_without_a_restart() {
    let files = Files::new();
    let ca = TestCa::new("zonerank test CA");
    let (mut args, database) = tls_server_args(&files, &ca).await;
    let old_clients = TestCa::new("old clients' CA");
    let client_ca = files.write("clients-ca.pem", &old_clients.pem);
    args.tls.tls_client_ca = Some(client_ca.clone());
    let presenting = |clients: &TestCa| {
        let (cert, key) = clients.client_cert();
        trusting(&ca).identity(Identity::from_pem(&cert, &key))
    };
    let old_client = presenting(&old_clients);
    let server =
        RunningServer::start_with_tls(args, Services::ALL_IN_ONE, Some(old_client.clone())).await;
    let new_clients = TestCa::new("new clients' CA");
    let new_client = presenting(&new_clients);
    assert!(health_answers(&server.url, Some(&old_client)).await);
    assert!(!health_answers(&server.url, Some(&new_client)).await);

    // The CA bundle is replaced in place, as a mounted Secret is.
    std::fs::write(&client_ca, &new_clients.pem).expect("CA");
    let mut reloaded = false;
    for _ in 0..40 {
        if health_answers(&server.url, Some(&new_client)).await {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "a client of the new CA was never served");
    assert!(
        !health_answers(&server.url, Some(&old_client)).await,
        "a client of the replaced CA must be refused"
    );

    server.stop().await;
    database.drop().await.expect("drop");
}

// ---- The audit of ranking and assessment writes ----

/// A scheme ranking the zones of county 411725 by revenue alone.
fn revenue_scheme(id: &str) -> v1::Scheme {
    zonerank_integration_tests::zone_scheme(id, "revenue", "411725", &[("revenue", 1.0)])
}

fn disputed_revenue(run_id: &str, value: f64) -> v1::FileObjectionRequest {
    v1::FileObjectionRequest {
        run_id: run_id.into(),
        entity: Some(v1::EntityRef {
            kind: v1::EntityKind::Zone as i32,
            id: numbered_zone_id(2),
        }),
        reason: "the revenue omits the new plant".into(),
        disputed: vec![v1::DisputedValue {
            indicator: "revenue".into(),
            period: "2023".into(),
            claimed_value: value,
        }],
        evidence: String::new(),
    }
}

/// (method name, principal, outcome) of an event.
fn call_of(event: &v1::AuditEvent) -> (&str, &str, &str) {
    (
        event.method.rsplit('/').next().unwrap_or_default(),
        event.principal.as_str(),
        event.outcome.as_str(),
    )
}

#[tokio::test]
async fn every_ranking_and_assessment_write_is_audited_once_and_failures_with_their_code() {
    let server = AuthServer::start().await;
    let admin = server.token("root", &["admin"]);
    let assessor = server.token("commerce-dept", &["assessor"]);
    let viewer = server.token("reader", &["viewer"]);
    let mut ingestion = server.ingestion(Some(&admin)).await;
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: seed_regions(),
            ..Default::default()
        })
        .await
        .expect("regions");
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: numbered_zones(3, "411725"),
            ..Default::default()
        })
        .await
        .expect("zones");
    let mut csv = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for (i, value) in [90.0, 50.0, 10.0].iter().enumerate() {
        csv.push_str(&format!(
            "ZONE,{},revenue,2023,{value},\n",
            numbered_zone_id(i)
        ));
    }
    ingestion
        .import_csv(v1::ImportCsvRequest {
            content: csv.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("figures");

    let mut ranking = server.ranking(&assessor).await;
    let mut assessment = server.assessment(&assessor).await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(revenue_scheme("trust-rev")),
        })
        .await
        .expect("scheme");
    let compute = v1::ComputeRankingRequest {
        scheme_id: "trust-rev".into(),
        period: "2023".into(),
        ..Default::default()
    };
    let run = ranking
        .compute_ranking(compute.clone())
        .await
        .expect("run")
        .into_inner()
        .run
        .expect("run");
    let spare = ranking
        .compute_ranking(compute.clone())
        .await
        .expect("spare run")
        .into_inner()
        .run
        .expect("run");
    ranking
        .delete_run(v1::DeleteRunRequest {
            run_id: spare.run_id.clone(),
        })
        .await
        .expect("delete");
    // Failing: no such run. Refused: a viewer deletes nothing.
    let missing = ranking
        .delete_run(v1::DeleteRunRequest {
            run_id: spare.run_id.clone(),
        })
        .await
        .expect_err("deleted twice");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let refused = server
        .ranking(&viewer)
        .await
        .delete_run(v1::DeleteRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .expect_err("viewer");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    assessment
        .publish_ranking(v1::PublishRankingRequest {
            run_id: run.run_id.clone(),
            notice_until: Some(prost_types_now(86_400)),
        })
        .await
        .expect("publish");
    // Any reader may object; the assessor resolves.
    let mut as_viewer = server.assessment(&viewer).await;
    let rejected = as_viewer
        .file_objection(disputed_revenue(&run.run_id, 20.0))
        .await
        .expect("objection")
        .into_inner()
        .objection
        .expect("objection");
    assessment
        .resolve_objection(v1::ResolveObjectionRequest {
            id: rejected.id.clone(),
            resolution: v1::Resolution::Reject as i32,
            note: "no evidence".into(),
        })
        .await
        .expect("reject");
    let accepted = as_viewer
        .file_objection(disputed_revenue(&run.run_id, 30.0))
        .await
        .expect("second objection")
        .into_inner()
        .objection
        .expect("objection");
    let resolved = assessment
        .resolve_objection(v1::ResolveObjectionRequest {
            id: accepted.id.clone(),
            resolution: v1::Resolution::Accept as i32,
            note: "bureau confirmed".into(),
        })
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(resolved.publication.expect("republished").version, 2);
    assessment
        .finalize_ranking(v1::FinalizeRankingRequest {
            scheme_id: "trust-rev".into(),
            period: "2023".into(),
        })
        .await
        .expect("finalize");
    ranking
        .archive_scheme(v1::ArchiveSchemeRequest {
            scheme_id: "trust-rev".into(),
        })
        .await
        .expect("archive");

    let events = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
    .events;
    let calls: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| !e.method.starts_with("/zonerank.v1.IngestionService/"))
        .map(call_of)
        .rev()
        .collect();
    // One event per call, oldest first; the recomputation and the new version after the
    // accepted objection are part of its call, not calls of their own.
    assert_eq!(
        calls,
        [
            ("CreateScheme", "commerce-dept", "OK"),
            ("ComputeRanking", "commerce-dept", "OK"),
            ("ComputeRanking", "commerce-dept", "OK"),
            ("DeleteRun", "commerce-dept", "OK"),
            ("DeleteRun", "commerce-dept", "NOT_FOUND"),
            ("DeleteRun", "reader", "PERMISSION_DENIED"),
            ("PublishRanking", "commerce-dept", "OK"),
            ("FileObjection", "reader", "OK"),
            ("ResolveObjection", "commerce-dept", "OK"),
            ("FileObjection", "reader", "OK"),
            ("ResolveObjection", "commerce-dept", "OK"),
            ("FinalizeRanking", "commerce-dept", "OK"),
            ("ArchiveScheme", "commerce-dept", "OK"),
        ],
        "{events:?}"
    );
    let event = |method: &str, outcome: &str, nth: usize| {
        events
            .iter()
            .rev()
            .filter(|e| e.method.ends_with(&format!("/{method}")) && e.outcome == outcome)
            .nth(nth)
            .unwrap_or_else(|| panic!("{method} {outcome} #{nth}"))
    };
    let runs = |e: &v1::AuditEvent| e.resources.clone();
    let stored_run = event("ComputeRanking", "OK", 0);
    assert_eq!(
        runs(stored_run),
        [
            format!("runs/{}", run.run_id),
            "schemes/trust-rev".to_string()
        ]
    );
    assert_eq!(stored_run.counts.expect("counts").created, 3);
    assert_eq!(
        stored_run.method,
        "/zonerank.v1.RankingService/ComputeRanking"
    );
    assert_eq!(
        runs(event("DeleteRun", "OK", 0)),
        [format!("runs/{}", spare.run_id)]
    );
    assert!(event("DeleteRun", "NOT_FOUND", 0).resources.is_empty());
    assert_eq!(
        runs(event("CreateScheme", "OK", 0)),
        ["schemes/trust-rev".to_string()]
    );
    assert_eq!(
        runs(event("ArchiveScheme", "OK", 0)),
        ["schemes/trust-rev".to_string()]
    );
    assert_eq!(
        runs(event("FinalizeRanking", "OK", 0)),
        ["publications/trust-rev@2023".to_string()]
    );
    let filed = event("FileObjection", "OK", 0);
    assert_eq!(
        runs(filed),
        [
            format!("objections/{}", rejected.id),
            format!("runs/{}", run.run_id)
        ]
    );
    assert_eq!(filed.entities[0].id, numbered_zone_id(2));
    assert_eq!(filed.entity_count, 3);
    // The accepted objection wrote the corrected figure: a revision with a data version.
    let accept = event("ResolveObjection", "OK", 1);
    assert_eq!(accept.counts.expect("counts").updated, 1);
    assert!(accept.data_version > 0);
    assert_eq!(accept.entities[0].id, numbered_zone_id(2));
    assert_eq!(
        runs(accept),
        [
            format!("objections/{}", accepted.id),
            "publications/trust-rev@2023".to_string()
        ]
    );
    assert_eq!(event("ResolveObjection", "OK", 0).data_version, 0);

    // By resource: what was done with the published run.
    let of_run = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            resource: format!("runs/{}", run.run_id),
            ..Default::default()
        },
    )
    .await
    .events;
    let methods: Vec<&str> = of_run.iter().rev().map(|e| call_of(e).0).collect();
    assert_eq!(
        methods,
        [
            "ComputeRanking",
            "PublishRanking",
            "FileObjection",
            "FileObjection"
        ]
    );

    server.stop().await;
}

fn prost_types_now(seconds_ahead: i64) -> zonerank_api::prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    zonerank_api::prost_types::Timestamp {
        seconds: now + seconds_ahead,
        nanos: 0,
    }
}

// ---- A flood of refusals ----

#[tokio::test]
async fn a_flood_of_bad_tokens_leaves_a_bounded_number_of_events_and_a_summary_that_adds_up() {
    let server = AuthServer::start_with(|args| args.audit_refusal_rate = 10).await;
    let mut calls = futures::stream::iter(0..1000)
        .map(|i| {
            list_regions_with(
                &server,
                Some(if i % 2 == 0 {
                    "Bearer garbage"
                } else {
                    "Basic x"
                }),
            )
        })
        .buffer_unordered(16);
    let mut refused = 0;
    while let Some(answer) = calls.next().await {
        assert_eq!(
            answer.expect_err("bad token").code(),
            tonic::Code::Unauthenticated
        );
        refused += 1;
    }
    drop(calls);
    assert_eq!(refused, 1000);
    // Another method and outcome has its own budget: a viewer refused ImportCsv is recorded.
    let viewer = server.token("reader", &["viewer"]);
    server
        .ingestion(Some(&viewer))
        .await
        .import_csv(v1::ImportCsvRequest::default())
        .await
        .expect_err("viewer");
    let admin = server.token("root", &["admin"]);
    let while_open = audit_events(
        &server,
        &admin,
        v1::ListAuditEventsRequest {
            method: "ListRegions".into(),
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
    .events;
    assert_eq!(while_open.len(), 10, "the budget of the window");
    assert!(
        while_open
            .iter()
            .all(|e| e.outcome == "UNAUTHENTICATED" && e.suppressed == 0)
    );

    // At shutdown the open window is summarised: ten events and one for the other 990.
    let AuthServer {
        server: running,
        database,
        ..
    } = server;
    running.stop().await;
    let store = database.migrated_store().await.expect("store");
    let events = store
        .audit_events(
            &zonerank_storage::AuditFilter {
                method: Some("/zonerank.v1.IngestionService/ListRegions".into()),
                ..Default::default()
            },
            None,
            2000,
        )
        .await
        .expect("events")
        .items;
    assert_eq!(events.len(), 11);
    let summary = &events[0].event;
    assert_eq!(
        (
            summary.outcome.as_str(),
            summary.principal.as_str(),
            summary.suppressed
        ),
        ("UNAUTHENTICATED", "anonymous", 990)
    );
    assert!(summary.message.starts_with("990 refusals suppressed"));
    let recorded: i64 = events.iter().map(|e| e.event.suppressed.max(1)).sum();
    assert_eq!(recorded, 1000);
    let import = store
        .audit_events(
            &zonerank_storage::AuditFilter {
                method: Some("/zonerank.v1.IngestionService/ImportCsv".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .expect("events")
        .items;
    assert_eq!(import.len(), 1);
    assert_eq!(import[0].event.outcome, "PERMISSION_DENIED");
    database.drop().await.expect("drop");
}

// ---- The plaintext health port ----

/// A loopback address no one listens on now.
fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

#[tokio::test]
async fn the_health_port_answers_plaintext_probes_while_the_main_port_requires_mtls() {
    let files = Files::new();
    let ca = TestCa::new("zonerank test CA");
    let (mut args, database) = tls_server_args(&files, &ca).await;
    args.tls.tls_client_ca = Some(files.write("client-ca.pem", &ca.pem));
    let health = free_address();
    args.health_listen = Some(health);
    let (cert, key) = ca.client_cert();
    let with_cert = trusting(&ca).identity(Identity::from_pem(cert, key));
    let server =
        RunningServer::start_with_tls(args, Services::ALL_IN_ONE, Some(with_cert.clone())).await;

    let health_url = format!("http://{health}");
    for service in [
        "",
        "zonerank.v1.IngestionService",
        "zonerank.v1.RankingService",
    ] {
        let plain = zonerank_integration_tests::serving_status(&health_url, service).await;
        assert_eq!(
            plain,
            Some(tonic_health::pb::health_check_response::ServingStatus::Serving),
            "{service:?} on the health port"
        );
        let channel = zonerank_server::client::connect(server.url.clone(), Some(&with_cert))
            .await
            .expect("mTLS");
        let main = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health over mTLS")
            .into_inner()
            .status;
        assert_eq!(
            main,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    // The health port serves health only, and the main port still refuses plaintext.
    let status =
        IngestionServiceClient::new(zonerank_integration_tests::channel_to(&health_url).await)
            .list_regions(v1::ListRegionsRequest::default())
            .await
            .expect_err("no zonerank service on the health port");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(!plaintext_answers(&server.url).await);
    assert!(!health_answers(&server.url, Some(&trusting(&ca))).await);

    server.stop().await;
    assert!(
        zonerank_integration_tests::serving_status(&health_url, "")
            .await
            .is_none(),
        "the health port stops with the server"
    );
    database.drop().await.expect("drop");
}
