/* Supervisor dashboard: reads only the statistics API of the server that serves it
 * (wazo-call-logd's routes under /1.0), draws with Chart.js (vendor/), no build step.
 *
 * What the page shows is kept in the URL fragment (#view=queues&from=...), so a view can be
 * bookmarked or sent; the token is never put there (session storage of the tab only).
 * body[data-state] says where the page is: login, loading, ready or error; data-loaded holds
 * the fragment of the last view rendered (tests and screenshots wait on both).
 */
"use strict";

const TOKEN_KEY = "stat_pipeline.api_token";
const WEEK_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];  // ISO 1..7, like call-logd
const WAIT_BUCKETS = [10, 20, 30, 60, 120];  // seconds; the service-level threshold is added
const GRAINS = ["hour", "day", "month"];     // call-logd's interval values
const COLORS = {
  received: "#5b6b7f", answered: "#2e8b57", abandoned: "#d9534f", service: "#1f77b4", offered: "#8e44ad",
  wait: "#ff8c00", login: "#6a5acd", pause: "#e0a800", wrapup: "#17a2b8", conversation: "#2e8b57",
};

// Fields of call-logd's answers the tables show with their own labels; any other numeric
// field an item carries (our extra KPIs) gets a column of its own, named after the field.
const QUEUE_FIELDS = [
  {key: "received", label: "Received", type: "int"},
  {key: "answered", label: "Answered", type: "int"},
  {key: "abandoned", label: "Abandoned", type: "int"},
  {key: "closed", label: "Closed", type: "int"},
  {key: "not_answered", label: "Not answered (timeout)", type: "int"},
  {key: "saturated", label: "Saturated", type: "int"},
  {key: "blocked", label: "Blocked", type: "int"},
  {key: "average_waiting_time", label: "Average wait", type: "duration"},
  {key: "answered_rate", label: "Answered rate", type: "pct"},
  {key: "quality_of_service", label: "QoS (% of answered)", type: "pct"},
];
const AGENT_FIELDS = [
  {key: "answered", label: "Answered", type: "int"},
  {key: "conversation_time", label: "Conversation", type: "duration"},
  {key: "login_time", label: "Logged in", type: "duration"},
  {key: "pause_time", label: "Paused", type: "duration"},
  {key: "wrapup_time", label: "Wrap-up", type: "duration"},
];
// Our KPIs beyond call-logd's (the warehouse's stat_queue_kpi / stat_agent_kpi, see the
// README), when the API adds them to its items: their labels and kinds.
const EXTRA_FIELDS = {
  offered: {label: "Offered (waited)", type: "int"},
  short_abandoned: {label: "Short abandons", type: "int"},
  abandon_rate: {label: "Abandon rate", type: "pct"},
  service_level: {label: "Service level (% of offered)", type: "pct"},
  average_speed_of_answer: {label: "ASA (answered calls' wait)", type: "duration"},
  average_handling_time: {label: "AHT (talk + wrap-up)", type: "duration"},
  longest_waiting_time: {label: "Longest wait", type: "duration"},
};
const IDENTITY_FIELDS = new Set(["from", "until", "tenant_uuid", "queue_id", "queue_name",
  "agent_id", "agent_number", "queues"]);

const $ = (selector) => document.querySelector(selector);
const charts = {};   // canvas id -> Chart
const tables = {};   // table id -> {columns, rows, sort: {key, dir}}
let loadGeneration = 0;

class AuthError extends Error {}

// ---------------------------------------------------------------- page state (URL fragment)

function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function defaultState() {
  const yesterday = new Date();
  yesterday.setDate(yesterday.getDate() - 1);
  return {
    view: "queues", from: isoDay(yesterday), to: isoDay(yesterday),
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", grain: "hour",
    ds: "", de: "", wd: "1,2,3,4,5,6,7", sl: "20", tenant: "", queue: "", agent: "",
  };
}

function readState() {
  const state = defaultState();
  const given = new URLSearchParams(location.hash.slice(1));
  for (const key of Object.keys(state)) {
    if (given.has(key)) state[key] = given.get(key);
  }
  if (!GRAINS.includes(state.grain)) state.grain = "hour";
  if (state.view !== "agents") state.view = "queues";
  return state;
}

function writeState(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== "" && value !== null && value !== undefined) params.set(key, value);
  }
  const hash = "#" + params.toString();
  if (location.hash !== hash) location.hash = hash;  // hashchange loads it
  else load();
}

function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  return next.toISOString().slice(0, 10);
}

// The query parameters call-logd takes on every route: naive times are read by the API in
// `timezone`, the "to" day is included, so `until` is the next midnight.
function periodParams(state) {
  const params = {from: `${state.from}T00:00:00`, until: `${nextDay(state.to)}T00:00:00`,
                  timezone: state.tz};
  if (state.ds && state.de) {  // call-logd applies working hours only when both are given
    params.day_start_time = state.ds.slice(0, 5);
    params.day_end_time = state.de.slice(0, 5);
  }
  if (state.wd !== "1,2,3,4,5,6,7") params.week_days = state.wd;
  return params;
}

// ---------------------------------------------------------------- API

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, params, state) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = {"X-Auth-Token": token(), "Accept": "application/json"};
  if (state.tenant) headers["Wazo-Tenant"] = state.tenant;
  const response = await fetch(url, {headers, cache: "no-store"});
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: told below by status */ }
  if (response.status === 401) throw new AuthError((body && body.message) || "unauthorized");
  if (!response.ok) {
    let message = (body && body.message) || response.statusText;
    if (body && body.details && Object.keys(body.details).length) {
      message += ": " + JSON.stringify(body.details);
    }
    throw new Error(`${response.status} ${message}`);
  }
  return body;
}

// ---------------------------------------------------------------- formatting

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Number(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}

function formatValue(value, type) {
  if (value === null || value === undefined) return "—";
  switch (type) {
    case "duration": return formatDuration(value);
    case "pct": return `${Number(value).toFixed(2)} %`;
    case "int": return String(value);
    case "float": return Number(value).toLocaleString("en", {maximumFractionDigits: 2});
    default: return String(value);
  }
}

// "2024-03-04T10:00:00+01:00" is already wall-clock time in the chosen zone: keep its text.
function wallClock(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : ""; }

// The axis labels of a series of intervals. When the clock goes back (end of DST) an hour
// shows twice in wall-clock time: both get their UTC offset ("02:00 +02:00", "02:00 +01:00").
function intervalLabels(intervals, grain, oneDay) {
  const labels = intervals.map((i) => intervalLabel(i.from, grain, oneDay));
  const seen = new Map();
  for (const label of labels) seen.set(label, (seen.get(label) || 0) + 1);
  return labels.map((label, n) => (seen.get(label) > 1 && intervals[n].from
    ? `${label} ${intervals[n].from.slice(19)}` : label));
}

function intervalLabel(iso, grain, oneDay) {
  if (!iso) return "";
  if (grain === "month") return iso.slice(0, 7);
  if (grain === "day") return iso.slice(0, 10);
  return oneDay ? iso.slice(11, 16) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

function prettyKey(key) {
  const text = key.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Extra numeric fields of the items (our KPIs beyond call-logd's), in first-seen order.
function extraColumns(items, known) {
  const keys = new Set(known.map((c) => c.key));
  const extra = [];
  for (const item of items) {
    for (const [key, value] of Object.entries(item)) {
      if (keys.has(key) || IDENTITY_FIELDS.has(key)) continue;
      if (typeof value === "number" || value === null) {
        keys.add(key);
        const type = /(_time|_wait|wait_|handling|_seconds)/.test(key) ? "duration"
          : /(rate|level|percent|pct)/.test(key) ? "pct" : "float";
        extra.push({key, label: prettyKey(key), type, ...(EXTRA_FIELDS[key] || {})});
      }
    }
  }
  return extra;
}

// ---------------------------------------------------------------- sortable tables + CSV

function csvCell(value) {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvHeader(column) {
  return column.type === "duration" ? `${column.label} (s)` : column.label;
}

function tableCsv(id) {
  const table = tables[id];
  const lines = [table.columns.map((c) => csvCell(csvHeader(c))).join(",")];
  for (const row of sortedRows(table)) {
    lines.push(table.columns.map((c) => csvCell(c.csv ? c.csv(row) : row[c.key])).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

function downloadCsv(id) {
  // A UTF-8 BOM so that spreadsheet programs read accents right.
  const blob = new Blob(["\ufeff" + tableCsv(id)], {type: "text/csv;charset=utf-8"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${tables[id].filename}.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function sortValue(row, column) {
  const value = column.sortValue ? column.sortValue(row) : row[column.key];
  return value === undefined ? null : value;
}

function sortedRows(table) {
  const {key, dir} = table.sort;
  if (!key) return table.rows;
  const column = table.columns.find((c) => c.key === key);
  const sign = dir === "desc" ? -1 : 1;
  return [...table.rows].sort((a, b) => {
    const x = sortValue(a, column), y = sortValue(b, column);
    if (x === null && y === null) return 0;
    if (x === null) return 1;   // empty values last, whatever the direction
    if (y === null) return -1;
    if (typeof x === "number" && typeof y === "number") return sign * (x - y);
    return sign * String(x).localeCompare(String(y), undefined, {numeric: true});
  });
}

function renderTable(id, columns, rows, options = {}) {
  const previous = tables[id];
  const keepSort = previous && columns.some((c) => c.key === previous.sort.key);
  tables[id] = {columns, rows, filename: options.filename || id,
                sort: keepSort ? previous.sort : {key: null, dir: "asc"},
                onRowClick: options.onRowClick, selected: options.selected};
  drawTable(id);
}

function drawTable(id) {
  const table = tables[id];
  const box = document.getElementById(id);
  box.replaceChildren();
  const tools = document.createElement("div");
  tools.className = "table-tools";
  const count = document.createElement("span");
  count.textContent = `${table.rows.length} row${table.rows.length === 1 ? "" : "s"}`;
  const csv = document.createElement("button");
  csv.type = "button";
  csv.className = "csv";
  csv.textContent = "Download CSV";
  csv.addEventListener("click", () => downloadCsv(id));
  tools.append(count, csv);

  const element = document.createElement("table");
  const head = element.createTHead().insertRow();
  for (const column of table.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.key = column.key;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.label;
    button.title = "Sort";
    button.addEventListener("click", () => {
      const same = table.sort.key === column.key;
      table.sort = {key: column.key, dir: same && table.sort.dir === "asc" ? "desc" : "asc"};
      drawTable(id);
    });
    th.append(button);
    th.setAttribute("aria-sort", table.sort.key !== column.key ? "none"
      : table.sort.dir === "asc" ? "ascending" : "descending");
    if (column.type !== "text") th.className = "num";
    head.append(th);
  }
  const body = element.createTBody();
  for (const row of sortedRows(table)) {
    const tr = body.insertRow();
    if (table.onRowClick) {
      tr.className = "clickable";
      tr.addEventListener("click", () => table.onRowClick(row));
    }
    if (table.selected && table.selected(row)) tr.classList.add("selected");
    for (const column of table.columns) {
      const td = tr.insertCell();
      td.textContent = column.format ? column.format(row) : formatValue(row[column.key], column.type);
      td.dataset.key = column.key;
      if (column.type !== "text") td.className = "num";
    }
  }
  if (!table.rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = table.columns.length;
    td.className = "empty";
    td.textContent = "No statistics for this selection.";
  }
  box.append(tools, element);
}

// ---------------------------------------------------------------- charts (Chart.js)

function drawChart(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({
    animation: false, responsive: true, maintainAspectRatio: false,
    interaction: {mode: "index", intersect: false},
  }, config.options || {});
  charts[id] = new Chart(document.getElementById(id), config);
}

// Seconds on the axis, ticks on round durations (a minute … 4 hours) rather than Chart.js's
// decimal steps (1:23:20); at most ~8 ticks.
const DURATION_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];

function durationAxis(title, values) {
  const longest = Math.max(60, ...values.filter((v) => typeof v === "number"));
  const stepSize = DURATION_STEPS.find((step) => longest / step <= 8) || 86400 * 7;
  return {beginAtZero: true, title: {display: true, text: title},
          ticks: {stepSize, callback: (value) => formatDuration(value)}};
}

function durationTooltip(context) {
  return `${context.dataset.label}: ${formatDuration(context.parsed.y ?? context.parsed.x)}`;
}

// ---------------------------------------------------------------- queue view

function queueColumns(items) {
  return [
    {key: "queue_name", label: "Queue", type: "text"},
    ...QUEUE_FIELDS, ...extraColumns(items, QUEUE_FIELDS),
  ];
}

function intervalColumns(items, fields) {
  return [
    {key: "from", label: "From", type: "text", format: (row) => wallClock(row.from),
     csv: (row) => row.from},
    {key: "until", label: "Until", type: "text", format: (row) => wallClock(row.until),
     csv: (row) => row.until},
    ...fields, ...extraColumns(items, fields),
  ];
}

async function loadQueues(state, generation) {
  const period = periodParams(state);
  const list = await api("1.0/queues/statistics", {...period, qos_threshold: state.sl}, state);
  if (generation !== loadGeneration) return;
  const queues = list.items;
  let chosen = queues.find((q) => String(q.queue_id) === state.queue);
  if (!chosen && queues.length) {
    chosen = queues.reduce((best, q) => ((q.received || 0) > (best.received || 0) ? q : best));
  }
  renderTable("table-queues", queueColumns(queues), queues, {
    filename: `queues_${state.from}_${state.to}`,
    onRowClick: (row) => writeState({...state, queue: String(row.queue_id)}),
    selected: (row) => chosen && row.queue_id === chosen.queue_id,
  });
  const select = $("#queue-select");
  select.replaceChildren(...queues.map((q) => new Option(q.queue_name, q.queue_id)));
  if (!chosen) {
    $("#queue-title").textContent = "No queue";
    clearQueueDetail();
    return;
  }
  select.value = String(chosen.queue_id);
  $("#queue-title").textContent = `${chosen.queue_name}: per ${state.grain}`;

  const thresholds = [...new Set([...WAIT_BUCKETS, Number(state.sl)])].sort((a, b) => a - b);
  const [detail, qos] = await Promise.all([
    api(`1.0/queues/${chosen.queue_id}/statistics`,
        {...period, interval: state.grain, qos_threshold: state.sl}, state),
    api(`1.0/queues/${chosen.queue_id}/statistics/qos`,
        {...period, qos_thresholds: thresholds.join(",")}, state),
  ]);
  if (generation !== loadGeneration) return;
  // call-logd: the interval items, then one item for the whole period
  const intervals = detail.items.slice(0, -1);
  const whole = detail.items[detail.items.length - 1];
  renderQueueCards(whole, state);
  const oneDay = state.from === state.to;
  const labels = intervalLabels(intervals, state.grain, oneDay);
  drawChart("chart-queue-calls", {
    type: "bar",
    data: {labels, datasets: ["received", "answered", "abandoned"].map((key) => ({
      label: prettyKey(key), data: intervals.map((i) => i[key] ?? 0),
      backgroundColor: COLORS[key]}))},
    options: {scales: {y: {beginAtZero: true, title: {display: true, text: "calls"},
                           ticks: {precision: 0}}}},
  });
  drawChart("chart-queue-service", {
    type: "line",
    data: {labels, datasets: [
      {label: `Answered within ${state.sl} s, % of answered (QoS)`,
       data: intervals.map((i) => i.quality_of_service), yAxisID: "pct",
       borderColor: COLORS.service, backgroundColor: COLORS.service, spanGaps: false},
      ...(intervals.some((i) => typeof i.service_level === "number") ? [
        {label: `Answered within ${state.sl} s, % of offered (service level)`,
         data: intervals.map((i) => i.service_level ?? null), yAxisID: "pct", borderDash: [6, 4],
         borderColor: COLORS.offered, backgroundColor: COLORS.offered, spanGaps: false}] : []),
      {label: "Average wait, s", data: intervals.map((i) => i.average_waiting_time),
       yAxisID: "wait", borderColor: COLORS.wait, backgroundColor: COLORS.wait, spanGaps: false},
    ]},
    options: {plugins: {legend: {labels: {usePointStyle: true}}}, scales: {
      pct: {position: "left", min: 0, max: 100, title: {display: true, text: "service level %"}},
      wait: {position: "right", beginAtZero: true, title: {display: true, text: "average wait (s)"},
             grid: {drawOnChartArea: false}},
    }},
  });
  renderTable("table-queue-intervals", intervalColumns(intervals, QUEUE_FIELDS), intervals, {
    filename: `queue_${chosen.queue_id}_per_${state.grain}_${state.from}_${state.to}`});
  const buckets = (qos.items[qos.items.length - 1] || {}).quality_of_service || [];
  renderTable("table-queue-waits", [
    {key: "min", label: "Wait from (s)", type: "int"},
    {key: "max", label: "Wait under (s)", type: "int"},
    {key: "answered", label: "Answered", type: "int"},
    {key: "abandoned", label: "Abandoned", type: "int"},
  ], buckets, {filename: `queue_${chosen.queue_id}_waits_${state.from}_${state.to}`});
}

function renderQueueCards(whole, state) {
  const cards = [
    ["Received", formatValue(whole.received ?? 0, "int")],
    ["Answered", formatValue(whole.answered ?? 0, "int")],
    ["Abandoned", formatValue(whole.abandoned ?? 0, "int")],
    ["Answered rate", formatValue(whole.answered_rate, "pct")],
    [`Answered within ${state.sl} s (QoS)`, formatValue(whole.quality_of_service, "pct")],
    ...(typeof whole.service_level === "number"
      ? [[`Service level (${state.sl} s, of offered)`, formatValue(whole.service_level, "pct")]] : []),
    ["Average wait", formatValue(whole.average_waiting_time, "duration")],
  ];
  $("#queue-cards").replaceChildren(...cards.map(([label, value]) => {
    const card = document.createElement("div");
    card.className = "card";
    const v = document.createElement("strong");
    v.textContent = value;
    const l = document.createElement("span");
    l.textContent = label;
    card.append(v, l);
    return card;
  }));
}

function clearQueueDetail() {
  $("#queue-cards").replaceChildren();
  for (const id of ["chart-queue-calls", "chart-queue-service"]) {
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
  }
  renderTable("table-queue-intervals", intervalColumns([], QUEUE_FIELDS), []);
  renderTable("table-queue-waits", [{key: "min", label: "Wait from (s)", type: "int"}], []);
}

// ---------------------------------------------------------------- agent view

const TIME_SERIES = [
  ["login_time", "Logged in", COLORS.login], ["pause_time", "Paused", COLORS.pause],
  ["wrapup_time", "Wrap-up", COLORS.wrapup], ["conversation_time", "Conversation", COLORS.conversation],
];

async function loadAgents(state, generation) {
  const period = periodParams(state);
  const [list, queueList] = await Promise.all([
    api("1.0/agents/statistics", period, state),
    api("1.0/queues/statistics", period, state),  // the queue names of the per-queue table
  ]);
  if (generation !== loadGeneration) return;
  const agents = list.items;
  const queueNames = new Map(queueList.items.map((q) => [q.queue_id, q.queue_name]));
  let chosen = agents.find((a) => String(a.agent_id) === state.agent);
  if (!chosen && agents.length) {
    chosen = agents.reduce((best, a) => ((a.login_time || 0) > (best.login_time || 0) ? a : best));
  }
  const byNumber = [...agents].sort((a, b) =>
    String(a.agent_number).localeCompare(String(b.agent_number), undefined, {numeric: true}));
  drawChart("chart-agent-times", {
    type: "bar",
    data: {labels: byNumber.map((a) => a.agent_number),
           datasets: TIME_SERIES.map(([key, label, color]) => ({
             label, data: byNumber.map((a) => a[key] ?? 0), backgroundColor: color}))},
    options: {indexAxis: "y",
              scales: {x: durationAxis("h:mm:ss", byNumber.flatMap((a) => TIME_SERIES.map(([k]) => a[k])))},
              plugins: {tooltip: {callbacks: {label: durationTooltip}}}},
  });
  renderTable("table-agents", [
    {key: "agent_number", label: "Agent", type: "text"},
    ...AGENT_FIELDS, ...extraColumns(agents, AGENT_FIELDS),
  ], agents, {
    filename: `agents_${state.from}_${state.to}`,
    onRowClick: (row) => writeState({...state, view: "agents", agent: String(row.agent_id)}),
    selected: (row) => chosen && row.agent_id === chosen.agent_id,
  });
  const select = $("#agent-select");
  select.replaceChildren(...byNumber.map((a) => new Option(a.agent_number, a.agent_id)));
  if (!chosen) {
    $("#agent-title").textContent = "No agent";
    return;
  }
  select.value = String(chosen.agent_id);
  $("#agent-title").textContent = `Agent ${chosen.agent_number}: per ${state.grain}`;
  const detail = await api(`1.0/agents/${chosen.agent_id}/statistics`,
                           {...period, interval: state.grain}, state);
  if (generation !== loadGeneration) return;
  const intervals = detail.items.slice(0, -1);
  const whole = detail.items[detail.items.length - 1];
  const oneDay = state.from === state.to;
  drawChart("chart-agent-intervals", {
    type: "bar",
    data: {labels: intervalLabels(intervals, state.grain, oneDay),
           datasets: TIME_SERIES.map(([key, label, color]) => ({
             label, data: intervals.map((i) => i[key] ?? 0), backgroundColor: color}))},
    options: {scales: {y: durationAxis("h:mm:ss", intervals.flatMap((i) => TIME_SERIES.map(([k]) => i[k])))},
              plugins: {tooltip: {callbacks: {label: durationTooltip}}}},
  });
  renderTable("table-agent-intervals", intervalColumns(intervals, AGENT_FIELDS), intervals, {
    filename: `agent_${chosen.agent_number}_per_${state.grain}_${state.from}_${state.to}`});
  const perQueue = (whole.queues || []).map((q) => ({...q, queue_name: queueNames.get(q.queue_id)
                                                     ?? `queue ${q.queue_id}`}));
  const reasons = Array.isArray(whole.pause_by_reason) ? whole.pause_by_reason : [];
  $("#agent-reasons").hidden = !Array.isArray(whole.pause_by_reason);
  renderTable("table-agent-reasons", [
    {key: "reason", label: "Pause reason", type: "text", format: (row) => row.reason || "(none given)"},
    {key: "pause_time", label: "Paused", type: "duration"},
  ], reasons, {filename: `agent_${chosen.agent_number}_pause_reasons_${state.from}_${state.to}`});
  renderTable("table-agent-queues", [
    {key: "queue_name", label: "Queue", type: "text"},
    ...AGENT_FIELDS, ...extraColumns(perQueue, AGENT_FIELDS),
  ], perQueue, {filename: `agent_${chosen.agent_number}_queues_${state.from}_${state.to}`});
}

// ---------------------------------------------------------------- page

function showLogin(message) {
  document.body.dataset.state = "login";
  $("#main").hidden = true;
  $("#sign-out").hidden = true;
  $("header.top nav").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#token").focus();
}

function fillFilters(state) {
  const form = $("#filters");
  for (const key of ["from", "to", "tz", "grain", "ds", "de", "sl", "tenant"]) {
    form.elements[key].value = state[key];
  }
  const days = new Set(state.wd.split(","));
  for (const box of form.querySelectorAll("input[name=wd]")) box.checked = days.has(box.value);
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === state.view);
  }
  $("#queues-view").hidden = state.view !== "queues";
  $("#agents-view").hidden = state.view !== "agents";
}

function stateFromForm(current) {
  const form = $("#filters");
  const state = {...current};
  for (const key of ["from", "to", "tz", "grain", "ds", "de", "sl", "tenant"]) {
    state[key] = form.elements[key].value.trim();
  }
  state.wd = [...form.querySelectorAll("input[name=wd]:checked")].map((b) => b.value).join(",");
  return state;
}

function checkState(state) {
  if (!state.from || !state.to) return "choose the first and last day";
  if (state.to < state.from) return "the last day is before the first day";
  if (!state.wd) return "choose at least one week day";
  if ((state.ds && !state.de) || (!state.ds && state.de)) {
    return "give both working hours, or neither";
  }
  return null;
}

async function load() {
  if (!token()) { showLogin(); return; }
  const state = readState();
  const generation = ++loadGeneration;
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#sign-out").hidden = false;
  $("header.top nav").hidden = false;
  fillFilters(state);
  $("#error").hidden = true;
  for (const view of document.querySelectorAll(".view")) view.classList.remove("stale");
  const problem = checkState(state);
  if (problem) { fail(problem); return; }
  document.body.dataset.state = "loading";
  $("#status").textContent = "Loading…";
  try {
    if (state.view === "agents") await loadAgents(state, generation);
    else await loadQueues(state, generation);
    if (generation !== loadGeneration) return;
    $("#status").textContent = `${state.from} to ${state.to} (${state.tz})` +
      (state.ds && state.de ? `, hours ${state.ds}–${state.de} included` : "") +
      (state.wd !== "1,2,3,4,5,6,7" ? `, ${state.wd.split(",").map((d) => WEEK_DAYS[d - 1]).join(" ")}` : "");
    document.body.dataset.loaded = location.hash.slice(1);
    document.body.dataset.state = "ready";
  } catch (error) {
    if (generation !== loadGeneration) return;
    if (error instanceof AuthError) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`The API refused the token (${error.message}).`);
    } else {
      fail(error.message);
    }
  }
}

function fail(message) {
  // what is still drawn belongs to the previous choice: grey it out rather than let it pass
  // for the answer to this one
  for (const view of document.querySelectorAll(".view")) view.classList.add("stale");
  $("#status").textContent = "";
  $("#error").textContent = message;
  $("#error").hidden = false;
  document.body.dataset.state = "error";
}

function setUp() {
  const weekdays = document.querySelector(".weekdays");
  WEEK_DAYS.forEach((name, index) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "wd";
    box.value = String(index + 1);
    label.append(box, " " + name);
    weekdays.append(label);
  });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  $("#zones").replaceChildren(...["UTC", ...zones].map((zone) => new Option(zone)));

  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    load();
  });
  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    writeState(stateFromForm(readState()));
  });
  $("#queue-select").addEventListener("change", (event) =>
    writeState({...readState(), queue: event.target.value}));
  $("#agent-select").addEventListener("change", (event) =>
    writeState({...readState(), agent: event.target.value}));
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", (event) => {
      event.preventDefault();
      writeState({...stateFromForm(readState()), view: tab.dataset.view});
    });
  }
  window.addEventListener("hashchange", load);
  load();
}

// For tests and the curious: what the page holds, as the page holds it.
window.statDashboard = {tables, charts, tableCsv};

document.addEventListener("DOMContentLoaded", setUp);
