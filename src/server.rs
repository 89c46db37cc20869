//! Start-up and shutdown: load and warm the models, open the store, build the
//! service, bind, serve until a signal, then drain in-flight requests.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::http::{AppState, app};
use crate::service::{Service, ServiceConfig};
use crate::store::Store;
use crate::vision::{Pipeline, PipelineConfig};

/// Everything `visage serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: String,
    pub db: PathBuf,
    pub models_dir: PathBuf,
    pub workers: usize,
    pub queue: usize,
    pub body_limit: usize,
    pub shutdown_timeout: Duration,
    pub pipeline: PipelineConfig,
    pub service: ServiceConfig,
    /// Serve without keys on a non-loopback address (while no key exists).
    pub insecure_no_auth: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            db: PathBuf::from("data/visage.db"),
            models_dir: PathBuf::from("models"),
            workers: default_workers(),
            queue: 32,
            body_limit: 10 * 1024 * 1024,
            insecure_no_auth: false,
            shutdown_timeout: Duration::from_secs(30),
            pipeline: PipelineConfig::default(),
            service: ServiceConfig::default(),
        }
    }
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown_timeout: Duration,
}

impl Application {
    /// Loads everything and binds; the service is ready when this returns.
    pub async fn build(config: Config) -> Result<Self> {
        let models_dir = config.models_dir.clone();
        let pc = config.pipeline;
        let pipeline = tokio::task::spawn_blocking(move || -> Result<Pipeline> {
            let p = Pipeline::load(&models_dir, pc)?;
            // Warm-up: a real forward pass of both models (the embedder ran
            // one while loading) and the common detector plan.
            p.detect(&image::RgbImage::new(640, 480))?;
            Ok(p)
        })
        .await
        .context("model loading panicked")??;
        tracing::info!(
            detector = %pipeline.detector.id(),
            embedder = %pipeline.embedder.id(),
            "models loaded and warmed up"
        );
        let engine = Engine::start(Arc::new(pipeline), config.workers, config.queue)?;
        let store = Store::open(&config.db).await.with_context(|| format!("opening {}", config.db.display()))?;
        let service = Service::new(engine, store, config.service.clone()).await?;
        let listener =
            TcpListener::bind(&config.addr).await.with_context(|| format!("cannot listen on {}", config.addr))?;
        let loopback = listener.local_addr()?.ip().is_loopback();
        let keys = service.store().active_keys().await.context("reading the API keys")?;
        if keys == 0 && !loopback && !config.insecure_no_auth {
            anyhow::bail!(
                "refusing to serve {} (not loopback) without API keys: create one with `visage keys create \
                 --scope admin --name NAME --db {}`, or pass --insecure-no-auth to serve without authentication",
                config.addr,
                config.db.display()
            );
        }
        let open_without_keys = loopback || config.insecure_no_auth;
        if keys == 0 {
            tracing::warn!(addr = %config.addr, "no API keys exist: requests are not authenticated until one is created");
        }
        Ok(Self {
            listener,
            state: AppState { service: Arc::new(service), body_limit: config.body_limit, open_without_keys },
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// (for at most the shutdown timeout).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "listening");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(());
        };
        let server = axum::serve(self.listener, app(self.state.clone())).with_graceful_shutdown(signal);
        let timeout = self.shutdown_timeout;
        let guard = async move {
            let _ = rx.await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            r = server => r.context("server error")?,
            () = guard => tracing::warn!("in-flight requests did not finish within {timeout:?}; stopping"),
        }
        self.state.service.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
