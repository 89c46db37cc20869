// The demo page: plain JavaScript over the public API (no build step, no
// third-party code). Photos go to this service only.
"use strict";

const $ = (id) => document.getElementById(id);
const photos = { enroll: null, match: null };
const LANDMARK_COLOURS = ["#ff4d4d", "#4d79ff", "#33cc66", "#ff66cc", "#ffb31a"];

function keyHeader() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Calls the API; resolves to the JSON body, rejects with "code: message". */
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...keyHeader(), ...(options.headers || {}) } });
  if (response.status === 204) return null;
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const error = body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`;
    throw new Error(error);
  }
  return body;
}

function say(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = `result ${kind || ""}`;
}

function fmt(x) {
  return Number(x).toFixed(3);
}

/** Draws the photo with each face's box, five landmarks and label. */
async function drawFaces(stage, canvas, blob, faces, labels) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, canvas.width / 250);
  faces.forEach((face, i) => {
    const b = face.box;
    const ok = labels[i] && labels[i].ok;
    ctx.lineWidth = line;
    ctx.strokeStyle = ok === false ? "#ff4d4d" : ok ? "#33cc66" : "#ffd700";
    ctx.strokeRect(b.x * scale, b.y * scale, b.width * scale, b.height * scale);
    face.landmarks.forEach(([x, y], j) => {
      ctx.fillStyle = LANDMARK_COLOURS[j];
      ctx.beginPath();
      ctx.arc(x * scale, y * scale, line * 1.6, 0, 2 * Math.PI);
      ctx.fill();
    });
    if (labels[i] && labels[i].text) {
      const size = Math.max(14, canvas.width / 45);
      ctx.font = `600 ${size}px system-ui, sans-serif`;
      const text = labels[i].text;
      const width = ctx.measureText(text).width + size * 0.6;
      const top = Math.max(0, b.y * scale - size * 1.5);
      ctx.fillStyle = "#000a";
      ctx.fillRect(b.x * scale, top, width, size * 1.4);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, b.x * scale + size * 0.3, top + size * 1.05);
    }
  });
  const names = labels.map((l) => l && l.text).filter(Boolean);
  canvas.setAttribute(
    "aria-label",
    `The photo with ${faces.length} detected face${faces.length === 1 ? "" : "s"}${names.length ? ": " + names.join("; ") : ""}`,
  );
  canvas.dataset.faces = String(faces.length);
  stage.hidden = false;
}

function formWith(target, fields) {
  const blob = photos[target];
  if (!blob) throw new Error("choose a photo or take one with the webcam first");
  const form = new FormData();
  form.append("image", blob, blob.name || "photo.jpg");
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

async function busy(form, work) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    await work();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function enroll(event) {
  event.preventDefault();
  await busy(event.target, async () => {
    try {
      const name = $("enroll-name").value.trim();
      const result = await api("/v1/enroll", { method: "POST", body: formWith("enroll", { name }) });
      await drawFaces($("enroll-stage"), $("enroll-canvas"), photos.enroll, [result.face], [{ text: result.person.name, ok: true }]);
      say("enroll-result", `Enrolled ${result.person.name} (${result.person.face_count} face${result.person.face_count === 1 ? "" : "s"}).`, "ok");
      await refreshPersons(result.person.id);
    } catch (e) {
      say("enroll-result", e.message, "bad");
    }
  });
}

async function match(event) {
  event.preventDefault();
  const mode = event.submitter ? event.submitter.value : "verify";
  await busy(event.target, async () => {
    try {
      if (mode === "verify") {
        const personId = $("match-person").value;
        if (!personId) throw new Error("enroll someone first");
        const name = $("match-person").selectedOptions[0].textContent;
        const r = await api("/v1/verify", { method: "POST", body: formWith("match", { person_id: personId }) });
        const verdict = r.match ? "Match" : "No match";
        await drawFaces($("match-stage"), $("match-canvas"), photos.match, [r.face], [{ text: `${verdict} ${fmt(r.similarity)}`, ok: r.match }]);
        const cmp = r.match ? "≥" : "<";
        say("match-result", `${verdict}: ${name}, similarity ${fmt(r.similarity)} ${cmp} threshold ${fmt(r.threshold)}.`, r.match ? "ok" : "bad");
      } else {
        const r = await api("/v1/identify", { method: "POST", body: formWith("match", {}) });
        const labels = r.faces.map((f) =>
          f.match ? { text: `${f.match.name} ${fmt(f.match.similarity)}`, ok: true } : { text: "unknown", ok: false },
        );
        await drawFaces($("match-stage"), $("match-canvas"), photos.match, r.faces.map((f) => f.face), labels);
        const known = r.faces.filter((f) => f.match).map((f) => `${f.match.name} (${fmt(f.match.similarity)})`);
        const text = r.faces.length === 0
          ? "No face found."
          : `${r.faces.length} face${r.faces.length === 1 ? "" : "s"}: ${known.length ? "identified " + known.join(", ") : "nobody enrolled"}` +
            `${r.faces.length - known.length ? `, ${r.faces.length - known.length} unknown` : ""} (threshold ${fmt(r.threshold)}).`;
        say("match-result", text, known.length ? "ok" : "bad");
      }
    } catch (e) {
      say("match-result", e.message, "bad");
    }
  });
}

/** Reloads the person list (and the verify chooser); `note` stays shown. */
async function refreshPersons(select, note) {
  const list = $("persons");
  const chooser = $("match-person");
  try {
    const page = await api("/v1/persons?limit=1000");
    list.replaceChildren();
    const previous = select || chooser.value;
    chooser.replaceChildren();
    for (const p of page.persons) {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = p.name;
      const count = document.createElement("small");
      count.textContent = ` ${p.face_count} face${p.face_count === 1 ? "" : "s"}`;
      label.append(count);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", `Delete ${p.name}`);
      remove.addEventListener("click", () => removePerson(p));
      item.append(label, remove);
      list.append(item);
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = p.name;
      chooser.append(option);
    }
    if (previous) chooser.value = previous;
    document.dispatchEvent(new CustomEvent("persons", { detail: page.persons }));
    if (note) say("persons-result", note, "ok");
    else say("persons-result", page.persons.length ? "" : "Nobody is enrolled yet.");
  } catch (e) {
    say("persons-result", `Cannot list persons (${e.message}).`, "bad");
  }
}

async function removePerson(person) {
  if (!window.confirm(`Delete ${person.name} and every enrolled face?`)) return;
  try {
    await api(`/v1/persons/${encodeURIComponent(person.id)}`, { method: "DELETE" });
  } catch (e) {
    say("persons-result", e.message, "bad");
    return;
  }
  await refreshPersons(undefined, `Deleted ${person.name}.`);
}

async function choose(target, input) {
  const file = input.files && input.files[0];
  if (!file) return;
  photos[target] = file;
  try {
    await drawFaces($(`${target}-stage`), $(`${target}-canvas`), file, [], []);
  } catch (_) {
    $(`${target}-stage`).hidden = true; // not an image the browser can show; the service will say why
  }
}

let stream = null;
let cameraTarget = null;

async function openCamera(target) {
  cameraTarget = target;
  const dialog = $("camera-dialog");
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 } });
  } catch (e) {
    say(`${target}-result`, `The webcam is not available (${e.message}).`, "bad");
    return;
  }
  $("camera-video").srcObject = stream;
  dialog.showModal();
}

function closeCamera() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("camera-dialog").close();
}

async function takePhoto() {
  const video = $("camera-video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  closeCamera();
  if (!blob) return;
  photos[cameraTarget] = new File([blob], "webcam.jpg", { type: "image/jpeg" });
  await drawFaces($(`${cameraTarget}-stage`), $(`${cameraTarget}-canvas`), photos[cameraTarget], [], []);
}

document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = sessionStorage.getItem("visage-key") || "";
  key.addEventListener("change", () => {
    sessionStorage.setItem("visage-key", key.value.trim());
    refreshPersons();
  });
  $("enroll-form").addEventListener("submit", enroll);
  $("match-form").addEventListener("submit", match);
  $("enroll-photo").addEventListener("change", (e) => choose("enroll", e.target));
  $("match-photo").addEventListener("change", (e) => choose("match", e.target));
  document.querySelectorAll("button.camera").forEach((b) => b.addEventListener("click", () => openCamera(b.dataset.target)));
  $("camera-take").addEventListener("click", takePhoto);
  $("camera-cancel").addEventListener("click", closeCamera);
  $("camera-dialog").addEventListener("cancel", closeCamera);
  refreshPersons();
});
