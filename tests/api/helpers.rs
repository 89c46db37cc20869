//! `spawn_app()`: the real application on port 0 with a fresh database.
use std::path::{Path, PathBuf};

use image::{ImageEncoder, RgbImage};
use serde_json::Value;
use visage_service::server::{Application, Config};

pub struct TestApp {
    pub address: String,
    /// The separate `/metrics` listener, when configured.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub db: PathBuf,
    pub person_ids: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The folder of the database, when `spawn_app` made it: deleted with the app.
    dir: Option<tempfile::TempDir>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = root().join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make test-data`", path.display()))
}

/// A fresh, empty folder for one test, deleted when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("visage-api-").tempdir().unwrap()
}

/// A fresh database for one test: a SQLite file in `dir`, or a PostgreSQL
/// database when the suite runs with `VISAGE_TEST_STORE=postgres`.
pub fn fresh_db(dir: &tempfile::TempDir) -> PathBuf {
    if crate::pg::selected() { crate::pg::database() } else { dir.path().join("visage.db") }
}

pub fn config(db: &Path) -> Config {
    Config {
        addr: "127.0.0.1:0".into(),
        db: db.to_path_buf(),
        models_dir: root().join("models"),
        workers: 2,
        ..Config::default()
    }
}

/// The app on a fresh database: a SQLite file, or a PostgreSQL database when
/// the suite runs with `VISAGE_TEST_STORE=postgres`.
pub async fn spawn_app() -> TestApp {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut app = spawn_with(config(&db)).await;
    app.dir = Some(dir);
    app
}

pub async fn spawn_with(config: Config) -> TestApp {
    let db = config.db.clone();
    let app = Application::build(config).await.expect("the application starts");
    let address = format!("http://{}", app.local_addr().unwrap());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        db,
        person_ids: Vec::new(),
        stop: Some(stop),
        server: Some(server),
        dir: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Shuts the server down gracefully and waits for it.
    /// The database folder `spawn_app` made, kept past `stop` (for a restart).
    pub fn keep_dir(&mut self) -> Option<tempfile::TempDir> {
        self.dir.take()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap();
        }
    }

    pub async fn post_image(&self, path: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg").mime_str("image/jpeg").unwrap(),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.client.post(self.url(path)).multipart(form).send().await.unwrap()
    }

    /// GETs `path` and parses the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// POSTs `body` as JSON to `path` and parses the JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        self.client.post(self.url(path)).json(body).send().await.unwrap().json().await.unwrap()
    }

    pub async fn post_raw(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> reqwest::Response {
        self.client.post(self.url(path)).header("content-type", content_type).body(bytes).send().await.unwrap()
    }

    /// Enrolls `photo` as a new person and returns the person id.
    pub async fn enroll(&mut self, name: &str, photo_name: &str) -> String {
        let r = self.post_image("/v1/enroll", photo(photo_name), &[("name", name)]).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        let id = v["person_id"].as_str().unwrap().to_string();
        self.person_ids.push(id.clone());
        id
    }
}

/// Asserts the status and the error code of a JSON error response.
pub async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status, "expected {status} {code}");
    let v: Value = r.json().await.expect("a JSON error body");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v
}

pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A PNG of uniform noise.
pub fn noise_png(width: u32, height: u32) -> Vec<u8> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    png(&RgbImage::from_fn(width, height, |_, _| image::Rgb(rng.random())))
}

/// Two portraits side by side: a photo with two faces.
pub fn side_by_side(left: &str, right: &str) -> Vec<u8> {
    let a = image::load_from_memory(&photo(left)).unwrap().to_rgb8();
    let b = image::load_from_memory(&photo(right)).unwrap().to_rgb8();
    let mut canvas = RgbImage::new(a.width() + b.width(), a.height().max(b.height()));
    image::imageops::replace(&mut canvas, &a, 0, 0);
    image::imageops::replace(&mut canvas, &b, i64::from(a.width()), 0);
    png(&canvas)
}
