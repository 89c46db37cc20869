//! Matching: two photos compared (1:1 without a gallery), a photo verified
//! against one person (1:1), every face of a photo identified (1:N).
use super::outbox::{RequestTags, identify_events};
use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use sha2::Digest as _;

use super::Service;
use crate::domain::{FaceChoice, Threshold};
use crate::gallery::Candidate;
use crate::service::error::{Error, Result};
use crate::telemetry;
use crate::vision::pipeline::Face;

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    #[serde(rename = "match")]
    pub is_match: bool,
    pub similarity: f32,
    pub threshold: f32,
    /// The share of other persons' faces expected to score this similarity
    /// or more (null: the embedder has no reference scores).
    pub estimated_far: Option<f64>,
    pub person_id: String,
    /// The enrolled face that matched best.
    pub best_face_id: String,
    /// How many enrolled faces were compared.
    pub compared_faces: usize,
    pub decision: DecisionRule,
    /// The probe face used.
    pub face: Face,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentifiedPerson {
    pub person_id: String,
    pub name: String,
    pub similarity: f32,
    pub face_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentifiedFace {
    pub face: Face,
    /// The person this face is, or null when no one clears the threshold.
    #[serde(rename = "match")]
    pub matched: Option<IdentifiedPerson>,
    pub status: IdentifyStatus,
    /// The most similar enrolled persons, best first (whether or not they match).
    pub candidates: Vec<IdentifiedPerson>,
    /// The chance that a stranger's face scores the best candidate's
    /// similarity or more against a gallery this size (null: no candidate,
    /// or the embedder has no reference scores).
    pub estimated_fpir: Option<f64>,
    /// With `remember=unknown`: the id this face was kept under as
    /// unassigned (null when it was named, or below the enrollment gates).
    pub remembered_face_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    pub threshold: f32,
    /// How far the best person must lead the second when both clear the
    /// threshold; closer than this the face is "ambiguous".
    pub ambiguity_margin: f32,
    pub gallery_size: usize,
    pub faces: Vec<IdentifiedFace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    #[serde(rename = "match")]
    pub is_match: bool,
    pub similarity: f32,
    pub threshold: f32,
    /// The share of different persons' pairs expected to score this similarity or more.
    pub estimated_far: Option<f64>,
    pub face_a: Face,
    pub face_b: Face,
    pub model: String,
}

/// Whether identify put a face to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifyStatus {
    /// An enrolled person clears the threshold (`match` names them).
    Identified,
    /// No one does (`match` is null).
    Unknown,
    /// Two or more persons clear the threshold and the best does not lead
    /// by the margin (`match` is null; `candidates` lists them).
    Ambiguous,
}

/// What identify decides for one face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate at this index.
    Identified(usize),
    Ambiguous,
    Unknown,
}

/// How verify decides, stated in every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DecisionRule {
    /// The person's most similar enrolled face against the threshold.
    #[serde(rename = "highest cosine similarity over the person's enrolled faces, compared with the threshold")]
    BestEnrolledFace,
}

/// Longest a replica waits for the names of identified persons before
/// answering with the names it has seen.
const NAMES_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Service {
    pub async fn compare(&self, a: Bytes, b: Bytes) -> Result<Comparison> {
        let face_a = self.probe(a, FaceChoice::Largest).await?;
        let face_b = self.probe(b, FaceChoice::Largest).await?;
        let similarity = similarity(&face_a, &face_b)?;
        let threshold = self.verify_threshold();
        Ok(Comparison {
            is_match: similarity >= threshold,
            similarity,
            threshold,
            estimated_far: self.calibrated().estimate.far(f64::from(similarity)),
            face_a,
            face_b,
            model: self.model.clone(),
        })
    }

    pub async fn verify(
        &self,
        person_id: &str,
        bytes: Bytes,
        choice: FaceChoice,
        threshold: Option<Threshold>,
    ) -> Result<Verification> {
        self.known_person(person_id).await?;
        let face = self.probe(bytes, choice).await?;
        let query = &face.embedding.as_ref().ok_or(Error::NoFace)?.values;
        let found = self.gallery_read().best_of_person(query, person_id);
        let (best, compared) = found.ok_or_else(|| Error::NoEnrolledFaces(person_id.into()))?;
        let threshold = threshold.map_or_else(|| self.verify_threshold(), Threshold::get);
        Ok(Verification {
            is_match: best.similarity >= threshold,
            similarity: best.similarity,
            threshold,
            estimated_far: self.calibrated().estimate.far(f64::from(best.similarity)),
            person_id: person_id.into(),
            best_face_id: best.face_id,
            compared_faces: compared,
            decision: DecisionRule::BestEnrolledFace,
            face,
        })
    }

    /// Every face in the photo against the whole gallery. A person is assigned
    /// to at most one face (the most similar pairs are assigned first).
    /// With `remember` (the actor): the faces it cannot name are kept as
    /// unassigned (`--remember-unknown` only).
    pub async fn identify(
        &self,
        bytes: Bytes,
        top_k: Option<usize>,
        threshold: Option<Threshold>,
        remember: Option<&str>,
        tags: &RequestTags,
    ) -> Result<Identification> {
        if remember.is_some() {
            if !self.config.remember_unknown {
                return Err(Error::RememberDisabled);
            }
            self.writable()?;
        }
        let top_k = top_k.unwrap_or(self.config.default_top_k);
        let source = remember.map(|_| hex::encode(sha2::Sha256::digest(&bytes)));
        let crops = remember.is_some() && self.config.keep_crops;
        let (analysis, kept_crops) = self.analyze_keeping(bytes, true, crops).await?;
        let faces = analysis.faces;
        // Search a little deeper than top_k so assignment has alternatives.
        let depth = top_k.max(faces.len() + 1);
        let queries: Vec<Option<Vec<f32>>> =
            faces.iter().map(|f| f.embedding.as_ref().map(|e| e.values.clone())).collect();
        let gallery = self.gallery.clone();
        // A large gallery scan takes milliseconds: keep it off the async workers.
        let span = tracing::Span::current();
        let (gallery_faces, gallery_size, lists) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let start = Instant::now();
            let g = gallery.read();
            let lists: Vec<Vec<Candidate>> =
                queries.iter().map(|q| q.as_ref().map(|q| g.search(q, depth)).unwrap_or_default()).collect();
            telemetry::record_stage("search", start.elapsed());
            (g.faces(), g.persons(), lists)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("gallery search failed: {e}")))?;
        let names = self.names(lists.iter().flatten().map(|c| c.person_id.as_str())).await?;
        let threshold = threshold.map_or_else(|| self.identify_threshold(gallery_faces), Threshold::get);
        let margin = self.identify_margin();
        // The estimate is shared, not copied (its histograms are tens of kilobytes).
        let calibrated = self.calibrated();
        let estimate = &calibrated.estimate;
        let assigned = assign(&lists, threshold, margin);
        let person = |c: &Candidate| IdentifiedPerson {
            person_id: c.person_id.clone(),
            name: names.get(&c.person_id).cloned().unwrap_or_default(),
            similarity: c.similarity,
            face_id: c.face_id.clone(),
        };
        let faces = faces
            .into_iter()
            .zip(&lists)
            .zip(assigned)
            .map(|((face, list), verdict)| {
                let (status, matched) = match verdict {
                    Verdict::Identified(i) => (IdentifyStatus::Identified, Some(person(&list[i]))),
                    Verdict::Ambiguous => (IdentifyStatus::Ambiguous, None),
                    Verdict::Unknown => (IdentifyStatus::Unknown, None),
                };
                IdentifiedFace {
                    status,
                    matched,
                    remembered_face_id: None,
                    candidates: list.iter().take(top_k).map(person).collect(),
                    estimated_fpir: list.first().and_then(|c| estimate.fpir(f64::from(c.similarity), gallery_faces)),
                    face,
                }
            })
            .collect();
        let mut answer = Identification { threshold, ambiguity_margin: margin, gallery_size, faces };
        if let (Some(actor), Some(source)) = (remember, source) {
            self.remember_unknown(&mut answer.faces, kept_crops, &source, actor).await?;
        }
        self.events.record(identify_events(&answer, tags), self.database_up()).await;
        Ok(answer)
    }

    /// Names of the persons; a replica whose database is unreachable (or
    /// does not answer within [`NAMES_WAIT`]) answers
    /// with the names it has seen (others stay empty).
    async fn names<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Result<HashMap<String, String>> {
        let mut unique: Vec<&str> = ids.collect();
        unique.sort_unstable();
        unique.dedup();
        let Some(f) = &self.follow else { return Ok(self.store.person_names(&unique).await?) };
        if self.database_up() {
            // Not the pool's 5 s: a database that stopped answering must not hold up matches.
            match tokio::time::timeout(NAMES_WAIT, self.store.person_names(&unique)).await {
                Ok(Ok(names)) => {
                    f.names.lock().extend(names.iter().map(|(k, v)| (k.clone(), v.clone())));
                    return Ok(names);
                }
                Ok(Err(e)) => match Error::from(e) {
                    Error::DatabaseUnavailable(_) | Error::Unavailable(_) => {}
                    e => return Err(e),
                },
                Err(_too_slow) => {}
            }
        }
        let seen = f.names.lock();
        Ok(unique.iter().filter_map(|id| seen.get(*id).map(|n| (id.to_string(), n.clone()))).collect())
    }

    /// Refuses an unknown person; a replica whose database is unreachable
    /// knows the persons of its gallery.
    async fn known_person(&self, id: &str) -> Result<()> {
        let in_gallery = || self.follows() && self.gallery_read().has_person(id);
        if !self.database_up() && in_gallery() {
            return Ok(());
        }
        match self.get_person(id).await {
            Ok(_) => Ok(()),
            Err(Error::DatabaseUnavailable(_) | Error::Unavailable(_)) if in_gallery() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Greedy one-to-one assignment: the most similar (face, person) pair above
/// `threshold` is fixed first; a person already taken cannot match again.
/// A face whose two best persons both clear the threshold less than
/// `margin` apart is ambiguous: no one is named for it, and neither person
/// is taken. `lists` are best first.
pub fn assign(lists: &[Vec<Candidate>], threshold: f32, margin: f32) -> Vec<Verdict> {
    let ambiguous = |l: &Vec<Candidate>| match l.as_slice() {
        [first, second, ..] => second.similarity >= threshold && first.similarity - second.similarity < margin,
        _ => false,
    };
    let mut out: Vec<Verdict> =
        lists.iter().map(|l| if ambiguous(l) { Verdict::Ambiguous } else { Verdict::Unknown }).collect();
    let mut pairs: Vec<(f32, usize, usize)> = lists
        .iter()
        .enumerate()
        .filter(|(f, _)| out[*f] == Verdict::Unknown)
        .flat_map(|(f, l)| {
            l.iter().enumerate().filter(|(_, c)| c.similarity >= threshold).map(move |(i, c)| (c.similarity, f, i))
        })
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut taken = std::collections::HashSet::new();
    for (_, f, i) in pairs {
        if out[f] == Verdict::Unknown && !taken.contains(lists[f][i].person_id.as_str()) {
            taken.insert(lists[f][i].person_id.as_str());
            out[f] = Verdict::Identified(i);
        }
    }
    out
}

fn similarity(a: &Face, b: &Face) -> Result<f32> {
    match (&a.embedding, &b.embedding) {
        (Some(a), Some(b)) => Ok(crate::domain::similarity::dot(&a.values, &b.values)),
        _ => Err(Error::NoFace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(person: &str, s: f32) -> Candidate {
        Candidate { person_id: person.into(), face_id: format!("{person}-f"), similarity: s }
    }

    #[test]
    fn one_person_is_never_assigned_to_two_faces() {
        use Verdict::*;
        // Both faces look most like alice; face 1 more so, so face 0 falls back to bob.
        let lists = vec![vec![c("alice", 0.7), c("bob", 0.6)], vec![c("alice", 0.9), c("bob", 0.2)]];
        assert_eq!(assign(&lists, 0.5, 0.0), vec![Identified(1), Identified(0)]);
        // With a stricter threshold face 0 has no one left: unknown.
        assert_eq!(assign(&lists, 0.65, 0.0), vec![Unknown, Identified(0)]);
    }

    #[test]
    fn strangers_below_the_threshold_stay_unknown() {
        let lists = vec![vec![c("alice", 0.3)], vec![]];
        assert_eq!(assign(&lists, 0.45, 0.05), vec![Verdict::Unknown, Verdict::Unknown]);
    }

    #[test]
    fn two_persons_close_above_the_threshold_are_ambiguous() {
        use Verdict::*;
        // Face 0: alice leads bob by 0.02, both above 0.5: ambiguous with a margin of 0.05,
        // and neither is taken, so face 1 (bob at 0.6) is named.
        let lists = vec![vec![c("alice", 0.72), c("bob", 0.70)], vec![c("bob", 0.6), c("cid", 0.1)]];
        assert_eq!(assign(&lists, 0.5, 0.05), vec![Ambiguous, Identified(0)]);
        // A lead of at least the margin names the best.
        assert_eq!(assign(&lists, 0.5, 0.01), vec![Identified(0), Identified(0)]);
        // The second below the threshold: no contest, however close.
        assert_eq!(assign(&lists, 0.71, 0.05), vec![Identified(0), Unknown]);
        // Without a margin nothing is ambiguous.
        assert_eq!(assign(&lists, 0.5, 0.0), vec![Identified(0), Identified(0)]);
    }
}
