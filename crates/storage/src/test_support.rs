//! Fresh databases for tests: each test gets its own PostgreSQL database or SQLite file and
//! leaves nothing behind.

use sea_orm::{ConnectionTrait, Database};

use crate::{StorageError, Store};

/// The server tests create their databases on (env `ZONERANK_TEST_PG`).
pub fn postgres_admin_url() -> String {
    std::env::var("ZONERANK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for one test.
pub struct TestDatabase {
    /// The URL to hand to `Store::connect` or a service's `--database-url`.
    pub url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new, empty PostgreSQL database with a random name.
    pub async fn postgres() -> Result<TestDatabase, StorageError> {
        let admin = postgres_admin_url();
        let name = format!("zonerank_test_{:016x}", rand::random::<u64>());
        let conn = Database::connect(&admin).await?;
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        conn.close().await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            name: Some(name),
            _dir: None,
        })
    }

    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("zonerank.db").display()
        );
        TestDatabase {
            url,
            name: None,
            _dir: Some(dir),
        }
    }

    /// Connects and applies the migrations.
    pub async fn migrated_store(&self) -> Result<Store, StorageError> {
        let store = Store::connect(&self.url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Drops the PostgreSQL database (SQLite files go with their directory).
    pub async fn drop(mut self) -> Result<(), StorageError> {
        match self.name.take() {
            Some(name) => drop_database(&name).await,
            None => Ok(()),
        }
    }
}

async fn drop_database(name: &str) -> Result<(), StorageError> {
    let conn = Database::connect(&postgres_admin_url()).await?;
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    conn.close().await?;
    Ok(())
}

impl Drop for TestDatabase {
    /// A test that panicked before `drop().await` still leaves nothing behind: the database is
    /// dropped on a thread of its own, since an async runtime may be unwinding around us.
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(drop_database(&name));
                }
            })
            .join();
        }
    }
}
