//! `visage export` / `visage import`: persons with their faces and
//! embeddings as JSON lines (a header line, then one person per line), with
//! each embedding's model id. Import refuses a file whose embeddings another
//! model made: they would never match this service's. A database with a
//! data key exports its embeddings sealed (bound to face and model) unless
//! asked to decrypt; import opens them with the keys given and the store
//! seals them again with its own.
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::ACTOR;
use crate::sealing::{DataKeys, Sealed};
use crate::store::{FaceExport, FaceRecord, Person, Store, blob_to_embedding, embedding_to_blob};

pub const FORMAT: &str = "visage-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
    /// The data key the embeddings are sealed with (none: in clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub person: Person,
    pub faces: Vec<FileFace>,
}

/// A face as the file holds it: its embedding in clear or sealed.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileFace {
    #[serde(flatten)]
    pub face: FaceRecord,
    pub source_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// Base64 of the embedding sealed by the exporting database's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_embedding: Option<String>,
}

impl FileFace {
    fn sealed(f: FaceExport, keys: &DataKeys) -> Self {
        let what = Sealed::Embedding { face: &f.face.id, model: &f.face.model };
        let sealed = keys.seal(what, embedding_to_blob(&f.embedding));
        let sealed_embedding = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
        Self { face: f.face, source_sha256: f.source_sha256, embedding: None, sealed_embedding }
    }

    fn clear(f: FaceExport) -> Self {
        Self { face: f.face, source_sha256: f.source_sha256, embedding: Some(f.embedding), sealed_embedding: None }
    }

    /// The face with its embedding's values, opened with `keys` when sealed.
    fn opened(&self, keys: &DataKeys) -> Result<FaceExport> {
        let id = &self.face.id;
        let embedding = match (&self.embedding, &self.sealed_embedding) {
            (Some(values), None) => values.clone(),
            (None, Some(b64)) => {
                let sealed = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .with_context(|| format!("face {id}: `sealed_embedding` is not base64"))?;
                let what = Sealed::Embedding { face: id, model: &self.face.model };
                let clear = keys.open(what, &sealed).with_context(|| format!("face {id}"))?;
                blob_to_embedding(&clear).with_context(|| format!("face {id}"))?
            }
            _ => bail!("face {id}: give `embedding` or `sealed_embedding`, one of them"),
        };
        Ok(FaceExport { face: self.face.clone(), source_sha256: self.source_sha256.clone(), embedding })
    }
}

/// Writes every person, the embeddings sealed with the store's data key
/// unless `decrypt` (or the store has none); returns (persons, faces).
pub async fn export(store: &Store, out: &mut impl Write, decrypt: bool) -> Result<(usize, usize)> {
    let keys = store.sealing();
    let seal = keys.is_on() && !decrypt;
    let sealed_by = keys.current().filter(|_| seal).map(|k| k.id().to_string());
    let header = Header { format: FORMAT.into(), version: VERSION, exported_at: crate::store::now(), sealed_by };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let (mut persons, mut faces) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_persons(500, cursor.as_deref()).await?;
        for person in &page {
            let f = store.export_faces(&person.id).await?;
            faces += f.len();
            persons += 1;
            let f = f.into_iter().map(|f| if seal { FileFace::sealed(f, keys) } else { FileFace::clear(f) }).collect();
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

/// A line with its embeddings opened.
struct Opened {
    person: Person,
    faces: Vec<FaceExport>,
}

/// Imports every person of `input` whose id is new here, its sealed
/// embeddings opened with `file_keys`. Nothing is written when any embedding
/// was made by another model than `model`, does not open, or when a line is
/// malformed.
pub async fn import(
    store: &Store,
    input: impl BufRead,
    model: &str,
    dim: Option<usize>,
    file_keys: &DataKeys,
) -> Result<ImportSummary> {
    let (_, file) = read_lines(input)?;
    let mut lines = Vec::with_capacity(file.len());
    for line in file {
        let faces = line.faces.iter().map(|f| f.opened(file_keys)).collect::<Result<Vec<_>>>()?;
        lines.push(Opened { person: line.person, faces });
    }
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
