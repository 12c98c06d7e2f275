//! `Store` against real databases: every case runs once on SQLite and once on PostgreSQL
//! (a fresh database per test, dropped at the end even when the case fails).

use std::{collections::BTreeSet, time::Duration};

use sea_orm::{ConnectionTrait, Statement};
use zonerank_domain::{
    catalog::{Direction, Indicator, IndicatorKind, builtin_indicator, builtin_indicators},
    entity::{EntityKind, ProjectStatus, RegionLevel, ZoneKind},
    metric::Comparator,
    period::Period,
};
use zonerank_storage::{
    ClusterRecord, EnterpriseFilter, EnterpriseRecord, ObservationInput, ObservationPosition,
    ObservationQuery, Pinned, ProjectRecord, RegionRecord, SchemaStatus, StorageError, Store,
    StoredObservation, TargetRecord, UpsertCounts, ValueQuery, WriteOutcome, WriteSummary,
    ZoneFilter, ZoneRecord, ZoneReferences, now_micros, test_support::TestDatabase,
};

/// Runs a case on a migrated store of one backend and drops the database afterwards, then
/// re-raises the case's panic if it had one.
async fn run_case<F, Fut>(db: TestDatabase, case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = db.migrated_store().await.expect("connect and migrate");
    let outcome = tokio::spawn(case(store)).await;
    db.drop().await.expect("drop the test database");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Runs a case that gets the bare database URL (nothing migrated), dropping it afterwards.
async fn run_raw_case<F, Fut>(db: TestDatabase, case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(case(db.url.clone())).await;
    db.drop().await.expect("drop the test database");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `backends!(case_x)` makes `mod case_x { sqlite(); postgres() }` running `case_x(&store)`;
/// `backends!(raw case_x)` hands the case the URL of an empty, unmigrated database instead.
macro_rules! backends {
    ($case:ident) => {
        mod $case {
            use zonerank_storage::test_support::TestDatabase;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run_case(TestDatabase::sqlite(), |store| async move {
                    super::$case(&store).await
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = TestDatabase::postgres()
                    .await
                    .expect("create a PostgreSQL test database");
                super::run_case(db, |store| async move { super::$case(&store).await }).await;
            }
        }
    };
    (raw $case:ident) => {
        mod $case {
            use zonerank_storage::test_support::TestDatabase;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run_raw_case(TestDatabase::sqlite(), |url| async move {
                    super::$case(url).await
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = TestDatabase::postgres()
                    .await
                    .expect("create a PostgreSQL test database");
                super::run_raw_case(db, |url| async move { super::$case(url).await }).await;
            }
        }
    };
}

backends!(case_migrations);
backends!(raw case_unmigrated_schema);
backends!(case_regions_and_subtree);
backends!(case_zones);
backends!(case_stored_names_that_do_not_parse_are_corrupt);
backends!(case_observations);
backends!(case_period_range_filter);
backends!(case_dry_run);
backends!(case_bulk_write);
backends!(case_targets);
backends!(case_indicators);
backends!(case_existing_entities);
backends!(case_concurrent_writers);
backends!(case_concurrent_same_keys);
backends!(case_writes_count_roll_back_and_remove);
backends!(case_pages_of_observations_targets_and_enterprises);
backends!(case_as_of_stable_across_an_open_import);
backends!(case_committed_version_is_one_commit);
backends!(raw case_commit_stamps_backfill);
backends!(case_bulk_import_keeps_every_rule);

/// A stored zone kind or leading-industries list that does not read back is an error, never
/// a default.
async fn case_stored_names_that_do_not_parse_are_corrupt(store: &Store) {
    store.upsert_regions(&henan()).await.unwrap();
    let ok = zone("ly-a", "410300", "HIGH_TECH_ZONE", &[]);
    store.upsert_zones(std::slice::from_ref(&ok)).await.unwrap();
    let ids = ["ly-a".to_string()];
    assert_eq!(store.zones_by_id(&ids).await.unwrap(), [ok]);
    let db = store.connection();
    for (column, value, what) in [
        ("kind", "SPACEPORT", "kind"),
        ("leading_industries", "not json", "leading industries"),
    ] {
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            format!("UPDATE zones SET {column} = '{value}' WHERE id = 'ly-a'"),
        ))
        .await
        .unwrap();
        match store.zones_by_id(&ids).await {
            Err(StorageError::Corrupt(message)) => {
                assert!(message.contains("zone ly-a has"), "{message}");
                assert!(message.contains(what), "{message}");
            }
            other => panic!("{column}: {other:?}"),
        }
        let restore = if column == "kind" {
            "HIGH_TECH_ZONE"
        } else {
            "[]"
        };
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            format!("UPDATE zones SET {column} = '{restore}' WHERE id = 'ly-a'"),
        ))
        .await
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

fn period(s: &str) -> Period {
    Period::parse(s).unwrap_or_else(|e| panic!("period {s}: {e}"))
}

fn obs(kind: EntityKind, id: &str, indicator: &str, p: &str, value: f64) -> ObservationInput {
    ObservationInput {
        kind,
        entity_id: id.to_string(),
        indicator: indicator.to_string(),
        period: period(p),
        value,
        source: format!("test:{id}:{indicator}:{p}"),
    }
}

fn zone_obs(id: &str, indicator: &str, p: &str, value: f64) -> ObservationInput {
    obs(EntityKind::Zone, id, indicator, p, value)
}

fn query(kind: EntityKind, id: &str) -> ObservationQuery {
    ObservationQuery {
        kind,
        entity_id: id.to_string(),
        indicator: None,
        from: None,
        to: None,
        as_of: None,
        include_revisions: false,
    }
}

fn zone_query(id: &str) -> ObservationQuery {
    query(EntityKind::Zone, id)
}

/// (indicator, period, value, revision) of each row, in the order read.
fn brief(rows: &[StoredObservation]) -> Vec<(String, String, f64, i32)> {
    rows.iter()
        .map(|r| (r.indicator.clone(), r.period.clone(), r.value, r.revision))
        .collect()
}

fn region(code: &str, name: &str, level: RegionLevel, parent: Option<&str>) -> RegionRecord {
    RegionRecord {
        code: code.to_string(),
        name: name.to_string(),
        name_en: format!("{name} (en)"),
        level,
        parent_code: parent.map(str::to_string),
    }
}

/// Henan, Luoyang with Xin'an county, Zhumadian with Queshan county.
fn henan() -> Vec<RegionRecord> {
    vec![
        region("410000", "河南省", RegionLevel::Province, None),
        region("410300", "洛阳市", RegionLevel::City, Some("410000")),
        region("411700", "驻马店市", RegionLevel::City, Some("410000")),
        region("410323", "新安县", RegionLevel::County, Some("410300")),
        region("411725", "确山县", RegionLevel::County, Some("411700")),
    ]
}

fn zone(id: &str, region_code: &str, kind: &str, tags: &[&str]) -> ZoneRecord {
    ZoneRecord {
        id: id.to_string(),
        name: format!("{id} 产业集聚区"),
        region_code: region_code.to_string(),
        kind: ZoneKind::parse(kind).unwrap(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        leading_industries: vec!["装备制造".to_string(), "新材料".to_string()],
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn zone_ids(store: &Store, filter: &ZoneFilter) -> Vec<String> {
    let page = store
        .list_zones(filter, None, 1000)
        .await
        .expect("list zones");
    assert_eq!(page.next_after, None, "a page of 1000 holds every zone");
    page.items.into_iter().map(|z| z.id).collect()
}

async fn count_rows(store: &Store, table: &str) -> i64 {
    let db = store.connection();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count query")
        .expect("a count row");
    row.try_get::<i64>("", "n").expect("count as i64")
}

/// Lets the microsecond clock move on, so timestamps taken around a write are strictly ordered.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

// ---------------------------------------------------------------------------------------------
// 1. migrations

async fn case_migrations(store: &Store) {
    assert_eq!(store.schema_status().await.unwrap(), SchemaStatus::Current);
    store.require_current_schema().await.unwrap();
    store.ping().await.unwrap();
    let version = store.data_version().await.unwrap();
    assert!(version >= 0, "data version {version}");

    let catalog = store.indicators().await.unwrap();
    assert!(catalog.len() >= 27, "{} indicators", catalog.len());
    assert_eq!(catalog.len(), builtin_indicators().len());
    for builtin in builtin_indicators() {
        let (stored, is_builtin) = catalog
            .iter()
            .find(|(i, _)| i.code == builtin.code)
            .unwrap_or_else(|| panic!("built-in {} missing", builtin.code));
        assert!(is_builtin, "{} is flagged user-defined", builtin.code);
        assert_eq!(stored, &builtin);
    }
    let unit_of = |code: &str| {
        catalog
            .iter()
            .find(|(i, _)| i.code == code)
            .map(|(i, _)| i.unit.symbol)
    };
    assert_eq!(unit_of("tax"), Some("万元"));
    assert_eq!(unit_of("land_area"), Some("亩"));
    assert_eq!(unit_of("fdi_actual"), Some("万美元"));
    assert_eq!(unit_of("sewage_treatment_rate"), Some("%"));
    let codes: Vec<&str> = catalog.iter().map(|(i, _)| i.code.as_str()).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted, "the catalog is ordered by code");

    // Migrating again (twice) is harmless: same schema, same catalog, no new data version.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.schema_status().await.unwrap(), SchemaStatus::Current);
    assert_eq!(store.indicators().await.unwrap(), catalog);
    assert_eq!(store.data_version().await.unwrap(), version);
}

async fn case_unmigrated_schema(url: String) {
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    match store.schema_status().await.unwrap() {
        SchemaStatus::Behind(pending) => {
            use sea_orm_migration::MigratorTrait;
            let all = zonerank_storage::migration::Migrator::migrations().len();
            assert_eq!(
                pending.len(),
                all,
                "every migration is pending: {pending:?}"
            );
        }
        SchemaStatus::Current => panic!("an empty database reports a current schema"),
    }
    assert!(matches!(
        store.require_current_schema().await,
        Err(StorageError::SchemaBehind(_))
    ));
    store.migrate().await.unwrap();
    assert_eq!(store.schema_status().await.unwrap(), SchemaStatus::Current);
    store.require_current_schema().await.unwrap();

    // A second connection to the same database sees the migrated schema.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.schema_status().await.unwrap(), SchemaStatus::Current);
    assert!(again.indicators().await.unwrap().len() >= 27);
}

// ---------------------------------------------------------------------------------------------
// 2. regions

async fn case_regions_and_subtree(store: &Store) {
    let v0 = store.data_version().await.unwrap();
    assert_eq!(store.upsert_regions(&henan()).await.unwrap().created, 5);
    let v1 = store.data_version().await.unwrap();
    assert!(v1 > v0, "an upsert bumps the data version ({v0} → {v1})");

    let mut expected = henan();
    expected.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(store.regions().await.unwrap(), expected);

    assert_eq!(
        store.region_subtree("410000").await.unwrap(),
        set(&["410000", "410300", "410323", "411700", "411725"])
    );
    assert_eq!(
        store.region_subtree("411700").await.unwrap(),
        set(&["411700", "411725"])
    );
    assert_eq!(
        store.region_subtree("410300").await.unwrap(),
        set(&["410300", "410323"])
    );
    assert_eq!(
        store.region_subtree("410323").await.unwrap(),
        set(&["410323"])
    );

    // Upserting again replaces by code: a new name, and a county moved under the other city.
    store
        .upsert_regions(&[
            region("411700", "驻马店", RegionLevel::City, Some("410000")),
            region("410323", "新安县", RegionLevel::County, Some("411700")),
        ])
        .await
        .unwrap();
    let regions = store.regions().await.unwrap();
    assert_eq!(regions.len(), 5);
    let zhumadian = regions.iter().find(|r| r.code == "411700").unwrap();
    assert_eq!(zhumadian.name, "驻马店");
    assert_eq!(zhumadian.name_en, "驻马店 (en)");
    assert_eq!(zhumadian.level, RegionLevel::City);
    assert_eq!(
        store.region_subtree("411700").await.unwrap(),
        set(&["410323", "411700", "411725"])
    );
    assert_eq!(
        store.region_subtree("410300").await.unwrap(),
        set(&["410300"])
    );
    assert!(store.data_version().await.unwrap() > v1);
}

// ---------------------------------------------------------------------------------------------
// 3. zones

const CENTER: &str = "一中心五组团";
const SUPPORT: &str = "四支撑";

async fn case_zones(store: &Store) {
    store.upsert_regions(&henan()).await.unwrap();
    let zones = vec![
        zone("ly-a", "410300", "AGGLOMERATION_ZONE", &[CENTER]),
        zone("ly-b", "410323", "AGGLOMERATION_ZONE", &[SUPPORT]),
        zone("ly-c", "410300", "HIGH_TECH_ZONE", &[CENTER, SUPPORT]),
        zone("zmd-d", "411725", "AGGLOMERATION_ZONE", &[]),
        // A tag given twice is stored once.
        zone(
            "zmd-e",
            "411700",
            "ECONOMIC_DEVELOPMENT_ZONE",
            &[SUPPORT, SUPPORT],
        ),
    ];
    let v0 = store.data_version().await.unwrap();
    assert_eq!(store.upsert_zones(&zones).await.unwrap().created, 5);
    assert!(store.data_version().await.unwrap() > v0);

    // Everything round-trips, tags sorted and de-duplicated.
    let all = store
        .list_zones(&ZoneFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.next_after, None);
    assert_eq!(all.items.len(), 5);
    for (stored, given) in all.items.iter().zip(&zones) {
        assert_eq!(stored.id, given.id);
        assert_eq!(stored.name, given.name);
        assert_eq!(stored.region_code, given.region_code);
        assert_eq!(stored.kind, given.kind);
        assert_eq!(stored.leading_industries, given.leading_industries);
        let stored_tags: BTreeSet<&String> = stored.tags.iter().collect();
        let given_tags: BTreeSet<&String> = given.tags.iter().collect();
        assert_eq!(stored_tags, given_tags, "tags of {}", stored.id);
        assert_eq!(stored.tags.len(), given_tags.len(), "tags of {}", stored.id);
    }

    // Region filter: a city's subtree catches its counties' zones.
    let by_region = |code: &str| ZoneFilter {
        region_code: Some(code.to_string()),
        ..ZoneFilter::default()
    };
    assert_eq!(
        zone_ids(store, &by_region("410300")).await,
        strings(&["ly-a", "ly-b", "ly-c"])
    );
    assert_eq!(
        zone_ids(store, &by_region("411700")).await,
        strings(&["zmd-d", "zmd-e"])
    );
    assert_eq!(zone_ids(store, &by_region("410000")).await.len(), 5);
    assert_eq!(
        zone_ids(store, &by_region("410323")).await,
        strings(&["ly-b"])
    );
    assert!(zone_ids(store, &by_region("210700")).await.is_empty());

    // Kind filter.
    let by_kind = |kind: &str| ZoneFilter {
        kind: Some(ZoneKind::parse(kind).unwrap()),
        ..ZoneFilter::default()
    };
    assert_eq!(
        zone_ids(store, &by_kind("AGGLOMERATION_ZONE")).await,
        strings(&["ly-a", "ly-b", "zmd-d"])
    );
    assert_eq!(
        zone_ids(store, &by_kind("HIGH_TECH_ZONE")).await,
        strings(&["ly-c"])
    );
    assert!(
        zone_ids(store, &by_kind("INDUSTRIAL_PARK"))
            .await
            .is_empty()
    );

    // Tag filter: a zone must carry every tag asked for.
    let by_tags = |tags: &[&str]| ZoneFilter {
        tags: strings(tags),
        ..ZoneFilter::default()
    };
    assert_eq!(
        zone_ids(store, &by_tags(&[CENTER])).await,
        strings(&["ly-a", "ly-c"])
    );
    assert_eq!(
        zone_ids(store, &by_tags(&[SUPPORT])).await,
        strings(&["ly-b", "ly-c", "zmd-e"])
    );
    assert_eq!(
        zone_ids(store, &by_tags(&[CENTER, SUPPORT])).await,
        strings(&["ly-c"])
    );
    assert_eq!(
        zone_ids(store, &by_tags(&[SUPPORT, CENTER, SUPPORT])).await,
        strings(&["ly-c"]),
        "a tag asked for twice counts once"
    );
    assert!(
        zone_ids(store, &by_tags(&[CENTER, "十强"]))
            .await
            .is_empty()
    );

    // Filters combine.
    let combined = ZoneFilter {
        region_code: Some("410300".to_string()),
        kind: Some(ZoneKind::AgglomerationZone),
        tags: strings(&[SUPPORT]),
    };
    assert_eq!(zone_ids(store, &combined).await, strings(&["ly-b"]));

    // Keyset paging, 2 at a time, walks every zone exactly once in id order.
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_zones(&ZoneFilter::default(), after.as_deref(), 2)
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        walked.extend(page.items.iter().map(|z| z.id.clone()));
        match page.next_after {
            Some(next) => {
                assert_eq!(Some(&next), page.items.last().map(|z| &z.id));
                after = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, strings(&["ly-a", "ly-b", "ly-c", "zmd-d", "zmd-e"]));

    // A page that ends exactly at the last zone says no more follow.
    let exact = store
        .list_zones(&by_region("410300"), None, 3)
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 3);
    assert_eq!(exact.next_after, None);
    // Paging with a filter.
    let first = store
        .list_zones(&by_tags(&[SUPPORT]), None, 2)
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>(),
        ["ly-b", "ly-c"]
    );
    assert_eq!(first.next_after.as_deref(), Some("ly-c"));
    let second = store
        .list_zones(&by_tags(&[SUPPORT]), Some("ly-c"), 2)
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|z| z.id.as_str())
            .collect::<Vec<_>>(),
        ["zmd-e"]
    );
    assert_eq!(second.next_after, None);

    // Re-upserting replaces the tags (and everything else).
    let mut moved = zone("ly-c", "410323", "INDUSTRIAL_PARK", &[SUPPORT]);
    moved.name = "洛阳高新区".to_string();
    moved.leading_industries = vec![];
    store.upsert_zones(&[moved.clone()]).await.unwrap();
    let stored = store
        .zones_by_id(&strings(&["ly-c", "no-such-zone"]))
        .await
        .unwrap();
    assert_eq!(stored, vec![moved]);
    assert_eq!(
        zone_ids(store, &by_tags(&[CENTER])).await,
        strings(&["ly-a"])
    );
    assert!(
        zone_ids(store, &by_tags(&[CENTER, SUPPORT]))
            .await
            .is_empty()
    );
    assert_eq!(
        zone_ids(store, &by_tags(&[SUPPORT])).await,
        strings(&["ly-b", "ly-c", "zmd-e"])
    );
    // Tags can be cleared.
    store
        .upsert_zones(&[zone("ly-a", "410300", "AGGLOMERATION_ZONE", &[])])
        .await
        .unwrap();
    assert!(zone_ids(store, &by_tags(&[CENTER])).await.is_empty());
    let ly_a = store.zones_by_id(&strings(&["ly-a"])).await.unwrap();
    assert_eq!(ly_a.len(), 1);
    assert!(ly_a[0].tags.is_empty());

    let by_id = store
        .zones_by_id(&strings(&["zmd-e", "ly-a"]))
        .await
        .unwrap();
    assert_eq!(
        by_id.iter().map(|z| z.id.as_str()).collect::<Vec<_>>(),
        ["ly-a", "zmd-e"]
    );
    assert!(store.zones_by_id(&[]).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. observations

async fn case_observations(store: &Store) {
    let v0 = store.data_version().await.unwrap();
    let before_first = now_micros();
    tick().await;

    let first = vec![
        zone_obs("z1", "revenue", "2023", 100.0),
        zone_obs("z1", "revenue", "2024", 120.0),
        zone_obs("z1", "tax", "2024-H1", 5.5),
        zone_obs("z2", "revenue", "2024", 50.0),
        obs(EntityKind::Region, "410300", "revenue", "2024", 9000.0),
    ];
    let (summary, outcomes) = store.write_observations(&first, false).await.unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Accepted; 5]);
    let v1 = store.data_version().await.unwrap();
    assert_eq!(
        summary,
        WriteSummary {
            accepted: 5,
            updated: 0,
            unchanged: 0,
            data_version: v1
        }
    );
    assert_eq!(v1, v0 + 1);

    let latest = store.observations(&zone_query("z1")).await.unwrap();
    assert_eq!(
        brief(&latest),
        vec![
            ("revenue".into(), "2023".into(), 100.0, 1),
            ("revenue".into(), "2024".into(), 120.0, 1),
            ("tax".into(), "2024-H1".into(), 5.5, 1),
        ]
    );
    for row in &latest {
        assert_eq!(row.kind, EntityKind::Zone);
        assert_eq!(row.entity_id, "z1");
        assert_eq!(
            row.source,
            format!("test:z1:{}:{}", row.indicator, row.period)
        );
        assert!(
            row.recorded_at > before_first,
            "recorded_at {}",
            row.recorded_at
        );
    }
    // The entity kind is part of the key.
    assert!(
        store
            .observations(&query(EntityKind::Region, "z1"))
            .await
            .unwrap()
            .is_empty()
    );
    let region_rows = store
        .observations(&query(EntityKind::Region, "410300"))
        .await
        .unwrap();
    assert_eq!(
        brief(&region_rows),
        vec![("revenue".into(), "2024".into(), 9000.0, 1)]
    );

    // The same batch again: nothing changes, not even the data version.
    let (summary, outcomes) = store.write_observations(&first, false).await.unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Unchanged; 5]);
    assert_eq!(
        summary,
        WriteSummary {
            accepted: 0,
            updated: 0,
            unchanged: 5,
            data_version: v1
        }
    );
    assert_eq!(store.data_version().await.unwrap(), v1);
    assert_eq!(store.observations(&zone_query("z1")).await.unwrap(), latest);

    tick().await;
    let between = now_micros();
    tick().await;

    // One changed value among unchanged ones: a new revision.
    let second = vec![
        zone_obs("z1", "revenue", "2023", 100.0),
        zone_obs("z1", "revenue", "2024", 130.0),
        zone_obs("z2", "revenue", "2024", 50.0),
    ];
    let (summary, outcomes) = store.write_observations(&second, false).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Unchanged,
            WriteOutcome::Updated,
            WriteOutcome::Unchanged
        ]
    );
    let v2 = store.data_version().await.unwrap();
    assert_eq!(v2, v1 + 1);
    assert_eq!(
        summary,
        WriteSummary {
            accepted: 0,
            updated: 1,
            unchanged: 2,
            data_version: v2
        }
    );

    let revenue = |as_of: Option<i64>, include_revisions: bool| ObservationQuery {
        indicator: Some("revenue".to_string()),
        as_of,
        include_revisions,
        ..zone_query("z1")
    };
    // Latest.
    let now = store.observations(&revenue(None, false)).await.unwrap();
    assert_eq!(
        brief(&now),
        vec![
            ("revenue".into(), "2023".into(), 100.0, 1),
            ("revenue".into(), "2024".into(), 130.0, 2),
        ]
    );
    assert!(now[1].recorded_at > between);
    assert!(now[0].recorded_at < between);
    // As of now (through the revision table) agrees with the latest read.
    let as_of_now = store
        .observations(&revenue(Some(now_micros()), false))
        .await
        .unwrap();
    assert_eq!(as_of_now, now);
    // As of a moment between the writes: the old value.
    let then = store
        .observations(&revenue(Some(between), false))
        .await
        .unwrap();
    assert_eq!(
        brief(&then),
        vec![
            ("revenue".into(), "2023".into(), 100.0, 1),
            ("revenue".into(), "2024".into(), 120.0, 1),
        ]
    );
    // As of a moment before anything was written: nothing.
    assert!(
        store
            .observations(&revenue(Some(before_first), false))
            .await
            .unwrap()
            .is_empty()
    );
    // Every revision, in order.
    let history = store.observations(&revenue(None, true)).await.unwrap();
    assert_eq!(
        brief(&history),
        vec![
            ("revenue".into(), "2023".into(), 100.0, 1),
            ("revenue".into(), "2024".into(), 120.0, 1),
            ("revenue".into(), "2024".into(), 130.0, 2),
        ]
    );
    assert!(history[1].recorded_at <= between && between < history[2].recorded_at);
    // Every revision up to a moment.
    let history_then = store
        .observations(&revenue(Some(between), true))
        .await
        .unwrap();
    assert_eq!(brief(&history_then), brief(&history[..2]));
    // The other entity is untouched.
    let z2 = store.observations(&zone_query("z2")).await.unwrap();
    assert_eq!(brief(&z2), vec![("revenue".into(), "2024".into(), 50.0, 1)]);

    // A third revision, then back to an old value: still a new revision (only the served value
    // counts as "unchanged").
    let (_, outcomes) = store
        .write_observations(&[zone_obs("z1", "revenue", "2024", 120.0)], false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Updated]);
    let now = store.observations(&revenue(None, false)).await.unwrap();
    assert_eq!(brief(&now)[1], ("revenue".into(), "2024".into(), 120.0, 3));
    assert_eq!(
        store
            .observations(&revenue(None, true))
            .await
            .unwrap()
            .len(),
        4
    );

    // 2014-H1 and 2014-06-YTD are one span: the second spelling finds the first's value.
    assert_eq!(period("2014-H1"), period("2014-06-YTD"));
    assert_eq!(
        period("2014-H1").canonical(),
        period("2014-06-YTD").canonical()
    );
    let (_, outcomes) = store
        .write_observations(&[zone_obs("z1", "tax", "2014-H1", 7.25)], false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Accepted]);
    let v3 = store.data_version().await.unwrap();
    let (summary, outcomes) = store
        .write_observations(&[zone_obs("z1", "tax", "2014-06-YTD", 7.25)], false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Unchanged]);
    assert_eq!(summary.data_version, v3);
    assert_eq!(store.data_version().await.unwrap(), v3);
    let (_, outcomes) = store
        .write_observations(&[zone_obs("z1", "tax", "2014-06-YTD", 7.5)], false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Updated]);
    let tax_2014 = store
        .observations(&ObservationQuery {
            indicator: Some("tax".to_string()),
            from: Some(period("2014")),
            to: Some(period("2014")),
            ..zone_query("z1")
        })
        .await
        .unwrap();
    assert_eq!(
        brief(&tax_2014),
        vec![("tax".into(), period("2014-H1").canonical(), 7.5, 2)]
    );

    // Bit-equality decides "unchanged": 0.1 + 0.2 is not 0.3.
    store
        .write_observations(&[zone_obs("z3", "tax", "2024", 0.3)], false)
        .await
        .unwrap();
    let (_, outcomes) = store
        .write_observations(&[zone_obs("z3", "tax", "2024", 0.1 + 0.2)], false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Updated]);
    let z3 = store.observations(&zone_query("z3")).await.unwrap();
    assert_eq!(z3[0].value.to_bits(), (0.1f64 + 0.2).to_bits());
}

async fn case_period_range_filter(store: &Store) {
    let mut rows: Vec<ObservationInput> = (2019..=2024)
        .map(|y| zone_obs("r1", "revenue", &y.to_string(), f64::from(y)))
        .collect();
    rows.push(zone_obs("r1", "revenue", "2022-03", 1.0));
    rows.push(zone_obs("r1", "revenue", "2022-H1", 2.0));
    rows.push(zone_obs("r1", "revenue", "2022-Q3", 3.0));
    rows.push(zone_obs("r1", "tax", "2022", 4.0));
    rows.push(zone_obs("r2", "revenue", "2022", 5.0));
    store.write_observations(&rows, false).await.unwrap();

    let periods = |rows: Vec<StoredObservation>| -> Vec<String> {
        rows.into_iter()
            .map(|r| format!("{}/{}", r.indicator, r.period))
            .collect()
    };
    for as_of in [None, Some(now_micros())] {
        let read = |indicator: Option<&str>, from: Option<&str>, to: Option<&str>| {
            let q = ObservationQuery {
                indicator: indicator.map(str::to_string),
                from: from.map(period),
                to: to.map(period),
                as_of,
                ..zone_query("r1")
            };
            async move { periods(store.observations(&q).await.unwrap()) }
        };
        let label = format!("as_of {as_of:?}");
        assert_eq!(
            read(Some("revenue"), Some("2021"), Some("2023")).await,
            [
                "revenue/2021",
                "revenue/2022-H1",
                "revenue/2022",
                "revenue/2022-03",
                "revenue/2022-Q3",
                "revenue/2023"
            ]
            .map(String::from)
            .to_vec(),
            "{label}"
        );
        // `from` compares span starts, `to` span ends.
        assert_eq!(
            read(Some("revenue"), Some("2022-Q2"), Some("2022")).await,
            ["revenue/2022-Q3"].map(String::from).to_vec(),
            "{label}"
        );
        assert_eq!(
            read(Some("revenue"), Some("2022"), Some("2022-06")).await,
            ["revenue/2022-H1", "revenue/2022-03"]
                .map(String::from)
                .to_vec(),
            "{label}"
        );
        assert_eq!(
            read(Some("revenue"), Some("2024"), None).await,
            ["revenue/2024"].map(String::from).to_vec(),
            "{label}"
        );
        assert_eq!(
            read(Some("revenue"), None, Some("2019")).await,
            ["revenue/2019"].map(String::from).to_vec(),
            "{label}"
        );
        assert!(
            read(Some("revenue"), Some("2025"), None).await.is_empty(),
            "{label}"
        );
        assert_eq!(
            read(None, Some("2022"), Some("2022")).await,
            [
                "revenue/2022-H1",
                "revenue/2022",
                "revenue/2022-03",
                "revenue/2022-Q3",
                "tax/2022"
            ]
            .map(String::from)
            .to_vec(),
            "{label}"
        );
        assert_eq!(read(None, None, None).await.len(), 10, "{label}");
    }
}

async fn case_dry_run(store: &Store) {
    store
        .write_observations(
            &[
                zone_obs("d1", "revenue", "2024", 10.0),
                zone_obs("d1", "tax", "2024", 1.0),
            ],
            false,
        )
        .await
        .unwrap();
    let version = store.data_version().await.unwrap();
    let before = store
        .observations(&ObservationQuery {
            include_revisions: true,
            ..zone_query("d1")
        })
        .await
        .unwrap();
    let revisions = count_rows(store, "observation_revisions").await;

    let batch = vec![
        zone_obs("d1", "revenue", "2024", 11.0),
        zone_obs("d1", "tax", "2024", 1.0),
        zone_obs("d2", "revenue", "2024", 3.0),
    ];
    let (summary, outcomes) = store.write_observations(&batch, true).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Updated,
            WriteOutcome::Unchanged,
            WriteOutcome::Accepted
        ]
    );
    assert_eq!(
        summary,
        WriteSummary {
            accepted: 1,
            updated: 1,
            unchanged: 1,
            data_version: version
        }
    );
    assert_eq!(store.data_version().await.unwrap(), version);
    assert_eq!(
        store
            .observations(&ObservationQuery {
                include_revisions: true,
                ..zone_query("d1")
            })
            .await
            .unwrap(),
        before
    );
    assert!(
        store
            .observations(&zone_query("d2"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count_rows(store, "observation_revisions").await, revisions);
    assert_eq!(count_rows(store, "observations").await, 2);

    // The real write afterwards reports the same outcomes.
    let (summary, outcomes) = store.write_observations(&batch, false).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Updated,
            WriteOutcome::Unchanged,
            WriteOutcome::Accepted
        ]
    );
    assert_eq!(summary.data_version, version + 1);
    assert_eq!(count_rows(store, "observations").await, 3);
}

// ---------------------------------------------------------------------------------------------
// 5. bulk

const BULK_ENTITIES: usize = 2_500;
const BULK_INDICATORS: [&str; 4] = ["revenue", "tax", "output_value", "employees"];
const BULK_PERIODS: [&str; 2] = ["2023", "2024"];

fn bulk_rows(offset: f64) -> Vec<ObservationInput> {
    let mut rows = Vec::with_capacity(BULK_ENTITIES * 8);
    for e in 0..BULK_ENTITIES {
        for (i, indicator) in BULK_INDICATORS.iter().enumerate() {
            for (p, year) in BULK_PERIODS.iter().enumerate() {
                let value = (e * 100 + i * 10 + p) as f64 + offset;
                rows.push(zone_obs(&format!("bulk-{e:05}"), indicator, year, value));
            }
        }
    }
    rows
}

async fn case_bulk_write(store: &Store) {
    let rows = bulk_rows(0.5);
    assert_eq!(rows.len(), 20_000);
    let v0 = store.data_version().await.unwrap();
    let (summary, outcomes) = store.write_observations(&rows, false).await.unwrap();
    assert_eq!(summary.accepted, 20_000);
    assert_eq!(summary.updated + summary.unchanged, 0);
    assert_eq!(
        summary.data_version,
        v0 + 1,
        "one batch is one data version"
    );
    assert!(outcomes.iter().all(|o| *o == WriteOutcome::Accepted));
    assert_eq!(count_rows(store, "observations").await, 20_000);
    // The history holds superseded values only: a first write leaves it empty.
    assert_eq!(count_rows(store, "observation_revisions").await, 0);

    for e in [0, 1, 1_234, BULK_ENTITIES - 1] {
        let id = format!("bulk-{e:05}");
        let read = store.observations(&zone_query(&id)).await.unwrap();
        assert_eq!(read.len(), 8, "{id}");
        for r in &read {
            let i = BULK_INDICATORS
                .iter()
                .position(|c| *c == r.indicator)
                .unwrap();
            let p = BULK_PERIODS.iter().position(|y| *y == r.period).unwrap();
            assert_eq!(r.value, (e * 100 + i * 10 + p) as f64 + 0.5, "{id} {r:?}");
            assert_eq!(r.revision, 1);
        }
    }

    // The same 20,000 again are all recognised as unchanged.
    let (summary, _) = store.write_observations(&rows, false).await.unwrap();
    assert_eq!(summary.unchanged, 20_000);
    assert_eq!(summary.data_version, v0 + 1);

    // A quarter of them changed: 5,000 revisions (two statements' worth) in one call.
    let mut changed = rows.clone();
    for row in changed.iter_mut().filter(|r| {
        r.period == period("2024") && ["tax", "revenue"].contains(&r.indicator.as_str())
    }) {
        row.value += 1.0;
    }
    let (summary, outcomes) = store.write_observations(&changed, false).await.unwrap();
    assert_eq!((summary.updated, summary.unchanged), (5_000, 15_000));
    assert_eq!(summary.data_version, v0 + 2);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == WriteOutcome::Updated)
            .count(),
        5_000
    );
    assert_eq!(count_rows(store, "observations").await, 20_000);
    // The 5,000 values replaced.
    assert_eq!(count_rows(store, "observation_revisions").await, 5_000);
    let last = store
        .observations(&ObservationQuery {
            indicator: Some("tax".to_string()),
            ..zone_query(&format!("bulk-{:05}", BULK_ENTITIES - 1))
        })
        .await
        .unwrap();
    let e = BULK_ENTITIES - 1;
    assert_eq!(
        brief(&last),
        vec![
            ("tax".into(), "2023".into(), (e * 100 + 10) as f64 + 0.5, 1),
            ("tax".into(), "2024".into(), (e * 100 + 11) as f64 + 1.5, 2),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 6. targets

fn target(kind: EntityKind, id: &str, metric: &str, p: &str, cmp: &str, v: f64) -> TargetRecord {
    TargetRecord {
        entity_kind: kind,
        entity_id: id.to_string(),
        metric: metric.to_string(),
        period: p.to_string(),
        comparator: Comparator::parse(cmp).unwrap(),
        value: v,
        unit: "万元".to_string(),
        note: format!("{metric} {cmp} {v}"),
    }
}

async fn case_targets(store: &Store) {
    let luoyang_fai = target(
        EntityKind::Zone,
        "ly-a",
        "fixed_asset_investment",
        "2012",
        "AT_LEAST",
        9_000_000.0,
    );
    let luoyang_rank = TargetRecord {
        unit: String::new(),
        ..target(EntityKind::Zone, "ly-a", "rank", "2012", "AT_MOST", 60.0)
    };
    let luoyang_2015 = target(
        EntityKind::Zone,
        "ly-a",
        "per_mu(tax)",
        "2015",
        "AT_LEAST",
        15.0,
    );
    let queshan = target(
        EntityKind::Region,
        "411725",
        "fixed_asset_investment",
        "2015",
        "AT_LEAST",
        1_200_000.0,
    );
    let v0 = store.data_version().await.unwrap();
    let all = vec![
        luoyang_2015.clone(),
        luoyang_rank.clone(),
        queshan.clone(),
        luoyang_fai.clone(),
    ];
    assert_eq!(store.upsert_targets(&all).await.unwrap().created, 4);
    assert!(store.data_version().await.unwrap() > v0);

    // By entity: ordered by period, then metric.
    assert_eq!(
        store.targets(EntityKind::Zone, "ly-a", None).await.unwrap(),
        vec![
            luoyang_fai.clone(),
            luoyang_rank.clone(),
            luoyang_2015.clone()
        ]
    );
    assert_eq!(
        store
            .targets(EntityKind::Zone, "ly-a", Some("2012"))
            .await
            .unwrap(),
        vec![luoyang_fai.clone(), luoyang_rank.clone()]
    );
    assert_eq!(
        store
            .targets(EntityKind::Zone, "ly-a", Some("2015"))
            .await
            .unwrap(),
        vec![luoyang_2015.clone()]
    );
    assert!(
        store
            .targets(EntityKind::Zone, "ly-a", Some("2013"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .targets(EntityKind::Region, "411725", None)
            .await
            .unwrap(),
        vec![queshan.clone()]
    );
    // The kind is part of the key.
    assert!(
        store
            .targets(EntityKind::Region, "ly-a", None)
            .await
            .unwrap()
            .is_empty()
    );

    // Upserting the same key replaces comparator, value, unit and note.
    let revised = TargetRecord {
        comparator: Comparator::AtMost,
        value: 8_500_000.5,
        unit: "亿元".to_string(),
        note: "调整后".to_string(),
        ..luoyang_fai.clone()
    };
    store
        .upsert_targets(std::slice::from_ref(&revised))
        .await
        .unwrap();
    assert_eq!(
        store
            .targets(EntityKind::Zone, "ly-a", Some("2012"))
            .await
            .unwrap(),
        vec![revised, luoyang_rank]
    );
    assert_eq!(count_rows(store, "targets").await, 4);
}

// ---------------------------------------------------------------------------------------------
// 7. indicators

async fn case_indicators(store: &Store) {
    let builtin_count = builtin_indicators().len();
    let patents = Indicator::define(
        "patents_granted",
        "专利授权数",
        "Patents granted",
        "项",
        IndicatorKind::Flow,
        Direction::HigherIsBetter,
    )
    .unwrap();
    let per_mu = Indicator::define(
        "tax_per_mu_reported",
        "亩均税收（上报）",
        "Tax per mu, as reported",
        "元/亩",
        IndicatorKind::Stock,
        Direction::HigherIsBetter,
    )
    .unwrap();
    assert_eq!(
        per_mu.unit.symbol, "万元/亩",
        "defined in the canonical unit"
    );
    let v0 = store.data_version().await.unwrap();
    store
        .upsert_indicators(&[patents.clone(), per_mu.clone()])
        .await
        .unwrap();
    assert!(store.data_version().await.unwrap() > v0);
    let catalog = store.indicators().await.unwrap();
    assert_eq!(catalog.len(), builtin_count + 2);
    assert!(catalog.contains(&(patents.clone(), false)));
    assert!(catalog.contains(&(per_mu.clone(), false)));

    // A user-defined indicator can be redefined.
    let renamed = Indicator::define(
        "patents_granted",
        "发明专利授权数",
        "Invention patents granted",
        "个",
        IndicatorKind::Stock,
        Direction::HigherIsBetter,
    )
    .unwrap();
    store
        .upsert_indicators(std::slice::from_ref(&renamed))
        .await
        .unwrap();
    let catalog = store.indicators().await.unwrap();
    assert_eq!(catalog.len(), builtin_count + 2);
    assert!(catalog.contains(&(renamed, false)));
    assert!(!catalog.contains(&(patents, false)));

    // A built-in cannot be overridden, alone or inside a batch with a new indicator.
    let fake_tax = Indicator::define(
        "tax",
        "假税收",
        "Fake tax",
        "亩",
        IndicatorKind::Stock,
        Direction::LowerIsBetter,
    )
    .unwrap();
    let fake_land = Indicator::define(
        "land_area",
        "假用地",
        "Fake land",
        "万元",
        IndicatorKind::Flow,
        Direction::LowerIsBetter,
    )
    .unwrap();
    let fresh = Indicator::define(
        "vacant_plants",
        "闲置厂房",
        "Vacant plants",
        "个",
        IndicatorKind::Stock,
        Direction::LowerIsBetter,
    )
    .unwrap();
    // Either refused or ignored; never applied.
    let _alone = store
        .upsert_indicators(std::slice::from_ref(&fake_tax))
        .await;
    let batch = store
        .upsert_indicators(&[fake_land.clone(), fresh.clone()])
        .await;
    let catalog = store.indicators().await.unwrap();
    // The new indicator of that batch is there exactly when the batch was accepted.
    assert_eq!(
        catalog.contains(&(fresh, false)),
        batch.is_ok(),
        "batch result {batch:?}"
    );
    for code in ["tax", "land_area"] {
        let stored = catalog.iter().find(|(i, _)| i.code == code).unwrap();
        assert_eq!(stored, &(builtin_indicator(code).unwrap(), true), "{code}");
    }
    let tax = catalog.iter().find(|(i, _)| i.code == "tax").unwrap();
    assert_eq!(tax.0.unit.symbol, "万元");
    let land = catalog.iter().find(|(i, _)| i.code == "land_area").unwrap();
    assert_eq!(land.0.unit.symbol, "亩");
    assert_eq!(
        catalog.iter().filter(|(_, builtin)| *builtin).count(),
        builtin_count
    );

    // Migrating again neither resets user indicators nor touches built-ins.
    store.migrate().await.unwrap();
    assert_eq!(store.indicators().await.unwrap(), catalog);
}

// ---------------------------------------------------------------------------------------------
// 8. existing entities

async fn case_existing_entities(store: &Store) {
    store.upsert_regions(&henan()).await.unwrap();
    store
        .upsert_zones(&[
            zone("ly-a", "410300", "AGGLOMERATION_ZONE", &[CENTER]),
            zone("zmd-d", "411725", "AGGLOMERATION_ZONE", &[]),
        ])
        .await
        .unwrap();
    store
        .upsert_enterprises(&[
            EnterpriseRecord {
                credit_code: "91410300MA44L0XX1Y".to_string(),
                name: "洛阳某装备有限公司".to_string(),
                zone_id: Some("ly-a".to_string()),
                industry_code: "3311".to_string(),
                above_scale: true,
            },
            EnterpriseRecord {
                credit_code: "91411725MA9F1ABC2D".to_string(),
                name: "确山某材料有限公司".to_string(),
                zone_id: None,
                industry_code: "2614".to_string(),
                above_scale: false,
            },
        ])
        .await
        .unwrap();
    store
        .upsert_clusters(&[ClusterRecord {
            id: "jz-pv".to_string(),
            name: "锦州光伏产业集群".to_string(),
            region_code: "210700".to_string(),
            zone_id: None,
            industry: "photovoltaics".to_string(),
        }])
        .await
        .unwrap();
    store
        .upsert_projects(&[
            ProjectRecord {
                id: "p-1".to_string(),
                name: "轴承产业园".to_string(),
                zone_id: "ly-a".to_string(),
                status: ProjectStatus::Signed,
                planned_investment: 105_600.0,
                period: None,
                completed_investment: 0.0,
            },
            ProjectRecord {
                id: "p-2".to_string(),
                name: "新材料基地".to_string(),
                zone_id: "zmd-d".to_string(),
                status: ProjectStatus::UnderConstruction,
                planned_investment: 20_600.0,
                period: None,
                completed_investment: 0.0,
            },
        ])
        .await
        .unwrap();

    // Every kind is asked about the same mixed list: only its own known ids come back.
    let asked = strings(&[
        "410000",
        "411725",
        "999999",
        "ly-a",
        "zmd-d",
        "no-such-zone",
        "91410300MA44L0XX1Y",
        "91411725MA9F1ABC2D",
        "91000000000000000X",
        "jz-pv",
        "p-1",
        "p-2",
        "p-3",
    ]);
    let expected = [
        (EntityKind::Region, set(&["410000", "411725"])),
        (EntityKind::Zone, set(&["ly-a", "zmd-d"])),
        (
            EntityKind::Enterprise,
            set(&["91410300MA44L0XX1Y", "91411725MA9F1ABC2D"]),
        ),
        (EntityKind::Cluster, set(&["jz-pv"])),
        (EntityKind::Project, set(&["p-1", "p-2"])),
    ];
    for (kind, want) in expected {
        let found: BTreeSet<String> = store
            .existing_entities(kind, &asked)
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(found, want, "{kind}");
        assert!(
            store.existing_entities(kind, &[]).await.unwrap().is_empty(),
            "{kind}"
        );
    }
    // All five regions when asked for all of them; ids are exact (no prefix or case folding).
    let codes: Vec<String> = henan().into_iter().map(|r| r.code).collect();
    assert_eq!(
        store
            .existing_entities(EntityKind::Region, &codes)
            .await
            .unwrap()
            .len(),
        5
    );
    assert!(
        store
            .existing_entities(EntityKind::Zone, &strings(&["LY-A", "ly-", "ly-a "]))
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// concurrency: several imports at once (the services run many requests on one store)

async fn case_concurrent_writers(store: &Store) {
    let v0 = store.data_version().await.unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let rows: Vec<ObservationInput> = (0..50)
                    .map(|e| zone_obs(&format!("c{w}-{e}"), "revenue", "2024", f64::from(e)))
                    .collect();
                store.write_observations(&rows, false).await
            })
        })
        .collect();
    for (w, writer) in writers.into_iter().enumerate() {
        let (summary, _) = writer
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("writer {w} failed: {e}"));
        assert_eq!(summary.accepted, 50, "writer {w}");
    }
    assert_eq!(store.data_version().await.unwrap(), v0 + 8);
    assert_eq!(count_rows(store, "observations").await, 400);
}

/// Two imports of the same file at once (a client retrying while the first is still running,
/// or two ingestion replicas): one accepts every row, the others find them unchanged.
async fn case_concurrent_same_keys(store: &Store) {
    let v0 = store.data_version().await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let rows: Vec<ObservationInput> = (0..200)
                    .map(|e| zone_obs(&format!("s-{e}"), "revenue", "2024", f64::from(e)))
                    .collect();
                store.write_observations(&rows, false).await
            })
        })
        .collect();
    let mut accepted = 0;
    for (w, writer) in writers.into_iter().enumerate() {
        let (summary, _) = writer
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("writer {w} failed: {e}"));
        assert_eq!(summary.accepted + summary.unchanged, 200, "writer {w}");
        accepted += summary.accepted;
    }
    assert_eq!(accepted, 200, "every row accepted exactly once");
    assert_eq!(store.data_version().await.unwrap(), v0 + 1);
    // Nothing superseded: the history is empty.
    assert_eq!(count_rows(store, "observation_revisions").await, 0);
    assert_eq!(count_rows(store, "observations").await, 200);
}

// ---------------------------------------------------------------------------------------------
// writes: counts, dry runs, removals

fn counts(created: i64, updated: i64, unchanged: i64) -> UpsertCounts {
    UpsertCounts {
        created,
        updated,
        unchanged,
    }
}

fn enterprise(code: &str, zone: Option<&str>, industry: &str) -> EnterpriseRecord {
    EnterpriseRecord {
        credit_code: code.to_string(),
        name: format!("{code} 有限公司"),
        zone_id: zone.map(str::to_string),
        industry_code: industry.to_string(),
        above_scale: true,
    }
}

async fn case_writes_count_roll_back_and_remove(store: &Store) {
    // A dry run counts what a real run does and leaves no trace, not even a data version.
    let v0 = store.data_version().await.unwrap();
    let mut writes = store.begin_writes().await.unwrap();
    assert_eq!(writes.put_regions(&henan()).await.unwrap(), counts(5, 0, 0));
    assert_eq!(writes.regions().await.unwrap().len(), 5, "read inside");
    writes.finish(true).await.unwrap();
    assert!(store.regions().await.unwrap().is_empty());
    assert_eq!(store.data_version().await.unwrap(), v0);

    assert_eq!(
        store.upsert_regions(&henan()).await.unwrap(),
        counts(5, 0, 0)
    );
    let v1 = store.data_version().await.unwrap();
    assert!(v1 > v0);
    // Equal records are counted unchanged, nothing is written and the version stays.
    let mut renamed = henan();
    renamed[1].name_en = "Luoyang".to_string();
    assert_eq!(
        store.upsert_regions(&renamed).await.unwrap(),
        counts(0, 1, 4)
    );
    let v2 = store.data_version().await.unwrap();
    assert!(v2 > v1);
    assert_eq!(
        store.upsert_regions(&renamed).await.unwrap(),
        counts(0, 0, 5)
    );
    assert_eq!(store.data_version().await.unwrap(), v2);

    // Zone tags are a set: another order or a repeat is no change.
    let ly = zone(
        "ly-a",
        "410300",
        "AGGLOMERATION_ZONE",
        &["四支撑", "一中心"],
    );
    assert_eq!(
        store.upsert_zones(std::slice::from_ref(&ly)).await.unwrap(),
        counts(1, 0, 0)
    );
    let shuffled = zone(
        "ly-a",
        "410300",
        "AGGLOMERATION_ZONE",
        &["一中心", "四支撑", "一中心"],
    );
    assert_eq!(
        store.upsert_zones(&[shuffled]).await.unwrap(),
        counts(0, 0, 1)
    );
    store
        .upsert_zones(&[zone("zmd-d", "411725", "INDUSTRIAL_PARK", &[])])
        .await
        .unwrap();
    store
        .upsert_enterprises(&[
            enterprise("91410300MA44L0XX1Y", Some("ly-a"), "C3311"),
            enterprise("91410300MA44L0XX2Y", Some("ly-a"), "C2614"),
        ])
        .await
        .unwrap();
    store
        .upsert_clusters(&[ClusterRecord {
            id: "ly-bearings".to_string(),
            name: "洛阳轴承产业集群".to_string(),
            region_code: "410300".to_string(),
            zone_id: Some("ly-a".to_string()),
            industry: "bearings".to_string(),
        }])
        .await
        .unwrap();
    store
        .upsert_projects(&[ProjectRecord {
            id: "p-1".to_string(),
            name: "轴承产业园".to_string(),
            zone_id: "ly-a".to_string(),
            status: ProjectStatus::Signed,
            planned_investment: 105_600.0,
            period: None,
            completed_investment: 0.0,
        }])
        .await
        .unwrap();
    let figures = [
        zone_obs("ly-a", "tax", "2023", 1.0),
        zone_obs("ly-a", "tax", "2024", 2.0),
        obs(EntityKind::Project, "p-1", "output_value", "2024", 3.0),
        zone_obs("zmd-d", "tax", "2024", 4.0),
    ];
    store.write_observations(&figures, false).await.unwrap();
    store
        .write_observations(&[zone_obs("ly-a", "tax", "2024", 2.5)], false)
        .await
        .unwrap();
    store
        .upsert_targets(&[target(
            EntityKind::Zone,
            "ly-a",
            "tax",
            "2025",
            "AT_LEAST",
            3.0,
        )])
        .await
        .unwrap();

    let writes = store.begin_writes().await.unwrap();
    assert_eq!(
        writes.zone_references("ly-a").await.unwrap(),
        Some(ZoneReferences {
            observations: 2,
            targets: 1,
            enterprises: 2,
            clusters: 1,
            projects: 1,
        })
    );
    assert_eq!(writes.zone_references("no-such-zone").await.unwrap(), None);
    writes.finish(false).await.unwrap();

    // Removing a zone in a dry run changes nothing.
    let v3 = store.data_version().await.unwrap();
    let mut writes = store.begin_writes().await.unwrap();
    assert_eq!(writes.remove_zone("ly-a").await.unwrap(), 3);
    writes.finish(true).await.unwrap();
    assert_eq!(
        store.zones_by_id(&strings(&["ly-a"])).await.unwrap().len(),
        1
    );
    assert_eq!(store.data_version().await.unwrap(), v3);

    // For real: the zone, its tags, figures and projects go; enterprises and clusters stay.
    let mut writes = store.begin_writes().await.unwrap();
    assert_eq!(writes.remove_zone("ly-a").await.unwrap(), 3);
    writes.finish(false).await.unwrap();
    assert!(store.data_version().await.unwrap() > v3);
    assert!(
        store
            .zones_by_id(&strings(&["ly-a"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count_rows(store, "zone_tags").await, 0);
    assert_eq!(count_rows(store, "projects").await, 0);
    assert_eq!(count_rows(store, "targets").await, 0);
    assert_eq!(count_rows(store, "observations").await, 1, "zmd-d's stays");
    assert_eq!(count_rows(store, "observation_revisions").await, 0);
    let firms = store
        .list_enterprises(&EnterpriseFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(firms.items.len(), 2);
    assert!(firms.items.iter().all(|e| e.zone_id.is_none()));
    assert_eq!(count_rows(store, "clusters").await, 1);

    // Removing one target says whether there was one.
    store
        .upsert_targets(&[target(
            EntityKind::Zone,
            "zmd-d",
            "tax",
            "2025",
            "AT_LEAST",
            3.0,
        )])
        .await
        .unwrap();
    let mut writes = store.begin_writes().await.unwrap();
    assert!(
        writes
            .remove_target(EntityKind::Zone, "zmd-d", "tax", "2025")
            .await
            .unwrap()
    );
    assert!(
        !writes
            .remove_target(EntityKind::Zone, "zmd-d", "tax", "2026")
            .await
            .unwrap()
    );
    writes.finish(false).await.unwrap();
    assert_eq!(count_rows(store, "targets").await, 0);
}

async fn case_pages_of_observations_targets_and_enterprises(store: &Store) {
    // Observations: pages over (indicator, period, revision) cover every item once.
    let mut figures = Vec::new();
    for year in 2015..2025 {
        for indicator in ["tax", "output_value", "land_area"] {
            figures.push(zone_obs("z1", indicator, &year.to_string(), year as f64));
        }
        figures.push(zone_obs("z1", "tax", &format!("{year}-H1"), 1.0));
    }
    store.write_observations(&figures, false).await.unwrap();
    let all = store.observations(&zone_query("z1")).await.unwrap();
    assert_eq!(all.len(), 40);
    let revised: Vec<_> = figures
        .iter()
        .take(5)
        .map(|f| ObservationInput {
            value: f.value + 0.5,
            ..f.clone()
        })
        .collect();
    tick().await;
    let between = now_micros();
    tick().await;
    store.write_observations(&revised, false).await.unwrap();
    for query in [
        zone_query("z1"),
        ObservationQuery {
            include_revisions: true,
            ..zone_query("z1")
        },
        ObservationQuery {
            as_of: Some(between),
            ..zone_query("z1")
        },
        ObservationQuery {
            indicator: Some("tax".to_string()),
            ..zone_query("z1")
        },
    ] {
        let whole = store.observations(&query).await.unwrap();
        let mut paged = Vec::new();
        let mut after: Option<ObservationPosition> = None;
        loop {
            let page = store
                .observations_page(&query, after.as_ref(), Some(7))
                .await
                .unwrap();
            assert!(page.items.len() <= 7);
            paged.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(brief(&paged), brief(&whole), "{query:?}");
    }
    // Every revision, the superseded ones (in the history) just before the served one (in the
    // current values); and as of the moment between, the values then.
    let every = store
        .observations(&ObservationQuery {
            include_revisions: true,
            ..zone_query("z1")
        })
        .await
        .unwrap();
    assert_eq!(every.len(), 45);
    for f in &revised {
        let of_key: Vec<(f64, i32)> = every
            .iter()
            .filter(|r| r.indicator == f.indicator && r.period == f.period.canonical())
            .map(|r| (r.value, r.revision))
            .collect();
        assert_eq!(of_key, [(f.value - 0.5, 1), (f.value, 2)], "{f:?}");
    }
    let then = store
        .observations(&ObservationQuery {
            as_of: Some(between),
            ..zone_query("z1")
        })
        .await
        .unwrap();
    assert_eq!(then.len(), 40);
    assert!(
        then.iter()
            .all(|r| r.revision == 1 && r.value.fract() == 0.0)
    );
    let bad = ObservationPosition {
        indicator: "tax".to_string(),
        period: "not a period".to_string(),
        revision: 1,
    };
    assert!(matches!(
        store
            .observations_page(&zone_query("z1"), Some(&bad), Some(3))
            .await,
        Err(StorageError::InvalidPageToken)
    ));

    // Targets: pages over (period, metric).
    let targets: Vec<TargetRecord> = (2015..2025)
        .flat_map(|year| {
            ["tax", "yoy(tax)"].map(|m| {
                target(
                    EntityKind::Zone,
                    "z1",
                    m,
                    &year.to_string(),
                    "AT_LEAST",
                    1.0,
                )
            })
        })
        .collect();
    store.upsert_targets(&targets).await.unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .targets_page(EntityKind::Zone, "z1", None, after.as_ref(), Some(3))
            .await
            .unwrap();
        paged.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        paged,
        store.targets(EntityKind::Zone, "z1", None).await.unwrap()
    );
    assert_eq!(paged.len(), 20);

    // Enterprises: by zone, by region subtree, by industry prefix, in pages.
    store.upsert_regions(&henan()).await.unwrap();
    store
        .upsert_zones(&[
            zone("ly-a", "410323", "AGGLOMERATION_ZONE", &[]),
            zone("zmd-d", "411725", "AGGLOMERATION_ZONE", &[]),
        ])
        .await
        .unwrap();
    let firms: Vec<EnterpriseRecord> = (0..9)
        .map(|i| {
            let zone = ["ly-a", "zmd-d", ""][i % 3];
            enterprise(
                &format!("91410300MA44L0X{i}1Y"),
                Some(zone).filter(|z| !z.is_empty()),
                ["C3311", "C2614", "D4411"][i % 3],
            )
        })
        .collect();
    store.upsert_enterprises(&firms).await.unwrap();
    let codes = async |filter: EnterpriseFilter| {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_enterprises(&filter, after.as_deref(), 2)
                .await
                .unwrap();
            seen.extend(page.items.into_iter().map(|e| e.credit_code));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        seen
    };
    let every: Vec<String> = firms.iter().map(|e| e.credit_code.clone()).collect();
    assert_eq!(codes(EnterpriseFilter::default()).await, every);
    let of = |i: usize| every[i].clone();
    assert_eq!(
        codes(EnterpriseFilter {
            region_code: Some("410300".into()),
            ..Default::default()
        })
        .await,
        [of(0), of(3), of(6)]
    );
    assert_eq!(
        codes(EnterpriseFilter {
            zone_id: Some("zmd-d".into()),
            ..Default::default()
        })
        .await,
        [of(1), of(4), of(7)]
    );
    assert_eq!(
        codes(EnterpriseFilter {
            industry_prefix: Some("C".into()),
            region_code: Some("410000".into()),
            ..Default::default()
        })
        .await,
        [of(0), of(1), of(3), of(4), of(6), of(7)]
    );
    assert_eq!(
        codes(EnterpriseFilter {
            industry_prefix: Some("C26".into()),
            ..Default::default()
        })
        .await,
        [of(1), of(4), of(7)]
    );
    assert!(
        codes(EnterpriseFilter {
            industry_prefix: Some("C%".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// schemes, runs and cohorts naming what does not exist

backends!(case_runs_and_archived_schemes);

fn run_row(run_id: &str, period: &str, computed_at: i64) -> zonerank_storage::RunRow {
    zonerank_storage::RunRow {
        run_id: run_id.to_string(),
        scheme_id: "s".to_string(),
        scheme_version: 1,
        period: period.to_string(),
        run: run_id.as_bytes().to_vec(),
        computed_at,
    }
}

async fn case_runs_and_archived_schemes(store: &Store) {
    use zonerank_storage::RunFilter;
    for _ in 0..2 {
        store
            .insert_scheme("s", "scheme", "ZONE", false, |v, _| vec![v as u8], None)
            .await
            .unwrap();
    }
    store
        .insert_scheme("t", "other", "ZONE", false, |v, _| vec![v as u8], None)
        .await
        .unwrap();
    let ids = |rows: Vec<zonerank_storage::SchemeRow>| -> Vec<(String, i32, bool)> {
        rows.into_iter()
            .map(|r| (r.id, r.version, r.archived))
            .collect()
    };
    assert!(store.archive_scheme("s", None).await.unwrap());
    assert!(!store.archive_scheme("nope", None).await.unwrap());
    let (shown, _) = store.latest_schemes(None, 10, false).await.unwrap();
    assert_eq!(ids(shown), [("t".to_string(), 1, false)]);
    let (all, _) = store.latest_schemes(None, 10, true).await.unwrap();
    assert_eq!(
        ids(all),
        [("s".to_string(), 2, true), ("t".to_string(), 1, false)]
    );
    assert!(store.scheme("s", Some(1)).await.unwrap().unwrap().archived);
    // A new version brings every version back.
    store
        .insert_scheme("s", "scheme", "ZONE", false, |v, _| vec![v as u8], None)
        .await
        .unwrap();
    assert!(!store.scheme("s", Some(1)).await.unwrap().unwrap().archived);
    assert_eq!(
        store.latest_schemes(None, 10, false).await.unwrap().0.len(),
        2
    );

    let entries = |n: usize| -> Vec<(String, Vec<u8>)> {
        (0..n).map(|i| (format!("z{i}"), vec![i as u8])).collect()
    };
    store
        .insert_run(run_row("run-a", "2023", 100), entries(3), None)
        .await
        .unwrap();
    store
        .insert_run(run_row("run-b", "2022", 200), entries(2), None)
        .await
        .unwrap();
    store
        .insert_run(run_row("run-c", "2023", 200), entries(2), None)
        .await
        .unwrap();
    // A run larger than one part of PostgreSQL's COPY (1 MiB): every entry back, in order, with
    // its entity.
    let big: Vec<(String, Vec<u8>)> = (0..5_000)
        .map(|i| (format!("e{i:05}"), vec![(i % 251) as u8; 700 + i % 3]))
        .collect();
    store
        .insert_run(run_row("run-big", "2021", 50), big.clone(), None)
        .await
        .unwrap();
    let back = store.run_entries("run-big", 0, 10_000).await.unwrap();
    assert_eq!(back.len(), big.len());
    for (i, ((position, entry), (_, want))) in back.iter().zip(&big).enumerate() {
        assert_eq!((*position as usize, entry), (i, want));
    }
    let mut by_entity = store.run_entries_by_entity("run-big").await.unwrap();
    by_entity.sort();
    assert_eq!(by_entity, big);
    assert!(store.delete_run("run-big", None).await.unwrap());

    let every = RunFilter::default();
    let (first, more) = store.runs(&every, None, 2).await.unwrap();
    let names = |rows: &[zonerank_storage::RunRow]| -> Vec<String> {
        rows.iter().map(|r| r.run_id.clone()).collect()
    };
    // Newest first; the same instant by run id, descending.
    assert_eq!((names(&first), more), (strings(&["run-c", "run-b"]), true));
    let last = first.last().unwrap();
    let (rest, more) = store
        .runs(&every, Some((last.computed_at, &last.run_id)), 2)
        .await
        .unwrap();
    assert_eq!((names(&rest), more), (strings(&["run-a"]), false));
    let of_2023 = RunFilter {
        scheme_id: Some("s".to_string()),
        period: Some("2023".to_string()),
    };
    let (rows, _) = store.runs(&of_2023, None, 10).await.unwrap();
    assert_eq!(names(&rows), ["run-c", "run-a"]);

    assert!(store.delete_run("run-c", None).await.unwrap());
    assert!(!store.delete_run("run-c", None).await.unwrap());
    assert_eq!(store.run("run-c").await.unwrap(), None);
    assert!(store.run_entries("run-c", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.run_entries("run-a", 0, 10).await.unwrap().len(), 3);
    assert_eq!(
        names(&store.runs(&of_2023, None, 10).await.unwrap().0),
        ["run-a"]
    );
}

backends!(case_cohort_unknown_names);

async fn case_cohort_unknown_names(store: &Store) {
    use zonerank_storage::{CohortQuery, UnknownName};
    store.upsert_regions(&henan()).await.unwrap();
    store
        .upsert_zones(&[
            zone("ly-a", "410323", "AGGLOMERATION_ZONE", &[]),
            zone("zmd-d", "411725", "AGGLOMERATION_ZONE", &[]),
        ])
        .await
        .unwrap();
    let query = |region: Option<&str>, ids: &[&str]| CohortQuery {
        kind: Some(EntityKind::Zone),
        region_code: region.map(str::to_string),
        ids: strings(ids),
        ..Default::default()
    };
    assert_eq!(
        store.cohort(&query(Some("419900"), &[])).await.unwrap(),
        Err(UnknownName::Region("419900".to_string()))
    );
    assert_eq!(
        store.cohort(&query(None, &["ly-a", "ly-x"])).await.unwrap(),
        Err(UnknownName::Entity(EntityKind::Zone, "ly-x".to_string()))
    );
    // A known zone outside the region is no member, and no error.
    let members = store
        .cohort(&query(Some("410300"), &["ly-a", "zmd-d"]))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["ly-a"]);
}

// ---------------------------------------------------------------------------------------------
// as-of stability

/// An import held open across a read at T: the reads at T before and after it commits agree,
/// as do reads at a moment before it; the latest read and a read at its commit stamp see it.
async fn case_as_of_stable_across_an_open_import(store: &Store) {
    store
        .write_observations(
            &[
                zone_obs("s1", "revenue", "2024", 10.0),
                zone_obs("s1", "tax", "2024", 1.0),
            ],
            false,
        )
        .await
        .unwrap();
    let first = store.committed_version().await.unwrap();
    tick().await;
    let before_import = now_micros();
    tick().await;

    let (written_tx, written_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let rows = [
                zone_obs("s1", "revenue", "2024", 20.0),
                zone_obs("s1", "tax", "2025", 2.0),
            ];
            store
                .write_observations_held(&rows, async move {
                    written_tx.send(()).unwrap();
                    release_rx.await.unwrap();
                })
                .await
        })
    };
    // Every row is written and the transaction is open.
    written_rx.await.unwrap();
    tick().await;
    let at = now_micros();
    tick().await;

    let served = |as_of: Option<i64>| ObservationQuery {
        as_of,
        ..zone_query("s1")
    };
    let history = |as_of: Option<i64>| ObservationQuery {
        as_of,
        include_revisions: true,
        ..zone_query("s1")
    };
    let values = |as_of: i64| ValueQuery {
        kind: EntityKind::Zone,
        ids: None,
        indicators: vec!["revenue".into(), "tax".into()],
        from_ordinal: 2024 * 12,
        to_ordinal: 2025 * 12 + 11,
        as_of: Some(as_of),
    };
    let sorted = |mut rows: Vec<zonerank_storage::ValueRow>| {
        rows.sort_by(|a, b| {
            (&a.entity_id, &a.indicator, a.period.canonical()).cmp(&(
                &b.entity_id,
                &b.indicator,
                b.period.canonical(),
            ))
        });
        rows
    };
    let during = store.observations(&served(Some(at))).await.unwrap();
    let during_history = store.observations(&history(Some(at))).await.unwrap();
    let during_before = store
        .observations(&served(Some(before_import)))
        .await
        .unwrap();
    let during_values = sorted(store.values(&values(at)).await.unwrap());
    assert_eq!(
        brief(&during),
        vec![
            ("revenue".into(), "2024".into(), 10.0, 1),
            ("tax".into(), "2024".into(), 1.0, 1),
        ]
    );
    assert_eq!(during_before, during);
    assert_eq!(during_values.len(), 2);
    assert_eq!(store.committed_version().await.unwrap(), first);
    // A moment later than the last commit pins to that commit: the open import may still
    // commit before the moment itself.
    let last_commit = Pinned {
        as_of: first.stamped_at,
        version: first.version,
    };
    assert_eq!(store.pin(None).await.unwrap(), last_commit);
    assert_eq!(store.pin(Some(at)).await.unwrap(), last_commit);
    assert_eq!(store.pin(Some(before_import)).await.unwrap(), last_commit);
    assert_eq!(
        store.pin(Some(first.stamped_at - 1)).await.unwrap(),
        Pinned {
            as_of: first.stamped_at - 1,
            version: first.version - 1
        }
    );

    release_tx.send(()).unwrap();
    let (summary, _) = writer.await.unwrap().unwrap();
    let committed = store.committed_version().await.unwrap();
    assert_eq!(committed.version, summary.data_version);
    assert_eq!(committed.version, first.version + 1);
    assert!(
        committed.stamped_at > at,
        "the commit {} is stamped after the moment {at} read while it was open",
        committed.stamped_at
    );

    // The same moments read after the commit: the same answers.
    assert_eq!(store.observations(&served(Some(at))).await.unwrap(), during);
    assert_eq!(
        store.observations(&history(Some(at))).await.unwrap(),
        during_history
    );
    assert_eq!(
        store
            .observations(&served(Some(before_import)))
            .await
            .unwrap(),
        during_before
    );
    assert_eq!(
        sorted(store.values(&values(at)).await.unwrap()),
        during_values
    );
    assert_eq!(
        store
            .observations(&served(Some(committed.stamped_at - 1)))
            .await
            .unwrap(),
        during
    );

    assert_eq!(
        store.pin(Some(before_import)).await.unwrap(),
        Pinned {
            as_of: before_import,
            version: first.version
        }
    );
    assert_eq!(
        store.pin(Some(at)).await.unwrap(),
        Pinned {
            as_of: at,
            version: first.version
        }
    );
    assert_eq!(
        store.pin(None).await.unwrap(),
        Pinned {
            as_of: committed.stamped_at,
            version: committed.version
        }
    );

    // The latest read, and a read at the commit's stamp, see the import, recorded at that stamp.
    let latest = store.observations(&served(None)).await.unwrap();
    assert_eq!(
        brief(&latest),
        vec![
            ("revenue".into(), "2024".into(), 20.0, 2),
            ("tax".into(), "2024".into(), 1.0, 1),
            ("tax".into(), "2025".into(), 2.0, 1),
        ]
    );
    assert_eq!(latest[0].recorded_at, committed.stamped_at);
    assert_eq!(latest[1].recorded_at, first.stamped_at);
    assert_eq!(latest[2].recorded_at, committed.stamped_at);
    assert_eq!(
        store
            .observations(&served(Some(committed.stamped_at)))
            .await
            .unwrap(),
        latest
    );
    assert_eq!(
        sorted(store.values(&values(committed.stamped_at)).await.unwrap())
            .iter()
            .map(|r| r.value)
            .collect::<Vec<_>>(),
        [20.0, 1.0, 2.0]
    );
}

/// The commit stamp of `version` in the commit log.
async fn logged_stamp(store: &Store, version: i64) -> Option<i64> {
    let db = store.connection();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT committed_at FROM data_commits WHERE version = {version}"),
        ))
        .await
        .unwrap()?;
    Some(row.try_get_by_index::<i64>(0).unwrap())
}

/// `committed_version` (a ranking run's default as_of and its data version) is always one
/// commit's pair, read while writers of observations and of reference data keep committing,
/// and as of its stamp the reads show exactly that commit.
async fn case_committed_version_is_one_commit(store: &Store) {
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                store
                    .write_observations(&[zone_obs("cv", "revenue", "2024", f64::from(i))], false)
                    .await
                    .unwrap();
                store
                    .upsert_regions(&[region(
                        "419900",
                        &format!("区{i}"),
                        RegionLevel::Province,
                        None,
                    )])
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = BTreeSet::new();
    while !writer.is_finished() {
        let committed = store.committed_version().await.unwrap();
        assert_eq!(
            logged_stamp(store, committed.version).await,
            Some(committed.stamped_at),
            "version {} is paired with its own commit stamp",
            committed.version
        );
        seen.insert(committed.version);
        let pinned = store.pin(None).await.unwrap();
        assert_eq!(
            logged_stamp(store, pinned.version).await,
            Some(pinned.as_of),
            "pinned version {} is paired with its own commit stamp",
            pinned.version
        );
    }
    writer.await.unwrap();
    let last = store.committed_version().await.unwrap();
    assert_eq!(last.version, store.data_version().await.unwrap());
    assert_eq!(
        logged_stamp(store, last.version).await,
        Some(last.stamped_at)
    );
    assert!(!seen.is_empty());
    // The last observation commit is the one before the last (a regions commit).
    let served = |as_of| ObservationQuery {
        as_of: Some(as_of),
        ..zone_query("cv")
    };
    let at_last = store.observations(&served(last.stamped_at)).await.unwrap();
    assert_eq!(
        brief(&at_last),
        vec![("revenue".into(), "2024".into(), 19.0, 20)]
    );
    let stamp_19 = logged_stamp(store, last.version - 1).await.unwrap();
    assert_eq!(at_last[0].recorded_at, stamp_19);
    let stamp_18 = logged_stamp(store, last.version - 3).await.unwrap();
    assert_eq!(
        brief(&store.observations(&served(stamp_19 - 1)).await.unwrap()),
        vec![("revenue".into(), "2024".into(), 18.0, 19)]
    );
    assert_eq!(
        store.observations(&served(stamp_18)).await.unwrap()[0].recorded_at,
        stamp_18
    );
}

/// A database written before commit stamps: its revisions become one commit per stamp, the
/// newest ending at the current data version, and read as of any moment as they did before.
async fn case_commit_stamps_backfill(url: String) {
    use sea_orm_migration::MigratorTrait;
    use zonerank_storage::migration::Migrator;

    let store = Store::connect(&url).await.unwrap();
    let db = store.connection();
    // The three migrations before the commit stamps.
    Migrator::up(db, Some(3)).await.unwrap();
    let run = |sql: String| async move {
        db.execute_unprepared(&sql).await.unwrap();
    };
    let (start, end) = (2024 * 12, 2024 * 12 + 11);
    // Two imports stamped 1000 and 2000, then a commit of reference data at 3000: version 5.
    for (table, rows) in [
        (
            "observation_revisions",
            vec![
                ("revenue", 1, 1.0, 1000),
                ("revenue", 2, 2.0, 2000),
                ("tax", 1, 5.0, 1000),
            ],
        ),
        (
            "observations",
            vec![("revenue", 2, 2.0, 2000), ("tax", 1, 5.0, 1000)],
        ),
    ] {
        for (indicator, revision, value, recorded_at) in rows {
            run(format!(
                "INSERT INTO {table} (entity_kind, entity_id, indicator, period, revision, \
                 period_start, period_end, value, source, recorded_at) VALUES ('ZONE', 'l1', \
                 '{indicator}', '2024', {revision}, {start}, {end}, {value}, 'legacy', \
                 {recorded_at})"
            ))
            .await;
        }
    }
    run("UPDATE data_version SET version = 5, updated_at = 3000 WHERE id = 1".into()).await;

    store.migrate().await.unwrap();
    assert_eq!(store.schema_status().await.unwrap(), SchemaStatus::Current);
    // Migrating also seeded the built-in indicators: one more commit, stamped now.
    let seeded = store.committed_version().await.unwrap();
    assert_eq!(seeded.version, 6);
    assert_eq!(logged_stamp(&store, 6).await, Some(seeded.stamped_at));
    assert_eq!(logged_stamp(&store, 5).await, Some(3000));
    assert_eq!(logged_stamp(&store, 2).await, None);
    assert_eq!(logged_stamp(&store, 3).await, Some(1000));
    assert_eq!(logged_stamp(&store, 4).await, Some(2000));
    let served = |as_of: Option<i64>| ObservationQuery {
        as_of,
        ..zone_query("l1")
    };
    let stamps =
        |rows: &[StoredObservation]| rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>();
    let at = |as_of| {
        let store = &store;
        async move { store.observations(&served(Some(as_of))).await }
    };
    assert!(at(999).await.unwrap().is_empty());
    let first = at(1500).await.unwrap();
    assert_eq!(
        brief(&first),
        vec![
            ("revenue".into(), "2024".into(), 1.0, 1),
            ("tax".into(), "2024".into(), 5.0, 1),
        ]
    );
    assert_eq!(stamps(&first), [1000, 1000]);
    let latest = store.observations(&served(None)).await.unwrap();
    assert_eq!(
        brief(&latest),
        vec![
            ("revenue".into(), "2024".into(), 2.0, 2),
            ("tax".into(), "2024".into(), 5.0, 1),
        ]
    );
    assert_eq!(stamps(&latest), [2000, 1000]);
    assert_eq!(at(2000).await.unwrap(), latest);

    // The next write follows the history.
    let (summary, _) = store
        .write_observations(&[zone_obs("l1", "revenue", "2024", 3.0)], false)
        .await
        .unwrap();
    assert_eq!(summary.data_version, 7);
    let committed = store.committed_version().await.unwrap();
    assert_eq!(committed.version, 7);
    assert_eq!(at(3000).await.unwrap(), latest);
    let after = store.observations(&served(None)).await.unwrap();
    assert_eq!(stamps(&after), [committed.stamped_at, 1000]);

    // Down and up again: the stamps go back into `recorded_at` and come back as commits.
    // (Every migration after it goes down first; commit stamps is the fourth.)
    let from_commit_stamps = Migrator::migrations().len() as u32 - 3;
    Migrator::down(db, Some(from_commit_stamps)).await.unwrap();
    let recorded: Vec<i64> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT recorded_at FROM observation_revisions ORDER BY recorded_at, indicator",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect();
    assert_eq!(recorded, [1000, 1000, 2000, committed.stamped_at]);
    Migrator::up(db, None).await.unwrap();
    assert_eq!(store.observations(&served(None)).await.unwrap(), after);
    assert_eq!(at(2000).await.unwrap(), latest);
}

/// Stages `rows` a chunk of `chunk` at a time, numbered from 1.
async fn import_in_chunks(
    store: &Store,
    rows: &[ObservationInput],
    chunk: usize,
) -> zonerank_storage::ObservationImport {
    let mut import = store
        .begin_observation_import()
        .await
        .expect("begin import");
    for (n, part) in rows.chunks(chunk).enumerate() {
        let numbers: Vec<i64> = (0..part.len())
            .map(|i| (n * chunk + i) as i64 + 1)
            .collect();
        import.stage(part, &numbers).await.expect("stage");
    }
    import
}

fn import_event() -> zonerank_storage::AuditEvent {
    zonerank_storage::AuditEvent::new(
        "importer",
        "/zonerank.v1.IngestionService/IngestObservations",
        "OK",
        "req-1",
    )
}

/// The staged bulk import counts, revises and rolls back exactly as the row-wise write does.
async fn case_bulk_import_keeps_every_rule(store: &Store) {
    let first: Vec<ObservationInput> = (0..250)
        .map(|i| zone_obs(&format!("b{i}"), "revenue", "2024", i as f64 + 0.1))
        .chain((0..250).map(|i| zone_obs(&format!("b{i}"), "tax", "2024-03", -(i as f64))))
        .collect();
    let version = store.data_version().await.unwrap();

    // A dry run counts and writes nothing.
    let import = import_in_chunks(store, &first, 70).await;
    assert_eq!(import.staged(), 500);
    let dry = import
        .finish(true, import_event(), &Default::default())
        .await
        .unwrap();
    assert_eq!((dry.accepted, dry.updated, dry.unchanged), (500, 0, 0));
    assert_eq!(store.data_version().await.unwrap(), version);
    assert_eq!(count_rows(store, "observations").await, 0);

    // Abandoned after every chunk is staged: nothing written, the version untouched.
    import_in_chunks(store, &first, 70)
        .await
        .rollback()
        .await
        .unwrap();
    assert_eq!(count_rows(store, "observations").await, 0);
    assert_eq!(count_rows(store, "observation_revisions").await, 0);
    assert_eq!(store.data_version().await.unwrap(), version);

    let written = import_in_chunks(store, &first, 70)
        .await
        .finish(false, import_event(), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        written,
        WriteSummary {
            accepted: 500,
            updated: 0,
            unchanged: 0,
            data_version: version + 1
        }
    );
    let b7 = store.observations(&zone_query("b7")).await.unwrap();
    assert_eq!(
        brief(&b7),
        vec![
            ("revenue".into(), "2024".into(), 7.1, 1),
            ("tax".into(), "2024-03".into(), -7.0, 1)
        ]
    );
    assert!(b7.iter().all(|o| o.recorded_by == "importer"));
    assert_eq!(b7[0].source, "test:b7:revenue:2024");

    // Again with two values changed and one new key: bit-equal values are unchanged.
    let mut second = first.clone();
    second[3].value = 99.5;
    second[260].value = 0.25;
    second.push(zone_obs("b-new", "revenue", "2024", 1.0));
    let again = import_in_chunks(store, &second, 333)
        .await
        .finish(false, import_event(), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        again,
        WriteSummary {
            accepted: 1,
            updated: 2,
            unchanged: 498,
            data_version: version + 2
        }
    );
    let b3 = store
        .observations(&ObservationQuery {
            include_revisions: true,
            indicator: Some("revenue".into()),
            ..zone_query("b3")
        })
        .await
        .unwrap();
    assert_eq!(
        brief(&b3),
        vec![
            ("revenue".into(), "2024".into(), 3.1, 1),
            ("revenue".into(), "2024".into(), 99.5, 2)
        ]
    );
    // The two values replaced; the served ones live in `observations` alone.
    assert_eq!(count_rows(store, "observation_revisions").await, 2);

    // A key repeated in a later chunk is found with both row numbers and left out.
    let repeated = vec![
        zone_obs("b1", "revenue", "2024", 5.0),
        zone_obs("b2", "revenue", "2024", 5.0),
        zone_obs("b1", "revenue", "2024", 6.0),
    ];
    let mut import = import_in_chunks(store, &repeated, 2).await;
    let (count, listed) = import.take_duplicates(10).await.unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        listed,
        vec![zonerank_storage::DuplicateRow {
            row: 3,
            first_row: 1,
            kind: "ZONE".into(),
            entity_id: "b1".into(),
            indicator: "revenue".into(),
            period: "2024".into(),
        }]
    );
    assert_eq!(import.staged(), 2);
    let dry = import
        .finish(true, import_event(), &Default::default())
        .await
        .unwrap();
    assert_eq!((dry.accepted, dry.updated, dry.unchanged), (0, 2, 0));

    // Nothing changed: no new version, and the event still stands alone.
    let same = import_in_chunks(store, &second, 1000)
        .await
        .finish(false, import_event(), &Default::default())
        .await
        .unwrap();
    assert_eq!((same.accepted, same.updated, same.unchanged), (0, 0, 501));
    assert_eq!(same.data_version, version + 2);
    let events = store
        .audit_events(&Default::default(), None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.event.principal == "importer"));
    let counts: Vec<(i64, i64, i64, Option<i64>)> = events
        .iter()
        .map(|e| {
            (
                e.event.created,
                e.event.updated,
                e.event.unchanged,
                e.data_version,
            )
        })
        .collect();
    assert!(counts.contains(&(500, 0, 0, Some(version + 1))));
    assert!(counts.contains(&(1, 2, 498, Some(version + 2))));
    assert!(counts.contains(&(0, 0, 501, None)));
}
