// pgphase's operator console: one page over the same JSON API the CLI uses (/api/v1). No external
// resources; the token (if any) stays in this tab's sessionStorage and goes out as a Bearer token.
"use strict";

const PHASES = ["preparation", "dual_write", "validation", "read_switch", "cleanup", "completed"];
const POLL_MS = 2000;
const HISTORY = 90; // points kept per chart (about three minutes at one per poll)

const state = {
  token: sessionStorage.getItem("pgphase.token") || "",
  role: null,
  mayChange: false,
  view: "migrations",
  migration: null,   // selected migration id
  sw: null,          // selected switch id
  validation: null,  // selected validation id
  series: {},        // switch id -> [{t, source:{...}, target:{...}, percentage}]
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v; // CSSOM: allowed by the page's CSP
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};
const fmt = (n, digits = 1) =>
  n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits);
const when = (s) => (s ? String(s).replace("T", " ").replace(/\.\d+/, "").slice(0, 19) : "–");
const pct = (x) => (x === null || x === undefined ? "–" : fmt(x * 100, 2) + "%");

async function api(method, path, body) {
  const headers = { "X-PGPhase-Actor": "console" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!r.ok) {
    const msg = (data && (data.detail || data.error || data.message)) || r.statusText;
    const err = new Error(r.status + " " + msg);
    err.status = r.status;
    throw err;
  }
  return data;
}

function banner(text, kind = "error") {
  const b = $("#banner");
  if (!text) { b.hidden = true; return; }
  b.textContent = text;
  b.className = kind === "info" ? "info" : "";
  b.hidden = false;
}

// Every action names what it will do and asks first; the answer or the refusal is shown.
function confirmThen(text, action) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  d.returnValue = "";
  d.onclose = async () => {
    if (d.returnValue !== "ok") return;
    try {
      await action();
      banner("Done: " + text, "info");
    } catch (e) {
      banner("Refused: " + e.message);
    }
    refresh();
  };
  d.showModal();
}

// `text` and `action` may be given at click time: `make()` returns [text, action].
function actionButton(label, text, action, cls, make) {
  return el("button", {
    class: cls, disabled: !state.mayChange,
    title: state.mayChange ? text || label : "needs the operator token",
    onclick: (ev) => {
      ev.stopPropagation();
      const [t, a] = make ? make() : [text, action];
      confirmThen(t, a);
    },
  }, label);
}

function bar(fraction) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  return el("div", { class: "bar", title: fmt(f * 100) + "%" },
            el("div", { style: "width:" + (f * 100).toFixed(1) + "%" }));
}

function progressCell(p) {
  if (!p || p.status === undefined) return el("span", { class: "muted" }, "–");
  const done = p.rows_copied ?? p.rows_done ?? 0;
  const total = p.total_estimate ?? p.rows_total ?? 0;
  const frac = p.percent !== undefined ? p.percent / 100 : total > 0 ? done / total : 0;
  const rate = p.rate_rows_per_second;
  const eta = p.eta_seconds;
  return el("div", {}, bar(frac),
    el("span", { class: "muted" },
       `${p.status} · ${done}${total ? " / " + total : ""} rows` +
       (rate !== undefined ? ` · ${fmt(rate, 0)} rows/s` : "") +
       (eta !== undefined && eta !== null && eta >= 0 ? ` · ETA ${fmt(eta, 0)} s` : "")));
}

// ---------------------------------------------------------------- migrations
async function loadMigrations() {
  const { migrations } = await api("GET", "/api/v1/migrations");
  const backfills = await Promise.all(migrations.map((m) =>
    api("GET", `/api/v1/migrations/${encodeURIComponent(m.migration_id)}/backfill`).catch(() => null)));
  const tbody = $("#migrations-table tbody");
  tbody.replaceChildren();
  migrations.forEach((m, i) => {
    const s = m.dual_write_stats || {};
    const tr = el("tr", {
      class: "selectable" + (state.migration === m.migration_id ? " selected" : ""),
      "data-id": m.migration_id,
      onclick: () => { state.migration = m.migration_id; refresh(); },
    },
      el("td", {}, m.migration_id),
      el("td", {}, `${m.source_table} → ${m.target_table}`),
      el("td", {}, m.database || el("span", { class: "muted" }, "(control)")),
      el("td", { class: "phase" }, m.phase),
      el("td", {}, m.dual_write_enabled ? "on" : "off"),
      el("td", {}, `${s.ok ?? 0} / `, el("span", { class: s.failed ? "error" : "" }, s.failed ?? 0)),
      el("td", {}, progressCell(backfills[i])),
      el("td", {}, when(m.updated_at)));
    tbody.append(tr);
  });
  if (!state.migration && migrations.length) state.migration = migrations[0].migration_id;
  const detail = $("#migration-detail");
  if (!state.migration) { detail.replaceChildren(el("p", { class: "muted" }, "No migrations.")); return; }
  const m = await api("GET", `/api/v1/migrations/${encodeURIComponent(state.migration)}`);
  const idx = PHASES.indexOf(m.phase);
  const timeline = el("div", { class: "timeline" }, PHASES.map((p, i) =>
    el("span", { class: i < idx ? "done" : i === idx ? "current" : "" }, p)));
  if (m.phase === "rollback") timeline.append(el("span", { class: "current" }, "rollback"));
  const next = idx >= 0 && idx + 1 < PHASES.length ? PHASES[idx + 1] : null;
  const id = m.migration_id;
  const enc = encodeURIComponent(id);
  const phaseSelect = el("select", { id: "phase-select" }, PHASES.map((p) =>
    el("option", { value: p, selected: p === next }, p)));
  const actions = el("div", { class: "actions" },
    phaseSelect,
    actionButton("Change phase", "", null, "", () => [
      `Move migration ${id} from ${m.phase} to ${phaseSelect.value}`,
      () => api("POST", `/api/v1/migrations/${enc}/phase`, { phase: phaseSelect.value })]),
    actionButton("Roll back", `Roll back migration ${id} (phase ${m.phase} → rollback; dual write off, reads from ${m.source_table})`,
                 () => api("POST", `/api/v1/migrations/${enc}/rollback`, { reason: "console" }), "danger"),
    actionButton("Start backfill", `Start a backfill of ${m.source_table} into ${m.target_table}`,
                 () => api("POST", `/api/v1/migrations/${enc}/backfill`, {})),
    actionButton("Validate", `Run a quick validation of ${m.source_table} against ${m.target_table}`,
                 () => api("POST", "/api/v1/validations", { migration_id: id, level: "basic" })));
  actions.children[1].id = "phase-button";
  const logs = el("table", {}, el("thead", {}, el("tr", {},
      ["when", "action", "from", "to", "status", "who", "message"].map((h) => el("th", {}, h)))),
    el("tbody", {}, (m.logs || []).map((l) => el("tr", {},
      el("td", {}, when(l.created_at)), el("td", {}, l.action), el("td", {}, l.from),
      el("td", {}, l.to), el("td", { class: l.status === "success" ? "ok" : "error" }, l.status),
      el("td", {}, l.actor), el("td", {}, l.message)))));
  detail.replaceChildren(el("div", { class: "panel", id: "migration-panel" },
    el("h3", {}, `${id}: ${m.source_table} → ${m.target_table}`),
    timeline,
    el("p", {}, `phase `, el("b", { id: "migration-phase" }, m.phase),
      ` · consistency ${m.consistency_level} · dual write ${m.dual_write_enabled ? "on" : "off"}` +
      ` · reads from ${m.read_from_target ? "target" : "source"} · version ${m.version}`),
    actions,
    el("h3", {}, "Who changed what"), logs));
}

// ---------------------------------------------------------------- switches
function sideText(s) {
  return s ? `${s.statements} / ${s.errors}` : "–";
}

function drawChart(canvas, title, lines, maxHint) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#1d2330";
  ctx.fillText(title, pad, 12);
  let max = maxHint || 0;
  for (const l of lines) for (const v of l.values) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  ctx.strokeStyle = "#d9dde5";
  ctx.beginPath();
  ctx.moveTo(pad, 18); ctx.lineTo(pad, h - pad + 10); ctx.lineTo(w - 6, h - pad + 10);
  ctx.stroke();
  ctx.fillStyle = "#667085";
  ctx.fillText(fmt(max, max < 10 ? 2 : 0), 2, 24);
  ctx.fillText("0", 14, h - pad + 10);
  let lx = pad + 4;
  for (const l of lines) {
    const n = l.values.length;
    ctx.strokeStyle = l.color;
    ctx.beginPath();
    let started = false;
    l.values.forEach((v, i) => {
      if (v === null) return;
      const x = pad + (n <= 1 ? 0 : (i / (n - 1)) * (w - pad - 8));
      const y = h - pad + 10 - (v / max) * (h - pad - 10);
      if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = l.color;
    ctx.fillText(l.name, lx, h - 4);
    lx += ctx.measureText(l.name).width + 12;
  }
}

async function loadSwitches() {
  const { switch_configs: switches } = await api("GET", "/api/v1/switches");
  const analytics = await Promise.all(switches.map((s) =>
    api("GET", `/api/v1/switches/${encodeURIComponent(s.config_id)}/analytics`).catch(() => null)));
  const tbody = $("#switches-table tbody");
  tbody.replaceChildren();
  const now = Date.now();
  switches.forEach((s, i) => {
    const a = analytics[i];
    const win = a && a.live ? a.live.last_minute : null;
    const series = (state.series[s.config_id] ||= []);
    series.push({ t: now, percentage: s.switch_percentage,
                  source: win ? win.source : null, target: win ? win.target : null });
    if (series.length > HISTORY) series.shift();
    const enc = encodeURIComponent(s.config_id);
    const input = el("input", { type: "number", min: 0, max: 100, step: 1, value: s.switch_percentage,
                                style: "width:60px", onclick: (e) => e.stopPropagation() });
    const setButton = actionButton("Set %", "", null, "set-percentage", () => {
      const p = Number(input.value);
      return [`Set read switch ${s.config_id} (${s.table_name}) from ${s.switch_percentage}% to ${p}% of reads on the target`,
              () => api("POST", `/api/v1/switches/${enc}/percentage`, { percentage: p, reason: "console" })];
    });
    const tr = el("tr", {
      class: "selectable" + (state.sw === s.config_id ? " selected" : ""), "data-id": s.config_id,
      onclick: () => { state.sw = s.config_id; refresh(); },
    },
      el("td", {}, s.config_id), el("td", {}, s.table_name), el("td", {}, s.strategy),
      el("td", { class: "percentage" }, `${s.switch_percentage}%`),
      el("td", { class: s.status === "rolled_back" ? "error" : "" }, s.status),
      el("td", {}, sideText(win && win.source)), el("td", {}, sideText(win && win.target)),
      el("td", { class: "actions" }, input, setButton,
        actionButton("Pause", `Pause read switch ${s.config_id} (reads stay where they are)`,
                     () => api("POST", `/api/v1/switches/${enc}/pause`, {})),
        actionButton("Resume", `Resume read switch ${s.config_id}`,
                     () => api("POST", `/api/v1/switches/${enc}/resume`, {})),
        actionButton("Promote", `Promote read switch ${s.config_id} to the next step`,
                     () => api("POST", `/api/v1/switches/${enc}/promote`, {})),
        actionButton("Roll back", `Roll back read switch ${s.config_id}: every read of ${s.table_name} goes to the source (0%)`,
                     () => api("POST", `/api/v1/switches/${enc}/rollback`, { reason: "console" }), "danger")));
    tbody.append(tr);
  });
  if (!state.sw && switches.length) state.sw = switches[0].config_id;
  const detail = $("#switch-detail");
  const idx = switches.findIndex((s) => s.config_id === state.sw);
  if (idx < 0) { detail.replaceChildren(el("p", { class: "muted" }, "No read switches.")); return; }
  const a = analytics[idx];
  const series = state.series[state.sw] || [];
  const pick = (side, key) => series.map((p) => (p[side] ? p[side][key] : null));
  const charts = el("div", { class: "charts" });
  const mk = () => el("canvas", { width: 420, height: 170 });
  const [c1, c2, c3, c4] = [mk(), mk(), mk(), mk()];
  charts.append(c1, c2, c3, c4);
  const live = a && a.live ? a.live : null;
  const hist = (a && a.percentage_history) || [];
  detail.replaceChildren(el("div", { class: "panel", id: "switch-panel" },
    el("h3", {}, `${state.sw}: live reads (last minute, this pgphase)`),
    live ? el("table", {}, el("thead", {}, el("tr", {},
        ["side", "reads", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ["source", "target"].map((side) => {
        const v = live.last_minute[side];
        return el("tr", {}, el("td", {}, side), el("td", {}, v.statements), el("td", {}, v.errors),
          el("td", {}, pct(v.error_rate)), el("td", {}, fmt(v.p50_ms, 2)), el("td", {}, fmt(v.p95_ms, 2)),
          el("td", {}, fmt(v.p99_ms, 2)));
      }))) : el("p", { class: "muted" }, "no live figures"),
    charts,
    el("h3", {}, "Percentage history"),
    el("table", {}, el("thead", {}, el("tr", {}, ["when", "from", "to", "who", "reason"].map((h) => el("th", {}, h)))),
      el("tbody", {}, hist.map((c) => el("tr", {}, el("td", {}, when(c.created_at)), el("td", {}, c.from + "%"),
        el("td", {}, c.to + "%"), el("td", {}, c.actor), el("td", {}, c.reason))))),
    a && a.last_rollback_check ? el("p", { class: "muted" },
      `last rollback check: ${a.last_rollback_check.breach ? "breach" : "healthy"}` +
      (a.last_rollback_check.reasons.length ? " (" + a.last_rollback_check.reasons.join("; ") + ")" : "")) : null));
  drawChart(c1, "p50 / p95 / p99 read latency, ms (source blue, target orange)", [
    { name: "src p50", color: "#7aa7f0", values: pick("source", "p50_ms") },
    { name: "src p95", color: "#2459c6", values: pick("source", "p95_ms") },
    { name: "src p99", color: "#102d6a", values: pick("source", "p99_ms") },
    { name: "tgt p50", color: "#f0b27a", values: pick("target", "p50_ms") },
    { name: "tgt p95", color: "#c4702b", values: pick("target", "p95_ms") },
    { name: "tgt p99", color: "#6a3510", values: pick("target", "p99_ms") }]);
  drawChart(c2, "reads in the last minute", [
    { name: "source", color: "#2459c6", values: pick("source", "statements") },
    { name: "target", color: "#c4702b", values: pick("target", "statements") }]);
  drawChart(c3, "errors in the last minute", [
    { name: "source", color: "#2459c6", values: pick("source", "errors") },
    { name: "target", color: "#c42b2b", values: pick("target", "errors") }]);
  drawChart(c4, "switch percentage", [
    { name: "% on target", color: "#1f883d", values: series.map((p) => p.percentage) }], 100);
}

// ---------------------------------------------------------------- validations
async function loadValidations() {
  let items;
  try {
    items = await api("GET", "/api/v1/validations");
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) throw e;
    $("#validations-table tbody").replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" },
      "Validation reports hold row values: they need the viewer or operator token.")));
    $("#validation-detail").replaceChildren();
    return;
  }
  const tbody = $("#validations-table tbody");
  tbody.replaceChildren();
  for (const v of items) {
    tbody.append(el("tr", {
      class: "selectable" + (state.validation === v.validation_id ? " selected" : ""),
      onclick: () => { state.validation = v.validation_id; refresh(); },
    },
      el("td", {}, v.validation_id), el("td", {}, v.migration_id || "–"), el("td", {}, v.level),
      el("td", {}, `${v.source_table} → ${v.target_table}`),
      el("td", {}, v.status === "running"
        ? progressCell({ status: v.progress.stage, rows_copied: v.progress.rows_done,
                         total_estimate: v.progress.rows_total, percent: v.progress.percent,
                         rate_rows_per_second: v.progress.rows_per_second, eta_seconds: v.progress.eta_seconds })
        : v.total_records),
      el("td", { class: v.consistency_score < 1 ? "error" : "ok" }, pct(v.consistency_score)),
      el("td", { class: v.differences_count ? "error" : "" }, v.differences_count),
      el("td", {}, when(v.created_at))));
  }
  const detail = $("#validation-detail");
  const v = items.find((x) => x.validation_id === state.validation) || items[0];
  if (!v) { detail.replaceChildren(el("p", { class: "muted" }, "No validations yet.")); return; }
  if (v.status === "running") {
    detail.replaceChildren(el("div", { class: "panel", id: "validation-panel" },
      el("h3", {}, `Validation ${v.validation_id} (${v.level}) running: ${v.progress.stage}`)));
    return;
  }
  const full = await api("GET", `/api/v1/validations/${encodeURIComponent(v.validation_id)}`);
  const report = full.report || {};
  const diffs = report.differences || [];
  detail.replaceChildren(el("div", { class: "panel", id: "validation-panel" },
    el("h3", {}, `Report ${v.validation_id}: ${v.source_table} → ${v.target_table}`),
    el("p", {}, `status ${full.status} · consistency ${pct(v.consistency_score)} · ` +
      `${v.differences_count} differences in ${v.total_records} records`),
    Array.isArray(diffs) && diffs.length ? el("table", {}, el("thead", {}, el("tr", {},
        ["kind", "key", "detail", "fix"].map((h) => el("th", {}, h)))),
      el("tbody", {}, diffs.slice(0, 50).map((d) => el("tr", { class: "difference" },
        el("td", {}, d.difference_type), el("td", {}, d.record_id),
        el("td", {}, (d.field_name ? d.field_name + ": " : "") +
          `${JSON.stringify(d.source_value)} ≠ ${JSON.stringify(d.target_value)}`),
        el("td", {}, el("code", {}, d.suggested_fix || "")))))) : null,
    el("h3", {}, "Whole report"),
    el("pre", {}, JSON.stringify(report, null, 2))));
}

// ---------------------------------------------------------------- alerts
async function loadAlerts() {
  const all = $("#alerts-all").checked;
  const items = await api("GET", "/api/v1/alerts?status=" + (all ? "all" : "active"));
  const tbody = $("#alerts-table tbody");
  tbody.replaceChildren();
  for (const a of items) {
    const enc = encodeURIComponent(a.alert_id);
    tbody.append(el("tr", {},
      el("td", {}, a.alert_id), el("td", {}, a.rule_name || a.rule_id),
      el("td", { class: a.severity }, a.severity), el("td", {}, a.status),
      el("td", {}, a.value === null ? "–" : fmt(a.value, 3) + (a.threshold === null ? "" : ` (threshold ${fmt(a.threshold, 3)})`)),
      el("td", {}, a.message || ""), el("td", {}, when(a.fired_at)),
      el("td", { class: "actions" },
        a.status === "firing" ? actionButton("Acknowledge", `Acknowledge alert ${a.alert_id} (${a.rule_name || a.rule_id})`,
          () => api("POST", `/api/v1/alerts/${enc}/acknowledge`, {})) : null,
        a.status !== "resolved" ? actionButton("Resolve", `Resolve alert ${a.alert_id} (${a.rule_name || a.rule_id})`,
          () => api("POST", `/api/v1/alerts/${enc}/resolve`, {})) : null)));
  }
  if (!items.length) tbody.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No alerts.")));
}

// ---------------------------------------------------------------- shell
const loaders = { migrations: loadMigrations, switches: loadSwitches, validations: loadValidations, alerts: loadAlerts };
let inflight = false;

async function refreshRole() {
  try {
    const a = await api("GET", "/api/v1/auth");
    state.role = a.role;
    state.mayChange = a.may_change;
    $("#role").textContent = "role: " + (a.role || "none") + (a.may_change ? " (may change)" : " (read only)");
  } catch (e) {
    $("#role").textContent = "role: unknown";
  }
}

async function refresh() {
  if (inflight) return;
  // Not under the operator's hands: a value being typed or a question being asked stays put.
  const active = document.activeElement;
  if ($("#confirm").open || (active && ["INPUT", "SELECT"].includes(active.tagName) && active.id !== "token"))
    return;
  inflight = true;
  try {
    await loaders[state.view]();
    $("#updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.loaded = state.view;
  } catch (e) {
    banner(e.status === 503 ? "No control database: this pgphase is a plain pass-through." : "Cannot read the API: " + e.message);
  } finally {
    inflight = false;
  }
}

function showView() {
  const v = (location.hash || "#migrations").slice(1);
  state.view = loaders[v] ? v : "migrations";
  document.querySelectorAll(".view").forEach((s) => { s.hidden = s.id !== "view-" + state.view; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === state.view));
  refresh();
}

$("#token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("pgphase.token", state.token);
  await refreshRole();
  refresh();
});
$("#alerts-all").addEventListener("change", refresh);
window.addEventListener("hashchange", showView);
// A token may also come in the URL fragment's query (?token=...) for scripted use; it is moved to
// sessionStorage and removed from the address bar at once.
(function takeTokenFromUrl() {
  const q = new URLSearchParams(location.search);
  if (q.has("token")) {
    state.token = q.get("token");
    sessionStorage.setItem("pgphase.token", state.token);
    history.replaceState(null, "", location.pathname + location.hash);
  }
})();
$("#token").value = state.token;
refreshRole().then(showView);
setInterval(refresh, POLL_MS);
