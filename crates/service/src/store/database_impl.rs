//! The `Database` methods both implementations forward, unchanged, to their
//! per-table modules (`persons`, `faces`, `unassigned`, `transfer`, `embedder_switch`, `keys`, `data_keys`, `webhooks`, `outbox`,
//! `changes`, `audit`, each with the same functions over its own pool). An
//! implementation writes `database_impl!(Type { its own methods })`: the
//! methods that differ (opening, health, backup, following, and SQLite's
//! purge of the write-ahead log after deletions, pruning included) are its own; the rest are
//! generated here, so the two cannot drift apart.
macro_rules! database_impl {
    ($ty:ty { $($own:item)* }) => {
        #[async_trait::async_trait]
        impl Database for $ty {
            $($own)*

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

            async fn add_face(&self, person_id: &str, face: &NewFace<'_>, actor: &str) -> StoreResult<FaceRecord> {
                faces::add(&self.pool, &self.keys, person_id, face, actor).await
            }

            async fn create_person_with_face(
                &self,
                person: &Person,
                face: &NewFace<'_>,
                actor: &str,
            ) -> StoreResult<FaceRecord> {
                faces::create_person_with(&self.pool, &self.keys, person, face, actor).await
            }

            async fn list_faces(&self, person_id: &str) -> StoreResult<Vec<FaceRecord>> {
                faces::list(&self.pool, person_id).await
            }

            fn embeddings(&self, model: &str) -> BoxStream<'_, StoreResult<StoredEmbedding>> {
                faces::embeddings(&self.pool, &self.keys, model)
            }

            fn face_records(&self) -> BoxStream<'_, StoreResult<FaceRecord>> {
                faces::face_records(&self.pool)
            }

            async fn face_crop(&self, face_id: &str) -> StoreResult<Option<$crate::store::Crop>> {
                faces::face_crop(&self.pool, &self.keys, face_id).await
            }

            async fn has_face_from(&self, person_id: &str, source_sha256: &str) -> StoreResult<bool> {
                transfer::has_face_from(&self.pool, person_id, source_sha256).await
            }

            async fn faces_lacking(&self, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>> {
                transfer::faces_lacking(&self.pool, model).await
            }

            async fn get_face(&self, face_id: &str) -> StoreResult<Option<FaceRecord>> {
                unassigned::get(&self.pool, face_id).await
            }

            async fn keep_faces(
                &self,
                faces: &[(NewFace<'_>, String)],
                regroups: &[Regroup],
                actor: &str,
            ) -> StoreResult<Vec<FaceRecord>> {
                unassigned::keep(&self.pool, &self.keys, faces, regroups, actor).await
            }

            async fn has_external_id(&self, external_id: &str) -> StoreResult<bool> {
                unassigned::has_external_id(&self.pool, external_id).await
            }

            async fn list_unassigned(&self, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<FaceRecord>> {
                unassigned::list(&self.pool, limit, cursor).await
            }

            async fn move_face(
                &self,
                face_id: &str,
                to: $crate::store::Owner<'_>,
                actor: &str,
            ) -> StoreResult<Option<FaceRecord>> {
                unassigned::move_face(&self.pool, face_id, to, actor).await
            }

            async fn assign_cluster(
                &self,
                cluster_id: &str,
                to: $crate::store::AssignTo<'_>,
                actor: &str,
            ) -> StoreResult<Vec<String>> {
                unassigned::assign(&self.pool, cluster_id, to, actor).await
            }

            fn unassigned_embeddings(&self, model: &str) -> BoxStream<'_, StoreResult<$crate::store::UnassignedEmbedding>> {
                unassigned::embeddings(&self.pool, &self.keys, model)
            }

            async fn unassigned_of(
                &self,
                face_ids: &[&str],
                model: &str,
            ) -> StoreResult<Vec<$crate::store::UnassignedEmbedding>> {
                unassigned::embeddings_of(&self.pool, &self.keys, face_ids, model).await
            }

            async fn put_embedding(&self, face_id: &str, model: &str, embedding: &[f32], actor: &str) -> StoreResult<bool> {
                embedder_switch::put(&self.pool, &self.keys, face_id, model, embedding, actor).await
            }

            async fn switch_model(&self, model: &str, force: bool, actor: &str) -> StoreResult<$crate::store::Switched> {
                embedder_switch::switch(&self.pool, model, force, actor).await
            }

            async fn model_counts(&self) -> StoreResult<Vec<$crate::store::ModelCount>> {
                embedder_switch::counts(&self.pool).await
            }

            async fn bulk_enroll(&self, items: &[(String, Vec<f32>)], model: &str) -> StoreResult<Vec<String>> {
                faces::bulk_enroll(&self.pool, &self.keys, items, model).await
            }

            async fn data_keys(&self) -> StoreResult<Vec<$crate::store::DataKeyRecord>> {
                data_keys::list(&self.pool).await
            }

            async fn add_data_key(&self, id: &str, check_value: &[u8], actor: &str) -> StoreResult<()> {
                data_keys::add(&self.pool, id, check_value, actor).await
            }

            async fn retire_data_keys(&self, keep: &str, actor: &str) -> StoreResult<u64> {
                data_keys::retire_others(&self.pool, keep, actor).await
            }

            async fn values_not_sealed_by(
                &self,
                column: $crate::store::SealedColumn,
                prefix: &[u8],
                after: Option<(&str, &str)>,
                limit: u32,
            ) -> StoreResult<Vec<$crate::store::StoredValue>> {
                data_keys::values_not_sealed_by(&self.pool, column, prefix, after, limit).await
            }

            async fn export_faces(&self, person_id: &str) -> StoreResult<Vec<FaceExport>> {
                transfer::export_faces(&self.pool, &self.keys, person_id).await
            }

            async fn import_person(&self, person: &Person, faces: &[FaceExport], actor: &str) -> StoreResult<bool> {
                transfer::import_person(&self.pool, &self.keys, person, faces, actor).await
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

            async fn create_webhook(&self, w: &Webhook, secret: &str, actor: &str) -> StoreResult<()> {
                webhooks::insert(&self.pool, w, secret, actor).await
            }

            async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
                webhooks::list(&self.pool).await
            }

            async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
                webhooks::get(&self.pool, id).await
            }

            async fn update_webhook(
                &self,
                id: &str,
                change: &WebhookChange,
                actor: &str,
            ) -> StoreResult<Option<Webhook>> {
                webhooks::update(&self.pool, id, change, actor).await
            }

            async fn delete_webhook(&self, id: &str, actor: &str) -> StoreResult<bool> {
                webhooks::delete(&self.pool, id, actor).await
            }

            async fn webhook_secret(&self, id: &str) -> StoreResult<Option<String>> {
                webhooks::secret(&self.pool, id).await
            }

            async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
                outbox::append(&self.pool, events).await
            }

            async fn events_after(&self, after: ChangePos, limit: u32) -> StoreResult<Vec<StoredEvent>> {
                outbox::after(&self.pool, after, limit).await
            }

            async fn webhook_place(&self, webhook_id: &str) -> StoreResult<Option<WebhookPlace>> {
                outbox::place(&self.pool, webhook_id).await
            }

            async fn skip_events(&self, webhook_id: &str, to: ChangePos) -> StoreResult<()> {
                outbox::skip(&self.pool, webhook_id, to).await
            }

            async fn record_delivery(&self, d: &Delivery, event: ChangePos, next_at: Option<&str>) -> StoreResult<bool> {
                outbox::record(&self.pool, d, event, next_at).await
            }

            async fn deliveries(
                &self,
                webhook_id: &str,
                limit: u32,
                before: Option<i64>,
            ) -> StoreResult<Vec<(i64, Delivery)>> {
                outbox::deliveries(&self.pool, webhook_id, limit, before).await
            }

            async fn get_delivery(&self, webhook_id: &str, id: &str) -> StoreResult<Option<Delivery>> {
                outbox::get_delivery(&self.pool, webhook_id, id).await
            }

            async fn log_delivery(&self, d: &Delivery) -> StoreResult<()> {
                outbox::log_delivery(&self.pool, d).await
            }

            async fn event(&self, seq: i64) -> StoreResult<Option<StoredEvent>> {
                outbox::event(&self.pool, seq).await
            }

            async fn lease_webhook(&self, id: &str, owner: &str, now: &str, until: &str) -> StoreResult<bool> {
                outbox::lease(&self.pool, id, owner, now, until).await
            }

            async fn pending_events(&self) -> StoreResult<Vec<(String, i64)>> {
                outbox::pending(&self.pool).await
            }

            async fn prune_events(&self, before: &str) -> StoreResult<u64> {
                outbox::prune(&self.pool, before).await
            }

            async fn change_horizon(&self) -> StoreResult<ChangePos> {
                changes::horizon(&self.pool).await
            }

            async fn changes_after(&self, after: ChangePos, limit: u32) -> StoreResult<Vec<Change>> {
                changes::after(&self.pool, after, limit).await
            }

            async fn embeddings_of(
                &self,
                face_ids: &[&str],
                person_ids: &[&str],
                model: &str,
            ) -> StoreResult<Vec<StoredEmbedding>> {
                changes::embeddings_of(&self.pool, &self.keys, face_ids, person_ids, model).await
            }

            async fn audit_log(&self, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
                audit::log(&self.pool, limit, before).await
            }
        }
    };
}

pub(super) use database_impl;
