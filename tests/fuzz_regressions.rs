//! Replays the fuzz seeds and every input the fuzzers ever crashed on
//! (`fuzz/seeds/`, `fuzz/regressions/`) through the same harness the fuzz
//! targets use, on stable Rust, as part of the ordinary test run.
use std::path::{Path, PathBuf};

use tower::ServiceExt;
use visage_service::vision::decode::DecodeLimits;
use visage_service::vision::pipeline::{Pipeline, PipelineConfig};

#[path = "../fuzz/src/lib.rs"]
mod harness;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `fuzz/seeds/<target>` and `fuzz/regressions/<target>`.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = root().join("fuzz").join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

fn name(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn decode_detect_inputs_replay_without_panics() {
    let config = PipelineConfig {
        decode: DecodeLimits { max_pixels: 4_000_000, max_dimension: 4096 },
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::load(&root().join("models"), config).expect("models (make models)");
    let inputs = inputs("decode_detect");
    assert!(inputs.len() >= 10, "the seed corpus is missing: {} inputs", inputs.len());
    for (path, bytes) in &inputs {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness::decode_detect(&pipeline, bytes)));
        assert!(run.is_ok(), "{} panicked", name(path));
    }
    // The seeds are real: the face photos decode and show their face.
    let face = std::fs::read(root().join("fuzz/seeds/decode_detect/face-96.jpg")).unwrap();
    let img = pipeline.decode(&face).unwrap();
    assert_eq!(pipeline.detect(&img).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_parse_inputs_replay_to_clean_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = visage_service::server::Config {
        addr: "127.0.0.1:0".into(),
        db: dir.join("visage.db"),
        models_dir: root().join("models"),
        workers: 1,
        ..visage_service::server::Config::default()
    };
    let app = visage_service::server::Application::build(config).await.unwrap();
    let router = visage_service::http::app(app.state().clone());
    let inputs = inputs("request_parse");
    assert!(inputs.len() >= 10, "the seed corpus is missing: {} inputs", inputs.len());
    let mut statuses = Vec::new();
    for (path, bytes) in &inputs {
        let Some(req) = harness::request_from_bytes(bytes) else { continue };
        let response = router.clone().oneshot(req).await.unwrap();
        statuses.push(response.status().as_u16());
        let check = tokio::spawn(harness::check_response(response)).await;
        assert!(check.is_ok(), "{} broke an invariant", name(path));
    }
    // The seeds reach the handlers, not just the error paths.
    assert!(statuses.iter().filter(|s| **s < 300).count() >= 4, "{statuses:?}");
}

#[test]
fn sealed_rows_inputs_replay_without_panics() {
    let inputs = inputs("sealed_rows");
    assert!(inputs.len() >= 10, "the seed corpus is missing: {} inputs", inputs.len());
    for (path, bytes) in &inputs {
        let run = std::panic::catch_unwind(|| harness::sealed_rows(bytes));
        assert!(run.is_ok(), "{} panicked", name(path));
    }
}
