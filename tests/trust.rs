//! Trust end to end: TLS and mTLS on a real server over PostgreSQL, with certificates made by a
//! test CA inside each test.

use std::{path::PathBuf, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use zonerank_api::v1::{
    self, ingestion_service_client::IngestionServiceClient,
    ranking_service_client::RankingServiceClient,
};
use zonerank_integration_tests::{RunningServer, seed_regions, server_args};
use zonerank_server::{ServerArgs, Services};
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
    let refused =
        RunningServer::start_with_tls(without_cert, Services::RANKING, Some(as_client)).await;

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
