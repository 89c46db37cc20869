//! The PostgreSQL implementation of the store, for several replicas on one
//! database. Migrations in `migrations/postgres/` are embedded and applied
//! when the store opens, under sqlx's advisory lock, so replicas starting
//! together apply them once. Native types: `uuid` ids, `timestamptz`,
//! `jsonb`, `bytea` embeddings. The audit log doubles as the change log the
//! replicas follow (`changes.rs`). One file per table, as for SQLite.
mod audit;
mod changes;
mod convert;
mod faces;
mod keys;
mod persons;
mod transfer;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{
    ApiKey, AuditEntry, Change, ChangePos, Database, FaceExport, FaceRecord, NewFace, Person, StoreError, StoreResult,
    StoredEmbedding,
};

/// Longest wait for a free connection (then 503, not a hang).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per process.
const MAX_CONNECTIONS: u32 = 8;

pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// Connects to the database the URL names and applies the migrations.
    pub async fn open(url: &SecretString) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url.expose_secret())?.application_name("visage");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl Database for Postgres {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// Not done here: a PostgreSQL database is backed up by its own tools.
    async fn backup(&self, _dest: &Path) -> StoreResult<()> {
        Err(StoreError::Unsupported(
            "`visage backup` copies a SQLite store; back up a PostgreSQL store with its own tools: \
             `pg_dump --format=custom --file=visage.dump \"$VISAGE_DB\"` (restore with pg_restore), \
             or continuous archiving with point-in-time recovery"
                .into(),
        ))
    }

    /// Reads every row of every table (a damaged page or row fails the
    /// read) and checks what the constraints cannot: each embedding's
    /// length agrees with the model's other embeddings.
    async fn integrity_check(&self) -> StoreResult<String> {
        // Every column of every row, detoasted: a damaged page or value fails the read.
        let (persons, faces, keys, audit): (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT sum(octet_length(t::text)) FROM persons t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM faces t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM api_keys t)::bigint, \
             (SELECT sum(octet_length(t::text)) FROM audit t)::bigint",
        )
        .fetch_one(&self.pool)
        .await?;
        let mixed: Vec<String> = sqlx::query_scalar(
            "SELECT model FROM faces GROUP BY model HAVING min(octet_length(embedding)) <> max(octet_length(embedding))",
        )
        .fetch_all(&self.pool)
        .await?;
        tracing::debug!(?persons, ?faces, ?keys, ?audit, "integrity check read every row (bytes as text)");
        Ok(if mixed.is_empty() {
            "ok".to_string()
        } else {
            format!("embeddings of different lengths under one model: {}", mixed.join(", "))
        })
    }

    async fn create_person(&self, person: &Person, actor: &str) -> StoreResult<()> {
        persons::create(&self.pool, person, actor).await
    }

    async fn get_person(&self, id: &str) -> StoreResult<Option<Person>> {
        persons::get(&self.pool, id).await
    }

    async fn find_person_by_name(&self, name: &str) -> StoreResult<Option<Person>> {
        persons::find_by_name(&self.pool, name).await
    }

    async fn list_persons(&self, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<Person>> {
        persons::list(&self.pool, limit, cursor).await
    }

    async fn person_names(&self, ids: &[&str]) -> StoreResult<HashMap<String, String>> {
        persons::names(&self.pool, ids).await
    }

    async fn update_person(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Option<&serde_json::Value>>,
        actor: &str,
    ) -> StoreResult<Option<Person>> {
        persons::update(&self.pool, id, name, metadata, actor).await
    }

    async fn delete_person(&self, id: &str, actor: &str) -> StoreResult<bool> {
        persons::delete(&self.pool, id, actor).await
    }

    async fn add_face(&self, person_id: &str, face: &NewFace<'_>, actor: &str) -> StoreResult<FaceRecord> {
        faces::add(&self.pool, person_id, face, actor).await
    }

    async fn create_person_with_face(
        &self,
        person: &Person,
        face: &NewFace<'_>,
        actor: &str,
    ) -> StoreResult<FaceRecord> {
        faces::create_person_with(&self.pool, person, face, actor).await
    }

    async fn list_faces(&self, person_id: &str) -> StoreResult<Vec<FaceRecord>> {
        faces::list(&self.pool, person_id).await
    }

    async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool> {
        faces::delete(&self.pool, person_id, face_id, actor).await
    }

    fn embeddings(&self) -> BoxStream<'_, StoreResult<StoredEmbedding>> {
        faces::embeddings(&self.pool)
    }

    async fn has_face_from(&self, person_id: &str, source_sha256: &str) -> StoreResult<bool> {
        transfer::has_face_from(&self.pool, person_id, source_sha256).await
    }

    async fn faces_not_of_model(&self, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
        transfer::faces_not_of_model(&self.pool, model).await
    }

    async fn replace_embedding(&self, face: &FaceRecord, embedding: &[f32], actor: &str) -> StoreResult<bool> {
        transfer::replace_embedding(&self.pool, face, embedding, actor).await
    }

    async fn bulk_enroll(&self, items: &[(String, Vec<f32>)], model: &str) -> StoreResult<Vec<String>> {
        faces::bulk_enroll(&self.pool, items, model).await
    }

    async fn export_faces(&self, person_id: &str) -> StoreResult<Vec<FaceExport>> {
        transfer::export_faces(&self.pool, person_id).await
    }

    async fn import_person(&self, person: &Person, faces: &[FaceExport], actor: &str) -> StoreResult<bool> {
        transfer::import_person(&self.pool, person, faces, actor).await
    }

    async fn insert_key(&self, key: &ApiKey, secret_sha256: &[u8; 32], actor: &str) -> StoreResult<()> {
        keys::insert(&self.pool, key, secret_sha256, actor).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        keys::list(&self.pool).await
    }

    async fn revoke_key(&self, id: &str, actor: &str) -> StoreResult<bool> {
        keys::revoke(&self.pool, id, actor).await
    }

    async fn active_keys(&self) -> StoreResult<i64> {
        keys::active(&self.pool).await
    }

    async fn valid_key(&self, id: &str) -> StoreResult<Option<(ApiKey, Vec<u8>)>> {
        keys::valid(&self.pool, id).await
    }

    async fn valid_keys(&self) -> StoreResult<Vec<(ApiKey, Vec<u8>)>> {
        keys::all_valid(&self.pool).await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn change_horizon(&self) -> StoreResult<ChangePos> {
        changes::horizon(&self.pool).await
    }

    async fn changes_after(&self, after: ChangePos, limit: u32) -> StoreResult<Vec<Change>> {
        changes::after(&self.pool, after, limit).await
    }

    async fn change_signals(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<()>>>> {
        Ok(Some(changes::signals(&self.pool).await?))
    }

    async fn embeddings_of(&self, face_ids: &[&str], person_ids: &[&str]) -> StoreResult<Vec<StoredEmbedding>> {
        changes::embeddings_of(&self.pool, face_ids, person_ids).await
    }

    async fn audit_log(&self, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        audit::log(&self.pool, limit, before).await
    }
}
