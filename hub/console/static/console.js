// The operations console: polls /api/status and draws it. No framework and no build step; every value is
// written with textContent, never as HTML.
"use strict";

const POLL_MS = 2500;
const state = {
  filters: { source: "", stage: "", error_class: "", state: "waiting" },
  csrf: null,
  role: null,
  lastUpdate: null,
  timer: null,
  matching: 0,
  busy: false,
};
const $ = (id) => document.getElementById(id);
const testid = (name) => document.querySelector(`[data-testid="${name}"]`);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key === "title" || key === "type") node.setAttribute(key, value);
    else if (key === "disabled") node.disabled = true;
    else if (key === "onclick") node.addEventListener("click", value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// --- formatting -------------------------------------------------------------------------------------

function fmtCount(n) {
  if (n === null || n === undefined) return "–";
  return Math.round(n).toLocaleString("en-GB");
}
function fmtRate(x) {
  if (x === null || x === undefined) return "–";
  if (x === 0) return "0";
  if (x < 0.1) return x.toFixed(2);
  if (x < 10) return x.toFixed(1);
  return Math.round(x).toLocaleString("en-GB");
}
function fmtLatency(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.max(1, Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  return fmtAge(seconds);
}
function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, seconds);
  if (s < 60) return "< 1 min";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  return h ? `${d} d ${h} h` : `${d} d`;
}
function shortId(id) {
  return id && id.length > 13 ? `${id.slice(0, 8)}…` : id || "";
}

// --- sparklines -------------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function sparkline(series, width = 120, height = 26) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", String(height));
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("class", "base");
  base.setAttribute("x1", "0"); base.setAttribute("x2", String(width));
  base.setAttribute("y1", String(height - 0.5)); base.setAttribute("y2", String(height - 0.5));
  svg.append(base);
  const values = (series || []).map((v) => (v === null || v === undefined ? null : v));
  const max = Math.max(0, ...values.filter((v) => v !== null));
  if (values.length < 2) return svg;
  const step = width / (values.length - 1);
  const y = (v) => (max > 0 ? height - 1 - (v / max) * (height - 3) : height - 1);
  let segment = [];
  const flush = () => {
    if (segment.length > 1) {
      const points = segment.map(([i, v]) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const area = document.createElementNS(SVG, "polygon");
      area.setAttribute("class", "area");
      const first = segment[0][0] * step, last = segment[segment.length - 1][0] * step;
      area.setAttribute("points", `${first.toFixed(1)},${height} ${points} ${last.toFixed(1)},${height}`);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("class", "line");
      line.setAttribute("points", points);
      svg.append(area, line);
    }
    segment = [];
  };
  values.forEach((v, i) => (v === null ? flush() : segment.push([i, v])));
  flush();
  return svg;
}

// --- tables: redrawn only when what they show changes, so a button is never swapped under the cursor ---

const drawn = new WeakMap();
function fillTable(tableId, rows, emptyId) {
  const body = $(tableId).querySelector("tbody");
  const signature = JSON.stringify(rows.map((row) => row.key));
  if (drawn.get(body) !== signature) {
    body.replaceChildren(...rows.map((row) => row.node()));
    drawn.set(body, signature);
  }
  if (emptyId) $(emptyId).hidden = rows.length > 0;
  $(tableId).hidden = rows.length === 0 && Boolean(emptyId);
}
const LIST_ROWS = 10; // the small lists show the oldest few; the card says how many more there are
function more(id, shown, total) {
  const note = $(id);
  note.hidden = total <= shown;
  note.textContent = `and ${fmtCount(total - shown)} more`;
}

function cell(content, cls) {
  return el("td", { class: cls }, content);
}
function tag(text, kind) {
  return el("span", { class: `tag ${kind || ""}`, text });
}
function setKpi(id, level) {
  const node = $(id);
  node.classList.remove("ok", "warn", "alert");
  if (level) node.classList.add(level);
}
function setText(name, text) {
  const node = testid(name);
  if (node && node.textContent !== text) node.textContent = text;
}

// --- the API ----------------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.csrf && method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* an empty or non-JSON body */ }
  return { status: response.status, data };
}

function showSignIn(message) {
  clearTimeout(state.timer);
  state.csrf = null;
  $("console-view").hidden = true;
  $("session-bar").hidden = true;
  $("sign-in-view").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("username").focus();
}

async function refresh() {
  clearTimeout(state.timer);
  const query = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
  try {
    const { status, data } = await api("GET", `/api/status?${query}`);
    if (status === 401) return showSignIn();
    if (status !== 200) throw new Error(data.error || `status ${status}`);
    state.csrf = data.csrf;
    state.role = data.operator.role;
    state.lastUpdate = Date.now();
    render(data);
    $("sign-in-view").hidden = true;
    $("console-view").hidden = false;
    $("session-bar").hidden = false;
  } catch (error) {
    const pill = $("worker-state");
    pill.textContent = "Disconnected";
    pill.className = "pill warn";
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

// --- drawing ----------------------------------------------------------------------------------------

function render(data) {
  const pill = $("worker-state");
  pill.textContent = data.consuming ? "Consuming" : "Starting";
  pill.className = `pill ${data.consuming ? "ok" : "warn"}`;
  $("operator-name").textContent = data.operator.username;
  $("operator-role").textContent = data.operator.role;
  const admin = data.operator.role === "admin";
  document.querySelectorAll("[data-admin]").forEach((button) => {
    button.disabled = !admin || (button.id === "replay-shown" && state.matching === 0);
    button.title = admin ? "" : "Needs the admin role";
  });

  const t = data.throughput;
  setText("events-rate", `${fmtRate(t.events.per_second)}/s`);
  setText("events-window", fmtCount(t.events.window_total));
  setText("events-total", fmtCount(t.events.since_start));
  setText("notifications-rate", `${fmtRate(t.notifications.per_second)}/s`);
  setText("notifications-window", fmtCount(t.notifications.window_total));
  setText("notifications-total", fmtCount(t.notifications.since_start));
  document.querySelector('[data-spark="events"]').replaceChildren(sparkline(t.events.series, 200, 26));
  document.querySelector('[data-spark="notifications"]').replaceChildren(sparkline(t.notifications.series, 200, 26));
  setKpi("kpi-events", data.consuming ? "ok" : "warn");
  setKpi("kpi-notifications", null);

  drawLatency(t.latency, t.batch);
  drawSources(t.sources, data.silent_sources);
  drawUnits(t.units);
  drawDeadLetters(data.dead_letters, admin);
  drawRetry(data.retry);
  drawParked(data.parked);
  drawOverdue(data.overdue);
  drawUrgent(data.urgent);
  drawCoverage(data.coverage);
  tick();
}

function drawLatency(latency, batch) {
  const worst = latency.reduce((best, row) => (row.recent.p95 !== null && (best === null || row.recent.p95 > best.recent.p95) ? row : best), null);
  setText("latency-p95", worst ? fmtLatency(worst.recent.p95) : "–");
  setText("latency-foot", worst ? `${worst.priority} · p99 ${fmtLatency(worst.recent.p99)}` : "nothing delivered in the last minute");
  setKpi("kpi-latency", worst && worst.recent.p99 !== null && worst.recent.p99 > 0.05 ? "warn" : worst ? "ok" : null);
  const rows = latency.map((row) => ({
    key: [row.priority, row.recent.p50, row.recent.p95, row.recent.p99, row.window.p95, row.window.p99, row.window.count],
    node: () => el("tr", {},
      cell(tag(row.priority, row.priority === "urgent" ? "alert" : "info")),
      cell(fmtLatency(row.recent.p50), "num"), cell(fmtLatency(row.recent.p95), "num"), cell(fmtLatency(row.recent.p99), "num"),
      cell(fmtLatency(row.window.p95), "num"), cell(fmtLatency(row.window.p99), "num"), cell(fmtCount(row.window.count), "num")),
  }));
  rows.push({
    key: ["batch", batch.p50, batch.p95, batch.p99, batch.count],
    node: () => el("tr", {},
      cell(tag("batch", "")), cell("", "num"), cell("", "num"), cell("", "num"),
      cell(fmtLatency(batch.p95), "num"), cell(fmtLatency(batch.p99), "num"), cell(`${fmtCount(batch.count)} batch${batch.count === 1 ? "" : "es"}`, "num")),
  });
  fillTable("latency-table", rows);
}

function drawSources(sources, silent) {
  const rows = sources.map((row) => ({
    key: [row.source, row.per_second, row.window_total, row.dead_letters, row.parked, fmtAge(row.last_event_age_seconds), row.series],
    node: () => el("tr", { "data-source": row.source },
      cell(el("strong", { text: row.source })),
      cell(fmtRate(row.per_second), `num ${row.per_second ? "" : "zero"}`),
      cell(fmtCount(row.window_total), `num ${row.window_total ? "" : "zero"}`),
      cell(row.dead_letters ? tag(fmtCount(row.dead_letters), "warn") : "0", `num ${row.dead_letters ? "" : "zero"}`),
      cell(fmtCount(row.parked), `num ${row.parked ? "" : "zero"}`),
      cell(row.last_event_age_seconds === null ? "never" : `${fmtAge(row.last_event_age_seconds)} ago`, "muted"),
      cell(sparkline(row.series), "spark-col")),
  }));
  fillTable("sources-table", rows);
  const list = $("source-list");
  const items = silent.all.map((row) => [row.source, row.silent, fmtAge(row.last_event_age_seconds)]);
  const signature = JSON.stringify(items);
  if (drawn.get(list) !== signature) {
    list.replaceChildren(...silent.all.map((row) => el("li", { "data-source": row.source, "data-silent": String(row.silent) },
      el("span", { class: "name", text: row.source }),
      row.silent
        ? tag(row.last_event_age_seconds === null ? "silent · never heard" : `silent · ${fmtAge(row.last_event_age_seconds)}`, "warn")
        : tag(`${fmtAge(row.last_event_age_seconds)} ago`, "ok"))));
    drawn.set(list, signature);
  }
}

function drawUnits(units) {
  const active = units.filter((row) => row.window_total > 0);
  const rows = active.map((row) => ({
    key: [row.unit, row.per_second, row.window_total, row.urgent, row.series],
    node: () => el("tr", { "data-unit": row.unit },
      cell(el("strong", { text: row.unit })),
      cell(fmtRate(row.per_second), `num ${row.per_second ? "" : "zero"}`),
      cell(fmtCount(row.window_total), "num"),
      cell(row.urgent ? tag(fmtCount(row.urgent), "alert") : "0", `num ${row.urgent ? "" : "zero"}`),
      cell(sparkline(row.series), "spark-col")),
  }));
  fillTable("units-table", rows, "units-empty");
}

function syncFilter(select, facets, selected) {
  const values = facets.map((f) => f.value);
  if (selected && !values.includes(selected)) values.push(selected);
  const signature = JSON.stringify(facets);
  if (drawn.get(select) === signature) return;
  const counts = Object.fromEntries(facets.map((f) => [f.value, f.count]));
  select.replaceChildren(el("option", { value: "", text: "All" }),
    ...values.map((v) => el("option", { value: v, text: counts[v] ? `${v} (${counts[v]})` : v })));
  select.value = selected || "";
  drawn.set(select, signature);
}

function drawDeadLetters(dl, admin) {
  setText("dead-letters-waiting", fmtCount(dl.waiting));
  setText("dead-letters-foot", dl.loading ? "reading the dead-letter topic…" : `${fmtCount(dl.total)} kept · ${fmtCount(dl.total - dl.waiting)} replayed`);
  setKpi("kpi-dead-letters", dl.problem ? "alert" : dl.waiting > 0 ? "warn" : "ok");
  syncFilter($("filter-source"), dl.sources, state.filters.source);
  syncFilter($("filter-stage"), dl.stages, state.filters.stage);
  syncFilter($("filter-error"), dl.error_classes, state.filters.error_class);
  state.matching = dl.matching;
  const replayShown = $("replay-shown");
  replayShown.textContent = `Replay all shown (${fmtCount(dl.matching)})`;
  replayShown.disabled = !admin || dl.matching === 0;
  const extra = dl.items.length < dl.matching ? ` · newest ${dl.items.length} listed` : "";
  $("dead-letters-count").textContent = dl.problem || `${fmtCount(dl.matching)} shown${extra}`;
  const rows = dl.items.map((item) => ({
    key: [item.id, fmtAge(item.age_seconds), item.replayed && item.replayed.at, admin],
    node: () => el("tr", { "data-dead-letter-id": item.id },
      cell(`${fmtAge(item.age_seconds)} ago`, "muted"),
      cell(item.id, "mono"),
      cell(item.source || "unknown"),
      cell(tag(item.stage || "?", item.stage === "ingest" ? "info" : "warn")),
      cell(item.error_class, "mono"),
      cell(item.reason, "reason"),
      cell(item.attempts || "1", "num"),
      cell(item.replayed
        ? tag(`replayed ${fmtAge((Date.now() - Date.parse(item.replayed.at)) / 1000)} ago by ${item.replayed.by}`, "ok")
        : tag(item.replay_of ? `waiting · failed again (replay of ${item.replay_of})` : "waiting", "warn")),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "button small secondary", text: "Replay", "data-action": "replay",
          disabled: !admin, title: admin ? "Publish the original message again" : "Needs the admin role",
          onclick: () => confirmReplay([item]) }),
        el("button", { type: "button", class: "button small danger", text: "Purge", "data-action": "purge",
          disabled: !admin, title: admin ? "Hide it from every list; it can no longer be replayed" : "Needs the admin role",
          onclick: () => confirmPurge(item) }))),
  }));
  fillTable("dead-letters-table", rows, "dead-letters-empty");
}

function drawRetry(retry) {
  setText("retry-waiting", fmtCount(retry.waiting));
  setText("retry-foot", retry.waiting ? `oldest failing for ${fmtAge(retry.oldest_age_seconds)}` : "nothing waiting");
  setKpi("kpi-retry", retry.waiting === 0 ? "ok" : retry.oldest_age_seconds > 600 ? "alert" : "warn");
  const rows = retry.tiers.map((row) => ({
    key: [row.tier, row.waiting],
    node: () => el("tr", {}, cell(`tier ${row.tier}`), cell(fmtCount(row.waiting), `num ${row.waiting ? "" : "zero"}`)),
  }));
  fillTable("retry-table", retry.waiting ? rows : [], "retry-empty");
}

function drawParked(parked) {
  setText("parked-total", fmtCount(parked.total));
  setText("parked-foot", parked.total ? `oldest waiting ${fmtAge(parked.oldest_age_seconds)}` : "none waiting for a case");
  setKpi("kpi-parked", parked.total === 0 ? "ok" : parked.oldest_age_seconds > 3600 ? "warn" : null);
  const rows = parked.items.slice(0, LIST_ROWS).map((row) => ({
    key: [row.event_type, row.source, fmtAge(row.age_seconds)],
    node: () => el("tr", {}, cell(row.event_type), cell(row.source), cell(fmtAge(row.age_seconds), "muted")),
  }));
  fillTable("parked-table", rows, "parked-empty");
  more("parked-more", rows.length, parked.total);
}

function drawOverdue(overdue) {
  const total = overdue.waiting + overdue.escalated;
  setText("overdue-total", fmtCount(total));
  setText("overdue-foot", `${fmtCount(overdue.waiting)} not fired · ${fmtCount(overdue.escalated)} escalated (7 days)`);
  setKpi("kpi-overdue", overdue.waiting > 0 ? "alert" : overdue.escalated > 0 ? "warn" : "ok");
  const rows = overdue.items.slice(0, LIST_ROWS).map((row) => ({
    key: [row.timer, row.unit, row.due_at, row.escalated_seconds_ago === null, fmtAge(row.overdue_seconds)],
    node: () => el("tr", {},
      cell(row.timer.replaceAll("_", " ")),
      cell(row.unit),
      cell(`${fmtAge(row.overdue_seconds)} ago`, "muted"),
      cell(row.escalated_seconds_ago === null ? tag("not fired yet", "alert") : tag("escalated", "warn"))),
  }));
  fillTable("overdue-table", rows, "overdue-empty");
  more("overdue-more", rows.length, total);
}

function drawUrgent(urgent) {
  setText("urgent-total", fmtCount(urgent.total));
  const escalated = urgent.escalated;
  setText("urgent-foot", urgent.total ? `${escalated} escalated to unit triage` : "all acknowledged");
  setKpi("kpi-urgent", urgent.total === 0 ? "ok" : escalated ? "alert" : "warn");
  const rows = urgent.items.slice(0, LIST_ROWS).map((row) => ({
    key: [row.notification_id, fmtAge(row.age_seconds), row.escalated],
    node: () => el("tr", { title: row.notification_id },
      cell(shortId(row.notification_id), "mono"),
      cell(row.unit),
      cell(row.event_type),
      cell(row.escalated ? tag(`${fmtAge(row.age_seconds)} · escalated`, "alert") : `${fmtAge(row.age_seconds)}`)),
  }));
  fillTable("urgent-table", rows, "urgent-empty");
  more("urgent-more", rows.length, urgent.total);
}

// The coverage panel: `hub report coverage` over the last 30 days, computed beside the worker at most once a minute.
function fmtShare(rate) {
  return rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`;
}
function fmtCountShare(count, rate) {
  return rate === null || rate === undefined ? fmtCount(count) : `${fmtCount(count)} (${fmtShare(rate)})`;
}
function fmtWait(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 60 ? `${Math.round(seconds)} s` : fmtAge(seconds);
}
const REASON_WORDS = {
  vlo_only: "VLO only", opted_out: "opted out", no_category: "no category yet",
  not_chosen: "not chosen", changed_since: "choices changed since", no_victim_record: "no victim record",
};
function fmtBecause(because) {
  return Object.entries(because).filter(([, n]) => n > 0).map(([reason, n]) => `${REASON_WORDS[reason] || reason} ${fmtCount(n)}`).join(", ");
}
function fmtUrgent(row) {
  return row.urgent ? `${fmtCount(row.urgent_acknowledged_in_time)}/${fmtCount(row.urgent)}` : "–";
}
function coverageCells(row) {
  return [
    cell(fmtCount(row.events), "num"), cell(fmtCount(row.victims), "num"), cell(fmtCount(row.inform_victim), "num"),
    cell(fmtCount(row.record_only), "num"), cell(fmtCount(row.safety_review), "num"),
    cell(fmtCountShare(row.written, row.written_rate), "num"), cell(fmtCountShare(row.acknowledged, row.acknowledged_rate), "num"),
    cell(fmtWait(row.acknowledge_median_seconds), "num"), cell(fmtWait(row.acknowledge_p90_seconds), "num"),
    cell(fmtUrgent(row), "num"), cell(fmtBecause(row.recorded_because), "muted"),
  ];
}

function drawCoverage(coverage) {
  const gapsTag = testid("coverage-gaps");
  if (!coverage) {
    gapsTag.textContent = "computing…";
    gapsTag.className = "tag";
    return;
  }
  const asOf = new Date(coverage.computed_at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  setText("coverage-period", `notifiable events of the last ${coverage.days} days reaching referred victims of eligible cases · as of ${asOf} · urgent due within ${coverage.urgent_ack_minutes} min`);
  const gaps = coverage.gaps;
  gapsTag.textContent = gaps.victims ? `${fmtCount(gaps.victims)} gap${gaps.victims === 1 ? "" : "s"}` : "no gaps";
  gapsTag.className = `tag ${gaps.victims ? "alert" : "ok"}`;
  fillTable("coverage-inspection-table", coverage.inspection.map((row) => ({
    key: [row.measure, row.events, row.victims, row.written, row.acknowledged, row.acknowledge_median_seconds, row.acknowledge_p90_seconds, row.urgent_acknowledged_in_time],
    node: () => el("tr", { "data-measure": row.measure },
      cell(el("strong", { text: row.title })), cell(fmtCount(row.events), "num"), cell(fmtCount(row.victims), "num"),
      cell(fmtCountShare(row.written, row.written_rate), "num"), cell(fmtCountShare(row.acknowledged, row.acknowledged_rate), "num"),
      cell(fmtWait(row.acknowledge_median_seconds), "num"), cell(fmtWait(row.acknowledge_p90_seconds), "num"),
      cell(fmtUrgent(row), "num"), cell(tag(fmtShare(row.inspection_rate), "info"), "num")),
  })));
  const signature = (row) => [row.events, row.victims, row.inform_victim, row.record_only, row.safety_review, row.written, row.acknowledged, row.acknowledge_median_seconds, row.acknowledge_p90_seconds, row.urgent_acknowledged_in_time];
  fillTable("coverage-types-table", coverage.by_event_type.map((row) => ({
    key: [row.event_type, ...signature(row)],
    node: () => el("tr", { "data-event-type": row.event_type }, cell(row.category), cell(row.event_type), ...coverageCells(row)),
  })), "coverage-none");
  fillTable("coverage-units-table", coverage.by_unit.map((row) => ({
    key: [row.unit, ...signature(row)],
    node: () => el("tr", { "data-unit": row.unit }, cell(el("strong", { text: row.unit })), ...coverageCells(row)),
  })), "coverage-none");
  const gapRows = gaps.items.map((row) => ({
    key: [row.event_id, row.unit, row.victims, row.expected],
    node: () => el("tr", { "data-event-id": row.event_id },
      cell(row.event_id, "mono"), cell(row.event_type), cell(row.unit), cell(fmtCount(row.victims), "num"),
      cell(row.expected === "caught_up" ? "referral published before the event" : "referred before the event")),
  }));
  fillTable("coverage-gaps-table", gapRows);
  $("coverage-gaps-table").hidden = gapRows.length === 0;
  more("coverage-gaps-more", gapRows.length, gaps.events);
}

function tick() {
  if (!state.lastUpdate) return;
  const seconds = Math.round((Date.now() - state.lastUpdate) / 1000);
  $("updated").textContent = seconds < 2 ? "updated just now" : `updated ${seconds} s ago`;
}

// --- actions ----------------------------------------------------------------------------------------

function ask(title, text, confirmLabel) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

function toast(message, isError) {
  const node = $("toast");
  node.textContent = message;
  node.className = `toast${isError ? " error" : ""}`;
  node.hidden = false;
  clearTimeout(node.hideTimer);
  node.hideTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

async function act(path, body, done) {
  if (state.busy) return;
  state.busy = true;
  try {
    const { status, data } = await api("POST", path, body);
    if (status === 401) return showSignIn("Your session ended; sign in again.");
    if (status !== 200) return toast(data.error || `The hub refused (${status}).`, true);
    toast(done(data));
  } catch (error) {
    toast("The hub did not answer; nothing may have been done. Check before trying again.", true);
  } finally {
    state.busy = false;
    refresh();
  }
}

async function confirmReplay(items) {
  const item = items[0];
  const ok = await ask(
    `Replay dead letter ${item.id}?`,
    `The original ${item.source || ""} message goes back to its agency topic, marked as a replay, and the hub processes it again. It failed at ${item.stage}: ${item.reason}`,
    "Replay");
  if (ok) await act("/api/dead-letters/replay", { ids: [item.id] }, (d) => `Replayed ${d.replayed} dead letter${d.replayed === 1 ? "" : "s"}.`);
}

async function confirmReplayShown() {
  const described = Object.entries(state.filters).filter(([, v]) => v).map(([k, v]) => `${k.replace("_", " ")} ${v}`).join(", ");
  const ok = await ask(
    `Replay ${fmtCount(state.matching)} dead letter${state.matching === 1 ? "" : "s"}?`,
    `Every dead letter shown (${described || "no filter"}) goes back to its agency topic, marked as a replay.`,
    "Replay all");
  if (ok) await act("/api/dead-letters/replay", { filter: state.filters }, (d) => `Replayed ${d.replayed} dead letter${d.replayed === 1 ? "" : "s"}.`);
}

async function confirmPurge(item) {
  const ok = await ask(
    `Purge dead letter ${item.id}?`,
    "It is hidden from every list and can no longer be replayed. This cannot be undone from the console.",
    "Purge");
  if (ok) await act("/api/dead-letters/purge", { id: item.id }, (d) => `Purged dead letter ${d.id}.`);
}

// --- start ------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("sign-in-button");
    button.disabled = true;
    try {
      const { status, data } = await api("POST", "/api/session", { username: $("username").value, password: $("password").value });
      if (status !== 200) {
        $("sign-in-error").textContent = data.error || `Sign-in failed (${status}).`;
        return;
      }
      $("password").value = "";
      state.csrf = data.csrf;
      refresh();
    } catch (error) {
      $("sign-in-error").textContent = "The hub did not answer.";
    } finally {
      button.disabled = false;
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await api("DELETE", "/api/session").catch(() => null);
    showSignIn("Signed out.");
  });
  $("replay-shown").addEventListener("click", confirmReplayShown);
  document.querySelectorAll("[data-filter]").forEach((select) => select.addEventListener("change", () => {
    state.filters[select.dataset.filter] = select.value;
    refresh();
  }));
  setInterval(tick, 1000);
  refresh();
});
