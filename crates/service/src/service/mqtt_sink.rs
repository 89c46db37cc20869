//! The MQTT publisher as a reader of the outbox: it keeps its place there
//! as a webhook does (a row of the webhooks table whose URL is the broker's,
//! never listed by the API), so the deliverer sends it every event in order,
//! retries it with the same backoff while the broker is down, and, among
//! replicas, lets one process at a time publish. At start it announces
//! every enrolled person to Home Assistant.
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::domain::{StoredEvent, Webhook, now};
use crate::events::home_assistant::{messages, person_sensors};
use crate::events::{Attempt, MqttConfig, MqttError, Publisher};
use crate::store::{Store, StoreResult};

/// How long to wait before announcing persons again, when the broker is down.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(30);

pub struct MqttSink {
    publisher: Publisher,
    /// Its row in the webhooks table: one per broker and prefix.
    pub id: String,
}

/// Whether a row of the webhooks table is an MQTT publisher's place.
pub fn is_sink(hook: &Webhook) -> bool {
    hook.url.starts_with("mqtt://") || hook.url.starts_with("mqtts://")
}

impl MqttSink {
    pub fn new(config: MqttConfig) -> Result<Self, MqttError> {
        let digest = sha2::Sha256::digest(format!("{} {}", config.url, config.prefix).as_bytes());
        let id = hex::encode(&digest[..16]);
        Ok(MqttSink { publisher: Publisher::new(config)?, id })
    }

    fn row(&self) -> Webhook {
        let c = self.publisher.config();
        Webhook {
            id: self.id.clone(),
            url: format!("{}/{}", c.url.trim_end_matches('/'), c.prefix),
            events: vec![crate::domain::ALL_EVENTS.into()],
            paused: false,
            created_at: now(),
        }
    }

    /// Makes its place in the outbox (from now on) unless it has one, and
    /// drops the places of brokers no longer configured (they would keep
    /// old events from being deleted).
    pub async fn ensure(&self, store: &Store) -> StoreResult<()> {
        for old in store.list_webhooks().await?.into_iter().filter(|h| is_sink(h) && h.id != self.id) {
            store.delete_webhook(&old.id, "mqtt").await?;
        }
        if store.get_webhook(&self.id).await?.is_none() {
            store.create_webhook(&self.row(), "", "mqtt").await?;
        }
        Ok(())
    }

    /// Publishes everything an event tells; an attempt as a webhook's is recorded.
    pub async fn publish(&self, e: &StoredEvent) -> Attempt {
        let start = Instant::now();
        let mut error = None;
        for m in messages(self.publisher.config(), &e.id, &e.kind, &e.at, &e.data) {
            if let Err(err) = self.publisher.publish(&m.topic, m.payload, m.retain).await {
                error = Some(err);
                break;
            }
        }
        Attempt { status: None, error, millis: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) }
    }

    /// Announces every enrolled person to Home Assistant (retained), until
    /// it succeeds once.
    pub async fn announce(&self, store: &Store) {
        if self.publisher.config().discovery_prefix.is_none() {
            return;
        }
        loop {
            match self.announce_once(store).await {
                Ok(n) => return tracing::info!(persons = n, "mqtt: persons announced to Home Assistant"),
                Err(e) => tracing::warn!(error = %e, "mqtt: announcing persons failed; trying again"),
            }
            tokio::time::sleep(ANNOUNCE_RETRY).await;
        }
    }

    async fn announce_once(&self, store: &Store) -> Result<usize, String> {
        let mut cursor: Option<String> = None;
        let mut n = 0;
        loop {
            let page = store.list_persons(500, cursor.as_deref()).await.map_err(|e| e.to_string())?;
            let Some(last) = page.last().map(|p| p.id.clone()) else { return Ok(n) };
            for p in &page {
                for m in person_sensors(self.publisher.config(), &p.id, &p.name) {
                    self.publisher.publish(&m.topic, m.payload, m.retain).await?;
                }
                n += 1;
            }
            cursor = Some(last);
        }
    }
}
