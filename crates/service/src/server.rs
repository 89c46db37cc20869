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
use crate::http::limits::{Limits, LimitsConfig};
use crate::http::{AppState, Peer, app};
use crate::sealing::DataKeys;
use crate::service::{Service, ServiceConfig, ThresholdChoice};
use crate::store::{Location, Store};
use crate::tls::{Tls, TlsFiles};
use crate::vision::{Pipeline, PipelineConfig};

/// Everything `visage serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: String,
    pub db: PathBuf,
    /// The keys embeddings, crops and the saved graph are sealed with (none: in clear).
    pub data_keys: DataKeys,
    pub models_dir: PathBuf,
    pub workers: usize,
    pub queue: usize,
    pub body_limit: usize,
    pub shutdown_timeout: Duration,
    pub pipeline: PipelineConfig,
    /// The service's rules; its two thresholds are replaced at start-up by
    /// the overrides below or, without them, by the embedder's defaults.
    pub service: ServiceConfig,
    /// How the two thresholds are to be set.
    pub thresholds: ThresholdChoice,
    /// Serve without keys on a non-loopback address (while no key exists).
    pub insecure_no_auth: bool,
    /// Longest a client may take to send a request's headers (slow-loris guard).
    pub header_read_timeout: Duration,
    /// Longest a whole request may take, body upload included.
    pub request_timeout: Duration,
    /// A second address serving only `/metrics`, without authentication.
    pub metrics_addr: Option<String>,
    /// Serve HTTPS with this certificate and key (read again on SIGHUP).
    pub tls: Option<TlsFiles>,
    /// Request rates per key and client address, failed authentications.
    pub limits: LimitsConfig,
}

/// Where the service listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The SQLite database unless told otherwise (created with its folder).
pub const DEFAULT_DB: &str = "data/visage.db";
/// The folder with `manifest.toml` and the model files unless told otherwise.
pub const DEFAULT_MODELS_DIR: &str = "models";

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            db: PathBuf::from(DEFAULT_DB),
            data_keys: DataKeys::none(),
            models_dir: PathBuf::from(DEFAULT_MODELS_DIR),
            workers: default_workers(),
            queue: 32,
            body_limit: 10 * 1024 * 1024,
            insecure_no_auth: false,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            metrics_addr: None,
            tls: None,
            limits: LimitsConfig::default(),
            pipeline: PipelineConfig::default(),
            service: ServiceConfig::default(),
            thresholds: ThresholdChoice::default(),
        }
    }
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub struct Application {
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    shutdown_timeout: Duration,
    header_read_timeout: Duration,
}

impl Application {
    /// Loads everything and binds; the service is ready when this returns.
    pub async fn build(config: Config) -> Result<Self> {
        // Record from the start, so the first scrape sees start-up too.
        crate::telemetry::prometheus();
        let tls = config.tls.clone().map(Tls::new).transpose().context("TLS")?.map(Arc::new);
        // The store first: a missing or wrong data key is told at once, not after the models load.
        let db = Location::redact(&config.db);
        let store =
            Store::open_with(&config.db, config.data_keys.clone()).await.with_context(|| format!("opening {db}"))?;
        let pipeline = load_models(&config).await?;
        let rules = config.thresholds.apply(config.service.clone(), &pipeline, &config.models_dir)?;
        let engine = Engine::start(Arc::new(pipeline), config.workers, config.queue)?;
        let service = Service::new(engine, store, rules).await?;
        let listener =
            TcpListener::bind(&config.addr).await.with_context(|| format!("cannot listen on {}", config.addr))?;
        let metrics_listener = match &config.metrics_addr {
            Some(a) => Some(TcpListener::bind(a).await.with_context(|| format!("cannot listen on {a} (metrics)"))?),
            None => None,
        };
        let loopback = listener.local_addr()?.ip().is_loopback();
        let keys = service.store().active_keys().await.context("reading the API keys")?;
        let open_without_keys = exposure(&config, keys, loopback, tls.is_some())?;
        Ok(Self {
            listener,
            tls,
            metrics_listener,
            state: AppState {
                service: Arc::new(service),
                body_limit: config.body_limit,
                open_without_keys,
                request_timeout: config.request_timeout,
                header_read_timeout: config.header_read_timeout,
                limits: Arc::new(Limits::new(&config.limits)),
            },
            shutdown_timeout: config.shutdown_timeout,
            header_read_timeout: config.header_read_timeout,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served alone, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// (for at most the shutdown timeout). Connections that do not send
    /// complete headers within the header read timeout are closed.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::server::graceful::GracefulShutdown;

        let addr = self.local_addr()?;
        tracing::info!(%addr, tls = self.tls.is_some(), "listening");
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let metrics_server = self.metrics_listener.map(|l| serve_metrics(l, self.state.clone(), metrics_stopped));
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.header_read_timeout);
        let connections = Connections {
            router: app(self.state.clone()),
            builder,
            graceful: GracefulShutdown::new(),
            tls: self.tls.clone(),
            handshake_timeout: self.header_read_timeout,
        };
        let mut background = background_tasks(&self.state.service, self.tls.clone());
        background.push(tokio::spawn(forget_idle_limits(self.state.limits.clone())));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            connections.serve(stream, peer);
        }
        tracing::info!("shutting down: finishing in-flight requests");
        drop(self.listener);
        let _ = stop_metrics.send(true);
        for task in &background {
            task.abort();
        }
        if let Some(m) = metrics_server {
            let _ = m.await;
        }
        let timeout = self.shutdown_timeout;
        if tokio::time::timeout(timeout, connections.graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within {timeout:?}; stopping");
        }
        settle(&self.state.service).await;
        Ok(())
    }
}

/// After the last request: identify's waiting events written, the index
/// saved, the store closed.
async fn settle(service: &Service) {
    let unwritten = service.events.write_now().await;
    if unwritten > 0 {
        tracing::error!(events = unwritten, "stopping with identify events the database never took: they are lost");
    }
    match service.save_index().await {
        Ok(true) => tracing::info!("index saved"),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "saving the index failed; it is caught up from the change log at the next start")
        }
    }
    service.store().close().await;
    tracing::info!("stopped");
}

/// `/metrics` alone on its own listener, until `stopped` turns true.
fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let router = crate::http::metrics_app(state);
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "serving /metrics");
    }
    tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::warn!(error = %e, "the metrics listener failed");
        }
    })
}

/// Loads the models on a blocking thread and warms them up.
async fn load_models(config: &Config) -> Result<Pipeline> {
    let (models_dir, pc) = (config.models_dir.clone(), config.pipeline.clone());
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
    Ok(pipeline)
}

/// Whether requests without a key may pass (while no key exists): on
/// loopback or when told. Refuses a network address without keys; warns of
/// an open service and of plain HTTP on a network.
fn exposure(config: &Config, keys: i64, loopback: bool, tls: bool) -> Result<bool> {
    if keys == 0 && !loopback && !config.insecure_no_auth {
        anyhow::bail!(
            "refusing to serve {} (not loopback) without API keys: create one with `visage keys create \
             --scope admin --name NAME --db {}`, or pass --insecure-no-auth to serve without authentication",
            config.addr,
            Location::redact(&config.db)
        );
    }
    if keys == 0 {
        tracing::warn!(addr = %config.addr, "no API keys exist: requests are not authenticated until one is created");
    } else if !loopback && !tls {
        tracing::warn!(
            addr = %config.addr,
            "serving plain HTTP on a network: API keys, photos and answers cross it readable by anyone on the \
             path (give --tls-cert and --tls-key, or put a TLS proxy in front)"
        );
    }
    Ok(loopback || config.insecure_no_auth)
}

/// What the service does beside answering requests, until aborted: SIGHUP
/// reloads; replicas on a shared database follow each other's changes;
/// unassigned faces past their retention are deleted; events go out from
/// the outbox, and identify's wait for a database that is down.
fn background_tasks(service: &Arc<Service>, tls: Option<Arc<Tls>>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(reload_on_sighup(service.clone(), tls)),
        tokio::spawn(service.clone().purge_unassigned_regularly()),
        tokio::spawn(service.deliverer.clone().run()),
        tokio::spawn(service.events.clone().write_waiting()),
    ];
    if service.follows() {
        tasks.push(tokio::spawn(service.clone().follow_changes()));
    }
    tasks
}

/// SIGHUP reloads the gallery from the database (after `visage
/// enroll-dir`, `import`, `reembed` or `persons delete` changed it from
/// outside) and the TLS certificate and key (renewed).
async fn reload_on_sighup(service: Arc<crate::service::Service>, tls: Option<Arc<Tls>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            match tls.as_ref().map(|t| t.reload()) {
                Some(Ok(())) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                Some(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "SIGHUP: TLS reload failed; the previous certificate stays")
                }
                None => {}
            }
            match service.reload_gallery().await {
                Ok(g) => tracing::info!(faces = g.faces, persons = g.persons, "SIGHUP: gallery reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: reloading the gallery failed; the old one stays"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (service, tls);
}

/// Every minute, the limits forget the keys and addresses idle long enough
/// to be full again (their state would otherwise grow with every address seen).
async fn forget_idle_limits(limits: Arc<Limits>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        limits.forget_idle();
    }
}

/// How each accepted connection is served: over TLS when configured (the
/// handshake given as long as a request's headers), then HTTP/1.1 or 2,
/// watched for the graceful shutdown.
struct Connections {
    router: axum::Router,
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    graceful: hyper_util::server::graceful::GracefulShutdown,
    tls: Option<Arc<Tls>>,
    handshake_timeout: Duration,
}

impl Connections {
    fn serve(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        use hyper_util::rt::TokioIo;
        use hyper_util::service::TowerToHyperService;
        use tower::Layer as _;
        // Each request knows the connection's peer (the limits' client address).
        let router = axum::Extension(Peer(peer.ip())).layer(self.router.clone());
        let service = TowerToHyperService::new(router);
        let Some(tls) = &self.tls else {
            let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
            let conn = self.graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection closed with an error");
                }
            });
            return;
        };
        let (acceptor, builder, watcher) = (tls.acceptor(), self.builder.clone(), self.graceful.watcher());
        let timeout = self.handshake_timeout;
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
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
