//! Bytes → an HTTP request → the real router (models, SQLite, middleware).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
            Ok(r) => r,
            Err(e) => panic!("tokio runtime: {e}"),
        };
        let dir = std::env::temp_dir().join(format!("visage-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let config = visage_service::server::Config {
            addr: "127.0.0.1:0".into(),
            db: dir.join("visage.db"),
            models_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
            workers: 1,
            ..visage_service::server::Config::default()
        };
        let router = runtime.block_on(async {
            match visage_service::server::Application::build(config).await {
                Ok(app) => visage_service::http::app(app.state().clone()),
                Err(e) => panic!("starting visage (run `make models`): {e:#}"),
            }
        });
        Harness { runtime, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    if let Some(req) = visage_fuzz::request_from_bytes(data) {
        h.runtime.block_on(async {
            let response = match h.router.clone().oneshot(req).await {
                Ok(r) => r,
                Err(e) => match e {},
            };
            visage_fuzz::check_response(response).await;
        });
    }
});
