// ferkit web page: photo or camera -> /v1/predict (boxes, labels, bars) and /v1/explain.
// Plain JS, no build step, nothing loaded from elsewhere (the server's CSP forbids it).
"use strict";

// Same colours as ferkit.inference.annotate.LABEL_COLOURS (the CLI's --annotate images).
const COLORS = {
  neutral: "#999999", happy: "#e69f00", sad: "#0072b2", surprise: "#56b4e9",
  fear: "#cc79a7", disgust: "#009e73", anger: "#d55e00", contempt: "#f0e442",
};
const CAMERA_INTERVAL_MS = 150;

// Black text on light colours, white on dark (as the CLI's annotations do).
function inkFor(hex) {
  const sum = [1, 3, 5].reduce((acc, i) => acc + parseInt(hex.slice(i, i + 2), 16), 0);
  return sum > 380 ? "#000000" : "#ffffff";
}

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const video = $("video");
let cameraStream = null;
let busy = false;
// The photo on screen (not camera frames): kept so a change of the overlay or method
// explains it again without a new upload.
let current = null;  // { blob, name }
// Each explanation request gets a number; an answer to an older one is dropped.
let explainSeq = 0;
// What drawResult drew last (label texts, sizes, corners), for tests and debugging.
let lastLayout = null;

// Where each label goes: the same rule as ferkit.inference.annotate.place_labels (keep the
// two in step; tests/test_web_page.py checks they agree).  For each face in order, try
// above-left, below-left, above-right, below-right, inside-top, inside-bottom, each moved
// inside the image; take the first that overlaps no placed label and no face box (its own
// included), else the one with the least overlapping area (earliest on ties).
function placeLabels(boxes, sizes, imageSize) {
  const [width, height] = imageSize;
  const overlap = (a, b) => {
    const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
    const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
    return w > 0 && h > 0 ? w * h : 0;
  };
  const placed = [];
  const corners = [];
  boxes.forEach(([x1, y1, x2, y2], i) => {
    const [w, h] = sizes[i];
    const spots = [[x1, y1 - h], [x1, y2], [x2 - w, y1 - h], [x2 - w, y2], [x1, y1],
                   [x1, y2 - h]];
    let best = null;
    let bestCost = null;
    for (const [sx, sy] of spots) {
      const x = Math.max(0, Math.min(sx, width - w));
      const y = Math.max(0, Math.min(sy, height - h));
      const rect = [x, y, x + w, y + h];
      let cost = 0;
      for (const r of placed) cost += overlap(rect, r);
      for (const b of boxes) cost += overlap(rect, b);
      if (bestCost === null || cost < bestCost) {
        best = [x, y];
        bestCost = cost;
      }
      if (cost === 0) break;
    }
    corners.push(best);
    placed.push([best[0], best[1], best[0] + w, best[1] + h]);
  });
  return corners;
}

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${body.error || response.status}: ${body.message || response.statusText}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

async function postImage(url, blob, name) {
  const form = new FormData();
  form.append("image", blob, name || "frame.jpg");
  const response = await fetch(url, { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

// Boxes numbered as the "Face n" cards, labels placed by placeLabels.
function drawResult(source, result) {
  canvas.width = source.width;
  canvas.height = source.height;
  canvas.hidden = false;
  ctx.drawImage(source, 0, 0);
  // Line width and text size as ferkit.inference.annotate draws them: text follows the
  // face's width, within limits that stay readable on small and big photos.
  const shortSide = Math.min(canvas.width, canvas.height);
  const line = Math.max(2, Math.round(shortSide / 250));
  const pad = line;
  ctx.textBaseline = "top";
  const boxes = result.faces.map((face) => face.box.map(Math.round));  // crisp lines
  const fonts = boxes.map(([x1, , x2]) => {
    const size = Math.min(Math.max((x2 - x1) * 0.18, Math.max(11, shortSide / 60)),
                          Math.max(14, shortSide / 25));
    return Math.floor(size);
  });
  const texts = result.faces.map(
    (face, i) => `#${i + 1} ${face.label} ${(face.score * 100).toFixed(0)}%`);
  const sizes = texts.map((text, i) => {
    ctx.font = `${fonts[i]}px system-ui, sans-serif`;
    return [Math.ceil(ctx.measureText(text).width) + 2 * pad, fonts[i] + 2 * pad];
  });
  const corners = placeLabels(boxes, sizes, [canvas.width, canvas.height]);
  lastLayout = { texts, sizes, corners };
  result.faces.forEach((face, i) => {  // every box first: none is drawn over a label
    const [x1, y1, x2, y2] = boxes[i];
    ctx.lineWidth = line;
    ctx.strokeStyle = COLORS[face.label] || "#ff4040";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  });
  result.faces.forEach((face, i) => {
    const color = COLORS[face.label] || "#ff4040";
    const [x, y] = corners[i];
    ctx.fillStyle = color;
    ctx.fillRect(x, y, sizes[i][0], sizes[i][1]);
    ctx.fillStyle = inkFor(color);
    ctx.font = `${fonts[i]}px system-ui, sans-serif`;
    ctx.fillText(texts[i], x + pad, y + pad);
  });
}

// After an error nothing of the previous photo may stay on screen.
function clearResults() {
  current = null;
  explainSeq += 1;  // answers still on their way are for a photo no longer shown
  canvas.width = 0;
  canvas.height = 0;
  canvas.hidden = true;
  $("faces").replaceChildren();
  $("overlay-panel").hidden = true;
  setBusy(false);
}

function setBusy(on, text) {
  document.body.classList.toggle("busy", on);
  $("view").setAttribute("aria-busy", on ? "true" : "false");
  $("busy").hidden = !on;
  $("busy-text").textContent = on ? text : "";
}

function renderFaces(result) {
  const list = $("faces");
  list.replaceChildren();
  if (result.faces.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No face found in this image.";
    list.append(li);
    return;
  }
  result.faces.forEach((face, i) => {
    const li = document.createElement("li");
    li.className = "face";
    li.dataset.label = face.label;
    const title = document.createElement("div");
    title.className = "face-title";
    const label = document.createElement("strong");
    label.className = "label";
    label.textContent = face.label;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `${(face.score * 100).toFixed(1)}%`;
    li.dataset.face = String(i + 1);
    title.append(`Face ${i + 1}: `, label, score);
    li.append(title);
    const probs = Object.entries(face.probs).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of probs) {
      const row = document.createElement("div");
      row.className = "bar-row";
      row.dataset.label = name;
      const nameEl = document.createElement("span");
      nameEl.textContent = name;
      const track = document.createElement("div");
      track.className = "bar-track";
      const fill = document.createElement("div");
      fill.className = "bar-fill";
      fill.style.width = `${(p * 100).toFixed(1)}%`;  // CSSOM: allowed by the page's CSP
      fill.style.background = COLORS[name] || "#888888";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = `${(p * 100).toFixed(1)}%`;
      row.append(nameEl, track, value);
      li.append(row);
    }
    list.append(li);
  });
}

// The overlay for the photo on screen, per the toggle and method now selected.
async function showOverlay(blob, name) {
  const panel = $("overlay-panel");
  const seq = ++explainSeq;
  if (!$("explain-toggle").checked) {
    panel.hidden = true;
    setBusy(false);
    return;
  }
  const select = $("explain-method");
  const methodName = select.options[select.selectedIndex].text;
  setBusy(true, `Explaining with ${methodName}…`);
  try {
    const method = encodeURIComponent(select.value);
    const response = await postImage(`/v1/explain?format=png&method=${method}`, blob, name);
    const png = await response.blob();
    if (seq !== explainSeq) return;  // the photo, toggle or method changed meanwhile
    const img = $("overlay");
    const old = img.src;
    img.src = URL.createObjectURL(png);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    img.dataset.method = select.value;
    panel.hidden = false;
  } finally {
    if (seq === explainSeq) setBusy(false);
  }
}

// Overlay or method changed: explain the photo on screen again (no new upload).
async function refreshOverlay() {
  if (cameraStream || !current) return;
  try {
    await showOverlay(current.blob, current.name);
  } catch (err) {
    setStatus(err.message, true);
  }
}

// The server judges the upload first, so a bad file shows its clear error message.
async function analyse(blob, getSource, name) {
  const started = performance.now();
  const response = await postImage("/v1/predict", blob, name);
  const result = await response.json();
  drawResult(await getSource(), result);
  renderFaces(result);
  const ms = (performance.now() - started).toFixed(0);
  const n = result.faces.length;
  setStatus(`${n} face${n === 1 ? "" : "s"} (${result.width}x${result.height}, ${ms} ms)`);
  return result;
}

async function handleFile(file) {
  if (!file) return;
  stopCamera();
  if (!file.type.startsWith("image/")) {
    clearResults();
    setStatus(`${file.name} is not an image`, true);
    return;
  }
  setStatus(`Analysing ${file.name}…`);
  busy = true;
  explainSeq += 1;  // an overlay still coming belongs to the previous photo
  setBusy(true, `Analysing ${file.name}…`);
  try {
    const result = await analyse(
      file, () => createImageBitmap(file, { imageOrientation: "from-image" }), file.name);
    current = { blob: file, name: file.name };
    if (result.faces.length === 0) {
      $("overlay-panel").hidden = true;
      setBusy(false);
      return;
    }
  } catch (err) {
    clearResults();
    setStatus(err.message, true);
    return;
  } finally {
    busy = false;
  }
  await refreshOverlay();  // an explanation error is shown, the faces stay
}

async function cameraTick() {
  if (!cameraStream) return;
  if (!busy && video.readyState >= 2) {
    busy = true;
    try {
      const frame = document.createElement("canvas");
      frame.width = video.videoWidth;
      frame.height = video.videoHeight;
      frame.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
      current = null;
      const result = await analyse(blob, async () => frame, "camera.jpg");
      if (result.faces.length > 0 || !$("explain-toggle").checked) {
        await showOverlay(blob, "camera.jpg");
      }
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      busy = false;
    }
  }
  setTimeout(cameraTick, CAMERA_INTERVAL_MS);
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser offers no camera here (it needs https or localhost).", true);
    return;
  }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    setStatus(`Camera unavailable: ${err.message}`, true);
    return;
  }
  video.srcObject = cameraStream;
  await video.play();
  $("camera-btn").textContent = "Stop camera";
  $("camera-btn").classList.add("active");
  setStatus("Camera on: analysing live frames…");
  cameraTick();
}

function stopCamera() {
  if (!cameraStream) return;
  for (const track of cameraStream.getTracks()) track.stop();
  cameraStream = null;
  video.srcObject = null;
  $("camera-btn").textContent = "Start camera";
  $("camera-btn").classList.remove("active");
}

async function showModel() {
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) return;
    const info = await response.json();
    $("model-name").textContent =
      `model: ${info.loaded.name} (${info.loaded.architecture}, ${info.loaded.label_names.length} classes)`;
  } catch (_) {
    // The page still works without the model line.
  }
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => handleFile(e.target.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    handleFile(e.dataTransfer.files[0]);
  });
  $("camera-btn").addEventListener("click", () => (cameraStream ? stopCamera() : startCamera()));
  $("explain-toggle").addEventListener("change", refreshOverlay);
  $("explain-method").addEventListener("change", refreshOverlay);
  showModel();
}

setup();
