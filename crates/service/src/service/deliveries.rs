//! Delivering the outbox to webhooks: at least once, in order per webhook.
//! Each webhook has its own task, so a slow, hanging or failing receiver
//! holds up only its own deliveries, never a request nor another webhook.
//! A task takes the next event its webhook wants after its place in the
//! outbox, sends it (signed anew), and writes the attempt with the
//! webhook's new place together: delivered or given up, it moves on;
//! otherwise it waits (exponential backoff with jitter) and tries again.
//! Everything it needs is in the store, so after a restart pending
//! deliveries resume at once (a process's first attempt for a webhook does
//! not wait out the backoff an earlier process set). Among replicas sharing a database, a webhook
//! (PostgreSQL) is served by one process at a time: the one holding its
//! lease, renewed before attempts; when that process dies, another takes
//! the webhook over once the lease runs out ([`LEASE`]).
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::mqtt_sink::{MqttSink, is_sink};
use crate::domain::{ChangePos, Delivery, Outcome, StoredEvent, Webhook, new_id, now};
use crate::events::{Attempt, MqttConfig, Secret, Sender, SenderOptions, next_try};
use crate::store::{Store, StoreResult};

/// Events read from the outbox at once, per webhook.
const READ_AHEAD: u32 = 100;
/// How often webhooks are looked for pending events without a signal (for
/// events other processes write).
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a process keeps the right to deliver to a webhook without
/// renewing it (longer than an attempt's timeout, so that no two processes
/// ever send at once).
pub const LEASE: Duration = Duration::from_secs(30);
/// The longest a task sleeps before looking again (a webhook paused,
/// resumed, deleted or retried meanwhile is seen within this).
const NAP: Duration = Duration::from_secs(5);
/// Events are kept this long after every webhook has passed them (for
/// retries asked for), then deleted with their attempts.
pub const KEEP_EVENTS: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often old events are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the pending deliveries are counted (`visage_webhook_pending`).
const COUNT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// How long an event is tried before it is marked failed.
    pub retry_for: Duration,
    pub sender: SenderOptions,
    /// Where events are published over MQTT too (`--mqtt-url`).
    pub mqtt: Option<MqttConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { retry_for: Duration::from_secs(24 * 3600), sender: SenderOptions::default(), mqtt: None }
    }
}

/// Why the deliverer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DelivererError {
    #[error("the webhook client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Mqtt(#[from] crate::events::MqttError),
}

pub struct Deliverer {
    store: Store,
    sender: Sender,
    config: DeliveryConfig,
    /// Woken when this process writes events.
    wake: Arc<Notify>,
    /// The MQTT publisher, when configured: a reader of the outbox as a webhook is.
    mqtt: Option<MqttSink>,
    /// This process, as a lease holder.
    owner: String,
    /// Webhooks this process has served: the first time, the backoff an
    /// earlier process set is not waited out.
    served: Mutex<std::collections::HashSet<String>>,
    running: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// What a webhook's task keeps between attempts.
#[derive(Default)]
struct Held {
    /// Events read ahead, in order (those the place has passed are dropped).
    ahead: VecDeque<StoredEvent>,
    /// Until when this process holds the webhook's lease.
    lease_until: Option<Instant>,
    /// The signing secret (it never changes).
    secret: Option<Secret>,
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
    pub fn new(store: Store, config: DeliveryConfig, wake: Arc<Notify>) -> Result<Arc<Self>, DelivererError> {
        let sender = Sender::new(&config.sender)?;
        let mqtt = config.mqtt.clone().map(MqttSink::new).transpose()?;
        let running = Mutex::new(HashMap::new());
        let served = Mutex::new(std::collections::HashSet::new());
        Ok(Arc::new(Deliverer { store, sender, config, wake, mqtt, owner: new_id(), running, served }))
    }

    /// Starts a task for every webhook without one, each time events may
    /// have been written, and deletes old events hourly, until aborted.
    pub async fn run(self: Arc<Self>) {
        tracing::info!(lease_owner = %self.owner, "webhooks: delivering");
        if let Some(sink) = &self.mqtt {
            while let Err(e) = sink.ensure(&self.store).await {
                tracing::warn!(error = %e, "mqtt: could not keep a place in the outbox; trying again");
                tokio::time::sleep(LOOK_EVERY * 5).await;
            }
            let me = self.clone();
            tokio::spawn(async move {
                if let Some(sink) = &me.mqtt {
                    sink.announce(&me.store).await;
                }
            });
        }
        let mut pruned = Instant::now() - PRUNE_EVERY;
        let mut counted = Instant::now() - COUNT_EVERY;
        loop {
            if counted.elapsed() >= COUNT_EVERY {
                counted = Instant::now();
                self.count_pending().await;
            }
            if let Err(e) = self.start_tasks().await {
                tracing::warn!(error = %e, "webhooks: could not read the webhooks");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                self.prune().await;
            }
            let _ = tokio::time::timeout(LOOK_EVERY, self.wake.notified()).await;
        }
    }

    /// Sets `visage_webhook_pending{webhook}`: the events each webhook (and
    /// the MQTT publisher) still has to receive.
    async fn count_pending(&self) {
        match self.store.pending_events().await {
            Ok(counts) => {
                for (id, n) in counts {
                    metrics::gauge!("visage_webhook_pending", "webhook" => id).set(n as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "webhooks: could not count pending deliveries"),
        }
    }

    async fn prune(&self) {
        let Some(before) = (OffsetDateTime::now_utc() - KEEP_EVENTS).format(&Rfc3339).ok() else { return };
        match self.store.prune_events(&before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "webhooks: events older than a week, delivered, deleted"),
            Err(e) => tracing::warn!(error = %e, "webhooks: could not delete old events"),
        }
    }

    /// Sends one event to a webhook now, out of turn (a retry asked for):
    /// the attempt is logged; the webhook's place does not move.
    pub async fn send_again(&self, hook: &Webhook, e: &StoredEvent) -> StoreResult<Delivery> {
        let secret = self.secret(&hook.id).await?;
        let sent_at = OffsetDateTime::now_utc();
        let a = self.sender.send(&hook.url, &secret, &e.id, sent_at.unix_timestamp(), &body(e)).await;
        let outcome = if a.delivered() { Outcome::Delivered } else { Outcome::Failed };
        let d = Delivery {
            id: new_id(),
            webhook_id: hook.id.clone(),
            event_seq: e.pos.seq,
            attempt: 1,
            at: now(),
            status: a.status,
            error: a.error,
            outcome,
            millis: a.millis,
        };
        self.store.log_delivery(&d).await?;
        metrics::counter!("visage_webhook_deliveries_total", "outcome" => outcome.as_str()).increment(1);
        Ok(d)
    }

    async fn secret(&self, id: &str) -> StoreResult<Secret> {
        match self.store.webhook_secret(id).await?.as_deref().map(Secret::parse) {
            Some(Ok(s)) => Ok(s),
            _ => Err(crate::store::StoreError::Corrupt(format!("webhook {id}: the stored secret is unreadable"))),
        }
    }

    /// Takes or renews the right to deliver to the webhook for [`LEASE`].
    async fn lease(&self, id: &str) -> StoreResult<bool> {
        let now = OffsetDateTime::now_utc();
        let (Ok(at), Ok(until)) = (now.format(&Rfc3339), (now + LEASE).format(&Rfc3339)) else { return Ok(false) };
        self.store.lease_webhook(id, &self.owner, &at, &until).await
    }

    async fn start_tasks(self: &Arc<Self>) -> StoreResult<()> {
        let hooks = self.store.list_webhooks().await?;
        let mut running = self.running.lock();
        running.retain(|_, task| !task.is_finished());
        let ours = |h: &Webhook| !is_sink(h) || self.mqtt.as_ref().is_some_and(|m| m.id == h.id);
        for hook in hooks.into_iter().filter(|h| !h.paused && ours(h)) {
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
        let mut held = Held::default();
        loop {
            match self.step(id, &mut held).await {
                Ok(Step::Sent) => {}
                Ok(Step::Wait(d)) => tokio::time::sleep(d.min(NAP)).await,
                Ok(Step::Idle) => return,
                Err(e) => {
                    tracing::warn!(webhook = id, error = %e, "webhooks: the store failed; trying again");
                    held = Held::default();
                    tokio::time::sleep(LOOK_EVERY).await;
                }
            }
        }
    }

    async fn step(&self, id: &str, held: &mut Held) -> StoreResult<Step> {
        let (Some(hook), Some(place)) = (self.store.get_webhook(id).await?, self.store.webhook_place(id).await?) else {
            return Ok(Step::Idle);
        };
        if hook.paused || !self.hold(id, held).await? {
            return Ok(Step::Idle);
        }
        let resumed = self.served.lock().insert(id.to_string());
        if let Some(wait) = place.next_at.as_deref().and_then(until).filter(|_| !resumed) {
            return Ok(Step::Wait(wait));
        }
        let Some(event) = self.next_wanted(&hook, place.after, &mut held.ahead).await? else { return Ok(Step::Idle) };
        if let Some(sink) = self.mqtt.as_ref().filter(|m| m.id == hook.id) {
            let attempt = sink.publish(&event).await;
            self.record(&hook, &event, place.failures + 1, attempt).await?;
            return Ok(Step::Sent);
        }
        if held.secret.is_none() {
            match self.secret(id).await {
                Ok(s) => held.secret = Some(s),
                Err(e) => {
                    tracing::error!(webhook = id, error = %e, "webhooks: the webhook is skipped");
                    return Ok(Step::Idle);
                }
            }
        }
        let Some(secret) = &held.secret else { return Ok(Step::Idle) };
        self.send(&hook, secret, &event, place.failures + 1).await?;
        Ok(Step::Sent)
    }

    /// Whether this process may deliver to the webhook for a while: the
    /// lease is renewed once half of it has run.
    async fn hold(&self, id: &str, held: &mut Held) -> StoreResult<bool> {
        if !self.store.shared() {
            return Ok(true); // one process: nobody to share with (and no dead holder to wait out)
        }
        let now = Instant::now();
        if held.lease_until.is_some_and(|t| t > now + LEASE / 2) {
            return Ok(true);
        }
        let held_now = self.lease(id).await?;
        held.lease_until = held_now.then_some(now + LEASE);
        Ok(held_now)
    }

    /// The next event after `after` that `hook` wants (from the events read
    /// ahead, else from the store); the ones before it that it does not
    /// want are passed.
    async fn next_wanted(
        &self,
        hook: &Webhook,
        mut after: ChangePos,
        ahead: &mut VecDeque<StoredEvent>,
    ) -> StoreResult<Option<StoredEvent>> {
        loop {
            while ahead.front().is_some_and(|e| e.pos <= after) {
                ahead.pop_front();
            }
            if ahead.is_empty() {
                ahead.extend(self.store.events_after(after, READ_AHEAD).await?);
            }
            let Some(last) = ahead.back().map(|e| e.pos) else { return Ok(None) };
            let mut passed = None;
            while let Some(e) = ahead.front() {
                if hook.wants(&e.kind) {
                    if let Some(p) = passed {
                        self.store.skip_events(&hook.id, p).await?;
                    }
                    return Ok(ahead.front().cloned());
                }
                passed = Some(e.pos);
                ahead.pop_front();
            }
            self.store.skip_events(&hook.id, last).await?;
            after = last;
        }
    }

    async fn send(&self, hook: &Webhook, secret: &Secret, e: &StoredEvent, attempt: u32) -> StoreResult<()> {
        let sent_at = OffsetDateTime::now_utc();
        let a = self.sender.send(&hook.url, secret, &e.id, sent_at.unix_timestamp(), &body(e)).await;
        self.record(hook, e, attempt, a).await
    }

    /// Records an attempt and moves the webhook on, or sets when it is tried again.
    async fn record(&self, hook: &Webhook, e: &StoredEvent, attempt: u32, a: Attempt) -> StoreResult<()> {
        let sent_at = OffsetDateTime::now_utc();
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

/// A delivery's body (Standard Webhooks): the event's type, time and data.
fn body(e: &StoredEvent) -> Vec<u8> {
    serde_json::json!({"type": e.kind, "timestamp": e.at, "data": e.data}).to_string().into_bytes()
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
