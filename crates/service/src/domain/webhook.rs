//! A webhook as stored: where events go, which ones, and whether paused.
//! Its signing secret is kept apart: shown once, never listed.

/// The event list that means every event.
pub const ALL_EVENTS: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
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
