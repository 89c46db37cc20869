//! Person rows.
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow as _, Row};

use super::{Person, Store, StoreError, StoreResult, new_id, now};

pub(super) const SELECT: &str = "SELECT p.id, p.name, p.metadata, p.created_at, p.updated_at, \
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

pub(super) fn person(row: &SqliteRow) -> StoreResult<Person> {
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
pub(super) async fn insert_row<'e, E: sqlx::SqliteExecutor<'e>>(exec: E, p: &Person) -> StoreResult<()> {
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

/// Creates a new person (a fresh id, no faces yet).
pub(super) async fn insert_person<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    name: &str,
    metadata: Option<&serde_json::Value>,
) -> StoreResult<Person> {
    let (id, at) = (new_id(), now());
    let person = Person {
        id,
        name: name.to_string(),
        metadata: metadata.cloned(),
        created_at: at.clone(),
        updated_at: at,
        face_count: 0,
    };
    insert_row(exec, &person).await?;
    Ok(person)
}

impl Store {
    pub async fn create_person(
        &self,
        name: &str,
        metadata: Option<&serde_json::Value>,
        actor: &str,
    ) -> StoreResult<Person> {
        let mut tx = self.pool.begin().await?;
        let person = insert_person(&mut *tx, name, metadata).await?;
        super::audit::record(&mut *tx, actor, "create_person", &person.id).await?;
        tx.commit().await?;
        Ok(person)
    }

    pub async fn get_person(&self, id: &str) -> StoreResult<Option<Person>> {
        let row = sqlx::query(&format!("{SELECT} WHERE p.id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(person).transpose()
    }

    /// Persons in id (creation) order, after `cursor` when given.
    pub async fn list_persons(&self, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<Person>> {
        let rows = sqlx::query(&format!("{SELECT} WHERE p.id > ? ORDER BY p.id LIMIT ?"))
            .bind(cursor.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(person).collect()
    }

    /// Names of the given persons in one query (absent ids are left out).
    pub async fn person_names(&self, ids: &[&str]) -> StoreResult<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT id, name FROM persons WHERE id IN ({marks})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.insert(row.try_get("id")?, row.try_get("name")?);
            }
        }
        Ok(out)
    }

    /// Changes the name and/or the metadata (`Some(None)` clears it).
    pub async fn update_person(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Option<&serde_json::Value>>,
        actor: &str,
    ) -> StoreResult<Option<Person>> {
        let mut tx = self.pool.begin().await?;
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
        super::audit::record(&mut *tx, actor, "update_person", id).await?;
        tx.commit().await?;
        person(&row).map(Some)
    }

    /// Deletes the person and (by cascade) every face. False when absent.
    pub async fn delete_person(&self, id: &str, actor: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM persons WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::record(&mut *tx, actor, "delete_person", id).await?;
        tx.commit().await?;
        self.purge_wal().await;
        Ok(true)
    }
}
