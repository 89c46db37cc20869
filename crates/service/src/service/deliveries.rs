//! Delivering the outbox to webhooks: at least once, in order per webhook.
//! Each webhook has its own task, so a slow, hanging or failing receiver
//! holds up only its own deliveries, never a request nor another webhook.
//! A task takes the next event its webhook wants after its place in the
//! outbox, sends it (signed anew), and writes the attempt with the
//! webhook's new place together: delivered or given up, it moves on;
//! otherwise it waits (exponential backoff with jitter) and tries again.
//! Everything it needs is in the store, so after a restart pending
//! deliveries resume at once.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::domain::{ChangePos, Delivery, Outcome, StoredEvent, Webhook, new_id, now};
use crate::events::{Secret, Sender, SenderOptions, next_try};
use crate::store::{Store, StoreResult};

/// Events read from the outbox at once, per webhook.
const READ_AHEAD: u32 = 100;
/// How often webhooks are looked for pending events without a signal (for
/// events other processes write).
const LOOK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// How long an event is tried before it is marked failed.
    pub retry_for: Duration,
    pub sender: SenderOptions,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { retry_for: Duration::from_secs(24 * 3600), sender: SenderOptions::default() }
    }
}

pub struct Deliverer {
    store: Store,
    sender: Sender,
    config: DeliveryConfig,
    /// Woken when this process writes events.
    wake: Notify,
    running: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// What one step of a webhook's task did.
enum Step {
    /// Sent one event (delivered, retrying or failed): go on.
    Sent,
    /// Wait this long before the next attempt.
    Wait(Duration),
    /// Nothing pending (or the webhook is paused or gone): stop.
    Idle,
}

impl Deliverer {
    pub fn new(store: Store, config: DeliveryConfig) -> Result<Arc<Self>, reqwest::Error> {
        let sender = Sender::new(&config.sender)?;
        Ok(Arc::new(Deliverer { store, sender, config, wake: Notify::new(), running: Mutex::new(HashMap::new()) }))
    }

    /// Tells the deliverer that events were written.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Starts a task for every webhook without one, each time events may
    /// have been written, until the process stops.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.start_tasks().await {
                tracing::warn!(error = %e, "webhooks: could not read the webhooks");
            }
            let _ = tokio::time::timeout(LOOK_EVERY, self.wake.notified()).await;
        }
    }

    async fn start_tasks(self: &Arc<Self>) -> StoreResult<()> {
        let hooks = self.store.list_webhooks().await?;
        let mut running = self.running.lock();
        running.retain(|_, task| !task.is_finished());
        for hook in hooks.into_iter().filter(|h| !h.paused) {
            if !running.contains_key(&hook.id) {
                let me = self.clone();
                let id = hook.id.clone();
                running.insert(hook.id, tokio::spawn(async move { me.serve(&id).await }));
            }
        }
        Ok(())
    }

    /// One webhook's task: sends until nothing is pending.
    async fn serve(&self, id: &str) {
        loop {
            match self.step(id).await {
                Ok(Step::Sent) => {}
                Ok(Step::Wait(d)) => tokio::time::sleep(d).await,
                Ok(Step::Idle) => return,
                Err(e) => {
                    tracing::warn!(webhook = id, error = %e, "webhooks: the store failed; trying again");
                    tokio::time::sleep(LOOK_EVERY).await;
                }
            }
        }
    }

    async fn step(&self, id: &str) -> StoreResult<Step> {
        let (Some(hook), Some(place)) = (self.store.get_webhook(id).await?, self.store.webhook_place(id).await?) else {
            return Ok(Step::Idle);
        };
        if hook.paused {
            return Ok(Step::Idle);
        }
        if let Some(wait) = place.next_at.as_deref().and_then(until) {
            return Ok(Step::Wait(wait));
        }
        let Some(event) = self.next_wanted(&hook, place.after).await? else { return Ok(Step::Idle) };
        let secret = match self.store.webhook_secret(id).await?.as_deref().map(Secret::parse) {
            Some(Ok(s)) => s,
            _ => {
                tracing::error!(webhook = id, "webhooks: the stored secret is unreadable; the webhook is skipped");
                return Ok(Step::Idle);
            }
        };
        self.send(&hook, &secret, &event, place.failures + 1).await?;
        Ok(Step::Sent)
    }

    /// The next event after `after` that `hook` wants; the ones before it
    /// that it does not want are passed.
    async fn next_wanted(&self, hook: &Webhook, mut after: ChangePos) -> StoreResult<Option<StoredEvent>> {
        loop {
            let events = self.store.events_after(after, READ_AHEAD).await?;
            let Some(last) = events.last().map(|e| e.pos) else { return Ok(None) };
            let mut passed = None;
            for e in events {
                if hook.wants(&e.kind) {
                    if let Some(p) = passed {
                        self.store.skip_events(&hook.id, p).await?;
                    }
                    return Ok(Some(e));
                }
                passed = Some(e.pos);
            }
            self.store.skip_events(&hook.id, last).await?;
            after = last;
        }
    }

    async fn send(&self, hook: &Webhook, secret: &Secret, e: &StoredEvent, attempt: u32) -> StoreResult<()> {
        let body = serde_json::json!({"type": e.kind, "timestamp": e.at, "data": e.data}).to_string();
        let sent_at = OffsetDateTime::now_utc();
        let a = self.sender.send(&hook.url, secret, &e.id, sent_at.unix_timestamp(), body.as_bytes()).await;
        let age = parse(&e.at).map(|t| (sent_at - t).unsigned_abs()).unwrap_or_default();
        let (outcome, next_at) = if a.delivered() {
            (Outcome::Delivered, None)
        } else {
            match next_try(attempt, age, self.config.retry_for, jitter()) {
                Some(wait) => (Outcome::Retrying, Some(sent_at + wait)),
                None => (Outcome::Failed, None),
            }
        };
        let record = Delivery {
            id: new_id(),
            webhook_id: hook.id.clone(),
            event_seq: e.pos.seq,
            attempt,
            at: now(),
            status: a.status,
            error: a.error,
            outcome,
            millis: a.millis,
        };
        if outcome == Outcome::Failed {
            tracing::warn!(webhook = hook.id, event = e.id, attempts = attempt, "webhooks: delivery given up");
        }
        let next_at = next_at.and_then(|t| t.format(&Rfc3339).ok());
        self.store.record_delivery(&record, e.pos, next_at.as_deref()).await?;
        metrics::counter!("visage_webhook_deliveries_total", "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!("visage_webhook_delivery_seconds").record(record.millis as f64 / 1000.0);
        Ok(())
    }
}

/// A number in [0, 1), different for every process and attempt.
fn jitter() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

fn parse(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339).ok()
}

/// How long until `t`, when it is in the future.
fn until(t: &str) -> Option<Duration> {
    let left = parse(t)? - OffsetDateTime::now_utc();
    left.is_positive().then(|| left.unsigned_abs())
}
