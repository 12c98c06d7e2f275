//! PostgreSQL's year partitions of `observations` and `observation_revisions`: made by the
//! migration for the years stored, made on demand by both write paths for new years, with the
//! write rules unchanged (revisions, unchanged detection), and undone by `down` without losing a
//! row. SQLite keeps its plain tables; `store.rs` runs the same write paths there.

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use zonerank_domain::{entity::EntityKind, period::Period};
use zonerank_storage::{
    AuditEvent, ObservationInput, Store, WriteSummary, migration::Migrator,
    test_support::TestDatabase,
};

fn figure(id: &str, indicator: &str, period: &str, value: f64) -> ObservationInput {
    ObservationInput {
        kind: EntityKind::Enterprise,
        entity_id: id.to_string(),
        indicator: indicator.to_string(),
        period: Period::parse(period).expect("period"),
        value,
        source: format!("test:{id}:{indicator}:{period}"),
    }
}

async fn rows_of(db: &impl ConnectionTrait, sql: &str) -> Vec<(String, i64)> {
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect()
}

/// (partition, rows) of `table`, by where the rows are.
async fn placement(db: &impl ConnectionTrait, table: &str) -> Vec<(String, i64)> {
    rows_of(
        db,
        &format!("SELECT tableoid::regclass::text, COUNT(*) FROM {table} GROUP BY 1 ORDER BY 1"),
    )
    .await
}

/// (partition, 1) for each partition of `table`, whether it has rows or not.
async fn partitions(db: &impl ConnectionTrait, table: &str) -> Vec<(String, i64)> {
    rows_of(
        db,
        &format!(
            "SELECT inhrelid::regclass::text, 1::int8 FROM pg_inherits \
             WHERE inhparent = '{table}'::regclass ORDER BY 1"
        ),
    )
    .await
}

/// The relation kind of `table`: `p` partitioned, `r` plain.
async fn kind_of(db: &impl ConnectionTrait, table: &str) -> String {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT relkind::text FROM pg_class WHERE oid = '{table}'::regclass"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index(0)
    .unwrap()
}

/// The primary key's columns of `table`, in order.
async fn key_of(db: &impl ConnectionTrait, table: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        format!(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = '{table}'::regclass AND i.indisprimary ORDER BY k.n"
        ),
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get_by_index(0).unwrap())
    .collect()
}

async fn import(store: &Store, rows: &[ObservationInput]) -> WriteSummary {
    let mut import = store.begin_observation_import().await.expect("begin");
    let numbers: Vec<i64> = (1..=rows.len() as i64).collect();
    import.stage(rows, &numbers).await.expect("stage");
    import
        .finish(
            false,
            AuditEvent::new("tester", "/test/Import", "OK", "r1"),
            &Default::default(),
        )
        .await
        .expect("finish")
}

fn names(table: &str, years: &[i32]) -> Vec<(String, i64)> {
    years.iter().map(|y| (format!("{table}_y{y}"), 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_live_in_year_partitions_made_on_demand_and_down_keeps_every_row() {
    let test_db = TestDatabase::postgres().await.expect("database");
    let store = test_db.migrated_store().await.expect("migrate");
    let db = Database::connect(&test_db.url).await.expect("connect");
    for table in ["observations", "observation_revisions"] {
        assert_eq!(kind_of(&db, table).await, "p", "{table}");
        assert!(partitions(&db, table).await.is_empty(), "{table}");
        assert_eq!(key_of(&db, table).await.last().unwrap(), "period_start");
    }

    // The small write path makes 2022 and 2023 (a half-year lands in its year).
    let (summary, _) = store
        .write_observations(
            &[
                figure("e1", "revenue", "2022", 1.0),
                figure("e1", "revenue", "2023", 2.0),
                figure("e2", "revenue", "2023-H1", 3.0),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(summary.accepted, 3);
    for table in ["observations", "observation_revisions"] {
        assert_eq!(partitions(&db, table).await, names(table, &[2022, 2023]));
    }
    assert_eq!(
        placement(&db, "observations").await,
        [
            ("observations_y2022".to_string(), 1),
            ("observations_y2023".to_string(), 2)
        ]
    );

    // The import path makes 2024; an unchanged figure stays, a changed one is revision 2 in
    // its year's partition of the history, replaced in place in the current values.
    let summary = import(
        &store,
        &[
            figure("e1", "revenue", "2023", 2.0),
            figure("e2", "revenue", "2023-H1", 4.0),
            figure("e1", "revenue", "2024", 5.0),
            figure("e2", "revenue", "2024-Q1", 6.0),
        ],
    )
    .await;
    assert_eq!(
        (summary.accepted, summary.updated, summary.unchanged),
        (2, 1, 1)
    );
    for table in ["observations", "observation_revisions"] {
        assert_eq!(
            partitions(&db, table).await,
            names(table, &[2022, 2023, 2024])
        );
    }
    assert_eq!(
        placement(&db, "observations").await,
        [
            ("observations_y2022".to_string(), 1),
            ("observations_y2023".to_string(), 2),
            ("observations_y2024".to_string(), 2)
        ]
    );
    // The history holds the value replaced, nothing else: a served value lives in one table.
    assert_eq!(
        placement(&db, "observation_revisions").await,
        [("observation_revisions_y2023".to_string(), 1)]
    );
    let served = rows_of(
        &db,
        "SELECT entity_id || ' ' || period || ' ' || value, revision::int8 FROM observations \
         ORDER BY 1",
    )
    .await;
    assert_eq!(
        served,
        [
            ("e1 2022 1".to_string(), 1),
            ("e1 2023 2".to_string(), 1),
            ("e1 2024 5".to_string(), 1),
            ("e2 2023-H1 4".to_string(), 2),
            ("e2 2024-Q1 6".to_string(), 1),
        ]
    );

    // The same again changes nothing through either path, and makes no partition.
    let summary = import(&store, &[figure("e1", "revenue", "2024", 5.0)]).await;
    assert_eq!((summary.accepted, summary.unchanged), (0, 1));
    let (summary, _) = store
        .write_observations(&[figure("e2", "revenue", "2024-Q1", 6.0)], false)
        .await
        .unwrap();
    assert_eq!((summary.accepted, summary.unchanged), (0, 1));
    assert_eq!(
        partitions(&db, "observations").await,
        names("observations", &[2022, 2023, 2024])
    );

    // A dry run of a new year makes nothing.
    store
        .write_observations(&[figure("e1", "revenue", "2025", 7.0)], true)
        .await
        .unwrap();
    assert_eq!(partitions(&db, "observations").await.len(), 3);

    // Down: the history with every revision again (the served ones copied back), then plain
    // tables with the old keys and every row; up: partitions of the stored years, and the
    // history of superseded values only.
    let every_revision = "SELECT entity_id || ' ' || period || ' ' || value, revision::int8 \
         FROM observation_revisions ORDER BY 1, 2";
    let superseded = rows_of(&db, every_revision).await;
    let history = rows_of(
        &db,
        "SELECT entity_id || ' ' || period || ' ' || value, revision::int8 FROM \
         (SELECT * FROM observation_revisions UNION ALL SELECT * FROM observations) r \
         ORDER BY 1, 2",
    )
    .await;
    assert_eq!(history.len(), 6);
    // The two migrations after the partitions, then the partitions.
    Migrator::down(&db, Some(2)).await.unwrap();
    assert_eq!(rows_of(&db, every_revision).await, history);
    Migrator::down(&db, Some(1)).await.unwrap();
    for table in ["observations", "observation_revisions"] {
        assert_eq!(kind_of(&db, table).await, "r", "{table}");
        assert!(!key_of(&db, table).await.contains(&"period_start".into()));
    }
    assert_eq!(
        rows_of(
            &db,
            "SELECT entity_id || ' ' || period || ' ' || value, revision::int8 \
             FROM observation_revisions ORDER BY 1, 2",
        )
        .await,
        history
    );
    let indexes = rows_of(
        &db,
        "SELECT indexname::text, 1::int8 FROM pg_indexes \
         WHERE tablename IN ('observations', 'observation_revisions') ORDER BY 1",
    )
    .await;
    // The partitions first: they copy the plain tables' indexes.
    Migrator::up(&db, Some(1)).await.unwrap();
    for table in ["observations", "observation_revisions"] {
        assert_eq!(kind_of(&db, table).await, "p", "{table}");
        assert_eq!(
            partitions(&db, table).await,
            names(table, &[2022, 2023, 2024])
        );
    }
    // The parents have the same indexes as the plain tables had (the keys' names aside).
    let after = rows_of(
        &db,
        "SELECT indexname::text, 1::int8 FROM pg_indexes \
         WHERE tablename IN ('observations', 'observation_revisions') ORDER BY 1",
    )
    .await;
    assert_eq!(after, indexes);
    Migrator::up(&db, None).await.unwrap();
    let dropped = rows_of(
        &db,
        "SELECT indexname::text, 1::int8 FROM pg_indexes \
         WHERE indexname = 'idx_observations_indicator_period'",
    )
    .await;
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(placement(&db, "observations").await.len(), 3);
    assert_eq!(rows_of(&db, every_revision).await, superseded);
    assert_eq!(
        store
            .write_observations(&[figure("e1", "revenue", "2023", 8.0)], false)
            .await
            .unwrap()
            .0
            .updated,
        1
    );
    db.close().await.unwrap();
    drop(store);
    test_db.drop().await.expect("drop");
}

/// When the planner last saw a table's statistics: (last manual ANALYZE set, rows it counted).
async fn analyzed(db: &impl ConnectionTrait, table: &str) -> (bool, f64) {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT s.last_analyze IS NOT NULL, c.reltuples::float8 \
                 FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
                 WHERE s.relname = '{table}'"
            ),
        ))
        .await
        .unwrap()
        .expect("a table");
    (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_leaves_its_years_analyzed_so_the_next_reads_scan_them() {
    let test_db = TestDatabase::postgres().await.expect("database");
    let store = test_db.migrated_store().await.expect("migrate");
    let db = Database::connect(&test_db.url).await.expect("connect");

    // A small import leaves its year to autovacuum.
    let summary = import(&store, &[figure("e0", "revenue", "2021", 1.0)]).await;
    assert_eq!(summary.accepted, 1);
    assert!(!analyzed(&db, "observations_y2021").await.0);

    // 12,000 new values in 2022: the partition's statistics commit with them.
    let rows: Vec<ObservationInput> = (0..12_000)
        .map(|i| figure(&format!("e{i}"), "revenue", "2022", i as f64))
        .collect();
    let summary = import(&store, &rows).await;
    assert_eq!(summary.accepted, 12_000);
    let (done, counted) = analyzed(&db, "observations_y2022").await;
    assert!(done, "observations_y2022 analyzed");
    assert_eq!(counted, 12_000.0);
    // Nothing was revised, so the history's partition was left alone.
    assert!(!analyzed(&db, "observation_revisions_y2022").await.0);
    // And the plan of a metrics read by indicator and year is a scan of that partition, not a
    // walk of its primary key.
    let plan: Vec<String> = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "EXPLAIN SELECT entity_id, value FROM observations WHERE entity_kind = 'ENTERPRISE' \
             AND indicator IN ('revenue', 'tax') AND period_start BETWEEN 24264 AND 24275 \
             AND version > 0"
                .to_string(),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
    assert!(
        plan.iter()
            .any(|line| line.contains("Seq Scan on observations_y2022")),
        "{plan:#?}"
    );

    // Revising 12,000 of them analyzes the history's partition too.
    let revised: Vec<ObservationInput> = (0..12_000)
        .map(|i| figure(&format!("e{i}"), "revenue", "2022", i as f64 + 0.5))
        .collect();
    let summary = import(&store, &revised).await;
    assert_eq!(summary.updated, 12_000);
    assert_eq!(
        analyzed(&db, "observation_revisions_y2022").await,
        (true, 12_000.0)
    );
    test_db.drop().await.expect("drop");
}
