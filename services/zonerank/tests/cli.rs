//! The `zonerank` binary as a newcomer runs it: `serve` on a fresh SQLite file, `import` of the
//! example files, and a clean stop on SIGTERM.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::Duration,
};

use zonerank_api::v1::{self, ingestion_service_client::IngestionServiceClient};

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(file)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads back through the API what the CLI wrote.
struct Api {
    runtime: tokio::runtime::Runtime,
    server: String,
}

impl Api {
    fn new(server: &str) -> Api {
        Api {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            server: server.to_string(),
        }
    }

    fn client(&self) -> IngestionServiceClient<tonic::transport::Channel> {
        self.runtime
            .block_on(IngestionServiceClient::connect(self.server.clone()))
            .expect("connect")
    }

    fn observations(&self) -> v1::GetObservationsResponse {
        let request = v1::GetObservationsRequest {
            entity: Some(v1::EntityRef {
                kind: v1::EntityKind::Zone as i32,
                id: "411725-CJQ".into(),
            }),
            ..Default::default()
        };
        self.runtime
            .block_on(self.client().get_observations(request))
            .expect("observations")
            .into_inner()
    }

    fn data_version(&self) -> i64 {
        self.observations().data_version
    }

    fn zones(&self) -> Vec<v1::Zone> {
        self.runtime
            .block_on(self.client().list_zones(v1::ListZonesRequest::default()))
            .expect("zones")
            .into_inner()
            .zones
    }

    fn zone_name(&self, id: &str) -> String {
        self.zones()
            .into_iter()
            .find(|z| z.id == id)
            .map(|z| z.name)
            .unwrap_or_default()
    }

    /// (regions, zones, observations of 411725-CJQ) stored.
    fn counts(&self) -> (usize, usize, usize) {
        let regions = self
            .runtime
            .block_on(
                self.client()
                    .list_regions(v1::ListRegionsRequest::default()),
            )
            .expect("regions")
            .into_inner()
            .regions
            .len();
        let observations = if self.zones().iter().any(|z| z.id == "411725-CJQ") {
            self.observations().observations.len()
        } else {
            0
        };
        (regions, self.zones().len(), observations)
    }
}

fn import(server: &str, files: &[PathBuf], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zonerank"))
        .arg("import")
        .args(files)
        .args(["--server", server])
        .args(extra)
        .output()
        .expect("run zonerank import")
}

#[test]
fn serve_import_reimport_reject_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let mut child = Server(
        Command::new(env!("CARGO_BIN_EXE_zonerank"))
            .arg("serve")
            .current_dir(dir.path())
            .env("ZONERANK_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zonerank serve"),
    );
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        sleep(Duration::from_millis(50));
    }
    assert!(up, "zonerank serve listens");
    assert!(
        dir.path().join("zonerank.db").exists(),
        "the default SQLite file is created"
    );

    let files = [
        data("regions.csv"),
        data("zones.csv"),
        data("queshan-2014.csv"),
    ];
    // A dry run on the empty database: every file is checked, nothing is written. The zones'
    // regions are not stored (the regions file was only checked), and the run says so.
    let dry = import(&server, &files, &["--dry-run"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr),
    );
    assert!(!dry.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "regions.csv: would create 5, update 0, leave 0 unchanged (dry run: nothing written)"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("zones[0].region_code"), "{stderr}");
    assert!(stderr.contains("checked, not written"), "{stderr}");
    // A dry run of observations answers with every row's fault in its report.
    assert!(
        stdout.contains("unknown zone"),
        "the observations were checked too: {stdout}"
    );
    let api = Api::new(&server);
    assert_eq!(api.counts(), (0, 0, 0), "nothing written");

    let first = import(&server, &files, &[]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("regions.csv: created 5, updated 0, unchanged 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accepted 6, updated 0, unchanged 0, rejected 0"),
        "{stdout}"
    );
    assert_eq!(api.counts(), (5, 2, 6));

    // A dry run of changed files says what would change and still writes nothing.
    let zones = dir.path().join("zones.csv");
    std::fs::write(
        &zones,
        "id,name,region_code,kind\n\
         411725-CJQ,确山县产业集聚区（新）,411725,AGGLOMERATION_ZONE\n\
         410323-XA,新安县产业集聚区,410323,AGGLOMERATION_ZONE\n\
         411725-NEW,确山县新园区,411725,INDUSTRIAL_PARK\n",
    )
    .unwrap();
    let figures = dir.path().join("figures.csv");
    std::fs::write(
        &figures,
        "entity_kind,entity_id,indicator,period,value,unit\n\
         ZONE,411725-CJQ,output_value,2014-H1,60,亿元\n\
         ZONE,411725-CJQ,land_area,2014,8.2,平方公里\n",
    )
    .unwrap();
    let version = api.data_version();
    let dry = import(
        &server,
        &[data("regions.csv"), zones, figures],
        &["--dry-run"],
    );
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        stdout.contains("regions.csv: would create 0, update 0, leave 5 unchanged (dry run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("zones.csv: would create 1, update 1, leave 1 unchanged (dry run"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "figures.csv: would accept 1, update 1, leave 0 unchanged, reject 0 (dry run: nothing written"
        ),
        "{stdout}"
    );
    assert_eq!(api.counts(), (5, 2, 6), "nothing written");
    assert_eq!(api.zone_name("411725-CJQ"), "确山县产业集聚区");
    assert_eq!(api.data_version(), version);

    // A misspelt kind is named, not silently left as stored.
    let typo = dir.path().join("typo.csv");
    std::fs::write(
        &typo,
        "id,name,region_code,kind\n411725-CJQ,确山县产业集聚区,411725,AGGLOMERATON_ZONE\n",
    )
    .unwrap();
    let rejected = import(&server, &[typo], &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(!rejected.status.success());
    assert!(stderr.contains("zones[0].kind"), "{stderr}");

    // Enterprises by their header; a yes/no cell that is neither is refused with its row, and
    // a bad credit code refuses the whole file, naming the record.
    let firms = dir.path().join("firms.csv");
    std::fs::write(
        &firms,
        "credit_code,name,zone_id,industry_code,above_scale\n\
         91411725000000001D,确山甲企业,411725-CJQ,C26,true\n\
         91410323000000002J,新安乙企业,410323-XA,C33,否\n",
    )
    .unwrap();
    let out = import(&server, std::slice::from_ref(&firms), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("firms.csv: created 2, updated 0, unchanged 0"),
        "{stdout}"
    );
    std::fs::write(
        &firms,
        "credit_code,name,zone_id,industry_code,above_scale\n\
         91411725000000003K,确山丙企业,411725-CJQ,C26,maybe\n",
    )
    .unwrap();
    let out = import(&server, std::slice::from_ref(&firms), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("row 2: above_scale"), "{stderr}");
    std::fs::write(
        &firms,
        "credit_code,name,zone_id,industry_code,above_scale\n\
         91411725000000005R,确山丁企业,411725-CJQ,C26,\n\
         91411725000000001E,确山甲企业,411725-CJQ,C26,\n",
    )
    .unwrap();
    let out = import(&server, std::slice::from_ref(&firms), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("enterprises[1].credit_code"), "{stderr}");

    let again = import(&server, &files[2..], &[]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("accepted 0, updated 0, unchanged 6"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "entity_kind,entity_id,indicator,period,value,unit\nZONE,411725-CJQ,tax,2015,1,亩\n",
    )
    .unwrap();
    let rejected = import(&server, &[bad], &[]);
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(!rejected.status.success());
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    assert!(stderr.contains("rows[2].unit"), "{stderr}");

    // A long file whose last lines the client cannot read: its batches are streamed while it
    // is read, so the server has received the good rows by then; the call is cancelled and
    // nothing is written.
    let before = (api.counts(), api.data_version());
    let long = dir.path().join("long.csv");
    let mut text = String::from("entity_kind,entity_id,indicator,period,value,unit\n");
    for year in 1901..2001 {
        for month in 1..=12 {
            text.push_str(&format!("ZONE,411725-CJQ,tax,{year}-{month:02},1.5,亿元\n"));
        }
    }
    text.push_str("ZONE,411725-CJQ,tax,2001-01,1.5.5,亿元\nZONE,411725-CJQ\n");
    text.push_str("ZONE,411725-CJQ,tax,2001-02,\"1,5\",亿元\n");
    std::fs::write(&long, text).unwrap();
    let cancelled = import(&server, &[long], &["--batch-size", "10"]);
    let stderr = String::from_utf8_lossy(&cancelled.stderr);
    assert!(!cancelled.status.success());
    assert!(
        stderr.contains("3 line(s) cannot be read; nothing written"),
        "{stderr}"
    );
    assert!(stderr.contains("row 1202 value"), "{stderr}");
    assert!(stderr.contains("row 1203 row"), "{stderr}");
    // Bad values after the sending stopped are named too.
    assert!(stderr.contains("row 1204 value"), "{stderr}");
    assert_eq!(
        (api.counts(), api.data_version()),
        before,
        "nothing written"
    );

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        sleep(Duration::from_millis(50));
    }
    let status = exited.expect("zonerank serve stops on SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
}

#[test]
fn demo_ingests_ranks_prints_and_keeps_serving() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Server(
        Command::new(env!("CARGO_BIN_EXE_zonerank"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zonerank demo"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Serving on");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("rejected 0"), "{text}");
    assert!(text.contains("188 zones ranked"), "{text}");
    let top: Vec<&String> = printed
        .iter()
        .skip_while(|l| !l.starts_with("rank"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(top.len(), 20, "the top 20: {text}");
    assert!(top[0].trim_start().starts_with("1 "), "{text}");
    let fastest = printed
        .iter()
        .skip_while(|l| !l.contains("十快"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(fastest, 10, "{text}");
    assert!(text.contains("Star levels:"), "{text}");
    // The rank-target section names cities and what crossed the line, not "60 zones in the top 60".
    let target: Vec<&String> = printed
        .iter()
        .skip_while(|l| !l.starts_with("进入全省前60"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(target.len() > 3, "{text}");
    assert!(target.iter().any(|l| l.contains("洛阳市")), "{text}");
    let inside: usize = target
        .iter()
        .filter_map(|l| {
            l.split(" of ")
                .next()?
                .split_whitespace()
                .last()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(
        inside, 60,
        "the cities' zones inside the top 60 add up: {text}"
    );
    assert!(
        target
            .iter()
            .any(|l| l.contains("entered since the year before")),
        "{text}"
    );
    // Names are padded by display width: the score column lines up under CJK names.
    let columns: Vec<usize> = top
        .iter()
        .map(|l| {
            let score_at = l.find('.').expect("a score");
            unicode_width::UnicodeWidthStr::width(&l[..score_at])
        })
        .collect();
    assert!(
        columns.windows(2).all(|w| w[0] == w[1]),
        "aligned: {columns:?}\n{text}"
    );
    assert!(text.contains("enterprises: A "), "{text}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "still serving"
    );
}

#[test]
fn serve_refuses_a_public_address_without_auth_and_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zonerank"))
        .arg("serve")
        .args(["--listen", &format!("0.0.0.0:{}", free_port())])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("ZONERANK_AUTH_JWKS")
        .env_remove("ZONERANK_INSECURE_NO_AUTH")
        .output()
        .expect("run zonerank serve");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("auth is not configured"), "{text}");
    assert!(text.contains("--insecure-no-auth"), "{text}");
}

/// A test CA's certificate for 127.0.0.1 and localhost, and the CA, in PEM.
fn server_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem(), ca.pem())
}

#[test]
fn keygen_token_and_import_over_tls_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let zonerank = env!("CARGO_BIN_EXE_zonerank");
    let keys = dir.path().join("keys");
    let keygen = Command::new(zonerank)
        .args(["auth", "keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let token = |role: &str| {
        let out = Command::new(zonerank)
            .args(["auth", "token", "--key"])
            .arg(keys.join("signing-key.pem"))
            .args([
                "--sub", "bureau", "--role", role, "--region", "411725", "--ttl", "10m",
            ])
            .args(["--issuer", "zr-test", "--audience", "zr"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (cert, key, ca) = server_certificate();
    for (name, content) in [("server.pem", &cert), ("server.key", &key), ("ca.pem", &ca)] {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let port = free_port();
    let _server = Server(
        Command::new(zonerank)
            .arg("serve")
            .current_dir(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--tls-cert", "server.pem", "--tls-key", "server.key"])
            .arg("--auth-jwks")
            .arg(keys.join("jwks.json"))
            .args(["--auth-issuer", "zr-test", "--auth-audience", "zr"])
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let server = format!("https://127.0.0.1:{port}");
    let ca_path = dir.path().join("ca.pem");
    let ca_flag = ["--ca-cert", ca_path.to_str().unwrap()];
    let regions = [data("regions.csv")];

    // Until the server listens the import fails to connect; then it is refused without a token.
    let mut refused = None;
    for _ in 0..200 {
        let out = import(&server, &regions, &ca_flag);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !stderr.contains("cannot reach") {
            refused = Some((out.status.success(), stderr));
            break;
        }
        sleep(Duration::from_millis(50));
    }
    let (succeeded, stderr) = refused.expect("the server never answered");
    assert!(!succeeded, "imported without a token");
    assert!(stderr.contains("no bearer token"), "{stderr}");

    let viewer = token("viewer");
    let out = import(
        &server,
        &regions,
        &[ca_flag[0], ca_flag[1], "--token", &viewer],
    );
    assert!(!out.status.success(), "a viewer imported regions");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("admin"), "{stderr}");

    let admin = token("admin");
    let out = import(
        &server,
        &regions,
        &[ca_flag[0], ca_flag[1], "--token", &admin],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("created 5"), "{stdout}");
}

#[test]
fn a_server_started_with_a_smaller_ranking_budget_refuses_a_larger_cohort_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_zonerank"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--max-ranking-entities",
            "100",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .expect("run zonerank demo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cohort entities = 188 exceeds the budget of 100"),
        "{stderr}"
    );
}
