// "Faces to name": the clusters of faces nobody has named yet, largest
// first, with their crops (when the service keeps them) or external ids;
// name a cluster, drop or move a face, merge two persons. Plain JavaScript
// over the public API, like ui.js (whose helpers it uses).
"use strict";

/** A face's crop as an image (fetched with the key), or its external id. */
async function faceThumb(face) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = face.external_id || face.id.slice(-8);
  try {
    const response = await fetch(`/v1/faces/${face.id}/crop`, { headers: keyHeader() });
    if (response.ok) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(await response.blob());
      img.alt = `Face ${caption.textContent}`;
      figure.append(img);
    }
  } catch (_) {
    // No crop kept: the caption says which face it is.
  }
  figure.append(caption);
  return figure;
}

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

async function refreshClusters(note) {
  const list = $("clusters");
  try {
    const [page, persons] = await Promise.all([api("/v1/clusters?min_size=1&limit=50"), api("/v1/persons?limit=1000")]);
    list.replaceChildren();
    for (const [i, c] of page.clusters.entries()) {
      const item = document.createElement("li");
      item.dataset.cluster = c.id;
      const title = document.createElement("p");
      const maybe = c.nearest_person ? ` — maybe ${c.nearest_person.name} (${fmt(c.nearest_person.similarity)})` : "";
      title.textContent = `Cluster ${i + 1}: ${c.size} face${c.size === 1 ? "" : "s"}, cohesion ${fmt(c.cohesion)}${maybe}`;
      const faces = document.createElement("div");
      faces.className = "faces";
      for (const f of c.faces) {
        const cell = await faceThumb(f);
        const name = f.external_id || f.id.slice(-8);
        const move = document.createElement("select");
        move.setAttribute("aria-label", `Move ${name} to`);
        move.append(new Option("Move to…", ""));
        persons.persons.forEach((p) => move.append(new Option(p.name, p.id)));
        move.addEventListener("change", () => moveFace(f, name, move.value));
        cell.append(button("Drop", `Drop ${name}`, () => dropFace(f, name)), move);
        faces.append(cell);
      }
      const form = document.createElement("form");
      form.className = "row";
      const input = document.createElement("input");
      input.required = true;
      input.maxLength = 256;
      input.placeholder = c.nearest_person ? c.nearest_person.name : "Name";
      input.setAttribute("aria-label", `Name cluster ${i + 1}`);
      const submit = document.createElement("button");
      submit.type = "submit";
      submit.textContent = "Name";
      form.append(input, submit);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        nameCluster(c, input.value.trim());
      });
      item.append(title, faces, form);
      list.append(item);
    }
    mergeChoices(persons.persons);
    if (note) say("faces-result", note, "ok");
    else say("faces-result", page.clusters.length ? "" : "No faces to name.");
  } catch (e) {
    say("faces-result", `Cannot list the faces to name (${e.message}).`, "bad");
  }
}

/** The persons the merge form offers. */
function mergeChoices(persons) {
  for (const select of [$("merge-into"), $("merge-from")]) {
    const previous = select.value;
    select.replaceChildren(...persons.map((p) => new Option(p.name, p.id)));
    if (previous) select.value = previous;
  }
}

/** Calls the API, then shows `done` (or the error) and reloads both lists. */
async function change(call, done) {
  try {
    await call();
  } catch (e) {
    say("faces-result", e.message, "bad");
    return;
  }
  await refreshPersons();
  await refreshClusters(done);
}

function json(method, body) {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

function nameCluster(cluster, name) {
  const existing = [...$("merge-into").options].find((o) => o.text === name);
  const body = existing ? { person_id: existing.value } : { name };
  change(() => api(`/v1/clusters/${cluster.id}/assign`, json("POST", body)), `Named ${cluster.size} face${cluster.size === 1 ? "" : "s"} ${name}.`);
}

function dropFace(face, name) {
  change(() => api(`/v1/faces/${face.id}`, { method: "DELETE" }), `Dropped ${name}.`);
}

function moveFace(face, name, personId) {
  if (!personId) return;
  change(() => api(`/v1/faces/${face.id}`, json("PATCH", { person_id: personId })), `Moved ${name}.`);
}

async function keepFaces(event) {
  event.preventDefault();
  const file = $("keep-photo").files[0];
  if (!file) return say("faces-result", "Choose a photo first.", "bad");
  const form = new FormData();
  form.append("image", file);
  await change(async () => {
    const kept = await api("/v1/faces", { method: "POST", body: form });
    if (!kept.faces.length) throw new Error(`no face kept: ${kept.refused.map((r) => r.reason).join(", ")}`);
  }, `Kept the faces of ${file.name}.`);
}

function mergePersons(event) {
  event.preventDefault();
  const into = $("merge-into");
  const from = $("merge-from");
  if (into.value === from.value) return say("faces-result", "Choose two different persons.", "bad");
  const names = `${from.selectedOptions[0].text} into ${into.selectedOptions[0].text}`;
  change(() => api(`/v1/persons/${into.value}/merge`, json("POST", { from: [from.value] })), `Merged ${names}.`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("keep-form").addEventListener("submit", keepFaces);
  $("merge-form").addEventListener("submit", mergePersons);
  $("api-key").addEventListener("change", () => refreshClusters());
  document.addEventListener("persons", (e) => mergeChoices(e.detail));
  refreshClusters();
});
