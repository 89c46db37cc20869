//! Webhooks and the events they receive, as stored: where events go, which
//! ones, and whether paused (the signing secret is kept apart: shown once,
//! never listed); the outbox of events; each delivery attempt.
use super::ChangePos;

/// The event list that means every event.
pub const ALL_EVENTS: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event types it receives (`*`: all).
    pub events: Vec<String>,
    pub paused: bool,
    pub created_at: String,
}

impl Webhook {
    /// Whether events of type `kind` go to it.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == ALL_EVENTS || e == kind)
    }
}

/// A change to a webhook: each field given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub paused: Option<bool>,
}

/// An event to write to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// A delivery's `webhook-id`: the same for every attempt and webhook.
    pub id: String,
    pub kind: String,
    pub at: String,
    pub data: serde_json::Value,
}

/// An event as written, with its place in the outbox: read in `pos` order,
/// an event never appears before one already read (as the change log is).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub pos: ChangePos,
    pub id: String,
    pub kind: String,
    pub at: String,
    pub data: serde_json::Value,
}

/// Where a webhook is in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPlace {
    /// Every event up to here is dealt with.
    pub after: ChangePos,
    /// Failed attempts of the next event it wants.
    pub failures: u32,
    /// When that event is tried again (None: at once).
    pub next_at: Option<String>,
}

/// How an attempt ended for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    /// Tried again later.
    Retrying,
    /// Given up: too old to try again.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Delivered, Outcome::Retrying, Outcome::Failed].into_iter().find(|o| o.as_str() == s)
    }
}

/// One attempt to deliver one event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event_seq: i64,
    /// 1 for the first attempt of the event.
    pub attempt: u32,
    pub at: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub outcome: Outcome,
    pub millis: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_wants_its_events_or_all() {
        let mut w = Webhook {
            id: "w".into(),
            url: "https://example.com".into(),
            events: vec!["person.created".into()],
            paused: false,
            created_at: String::new(),
        };
        assert!(w.wants("person.created") && !w.wants("person.deleted"));
        w.events = vec![ALL_EVENTS.into()];
        assert!(w.wants("person.deleted"));
    }
}
