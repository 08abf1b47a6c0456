// The models page: each kept version with its held-out metrics by the rows they were measured on (real
// labeled rows first, synthetic ones labeled as such) and as charts (precision and recall per class, the
// confusion matrix, the calibration curve), the ratings people gave its decisions (refreshed every
// 2 s), and buttons to reload, roll back and promote: the same steps as /oncall-models.

import { api, el } from "./dom.js";
import { escapeHtml, mrkdwn } from "./mrkdwn.js";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
let timer = null;
let container = null;
let structure = "";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const fmt = (x, digits = 3) => (typeof x === "number" ? x.toFixed(digits) : "—");
const pct = (x) => (typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "—");
const short = (name) => String(name).replace(/_/g, " ");

// --- charts ---------------------------------------------------------------------------------------------

// How wide a chart label is drawn (10px, the page's font), so every margin fits its longest label: a
// canvas measures text without putting it in the page.
const measure = document.createElement("canvas").getContext("2d");
function labelWidth(text) {
  if (!measure) return String(text).length * 7;
  measure.font = `10px ${getComputedStyle(document.body).fontFamily}`;
  return Math.ceil(measure.measureText(String(text)).width);
}
const SIN35 = Math.sin((35 * Math.PI) / 180);
const COS35 = Math.cos((35 * Math.PI) / 180);
const SIN45 = Math.SQRT1_2;

function perClassChart(metrics, id) {
  const perClass = metrics.per_class || {};
  const ordered = (metrics.confusion?.labels || []).filter((name) => name in perClass);  // the taxonomy's order
  const classes = ordered.length ? ordered : Object.keys(perClass);
  const longest = Math.max(0, ...classes.map((name) => labelWidth(short(name))));
  const band = 70;
  // The class names slant down to the left from under each band: room below and to the left for the longest.
  const plot = { left: Math.max(36, Math.ceil(longest * COS35 - band / 2 + 6)), right: 10, top: 24, bottom: Math.ceil(22 + longest * SIN35 + 6) };
  const width = Math.max(320, plot.left + band * classes.length + plot.right);
  const height = 166 + plot.bottom;
  const h = height - plot.top - plot.bottom;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", "data-testid": id, role: "img" });
  chart.append(svg("title", {}, "Precision and recall per class"));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const y = plot.top + h * (1 - tick);
    chart.append(svg("line", { x1: plot.left, x2: width - plot.right, y1: y, y2: y, class: "grid" }));
    chart.append(svg("text", { x: plot.left - 4, y: y + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(2)));
  }
  const step = (width - plot.left - plot.right) / Math.max(classes.length, 1);
  classes.forEach((name, i) => {
    const stats = metrics.per_class[name];
    [["precision", "bar-precision"], ["recall", "bar-recall"]].forEach(([key, cls], j) => {
      const value = stats[key] || 0;
      const x = plot.left + i * step + step * 0.15 + j * step * 0.35;
      const bar = svg("rect", { x, y: plot.top + h * (1 - value), width: step * 0.33, height: h * value, class: cls });
      bar.append(svg("title", {}, `${short(name)} ${key} ${fmt(value)} (support ${stats.support})`));
      chart.append(bar);
    });
    const lx = plot.left + i * step + step / 2;
    const ly = height - plot.bottom + 14;
    chart.append(svg("text", { x: lx, y: ly, class: "label", "text-anchor": "end", transform: `rotate(-35 ${lx} ${ly})` }, short(name)));
  });
  chart.append(svg("rect", { x: width - 150, y: 4, width: 10, height: 10, class: "bar-precision" }));
  chart.append(svg("text", { x: width - 136, y: 13, class: "tick" }, "precision"));
  chart.append(svg("rect", { x: width - 80, y: 4, width: 10, height: 10, class: "bar-recall" }));
  chart.append(svg("text", { x: width - 66, y: 13, class: "tick" }, "recall"));
  return chart;
}

function confusionChart(confusion, id) {
  const labels = confusion?.labels || [];
  const matrix = confusion?.matrix || [];
  const cell = labels.length > 6 ? 30 : 42;
  const longest = Math.max(0, ...labels.map((name) => labelWidth(short(name))));
  const left = Math.max(60, longest + 14);  // the true classes, right-aligned before their rows
  const top = Math.max(40, Math.ceil(longest * SIN45 + 16));  // the predicted ones slant up to the right
  const size = cell * labels.length;
  const right = Math.max(10, Math.ceil(longest * SIN45 - cell / 2 + 8));  // the last column's slants out
  const caption = "predicted →   (rows: true class)";
  const width = Math.max(left + size + right, left + size / 2 + labelWidth(caption) / 2 + 4);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${top + size + 24}`, width, height: top + size + 24, class: "chart", "data-testid": id, role: "img" });
  chart.append(svg("title", {}, "Confusion matrix: rows are the true class, columns the predicted one"));
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const share = count / total;
      const rect = svg("rect", { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1, class: i === j ? "cell diag" : "cell", style: `fill-opacity: ${0.08 + 0.92 * share}` });
      rect.append(svg("title", {}, `true ${short(labels[i])}, predicted ${short(labels[j])}: ${count} (${pct(share)} of the row)`));
      chart.append(rect);
      chart.append(svg("text", { x: left + j * cell + cell / 2, y: top + i * cell + cell / 2 + 4, "text-anchor": "middle", class: share > 0.5 ? "cell-text light" : "cell-text" }, String(count)));
    });
    chart.append(svg("text", { x: left - 6, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", class: "label" }, short(labels[i])));
  });
  labels.forEach((name, j) => {
    const x = left + j * cell + cell / 2;
    chart.append(svg("text", { x, y: top - 6, class: "label", transform: `rotate(-45 ${x} ${top - 6})` }, short(name)));
  });
  chart.append(svg("text", { x: left + size / 2, y: top + size + 18, "text-anchor": "middle", class: "tick" }, caption));
  return chart;
}

function calibrationChart(metrics, id) {
  const bins = metrics.calibration || [];
  const size = 200;
  const left = 40;
  const top = 20;
  const chart = svg("svg", { viewBox: `0 0 ${left + size + 20} ${top + size + 40}`, width: left + size + 20, height: top + size + 40, class: "chart", "data-testid": id, role: "img" });
  chart.append(svg("title", {}, `Calibration: accuracy against confidence (ECE ${fmt(metrics.ece)})`));
  const x = (v) => left + v * size;
  const y = (v) => top + (1 - v) * size;
  for (const tick of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: x(0), x2: x(1), y1: y(tick), y2: y(tick), class: "grid" }));
    chart.append(svg("text", { x: left - 4, y: y(tick) + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(1)));
    chart.append(svg("text", { x: x(tick), y: top + size + 14, class: "tick", "text-anchor": "middle" }, tick.toFixed(1)));
  }
  chart.append(svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "diagonal" }));
  const total = bins.reduce((a, b) => a + b.n, 0) || 1;
  if (bins.length) {
    chart.append(svg("polyline", { points: bins.map((b) => `${x(b.confidence)},${y(b.accuracy)}`).join(" "), class: "curve" }));
  }
  for (const b of bins) {
    const dot = svg("circle", { cx: x(b.confidence), cy: y(b.accuracy), r: 2.5 + 6 * Math.sqrt(b.n / total), class: "dot" });
    dot.append(svg("title", {}, `confidence ${fmt(b.confidence, 2)}: accuracy ${fmt(b.accuracy, 2)} over ${b.n} predictions`));
    chart.append(dot);
  }
  chart.append(svg("text", { x: left + size / 2, y: top + size + 32, "text-anchor": "middle", class: "tick" }, `confidence → accuracy (ECE ${fmt(metrics.ece)})`));
  return chart;
}

// --- the page ---------------------------------------------------------------------------------------------

function metricsTable(q) {
  const rows = ["severity", "category"].map(
    (label) => `<tr><th>${label}</th><td>${q[label].n ?? "—"}</td><td>${fmt(q[label].accuracy)}</td><td>${fmt(q[label].macro_f1)}</td><td>${fmt(q[label].ece)}</td></tr>`,
  );
  const a = q.actions || {};
  return `<table class="metrics"><tr><th></th><th>held-out n</th><th>accuracy</th><th>macro-F1</th><th>ECE</th></tr>${rows.join("")}
    <tr><th>actions</th><td>${a.n ?? "—"}</td><td colspan="3">top-1 ${fmt(a.top1)} · top-3 ${fmt(a.top3)}</td></tr></table>`;
}

// One held-out set: what its rows were (real labeled rows come first; synthetic ones say they are no
// evidence of quality on real alerts), its numbers, and per provider where it has them.
function qualitySection(q) {
  const section = el("div", { class: `quality ${q.kind}`, "data-testid": "quality", "data-kind": q.kind });
  section.append(el("h3", { class: "quality-label", "data-testid": "quality-label" }, escapeHtml(q.description)));
  section.append(el("div", {}, metricsTable(q)));
  for (const label of ["severity", "category"]) {
    const providers = Object.entries(q[label].by_provider || {}).sort(([, a], [, b]) => b.n - a.n);
    if (!providers.length) continue;
    const shown = providers.slice(0, 10).map(([name, m]) => `${escapeHtml(name)} n ${m.n}, macro-F1 ${fmt(m.macro_f1)}`);
    const more = providers.length > 10 ? ` · and ${providers.length - 10} more` : "";
    section.append(el("div", { class: "muted small" }, `${label} by provider: ${shown.join(" · ")}${more}`));
  }
  return section;
}

function ratings(v, error) {
  if (error) return `<span class="muted">ratings unavailable: ${escapeHtml(error)}</span>`;
  const r = v.ratings || {};
  const cell = (kind, label) => `<span data-rating="${kind}">${label} <b>${r[kind] ?? 0}</b></span>`;
  return [cell("decisions", "decisions"), cell("confirm", "👍"), cell("reject", "👎"), cell("action", "actions confirmed"), cell("corrected", "corrections")].join(" · ");
}

// What the promotion gate says of a version that is not active, against the active one: refused (with its
// reasons), passed, still being checked, or not checkable; and whether it was once forced past the gate.
function gateVerdict(v) {
  const g = v.gate;
  const parts = [];
  if (g && g.passed === false) {
    const reasons = g.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join("");
    parts.push(`<div class="gate refused" data-testid="gate-refused"><span class="badge refused">refused by the promotion gate</span>
      against the active <code>${escapeHtml(g.against)}</code>:<ul data-testid="gate-reasons">${reasons}</ul>
      <span class="muted small">Promote anyway forces it past the gate, as <code>oncall models promote ${escapeHtml(v.id)} --force</code> does: it serves although it trails the active version by more than the gate allows, and its promotion is recorded as forced past the gate.</span></div>`);
  } else if (g && g.passed === true) {
    parts.push(`<div class="gate passed muted small" data-testid="gate-passed">✓ passes the promotion gate against the active <code>${escapeHtml(g.against)}</code></div>`);
  } else if (g && g.checking) {
    parts.push(`<div class="gate muted small" data-testid="gate-checking">checking the promotion gate against the active <code>${escapeHtml(g.against)}</code>…</div>`);
  } else if (g && g.error) {
    parts.push(`<div class="gate error small" data-testid="gate-error">the promotion gate could not check it: ${escapeHtml(g.error)}</div>`);
  }
  if (v.forced) {
    const why = v.forced.reasons.length ? `: ${v.forced.reasons.map(escapeHtml).join("; ")}` : "";
    parts.push(`<div class="gate muted small" data-testid="gate-forced">⚠️ promoted past the promotion gate${v.forced.at ? ` (${escapeHtml(String(v.forced.at))})` : ""}${why}</div>`);
  }
  return parts.length ? el("div", { class: "gate-verdict" }, parts.join("")) : null;
}

function promoteButton(v) {
  const g = v.gate || {};
  const refused = g.passed === false;
  const label = refused ? "Promote anyway" : "Promote";
  const title = refused
    ? `The promotion gate refuses ${v.id}: ${g.reasons.join("; ")}. Promote anyway forces it past the gate (oncall models promote --force).`
    : g.checking ? "Checking the promotion gate first…" : `Make ${v.id} the active version`;
  const button = el("button", { type: "button", "data-testid": "promote", "data-version": v.id, class: refused ? "force" : "", title }, label);
  if (g.checking) button.disabled = true;
  button.addEventListener("click", () => act("promote", refused ? { version: v.id, force: true } : { version: v.id }));
  return button;
}

function versionCard(v, summary) {
  const card = el("section", { class: `version${v.serving ? " serving" : ""}`, "data-version": v.id, "data-testid": "version" });
  const badges = [v.serving ? '<span class="badge serving">serving</span>' : "", v.active ? '<span class="badge">active</span>' : ""].join(" ");
  const head = el("header", {}, `<h2><code>${escapeHtml(v.id)}</code> ${badges}</h2>
    <div class="muted">trained ${escapeHtml(v.trained_at || "?")} · seed ${escapeHtml(String(v.seed ?? "?"))} · ${escapeHtml(String(v.training_seconds ?? "?"))} s · scikit-learn ${escapeHtml(v.versions["scikit-learn"] || "?")}</div>`);
  if (!v.active) head.append(promoteButton(v));
  card.append(head);
  const verdict = gateVerdict(v);
  if (verdict) card.append(verdict);
  card.append(el("div", { class: "ratings", "data-testid": "ratings" }, ratings(v, summary.ratings_error)));
  for (const q of v.quality) card.append(qualitySection(q));
  if (!v.quality.length) card.append(el("p", { class: "muted" }, "No held-out rows: quality was not measured."));
  const charts = el("details", v.serving ? { open: "" } : {});
  charts.append(el("summary", {}, "Charts: per-class precision and recall, confusion matrices, calibration"));
  for (const label of ["severity", "category"]) {
    const q = v.quality.find((set) => set[label].per_class);  // real labeled rows first, when they have the label
    if (!q) continue;
    const metrics = q[label];
    const row = el("div", { class: "chart-row" });
    row.append(el("h3", {}, `${label} <span class="muted">on ${escapeHtml(q.brief)}</span>`));
    row.append(perClassChart(metrics, `chart-${label}-per-class`));
    row.append(confusionChart(metrics.confusion, `chart-${label}-confusion`));
    row.append(calibrationChart(metrics, `chart-${label}-calibration`));
    charts.append(row);
  }
  card.append(charts);
  const sources = Object.entries(v.rows_by_source || {}).map(([s, n]) => `${escapeHtml(s)} ${n}`).join(" · ");
  card.append(el("div", { class: "muted small" }, `training rows: ${sources || "—"}${v.files.length ? ` · files: ${v.files.map(escapeHtml).join(", ")}` : ""}`));
  return card;
}

function render(summary) {
  const key = JSON.stringify([summary.serving, summary.active, summary.status, summary.last_error, summary.trial, summary.versions.map((v) => [v.id, v.gate, v.forced])]);
  if (key === structure) {
    for (const v of summary.versions) {  // only the ratings move between polls
      const node = container.querySelector(`section[data-version="${CSS.escape(v.id)}"] .ratings`);
      if (node) node.innerHTML = ratings(v, summary.ratings_error);
    }
    return;
  }
  structure = key;
  const top = el("header", { class: "models-header" });
  top.append(el("h1", {}, "Models"));
  const status = summary.fallback
    ? "⚠️ the rule-based fallback answers: no trained model is loaded"
    : `serving <code data-testid="serving">${escapeHtml(summary.serving || "none")}</code> · active <code>${escapeHtml(summary.active || "none")}</code> · ${escapeHtml(summary.status || "")}`;
  top.append(el("div", { class: "status" }, status));
  if (summary.last_error) top.append(el("div", { class: "error" }, escapeHtml(summary.last_error)));
  if (summary.registry_error) top.append(el("div", { class: "error" }, escapeHtml(summary.registry_error)));
  if (summary.trial) top.append(el("div", {}, `trial: <code>${escapeHtml(summary.trial.version)}</code> in ${escapeHtml(summary.trial.mode)}`));
  const buttons = el("div", { class: "buttons" });
  const reload = el("button", { type: "button", "data-testid": "reload" }, "Reload active version");
  reload.addEventListener("click", () => act("reload", {}));
  const rollback = el("button", { type: "button", "data-testid": "rollback" }, "Roll back");
  rollback.addEventListener("click", () => act("rollback", {}));
  buttons.append(reload, rollback);
  top.append(buttons);
  const previous = container.querySelector("#model-result");
  top.append(previous || el("div", { id: "model-result", "data-testid": "model-result", role: "status" }));
  container.replaceChildren(top, ...summary.versions.map((v) => versionCard(v, summary)));
  if (!summary.versions.length) container.append(el("p", { class: "muted" }, "No versions are kept yet: the built-in model trains on first start."));
}

async function act(action, body) {
  const result = container.querySelector("#model-result");
  result.className = "pending";
  result.textContent = `${action}…`;
  try {
    const answer = await api("POST", `/models/${action}`, body);
    result.className = answer.ok ? "ok" : "error";
    result.innerHTML = mrkdwn(answer.text);
  } catch (error) {
    result.className = "error";
    result.textContent = `${action} failed: ${error.message}`;
  }
  await poll();
}

async function poll() {
  const shown = container;
  if (!shown) return;
  let summary;
  try {
    summary = await api("GET", "/models");
  } catch (error) {
    const result = shown.querySelector("#model-result");
    if (result) result.textContent = `Could not read the models: ${error.message}`;
    return;
  }
  if (container === shown) render(summary);  // unless the page was left meanwhile
}

// Shows the page in `node` and keeps it fresh; `null` stops.
export function showModels(node) {
  clearInterval(timer);
  timer = null;
  container = node;
  structure = "";
  if (!node) return;
  poll();
  timer = setInterval(poll, POLL_MS);
}
