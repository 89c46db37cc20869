//! `visage persons list|show|delete`.
use anyhow::Result;
use serde_json::json;

use super::ACTOR;
use crate::store::Store;

/// Every person (JSON lines, creation order).
pub async fn list(store: &Store, out: &mut impl std::io::Write) -> Result<usize> {
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let page = store.list_persons(1000, cursor.as_deref()).await?;
        for p in &page {
            writeln!(out, "{}", serde_json::to_string(p)?)?;
            n += 1;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => cursor = Some(last.id.clone()),
            _ => return Ok(n),
        }
    }
}

/// A person with their faces (no embeddings), or None.
pub async fn show(store: &Store, id: &str) -> Result<Option<serde_json::Value>> {
    let Some(person) = store.get_person(id).await? else { return Ok(None) };
    let faces = store.list_faces(id).await?;
    let mut v = serde_json::to_value(person)?;
    v["faces"] = json!(faces);
    Ok(Some(v))
}

/// Deletes a person and their faces (audited as `cli`). False when absent.
pub async fn delete(store: &Store, id: &str) -> Result<bool> {
    Ok(store.delete_person(id, ACTOR).await?)
}
