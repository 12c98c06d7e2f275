//! PostgreSQL: `observations` and `observation_revisions` partitioned by year (declarative range
//! partitioning on `period_start`, the months since year 0 of a period's first month, so a
//! year's partition holds `[year * 12, (year + 1) * 12)`). The partitions of the years already
//! stored are made here; later years are made on demand by the writes (`partitions.rs`).
//!
//! A partitioned table's keys must hold the partition column, so both primary keys gain
//! `period_start`. A period has one start, so the keys still allow what they allowed before.
//! The tables are rebuilt in place: the old table is renamed, the new one made like it, the
//! rows moved, the old one dropped, then the key and every index the old table had (read from
//! the catalog, so later migrations' indexes come along) made again on the new one. `down`
//! does the same the other way. SQLite is left as it is.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["observations", "observation_revisions"];

/// One PL/pgSQL block that rebuilds `table` partitioned by year (`partitioned`) or as one plain
/// table, keeping its rows, its key (with or without `period_start`) and its other indexes.
fn rebuild(table: &str, partitioned: bool) -> String {
    let old = format!("{table}_rebuilt");
    let (layout, key_edit, make_partitions) = if partitioned {
        (
            " PARTITION BY RANGE (period_start)",
            // The partition column joins the key.
            "IF NOT ('period_start' = ANY (key_columns)) THEN \
                 key_columns := key_columns || 'period_start'::text; \
             END IF;",
            format!(
                "FOR year IN EXECUTE format('SELECT DISTINCT div(period_start, 12)::int \
                     FROM %I', '{old}') LOOP \
                     EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)', \
                         '{table}_y' || year, '{table}', year * 12, (year + 1) * 12); \
                 END LOOP;"
            ),
        )
    } else {
        (
            "",
            "key_columns := array_remove(key_columns, 'period_start'::text);",
            String::new(),
        )
    };
    format!(
        "DO $rebuild$
DECLARE
    key_columns text[];
    index_defs text[];
    def text;
    year int;
BEGIN
    EXECUTE format('ALTER TABLE %I RENAME TO %I', '{table}', '{old}');
    SELECT array_agg(a.attname::text ORDER BY k.n) INTO key_columns
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = to_regclass('{old}') AND i.indisprimary;
    {key_edit}
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{{}}') INTO index_defs
      FROM pg_index i
     WHERE i.indrelid = to_regclass('{old}') AND NOT i.indisprimary;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS){layout}', '{table}', '{old}');
    {make_partitions}
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', '{table}', '{old}');
    EXECUTE format('DROP TABLE %I', '{old}');
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', '{table}',
        (SELECT string_agg(quote_ident(c), ', ') FROM unnest(key_columns) AS c));
    FOREACH def IN ARRAY index_defs LOOP
        -- The definitions name the renamed table; the index names are free again.
        EXECUTE regexp_replace(def, ' ON (ONLY )?(\\S+\\.)?\"?{old}\"? ', ' ON {table} ');
    END LOOP;
END
$rebuild$"
    )
}

async fn rebuild_all(manager: &SchemaManager<'_>, partitioned: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in TABLES {
        db.execute_unprepared(&rebuild(table, partitioned)).await?;
    }
    Ok(())
}

// sea-orm-migration's trait elides SchemaManager's lifetime; naming it breaks async_trait.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, false).await
    }
}
