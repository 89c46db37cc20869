//! Moving a gallery to another embedder without losing anyone. Each face
//! has its own embedding (`faces.model`) and may have others kept beside it
//! (`visage reembed --to`); a service compares each face by its own model's
//! embedding wherever it is kept. Here: which models the gallery holds, what
//! identify would answer differently on the gallery's own faces under
//! another model, the switch of the faces' own model (one transaction,
//! undone by switching back) and the pruning of what is kept beside.
use std::collections::{BTreeMap, HashMap};

use futures_util::TryStreamExt as _;
use serde::Serialize;

use super::Service;
use crate::calibration::{Answer, EmbedderPolicy, Faces, Rule, spread};
use crate::service::error::{Error, Result};
use crate::store::Switched;

/// Comparisons the change report may make for each model (probes x faces).
const CHANGES_BUDGET: usize = 50_000_000;
/// Changed answers listed by id (all are counted).
const MAX_EXAMPLES: usize = 100;

/// Faces with embeddings of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFaces {
    pub model: String,
    /// The manifest's name for it, when it is one of its embedders.
    pub embedder: Option<String>,
    /// Faces whose own embedding is of this model.
    pub own: u64,
    /// Faces with an embedding of this model kept beside their own.
    pub beside: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GalleryModels {
    /// The model this service embeds and compares with.
    pub serving: String,
    pub faces: u64,
    /// Faces this service cannot compare: no embedding of its model.
    pub faces_without_serving_model: u64,
    pub models: Vec<ModelFaces>,
}

/// One model's answers in a change report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelAnswers {
    pub model: String,
    pub embedder: Option<String>,
    pub identify_threshold: f32,
    pub ambiguity_margin: f32,
    /// Probes whose person has other faces in the gallery...
    pub with_other_faces: usize,
    /// ... named as their own person,
    pub right: usize,
    /// ... named as someone else,
    pub wrong: usize,
    /// ... answered unknown,
    pub unknown: usize,
    /// ... answered ambiguous.
    pub ambiguous: usize,
    /// Probes whose person has no other face (a stranger to the rest)...
    pub alone: usize,
    /// ... named as someone (a false positive identification),
    pub alone_named: usize,
    /// ... answered ambiguous.
    pub alone_ambiguous: usize,
}

/// An answer as reported.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerView {
    /// "identified", "unknown" or "ambiguous".
    pub status: &'static str,
    pub person_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedAnswer {
    pub face_id: String,
    pub person_id: String,
    pub name: String,
    pub before: AnswerView,
    pub after: AnswerView,
}

/// What identify would answer differently, face by face, if the gallery
/// were compared by `to` instead of `from` (each face the probe, the others
/// the gallery; each model with its own threshold and margin).
#[derive(Debug, Clone, Serialize)]
pub struct ModelChanges {
    pub from: ModelAnswers,
    pub to: ModelAnswers,
    /// Faces with embeddings of both models (the report's gallery).
    pub faces: usize,
    /// Faces without an embedding of one of them (left out).
    pub faces_left_out: u64,
    pub probes: usize,
    /// Whether every face was a probe (else an even spread of them).
    pub complete: bool,
    pub unchanged: usize,
    pub changed: usize,
    /// Changed answers by kind ("identified -> unknown", "identified ->
    /// another person", ...).
    pub by_kind: BTreeMap<String, usize>,
    /// The first changed answers, with ids.
    pub examples: Vec<ChangedAnswer>,
}

fn status(a: Answer) -> &'static str {
    match a {
        Answer::Named(_) => "identified",
        Answer::Unknown => "unknown",
        Answer::Ambiguous => "ambiguous",
    }
}

impl ModelAnswers {
    fn count(&mut self, answer: Answer, person: u32, alone: bool) {
        match (alone, answer) {
            (true, a) => {
                self.alone += 1;
                self.alone_named += usize::from(matches!(a, Answer::Named(_)));
                self.alone_ambiguous += usize::from(a == Answer::Ambiguous);
            }
            (false, a) => {
                self.with_other_faces += 1;
                match a {
                    Answer::Named(p) if p == person => self.right += 1,
                    Answer::Named(_) => self.wrong += 1,
                    Answer::Unknown => self.unknown += 1,
                    Answer::Ambiguous => self.ambiguous += 1,
                }
            }
        }
    }
}

impl Service {
    /// The embedder the manifest calls `name` (a name, alias or full id).
    fn known(&self, name: &str) -> Option<&EmbedderPolicy> {
        self.config.embedders.iter().find(|e| e.is_called(name))
    }

    /// The model id `name` stands for: a known embedder's, else `name` as it is.
    pub fn model_id(&self, name: &str) -> String {
        self.known(name).map_or_else(|| name.to_string(), |e| e.model.clone())
    }

    fn embedder_name(&self, model: &str) -> Option<String> {
        self.known(model).and_then(|e| e.names.first().cloned())
    }

    pub async fn gallery_models(&self) -> Result<GalleryModels> {
        let counts = self.store.model_counts().await?;
        let faces: u64 = counts.iter().map(|c| c.own).sum();
        let serving = counts.iter().find(|c| c.model == self.model).map_or(0, |c| c.own + c.beside);
        let models = counts
            .into_iter()
            .map(|c| ModelFaces {
                embedder: self.embedder_name(&c.model),
                model: c.model,
                own: c.own,
                beside: c.beside,
            })
            .collect();
        Ok(GalleryModels {
            serving: self.model.clone(),
            faces,
            faces_without_serving_model: faces.saturating_sub(serving),
            models,
        })
    }

    /// Makes `model` every face's own (the previous kept beside); refused
    /// while faces lack it unless `force`. The gallery is loaded anew.
    pub async fn switch_model(&self, model: &str, force: bool, actor: &str) -> Result<Switched> {
        self.writable()?;
        let model = self.model_id(model);
        let counts = self.store.model_counts().await?;
        if !counts.iter().any(|c| c.model == model) {
            return Err(Error::ModelNotFound(format!("no face has an embedding by {model}")));
        }
        let switched = self.store.switch_model(&model, force, actor).await?;
        if !switched.done {
            return Err(Error::ModelIncomplete { model, lacking: switched.lacking });
        }
        self.reload_gallery().await?;
        Ok(switched)
    }

    /// Deletes embeddings kept beside the faces' own (of `model`, or all);
    /// refused when this service compares some of them.
    pub async fn prune_embeddings(&self, model: Option<&str>, actor: &str) -> Result<u64> {
        self.writable()?;
        let model = model.map(|m| self.model_id(m));
        let counts = self.store.model_counts().await?;
        let relied_on = counts.iter().find(|c| c.model == self.model).map_or(0, |c| c.beside);
        if relied_on > 0 && model.as_deref().is_none_or(|m| m == self.model) {
            return Err(Error::ModelInUse(format!(
                "this service compares {relied_on} faces by embeddings of {} kept beside: switch to it first \
                 (or prune another model)",
                self.model
            )));
        }
        Ok(self.store.prune_embeddings(model.as_deref(), actor).await?)
    }

    /// The 1:N rule of `model` for a gallery of `faces`: the one in force
    /// for this service's model, the manifest's defaults for another.
    fn rule_of(&self, model: &str, faces: usize) -> Result<Rule> {
        if model == self.model {
            return Ok(Rule { threshold: self.identify_threshold(faces), margin: self.identify_margin() });
        }
        let e = self.known(model).ok_or_else(|| {
            Error::ModelNotFound(format!("{model} is not an embedder of the manifest: its thresholds are unknown"))
        })?;
        Ok(Rule { threshold: e.identify, margin: e.margin })
    }

    /// What identify would answer differently on the gallery's own faces
    /// under `to` (default: this service's model) than under `from`
    /// (default: the model most faces own, other than `to`).
    pub async fn model_changes(&self, from: Option<&str>, to: Option<&str>) -> Result<ModelChanges> {
        let to = to.map_or_else(|| self.model.clone(), |m| self.model_id(m));
        let counts = self.store.model_counts().await?;
        let from = match from {
            Some(m) => self.model_id(m),
            None => counts
                .iter()
                .filter(|c| c.model != to && c.own > 0)
                .max_by_key(|c| c.own)
                .map(|c| c.model.clone())
                .ok_or_else(|| Error::ModelNotFound(format!("every face's own embedding is already {to}")))?,
        };
        for m in [&from, &to] {
            if !counts.iter().any(|c| &c.model == m) {
                return Err(Error::ModelNotFound(format!("no face has an embedding by {m}")));
            }
        }
        let total: u64 = counts.iter().map(|c| c.own).sum();
        let (ids, faces_from, faces_to) = self.both(&from, &to).await?;
        let n = ids.faces.len();
        let (rule_from, rule_to) = (self.rule_of(&from, n)?, self.rule_of(&to, n)?);
        let probes = spread(n, CHANGES_BUDGET);
        let complete = probes.len() == n;
        let (answers_from, answers_to, alone, probes) = tokio::task::spawn_blocking(move || {
            let mut per_person: HashMap<u32, usize> = HashMap::new();
            (0..faces_from.len()).for_each(|i| *per_person.entry(faces_from.person(i)).or_default() += 1);
            let alone: Vec<bool> = probes.iter().map(|&i| per_person[&faces_from.person(i)] == 1).collect();
            let a: Vec<Answer> = probes.iter().map(|&i| faces_from.leave_one_out(i, rule_from)).collect();
            let b: Vec<Answer> = probes.iter().map(|&i| faces_to.leave_one_out(i, rule_to)).collect();
            (a, b, alone, probes)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("the change report failed: {e}")))?;
        let mut report = ModelChanges {
            from: self.answers_of(&from, rule_from),
            to: self.answers_of(&to, rule_to),
            faces: n,
            faces_left_out: total.saturating_sub(n as u64),
            probes: probes.len(),
            complete,
            unchanged: 0,
            changed: 0,
            by_kind: BTreeMap::new(),
            examples: Vec::new(),
        };
        let view = |a: Answer| AnswerView {
            status: status(a),
            person_id: match a {
                Answer::Named(p) => Some(ids.person_id(p).to_string()),
                _ => None,
            },
        };
        for (k, &i) in probes.iter().enumerate() {
            let (a, b, person) = (answers_from[k], answers_to[k], ids.person_of(i));
            report.from.count(a, person, alone[k]);
            report.to.count(b, person, alone[k]);
            if a == b {
                report.unchanged += 1;
                continue;
            }
            report.changed += 1;
            let kind = match (a, b) {
                (Answer::Named(_), Answer::Named(_)) => "identified -> another person".to_string(),
                _ => format!("{} -> {}", status(a), status(b)),
            };
            *report.by_kind.entry(kind).or_default() += 1;
            if report.examples.len() < MAX_EXAMPLES {
                report.examples.push(ChangedAnswer {
                    face_id: ids.faces[i].clone(),
                    person_id: ids.person_id(person).to_string(),
                    name: String::new(),
                    before: view(a),
                    after: view(b),
                });
            }
        }
        let named: Vec<&str> = report.examples.iter().map(|c| c.person_id.as_str()).collect();
        let names = self.store.person_names(&named).await?;
        for c in &mut report.examples {
            c.name = names.get(&c.person_id).cloned().unwrap_or_default();
        }
        Ok(report)
    }

    fn answers_of(&self, model: &str, rule: Rule) -> ModelAnswers {
        ModelAnswers {
            model: model.to_string(),
            embedder: self.embedder_name(model),
            identify_threshold: rule.threshold,
            ambiguity_margin: rule.margin,
            ..ModelAnswers::default()
        }
    }

    /// The faces with embeddings of both models, in the same order in both sets.
    async fn both(&self, from: &str, to: &str) -> Result<(Ids, Faces, Faces)> {
        let mut first: HashMap<String, (String, Vec<f32>)> = HashMap::new();
        let mut rows = self.store.embeddings(from);
        while let Some(e) = rows.try_next().await? {
            if e.model == from {
                first.insert(e.face_id, (e.person_id, e.values));
            }
        }
        drop(rows);
        let (mut ids, mut a, mut b) = (Ids::default(), None::<Faces>, None::<Faces>);
        let mut rows = self.store.embeddings(to);
        while let Some(e) = rows.try_next().await? {
            let Some((person, values)) = first.remove(&e.face_id).filter(|_| e.model == to) else { continue };
            let a = a.get_or_insert_with(|| Faces::new(values.len()));
            let b = b.get_or_insert_with(|| Faces::new(e.values.len()));
            let p = ids.person(&person);
            if a.push(&values, p) && b.push(&e.values, p) {
                ids.faces.push(e.face_id);
            } else {
                return Err(Error::Internal(anyhow::anyhow!("face {} has embeddings of mixed lengths", e.face_id)));
            }
        }
        Ok((ids, a.unwrap_or_default(), b.unwrap_or_default()))
    }
}

/// The report's faces and persons by index.
#[derive(Default)]
struct Ids {
    faces: Vec<String>,
    persons: Vec<String>,
    person_index: HashMap<String, u32>,
    face_person: Vec<u32>,
}

impl Ids {
    fn person(&mut self, id: &str) -> u32 {
        let next = self.persons.len() as u32;
        let p = *self.person_index.entry(id.to_string()).or_insert(next);
        if p == next {
            self.persons.push(id.to_string());
        }
        self.face_person.push(p);
        p
    }

    fn person_id(&self, p: u32) -> &str {
        &self.persons[p as usize]
    }

    fn person_of(&self, face: usize) -> u32 {
        self.face_person[face]
    }
}
