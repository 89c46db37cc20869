//! Person rows.
use std::collections::HashMap;

use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::convert::{at, id, new_uuid, text, uuid, uuids};
use super::{audit, outbox};
use crate::store::{NewEvent, Person, StoreResult, now};

const SELECT: &str = "SELECT p.id, p.name, p.metadata, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) AS face_count FROM persons p";

/// A person's columns as [`SELECT`] reads them.
#[derive(sqlx::FromRow)]
struct PersonRow {
    id: Uuid,
    name: String,
    metadata: Option<Json<serde_json::Value>>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    face_count: i64,
}

impl From<PersonRow> for Person {
    fn from(r: PersonRow) -> Self {
        Person {
            id: id(r.id),
            name: r.name,
            metadata: r.metadata.map(|m| m.0),
            created_at: text(r.created_at),
            updated_at: text(r.updated_at),
            face_count: r.face_count,
        }
    }
}

/// Writes one person row as it is (new persons and imports alike); false
/// when the id exists.
pub(super) async fn insert<'e, E: sqlx::PgExecutor<'e>>(exec: E, p: &Person) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO persons (id, name, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(new_uuid(&p.id)?)
    .bind(&p.name)
    .bind(p.metadata.as_ref().map(Json))
    .bind(at(&p.created_at)?)
    .bind(at(&p.updated_at)?)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn create(pool: &PgPool, p: &Person, actor: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    if !insert(&mut *tx, p).await? {
        return Err(crate::store::StoreError::Corrupt(format!("person {} exists already", p.id)));
    }
    audit::record(&mut *tx, actor, "create_person", &p.id).await?;
    outbox::emit(&mut *tx, &NewEvent::person_created(&p.id, &p.name, actor)).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, person: &str) -> StoreResult<Option<Person>> {
    let Some(u) = uuid(person) else { return Ok(None) };
    let row = sqlx::query_as::<_, PersonRow>(&format!("{SELECT} WHERE p.id = $1")).bind(u).fetch_optional(pool).await?;
    Ok(row.map(Person::from))
}

pub(super) async fn find_by_name(pool: &PgPool, name: &str) -> StoreResult<Option<Person>> {
    let row =
        sqlx::query_as::<_, PersonRow>(&format!("{SELECT} WHERE p.name = $1 ORDER BY p.created_at, p.id LIMIT 1"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(Person::from))
}

pub(super) async fn list(pool: &PgPool, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<Person>> {
    // Ids are compared as the numbers they spell, which is their hex order.
    let after = cursor.and_then(uuid).unwrap_or(Uuid::nil());
    let rows = sqlx::query_as::<_, PersonRow>(&format!("{SELECT} WHERE p.id > $1 ORDER BY p.id LIMIT $2"))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Person::from).collect())
}

pub(super) async fn names(pool: &PgPool, ids: &[&str]) -> StoreResult<HashMap<String, String>> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM persons WHERE id = ANY($1)").bind(uuids(ids)).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(u, name)| (id(u), name)).collect())
}

pub(super) async fn update(
    pool: &PgPool,
    person: &str,
    name: Option<&str>,
    metadata: Option<Option<&serde_json::Value>>,
    actor: &str,
) -> StoreResult<Option<Person>> {
    let Some(u) = uuid(person) else { return Ok(None) };
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE persons SET name = COALESCE($1, name), \
         metadata = CASE WHEN $2 THEN $3 ELSE metadata END, updated_at = $4 WHERE id = $5",
    )
    .bind(name)
    .bind(metadata.is_some())
    .bind(metadata.flatten().map(Json))
    .bind(at(&now())?)
    .bind(u)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query_as::<_, PersonRow>(&format!("{SELECT} WHERE p.id = $1")).bind(u).fetch_one(&mut *tx).await?;
    let updated: Person = row.into();
    audit::record(&mut *tx, actor, "update_person", person).await?;
    outbox::emit(&mut *tx, &NewEvent::person_updated(person, &updated.name, actor)).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

/// Deletes the person and (by cascade) every face. False when absent.
pub(super) async fn delete(pool: &PgPool, person: &str, actor: &str) -> StoreResult<bool> {
    let Some(u) = uuid(person) else { return Ok(false) };
    let mut tx = pool.begin().await?;
    // Locked first: no face can be added to the person meanwhile (the
    // foreign key check waits), so the events name every face deleted.
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM persons WHERE id = $1 FOR UPDATE")
        .bind(u)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(name) = name else { return Ok(false) };
    let faces: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM faces WHERE person_id = $1 ORDER BY id").bind(u).fetch_all(&mut *tx).await?;
    let faces: Vec<String> = faces.into_iter().map(id).collect();
    sqlx::query("DELETE FROM persons WHERE id = $1").bind(u).execute(&mut *tx).await?;
    audit::record(&mut *tx, actor, "delete_person", person).await?;
    outbox::emit_all(&mut tx, &NewEvent::person_gone(person, &name, faces, actor)).await?;
    tx.commit().await?;
    Ok(true)
}
