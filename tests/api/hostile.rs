//! A corpus of hostile and broken inputs, each with its documented status and
//! error code; the service stays ready and its memory bounded afterwards.
use base64::Engine as _;
use image::{ExtendedColorType, GrayImage, ImageEncoder, RgbImage};
use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::helpers::{photo, spawn_app};

fn png_of(w: u32, h: u32, raw: &[u8], color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(raw, w, h, color).unwrap();
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A valid small PNG whose IHDR claims `w x h` (CRC fixed up): a decompression bomb's header.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = png_of(8, 8, &[0; 8 * 8 * 3], ExtendedColorType::Rgb8);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A small JPEG whose SOF0 claims `w x h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&RgbImage::new(16, 16)).unwrap();
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).expect("a baseline JPEG");
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

fn gif_with_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..n {
            let frame = image::RgbaImage::from_pixel(4, 4, image::Rgba([(i % 256) as u8, 0, 0, 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

/// An animated WebP (VP8X + ANIM + one ANMF per frame) built from lossless
/// single-frame WebPs of the same size; the image crate cannot write one.
fn animated_webp(frames: &[RgbImage]) -> Vec<u8> {
    fn chunk(tag: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut c = [tag.as_slice(), &(payload.len() as u32).to_le_bytes(), payload].concat();
        if payload.len() % 2 == 1 {
            c.push(0);
        }
        c
    }
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let (w, h) = frames[0].dimensions();
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &[vec![0x02, 0, 0, 0], u24(w - 1), u24(h - 1)].concat()));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for frame in frames {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still)
            .write_image(frame.as_raw(), w, h, ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(&still[12..16], b"VP8L", "a simple lossless WebP");
        let header = [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(100), vec![0]].concat();
        body.extend(chunk(b"ANMF", &[header.as_slice(), &still[12..]].concat()));
    }
    [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat()
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_of_hostile_inputs_gets_clear_errors_and_the_service_stays_up() {
    let app = spawn_app().await;
    let c = &app.client;
    let obama = image::load_from_memory(&photo("obama.jpg")).unwrap();
    let (w, h) = (obama.width(), obama.height());
    let gray: GrayImage = obama.to_luma8();
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut gray_jpeg).encode_image(&gray).unwrap();
    let rgb16 = obama.to_rgb16();
    let luma16 = obama.to_luma16();
    let rgb16_png = png_of(w, h, bytemuck_u16(rgb16.as_raw()), ExtendedColorType::Rgb16);
    let luma16_png = png_of(w, h, bytemuck_u16(luma16.as_raw()), ExtendedColorType::L16);
    let gray_png = png_of(w, h, gray.as_raw(), ExtendedColorType::L8);
    // Inverted (Adobe) CMYK as print workflows write it, and the same as YCCK.
    let cmyk: Vec<u8> = obama.to_rgb8().pixels().flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0]).collect();
    let cmyk_jpeg = |color| {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90).encode(&cmyk, w as u16, h as u16, color).unwrap();
        out
    };
    let (cmyk_jpeg, ycck_jpeg) =
        (cmyk_jpeg(jpeg_encoder::ColorType::Cmyk), cmyk_jpeg(jpeg_encoder::ColorType::CmykAsYcck));
    let blank = RgbImage::from_pixel(w, h, image::Rgb([40, 40, 40]));
    let webp_face_first = animated_webp(&[obama.to_rgb8(), blank.clone(), blank.clone()]);
    let webp_face_later = animated_webp(&[blank, obama.to_rgb8()]);
    let one_png = png_of(1, 1, &[255, 0, 0], ExtendedColorType::Rgb8);
    let mut one_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut one_jpeg).encode_image(&RgbImage::new(1, 1)).unwrap();
    let jpeg = photo("obama.jpg");
    let png = photo("32bit.png");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let raw = |bytes: Vec<u8>, ct: &str| c.post(app.url("/v1/detect")).header("content-type", ct).body(bytes);
    let json_to = |path: &str, body: Value| c.post(app.url(path)).json(&body);
    let form = |parts: Vec<(&str, Vec<u8>)>, fields: Vec<(&str, Vec<u8>)>| {
        let mut f = reqwest::multipart::Form::new();
        for (name, bytes) in parts {
            f = f.part(name.to_string(), reqwest::multipart::Part::bytes(bytes).file_name("x.jpg"));
        }
        for (name, bytes) in fields {
            f = f.part(name.to_string(), reqwest::multipart::Part::bytes(bytes));
        }
        f
    };
    let enroll = |fields: Vec<(&str, Vec<u8>)>| {
        c.post(app.url("/v1/enroll")).multipart(form(vec![("image", photo("obama.jpg"))], fields))
    };
    let verify = |fields: Vec<(&str, Vec<u8>)>| {
        c.post(app.url("/v1/verify")).multipart(form(vec![("image", photo("obama2.jpg"))], fields))
    };
    let identify = |fields: Vec<(&str, Vec<u8>)>| {
        c.post(app.url("/v1/identify")).multipart(form(vec![("image", photo("obama2.jpg"))], fields))
    };
    let sql_name = "Robert'); DROP TABLE persons;--".to_string();
    let person = {
        let r = enroll(vec![("name", sql_name.clone().into_bytes())]).send().await.unwrap();
        assert_eq!(r.status(), 201, "a name with SQL metacharacters is just a name");
        r.json::<Value>().await.unwrap()["person_id"].as_str().unwrap().to_string()
    };
    let p = |s: &str| s.as_bytes().to_vec();
    // (case, request, status, error code; "" for a success, checked below by face count)
    let cases: Vec<(&str, RequestBuilder, u16, &str)> = vec![
        ("zero bytes", raw(vec![], "image/jpeg"), 400, "missing_image"),
        ("1 KB of random bytes", raw(random_bytes(1024, 1), "image/jpeg"), 422, "invalid_image"),
        ("1 MB of random bytes", raw(random_bytes(1 << 20, 2), "image/png"), 422, "invalid_image"),
        ("truncated JPEG (first 20%)", raw(jpeg[..jpeg.len() / 5].to_vec(), "image/jpeg"), 422, "invalid_image"),
        ("truncated PNG (first 30%)", raw(png[..png.len() * 3 / 10].to_vec(), "image/png"), 422, "invalid_image"),
        ("JPEG header claiming 60000x60000", raw(jpeg_claiming(60000, 60000), "image/jpeg"), 422, "image_too_large"),
        ("PNG header claiming 60000x60000", raw(png_claiming(60000, 60000), "image/png"), 422, "image_too_large"),
        ("PNG header claiming 8000x6000 (48 MP)", raw(png_claiming(8000, 6000), "image/png"), 422, "image_too_large"),
        ("PNG header claiming 30000x1 (too wide)", raw(png_claiming(30000, 1), "image/png"), 422, "image_too_large"),
        ("GIF with 3000 frames", raw(gif_with_frames(3000), "image/gif"), 200, ""),
        ("CMYK JPEG (Adobe, inverted)", raw(cmyk_jpeg, "image/jpeg"), 200, "face"),
        ("YCCK JPEG", raw(ycck_jpeg, "image/jpeg"), 200, "face"),
        ("animated WebP, face in the first frame", raw(webp_face_first, "image/webp"), 200, "face"),
        ("animated WebP, face only in a later frame", raw(webp_face_later, "image/webp"), 200, ""),
        ("grayscale JPEG", raw(gray_jpeg, "image/jpeg"), 200, "face"),
        ("grayscale PNG", raw(gray_png, "image/png"), 200, "face"),
        ("16-bit RGB PNG", raw(rgb16_png, "image/png"), 200, "face"),
        ("16-bit grayscale PNG", raw(luma16_png, "image/png"), 200, "face"),
        ("RGBA PNG", raw(png.clone(), "image/png"), 200, "face"),
        ("1x1 PNG", raw(one_png, "image/png"), 200, ""),
        ("1x1 JPEG", raw(one_jpeg, "image/jpeg"), 200, ""),
        (
            "SVG as image/jpeg",
            raw(p("<svg xmlns='http://www.w3.org/2000/svg'><circle r='9'/></svg>"), "image/jpeg"),
            422,
            "invalid_image",
        ),
        (
            "HTML as image/jpeg",
            raw(p("<!doctype html><html><body>hi</body></html>"), "image/jpeg"),
            422,
            "invalid_image",
        ),
        (
            "PDF as image/jpeg",
            raw(p("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF"), "image/jpeg"),
            422,
            "invalid_image",
        ),
        ("ZIP as image/jpeg", raw([b"PK\x03\x04".as_slice(), &[0; 40]].concat(), "image/jpeg"), 422, "invalid_image"),
        ("JPEG sent as text/plain", raw(jpeg.clone(), "text/plain"), 415, "unsupported_media_type"),
        ("no content type", c.post(app.url("/v1/detect")).body(jpeg.clone()), 415, "unsupported_media_type"),
        ("invalid base64", json_to("/v1/detect", json!({"image": "!!!not base64!!!"})), 400, "invalid_base64"),
        ("base64 field not a string", json_to("/v1/detect", json!({"image": 123})), 400, "invalid_base64"),
        (
            "base64 of garbage",
            json_to("/v1/detect", json!({"image": b64(&random_bytes(3000, 3))})),
            422,
            "invalid_image",
        ),
        (
            "oversize base64 (11 MiB)",
            json_to("/v1/detect", json!({"image": "A".repeat(11 << 20)})),
            413,
            "body_too_large",
        ),
        ("JSON without an image", json_to("/v1/detect", json!({"picture": b64(&jpeg)})), 400, "missing_image"),
        (
            "JSON array body",
            c.post(app.url("/v1/detect")).header("content-type", "application/json").body("[1,2]"),
            400,
            "invalid_json",
        ),
        (
            "broken JSON",
            c.post(app.url("/v1/detect")).header("content-type", "application/json").body("{\"image\": "),
            400,
            "invalid_json",
        ),
        (
            "multipart without an image",
            c.post(app.url("/v1/detect")).multipart(form(vec![], vec![("name", p("x"))])),
            400,
            "missing_image",
        ),
        (
            "multipart with two images",
            c.post(app.url("/v1/detect"))
                .multipart(form(vec![("image", jpeg.clone()), ("image", jpeg.clone())], vec![])),
            400,
            "invalid_request",
        ),
        ("10 KB name", enroll(vec![("name", p(&"x".repeat(10_000)))]), 400, "invalid_parameter"),
        ("name with control characters", enroll(vec![("name", p("Bob\u{0}\u{7}"))]), 400, "invalid_parameter"),
        ("non-UTF-8 name", enroll(vec![("name", vec![0xff, 0xfe, 0x41])]), 400, "invalid_request"),
        ("path traversal id", c.get(app.url("/v1/persons/..%2F..%2Fetc%2Fpasswd")), 404, "person_not_found"),
        ("non-UTF-8 percent-encoded id", c.get(app.url("/v1/persons/%FF%FE")), 400, "invalid_request"),
        ("SQL in an id", c.get(app.url("/v1/persons/'%20OR%201=1%20--")), 404, "person_not_found"),
        ("malformed person_id to verify", verify(vec![("person_id", p("../../x"))]), 404, "person_not_found"),
        ("delete a malformed id", c.delete(app.url("/v1/persons/ZZZ")), 404, "person_not_found"),
        ("threshold NaN", verify(vec![("person_id", p(&person)), ("threshold", p("NaN"))]), 400, "invalid_parameter"),
        (
            "threshold negative",
            verify(vec![("person_id", p(&person)), ("threshold", p("-0.5"))]),
            400,
            "invalid_parameter",
        ),
        (
            "threshold above 1",
            verify(vec![("person_id", p(&person)), ("threshold", p("1.5"))]),
            400,
            "invalid_parameter",
        ),
        (
            "threshold not a number",
            verify(vec![("person_id", p(&person)), ("threshold", p("high"))]),
            400,
            "invalid_parameter",
        ),
        ("top_k 0", identify(vec![("top_k", p("0"))]), 400, "invalid_parameter"),
        ("top_k negative", identify(vec![("top_k", p("-3"))]), 400, "invalid_parameter"),
        ("top_k 10^9", identify(vec![("top_k", p("1000000000"))]), 400, "invalid_parameter"),
        ("face choice unknown", verify(vec![("person_id", p(&person)), ("face", p("all"))]), 400, "invalid_parameter"),
        // A choice the pipeline knows but verify does not take.
        (
            "face choice of another operation",
            verify(vec![("person_id", p(&person)), ("face", p("central"))]),
            400,
            "invalid_parameter",
        ),
        (
            "face choice misspelt",
            verify(vec![("person_id", p(&person)), ("face", p("Largest"))]),
            400,
            "invalid_parameter",
        ),
    ];
    let total = cases.len();
    assert!(total >= 40, "{total} cases");
    let rss_before = rss_mib();
    let mut failures = Vec::new();
    for (case, request, status, code) in cases {
        let r = request.send().await.unwrap_or_else(|e| panic!("{case}: no answer: {e:?}"));
        let got = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let ok = got == status
            && match code {
                "" => body["faces"].as_array().is_some_and(|f| f.is_empty()),
                "face" => body["faces"].as_array().is_some_and(|f| f.len() == 1),
                code => {
                    body["error"]["code"] == code && body["error"]["message"].as_str().is_some_and(|m| !m.is_empty())
                }
            };
        if !ok {
            failures.push(format!("{case}: expected {status} {code}, got {got} {body}"));
        }
    }
    let rss_after = rss_mib();
    eprintln!("hostile corpus: {total} cases, {} failed, RSS {rss_before:.0} -> {rss_after:.0} MiB", failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
    // Still ready, the SQL-flavoured name stored verbatim, memory bounded.
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let v = app.get_json(&format!("/v1/persons/{person}")).await;
    assert_eq!(v["name"], sql_name.as_str());
    assert!(rss_after - rss_before < 300.0, "RSS grew by {:.0} MiB", rss_after - rss_before);
    app.stop().await;
}

fn bytemuck_u16(v: &[u16]) -> &[u8] {
    // SAFETY: u16 has no padding; u8 has alignment 1; the length is doubled.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 2) }
}
