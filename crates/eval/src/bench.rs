//! `visage bench`: per-stage latency (decode, detect, align, embed) on given
//! photos, single-threaded, as medians over repeated runs.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use visage_service::vision::Pipeline;

/// How a benchmark runs and reports.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Timed runs (after two warm-up runs).
    pub iterations: usize,
    /// JSON instead of a table.
    pub json: bool,
}

fn time_ms(iterations: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..2 {
        f()?;
    }
    let mut t = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed());
    }
    Ok(median(t))
}

/// `visage bench-models`: the models alone at the given detector input sizes (`WxH`).
pub fn run_models(p: &Pipeline, detector_sizes: &[String], o: BenchOptions) -> Result<ExitCode> {
    let mut detector = serde_json::Map::new();
    for size in detector_sizes {
        let (w, h) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .with_context(|| format!("bad size {size:?}, expected WxH"))?;
        let shape = [1, 3, h as usize, w as usize];
        let net = p.detector.network();
        net.prepare(shape)?;
        let ms = time_ms(o.iterations, || {
            net.run(vec![0.0; shape.iter().product()], shape)?;
            Ok(())
        })?;
        detector.insert(size.clone(), ms.into());
    }
    let mut embedders = serde_json::Map::new();
    for m in p.embedder.members() {
        let (w, h) = m.input_size();
        let crop = image::RgbImage::from_pixel(w, h, image::Rgb([120, 100, 90]));
        let ms = time_ms(o.iterations, || {
            m.raw(&crop)?;
            Ok(())
        })?;
        embedders.insert(m.id().name.clone(), serde_json::json!({ "input": format!("{w}x{h}"), "ms": ms }));
    }
    if o.json {
        println!("{}", serde_json::json!({ "detector": detector, "embedders": embedders }));
    } else {
        for (size, ms) in &detector {
            println!("detector {size:>9}  {:>7.2} ms", ms.as_f64().unwrap_or_default());
        }
        for (name, v) in &embedders {
            println!(
                "embedder {:>9}  {:>7.2} ms  {name}",
                v["input"].as_str().unwrap_or_default(),
                v["ms"].as_f64().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
pub struct StageTimes {
    pub image: String,
    pub width: u32,
    pub height: u32,
    /// The detector's network input for this photo.
    pub detector_input: [u32; 2],
    pub faces: usize,
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub align_ms: f64,
    pub embed_ms: f64,
    pub total_ms: f64,
    pub iterations: usize,
}

fn median(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs.get(xs.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// `visage bench`: per-stage medians on each photo.
pub fn run(p: &Pipeline, images: &[PathBuf], o: BenchOptions) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for path in images {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let img = p.decode(&bytes)?;
        let lb = p.detector.letterbox(img.width(), img.height());
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let mut faces = 0;
        for i in 0..o.iterations + 2 {
            let t0 = Instant::now();
            let img = p.decode(&bytes)?;
            let t1 = Instant::now();
            let dets = p.detect(&img)?;
            let t2 = Instant::now();
            let aligned = dets.first().map(|d| p.align(&img, d)).transpose()?;
            let t3 = Instant::now();
            if let Some(a) = &aligned {
                std::hint::black_box(p.embed(a)?);
            }
            let t4 = Instant::now();
            faces = dets.len();
            if i >= 2 {
                for (k, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0].into_iter().enumerate() {
                    t[k].push(d);
                }
            }
        }
        let [d, de, a, e, tot] = t;
        rows.push(StageTimes {
            image: path.display().to_string(),
            width: img.width(),
            height: img.height(),
            detector_input: [lb.net_w, lb.net_h],
            faces,
            decode_ms: median(d),
            detect_ms: median(de),
            align_ms: median(a),
            embed_ms: median(e),
            total_ms: median(tot),
            iterations: o.iterations,
        });
    }
    if o.json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        println!(
            "{:<28} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "photo", "size", "det input", "decode", "detect", "align", "embed", "total"
        );
        for r in &rows {
            let name =
                std::path::Path::new(&r.image).file_name().map_or(r.image.clone(), |n| n.to_string_lossy().into());
            println!(
                "{:<28} {:>10} {:>9} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms",
                name,
                format!("{}x{}", r.width, r.height),
                format!("{}x{}", r.detector_input[0], r.detector_input[1]),
                r.decode_ms,
                r.detect_ms,
                r.align_ms,
                r.embed_ms,
                r.total_ms
            );
        }
        println!("(medians of {} single-threaded runs; model {})", o.iterations, p.embedder.id());
    }
    Ok(ExitCode::SUCCESS)
}
