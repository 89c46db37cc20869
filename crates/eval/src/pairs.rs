//! Pair lists: the LFW "View 2" format and a simple CSV.
//!
//! LFW: a first line `10<TAB>300` (folds, matched pairs per fold), then per
//! fold `name<TAB>i<TAB>j` lines for matched pairs and
//! `name1<TAB>i<TAB>name2<TAB>j` lines for mismatched ones; images live at
//! `ROOT/name/name_%04d.jpg`. CSV: a header naming `img_a,img_b,same` (other
//! columns are ignored), paths relative to ROOT, `same` one of 1/0/true/false.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub same: bool,
    /// Cross-validation fold, 0-based.
    pub fold: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PairList {
    pub pairs: Vec<Pair>,
    pub folds: usize,
}

/// Parses either format, chosen by the first line: LFW View 2 (`folds
/// pairs`), LFW View 1 (one count line: `pairsDevTrain.txt`,
/// `pairsDevTest.txt`; its pairs are dealt into `folds` stratified folds) or CSV.
pub fn parse(text: &str, root: &Path, folds: usize) -> Result<PairList> {
    let first = text.lines().next().unwrap_or_default();
    let fields: Vec<&str> = first.split_whitespace().collect();
    let numeric = !fields.is_empty() && fields.iter().all(|f| f.parse::<usize>().is_ok());
    match fields.len() {
        2 if numeric => parse_lfw(text, root),
        1 if numeric => {
            let mut list =
                parse_lfw(&format!("1\t{}\n{}", fields[0], text.split_once('\n').map_or("", |x| x.1)), root)?;
            stratify(&mut list.pairs, folds.max(2));
            list.folds = folds.max(2);
            Ok(list)
        }
        _ => parse_csv(text, root, folds),
    }
}

/// Deals matched and mismatched pairs round-robin into `folds` folds, each
/// kind separately, so every fold has both.
fn stratify(pairs: &mut [Pair], folds: usize) {
    let (mut n_same, mut n_diff) = (0, 0);
    for p in pairs {
        let counter = if p.same { &mut n_same } else { &mut n_diff };
        p.fold = *counter % folds;
        *counter += 1;
    }
}

fn lfw_path(root: &Path, name: &str, index: &str) -> Result<PathBuf> {
    let i: u32 = index.parse().with_context(|| format!("bad image number {index:?}"))?;
    Ok(root.join(name).join(format!("{name}_{i:04}.jpg")))
}

pub fn parse_lfw(text: &str, root: &Path) -> Result<PairList> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().context("empty pairs file")?;
    let h: Vec<usize> = header.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    let (folds, per) = (h[0], h[1]);
    ensure!(folds > 0 && per > 0, "the header must give folds and pairs per fold");
    let mut pairs = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split('\t').map(str::trim).collect();
        let f = if f.len() < 3 { line.split_whitespace().collect() } else { f };
        let fold = pairs.len() / (2 * per);
        let pair = match f.as_slice() {
            [name, i, j] => Pair { a: lfw_path(root, name, i)?, b: lfw_path(root, name, j)?, same: true, fold },
            [n1, i, n2, j] => Pair { a: lfw_path(root, n1, i)?, b: lfw_path(root, n2, j)?, same: false, fold },
            _ => bail!("line {}: expected 3 or 4 fields, got {}", n + 1, f.len()),
        };
        ensure!(fold < folds, "line {}: more pairs than {folds} folds of {per}+{per}", n + 1);
        pairs.push(pair);
    }
    ensure!(pairs.len() == folds * per * 2, "expected {} pairs, found {}", folds * per * 2, pairs.len());
    Ok(PairList { pairs, folds })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "same" => Some(true),
        "0" | "false" | "no" | "different" => Some(false),
        _ => None,
    }
}

/// CSV pairs; folds are stratified round-robin (matched and mismatched pairs
/// are dealt to folds separately) so every fold has both kinds.
pub fn parse_csv(text: &str, root: &Path, folds: usize) -> Result<PairList> {
    let folds = folds.max(2);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().context("empty pairs file")?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col =
        |name: &str| cols.iter().position(|c| *c == name).with_context(|| format!("the CSV header lacks {name:?}"));
    let (ia, ib, is) = (col("img_a")?, col("img_b")?, col("same")?);
    let mut pairs = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| f.get(i).copied().with_context(|| format!("line {}: too few columns", n + 1));
        let same = parse_bool(get(is)?).with_context(|| format!("line {}: bad `same` value", n + 1))?;
        pairs.push(Pair { a: root.join(get(ia)?), b: root.join(get(ib)?), same, fold: 0 });
    }
    ensure!(
        pairs.iter().any(|p| p.same) && pairs.iter().any(|p| !p.same),
        "the pairs need both matched and mismatched examples"
    );
    stratify(&mut pairs, folds);
    Ok(PairList { pairs, folds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lfw_view2_with_folds_and_paths() {
        let text = "2\t1\nAaron\t1\t2\nAaron\t1\tBob\t3\nCarl\t4\t12\nCarl\t1\tDee\t1\n";
        let l = parse(text, Path::new("/lfw"), 10).unwrap();
        assert_eq!(l.folds, 2);
        assert_eq!(l.pairs.len(), 4);
        assert_eq!(l.pairs[0].a, PathBuf::from("/lfw/Aaron/Aaron_0001.jpg"));
        assert!(l.pairs[0].same && !l.pairs[1].same);
        assert_eq!(l.pairs[1].b, PathBuf::from("/lfw/Bob/Bob_0003.jpg"));
        assert_eq!(l.pairs[2].b, PathBuf::from("/lfw/Carl/Carl_0012.jpg"));
        assert_eq!(l.pairs.iter().map(|p| p.fold).collect::<Vec<_>>(), vec![0, 0, 1, 1]);
        assert!(parse("2\t1\nAaron\t1\t2\n", Path::new("/"), 10).is_err());
    }

    #[test]
    fn parses_lfw_view1_with_its_single_count_line_into_stratified_folds() {
        let text = "2\nAaron\t1\t2\nCarl\t4\t12\nAaron\t1\tBob\t3\nCarl\t1\tDee\t1\n";
        let l = parse(text, Path::new("/lfw"), 2).unwrap();
        assert_eq!(l.folds, 2);
        assert_eq!(l.pairs.len(), 4);
        assert_eq!(
            l.pairs.iter().map(|p| (p.same, p.fold)).collect::<Vec<_>>(),
            vec![(true, 0), (true, 1), (false, 0), (false, 1)]
        );
        assert_eq!(l.pairs[3].b, PathBuf::from("/lfw/Dee/Dee_0001.jpg"));
        // The count must match the pairs that follow.
        assert!(parse("3\nAaron\t1\t2\nAaron\t1\tBob\t3\n", Path::new("/"), 2).is_err());
    }

    #[test]
    fn parses_csv_with_stratified_folds() {
        let text =
            "img_a,img_b,same,source\na.jpg,b.jpg,1,x\na.jpg,c.jpg,0,x\nb.jpg,c.jpg,True,y\nc.jpg,d.jpg,false,y\n";
        let l = parse(text, Path::new("imgs"), 2).unwrap();
        assert_eq!(l.pairs.len(), 4);
        assert_eq!(l.pairs[0].a, PathBuf::from("imgs/a.jpg"));
        assert_eq!(
            l.pairs.iter().map(|p| (p.same, p.fold)).collect::<Vec<_>>(),
            vec![(true, 0), (false, 0), (true, 1), (false, 1)]
        );
        assert!(parse("img_a,img_b,same\na,b,maybe\n", Path::new("."), 2).is_err());
        assert!(parse("x,y\n", Path::new("."), 2).is_err());
    }
}
