//! Photo files on disk: which files of a folder are images visage reads
//! (by extension; hidden files skipped), for the commands and measurements
//! that take a folder of photos.
use std::path::Path;

use anyhow::{Context, Result};

/// The image files of a folder (not recursive), sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    const EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "jfif"];
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        let image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if path.is_file() && image && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The image files of a folder and every folder below it, sorted by path.
pub fn image_files_below(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            }
        }
        files.extend(image_files(&d)?);
    }
    files.sort();
    Ok(files)
}
