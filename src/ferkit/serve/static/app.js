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

function drawResult(source, result) {
  canvas.width = source.width;
  canvas.height = source.height;
  ctx.drawImage(source, 0, 0);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  const fontSize = Math.max(12, Math.round(line * 7));
  ctx.font = `${fontSize}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const face of result.faces) {
    const [x1, y1, x2, y2] = face.box.map(Math.round);  // whole pixels: crisp lines
    const color = COLORS[face.label] || "#ffffff";
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${face.label} ${(face.score * 100).toFixed(0)}%`;
    const width = ctx.measureText(text).width + 8;
    const top = Math.max(0, y1 - fontSize - 6);
    ctx.fillStyle = color;
    ctx.fillRect(x1, top, width, fontSize + 6);
    ctx.fillStyle = inkFor(color);
    ctx.fillText(text, x1 + 4, top + 3);
  }
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

async function showOverlay(blob, name) {
  const panel = $("overlay-panel");
  if (!$("explain-toggle").checked) {
    panel.hidden = true;
    return;
  }
  const method = encodeURIComponent($("explain-method").value);
  const response = await postImage(`/v1/explain?format=png&method=${method}`, blob, name);
  const img = $("overlay");
  const old = img.src;
  img.src = URL.createObjectURL(await response.blob());
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  panel.hidden = false;
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
  await showOverlay(blob, name);
}

async function handleFile(file) {
  if (!file) return;
  stopCamera();
  if (!file.type.startsWith("image/")) {
    setStatus(`${file.name} is not an image`, true);
    return;
  }
  setStatus(`Analysing ${file.name}…`);
  busy = true;
  try {
    await analyse(file, () => createImageBitmap(file, { imageOrientation: "from-image" }),
                  file.name);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    busy = false;
  }
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
      await analyse(blob, async () => frame, "camera.jpg");
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
  showModel();
}

setup();
