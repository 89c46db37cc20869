//! PostgreSQL for the tests: a throwaway cluster of this test process's own
//! (`tests/pg/cluster.sh`: initdb in a temporary folder, a free port),
//! started on first use and removed when the process exits; a fresh
//! database for each test.
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::helpers::root;

static CLUSTER: OnceLock<PathBuf> = OnceLock::new();

fn script(action: &str, dir: &std::path::Path) -> String {
    let out = Command::new("bash")
        .arg(root().join("tests/pg/cluster.sh"))
        .arg(action)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/pg/cluster.sh: {e}"));
    assert!(out.status.success(), "cluster.sh {action} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

extern "C" fn remove_cluster() {
    if let Some(dir) = CLUSTER.get() {
        let _ = Command::new("bash").arg(root().join("tests/pg/cluster.sh")).arg("stop").arg(dir).status();
    }
}

fn cluster() -> &'static PathBuf {
    CLUSTER.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("visage-pg-").tempdir().unwrap().keep();
        script("start", &dir);
        // SAFETY: registers a plain function with no captured state; it runs once, at exit.
        unsafe { libc::atexit(remove_cluster) };
        dir
    })
}

/// The URL of a fresh, empty database (as `--db` takes it).
pub fn database() -> PathBuf {
    PathBuf::from(script("createdb", cluster()))
}

/// Whether the API tests run against PostgreSQL (`VISAGE_TEST_STORE=postgres`).
pub fn selected() -> bool {
    match std::env::var("VISAGE_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("VISAGE_TEST_STORE={other}: expected sqlite or postgres"),
    }
}
