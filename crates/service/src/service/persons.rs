//! Persons: created, read, listed, renamed and deleted through the store;
//! a deletion reaches the gallery at once.
use super::Service;
use crate::service::error::{Error, Result};
use crate::store::{FaceRecord, Person};

impl Service {
    pub async fn create_person(&self, name: &str, metadata: Option<&serde_json::Value>, actor: &str) -> Result<Person> {
        self.writable()?;
        let person = Person::new(name, metadata);
        self.store.create_person(&person, actor).await?;
        Ok(person)
    }

    pub async fn get_person(&self, id: &str) -> Result<Person> {
        self.store.get_person(id).await?.ok_or_else(|| Error::PersonNotFound(id.into()))
    }

    pub async fn person_faces(&self, id: &str) -> Result<Vec<FaceRecord>> {
        Ok(self.store.list_faces(id).await?)
    }

    pub async fn list_persons(&self, limit: u32, cursor: Option<&str>) -> Result<Vec<Person>> {
        Ok(self.store.list_persons(limit, cursor).await?)
    }

    pub async fn update_person(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Option<&serde_json::Value>>,
        actor: &str,
    ) -> Result<Person> {
        self.writable()?;
        if let Some(f) = &self.follow {
            f.names.lock().remove(id);
        }
        self.store.update_person(id, name, metadata, actor).await?.ok_or_else(|| Error::PersonNotFound(id.into()))
    }

    /// Deletes the person and every face; the gallery forgets them at once.
    pub async fn delete_person(&self, id: &str, actor: &str) -> Result<()> {
        self.writable()?;
        let write = self.writes.clone().lock_owned().await;
        if !self.store.delete_person(id, actor).await? {
            return Err(Error::PersonNotFound(id.into()));
        }
        let id = id.to_string();
        self.change_gallery(write, move |g| g.remove_person(&id)).await?;
        Ok(())
    }
}
