//! `visage export` / `visage import`: persons with their faces and
//! embeddings as JSON lines (a header line, then one person per line), with
//! each embedding's model id. Import refuses a file whose embeddings another
//! model made: they would never match this service's.
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::ACTOR;
use crate::store::{FaceExport, Person, Store};

pub const FORMAT: &str = "visage-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub person: Person,
    pub faces: Vec<FaceExport>,
}

/// Writes every person; returns (persons, faces).
pub async fn export(store: &Store, out: &mut impl Write) -> Result<(usize, usize)> {
    let header = Header { format: FORMAT.into(), version: VERSION, exported_at: crate::store::now() };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let (mut persons, mut faces) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_persons(500, cursor.as_deref()).await?;
        for person in &page {
            let f = store.export_faces(&person.id).await?;
            faces += f.len();
            persons += 1;
            writeln!(out, "{}", serde_json::to_string(&Line { person: person.clone(), faces: f })?)?;
        }
        match page.last() {
            Some(last) if page.len() == 500 => cursor = Some(last.id.clone()),
            _ => break,
        }
    }
    out.flush()?;
    Ok((persons, faces))
}

#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub persons_imported: usize,
    pub faces_imported: usize,
    /// Persons whose id already exists here (left as they are).
    pub persons_already_present: usize,
}

fn read_lines(input: impl BufRead) -> Result<(Header, Vec<Line>)> {
    let mut lines = input.lines();
    let first = lines.next().context("the file is empty")??;
    let header: Header = serde_json::from_str(&first).context("line 1 is not a visage export header")?;
    if header.format != FORMAT || header.version != VERSION {
        bail!("not a {FORMAT} version {VERSION} file (found {} version {})", header.format, header.version);
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).with_context(|| format!("line {}", i + 2))?);
    }
    Ok((header, out))
}

/// Imports every person of `input` whose id is new here. Nothing is written
/// when any embedding was made by another model than `model`, or when a
/// line is malformed.
pub async fn import(store: &Store, input: impl BufRead, model: &str, dim: Option<usize>) -> Result<ImportSummary> {
    let (_, lines) = read_lines(input)?;
    let mut foreign = std::collections::BTreeMap::<&str, usize>::new();
    for line in &lines {
        crate::domain::valid_name(&line.person.name)
            .map_err(|e| anyhow::anyhow!("person {}: invalid `name`: {e}", line.person.id))?;
        anyhow::ensure!(crate::domain::is_valid_id(&line.person.id), "malformed person id {:?}", line.person.id);
        for f in &line.faces {
            if f.face.model != model {
                *foreign.entry(f.face.model.as_str()).or_default() += 1;
            }
            anyhow::ensure!(crate::domain::is_valid_id(&f.face.id), "malformed face id {:?}", f.face.id);
            if let Some(d) = dim {
                anyhow::ensure!(
                    f.embedding.len() == d,
                    "face {}: {} values, expected {d}",
                    f.face.id,
                    f.embedding.len()
                );
            }
        }
    }
    if !foreign.is_empty() {
        let list: Vec<String> = foreign.iter().map(|(m, n)| format!("{n} from {m}")).collect();
        bail!(
            "refusing to import: embeddings from another model than this service's {model} ({}); they would \
             never match. Import with the same embedder, or enroll the photos again",
            list.join(", ")
        );
    }
    let mut summary = ImportSummary::default();
    for line in &lines {
        if store.import_person(&line.person, &line.faces, ACTOR).await? {
            summary.persons_imported += 1;
            summary.faces_imported += line.faces.len();
        } else {
            summary.persons_already_present += 1;
        }
    }
    Ok(summary)
}
