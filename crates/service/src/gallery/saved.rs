//! The approximate index on local disk (`--index-dir`), so that a restart
//! reopens the graph instead of building it again (minutes at a million
//! faces). Two files: the graph in usearch's format under a fresh name, and
//! `gallery.meta`, renamed into place last, which names that graph file and
//! holds what the graph does not: the model, the code scale, the graph's
//! links per node, each face's and person's id with its slot, and the
//! change-log position the saved state includes. On start-up the graph is
//! caught up from that position (every change after it applied again).
//! Any mismatch (another model or dimension, other links, a truncated or
//! foreign file, faces missing) discards the files and the graph is built.
//! With a data key the graph file (the i8 codes of every face) is sealed,
//! bound to its name; `gallery.meta` holds no biometric data.
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::{AnnIndex, AnnParams, Gallery, Index, Member};
use crate::domain::ChangePos;
use crate::sealing::{DataKeys, Sealed};

const MAGIC: &[u8; 8] = b"VISAGEGX";
const VERSION: u32 = 1;
const META: &str = "gallery.meta";

/// What `gallery.meta` says besides the members.
struct Header {
    model: String,
    dim: usize,
    scale: f32,
    connectivity: usize,
    position: ChangePos,
    graph_file: String,
}

fn put_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn u32_of(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn i64_of(r: &mut impl Read) -> std::io::Result<i64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

fn str_of(r: &mut impl Read) -> Result<String> {
    let n = u32_of(r)? as usize;
    if n > 4096 {
        bail!("a name of {n} bytes");
    }
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    Ok(String::from_utf8(b)?)
}

/// Saves the gallery's graph and its members into `dir` (created when
/// missing); the previous save stays valid until the new one is complete.
/// Returns false when the gallery's index is not a graph.
pub fn save(dir: &Path, gallery: &Gallery, model: &str, position: ChangePos, keys: &DataKeys) -> Result<bool> {
    let Some(ann) = gallery.index().as_ann() else { return Ok(false) };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let graph_file = format!("gallery-{}-{}.usearch", position.seq, uuid::Uuid::now_v7().simple());
    let graph_tmp = dir.join(format!("{graph_file}.tmp"));
    if keys.is_on() {
        let sealed = keys.seal(Sealed::Graph { file: &graph_file }, ann.to_bytes()?);
        std::fs::write(&graph_tmp, sealed).with_context(|| format!("writing {}", graph_tmp.display()))?;
    } else {
        ann.save(&graph_tmp)?;
    }
    std::fs::File::open(&graph_tmp)?.sync_all()?;
    std::fs::rename(&graph_tmp, dir.join(&graph_file))?;
    let members = gallery.members();
    let meta_tmp = dir.join(format!("{META}.tmp"));
    let mut w = BufWriter::new(std::fs::File::create(&meta_tmp)?);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    put_str(&mut w, model)?;
    w.write_all(&(ann.dim() as u32).to_le_bytes())?;
    w.write_all(&ann.scale().to_le_bytes())?;
    w.write_all(&(ann.params().connectivity as u32).to_le_bytes())?;
    w.write_all(&position.txid.to_le_bytes())?;
    w.write_all(&position.seq.to_le_bytes())?;
    put_str(&mut w, &graph_file)?;
    w.write_all(&(members.len() as u64).to_le_bytes())?;
    for m in &members {
        w.write_all(&m.face.to_le_bytes())?;
        w.write_all(&m.face_key)?;
        w.write_all(&m.person.to_le_bytes())?;
        w.write_all(&m.person_key)?;
    }
    w.write_all(MAGIC)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&meta_tmp, dir.join(META))?;
    // Older graphs are no longer named by the meta.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("gallery-") && name.ends_with(".usearch") && name != graph_file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}

fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        bail!("not a visage index file");
    }
    let version = u32_of(r)?;
    if version != VERSION {
        bail!("index file version {version}, this visage reads {VERSION}");
    }
    Ok(Header {
        model: str_of(r)?,
        dim: u32_of(r)? as usize,
        scale: f32::from_bits(u32_of(r)?),
        connectivity: u32_of(r)? as usize,
        position: ChangePos { txid: i64_of(r)?, seq: i64_of(r)? },
        graph_file: str_of(r)?,
    })
}

fn read_members(r: &mut impl Read) -> Result<Vec<Member>> {
    let mut n = [0u8; 8];
    r.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n) as usize;
    let mut members = Vec::with_capacity(n.min(1 << 28));
    let mut buf = [0u8; 40];
    for _ in 0..n {
        r.read_exact(&mut buf)?;
        let slot = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let key = |at: usize| -> [u8; 16] { buf[at..at + 16].try_into().unwrap_or([0; 16]) };
        members.push(Member { face: slot(0), face_key: key(4), person: slot(20), person_key: key(24) });
    }
    let mut end = [0u8; 8];
    r.read_exact(&mut end)?;
    if &end != MAGIC {
        bail!("the index file is truncated");
    }
    Ok(members)
}

/// A saved graph for this model and these parameters, reopened, with the
/// change-log position it includes; None when there is none, or it does not
/// fit (the reason logged).
pub fn open(dir: &Path, model: &str, dim: usize, params: AnnParams, keys: &DataKeys) -> Option<(Gallery, ChangePos)> {
    let meta = dir.join(META);
    if !meta.exists() {
        return None;
    }
    match try_open(&meta, dir, model, dim, params, keys) {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(file = %meta.display(), error = %e, "the saved index cannot be used; building it again");
            None
        }
    }
}

fn try_open(
    meta: &Path,
    dir: &Path,
    model: &str,
    dim: usize,
    params: AnnParams,
    keys: &DataKeys,
) -> Result<(Gallery, ChangePos)> {
    let mut r = BufReader::new(std::fs::File::open(meta)?);
    let h = read_header(&mut r)?;
    if h.model != model || h.dim != dim {
        bail!("it holds {} ({}-d), the service compares by {model} ({dim}-d)", h.model, h.dim);
    }
    if h.connectivity != params.connectivity {
        bail!("it links {} neighbours per face, --ann-connectivity asks for {}", h.connectivity, params.connectivity);
    }
    if h.graph_file.contains('/') || h.graph_file.contains("..") {
        bail!("it names a graph outside its folder");
    }
    let members = read_members(&mut r)?;
    let pairs: Vec<(u32, u32)> = members.iter().map(|m| (m.face, m.person)).collect();
    let path = dir.join(&h.graph_file);
    let graph = Sealed::Graph { file: &h.graph_file };
    let mut head = [0u8; 3];
    std::fs::File::open(&path)?.read_exact(&mut head)?;
    let ann = if graph.is_sealed(&head) {
        let clear = keys.open_sealed(graph, std::fs::read(&path)?)?;
        AnnIndex::from_bytes(&clear, dim, h.scale, params, &pairs)?
    } else {
        AnnIndex::open(&path, dim, h.scale, params, &pairs)?
    };
    Ok((Gallery::restore(Box::new(ann) as Box<dyn Index>, &members), h.position))
}

/// The folder a SQLite database's index goes in by default: beside the file.
pub fn default_dir(db_file: &Path) -> PathBuf {
    let mut name = db_file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".index");
    db_file.with_file_name(name)
}
