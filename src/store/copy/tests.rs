//! The table list against the migrated schema, and the backup file's value encoding.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};

use super::{Value, tables};
use crate::store::{Pool, Store};

/// Every table of the migrated SQLite schema is in `migrations/tables.txt`, once, after every
/// table it references; so a migration that adds a table cannot leave it out of backups.
#[tokio::test]
async fn the_table_list_covers_the_migrated_schema_in_dependency_order() {
    let store = Store::open("sqlite::memory:", 1).await.unwrap();
    let Pool::Sqlite(pool) = &store.pool else {
        unreachable!("a SQLite URL opens a SQLite pool");
    };
    let schema: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let listed = tables();
    let listed_set: BTreeSet<String> = listed.iter().map(|t| t.to_string()).collect();
    assert_eq!(listed.len(), listed_set.len(), "a table is listed twice");
    let missing: Vec<&String> = schema.difference(&listed_set).collect();
    assert!(
        missing.is_empty(),
        "add these tables to migrations/tables.txt (after the tables they reference): {missing:?}"
    );
    let gone: Vec<&String> = listed_set.difference(&schema).collect();
    assert!(gone.is_empty(), "listed but not in the schema: {gone:?}");
    for (position, table) in listed.iter().enumerate() {
        let referenced: Vec<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(*table)
                .fetch_all(pool)
                .await
                .unwrap();
        for parent in referenced {
            let before = listed[..position].contains(&parent.as_str());
            assert!(
                before || parent == *table,
                "{table} references {parent}, which must come before it in migrations/tables.txt"
            );
        }
    }
}

#[test]
fn values_survive_the_backup_file_encoding() {
    let values = [
        Value::Null,
        Value::Int(-42),
        Value::Int(i64::MAX),
        Value::Real(2.0),
        Value::Real(-0.125),
        Value::Bool(true),
        Value::Text("{\"b\": \"not bytes\"}".into()),
        Value::Bytes(vec![0, 159, 146, 150, 255]),
        Value::Time(Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap()),
        Value::Time(Utc.timestamp_opt(1_772_000_000, 123_456_789).unwrap()),
    ];
    for value in values {
        let text = value.to_json().to_string();
        let back = Value::from_json(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, value, "{text}");
    }
    assert!(Value::from_json(serde_json::json!({"b": "!!"})).is_err());
    assert!(Value::from_json(serde_json::json!([1])).is_err());
}
