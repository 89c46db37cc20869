//! The events the service writes itself (identify's, which change nothing
//! in the store), and where they wait while the database is down.
//!
//! An identify's events are written to the outbox before its answer is
//! sent. While the database cannot take them (a PostgreSQL that is down or
//! not answering within [`WRITE_WAIT`]; a local SQLite file is waited
//! for, as every write is), identify goes on answering and its
//! events wait here, in order, up to a bound; they are written when the
//! database is back. What overflows the bound is counted
//! (`visage_events_dropped_total`) and logged, never dropped silently.
//! Events of changes to the store are written by the store, in the
//! transaction of the change: they never wait here.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Identification, IdentifyStatus};
use crate::domain::{EventKind, FaceIdentified, MatchedPerson, NewEvent};
use crate::store::Store;

/// How long an identify waits for a shared database to take its events.
const WRITE_WAIT: Duration = Duration::from_secs(2);
/// How often waiting events are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Events written at once from the queue.
const BATCH: usize = 500;
/// Events that wait at most, by default.
pub const DEFAULT_QUEUE: usize = 100_000;

/// What a request says of itself, carried into its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTags {
    /// The caller's own id for the photo or the event (e.g. a camera's).
    pub external_id: Option<String>,
    /// Where the photo comes from (e.g. `front-door`).
    pub source: Option<String>,
}

pub struct EventLog {
    store: Store,
    /// Events waiting for the database, oldest first.
    waiting: Mutex<VecDeque<NewEvent>>,
    capacity: usize,
    /// Wakes the deliverer and MQTT when events are written.
    written: Arc<Notify>,
    /// Wakes the writer of waiting events.
    retry: Notify,
}

impl EventLog {
    pub fn new(store: Store, capacity: usize) -> Arc<Self> {
        Arc::new(EventLog {
            store,
            waiting: Mutex::new(VecDeque::new()),
            capacity,
            written: Arc::new(Notify::new()),
            retry: Notify::new(),
        })
    }

    /// Notified each time events are written.
    pub fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    /// Tells whoever delivers that the store wrote events.
    pub fn wrote(&self) {
        self.written.notify_waiters();
        self.written.notify_one();
    }

    /// Writes the events, or queues them (after any already waiting, so
    /// order is kept) when the database cannot take them now.
    pub async fn record(&self, events: Vec<NewEvent>, database_up: bool) {
        if events.is_empty() {
            return;
        }
        if database_up && self.waiting.lock().is_empty() {
            let wait = if self.store.shared() { WRITE_WAIT } else { Duration::MAX };
            match tokio::time::timeout(wait, self.store.append_events(&events)).await {
                Ok(Ok(_)) => return self.wrote(),
                Ok(Err(e)) => tracing::warn!(error = %e, "events: the database did not take them; they wait"),
                Err(_) => tracing::warn!("events: the database did not answer in time; they wait"),
            }
        }
        self.wait(events);
        self.retry.notify_one();
    }

    fn wait(&self, events: Vec<NewEvent>) {
        let mut waiting = self.waiting.lock();
        let room = self.capacity.saturating_sub(waiting.len());
        let over = events.len().saturating_sub(room);
        if over > 0 {
            metrics::counter!("visage_events_dropped_total").increment(over as u64);
            tracing::error!(
                dropped = over,
                waiting = waiting.len(),
                "events: the queue for a database that is down is full; events dropped"
            );
        }
        waiting.extend(events.into_iter().take(room));
        metrics::gauge!("visage_events_waiting").set(waiting.len() as f64);
    }

    /// How many events wait for the database.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Writes waiting events whenever there are some, until aborted.
    pub async fn write_waiting(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(RETRY_EVERY, self.retry.notified()).await;
            self.write_now().await;
        }
    }

    /// Writes what waits, as far as the database takes it; how many still wait.
    pub async fn write_now(&self) -> usize {
        while let Some(batch) = self.next_batch() {
            match self.store.append_events(&batch).await {
                Ok(_) => {
                    let mut waiting = self.waiting.lock();
                    let n = batch.len().min(waiting.len());
                    waiting.drain(..n);
                    metrics::gauge!("visage_events_waiting").set(waiting.len() as f64);
                    drop(waiting);
                    self.wrote();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "events: the database still does not take them");
                    break;
                }
            }
        }
        self.waiting()
    }

    fn next_batch(&self) -> Option<Vec<NewEvent>> {
        let waiting = self.waiting.lock();
        (!waiting.is_empty()).then(|| waiting.iter().take(BATCH).cloned().collect())
    }
}

/// An identify's events: one per face, of its status.
pub fn identify_events(answer: &Identification, tags: &RequestTags) -> Vec<NewEvent> {
    answer
        .faces
        .iter()
        .map(|f| {
            let kind = match f.status {
                IdentifyStatus::Identified => EventKind::IdentifyIdentified,
                IdentifyStatus::Unknown => EventKind::IdentifyUnknown,
                IdentifyStatus::Ambiguous => EventKind::IdentifyAmbiguous,
            };
            let person = |p: &super::IdentifiedPerson| MatchedPerson {
                person_id: p.person_id.clone(),
                name: p.name.clone(),
                similarity: p.similarity,
            };
            let shown = match f.status {
                IdentifyStatus::Ambiguous => {
                    f.candidates.iter().filter(|c| c.similarity >= answer.threshold).count().max(2)
                }
                _ => 1,
            };
            let data = FaceIdentified {
                bbox: f.face.detection.bbox,
                matched: f.matched.as_ref().map(person),
                candidates: f.candidates.iter().take(shown).map(person).collect(),
                remembered_face_id: f.remembered_face_id.clone(),
                external_id: tags.external_id.clone(),
                source: tags.source.clone(),
            };
            NewEvent::of(kind, &data)
        })
        .collect()
}
