//! Webhooks as the API manages them: a checked target and event list, a
//! secret generated (and shown once) when none is given, the attempts made,
//! and a retry asked for.
use super::Service;
use super::error::{Error, Result};
use super::mqtt_sink::is_sink;
use crate::domain::{ALL_EVENTS, Delivery, EventKind, Webhook, WebhookChange, new_id, now};
use crate::events::{Secret, check_url};

/// Event types a webhook may list at most (every type, and `*`).
const MOST_EVENTS: usize = EventKind::ALL.len() + 1;

/// A webhook to create, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_` + base64; generated when None.
    pub secret: Option<String>,
    pub paused: bool,
}

/// A new webhook with its secret when the service generated it (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: Option<String>,
}

impl Service {
    pub async fn create_webhook(&self, new: NewWebhook, actor: &str) -> Result<CreatedWebhook> {
        self.writable()?;
        let url = self.check_target(&new.url)?;
        let events = check_events(new.events)?;
        let (secret, shown) = match new.secret {
            Some(given) => {
                Secret::parse(&given).map_err(|e| Error::param("secret", e.to_string()))?;
                (given, None)
            }
            None => {
                let s = Secret::generate().map_err(|e| Error::Internal(anyhow::anyhow!("no random secret: {e}")))?;
                (s.expose(), Some(s.expose()))
            }
        };
        let webhook = Webhook { id: new_id(), url, events, paused: new.paused, created_at: now() };
        self.store.create_webhook(&webhook, &secret, actor).await?;
        self.events.wrote();
        Ok(CreatedWebhook { webhook, secret: shown })
    }

    /// Every webhook (not the MQTT publisher's place in the outbox).
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.store.list_webhooks().await?.into_iter().filter(|h| !is_sink(h)).collect())
    }

    pub async fn get_webhook(&self, id: &str) -> Result<Webhook> {
        let found = self.store.get_webhook(id).await?.filter(|h| !is_sink(h));
        found.ok_or_else(|| Error::WebhookNotFound(short(id)))
    }

    /// Changes the target, the events or whether it is paused (a paused
    /// webhook keeps its place: resumed, it receives what happened meanwhile).
    pub async fn update_webhook(&self, id: &str, change: WebhookChange, actor: &str) -> Result<Webhook> {
        self.writable()?;
        self.get_webhook(id).await?;
        let change = WebhookChange {
            url: change.url.map(|u| self.check_target(&u)).transpose()?,
            events: change.events.map(check_events).transpose()?,
            paused: change.paused,
        };
        let updated = self.store.update_webhook(id, &change, actor).await?;
        let updated = updated.ok_or_else(|| Error::WebhookNotFound(short(id)))?;
        self.events.wrote();
        Ok(updated)
    }

    pub async fn delete_webhook(&self, id: &str, actor: &str) -> Result<()> {
        self.writable()?;
        self.get_webhook(id).await?;
        match self.store.delete_webhook(id, actor).await? {
            true => Ok(()),
            false => Err(Error::WebhookNotFound(short(id))),
        }
    }

    /// A webhook's attempts, newest first, each with its sequence number.
    pub async fn webhook_deliveries(&self, id: &str, limit: u32, before: Option<i64>) -> Result<Vec<(i64, Delivery)>> {
        self.get_webhook(id).await?;
        Ok(self.store.deliveries(id, limit, before).await?)
    }

    /// Sends an attempt's event again now; the new attempt.
    pub async fn retry_delivery(&self, webhook_id: &str, delivery_id: &str) -> Result<Delivery> {
        self.writable()?;
        let hook = self.get_webhook(webhook_id).await?;
        let earlier = self
            .store
            .get_delivery(webhook_id, delivery_id)
            .await?
            .ok_or_else(|| Error::DeliveryNotFound { webhook: short(webhook_id), delivery: short(delivery_id) })?;
        let event = self.store.event(earlier.event_seq).await?.ok_or_else(|| Error::EventGone(short(delivery_id)))?;
        Ok(self.deliverer.send_again(&hook, &event).await?)
    }

    fn check_target(&self, url: &str) -> Result<String> {
        let allow_private = self.config.webhooks.sender.allow_private;
        Ok(check_url(url, allow_private).map_err(|e| Error::param("url", e.to_string()))?.to_string())
    }
}

/// The event types, each known, none twice, in the order given.
fn check_events(events: Vec<String>) -> Result<Vec<String>> {
    if events.is_empty() {
        return Err(Error::param("events", "list at least one event type, or \"*\" for all"));
    }
    if events.len() > MOST_EVENTS {
        return Err(Error::param("events", format!("at most {MOST_EVENTS} event types")));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if e != ALL_EVENTS && EventKind::parse(&e).is_none() {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
            let shown: String = e.chars().take(64).collect();
            return Err(Error::param("events", format!("unknown event type {shown:?}; known: {}", known.join(", "))));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// An id from a request, cut short for a message.
fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_are_checked() {
        let ok = check_events(vec!["person.created".into(), "*".into(), "person.created".into()]).unwrap();
        assert_eq!(ok, ["person.created", "*"]);
        assert!(check_events(Vec::new()).is_err());
        let e = check_events(vec!["person.exploded".into()]).unwrap_err();
        assert!(e.to_string().contains("person.exploded") && e.to_string().contains("identify.unknown"), "{e}");
        assert!(check_events(vec!["*".into(); MOST_EVENTS + 1]).is_err());
    }
}
