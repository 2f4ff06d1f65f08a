// partman's web UI: plain JS over the JSON API, inline SVG for the timelines. No build step.
// Every value from the API goes into the page as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 5000;
const MAX_PLAN_ROWS = 100;
const EMPTY_PLAN = { operations: [], notices: [] };
const SVG_NS = "http://www.w3.org/2000/svg";
const RETIRE_KINDS = new Set(["drop", "detach", "archive"]);
const state = { token: "", mutations: true, refreshing: false, lastError: null };
// A fleet (partman.toml's [[databases]]): the chosen database's API is under
// /api/databases/<name>/; the fleet's own routes stay where they are.
const fleet = { names: null, chosen: null };
const FLEET_ROUTES = /^\/api\/(databases(\/|$|\?)|ui-config)/;

function apiPath(path) {
  if (fleet.chosen === null || !path.startsWith("/api/") || FLEET_ROUTES.test(path)) return path;
  return "/api/databases/" + encodeURIComponent(fleet.chosen) + path.slice(4);
}

// -- helpers ----------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Values from the API (tenant ids, table names, messages) go into text and into plain
// attributes (class, data-*, aria-*, geometry) only: never an event handler, never a URL.
const URL_ATTRS = new Set(["href", "src", "xlink:href", "action", "formaction", "srcdoc", "style"]);

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (/^on/i.test(key) || URL_ATTRS.has(key.toLowerCase())) {
      throw new Error("refusing to set the attribute " + key + " from data");
    }
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
}

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (state.token) h.Authorization = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  return (await apiPage(path, options)).body;
}

// The body and, for a page of a listing, how many match in all (X-Total-Count).
async function apiPage(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(apiPath(path), opts);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.status + " " + response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  const total = response.headers.get("X-Total-Count");
  return { body: body, total: total === null ? null : Number(total) };
}

function parseTime(text) {
  if (!text || text === "unbounded") return null;
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

// A bound as the API gives it (the column's own value) -> a position on the table's axis:
// milliseconds since 1970 for time (timestamps, epoch integers, UUIDv7s, whose first 48 bits
// are their millisecond), or the id itself for an id table. null: unbounded or unreadable.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EPOCH_PER_SECOND = { seconds: 1n, milliseconds: 1000n, microseconds: 1000000n, nanoseconds: 1000000000n };

function positionOf(text, table) {
  if (text === null || text === undefined || text === "" || text === "unbounded") return null;
  const s = String(text);
  if (table && table.by_id) {
    const n = Number(s);
    return Number.isFinite(n) ? n : null;
  }
  if (table && table.epoch && EPOCH_PER_SECOND[table.epoch]) {
    if (!/^-?\d+$/.test(s)) return null;
    return Number((BigInt(s) * 1000n) / EPOCH_PER_SECOND[table.epoch]);
  }
  if (UUID_RE.test(s)) return parseInt(s.replace(/-/g, "").slice(0, 12), 16);
  return parseTime(s);
}

// ids as axis labels: 1500000 -> "1.5M"
const COMPACT = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 2 });

function idLabel(n) {
  return Math.abs(n) < 10000 ? String(n) : COMPACT.format(n);
}

// How far ahead a row's partitions reach, in its own unit (ids for an id table).
function runwayValue(coverage) {
  return coverage.runway_ids !== null && coverage.runway_ids !== undefined
    ? coverage.runway_ids : coverage.runway_seconds;
}

// Where an id table's tenant is: its newest id (covered_until minus the runway in ids).
function newestId(coverage) {
  if (!coverage || coverage.covered_until === null || coverage.runway_ids === null ||
      coverage.runway_ids === undefined) return null;
  const end = Number(coverage.covered_until);
  return Number.isFinite(end) ? end - coverage.runway_ids : null;
}

function duration(seconds) {
  return seconds === null || seconds === undefined ? "–" : humanDuration(seconds);
}

// partman.model.text.human_duration, word for word: the CLI and the UI write durations alike
function humanDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return h ? d + " d " + h + " h" : d + " d";
  if (h) return m ? h + " h " + m + " min" : h + " h";
  const secs = s % 60;
  if (m >= 10 || (m && !secs)) return m + " min";
  return m ? m + " min " + secs + " s" : secs + " s";
}

function shortTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function day(iso) {
  if (!iso) return "";
  const text = String(iso);
  // a time to the minute; an id, an epoch integer or a UUID as it is
  return /^\d{4}-\d\d-\d\d/.test(text) ? text.slice(0, 16).replace("T", " ") : text;
}

// -- status and token -------------------------------------------------------------------------

function showStatus(status) {
  const chip = document.getElementById("status");
  const sched = status.scheduler || {};
  let role = status.role;
  let text = role + " · " + status.instance;
  if (sched.consecutive_failures > 0) {
    role = "error";
    text += " · failing (" + sched.consecutive_failures + ")";
  }
  chip.dataset.role = role;
  chip.textContent = text;
  const last = status.last_pass;
  const lastPass = document.getElementById("last-pass");
  if (sched.state === "starting" && !last) {
    // the first scheduled pass waits first_pass_delay: say so, or the page looks stuck
    const at = parseTime(sched.next_pass_at);
    const left = at === null ? null : Math.max(0, (at - Date.now()) / 1000);
    lastPass.textContent = "starting: the first scheduled pass runs at " + shortTime(sched.next_pass_at) +
      (left === null ? "" : " (in " + humanDuration(left) + ")") +
      ", after the service's first_pass_delay; Apply now runs one sooner";
  } else if (last && !last.error) {
    lastPass.textContent = "last pass here " + shortTime(last.started_at) + " (" + last.trigger + ")";
  } else if (last && last.error) {
    lastPass.textContent = "last pass failed: " + last.error;
  } else {
    lastPass.textContent = sched.next_pass_at ? "next pass " + shortTime(sched.next_pass_at) : "";
  }
}

function showBanner(message) {
  const banner = document.getElementById("banner");
  if (message) {
    banner.textContent = message;
    banner.hidden = false;
  } else {
    banner.hidden = true;
    banner.textContent = "";
  }
}

// -- plan -------------------------------------------------------------------------------------

function groupedPlan(plan) {
  const groups = new Map();
  for (const op of plan.operations) {
    const key = [op.table, op.tenant, op.kind].join("\u0000");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(op);
  }
  return [...groups.values()];
}

function showPlan(plan) {
  const box = document.getElementById("plan");
  const count = document.getElementById("plan-count");
  count.textContent = "(" + plan.operations.length + " operation" +
    (plan.operations.length === 1 ? "" : "s") + ")";
  box.replaceChildren();
  if (plan.operations.length === 0) {
    box.append(el("p", { class: "empty", id: "plan-empty",
      text: "Nothing to do: every managed table is covered and nothing has expired." }));
  } else {
    const body = el("tbody");
    const groups = groupedPlan(plan);
    for (const ops of groups.slice(0, MAX_PLAN_ROWS)) {
      const first = ops[0];
      const last = ops[ops.length - 1];
      body.append(el("tr", { class: "plan-row", "data-kind": first.kind, "data-table": first.table,
        "data-tenant": first.tenant === null ? "" : first.tenant },
        el("td", { class: "kind-" + first.kind, text: first.kind }),
        el("td", { text: first.table }),
        el("td", { text: first.tenant === null ? "–" : first.tenant }),
        el("td", { class: "num", text: ops.length }),
        el("td", { text: day(first.from) }),
        el("td", { text: day(last.to) }),
        el("td", { text: first.reason })));
    }
    box.append(el("table", { id: "plan-table" },
      el("thead", {}, el("tr", {}, ["operation", "table", "tenant", "partitions", "from", "to",
        "why (first)"].map((h) => el("th", { text: h })))),
      body));
    if (groups.length > MAX_PLAN_ROWS) {
      box.append(el("p", { class: "muted", id: "plan-more", text: "… and " +
        (groups.length - MAX_PLAN_ROWS).toLocaleString("en") + " more rows (GET /api/plan has them all)" }));
    }
  }
  if (plan.notices.length > 0) {
    const list = el("ul", { class: "notices" });
    for (const n of plan.notices) {
      list.append(el("li", { class: "level-" + n.level, text: n.level + ": " + n.table + ": " + n.message }));
    }
    box.append(list);
  }
}

async function applyNow() {
  const button = document.getElementById("apply");
  const result = document.getElementById("apply-result");
  result.classList.remove("error");
  if (!state.token) {
    const given = window.prompt("Bearer token of this partman service:");
    if (!given) return;
    setToken(given);
  }
  button.disabled = true;
  result.textContent = "applying…";
  try {
    const report = await api("/api/apply", { method: "POST" });
    if (report.skipped_reason) {
      result.textContent = "pass skipped: " + report.skipped_reason;
    } else {
      result.textContent = "applied: created " + report.partitions_created + ", retired " +
        report.partitions_retired + ", failed " + report.operations_failed + ", skipped " +
        report.operations_skipped + " (run " + report.run_id.slice(0, 8) + ")";
    }
    result.dataset.runId = report.run_id;
  } catch (error) {
    result.textContent = "apply failed: " + error.message;
    result.classList.add("error");
  } finally {
    button.disabled = !state.mutations;
    await refresh();
  }
}

// -- timelines --------------------------------------------------------------------------------

const HOUR = 3600e3;
const DAY_MS = 24 * HOUR;
const UNIT_MS = { microsecond: 1e-3, second: 1e3, minute: 60e3, hour: HOUR, day: DAY_MS,
  week: 7 * DAY_MS, month: 30 * DAY_MS, year: 365 * DAY_MS };

// "1 day", "6 hours", "3 months" (the API's partition_interval) -> { count, unit, ms }
function parseInterval(text) {
  const m = /^(\d+)\s+([a-z]+?)s?$/.exec(String(text || "").trim());
  if (!m || !(m[2] in UNIT_MS)) return { count: 1, unit: "day", ms: DAY_MS };
  const count = Number(m[1]);
  return { count: count, unit: m[2], ms: count * UNIT_MS[m[2]] };
}

// One partition's step on the table's axis: a period of time, or ids per window.
function stepOf(table) {
  if (table.by_id) {
    const width = Number(table.partition_interval);
    return { count: width, unit: "id", ms: width > 0 ? width : 1 };
  }
  return parseInterval(table.partition_interval);
}

function rowKey(tenant) {
  return tenant === null ? "" : tenant;
}

// Everything the cards draw, indexed once per refresh: a page of 40 rows out of 5,000 tenants
// then looks up its partitions instead of scanning them all.
function indexData(tables, parts, plan) {
  const byTable = new Map(tables.map((t) => [t.table, {
    defaults: [], parts: new Map(), creates: new Map(), archives: new Map(), coverage: [], extra: [],
    retiring: [], lo: Infinity, hi: -Infinity, rec: t, here: null }]));
  const retiring = new Map();
  const push = (map, key, item) => { if (!map.has(key)) map.set(key, []); map.get(key).push(item); };
  const span = (entry, from, to) => {
    const a = positionOf(from, entry.rec);
    const b = positionOf(to, entry.rec);
    if (a !== null) entry.lo = Math.min(entry.lo, a);
    if (b !== null) entry.hi = Math.max(entry.hi, b);
  };
  for (const p of parts.partitions) {
    const entry = byTable.get(p.table);
    if (!entry) continue;
    if (p.is_default) { entry.defaults.push(p); continue; }
    push(entry.parts, rowKey(p.tenant), p);
    span(entry, p.from, p.to);
  }
  for (const a of parts.archives || []) {  // exported to Parquet: drawn, and in the range
    const entry = byTable.get(a.table);
    if (!entry) continue;
    push(entry.archives, rowKey(a.tenant), a);
    span(entry, a.from, a.to);
  }
  for (const op of plan.operations) {
    const entry = byTable.get(op.table);
    if (!entry) continue;
    if (op.kind === "create") { push(entry.creates, rowKey(op.tenant), op); span(entry, op.from, op.to); }
    if (RETIRE_KINDS.has(op.kind)) { retiring.set(op.partition, op); entry.retiring.push(op); }
  }
  for (const c of parts.coverage) {
    const entry = byTable.get(c.table);
    if (!entry) continue;
    entry.coverage.push(c);
    const newest = entry.rec.by_id ? newestId(c) : null;
    if (newest !== null) entry.here = entry.here === null ? newest : Math.max(entry.here, newest);
  }
  for (const [table, entry] of byTable) {
    // rows: registered tenants (with coverage) first, then any other tenant the catalog shows
    const seen = new Set();
    entry.rows = [];
    for (const c of entry.coverage) {
      const key = rowKey(c.tenant);
      if (!seen.has(key)) { seen.add(key); entry.rows.push({ tenant: c.tenant, key: key, coverage: c }); }
    }
    for (const found of [entry.parts, entry.archives]) {
      for (const key of found.keys()) {
        if (!seen.has(key)) {
          seen.add(key);
          const tenant = found.get(key)[0].tenant;
          entry.rows.push({ tenant: tenant, key: key, coverage: null });
        }
      }
    }
    for (const row of entry.rows) row.search = (row.tenant === null ? "(all rows)" : row.tenant).toLowerCase();
    entry.table = table;
  }
  return { byTable: byTable, retiring: retiring };
}

function rangeKey(step) {
  return step.count + " " + step.unit;
}

// One time range per partition interval: tables of the same interval share a scale. Id
// tables of one width share an axis of ids, around their newest ids.
function rangesByInterval(tables, index, now) {
  const ranges = new Map();
  for (const t of tables) {
    const step = stepOf(t);
    const entry = index.byTable.get(t.table);
    const key = rangeKey(step);
    const here = t.by_id ? (entry.here === null ? 0 : entry.here) : now;
    const r = ranges.get(key) || { lo: here - 3 * step.ms, hi: here + 2 * step.ms, step: step };
    if (t.by_id) { r.lo = Math.min(r.lo, here - 3 * step.ms); r.hi = Math.max(r.hi, here + 2 * step.ms); }
    if (Number.isFinite(entry.lo)) r.lo = Math.min(r.lo, entry.lo);
    if (Number.isFinite(entry.hi)) r.hi = Math.max(r.hi, entry.hi);
    ranges.set(key, r);
  }
  return ranges;
}

// Ticks on the partitions' own boundaries: every interval (or every few, to keep ~12 labels),
// aligned on a partition's lower bound when there is one.
function ticks(range, anchor) {
  const { lo, hi, step } = range;
  const perTick = [1, 2, 3, 4, 6, 7, 12, 14, 24, 30, 48, 60, 90, 180, 365]
    .find((k) => (hi - lo) / (k * step.ms) <= 12) || Math.ceil((hi - lo) / (12 * step.ms));
  const out = [];
  if (step.unit === "month" || step.unit === "year") {
    const months = step.count * (step.unit === "year" ? 12 : 1) * perTick;
    const d = new Date(anchor === null ? lo : anchor);
    let t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    while (t > lo) { const x = new Date(t); t = Date.UTC(x.getUTCFullYear(), x.getUTCMonth() - months, 1); }
    for (; t <= hi && out.length < 100; ) {
      if (t >= lo) out.push(t);
      const x = new Date(t);
      t = Date.UTC(x.getUTCFullYear(), x.getUTCMonth() + months, 1);
    }
    return { times: out, every: months * 30 * DAY_MS };
  }
  const every = perTick * step.ms;
  const start = step.unit === "id" ? 0 : Math.floor(lo / DAY_MS) * DAY_MS;
  const base = anchor === null ? start : anchor;
  for (let t = base + Math.ceil((lo - base) / every) * every; t <= hi && out.length < 100; t += every) out.push(t);
  return { times: out, every: every };
}

function tickLabel(t, every, unit) {
  if (unit === "id") return idLabel(t);
  const iso = new Date(t).toISOString();
  if (every >= 28 * DAY_MS) return iso.slice(0, 7);
  if (every >= DAY_MS && iso.slice(11, 16) === "00:00") return iso.slice(5, 10);
  return iso.slice(5, 10) + " " + iso.slice(11, 16);
}

function runwayOf(coverage) {
  return coverage.runway_text || duration(coverage.runway_seconds);
}

// Read once per refresh, before the cards are rebuilt: reading layout after DOM writes forces
// the browser to lay out the whole page again (a second per read with thousands of rows).
function timelineWidth() {
  const box = document.getElementById("tables");
  const room = (box && box.clientWidth) || document.body.clientWidth || 1200;
  return Math.max(300, Math.min(1300, room - 4));
}

function timeline(table, entry, rows, range, retiring, defaults, now, width) {
  const labelW = Math.min(220, Math.round(width * 0.36));
  const plotW = width - labelW - 8;
  const rowH = 18;
  const top = 22;
  const defaultRowCount = entry.defaults.length > 0 ? 1 : 0;
  const height = top + (rows.length + defaultRowCount) * rowH + 8;
  const { lo, hi } = range;
  const byId = Boolean(table.by_id);
  const pos = (text) => positionOf(text, table);
  const x = (t) => labelW + ((t - lo) / (hi - lo)) * plotW;
  const clamp = (t, fallback) => (t === null ? fallback : Math.min(hi, Math.max(lo, t)));
  const mark = (a, b) => {
    // at least 3 px wide, centred on the range: a partition never vanishes into a hairline
    const w = x(b) - x(a);
    return w >= 3 ? { x: x(a), width: w } : { x: x(a) + w / 2 - 1.5, width: 3 };
  };

  const root = svg("svg", { width: width, height: height, role: "img",
    "aria-label": "partitions of " + table.table + " per tenant over time",
    "data-table": table.table, "data-scale": (hi - lo) / plotW });
  const axis = svg("g", { class: "axis" });
  let anchor = null;
  for (const list of entry.parts.values()) { anchor = pos(list[0].from); if (anchor !== null) break; }
  const tk = ticks(range, anchor);
  for (const t of tk.times) {
    const tx = x(t);
    const label = tickLabel(t, tk.every, range.step.unit);
    // the last labels end at their tick rather than run off the right edge
    const end = tx + 6.2 * label.length + 4 > width;
    axis.append(svg("line", { class: "grid", x1: tx, x2: tx, y1: top - 4, y2: height - 4 }));
    axis.append(svg("text", { x: end ? tx - 2 : tx + 2, y: 12, "text-anchor": end ? "end" : "start",
      class: "tick", text: label }));
  }
  root.append(axis);

  const maxChars = Math.max(8, Math.floor((labelW - 70) / 6.2));
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const label = row.tenant === null ? "(all rows)" : row.tenant;
    const g = svg("g", { class: "tenant-row", "data-tenant": row.key });
    let runwayText = "";
    let low = false;
    if (row.coverage) {
      runwayText = " · runway " + runwayOf(row.coverage);
      low = row.coverage.covered_until === null || runwayValue(row.coverage) <= 0;
    } else if (row.tenant !== null) {
      runwayText = " · not registered";
    }
    // an id table's "now" is the row's newest id (the table's, for a row without coverage)
    const rowNow = byId ? (newestId(row.coverage) ?? entry.here) : now;
    g.append(svg("text", { x: 4, y: y + 12, class: low ? "runway-low" : "" },
      svg("title", { text: label + runwayText }),
      (label.length > maxChars ? label.slice(0, maxChars - 1) + "…" : label) + runwayText));
    for (const p of entry.parts.get(row.key) || []) {
      const a = clamp(pos(p.from), lo);
      const b = clamp(pos(p.to), hi);
      let cls = "ahead";
      if (retiring.has(p.partition)) cls = "drop";
      else if (p.owner === "foreign") cls = "foreign";
      else if (rowNow !== null && b <= rowNow) cls = "past";
      else if (rowNow !== null && a <= rowNow) cls = "current";
      const est = p.estimated_rows === null || p.estimated_rows < 0 ? "?" : p.estimated_rows;
      let tip = p.partition + "\n" + p.from + " → " + p.to + "\nrows ≈ " + est + " · " + p.owner;
      if (!byId && (table.epoch || UUID_RE.test(String(p.from)))) {
        tip += "\n" + shortTime(new Date(a).toISOString()) + " → " + shortTime(new Date(b).toISOString());
      }
      if (cls === "drop") tip += "\nretention: " + retiring.get(p.partition).kind + " next pass";
      const m = mark(a, b);
      g.append(svg("rect", { class: "part " + cls, x: m.x, y: y + 2, width: m.width, height: rowH - 5,
        "data-partition": p.partition, "data-state": cls }, svg("title", { text: tip })));
    }
    for (const ar of entry.archives.get(row.key) || []) {
      const a = clamp(pos(ar.from), lo);
      const b = clamp(pos(ar.to), hi);
      const m = mark(a, b);
      const tip = ar.partition + " (archived to Parquet" + (ar.state === "restoring" ? ", restoring" : "") +
        ")\n" + ar.from + " → " + ar.to + "\n" + ar.rows + " rows · " + ar.bytes + " bytes\n" + ar.location;
      g.append(svg("rect", { class: "part archived", x: m.x, y: y + 2, width: m.width, height: rowH - 5,
        "data-partition": ar.partition, "data-state": "archived" }, svg("title", { text: tip })));
    }
    for (const op of entry.creates.get(row.key) || []) {
      const a = clamp(pos(op.from), lo);
      const b = clamp(pos(op.to), hi);
      const m = mark(a, b);
      g.append(svg("rect", { class: "part planned", x: m.x, y: y + 3, width: m.width, height: rowH - 7,
        "data-partition": op.partition, "data-state": "planned" },
        svg("title", { text: op.partition + " (to be created)\n" + op.reason })));
    }
    if (byId && rowNow !== null && rowNow >= lo && rowNow <= hi) {
      const nx = x(rowNow);
      g.append(svg("line", { class: "newest", x1: nx, x2: nx, y1: y + 1, y2: y + rowH - 2,
        "data-newest": rowNow }, svg("title", { text: "newest id " + rowNow })));
    }
    root.append(g);
  });

  if (entry.defaults.length > 0) {
    const y = top + rows.length * rowH;
    const d = entry.defaults[0];
    const count = defaults[table.table] !== undefined ? defaults[table.table] : d.estimated_rows;
    const has = count !== null && count > 0;
    const g = svg("g", { class: "default-row", "data-default-rows": count === null ? "" : count });
    g.append(svg("text", { x: 4, y: y + 12, class: has ? "runway-low" : "" },
      "DEFAULT · " + (count === null ? "?" : count) + " row" + (count === 1 ? "" : "s")));
    g.append(svg("rect", { class: "default-bar" + (has ? " has-rows" : ""), x: labelW, y: y + 2,
      width: plotW, height: rowH - 5, "data-partition": d.partition },
      svg("title", { text: d.partition + ": " + (count === null ? "?" : count) +
        " row(s) outside every partition's range; they move into their partitions as those are created" })));
    root.append(g);
  }

  if (!byId) {  // an id table has no "now": each row marks its newest id instead
    const nx = x(now);
    root.append(svg("line", { class: "now", x1: nx, x2: nx, y1: top - 6, y2: height - 4 }));
    root.append(svg("text", { class: "now", x: nx + 3, y: top - 1, text: "now" }));
  }
  return root;
}

// -- a table's tenants: summary, search, pages ---------------------------------------------------

const PAGE_SIZE = 40;

function viewOf(table) {
  if (!state.views) state.views = new Map();
  let view = state.views.get(table);
  if (!view) {
    view = { query: "", page: 0, table: table, total: 0, worst: [], data: null, asked: 0 };
    view.search = el("input", { type: "search", class: "tenant-search", placeholder: "search tenants",
      "aria-label": "search tenants", autocomplete: "off" });
    view.search.addEventListener("input", () => {
      view.query = view.search.value.trim().toLowerCase();
      view.page = 0;
      reloadTable(table);
    });
    state.views.set(table, view);
  }
  return view;
}

function tenantLink(view, tenant, text) {
  const link = el("button", { type: "button", class: "link", "data-tenant": tenant, text: text });
  link.addEventListener("click", () => {
    view.search.value = tenant;
    view.query = tenant.toLowerCase();
    view.page = 0;
    reloadTable(view.table);
  });
  return link;
}

function summary(table, entry, view) {
  const box = el("div", { class: "summary" });
  if (table.tenant_column !== null) {
    const worst = view.worst;  // the table's five shortest runways, from its tenants listing
    box.append(el("div", { class: "worst-runway" }, el("span", { class: "label", text: "worst runway" }),
      worst.length === 0 ? el("span", { class: "muted", text: "no tenants" })
        : worst.map((c) => tenantLink(view, c.tenant, c.tenant + " · " + runwayOf(c)))));
    if (table.default_partition) {
      const strays = Object.entries(table.default_rows_by_tenant || {});
      box.append(el("div", { class: "default-tenants" }, el("span", { class: "label", text: "rows in default" }),
        strays.length === 0 ? el("span", { class: "muted", text: "none" })
          : strays.slice(0, 5).map(([tenant, n]) => tenantLink(view, tenant, tenant + " · " + n + " row" + (n === 1 ? "" : "s"))),
        strays.length > 5 ? el("span", { class: "muted", text: "+" + (strays.length - 5) + " more" }) : null));
    }
  }
  const due = new Map();
  for (const op of entry.retiring) due.set(rowKey(op.tenant), (due.get(rowKey(op.tenant)) || 0) + 1);
  const dueList = [...due.entries()].sort((a, b) => b[1] - a[1]);
  box.append(el("div", { class: "retirements" }, el("span", { class: "label", text: "retirements due" }),
    dueList.length === 0 ? el("span", { class: "muted", text: "none" })
      : [el("span", { text: entry.retiring.length + " partition" + (entry.retiring.length === 1 ? "" : "s") + ": " }),
        ...dueList.slice(0, 5).map(([tenant, n]) => tenant === ""
          ? el("span", { text: "(all rows) · " + n })
          : tenantLink(view, tenant, tenant + " · " + n))]));
  return box;
}

function tenantsView(table, entry, view, draw) {
  const info = el("span", { class: "page-info muted", role: "status" });
  const prev = el("button", { type: "button", class: "secondary small prev", text: "‹ prev" });
  const next = el("button", { type: "button", class: "secondary small next", text: "next ›" });
  const holder = el("div", { class: "timeline" });
  view.draw = () => {
    // the server sent this page's rows only (loadPage): view.total says how many match
    const matches = view.total;
    const pages = Math.max(1, Math.ceil(matches / PAGE_SIZE));
    const first = view.page * PAGE_SIZE;
    const shown = entry.rows.slice(0, PAGE_SIZE);
    const total = Math.max(table.tenants, matches);
    info.textContent = matches === 0 ? "no tenant matches"
      : (matches <= PAGE_SIZE ? matches : (first + 1) + "–" + (first + shown.length)) +
        " of " + matches.toLocaleString("en") + (view.query ? " matching (" + total.toLocaleString("en") + " in all)" : "");
    info.dataset.matches = matches;
    prev.disabled = view.page === 0;
    next.disabled = view.page >= pages - 1;
    prev.hidden = next.hidden = pages <= 1;
    holder.replaceChildren(draw(shown));
  };
  prev.addEventListener("click", () => { view.page -= 1; reloadTable(table.table); });
  next.addEventListener("click", () => { view.page += 1; reloadTable(table.table); });
  const controls = el("div", { class: "tenant-controls" },
    table.tenant_column !== null ? view.search : null, info, prev, next);
  view.draw();
  return [controls, holder];
}

function addTenantForm(table) {
  const input = el("input", { type: "text", placeholder: "tenant id", "aria-label": "tenant id" });
  const retention = el("input", { type: "text", placeholder: "retention (inherit)", size: 16,
    "aria-label": "retention" });
  const button = el("button", { type: "button", class: "secondary", text: "Add tenant" });
  const result = el("span", { class: "result", role: "status" });
  button.addEventListener("click", async () => {
    result.classList.remove("error");
    if (!state.token) {
      const given = window.prompt("Bearer token of this partman service:");
      if (!given) return;
      setToken(given);
    }
    const body = { tenant_id: input.value };
    if (retention.value.trim()) body.retention_period = retention.value.trim();
    button.disabled = true;
    try {
      const t = await api("/api/tables/" + encodeURIComponent(table.table) + "/tenants", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      result.textContent = "added " + t.tenant_id + "; its partitions come with the next pass";
      input.value = "";
      retention.value = "";
    } catch (error) {
      result.textContent = error.message;
      result.classList.add("error");
    } finally {
      button.disabled = !state.mutations;
      await refresh();
    }
  });
  return el("div", { class: "add-tenant" }, input, retention, button, result);
}

function showTables(tables, parts, plan) {
  const box = document.getElementById("tables");
  const now = parseTime(parts.now) || Date.now();
  const open = new Map([...box.querySelectorAll(".add-tenant")].map((f) => [f.closest(".table-card").dataset.table, f]));
  // The add-tenant forms and search boxes are kept across refreshes, but moving a node into
  // its new card blurs it: someone typing when the refresh lands would type into nothing.
  // Give the focus (and the caret) back in the same task, before any keystroke can arrive.
  const active = document.activeElement;
  const typing = active instanceof HTMLInputElement && box.contains(active)
    ? { node: active, start: active.selectionStart, end: active.selectionEnd } : null;
  const width = timelineWidth();
  box.replaceChildren();
  if (tables.length === 0) {
    box.append(el("p", { class: "empty", text: "No managed tables yet." }));
    return;
  }
  const index = indexData(tables, parts, plan);
  const ranges = rangesByInterval(tables, index, now);
  for (const t of tables) {
    const entry = index.byTable.get(t.table);
    const range = ranges.get(rangeKey(stepOf(t)));
    const view = viewOf(t.table);
    const card = el("div", { class: "table-card", "data-table": t.table });
    card.append(el("h3", { text: t.table }));
    const bits = [
      "every " + t.partition_interval + (t.by_id ? " ids" : ""),
      "keeps " + t.retention_period + (t.retention_column ? " by " + t.retention_column : "") +
        " (" + t.retention_action + ")",
      t.partition_count + " ahead",
      t.tenants + " tenant" + (t.tenants === 1 ? "" : "s"),
      t.partitions + " partitions",
      "shortest runway " + (t.min_runway_text || duration(t.min_runway_seconds)),
    ];
    if (t.epoch) bits.push(t.time_column + " in epoch " + t.epoch);
    if (t.rollup_after) bits.push("rolled up into " + t.rollup_interval + " after " + t.rollup_after);
    if (t.export_location) bits.push("exports to " + t.export_location);
    if (t.sub_partition_by) bits.push("each HASH (" + t.sub_partition_by + ") into " + t.sub_partition_modulus);
    if (t.tenant_partitioning === "list") bits.push("LIST (" + t.tenant_column + ") → RANGE (" + t.time_column + ")");
    if (t.default_partition) bits.push("default partition: " + (t.default_rows === null ? "?" : t.default_rows) + " rows");
    card.append(el("div", { class: "policy", text: bits.join(" · ") }));
    card.append(summary(t, entry, view));
    card.append(...tenantsView(t, entry, view,
      (rows) => timeline(t, entry, rows, range, index.retiring, parts.default_rows, now, width)));
    if (t.tenant_column !== null) card.append(open.get(t.table) || addTenantForm(t));
    box.append(card);
  }
  if (typing && typing.node.isConnected && document.activeElement !== typing.node) {
    typing.node.focus();
    typing.node.setSelectionRange(typing.start, typing.end);
  }
}

// -- runs and errors --------------------------------------------------------------------------

function showRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  if (runs.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No runs yet." })));
    return;
  }
  for (const r of runs) {
    const s = r.summary || {};
    body.append(el("tr", { class: "run outcome-" + r.outcome, "data-run-id": r.run_id },
      el("td", { text: shortTime(r.started_at) }),
      el("td", { class: "num", text: r.duration_ms === null ? "–" : (r.duration_ms / 1000).toFixed(2) + "s" }),
      el("td", { text: r.outcome }),
      el("td", { class: "num", text: s.partitions_created ?? "" }),
      el("td", { class: "num", text: s.partitions_retired ?? "" }),
      el("td", { class: "num", text: s.operations_failed ?? "" }),
      el("td", { class: "num", text: s.operations_skipped ?? "" }),
      el("td", { class: "num", text: s.default_rows ?? "" }),
      el("td", { text: r.manager })));
  }
}

function showErrors(status, failed, skipped, plan) {
  const list = document.getElementById("errors");
  list.replaceChildren();
  const items = [];
  const sched = status.scheduler || {};
  if (sched.last_error) {
    items.push({ level: "error", at: sched.last_error.at,
      text: "scheduler (" + sched.last_error.kind + "): " + sched.last_error.message });
  }
  if (status.prepare_error) {
    items.push({ level: "error", at: status.prepare_error.at, text: "config: " + status.prepare_error.message });
  }
  for (const n of plan.notices) {
    if (n.level === "error" || n.level === "warning") items.push({ level: n.level, at: null, text: n.table + ": " + n.message });
  }
  const audit = [...failed.entries, ...skipped.entries].sort((a, b) => b.id - a.id).slice(0, 25);
  for (const e of audit) {
    items.push({ level: e.outcome, at: e.at,
      text: e.outcome + " " + e.operation + " " + (e.partition_name || e.table || "") + ": " + (e.error || e.reason || "") });
  }
  if (items.length === 0) {
    list.append(el("li", { class: "empty", text: "No errors." }));
    return;
  }
  for (const item of items) {
    list.append(el("li", { class: "level-" + item.level },
      el("span", { class: "when", text: item.at ? shortTime(item.at) : "now" }), item.text));
  }
}

// -- the loop ---------------------------------------------------------------------------------

// One tab per database, each saying whether it is reachable and whether this replica leads
// it; the chosen one's sections fill the page. A database that is down says why instead.
function showDatabases(databases) {
  const nav = document.getElementById("databases");
  nav.hidden = false;
  nav.replaceChildren(...databases.map((d) => {
    const mode = !d.reachable ? "down" : d.leader ? "leader" : d.role;
    const tab = el("button", { type: "button", class: "db-tab", "data-state": mode,
      "aria-pressed": d.name === fleet.chosen ? "true" : "false", title: d.unreachable_reason || mode },
      d.name, el("span", { class: "chip", "data-role": d.reachable ? d.role : "error", text: mode }));
    tab.addEventListener("click", () => chooseDatabase(d.name));
    return tab;
  }));
}

function chooseDatabase(name) {
  fleet.chosen = name;
  try { history.replaceState(null, "", "#db=" + encodeURIComponent(name)); } catch (e) { /* file: */ }
  document.body.dataset.loaded = "false";
  refresh();
}

async function refreshFleet() {
  if (fleet.names === null) return;
  const databases = await api("/api/databases");
  fleet.names = databases.map((d) => d.name);
  if (!fleet.names.includes(fleet.chosen)) fleet.chosen = fleet.names[0];
  showDatabases(databases);
  const chosen = databases.find((d) => d.name === fleet.chosen);
  if (chosen && !chosen.reachable) {
    const error = new Error("database " + chosen.name + " is unreachable: " + chosen.unreachable_reason);
    error.status = 503;
    throw error;
  }
}

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  const started = Date.now();
  try {
    await refreshFleet();
    // The plan is the slow read (thousands of operations with many tenants): on the first
    // load the tables are drawn without it and drawn again when it arrives. It is asked for
    // once the tables are: computed beside the inventory, it would slow the first draw down
    // (the server computes both in Python, one at a time).
    let planned = null;
    const plan = () => {
      if (planned === null) { planned = api("/api/plan"); planned.catch(() => {}); }
      return planned;
    };
    if (document.body.dataset.loaded === "true") plan();
    const [status, tables, runs, failed, skipped] = await Promise.all([
      api("/api/status"),
      api("/api/tables"),
      api("/api/runs?limit=15"),
      api("/api/audit?outcome=failed&limit=15"),
      api("/api/audit?outcome=skipped&limit=15"),
    ]);
    // then the partitions of the tenants each card shows (a page of 40), not of every tenant
    await Promise.all(tables.map((t) => loadPage(t, true)));
    state.tables = tables;
    const parts = pagesShown(tables);
    if (document.body.dataset.loaded !== "true") {
      plan();
      showStatus(status);
      showTables(tables, parts, EMPTY_PLAN);
    }
    const pending = await plan();
    state.plan = pending;
    showStatus(status);
    showPlan(pending);
    showTables(tables, parts, pending);
    showRuns(runs);
    showErrors(status, failed, skipped, pending);
    showBanner(null);
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      showBanner("This service needs its token to show anything: enter it above. (" + error.message + ")");
    } else {
      showBanner("Cannot load: " + error.message);
    }
    const chip = document.getElementById("status");
    chip.dataset.role = "error";
    chip.textContent = "unavailable";
  } finally {
    state.refreshing = false;
    state.refreshed = { at: Date.now(), took: Date.now() - started };
  }
}

// One table's page of rows: its tenants on the page shown (by id, or those the search finds),
// their partitions and runway, the table's default partition; and, with `worst`, the five
// shortest runways for its summary. The server pages them as GET /api/tables/{t}/tenants does.
async function loadPage(table, worst) {
  const view = viewOf(table.table);
  const asked = ++view.asked;
  const name = encodeURIComponent(table.table);
  const path = () => "/api/partitions?table=" + name + "&limit=" + PAGE_SIZE + "&offset=" +
    view.page * PAGE_SIZE + (view.query ? "&search=" + encodeURIComponent(view.query) : "");
  const shortest = worst && table.tenant_column !== null
    ? api("/api/tables/" + name + "/tenants?order=runway&limit=5") : null;
  // awaited below, after the page: if the page's read fails first, this one's failure is
  // not left unhandled (the refresh shows the page's error)
  if (shortest !== null) shortest.catch(() => {});
  let page = await apiPage(path());
  const pages = Math.max(1, Math.ceil((page.total || 0) / PAGE_SIZE));
  if (view.page > pages - 1) {  // fewer rows than when this page was chosen: the last one
    view.page = pages - 1;
    page = await apiPage(path());
  }
  if (shortest !== null) {
    view.worst = (await shortest).filter((t) => t.coverage !== null)
      .map((t) => Object.assign({ tenant: t.tenant_id }, t.coverage));
  }
  if (asked !== view.asked) return false;  // a newer search or page was asked for since
  view.data = page.body;
  view.total = page.total === null ? page.body.coverage.length : page.total;
  return true;
}

// The shown pages of every table, as one /api/partitions answer (what indexData takes).
function pagesShown(tables) {
  const out = { now: null, partitions: [], coverage: [], archives: [], default_rows: {} };
  for (const t of tables) {
    const data = viewOf(t.table).data;
    if (!data) continue;
    out.now = out.now || data.now;
    out.partitions.push(...data.partitions);
    out.coverage.push(...data.coverage);
    out.archives.push(...(data.archives || []));
    Object.assign(out.default_rows, data.default_rows);
  }
  return out;
}

// A search or another page of one table: that table's rows again, every card redrawn (the
// plan and the tables are the last refresh's).
async function reloadTable(name) {
  const table = (state.tables || []).find((t) => t.table === name);
  if (!table) return;
  try {
    if (!(await loadPage(table, false))) return;
  } catch (error) {
    showBanner("Cannot load: " + error.message);
    return;
  }
  showTables(state.tables, pagesShown(state.tables), state.plan || EMPTY_PLAN);
}

// With thousands of tenants a refresh reads a lot (every partition, the plan): the timer then
// waits three times the last refresh's duration after it, so that an open tab keeps the
// service busy a quarter of the time at most (a refresh of 100 ms: every REFRESH_MS as ever).
function due() {
  const last = state.refreshed;
  return !last || Date.now() - last.at >= 3 * last.took;
}

function setToken(token) {
  state.token = token;
  document.getElementById("token").value = token;
  try { sessionStorage.setItem("partman-token", token); } catch (e) { /* private mode */ }
}

async function init() {
  const input = document.getElementById("token");
  input.addEventListener("change", () => { setToken(input.value.trim()); refresh(); });
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    refresh();
  });
  document.getElementById("apply").addEventListener("click", applyNow);
  let stored = "";
  try { stored = sessionStorage.getItem("partman-token") || ""; } catch (e) { stored = ""; }
  try {
    const config = await api("/api/ui-config");
    state.mutations = config.mutations_enabled;
    if (config.token) stored = config.token;
    // the docs and metrics links open without the header: hide them when they would get 401
    document.getElementById("docs-link").hidden = Boolean(config.read_requires_token);
    document.getElementById("metrics-link").hidden = Boolean(config.metrics_requires_token);
    if (!config.mutations_enabled) {
      document.getElementById("apply").disabled = true;
      document.getElementById("apply").title = "this service is read-only (no token configured)";
    }
  } catch (e) { /* shown by refresh() */ }
  try {  // a fleet answers /api/databases; one database's service says 404
    const databases = await api("/api/databases");
    fleet.names = databases.map((d) => d.name);
    const hash = /^#db=(.+)$/.exec(location.hash);
    const wanted = hash ? decodeURIComponent(hash[1]) : null;
    fleet.chosen = fleet.names.includes(wanted) ? wanted : fleet.names[0];
  } catch (e) { fleet.names = null; }
  if (stored) setToken(stored);
  await refresh();
  setInterval(() => { if (!document.hidden && due()) refresh(); }, REFRESH_MS);
}

init();
