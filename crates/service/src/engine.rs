//! The inference engine: a fixed pool of dedicated OS threads running the
//! face pipeline, fed by a bounded queue. It knows nothing of HTTP: a full
//! queue is reported as [`EngineError::Overloaded`] at once (the HTTP layer
//! turns it into 429), never a pile-up of waiting requests, and inference
//! never runs on the async runtime's threads.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::vision::Pipeline;

type Job<C> = Box<dyn FnOnce(&C) + Send>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("the inference queue is full")]
    Overloaded,
    #[error("the inference engine is stopped")]
    Stopped,
    #[error("the inference job panicked")]
    Panicked,
}

/// Worker threads that share one `C` (the face [`Pipeline`] in the service).
pub struct Engine<C: Send + Sync + 'static = Pipeline> {
    pipeline: Arc<C>,
    tx: Option<Sender<Job<C>>>,
    workers: Vec<JoinHandle<()>>,
    busy: Arc<AtomicUsize>,
    queue_capacity: usize,
}

impl<C: Send + Sync + 'static> Engine<C> {
    /// Starts `workers` threads behind a queue holding at most `queue` waiting jobs.
    pub fn start(pipeline: Arc<C>, workers: usize, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Job<C>>(queue);
        let busy = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let (rx, pipeline, busy) = (rx.clone(), pipeline.clone(), busy.clone());
            handles.push(std::thread::Builder::new().name(format!("visage-infer-{i}")).spawn(move || {
                while let Ok(job) = rx.recv() {
                    busy.fetch_add(1, Ordering::Relaxed);
                    job(&pipeline);
                    busy.fetch_sub(1, Ordering::Relaxed);
                }
            })?);
        }
        Ok(Self { pipeline, tx: Some(tx), workers: handles, busy, queue_capacity: queue })
    }

    pub fn pipeline(&self) -> &C {
        &self.pipeline
    }

    /// Runs `f` on an inference thread and waits for its result without
    /// blocking the async runtime. Fails at once when the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&C) -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        // The caller's span (the request's) goes with the job, so that what
        // the worker logs and times belongs to that request.
        let span = tracing::Span::current();
        let job: Job<C> = Box::new(move |p: &C| {
            let _entered = span.enter();
            let out = catch_unwind(AssertUnwindSafe(|| f(p)));
            let _ = done.send(out);
        });
        let tx = self.tx.as_ref().ok_or(EngineError::Stopped)?;
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                crate::telemetry::record_rejection();
                EngineError::Overloaded
            }
            TrySendError::Disconnected(_) => EngineError::Stopped,
        })?;
        match result.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(EngineError::Panicked),
            Err(_) => Err(EngineError::Stopped),
        }
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.len())
    }

    /// Jobs being run right now.
    pub fn running(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// Whether every worker thread is alive.
    pub fn healthy(&self) -> bool {
        self.tx.is_some() && self.workers.iter().all(|w| !w.is_finished())
    }
}

impl<C: Send + Sync + 'static> Drop for Engine<C> {
    /// Lets queued jobs finish, then joins the workers.
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use tracing::Instrument as _;

    #[tokio::test]
    async fn runs_jobs_off_the_runtime_and_reports_panics() {
        let engine = Engine::start(Arc::new(21), 2, 4).unwrap();
        let main = std::thread::current().id();
        let (v, thread) = engine.run(|x: &i32| (x * 2, std::thread::current().id())).await.unwrap();
        assert_eq!(v, 42);
        assert_ne!(thread, main);
        let r: Result<(), _> = engine.run(|_| panic!("boom")).await;
        assert_eq!(r, Err(EngineError::Panicked));
        // The worker survived the panic.
        assert_eq!(engine.run(|x| *x).await, Ok(21));
        assert!(engine.healthy());
    }

    #[tokio::test]
    async fn a_job_runs_inside_the_callers_span() {
        use tracing_subscriber::layer::SubscriberExt as _;
        // Records the name of every span entered, with the thread entering it.
        #[derive(Clone, Default)]
        struct Entered(Arc<parking_lot::Mutex<Vec<(String, String)>>>);
        impl<S> tracing_subscriber::Layer<S> for Entered
        where
            S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
        {
            fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
                let name = ctx.span(id).map(|s| s.name().to_string()).unwrap_or_default();
                let thread = std::thread::current().name().unwrap_or_default().to_string();
                self.0.lock().push((name, thread));
            }
        }
        let entered = Entered::default();
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(entered.clone()));
        let engine = Engine::start(Arc::new(()), 1, 1).unwrap();
        let span = tracing::info_span!("request");
        engine.run(|_| ()).instrument(span).await.unwrap();
        let seen = entered.0.lock().clone();
        assert!(seen.iter().any(|(name, thread)| name == "request" && thread == "visage-infer-0"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        // One worker, held busy; a queue of one.
        let engine = Arc::new(Engine::start(Arc::new(()), 1, 1).unwrap());
        let hold = Arc::new(Barrier::new(2));
        let release = Arc::new(Barrier::new(2));
        let (h, r) = (hold.clone(), release.clone());
        let e = engine.clone();
        let busy = tokio::spawn(async move {
            e.run(move |_| {
                h.wait();
                r.wait();
            })
            .await
        });
        tokio::task::spawn_blocking(move || hold.wait()).await.unwrap();
        // The worker is busy: one job can wait, the next is refused.
        let e = engine.clone();
        let queued = tokio::spawn(async move { e.run(|_| 1).await });
        while engine.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(engine.run(|_| 2).await, Err(EngineError::Overloaded));
        tokio::task::spawn_blocking(move || release.wait()).await.unwrap();
        assert_eq!(busy.await.unwrap(), Ok(()));
        assert_eq!(queued.await.unwrap(), Ok(1));
    }
}
