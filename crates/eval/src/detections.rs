//! `visage eval detections`: every face the detector finds in a set of
//! photos down to a low score floor, one JSON line per photo, so the trade-off
//! between missed and false faces can be tabulated for any pair of score bars
//! from one run (greedy NMS keeps the same higher-scoring boxes whatever the
//! floor: a box is only ever suppressed by a better one).
use parking_lot::Mutex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde::Serialize;

use visage_service::domain::Detection;
use visage_service::vision::Pipeline;

#[derive(Serialize)]
struct Line<'a> {
    image: &'a str,
    width: u32,
    height: u32,
    faces: Vec<Detection>,
}

/// The photos a pairs file names, each once, in a stable order.
pub fn images_of(list: &super::pairs::PairList) -> Vec<PathBuf> {
    let set: std::collections::BTreeSet<&PathBuf> = list.pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
    set.into_iter().cloned().collect()
}

/// Detects faces in every image on `threads` threads and writes one JSON
/// line per image (paths relative to `root`) to `out`, in `images` order.
pub fn dump(p: &Pipeline, images: &[PathBuf], root: &Path, threads: usize, out: &mut dyn Write) -> Result<()> {
    let next = AtomicUsize::new(0);
    let lines: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; images.len()]);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = images.get(i) else { break };
                    match line(p, path, root) {
                        Ok(l) => lines.lock()[i] = Some(l),
                        Err(e) => {
                            *failure.lock() = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    for l in lines.into_inner().into_iter().flatten() {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

fn line(p: &Pipeline, path: &Path, root: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let img = p.decode(&bytes).with_context(|| format!("cannot decode {}", path.display()))?;
    let faces = p.detect(&img)?;
    let name = path.strip_prefix(root).unwrap_or(path).to_string_lossy();
    Ok(serde_json::to_string(&Line { image: &name, width: img.width(), height: img.height(), faces })?)
}
