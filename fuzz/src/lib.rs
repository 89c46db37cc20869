//! What the fuzz targets do with one input, shared with the regression test
//! (`tests/fuzz_regressions.rs` includes this file), so a crashing input
//! kept in `fuzz/regressions/` is replayed exactly as the fuzzer ran it.
//!
//! - [`decode_detect`]: bytes → decode → detect → align, asserting that
//!   whatever decodes yields finite boxes inside reason and never panics.
//! - [`request_from_bytes`] + [`check_response`]: bytes → an HTTP request
//!   (route, content type, path segment, query and body all from the input) →
//!   the real router; every answer must be a non-5xx (503/429 aside) with a
//!   JSON body, and every error must carry a code and a message.
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use visage_service::vision::pipeline::Pipeline;

/// Decodes, detects and aligns; panics on a broken invariant.
pub fn decode_detect(pipeline: &Pipeline, data: &[u8]) {
    let Ok(img) = pipeline.decode(data) else { return };
    let (w, h) = (img.width() as f32, img.height() as f32);
    assert!(w >= 1.0 && h >= 1.0, "a decoded image has pixels");
    let detections = match pipeline.detect(&img) {
        Ok(d) => d,
        Err(e) => panic!("detection failed on a decoded {w}x{h} image: {e:#}"),
    };
    for d in detections.iter().take(4) {
        let b = d.bbox;
        assert!((0.0..=1.0).contains(&d.score), "score {}", d.score);
        assert!(
            [b.x, b.y, b.width, b.height].iter().all(|v| v.is_finite()) && b.width > 0.0 && b.height > 0.0,
            "box {b:?}"
        );
        // Boxes may reach a little past the edge, never far off the image.
        assert!(b.x > -w && b.y > -h && b.x < 2.0 * w && b.y < 2.0 * h, "box {b:?} for {w}x{h}");
        assert!(d.landmarks.iter().all(|p| p.iter().all(|v| v.is_finite())), "{:?}", d.landmarks);
        // Degenerate landmarks are an error, not a panic.
        let _ = pipeline.align(&img, d);
    }
}

/// The routes requests are aimed at (`{}` takes a fuzzed path segment).
/// Creating API keys is left out: one key would lock every later input out.
const ROUTES: [(&str, &str); 24] = [
    ("POST", "/v1/detect"),
    ("POST", "/v1/embed"),
    ("POST", "/v1/compare"),
    ("POST", "/v1/verify"),
    ("POST", "/v1/identify"),
    ("POST", "/v1/enroll"),
    ("POST", "/v1/persons"),
    ("GET", "/v1/persons"),
    ("GET", "/v1/persons/{}"),
    ("PATCH", "/v1/persons/{}"),
    ("DELETE", "/v1/persons/{}"),
    ("POST", "/v1/persons/{}/faces"),
    ("DELETE", "/v1/persons/{}/faces/{}"),
    ("GET", "/v1/info"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/keys"),
    ("DELETE", "/v1/keys/{}"),
    ("GET", "/healthz"),
    ("PUT", "/v1/detect"),
    ("GET", "/{}"),
    // Appended, so older inputs keep their routes.
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/assets/{}"),
];

const CONTENT_TYPES: [&str; 8] = [
    "multipart/form-data; boundary=XyZ",
    "application/json",
    "image/jpeg",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
    "multipart/form-data",
    "multipart/form-data; boundary=\"a b\"; charset=utf-8",
];

/// Percent-encodes everything outside the unreserved set (and `keep`).
fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a request from fuzz input: byte 0 picks the route, byte 1 the
/// content type, bytes 2 and 3 the lengths of the path segment and query
/// that follow; the rest is the body. `None` for inputs under 4 bytes.
pub fn request_from_bytes(data: &[u8]) -> Option<Request<Body>> {
    let [route, ct, seg_len, query_len, rest @ ..] = data else { return None };
    let (method, template) = ROUTES[usize::from(*route) % ROUTES.len()];
    let seg_len = usize::from(*seg_len).min(rest.len());
    let (segment, rest) = rest.split_at(seg_len);
    let query_len = usize::from(*query_len).min(rest.len());
    let (query, body) = rest.split_at(query_len);
    let mut uri = template.replace("{}", &encode(segment, b""));
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&encode(query, b"=&+"));
    }
    let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).ok()?).uri(uri);
    let content_type = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    req.body(Body::from(body.to_vec())).ok()
}

/// Checks one answer: no 5xx but 503 (overload), a JSON body on every error
/// and every `application/json` success, and `{"error": {"code", "message"}}`
/// on every error.
pub async fn check_response(response: axum::response::Response) {
    let status = response.status();
    let json_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "server error {status}");
    let body = match axum::body::to_bytes(response.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => panic!("the body of a {status} cannot be read: {e}"),
    };
    if status == StatusCode::NO_CONTENT {
        assert!(body.is_empty(), "204 with a body");
        return;
    }
    // Pages, assets and metrics are not JSON; every error and API answer is.
    if status.is_success() && !json_type {
        return;
    }
    assert!(json_type, "{status} without a JSON content type");
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => panic!("{status} with a body that is not JSON ({e}): {}", String::from_utf8_lossy(&body)),
    };
    if status.is_client_error() || status.is_server_error() {
        let code = json["error"]["code"].as_str().unwrap_or_default();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(!code.is_empty() && !message.is_empty(), "{status} without an error code and message: {json}");
    }
}

/// Bytes as read back from disk: a key file's contents, then a stored value
/// of each kind (an embedding or crop row, a saved graph) opened with the
/// keys a service holds during a rotation. Nothing may panic; and the input
/// XORed into a real sealed value must open to the value when it changes
/// nothing and be refused whenever it changes anything (an AEAD's promise,
/// with the row binding).
pub fn sealed_rows(data: &[u8]) {
    use visage_service::sealing::{DataKey, DataKeys, Sealed, parse_key};
    if let Ok(key) = parse_key(data) {
        assert_ne!(key, [0u8; 32], "an all-zero key was accepted");
    }
    let keys = DataKeys::new(DataKey::new(&[7u8; 32]), vec![DataKey::new(&[9u8; 32])]);
    let kinds = [
        Sealed::Embedding { face: "0190e0a1b2c3d4e5f60718293a4b5c6d", model: "sface@sha256:00" },
        Sealed::Crop { face: "0190e0a1b2c3d4e5f60718293a4b5c6d" },
        Sealed::Graph { file: "gallery-1.usearch" },
    ];
    let clear: Vec<u8> = [0.5f32, -0.25, 0.125, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    for what in kinds {
        if let Ok(opened) = keys.open(what, data)
            && matches!(what, Sealed::Embedding { .. })
        {
            let _ = visage_service::store::blob_to_embedding(&opened);
        }
        let _ = keys.open_sealed(what, data.to_vec());
        let mut near = keys.seal(what, clear.clone());
        let mut mask = vec![0u8; near.len()];
        for (i, b) in data.iter().enumerate() {
            mask[i % near.len()] ^= b;
        }
        near.iter_mut().zip(&mask).for_each(|(v, m)| *v ^= m);
        match (keys.open(what, &near), mask.iter().all(|m| *m == 0)) {
            (Ok(opened), true) => assert_eq!(opened.as_ref(), clear.as_slice()),
            (Err(e), true) => panic!("an untouched sealed value does not open: {e}"),
            // A broken magic reads as a clear value of another length than any sealed one.
            (Ok(opened), false) => assert_ne!(opened.as_ref(), clear.as_slice(), "an altered sealed value opened"),
            (Err(_), false) => {}
        }
    }
}
