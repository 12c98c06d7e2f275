//! `Store::connect` on URLs that cannot work: each failure says what to fix, and quickly.

use std::time::{Duration, Instant};

use zonerank_storage::{ConnectError, StorageError, Store, test_support::postgres_admin_url};

async fn failure(url: &str) -> (ConnectError, String) {
    match Store::connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(StorageError::Connect(e)) => {
            let message = e.to_string();
            (e, message)
        }
        Err(other) => panic!("{url}: not a connection error: {other:?}"),
    }
}

/// The URL of the test server with `user` and `database` in place of its own.
fn on_test_server(user: &str, database: &str) -> String {
    let admin = postgres_admin_url();
    let rest = admin
        .split_once('@')
        .map(|(_, rest)| rest)
        .unwrap_or("127.0.0.1:5432/postgres");
    let host_port = rest.split('/').next().unwrap_or(rest);
    format!("postgres://{user}@{host_port}/{database}")
}

#[tokio::test]
async fn a_closed_port_fails_within_five_seconds_naming_host_and_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let start = Instant::now();
    let (error, message) = failure(&format!("postgres://postgres@127.0.0.1:{port}/zonerank")).await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        matches!(error, ConnectError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn an_unknown_scheme_lists_the_accepted_ones() {
    for url in [
        "postgress://postgres@127.0.0.1/zr",
        "mysql://root@127.0.0.1/zr",
    ] {
        let (error, message) = failure(url).await;
        assert!(
            matches!(error, ConnectError::UnknownScheme { .. }),
            "{error:?}"
        );
        let scheme = url.split("://").next().unwrap();
        assert!(message.contains(&format!("`{scheme}://`")), "{message}");
        for accepted in ["postgres://", "postgresql://", "sqlite:"] {
            assert!(message.contains(accepted), "{message}");
        }
    }
}

#[tokio::test]
async fn a_missing_role_is_named() {
    let (error, message) = failure(&on_test_server("no_such_role", "postgres")).await;
    assert!(
        matches!(error, ConnectError::RoleRejected { .. }),
        "{error:?}"
    );
    assert!(message.contains("role `no_such_role`"), "{message}");
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let (error, message) = failure(&on_test_server("postgres", "no_such_database_zr")).await;
    assert!(
        matches!(error, ConnectError::NoSuchDatabase { .. }),
        "{error:?}"
    );
    assert!(
        message.contains("no database `no_such_database_zr`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_names_the_path_and_the_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("missing").join("zonerank.db");
    let (error, message) = failure(&format!("sqlite://{}", path.display())).await;
    assert!(matches!(error, ConnectError::Sqlite { .. }), "{error:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!(
            "the directory {} does not exist",
            dir.path().join("missing").display()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_sqlite_file_under_a_regular_file_names_the_path_and_the_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"not a directory").expect("write");
    let path = file.join("zonerank.db");
    let (_, message) = failure(&path.display().to_string()).await;
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("{} is not a directory", file.display())),
        "{message}"
    );
}

#[tokio::test]
async fn a_sqlite_path_that_is_a_directory_says_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_, message) = failure(&format!("sqlite://{}", dir.path().display())).await;
    assert!(message.contains("it is a directory"), "{message}");
}
