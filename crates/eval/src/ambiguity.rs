//! `visage eval ambiguity`: what the "ambiguous" verdict buys in one-shot
//! identification. Each person of a pairs file with two or more photos is
//! enrolled from the first (through the enrollment gates) and searched with
//! up to `probes` others; persons with one photo are strangers. Optionally
//! some persons are enrolled twice, from two photos under two ids (the
//! "two enrolled persons who are really one man" of a real gallery), and
//! their remaining photos are searched too. For each margin: how many wrong
//! names (a genuine probe named as someone else, a stranger named at all)
//! become "ambiguous", and how many right names are lost to it.
use std::path::PathBuf;

use serde::Serialize;

use visage_service::domain::similarity::dot;

/// Who a probe shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Enrolled person `i` (any of their gallery entries is right).
    Person(usize),
    Stranger,
}

/// The photos: gallery entries (embedding, person) and probes.
#[derive(Debug, Clone, Default)]
pub struct Protocol {
    /// (photo, gallery id): one id per enrollment, as the service gives each person one.
    pub enrolled: Vec<(PathBuf, usize)>,
    /// By gallery id: the person it really is.
    pub owner: Vec<usize>,
    pub probes: Vec<(PathBuf, Truth)>,
    /// Persons enrolled twice, under two ids (their probes are the duplicate ones).
    pub duplicated: Vec<usize>,
}

/// Persons `names` (in order): first photo enrolled, up to `probes` more
/// searched; the first `duplicates` persons with three or more photos also
/// have their second photo enrolled as another entry; a person with one
/// photo is a stranger.
pub fn protocol(root: &std::path::Path, names: &[String], probes: usize, duplicates: usize) -> Protocol {
    let mut p = Protocol::default();
    let mut person = 0usize;
    for name in names {
        let mut photos: Vec<PathBuf> = std::fs::read_dir(root.join(name))
            .map(|d| d.flatten().map(|e| e.path()).filter(|x| x.is_file()).collect())
            .unwrap_or_default();
        photos.sort();
        match photos.len() {
            0 => {}
            1 => p.probes.push((photos[0].clone(), Truth::Stranger)),
            n => {
                p.enrolled.push((photos[0].clone(), p.owner.len()));
                p.owner.push(person);
                let mut rest = 1;
                if n >= 3 && p.duplicated.len() < duplicates {
                    p.enrolled.push((photos[1].clone(), p.owner.len()));
                    p.owner.push(person);
                    p.duplicated.push(person);
                    rest = 2;
                }
                for photo in photos.iter().skip(rest).take(probes) {
                    p.probes.push((photo.clone(), Truth::Person(person)));
                }
                person += 1;
            }
        }
    }
    p
}

/// Outcomes at one margin.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Row {
    pub margin: f32,
    /// Genuine probes (of persons enrolled once) named right.
    pub right: usize,
    /// Genuine probes named as someone else, and strangers named at all.
    pub wrong: usize,
    pub ambiguous: usize,
    /// Of the answers right without a margin, those now ambiguous.
    pub right_lost: usize,
    /// Of the answers wrong without a margin, those now ambiguous.
    pub wrong_caught: usize,
    /// Probes of persons enrolled twice: named (as either entry), ambiguous.
    pub duplicate_named: usize,
    pub duplicate_ambiguous: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Named(usize),
    Ambiguous,
    Unknown,
}

/// The two best gallery ids and their similarities, best first.
type BestTwo = [(usize, f32); 2];

/// The two best persons (by their best entry) for each probe.
fn best_two(gallery: &[(Vec<f32>, usize)], probe: &[f32]) -> BestTwo {
    let mut best: Vec<(usize, f32)> = Vec::new();
    for (e, person) in gallery {
        let s = dot(probe, e);
        match best.iter_mut().find(|b| b.0 == *person) {
            Some(b) => b.1 = b.1.max(s),
            None => best.push((*person, s)),
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    [best.first().copied().unwrap_or((usize::MAX, -1.0)), best.get(1).copied().unwrap_or((usize::MAX, -1.0))]
}

/// The service's rule (`service::assign` for one face): both best persons
/// at or above `threshold` less than `margin` apart is ambiguous.
fn answer(two: &BestTwo, threshold: f32, margin: f32) -> Answer {
    let [(p1, s1), (_, s2)] = *two;
    if s2 >= threshold && s1 - s2 < margin {
        Answer::Ambiguous
    } else if s1 >= threshold {
        Answer::Named(p1)
    } else {
        Answer::Unknown
    }
}

/// Scores every probe (None: no face) at each margin; `gallery` holds
/// (embedding, gallery id) and `owner` maps a gallery id to its person.
pub fn score(
    gallery: &[(Vec<f32>, usize)],
    owner: &[usize],
    probes: &[(Option<Vec<f32>>, Truth)],
    duplicated: &[usize],
    threshold: f32,
    margins: &[f32],
) -> Vec<Row> {
    let twos: Vec<Option<(BestTwo, Truth)>> =
        probes.iter().map(|(e, t)| e.as_ref().map(|e| (best_two(gallery, e), *t))).collect();
    let is = |p: usize, q: usize| owner.get(p) == Some(&q);
    let is_right = |a: Answer, t: Truth| matches!((a, t), (Answer::Named(p), Truth::Person(q)) if is(p, q));
    let is_wrong = |a: Answer, t: Truth| match (a, t) {
        (Answer::Named(p), Truth::Person(q)) => !is(p, q),
        (Answer::Named(_), Truth::Stranger) => true,
        _ => false,
    };
    margins
        .iter()
        .map(|&margin| {
            let mut row = Row { margin, ..Row::default() };
            for (two, truth) in twos.iter().flatten() {
                let (a, before) = (answer(two, threshold, margin), answer(two, threshold, 0.0));
                if let Truth::Person(q) = truth
                    && duplicated.contains(q)
                {
                    row.duplicate_named += usize::from(is_right(a, *truth));
                    row.duplicate_ambiguous += usize::from(a == Answer::Ambiguous);
                    continue;
                }
                row.right += usize::from(is_right(a, *truth));
                row.wrong += usize::from(is_wrong(a, *truth));
                row.ambiguous += usize::from(a == Answer::Ambiguous);
                row.right_lost += usize::from(a == Answer::Ambiguous && is_right(before, *truth));
                row.wrong_caught += usize::from(a == Answer::Ambiguous && is_wrong(before, *truth));
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_margin_turns_close_contests_ambiguous_and_counts_what_it_cost() {
        let g = |x: f32, y: f32, p: usize| (vec![x, y], p);
        // Persons 0 and 1 far apart, and person 2.
        let gallery = vec![g(1.0, 0.0, 0), g(0.0, 1.0, 1), g(0.6, 0.8, 2)];
        let owner = [0, 1, 2];
        let probe = |x: f32, y: f32| Some(vec![x, y]);
        let probes = vec![
            // Right: person 0 at 1.0, second (person 2) at 0.6.
            (probe(1.0, 0.0), Truth::Person(0)),
            // Person 1's probe nearer person 2 (0.98) than person 1 (0.8): wrong, and close.
            (probe(0.6, 0.8), Truth::Person(1)),
            // A stranger: nearest person 1 at 1.0 (person 2 at 0.8).
            (probe(0.0, 1.0), Truth::Stranger),
            (None, Truth::Person(0)),
        ];
        let rows = score(&gallery, &owner, &probes, &[], 0.5, &[0.0, 0.25]);
        assert_eq!((rows[0].right, rows[0].wrong, rows[0].ambiguous), (1, 2, 0));
        // With 0.25: the person-1 probe (1.0 vs 0.8) and the stranger (1.0 vs 0.8) become ambiguous.
        let r = &rows[1];
        assert_eq!((r.right, r.wrong, r.ambiguous, r.wrong_caught, r.right_lost), (1, 0, 2, 2, 0));
        // Person 2 enrolled twice, under ids 2 and 3: named at once without a
        // margin (either id is right), ambiguous with one.
        let twice = [gallery.clone(), vec![g(0.62, 0.78, 3)]].concat();
        let probes = [(probe(0.6, 0.8), Truth::Person(2))];
        let rows = score(&twice, &[0, 1, 2, 2], &probes, &[2], 0.5, &[0.0, 0.05]);
        assert_eq!((rows[0].duplicate_named, rows[0].duplicate_ambiguous, rows[0].right), (1, 0, 0));
        assert_eq!((rows[1].duplicate_named, rows[1].duplicate_ambiguous), (0, 1));
    }

    #[test]
    fn the_chosen_margin_catches_nine_in_ten_duplicates_that_any_margin_would() {
        let row = |margin: f32, duplicate_ambiguous: usize| Row { margin, duplicate_ambiguous, ..Row::default() };
        let rows = [row(0.0, 0), row(0.01, 8), row(0.02, 9), row(0.03, 10), row(ANY_LEAD, 10)];
        assert_eq!(choose(&rows).map(|r| r.margin), Some(0.02));
        assert_eq!(choose(&[row(0.0, 0), row(ANY_LEAD, 0)]), None);
        assert_eq!(margins()[15], 0.075, "margins are exact decimals");
    }
}

/// A margin no lead reaches: every face with two persons above the
/// threshold is ambiguous.
const ANY_LEAD: f32 = 2.0;

/// The smallest margin that makes 90 % of the probes of persons enrolled
/// twice ambiguous, of those that can be (both entries above the threshold,
/// as [`ANY_LEAD`] counts them): the verdict's purpose. `rows` end with
/// [`ANY_LEAD`]'s.
pub fn choose(rows: &[Row]) -> Option<&Row> {
    let most = rows.last()?.duplicate_ambiguous;
    rows.iter().find(|r| most > 0 && r.duplicate_ambiguous * 10 >= most * 9)
}

/// `visage eval ambiguity`'s options.
#[derive(Debug, Clone)]
pub struct AmbiguityOptions {
    pub root: PathBuf,
    /// Only the persons this pairs file names.
    pub pairs: Option<PathBuf>,
    /// Photos searched per enrolled person.
    pub probes: usize,
    /// Persons enrolled twice.
    pub duplicates: usize,
    /// The identification threshold (None: the embedder's).
    pub threshold: Option<f32>,
    /// Store the chosen margin in the embedder's reference file.
    pub write: bool,
    pub json: bool,
}

/// Margins tried: 0 to 0.2 by 0.005, then [`ANY_LEAD`].
fn margins() -> Vec<f32> {
    (0..=40).map(|m| (f64::from(m) * 0.005) as f32).chain([ANY_LEAD]).collect()
}

/// `visage eval ambiguity`.
pub fn command(o: AmbiguityOptions, models: &super::Models) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context as _;
    let names: Vec<String> = super::persons_named(&o.root, o.pairs.as_deref())?.into_iter().collect();
    let proto = protocol(&o.root, &names, o.probes, o.duplicates);
    let p = models.load()?;
    let model = p.embedder.id().clone();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let svc = visage_service::service::ServiceConfig::default();
    let gate = Some((svc.min_face_size, svc.min_sharpness));
    let photos: Vec<&PathBuf> = proto.enrolled.iter().map(|e| &e.0).collect();
    let enrolled = super::analyze_all(&p, &photos, threads, visage_service::domain::FaceChoice::Largest, gate, false)?;
    let gallery: Vec<(Vec<f32>, usize)> =
        enrolled.into_iter().zip(&proto.enrolled).filter_map(|(e, (_, id))| Some((e?, *id))).collect();
    let photos: Vec<&PathBuf> = proto.probes.iter().map(|e| &e.0).collect();
    let probes = super::analyze_all(&p, &photos, threads, visage_service::domain::FaceChoice::Largest, None, false)?;
    let probes: Vec<(Option<Vec<f32>>, Truth)> = probes.into_iter().zip(proto.probes.iter().map(|x| x.1)).collect();
    let threshold = o.threshold.unwrap_or(models.policy(&p)?.identify);
    let rows = score(&gallery, &proto.owner, &probes, &proto.duplicated, threshold, &margins());
    let strangers = probes.iter().filter(|p| p.1 == Truth::Stranger).count();
    let chosen = choose(&rows);
    let mut in_force = visage_service::calibration::Reference::load(&models.dir, &model.name, &model.to_string())?
        .and_then(|r| r.ambiguity_margin);
    if o.write {
        let chosen = chosen.context("no probe of a person enrolled twice has both entries above the threshold")?;
        let path = visage_service::calibration::Reference::path(&models.dir, &model.name);
        let mut r = visage_service::calibration::Reference::load(&models.dir, &model.name, &model.to_string())?
            .with_context(|| format!("no reference of {model} at {}", path.display()))?;
        r.ambiguity_margin = Some(chosen.margin);
        r.ambiguity_source = Some(format!(
            "`visage eval ambiguity --pairs {} --probes {} --duplicates {} --write` at threshold {threshold}: the \
             smallest margin (0 to 0.2 by 0.005) that makes ambiguous 90 % of the probes of persons enrolled twice \
             that any margin does ({} of {}; {} were named); it caught {} of {} wrong names and lost {} of {} right ones",
            o.pairs.as_ref().and_then(|f| f.file_name()).map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            o.probes,
            o.duplicates,
            chosen.duplicate_ambiguous,
            rows.last().map_or(0, |r| r.duplicate_ambiguous),
            chosen.duplicate_named,
            chosen.wrong_caught,
            rows[0].wrong,
            chosen.right_lost,
            rows[0].right,
        ));
        r.save(&path)?;
        in_force = Some(chosen.margin);
        println!("{}: ambiguity margin {}", path.display(), chosen.margin);
    }
    if o.json {
        let out = serde_json::json!({
            "model": model.to_string(), "threshold": threshold, "gallery": gallery.len(),
            "probes": probes.len(), "strangers": strangers, "duplicated_persons": proto.duplicated.len(),
            "chosen": chosen.map(|c| c.margin), "rows": rows
        });
        println!("{out}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!(
        "{model}: threshold {threshold}; gallery {} entries ({} persons enrolled twice), {} probes ({} strangers, {} without a face)",
        gallery.len(),
        proto.duplicated.len(),
        probes.len(),
        strangers,
        probes.iter().filter(|p| p.0.is_none()).count()
    );
    println!(
        "{:>6} {:>6} {:>6} {:>9} {:>10} {:>12} {:>9} {:>9}",
        "margin", "right", "wrong", "ambiguous", "right lost", "wrong caught", "dup named", "dup ambig"
    );
    for r in &rows {
        let mark = match (chosen.is_some_and(|c| c.margin == r.margin), in_force == Some(r.margin)) {
            (_, true) => "  <- the reference's margin",
            (true, _) => "  <- the rule's choice here",
            _ => "",
        };
        println!(
            "{:>6} {:>6} {:>6} {:>9} {:>10} {:>12} {:>9} {:>9}{mark}",
            if r.margin == ANY_LEAD { "any".into() } else { format!("{:.3}", r.margin) },
            r.right,
            r.wrong,
            r.ambiguous,
            r.right_lost,
            r.wrong_caught,
            r.duplicate_named,
            r.duplicate_ambiguous
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
