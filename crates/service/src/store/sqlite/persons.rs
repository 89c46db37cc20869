//! Person rows.
use std::collections::HashMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow as _, Row, SqlitePool};

use super::{audit, outbox};
use crate::store::{NewEvent, Person, StoreError, StoreResult, now};

const SELECT: &str = "SELECT p.id, p.name, p.metadata, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) AS face_count FROM persons p";

/// A person's columns as [`SELECT`] reads them.
#[derive(sqlx::FromRow)]
struct PersonRow {
    id: String,
    name: String,
    metadata: Option<String>,
    created_at: String,
    updated_at: String,
    face_count: i64,
}

fn person(row: &SqliteRow) -> StoreResult<Person> {
    let r = PersonRow::from_row(row)?;
    Ok(Person {
        metadata: r
            .metadata
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("person metadata: {e}")))?,
        id: r.id,
        name: r.name,
        created_at: r.created_at,
        updated_at: r.updated_at,
        face_count: r.face_count,
    })
}

/// Writes one person row as it is (new persons and imports alike).
pub(super) async fn insert<'e, E: sqlx::SqliteExecutor<'e>>(exec: E, p: &Person) -> StoreResult<()> {
    sqlx::query("INSERT INTO persons (id, name, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&p.id)
        .bind(&p.name)
        .bind(p.metadata.as_ref().map(|m| m.to_string()))
        .bind(&p.created_at)
        .bind(&p.updated_at)
        .execute(exec)
        .await?;
    Ok(())
}

pub(super) async fn exists<'e, E: sqlx::SqliteExecutor<'e>>(exec: E, id: &str) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM persons WHERE id = ?").bind(id).fetch_optional(exec).await?.is_some())
}

pub(super) async fn create(pool: &SqlitePool, p: &Person, actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    insert(&mut *tx, p).await?;
    audit::record(&mut *tx, actor, "create_person", &p.id).await?;
    outbox::emit(&mut *tx, &NewEvent::person_created(&p.id, &p.name, actor)).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> StoreResult<Option<Person>> {
    let row = sqlx::query(&format!("{SELECT} WHERE p.id = ?")).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(person).transpose()
}

pub(super) async fn find_by_name(pool: &SqlitePool, name: &str) -> StoreResult<Option<Person>> {
    let row = sqlx::query(&format!("{SELECT} WHERE p.name = ? ORDER BY p.created_at, p.id LIMIT 1"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(person).transpose()
}

pub(super) async fn list(pool: &SqlitePool, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<Person>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE p.id > ? ORDER BY p.id LIMIT ?"))
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(person).collect()
}

pub(super) async fn names(pool: &SqlitePool, ids: &[&str]) -> StoreResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT id, name FROM persons WHERE id IN ({marks})");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(pool).await? {
            out.insert(row.try_get("id")?, row.try_get("name")?);
        }
    }
    Ok(out)
}

pub(super) async fn update(
    pool: &SqlitePool,
    id: &str,
    name: Option<&str>,
    metadata: Option<Option<&serde_json::Value>>,
    actor: &str,
) -> StoreResult<Option<Person>> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE persons SET name = COALESCE(?, name), \
         metadata = CASE WHEN ? THEN ? ELSE metadata END, updated_at = ? WHERE id = ?",
    )
    .bind(name)
    .bind(metadata.is_some())
    .bind(metadata.flatten().map(|m| m.to_string()))
    .bind(now())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!("{SELECT} WHERE p.id = ?")).bind(id).fetch_one(&mut *tx).await?;
    let updated = person(&row)?;
    audit::record(&mut *tx, actor, "update_person", id).await?;
    outbox::emit(&mut *tx, &NewEvent::person_updated(id, &updated.name, actor)).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

/// Deletes the person and (by cascade) every face. False when absent.
pub(super) async fn delete(pool: &SqlitePool, id: &str, actor: &str) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let faces: Vec<String> =
        sqlx::query_scalar("SELECT id FROM faces WHERE person_id = ? ORDER BY id").bind(id).fetch_all(&mut *tx).await?;
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM persons WHERE id = ? RETURNING name").bind(id).fetch_optional(&mut *tx).await?;
    let Some(name) = name else { return Ok(false) };
    audit::record(&mut *tx, actor, "delete_person", id).await?;
    outbox::emit_all(&mut tx, &NewEvent::person_gone(id, &name, faces, actor)).await?;
    tx.commit().await?;
    Ok(true)
}
